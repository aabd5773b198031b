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


"""LeRobot's depth convention: the info keys that mark a depth video and the codecs that store it.

'hevc12-log' is LeRobot's native depth video (millimetres log-quantised to 12-bit codes,
DepthQuantizer); 'ffv1-mm16' is lossless 16-bit millimetres, which LeRobot cannot read. The
writer (lerobot_v3.py) encodes with these, the reader (train/data.py) decodes with
`depth_decoder`.
"""

from dataclasses import dataclass
import math
from typing import Callable

import numpy as np

# Depth feature info, LeRobot's keys (lerobot/configs/video.py, datasets/dataset_metadata.py).
IS_DEPTH_MAP = 'is_depth_map'
LEGACY_IS_DEPTH_MAP = 'video.is_depth_map'  # what LeRobot migrates from, and older exports
DEPTH_UNIT = 'depth_unit'
DEPTH_UNIT_SCALE_M = {'mm': 0.001, 'm': 1.0}
DEPTH_HEVC12 = 'hevc12-log'  # LeRobot's native depth video; the default
DEPTH_FFV1_MM16 = 'ffv1-mm16'  # lossless 16-bit millimetres; LeRobot cannot read it
DEPTH_CODECS = (DEPTH_HEVC12, DEPTH_FFV1_MM16)
FFV1_NOTE = ('lossless 16-bit millimetres (FFV1 gray16le): vla-train reads it, LeRobot 0.6.1 '
             'cannot (Invalid vcodec ffv1); export with --depth-codec hevc12-log for LeRobot')


def is_depth_map(feature: dict) -> bool:
    """Whether a feature of info.json is a depth video (LeRobot's marker or its legacy one)."""
    info = feature.get('info') or {}
    return bool(info.get(IS_DEPTH_MAP) or info.get(LEGACY_IS_DEPTH_MAP))


@dataclass(frozen=True)
class DepthQuantizer:
    """LeRobot's depth quantisation: depth <-> 12-bit codes, log-spaced between two depths.

    The formula of lerobot/datasets/depth_utils.py (quantize_depth / dequantize_depth, 0.6.1):
    code = rint(4095 * (log(d + shift) - log(dmin + shift)) / (log(dmax + shift) -
    log(dmin + shift))) clipped to 0..4095, computed in millimetres for integer input; decoding
    inverts it and clips to [dmin, dmax]. The defaults are LeRobot's, which a dataset's info
    overrides with `video.depth_min` etc. (metres).
    """

    depth_min: float = 0.01
    depth_max: float = 10.0
    shift: float = 3.5
    use_log: bool = True
    QMAX = 4095
    FIELDS = ('depth_min', 'depth_max', 'shift', 'use_log')  # info keys: 'video.' + field

    @classmethod
    def from_info(cls, info: dict) -> 'DepthQuantizer':
        """The quantiser a depth feature's info describes (LeRobot's defaults where absent)."""
        given = {f: info['video.' + f] for f in cls.FIELDS if info.get('video.' + f) is not None}
        return cls(**given)

    def info(self) -> dict:
        return {'video.' + f: getattr(self, f) for f in self.FIELDS}

    def _norm(self, value: np.ndarray, scale: float) -> np.ndarray:
        values = (self.depth_min, self.depth_max, self.shift)
        lo, hi, shift = (np.float32(v * scale) for v in values)
        if self.use_log:
            log_lo, log_hi = math.log(float(lo + shift)), math.log(float(hi + shift))
            return (np.log(value + shift) - log_lo) / (log_hi - log_lo)
        return (value - lo) / (hi - lo)

    def encode_mm(self, mm: np.ndarray) -> np.ndarray:
        """uint16 millimetres -> uint16 codes 0..4095, through a table of all 65536 values."""
        if not hasattr(self, '_table'):  # the same float32 arithmetic as LeRobot, done once
            norm = self._norm(np.arange(65536, dtype=np.float32), 1000.0)
            table = np.rint(norm * self.QMAX).clip(0, self.QMAX).astype(np.uint16)
            object.__setattr__(self, '_table', table)
        return self._table[mm]

    def decode_m(self, codes: np.ndarray) -> np.ndarray:
        """Codes -> float32 metres, as LeRobot decodes them (clipped to [depth_min, depth_max])."""
        if self.use_log:
            log_lo = math.log(self.depth_min + self.shift)
            log_hi = math.log(self.depth_max + self.shift)
            m = np.exp(codes * np.float32((log_hi - log_lo) / self.QMAX) +
                       np.float32(log_lo)) - np.float32(self.shift)
        else:
            m = codes * np.float32((self.depth_max - self.depth_min) / self.QMAX) + np.float32(
                self.depth_min)
        return np.clip(m, self.depth_min, self.depth_max).astype(np.float32)


# What vla-export writes: LeRobot's quantiser, except that code 0 is exactly 0 mm (invalid).
EXPORT_DEPTH = DepthQuantizer(depth_min=0.0)


def depth_decoder(feature: dict) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    """How to read a depth video feature: (PyAV format for frame.to_ndarray, frame -> metres).

    gray16le videos (ffv1-mm16, and exports before LeRobot's convention) hold the depth unit
    directly; every other depth video holds LeRobot's 12-bit codes, as LeRobot itself assumes.
    Metres are float32 with NaN where invalid: the value 0, or code 0 (at or below depth_min,
    where LeRobot's writer puts a sensor's 0).
    """
    info = feature.get('info') or {}
    if info.get('video.pix_fmt') == 'gray16le':
        scale = DEPTH_UNIT_SCALE_M[info.get(DEPTH_UNIT, info.get('depth.unit', 'mm'))]
        return 'gray16le', lambda raw: np.where(raw > 0, raw.astype(np.float32) * scale, np.nan)
    quantizer = DepthQuantizer.from_info(info)
    return 'gray12le', lambda codes: np.where(codes > 0, quantizer.decode_m(codes), np.nan)
