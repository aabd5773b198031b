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

"""Whether the other readers of a virtual CAN channel have taken their frames (lock-step).

Where it fits: sim_node's lock-step thread steps time only once every reader of its channel
(piper_sdk's reader thread in arm_driver_node, a test's listener) has drained its queue, so the
driver always sees the feedback of the step before. python-can's virtual bus keeps one queue per
reader in `can.interfaces.virtual.channels`; a reader counts as busy while its queue holds
frames or it is not waiting in a blocking recv(). Pure python-can, no ROS.
"""

import time

from can.interfaces import virtual


class CanReaders:
    """The other readers of one virtual CAN channel, minus our own buses and given-up ones."""

    def __init__(self, channel: str, own_buses=()):
        self.channel = channel
        self._ignored = {b.queue for b in own_buses if b is not None}

    def busy(self) -> list:
        """Queues that still hold frames or whose reader is not waiting for the next one."""
        return [q for q in list(virtual.channels.get(self.channel, []))
                if q not in self._ignored and (q.qsize() or not q.not_empty._waiters)]

    def idle(self) -> bool:
        return not self.busy()

    def give_up(self) -> None:
        """A bus nobody reads (a test's listener left alone) must not stall time forever."""
        self._ignored.update(self.busy())

    def settle(self, timeout_s: float) -> bool:
        """Wait until every reader took its frames; False when some were given up on instead."""
        end = time.monotonic() + timeout_s
        while not self.idle():
            if time.monotonic() > end:
                self.give_up()
                return False
            time.sleep(0.0002)
        return True
