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

"""As-of alignment of timestamped streams on a fixed-rate grid: the pure core of `vla-export`.

Where it fits: `record/export.py` reads every bag topic it exports into a (stamps, values) pair
and asks this module, per episode, for the sample grid (`sample_times`, phase-locked to the camera
with `aligned_start`), the message each stream contributes at each sample (`as_of`) and the sync
figures (`skew_summary`). Everything here is numpy on integer nanoseconds; no ROS, no files.

As-of rule (no future leakage): at sample time t a stream contributes its latest message with
stamp <= t, never a newer one, even when a newer one is closer. The pick is *missing* when the
stream has no message at or before t, and *stale* when the picked message is older than the
freshness window (t - stamp > max_age). Skew is t - stamp of the pick (>= 0 by construction).

Which timestamp a stream uses is the caller's choice; the exporter uses the header stamp where the
message has a header (camera images and camera_info, joint states, poses): the time the data was
measured, so a camera whose frames reach the recorder 30 ms late is still aligned by its exposure
time. Messages without a header (the instruction, a std_msgs/String) use the bag's receive (log)
time, as does a stream whose header stamps are all zero (a driver that never sets them).
"""

from dataclasses import dataclass
import math
from typing import Mapping

import numpy as np

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class AsOf:
    """Which message of one stream each sample uses (`as_of`'s result).

    Attributes:
        index: (N,) int64, index into the stream's messages (their order as given, not sorted),
            -1 where no message has a stamp <= the sample time.
        age_ns: (N,) int64 ns, sample time - stamp of the picked message; -1 where missing.
        max_age_ns: freshness window in ns; None means a pick is never stale.
    """

    index: np.ndarray
    age_ns: np.ndarray
    max_age_ns: int | None

    @property
    def missing(self) -> np.ndarray:
        """(N,) bool: no message at or before the sample time."""
        return self.index < 0

    @property
    def stale(self) -> np.ndarray:
        """(N,) bool: a message was picked but it is older than the freshness window."""
        if self.max_age_ns is None:
            return np.zeros(self.index.shape, bool)
        return (self.index >= 0) & (self.age_ns > self.max_age_ns)

    @property
    def fresh(self) -> np.ndarray:
        """(N,) bool: a message was picked and it is within the freshness window."""
        return ~self.missing & ~self.stale

    def take(self, values: np.ndarray, fill: float = np.nan) -> np.ndarray:
        """values[index] per sample; rows where the pick is missing are `fill`.

        Args:
            values: (M, ...) one row per message, in the order the stamps were given.
            fill: value of missing rows (stale rows keep their, old, value).

        Returns:
            (N, ...) array, float when a fill was needed.
        """
        values = np.asarray(values)
        out = values[np.maximum(self.index, 0)]
        if self.missing.any():
            out = out.astype(np.result_type(out.dtype, np.asarray(fill).dtype), copy=True)
            out[self.missing] = fill
        return out


def sample_times(start_ns: int, end_ns: int, fps: float) -> np.ndarray:
    """The fixed-rate grid start, start + 1/fps, ... up to end (inclusive), in integer ns.

    The k-th time is start + round(k * 1e9 / fps), so the grid never drifts, whatever the rate.

    Raises:
        ValueError: fps is not positive, or end is before start.
    """
    if not fps > 0:
        raise ValueError(f'fps must be positive, got {fps}')
    if end_ns < start_ns:
        raise ValueError(f'the span ends before it starts ({end_ns} ns < {start_ns} ns): the '
                         f'streams do not overlap in time')
    count = int(math.floor((end_ns - start_ns) * fps / NS_PER_S + 1e-9)) + 1
    return int(start_ns) + np.round(np.arange(count) * (NS_PER_S / fps)).astype(np.int64)


