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

import time

import can
from can.interfaces.virtual import VirtualBus

from vla_nodes.arm.can_bus import send_virtual


class FastVirtualBus(VirtualBus):

    def send(self, msg: can.Message, timeout=None) -> None:
        send_virtual(self, msg, timeout)

    def send_burst(self, frames: list) -> None:
        """Send `frames` in order, each receiver woken once for all of them (unbounded queue).

        `frames` are (can_id, 8 data bytes) standard data frames. A receiver with a bounded
        queue gets them one by one, as send() would.
        """
        self._check_if_open()
        for bus_queue in self._receivers():
            timestamp, is_rx = time.time(), bus_queue is not self.queue
            copies = [can.Message(timestamp=timestamp, arbitration_id=can_id,
                                  is_extended_id=False, channel=self.channel_id,
                                  data=bytearray(data), is_rx=is_rx) for can_id, data in frames]
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
