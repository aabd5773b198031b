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

"""depth_node's frames to metric depth: sensor millimetres or a monocular estimate, filtered.

Where it fits: `nodes/depth_node.py` converts messages to arrays, calls `MetricDepth` and
publishes; this class does the rest without ROS: it builds the monocular model from the node's
parameters, converts (`perception.depth`), estimates and aligns (`perception.mono`), clips and
filters (`perception.filters`), and refuses frames with `perception.frame_checks.FrameRejected`
when nothing valid would come out.
"""

import time

import numpy as np

from vla_nodes.perception.align import AlignmentError
from vla_nodes.perception.depth import DepthRange, mm_to_metres
from vla_nodes.perception.filters import DepthFilter, FilterConfig
from vla_nodes.perception.frame_checks import ERROR, FrameRejected, valid_fraction, WARN

MODES = ('sensor', 'mono')


class MetricDepth:
    """Metric depth (H, W) float32 metres, NaN = invalid, of one depth_node's frames."""

    def __init__(self, depth_range: DepthRange, depth_filter: DepthFilter, mono=None,
                 reference_max_age_s: float = 0.5):
        """Hold the parts of the pipeline.

        Args:
            depth_range: the valid range; depth outside it is NaN.
            depth_filter: the clip / temporal / hole-filling chain.
            mono: a `MonoDepth` (mono mode only).
            reference_max_age_s: the largest stamp difference (s) at which sparse sensor
                depth aligns a colour frame.
        """
        self.range, self.filter, self.mono = depth_range, depth_filter, mono
        self._max_age_ns = int(reference_max_age_s * 1e9)

    @classmethod
    def from_parameters(cls, p: dict) -> 'MetricDepth':
        """The pipeline of depth_node's parameters `p`; mono mode loads its model (torch).

        Raises:
            ValueError: an unknown mode, or mono mode without a model folder.
        """
        if p['mode'] not in MODES:
            raise ValueError(f"depth_node mode {p['mode']!r}: use 'sensor' or 'mono'")
        depth_filter = DepthFilter(FilterConfig(
            min_m=p['min_depth_m'], max_m=p['max_depth_m'], temporal=p['temporal_filter'],
            temporal_alpha=p['temporal_alpha'], temporal_delta_m=p['temporal_delta_m'],
            hole_filling=p['hole_filling'], hole_fill_max_px=p['hole_fill_max_px'],
            hole_fill_mode=p['hole_fill_mode']))
        depth_range = DepthRange(p['min_depth_m'], p['max_depth_m'])
        if p['mode'] == 'sensor':
            return cls(depth_range, depth_filter)
        import torch  # mono only: sensor mode needs no torch
        from vla_nodes.perception.mono import MonoDepth, MonoDepthModel
        if not p['mono_model_dir']:
            raise ValueError('depth_node mode mono needs mono_model_dir: a local folder with a '
                             'Depth Anything checkpoint (config.json + model.safetensors)')
        if p['torch_threads'] > 0:
            torch.set_num_threads(p['torch_threads'])
        model = MonoDepthModel(p['mono_model_dir'], p['mono_input_size'], p['device'])
        mono = MonoDepth(model, p['mono_alignment'], p['mono_alignment_space'],
                         p['mono_fit_shift'], p['table_height_m'])
        return cls(depth_range, depth_filter, mono, p['reference_max_age_s'])

    def from_sensor(self, depth_mm: np.ndarray) -> np.ndarray:
        """Sensor depth (H, W) uint16 mm -> filtered metres; FrameRejected (error) if malformed."""
        try:
            metres = mm_to_metres(depth_mm, self.range)
        except ValueError as err:
            raise FrameRejected(ERROR, str(err)) from None
        return self.filter.apply(metres)

    def reference_is_fresh(self, stamp_ns: int, reference_stamp_ns: int) -> bool:
        """Whether sparse sensor depth stamped `reference_stamp_ns` may align frame `stamp_ns`."""
        return abs(stamp_ns - reference_stamp_ns) <= self._max_age_ns

    def from_colour(self, rgb: np.ndarray, k_matrix, camera_to_base=None,
                    sensor_mm=None) -> tuple:
        """(filtered metres, diagnostics values) of the monocular estimate of `rgb`.

        Args:
            rgb: (H, W, 3) uint8 colour.
            k_matrix: (3, 3) intrinsics.
            camera_to_base: (4, 4) for table alignment, or None.
            sensor_mm: fresh (H, W) uint16 sensor depth for sensor alignment, or None.

        Raises:
            FrameRejected: (warn) no usable alignment.
        """
        start = time.perf_counter()
        sensor_m = None if sensor_mm is None else mm_to_metres(sensor_mm, self.range)
        try:
            depth, fit = self.mono.estimate(rgb, k_matrix, camera_to_base, sensor_m)
        except AlignmentError as err:
            raise FrameRejected(WARN, f'monocular depth not aligned: {err}') from None
        values = {'mono_ms': (time.perf_counter() - start) * 1e3}
        if fit is not None:
            values.update(scale=fit.scale, shift=fit.shift, fit_rms_m=fit.rms_m)
        return self.filter.apply(depth), values

    def valid_fraction(self, metres: np.ndarray) -> float:
        """The fraction of valid pixels; FrameRejected (warn) when none is: not published."""
        return valid_fraction(metres, 'frame without a single valid depth pixel (all 0, NaN or '
                              f'outside [{self.range.min_m}, {self.range.max_m}] m): '
                              'not published')