def aligned_start(start_ns: int, fps: float, reference_ns: np.ndarray) -> int:
    """The first grid time >= start_ns that lies half a period after the reference's frames.

    A camera at the export rate stamps frames with some jitter around a phase. Sampling exactly at
    that phase would pick the previous frame whenever a frame is stamped late, duplicating one
    frame and skipping the next; sampling half a period after it leaves a margin of 1/(2 fps) for
    jitter either way, so each frame is used once. The phase is the median stamp residual modulo
    the period, which one late first frame does not move.

    Args:
        start_ns: earliest allowed start (e.g. when the last stream has started), ns.
        fps: grid rate, Hz.
        reference_ns: (M,) stamps of the reference stream (the camera), ns; may be unsorted.

    Returns:
        The grid's first sample time, ns (start_ns itself when the reference is empty).
    """
    reference = np.sort(np.asarray(reference_ns, np.int64))
    if reference.size == 0:
        return int(start_ns)
    period = NS_PER_S / fps
    offsets = (reference - reference[0]).astype(np.float64)
    residual = np.mod(offsets + period / 2, period) - period / 2  # in [-P/2, P/2)
    first = float(np.median(residual)) + period / 2                # relative to reference[0]
    steps = math.ceil((int(start_ns) - int(reference[0]) - first) / period)
    return int(reference[0]) + int(round(first + steps * period))


def as_of(stamps_ns: np.ndarray, times_ns: np.ndarray, max_age_ns: int | None = None) -> AsOf:
    """For each sample time, the latest message with stamp <= that time.

    Args:
        stamps_ns: (M,) message stamps, ns, in any order (ties: the later one given wins).
        times_ns: (N,) sample times, ns.
        max_age_ns: freshness window, ns; None for no window (e.g. the task text).

    Returns:
        AsOf with an index into stamps_ns per sample (-1 where missing).
    """
    stamps = np.asarray(stamps_ns, np.int64).reshape(-1)
    times = np.asarray(times_ns, np.int64).reshape(-1)
    order = np.argsort(stamps, kind='stable')
    ordered = stamps[order]
    pos = np.searchsorted(ordered, times, side='right') - 1  # last stamp <= t
    found = pos >= 0
    index = np.where(found, order[np.maximum(pos, 0)] if order.size else 0, -1).astype(np.int64)
    picked = ordered[np.maximum(pos, 0)] if ordered.size else np.zeros_like(times)
    age = np.where(found, times - picked, -1).astype(np.int64)
    return AsOf(index, age, None if max_age_ns is None else int(max_age_ns))


def overlap(stamps_by_stream: Mapping[str, np.ndarray]) -> tuple[int, int]:
    """(start, end) ns of the span in which every stream has begun and none has ended.

    Raises:
        ValueError: a stream has no messages, or the streams do not overlap; names them.
    """
    empty = [name for name, stamps in stamps_by_stream.items() if len(stamps) == 0]
    if empty:
        raise ValueError(f'no messages on {", ".join(empty)}')
    start = max(int(np.min(s)) for s in stamps_by_stream.values())
    end = min(int(np.max(s)) for s in stamps_by_stream.values())
    if end < start:
        first_end = min(stamps_by_stream, key=lambda n: int(np.max(stamps_by_stream[n])))
        last_start = max(stamps_by_stream, key=lambda n: int(np.min(stamps_by_stream[n])))
        raise ValueError(f'the streams do not overlap in time: {first_end} ends before '
                         f'{last_start} starts')
    return start, end


def skew_summary(picks: AsOf) -> dict:
    """Sync figures of one stream: sample counts and the skew distribution.

    Args:
        picks: the stream's AsOf (several episodes: concatenate their arrays into one AsOf).

    Returns:
        {'samples', 'missing', 'stale', 'skew_p50_ms', 'skew_p95_ms', 'skew_max_ms'}; the skews
        are over the samples that picked a message (None when there are none).
    """
    ages_ms = picks.age_ns[~picks.missing] / 1e6
    figures = [float(np.percentile(ages_ms, q)) if ages_ms.size else None for q in (50, 95)]
    return {'samples': int(picks.index.size), 'missing': int(picks.missing.sum()),
            'stale': int(picks.stale.sum()), 'skew_p50_ms': figures[0],
            'skew_p95_ms': figures[1],
            'skew_max_ms': float(ages_ms.max()) if ages_ms.size else None}
