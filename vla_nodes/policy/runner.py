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

"""Chunk timing for policy_node: when to request the next action chunk (pure logic, no ROS).

Where it fits: policy_node asks `ChunkScheduler.should_request(now)` on every tick; the scheduler
knows when the last published chunk runs out (it is stamped with its observation time and spans
`chunk_length / action_rate_hz` seconds from it) and how long a request takes from observation to
published chunk (the measured inference delay: transport, model and publishing). It asks for the
next chunk once the remaining part of the current one falls below that delay plus a margin, so a
new chunk arrives before the old one ends and the driver blends the seam (real-time-chunking's
execution horizon, without its inpainting). A maximum period keeps a floor on the request rate,
a minimum period keeps the model from being asked back to back.

All times are seconds on the node's clock (simulated time in sim).
"""

import collections

import numpy as np


class ChunkScheduler:
    """Decides when to request the next chunk from the remaining horizon and the measured delay.

    Args:
        margin_s: safety margin added to the expected delay (s).
        initial_delay_s: expected delay before any has been measured (s).
        min_period_s: never request more often than this (s).
        max_period_s: request at least this often (s); 0 = only when the chunk runs low.
        window: how many recent delays the expectation is taken over.
        quantile: quantile of the recent delays used as the expectation (0.9: a slow one counts).
    """

    def __init__(self, margin_s: float = 0.1, initial_delay_s: float = 0.3,
                 min_period_s: float = 0.1, max_period_s: float = 0.0, window: int = 20,
                 quantile: float = 0.9):
        if margin_s < 0 or initial_delay_s < 0 or min_period_s < 0 or max_period_s < 0:
            raise ValueError('ChunkScheduler times must be >= 0 s: check margin_s, '
                             'initial_delay_s, min_period_s and max_period_s')
        self.margin_s = margin_s
        self.min_period_s = min_period_s
        self.max_period_s = max_period_s
        self._initial = initial_delay_s
        self._quantile = quantile
        self._delays = collections.deque(maxlen=window)
        self._expected = None  # the quantile of `_delays`, until they change
        self._chunk_end_s = None
        self._last_request_s = None
        self.last_reason = ''

    @property
    def expected_delay_s(self) -> float:
        """Observation-to-chunk delay the next request is planned with (s)."""
        if not self._delays:
            return self._initial
        if self._expected is None:  # asked at every input, changed once per chunk
            self._expected = float(np.quantile(np.asarray(self._delays), self._quantile))
        return self._expected

    def record_delay(self, delay_s: float) -> None:
        """A chunk was published `delay_s` after its observation was taken."""
        if delay_s >= 0 and np.isfinite(delay_s):
            self._delays.append(float(delay_s))
            self._expected = None

    def on_chunk(self, obs_time_s: float, duration_s: float) -> None:
        """A chunk stamped `obs_time_s` covering `duration_s` seconds was published."""
        end = obs_time_s + duration_s
        self._chunk_end_s = end if self._chunk_end_s is None else max(self._chunk_end_s, end)

    def remaining_s(self, now_s: float) -> float:
        """Seconds of the last chunk still ahead at `now_s` (0 without a chunk, never < 0)."""
        if self._chunk_end_s is None:
            return 0.0
        return max(0.0, self._chunk_end_s - now_s)

    def should_request(self, now_s: float) -> bool:
        """Whether to request a chunk now; `last_reason` says why (or why not)."""
        since = None if self._last_request_s is None else now_s - self._last_request_s
        if since is not None and 0 <= since < self.min_period_s:
            self.last_reason = 'min_period'
            return False
        if self._chunk_end_s is None:
            self.last_reason = 'no_chunk'
        elif self.remaining_s(now_s) < self.expected_delay_s + self.margin_s:
            self.last_reason = 'horizon'
        elif self.max_period_s > 0 and (since is None or since >= self.max_period_s):
            self.last_reason = 'max_period'
        else:
            self.last_reason = 'chunk_left'
            return False
        return True

    def on_request(self, now_s: float) -> None:
        """A request was submitted at `now_s`."""
        self._last_request_s = now_s

    def reset(self) -> None:
        """Forget the current chunk (e.g. after the clock jumped); delays are kept."""
        self._chunk_end_s = None
        self._last_request_s = None
