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

"""LatestWorker: runs slow per-frame work on one background thread, newest frame first.

`depth_node` (monocular depth) and `pose_node` (object detection) hand frames to it from their
subscription callbacks, which return at once, so joint states and other callbacks never wait
behind a model. At most one frame waits: a newer one replaces it (the older one is dropped and
counted), so a slow model always works on the freshest frame and never on a backlog.
`synchronous=True` runs the work inside `submit()` instead: a lock-step simulation waits for it,
and the same frames give the same results at the same simulated time.
"""

import threading


class LatestWorker:
    """One daemon thread calling `work(item)` on the latest submitted item."""

    def __init__(self, work, on_error=None, name: str = 'latest_worker',
                 synchronous: bool = False):
        """Start the thread (none when `synchronous`).

        Args:
            work: callable(item) run on the worker thread; its return value is ignored.
            on_error: callable(exception) called on the worker thread when `work` raises;
                the worker keeps running either way (None: the error is only counted).
            name: thread name (shows up in stack dumps).
            synchronous: run `work` in the caller's thread, in `submit()`.
        """
        self._work, self._on_error = work, on_error
        self._cond = threading.Condition()
        self._pending = None
        self._has_pending = False
        self._busy = False
        self._stop = False
        self.submitted = self.dropped = self.done = self.errors = 0
        self._thread = None
        if not synchronous:
            self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
            self._thread.start()

    def submit(self, item) -> bool:
        """Queue `item`, replacing a waiting one.

        Returns:
            False when a waiting item was dropped for this one, else True.
        """
        if self._thread is None:
            self.submitted += 1
            self._run(item)
            return True
        with self._cond:
            replaced = self._has_pending
            self._pending, self._has_pending = item, True
            self.submitted += 1
            self.dropped += int(replaced)
            self._cond.notify()
        return not replaced

    def idle(self) -> bool:
        """Whether nothing is running or waiting."""
        with self._cond:
            return not (self._busy or self._has_pending)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is running or waiting; False on timeout (s)."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._busy or self._has_pending), timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Drop a waiting item, let the running one finish (up to `timeout` s), end the thread."""
        with self._cond:
            self._stop = True
            self._has_pending, self._pending = False, None
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._has_pending or self._stop)
                if self._stop:
                    return
                item, self._pending, self._has_pending = self._pending, None, False
                self._busy = True
            self._run(item)

    def _run(self, item) -> None:
        try:
            self._work(item)
        except Exception as err:  # one bad frame must not end the worker
            self.errors += 1
            if self._on_error is not None:
                self._on_error(err)
        finally:
            with self._cond:
                self._busy = False
                self.done += 1
                self._cond.notify_all()
