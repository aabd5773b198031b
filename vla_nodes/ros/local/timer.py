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


"""Timers of a local node, on the node's clock."""

import threading


class Timer:
    """A periodic callback on the node's clock; missed periods are skipped, as in rcl."""

    def __init__(self, node, period_sec, callback, group, clock):
        if period_sec <= 0:
            raise ValueError('timer period must be positive')
        self.period_ns = int(period_sec * 1e9)
        self.callback, self.callback_group, self.clock = callback, group, clock
        self._next_ns = clock.now_ns() + self.period_ns
        self._canceled = False
        self._lock = threading.Lock()

    @property
    def timer_period_ns(self) -> int:
        return self.period_ns

    def is_canceled(self) -> bool:
        return self._canceled

    def cancel(self) -> None:
        self._canceled = True

    def reset(self) -> None:
        with self._lock:
            self._canceled = False
            self._next_ns = self.clock.now_ns() + self.period_ns

    def time_until_next_call(self) -> int | None:
        """Nanoseconds until due (<= 0: due); None when canceled."""
        if self._canceled:
            return None
        return self._next_ns - self.clock.now_ns()

    def has_work(self) -> bool:
        wait = self.time_until_next_call()
        return wait is not None and wait <= 0

    def take(self):
        with self._lock:
            now = self.clock.now_ns()
            if self._canceled or now < self._next_ns:
                return None
            missed = (now - self._next_ns) // self.period_ns
            self._next_ns += (missed + 1) * self.period_ns
        return self.callback
