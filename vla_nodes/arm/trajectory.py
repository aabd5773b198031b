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

"""Time-indexed following of action chunks at the driver's control rate, with blended seams.

Where it fits: `arm_driver_node` hands every `/vla/action_chunk` (a JointTrajectory stamped with
the observation time) to `TrajectoryFollower.set_chunk()` and asks `target(now)` once per
control tick; the result then goes through `arm.safety`. Pure numpy, no ROS.

A chunk is a list of waypoints with times relative to its start, the observation time the policy
stamped it with. It arrives after the inference delay, so its first waypoints may already be in
the past. Between waypoints the target is interpolated linearly; past the last one it holds.

Seams. A hard switch to the new chunk jumps by the inconsistency between two chunks (a new
observation, a different sample of the model): a step of a few centiradians in one 5 ms tick is
an acceleration of thousands of rad/s^2, the jerk users see at chunk boundaries. Instead the old
command trajectory keeps running through the inference delay (it is time-indexed, so it is
already where the arm should be) and is cross-faded into the new chunk over `blend_s` seconds
from the moment the new chunk arrives, with a smoothstep weight w(s) = 3s^2 - 2s^3 (w' = 0 at
both ends: no velocity step). The added acceleration is at most 6 |offset| / blend_s^2 plus
3 |velocity difference| / blend_s, e.g. 7.5 rad/s^2 for a 0.05 rad offset over 0.2 s. This is
real-time chunking without inpainting: the old chunk is executed for the delay, then blended.
"""

import bisect
from dataclasses import dataclass
from typing import Optional

import numpy as np

# Step (s) at which the fading-out trajectory is sampled when a new chunk arrives (bounded
# memory however fast chunks come); linear interpolation between samples of a smooth curve
# errs by < accel * step^2 / 8, 5e-6 rad for 10 rad/s^2.
BAKE_STEP_S = 0.002


@dataclass(frozen=True)
class Chunk:
    """Waypoints: times (N,) in seconds from `start_ns`, positions (N, J) in rad / m."""

    start_ns: int
    times: np.ndarray
    positions: np.ndarray

    def __post_init__(self):
        """Refuse chunks that cannot be followed, saying what is wrong."""
        if self.positions.ndim != 2 or len(self.times) != len(self.positions):
            raise ValueError(f'chunk needs times (N,) and positions (N, J), got '
                             f'{self.times.shape} and {self.positions.shape}')
        if len(self.times) == 0:
            raise ValueError('chunk has no waypoints')
        if np.any(np.diff(self.times) <= 0):
            raise ValueError('chunk waypoint times must increase strictly')
        if not np.all(np.isfinite(self.positions)) or not np.all(np.isfinite(self.times)):
            raise ValueError('chunk holds NaN or Inf values')
        if self.times[0] < 0:
            raise ValueError(f'chunk waypoint times must be >= 0 s, got {self.times[0]}')

    @property
    def end_ns(self) -> int:
        """Absolute time of the last waypoint (ns)."""
        return self.start_ns + int(round(self.times[-1] * 1e9))

    def sample(self, times_ns) -> np.ndarray:
        """Positions (M, J) at absolute times (M,) ns: linear between waypoints, held outside."""
        t = (np.asarray(times_ns, dtype=np.float64) - self.start_ns) / 1e9
        times, points = self.times, self.positions
        if len(times) == 1:
            return np.repeat(points, len(t), axis=0)
        t = np.clip(t, times[0], times[-1])
        i = np.clip(np.searchsorted(times, t, side='right') - 1, 0, len(times) - 2)
        alpha = ((t - times[i]) / (times[i + 1] - times[i]))[:, None]
        # Written so that alpha 0 and 1 give the waypoints bit-exactly.
        return points[i] * (1.0 - alpha) + points[i + 1] * alpha

    def at(self, now_ns: int) -> np.ndarray:
        """Positions (J,) at one absolute time (ns); `sample()` for one time, 10x faster."""
        t, times, points = (now_ns - self.start_ns) / 1e9, self.times, self.positions
        if t <= times[0]:
            return points[0].copy()
        if t >= times[-1]:
            return points[-1].copy()
        i = bisect.bisect_right(times, t) - 1
        alpha = (t - times[i]) / (times[i + 1] - times[i])
        return points[i] * (1.0 - alpha) + points[i + 1] * alpha

    def starting_from(self, anchor) -> 'Chunk':
        """This chunk with `anchor` (J,) prepended at its start time, if waypoint 0 is later."""
        if self.times[0] == 0:
            return self
        anchor = np.asarray(anchor, dtype=np.float64).reshape(1, -1)
        return Chunk(self.start_ns, np.concatenate([[0.0], self.times]),
                     np.vstack([anchor, self.positions]))


def smoothstep(s) -> np.ndarray:
    """Blend weight 3s^2 - 2s^3 of s clipped to [0, 1]: 0 -> 1 with zero slope at both ends."""
    s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


