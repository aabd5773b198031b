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

import queue
import threading
import time

from can.interfaces import virtual


class _WatchedQueue(queue.Queue):
    """A receiver's queue that notifies `watcher` whenever its reader is about to wait, empty.

    Queue.get with that one line added: sim_node's lock-step thread then wakes the moment
    piper_sdk's reader has parsed a burst, where it used to poll (about 0.4 ms lost per step).
    """

    watcher = None  # threading.Condition, set when installed

    def get(self, block=True, timeout=None):
        with self.not_empty:
            if not self._qsize():
                if not block:
                    raise queue.Empty
                end = None if timeout is None else time.monotonic() + max(0.0, timeout)
                while not self._qsize():
                    remaining = None if end is None else end - time.monotonic()
                    if remaining is not None and remaining <= 0.0:
                        raise queue.Empty
                    with self.watcher:
                        self.watcher.notify_all()
                    self.not_empty.wait(remaining)
            item = self._get()
            self.not_full.notify()
            return item


class CanReaders:
    """The other readers of one virtual CAN channel, minus our own buses and given-up ones."""

    def __init__(self, channel: str, own_buses=()):
        self.channel = channel
        self._ignored = {b.queue for b in own_buses if b is not None}
        self._reader_waits = threading.Condition()

    def _queues(self) -> list:
        """The readers' queues, each made a _WatchedQueue (a reader may join at any time)."""
        queues = [q for q in list(virtual.channels.get(self.channel, []))
                  if q not in self._ignored]
        for q in queues:
            if type(q) is queue.Queue:  # same layout: the class can be swapped in place
                q.watcher = self._reader_waits
                q.__class__ = _WatchedQueue
        return queues

    def busy(self) -> list:
        """Queues that still hold frames or whose reader is not waiting for the next one."""
        # len(), not qsize(): no queue lock, as wait_idle holds the lock readers notify under
        return [q for q in self._queues() if len(q.queue) or not q.not_empty._waiters]

    def idle(self) -> bool:
        return not self.busy()

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until every reader waits on an empty queue, at most `timeout_s`: idle()."""
        end = time.monotonic() + timeout_s
        with self._reader_waits:
            while not self.idle():
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                # The notice comes just before the reader's wait: re-check soon after a
                # notice that came too early, rather than sleep until the timeout.
                self._reader_waits.wait(min(remaining, 0.001))
        return True

    def give_up(self) -> None:
        """A bus nobody reads (a test's listener left alone) must not stall time forever."""
        self._ignored.update(self.busy())

    def settle(self, timeout_s: float) -> bool:
        """Wait until every reader took its frames; False when some were given up on instead."""
        if self.wait_idle(timeout_s):
            return True
        self.give_up()
        return False
