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


"""The future a service client waits on (rclpy.task.Future)."""

import concurrent.futures
import threading


class Future:
    """rclpy.task.Future subset: result, exception, done callbacks."""

    def __init__(self):
        self._done = threading.Event()
        self._result = None
        self._exception = None
        self._callbacks = []
        self._lock = threading.Lock()

    def done(self) -> bool:
        return self._done.is_set()

    def result(self):
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self):
        return self._exception

    def set_result(self, result) -> None:
        self._finish(result, None)

    def set_exception(self, exc) -> None:
        self._finish(None, exc)

    def cancel(self) -> None:
        self._finish(None, concurrent.futures.CancelledError())

    def cancelled(self) -> bool:
        return isinstance(self._exception, concurrent.futures.CancelledError)

    def _finish(self, result, exc) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._result, self._exception = result, exc
            self._done.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback(self)

    def add_done_callback(self, callback) -> None:
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        callback(self)

    def wait(self, timeout=None) -> bool:
        return self._done.wait(timeout)
