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
frames or it is not waiting in a blocking recv(). Its queue tells when the reader goes to wait
(`wait`), so the stepping thread sleeps until then instead of polling: on this 2-core VM a
time.sleep(0) costs ~80 us, a quarter of what the reader takes to parse a step's feedback.
Pure python-can, no ROS.
"""

import threading
import time

from can.interfaces import virtual


class _Waits(threading.Condition):
    """A receiver queue's `not_empty` that sets `event` each time its reader goes to wait.

    Same lock (the queue's mutex) and the same waiters as the condition it replaces: puts wake
    the reader as before.
    """

    def __init__(self, original: threading.Condition, event: threading.Event):
        super().__init__(original._lock)
        self._waiters = original._waiters
        self.event = event

    def wait(self, timeout=None):
        self.event.set()  # under the mutex: whoever looks next sees the reader waiting
        return super().wait(timeout)


class CanReaders:
    """The other readers of one virtual CAN channel, minus our own buses and given-up ones."""

    def __init__(self, channel: str, own_buses=()):
        self.channel = channel
        self._ignored = {b.queue for b in own_buses if b is not None}
        self._went_waiting = threading.Event()

    def busy(self) -> list:
        """Queues that still hold frames or whose reader is not waiting for the next one."""
        busy = []
        for q in list(virtual.channels.get(self.channel, [])):
            if q in self._ignored:
                continue
            with q.mutex:  # a reader appends itself to the waiters before it lets the mutex go
                if not isinstance(q.not_empty, _Waits):
                    q.not_empty = _Waits(q.not_empty, self._went_waiting)
                if q._qsize() or not q.not_empty._waiters:
                    busy.append(q)
        return busy

    def idle(self) -> bool:
        return not self.busy()

    def wait(self, timeout_s: float) -> bool:
        """Sleep until every reader took its frames, at most `timeout_s`; whether they did."""
        self._went_waiting.clear()
        if self.idle():
            return True
        self._went_waiting.wait(timeout_s)
        return self.idle()

    def give_up(self) -> None:
        """A bus nobody reads (a test's listener left alone) must not stall time forever."""
        self._ignored.update(self.busy())

    def settle(self, timeout_s: float) -> bool:
        """Wait until every reader took its frames; False when some were given up on instead."""
        end = time.monotonic() + timeout_s
        while not self.wait(0.01):
            if time.monotonic() > end:
                self.give_up()
                return False
        return True
