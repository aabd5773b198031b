"""Time-indexed following of an action chunk (a JointTrajectory) at the driver's control rate.

Pure numpy. A chunk is a list of waypoints with times relative to its start (the observation
time the policy stamped it with). `target(now)` interpolates linearly between waypoints, holds the
last waypoint once the chunk is over, and reports how stale the command stream is, so the driver's
watchdog can hold position. A new chunk replaces the old one from its own start time on.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """Waypoints: times (N,) seconds from `start_ns`, positions (N, J) rad / m."""

    start_ns: int
    times: np.ndarray
    positions: np.ndarray

    def __post_init__(self):
        if self.positions.ndim != 2 or len(self.times) != len(self.positions):
            raise ValueError(f'chunk needs times (N,) and positions (N, J), got '
                             f'{self.times.shape} and {self.positions.shape}')
        if len(self.times) == 0:
            raise ValueError('chunk has no waypoints')
        if np.any(np.diff(self.times) <= 0):
            raise ValueError('chunk waypoint times must increase strictly')
        if not np.all(np.isfinite(self.positions)) or not np.all(np.isfinite(self.times)):
            raise ValueError('chunk holds NaN or Inf values')

    @property
    def end_ns(self) -> int:
        return self.start_ns + int(self.times[-1] * 1e9)


class TrajectoryFollower:
    """Holds the active chunk and answers `target(now_ns)`."""

    def __init__(self):
        self._chunk = None
        self._from = None  # position when the chunk arrived: interpolation before waypoint 0

    @property
    def active(self) -> bool:
        return self._chunk is not None

    def set_chunk(self, chunk: Chunk, current: np.ndarray) -> None:
        self._chunk, self._from = chunk, np.asarray(current, dtype=float).copy()

    def clear(self) -> None:
        self._chunk = None

    def target(self, now_ns: int) -> np.ndarray | None:
        """Commanded positions at `now_ns`, or None when there is no chunk."""
        chunk = self._chunk
        if chunk is None:
            return None
        t = (now_ns - chunk.start_ns) / 1e9
        times = np.concatenate([[0.0], chunk.times]) if chunk.times[0] > 0 else chunk.times
        points = (np.vstack([self._from, chunk.positions]) if chunk.times[0] > 0
                  else chunk.positions)
        t = float(np.clip(t, times[0], times[-1]))
        return np.array([np.interp(t, times, points[:, j]) for j in range(points.shape[1])])

    def seconds_past_end(self, now_ns: int) -> float:
        """How long ago the active chunk ran out (negative while it still runs; inf if none)."""
        if self._chunk is None:
            return float('inf')
        return (now_ns - self._chunk.end_ns) / 1e9