class TrajectoryFollower:
    """Holds the command trajectory and answers `target(now_ns)`.

    Typical use, once per control tick: `follower.target(now)`; on each chunk:
    `follower.set_chunk(chunk, current=last_command, now_ns=now)`.
    """

    def __init__(self, blend_s: float = 0.0):
        """Start with no trajectory.

        Args:
            blend_s: cross-fade duration (s) from the old command trajectory to a new chunk;
                0 switches hard at the new chunk's start (the old behaviour, for comparison).
        """
        if blend_s < 0:
            raise ValueError(f'blend_s must be >= 0 s, got {blend_s}')
        self.blend_s = blend_s
        self._chunk: Optional[Chunk] = None
        self._fade_from: Optional[Chunk] = None  # the old trajectory, sampled over the fade
        self._fade_start_ns = 0
        self._newest_start_ns = None  # observation time of the newest chunk accepted
        self._episode_start_ns = None  # chunks observed before it are refused

    @property
    def active(self) -> bool:
        """Whether there is a trajectory to follow."""
        return self._chunk is not None

    @property
    def chunk(self) -> Optional[Chunk]:
        """The chunk being followed (with its anchor point), or None."""
        return self._chunk

    def set_chunk(self, chunk: Chunk, current, now_ns: Optional[int] = None) -> None:
        """Follow `chunk` from now on, blended in from the current command trajectory.

        Args:
            chunk: the new chunk; its start is the observation time.
            current: (J,) the last command (or the measured position); the trajectory to blend
                from when none is active.
            now_ns: arrival time (ns), where the cross-fade starts; None = the chunk's start.

        Raises:
            ValueError: the chunk was observed before the newest one accepted (out of order)
                or before the episode start, or its joint count differs from `current`.
        """
        current = np.asarray(current, dtype=np.float64).reshape(-1)
        if chunk.positions.shape[1] != current.shape[0]:
            raise ValueError(f'chunk has {chunk.positions.shape[1]} joints, the arm '
                             f'{current.shape[0]}')
        episode = self._episode_start_ns
        if episode is not None and chunk.start_ns < episode:
            raise ValueError(f'chunk observed {(episode - chunk.start_ns) / 1e9:.3f} s before '
                             'the episode started: from the previous episode, ignored')
        newest = self._newest_start_ns
        if newest is not None and chunk.start_ns < newest:
            raise ValueError(f'chunk observed {(newest - chunk.start_ns) / 1e9:.3f} s before '
                             'the newest one: out of order, ignored')
        arrival = chunk.start_ns if now_ns is None else int(now_ns)
        if self._chunk is None:
            anchor = current
        else:
            # Where the command was at the observation: the new chunk starts from there.
            anchor = self.positions([chunk.start_ns])[0]
        fade_from = None
        if self.blend_s > 0:
            times_ns = arrival + np.arange(0.0, self.blend_s + BAKE_STEP_S, BAKE_STEP_S) * 1e9
            old = (np.tile(current, (len(times_ns), 1)) if self._chunk is None
                   else self.positions(times_ns))
            fade_from = Chunk(arrival, (times_ns - arrival) / 1e9, old)
        self._chunk, self._fade_from = chunk.starting_from(anchor), fade_from
        # A stamp ahead of the arrival (clock skew) must not make fresher chunks "out of order".
        self._fade_start_ns, self._newest_start_ns = arrival, min(chunk.start_ns, arrival)

    def set_target(self, q, now_ns: int) -> None:
        """Go to one target (J,) from `now_ns` on, without a fade: teleop and tests.

        The safety filter's velocity limit paces the move; the target counts as a chunk that
        ends at `now_ns` for the stale-command watchdog.

        Raises:
            ValueError: the target is not finite (the current trajectory is kept).
        """
        q = np.asarray(q, dtype=np.float64).reshape(1, -1)
        if not np.all(np.isfinite(q)):
            raise ValueError(f'target holds NaN or Inf: {q[0].tolist()}')
        self._chunk = Chunk(int(now_ns), np.zeros(1), q)
        self._fade_from = None

    def start_episode(self, start_ns: int) -> None:
        """Start a new episode at `start_ns`.

        Forget the trajectory, its blend and the order of earlier chunks, and refuse every chunk
        observed before `start_ns` from now on.
        """
        self.clear()
        self._newest_start_ns = None
        self._episode_start_ns = int(start_ns)

    def clear(self) -> None:
        """Drop the trajectory: `target()` returns None until the next chunk."""
        self._chunk = self._fade_from = None

    def positions(self, times_ns) -> np.ndarray:
        """The commanded trajectory (M, J) at absolute times (M,) ns; it must be active."""
        times_ns = np.asarray(times_ns, dtype=np.float64)
        q = self._chunk.sample(times_ns)
        if self._fade_from is None:
            return q
        w = smoothstep((times_ns - self._fade_start_ns) / (self.blend_s * 1e9))[:, None]
        if np.all(w == 1.0):
            return q
        return self._fade_from.sample(times_ns) * (1.0 - w) + q * w

    def target(self, now_ns: int) -> Optional[np.ndarray]:
        """Commanded positions (J,) at `now_ns`, or None when there is no trajectory."""
        if self._chunk is None:
            return None
        q = self._chunk.at(now_ns)
        if self._fade_from is None:
            return q
        w = float(smoothstep((now_ns - self._fade_start_ns) / (self.blend_s * 1e9)))
        return q if w == 1.0 else self._fade_from.at(now_ns) * (1.0 - w) + q * w

    def seconds_past_end(self, now_ns: int) -> float:
        """How long ago the active chunk ran out (negative while it still runs; inf if none)."""
        if self._chunk is None:
            return float('inf')
        return (now_ns - self._chunk.end_ns) / 1e9
