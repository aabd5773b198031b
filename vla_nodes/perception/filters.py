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

"""Post-processing of metric depth (float32 metres, NaN = invalid): range clip, temporal, holes.

Pure numpy; `depth_node` applies `DepthFilter` to every frame it publishes, from the sensor or
from the monocular model. The order follows librealsense's recommended chain: range clip, then
temporal smoothing, then hole filling last, so filled pixels never feed the temporal history.
Hole filling and temporal smoothing are off by default: they invent or delay depth, and the
policy should see what the sensor measured unless the user asks otherwise.
"""

from dataclasses import dataclass

import numpy as np

HOLE_FILL_MODES = ('farthest', 'nearest')


@dataclass(frozen=True)
class FilterConfig:
    """What `DepthFilter` does to each frame.

    Attributes:
        min_m: nearer depth becomes NaN (m).
        max_m: farther depth becomes NaN (m).
        temporal: exponential smoothing over frames, per pixel.
        temporal_alpha: weight of the new frame in (0, 1]; librealsense's default is 0.4.
        temporal_delta_m: a pixel that moved more than this (m) restarts from the new value
            (an edge or a moving object is not smeared).
        hole_filling: fill NaN pixels from their valid 4-neighbours.
        hole_fill_max_px: largest hole radius filled (px); each pixel of radius costs one pass.
        hole_fill_mode: 'farthest' takes the largest neighbour depth (holes at object edges are
            usually background: librealsense's `farest_from_around`), 'nearest' the smallest.
    """

    min_m: float = 0.05
    max_m: float = 10.0
    temporal: bool = False
    temporal_alpha: float = 0.4
    temporal_delta_m: float = 0.02
    hole_filling: bool = False
    hole_fill_max_px: int = 4
    hole_fill_mode: str = 'farthest'

    def __post_init__(self):
        if not 0.0 <= self.min_m < self.max_m:
            raise ValueError(f'depth range needs 0 <= min_m < max_m, got [{self.min_m}, '
                             f'{self.max_m}] m: fix min_depth_m / max_depth_m')
        if not 0.0 < self.temporal_alpha <= 1.0:
            raise ValueError(f'temporal_alpha must be in (0, 1], got {self.temporal_alpha}')
        if self.temporal_delta_m <= 0.0:
            raise ValueError(f'temporal_delta_m must be > 0 m, got {self.temporal_delta_m}')
        if self.hole_fill_max_px < 0:
            raise ValueError(f'hole_fill_max_px must be >= 0, got {self.hole_fill_max_px}')
        if self.hole_fill_mode not in HOLE_FILL_MODES:
            raise ValueError(f'hole_fill_mode {self.hole_fill_mode!r}: use one of '
                             f'{HOLE_FILL_MODES}')


def clip_range(depth_m: np.ndarray, min_m: float, max_m: float) -> np.ndarray:
    """Return a copy of (H, W) float32 depth (m) with pixels outside [min_m, max_m] set to NaN."""
    out = np.array(depth_m, dtype=np.float32)
    with np.errstate(invalid='ignore'):
        out[~((out >= min_m) & (out <= max_m))] = np.nan
    return out


def fill_holes(depth_m: np.ndarray, max_px: int, mode: str = 'farthest') -> np.ndarray:
    """Fill NaN pixels from valid 4-neighbours, growing inwards one pixel per pass.

    Args:
        depth_m: (H, W) float32 metres, NaN = invalid.
        max_px: number of passes, i.e. the largest hole radius filled (px).
        mode: 'farthest' (max of the valid neighbours) or 'nearest' (min).

    Returns:
        (H, W) float32; holes wider than 2 * max_px and frames without any valid pixel keep
        their NaNs.
    """
    pick = np.fmax if mode == 'farthest' else np.fmin  # both ignore a NaN operand
    out = np.array(depth_m, dtype=np.float32)
    padded = np.full((out.shape[0] + 2, out.shape[1] + 2), np.nan, np.float32)
    for _ in range(max_px):
        holes = np.isnan(out)
        if not holes.any():
            break
        padded[1:-1, 1:-1] = out
        best = pick(pick(padded[:-2, 1:-1], padded[2:, 1:-1]),
                    pick(padded[1:-1, :-2], padded[1:-1, 2:]))
        fill = holes & ~np.isnan(best)
        if not fill.any():
            break
        out[fill] = best[fill]
    return out


class TemporalFilter:
    """Per-pixel exponential smoothing of depth, restarted where a pixel jumps.

    `out = alpha * new + (1 - alpha) * previous` where both are valid and within `delta_m`;
    elsewhere the new value (NaN stays NaN: no persistence of vanished measurements).
    """

    def __init__(self, alpha: float = 0.4, delta_m: float = 0.02):
        """Set the smoothing weight of the new frame (0, 1] and the restart threshold (m)."""
        self.alpha, self.delta_m = float(alpha), float(delta_m)
        self._previous = None

    def reset(self) -> None:
        """Forget the history; the next frame passes unchanged."""
        self._previous = None

    def apply(self, depth_m: np.ndarray) -> np.ndarray:
        """Smooth one (H, W) float32 frame (m); a change of size restarts the history."""
        new = np.asarray(depth_m, dtype=np.float32)
        prev = self._previous
        if prev is None or prev.shape != new.shape:
            out = new.copy()
        else:
            with np.errstate(invalid='ignore'):
                close = np.abs(new - prev) <= self.delta_m  # False where either is NaN
            out = np.where(close, self.alpha * new + (1.0 - self.alpha) * prev, new)
            out = out.astype(np.float32, copy=False)
        self._previous = out
        return out.copy()


class DepthFilter:
    """The configured chain (clip, temporal, holes) applied to each frame of one stream."""

    def __init__(self, config: FilterConfig = FilterConfig()):
        """Build the chain; `config` is validated by `FilterConfig` itself."""
        self.config = config
        self._temporal = TemporalFilter(config.temporal_alpha, config.temporal_delta_m)

    def reset(self) -> None:
        """Forget the temporal history (e.g. after the camera restarted)."""
        self._temporal.reset()

    def apply(self, depth_m: np.ndarray) -> np.ndarray:
        """(H, W) float32 metres, NaN = invalid -> the filtered (H, W) float32 metres."""
        c = self.config
        out = clip_range(depth_m, c.min_m, c.max_m)
        if c.temporal:
            out = self._temporal.apply(out)
        if c.hole_filling and c.hole_fill_max_px > 0:
            out = fill_holes(out, c.hole_fill_max_px, c.hole_fill_mode)
        return out
