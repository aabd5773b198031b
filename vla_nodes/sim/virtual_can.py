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

send_burst() puts a burst of frames (the arm's feedback of one tick) into each receiver's queue
at once and wakes its reader once: frame by frame, every put woke piper_sdk's reader thread,
which then fought the sender for the GIL about 900 times per simulated second.
"""

import queue
import time

import can
from can.interfaces.virtual import VirtualBus


class FastVirtualBus(VirtualBus):

    def send(self, msg: can.Message, timeout=None) -> None:
        self._check_if_open()
        timestamp = msg.timestamp if self.preserve_timestamps else time.time()
        all_sent = True
        for bus_queue in self._receivers():
            try:
                bus_queue.put(self._copy(msg, timestamp, bus_queue), block=True, timeout=timeout)
            except queue.Full:
                all_sent = False
        if not all_sent:
            raise can.CanOperationError('Could not send message to one or more recipients')

    def send_burst(self, msgs: list) -> None:
        """Send `msgs` in order, each receiver woken once for all of them (in order, unbounded).

        A receiver with a bounded queue gets them one by one, as send() would.
        """
        self._check_if_open()
        for bus_queue in self._receivers():
            timestamp = time.time()
            copies = [self._copy(msg, msg.timestamp if self.preserve_timestamps else timestamp,
                                 bus_queue) for msg in msgs]
            if bus_queue.maxsize > 0:
                for copy in copies:
                    bus_queue.put(copy)
                continue
            with bus_queue.mutex:  # what Queue.put does, once for the whole burst
                bus_queue.queue.extend(copies)
                bus_queue.unfinished_tasks += len(copies)
                bus_queue.not_empty.notify(len(copies))  # as many as puts would

    def _receivers(self) -> list:
        return [q for q in self.channel if q is not self.queue or self.receive_own_messages]

    def _copy(self, msg: can.Message, timestamp: float, bus_queue) -> can.Message:
        return can.Message(timestamp=timestamp, arbitration_id=msg.arbitration_id,
                           is_extended_id=msg.is_extended_id,
                           is_remote_frame=msg.is_remote_frame,
                           is_error_frame=msg.is_error_frame, channel=self.channel_id,
                           dlc=msg.dlc, data=bytearray(msg.data), is_fd=msg.is_fd,
                           is_rx=bus_queue is not self.queue,
                           bitrate_switch=msg.bitrate_switch,
                           error_state_indicator=msg.error_state_indicator)
