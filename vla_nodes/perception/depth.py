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

"""Camera depth to metric depth: uint16 mm (0 = invalid) -> float32 metres (NaN = invalid).

Pure numpy; `depth_node` wraps it. Pixels outside [min_m, max_m] become NaN too, so a value the
sensor cannot measure never looks like a measurement downstream.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DepthRange:
    """Valid metric range in metres (D455: about 0.4 m to 6 m at its best accuracy)."""

    min_m: float = 0.05
    max_m: float = 10.0


def mm_to_metres(depth_mm: np.ndarray, valid: DepthRange = DepthRange()) -> np.ndarray:
    """(H, W) uint16 millimetres -> (H, W) float32 metres with NaN for invalid pixels."""
    if depth_mm.dtype != np.uint16 or depth_mm.ndim != 2:
        raise ValueError(f'expected a (H, W) uint16 depth image in millimetres, got '
                         f'{depth_mm.dtype} {depth_mm.shape}')
    # Division (not * 0.001) is correctly rounded: 1234 mm -> float32(1.234) exactly.
    metres = depth_mm.astype(np.float32) / np.float32(1000.0)
    metres[(depth_mm == 0) | (metres < valid.min_m) | (metres > valid.max_m)] = np.nan
    return metres


def metres_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) float32 metres (NaN/inf/<= 0 invalid) -> (H, W) uint16 millimetres, 0 = invalid."""
    finite = np.isfinite(depth_m) & (depth_m > 0)
    mm = np.zeros(depth_m.shape, np.uint16)
    mm[finite] = np.clip(np.rint(depth_m[finite] * 1000.0), 1, 65535).astype(np.uint16)
    return mm
