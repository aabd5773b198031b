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

"""Control-loop timing: how regular the driver's ticks are and how long each one takes.

Where it fits: `arm_driver_node` calls `tick()` at the start and `done()` at the end of every
control tick and shows `summary()` in `/diagnostics`; `bench/bench_driver.py` prints it. A
late tick is a late CAN command, which the firmware's planner turns into a stall and a catch-up:
the jitter users of other drivers see (piper_ros #52). Pure Python on a monotonic clock.
"""

import collections

import numpy as np


class LoopTiming:
    """Periods between tick starts and durations of ticks, over the last `window` ticks."""

    def __init__(self, period_s: float, window: int = 2000):
        """Start empty.

        Args:
            period_s: the nominal period (s), to report jitter against.
            window: how many recent ticks the figures cover (10 s at 200 Hz).
        """
        self.period_s = period_s
        self._periods = collections.deque(maxlen=window)
        self._durations = collections.deque(maxlen=window)
        self._cpu = collections.deque(maxlen=window)
        self._last_start = None
        self.ticks = 0

    def tick(self, now_s: float) -> None:
        """Mark the start of a tick at monotonic time `now_s` (s)."""
        if self._last_start is not None:
            self._periods.append(now_s - self._last_start)
        self._last_start = now_s
        self.ticks += 1

    def done(self, duration_s: float, cpu_s: float = 0.0) -> None:
        """Record how long the tick took (s): wall time, and this thread's CPU time in it.

        Wall time well above CPU time means the tick waited: for the GIL held by another
        thread of the process, or for a core on a loaded machine.
        """
        self._durations.append(duration_s)
        self._cpu.append(cpu_s)

    def summary(self) -> dict:
        """Figures in ms: tick period, jitter against the nominal period, tick duration.

        Returns:
            dict of floats (ms): period p50 / p99 / max, |period - nominal| p50 / p99, tick
            wall time p50 / p99, tick CPU time p50; empty until two ticks were seen.
        """
        if not self._periods:
            return {}
        periods = np.asarray(self._periods) * 1e3
        jitter = np.abs(periods - self.period_s * 1e3)
        durations = np.asarray(self._durations or [0.0]) * 1e3
        cpu = np.asarray(self._cpu or [0.0]) * 1e3
        p = [np.percentile(x, (50, 99)) for x in (periods, jitter, durations)]
        return {
            'period_p50_ms': float(p[0][0]), 'period_p99_ms': float(p[0][1]),
            'period_max_ms': float(periods.max()),
            'jitter_p50_ms': float(p[1][0]), 'jitter_p99_ms': float(p[1][1]),
            'tick_p50_ms': float(p[2][0]), 'tick_p99_ms': float(p[2][1]),
            'tick_cpu_p50_ms': float(np.median(cpu)),
        }
