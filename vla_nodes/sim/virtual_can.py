# Copyright 2026 vla_nodes developers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""A python-can virtual bus whose send() copies frames without copy.deepcopy.

python-can's VirtualBus deep-copies every frame once per receiver; for the simulated arm's
~900 feedback frames per simulated second that generic deepcopy was the largest single cost of
a lock-step episode. The frames on the channel are the same (fresh Message objects with the
sender's data, a common timestamp, `is_rx` set per receiver), and receivers are stock
VirtualBus instances (piper_sdk's bus is unchanged).
"""

import queue
import time

import can
from can.interfaces.virtual import VirtualBus


class FastVirtualBus(VirtualBus):

    def send(self, msg: can.Message, timeout=None) -> None:
        self._check_if_open()
        timestamp = msg.timestamp if self.preserve_timestamps else time.time()
        data = bytes(msg.data)
        all_sent = True
        for bus_queue in self.channel:
            if bus_queue is self.queue and not self.receive_own_messages:
                continue
            copy = can.Message(timestamp=timestamp, arbitration_id=msg.arbitration_id,
                               is_extended_id=msg.is_extended_id,
                               is_remote_frame=msg.is_remote_frame,
                               is_error_frame=msg.is_error_frame, channel=self.channel_id,
                               dlc=msg.dlc, data=bytearray(data), is_fd=msg.is_fd,
                               is_rx=bus_queue is not self.queue,
                               bitrate_switch=msg.bitrate_switch,
                               error_state_indicator=msg.error_state_indicator)
            try:
                bus_queue.put(copy, block=True, timeout=timeout)
            except queue.Full:
                all_sent = False
        if not all_sent:
            raise can.CanOperationError('Could not send message to one or more recipients')
