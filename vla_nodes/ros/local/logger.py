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


"""Node loggers: rclpy's throttle/once/skip_first options over Python logging."""

import logging
import sys
import threading
import time


class Logger:
    """rclpy's RcutilsLogger calls (`info`, `warn`, ..., `throttle_duration_sec`, `once`)."""

    def __init__(self, name: str):
        self.name = name
        self._py = logging.getLogger(name)
        self._last = {}
        self._lock = threading.Lock()

    def get_child(self, name: str) -> 'Logger':
        return Logger(f'{self.name}.{name}')

    def _log(self, level, msg, throttle_duration_sec=None, once=False, skip_first=False):
        # Like rclpy, `once` and throttling are per call site, not per message text.
        caller = sys._getframe(2)
        key = (caller.f_code.co_filename, caller.f_lineno)
        with self._lock:
            now = time.monotonic()
            last = self._last.get(key)
            if once and last is not None:
                return False
            if throttle_duration_sec and last is not None and now - last < throttle_duration_sec:
                return False
            if skip_first and last is None:
                self._last[key] = now
                return False
            self._last[key] = now
        self._py.log(level, msg)
        return True

    def debug(self, msg, **kw):
        return self._log(logging.DEBUG, msg, **kw)

    def info(self, msg, **kw):
        return self._log(logging.INFO, msg, **kw)

    def warning(self, msg, **kw):
        return self._log(logging.WARNING, msg, **kw)

    warn = warning

    def error(self, msg, **kw):
        return self._log(logging.ERROR, msg, **kw)

    def fatal(self, msg, **kw):
        return self._log(logging.CRITICAL, msg, **kw)


def get_logger(name: str) -> Logger:
    return Logger(name)
