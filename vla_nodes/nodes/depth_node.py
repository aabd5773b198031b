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

"""depth_node: metric depth (32FC1 m, NaN = invalid) on `/vla/depth/image`, aligned to colour.

`mode: sensor` (default) converts the camera's aligned depth (16UC1 mm). `mode: mono` has no
depth camera: a Depth Anything model (`mono_model_dir`, a local folder) predicts depth from the
colour image on a worker thread (frames arriving while it runs replace each other, never queue),
aligned to metric scale against the table plane (`mono_alignment: table`, through the
camera-to-base calibration) or sparse sensor depth (`sensor`; see `perception/mono.py`).
Both paths then clip to [min_depth_m, max_depth_m] and optionally smooth over time and fill
holes (`perception/filters.py`, off by default). Output keeps the input's header (stamp and
optical frame); the colour camera_info is passed through on `/vla/depth/camera_info`.

Frames with a wrong encoding, a size that disagrees with camera_info, no camera_info yet, no
valid pixel, or (mono) no usable alignment are rejected with a diagnostic; nothing that looks
valid is published from them.
"""

import copy
import time

import numpy as np

from vla_nodes import contract, ros
from vla_nodes.nodes import run
from vla_nodes.nodes.diagnostics import Diagnostics, ERROR, OK, WARN
from vla_nodes.nodes.parameters import declare_parameters
from vla_nodes.perception.depth import DepthRange, mm_to_metres
from vla_nodes.perception.filters import DepthFilter, FilterConfig
from vla_nodes.ros import image
from vla_nodes.ros.msgs import sensor_msgs, stamp_to_ns, tf2_msgs


# Parameters and their defaults; config/<robot>.yaml overrides them.
PARAMETERS = {
    'mode': 'sensor',                # sensor (16UC1 camera depth) | mono (model on colour)
    'min_depth_m': 0.05,             # range clip, always on: NaN outside
    'max_depth_m': 10.0,
    'temporal_filter': False,        # filters invent or delay depth: off unless asked for
    'temporal_alpha': 0.4,           # weight of the new frame (librealsense's default)
    'temporal_delta_m': 0.02,        # a pixel moving more than this restarts its average
    'hole_filling': False,
    'hole_fill_max_px': 4,           # largest hole radius filled (px)
    'hole_fill_mode': 'farthest',    # farthest | nearest neighbour depth
    'mono_model_dir': '',            # local Depth Anything folder; nothing is downloaded
    'mono_input_size': 518,          # px, shorter side fed to the model (its training size)
    'mono_alignment': 'table',       # table | sensor | none (metric models only)
    'mono_alignment_space': '',      # '' = the model's: relative -> inverse, metric -> depth
    'mono_fit_shift': True,          # fit a shift as well as a scale
    'reference_max_age_s': 0.5,      # sparse sensor depth older than this is not used
    'calibration_file': '',          # camera-to-base for 'table'; '' = listen to /tf_static
    'table_height_m': 0.0,           # table top z in base_link (m)
    'device': 'cpu',
    # QDepth-VLA tokenizer folder: its reconstruction goes on DEPTH_TOKENS_TOPIC (debug view).
    'depth_tokenizer': '',
    'torch_threads': 1,              # 1 on small CPUs (see policy_node)
}


class DepthNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('depth_node', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        self._mode = p['mode']
        if self._mode not in ('sensor', 'mono'):
            raise ValueError(f"depth_node mode {self._mode!r}: use 'sensor' or 'mono'")
        self._range = DepthRange(p['min_depth_m'], p['max_depth_m'])
        self._filter = DepthFilter(FilterConfig(
            min_m=p['min_depth_m'], max_m=p['max_depth_m'], temporal=p['temporal_filter'],
            temporal_alpha=p['temporal_alpha'], temporal_delta_m=p['temporal_delta_m'],
            hole_filling=p['hole_filling'], hole_fill_max_px=p['hole_fill_max_px'],
            hole_fill_mode=p['hole_fill_mode']))
        self._info = None
        self._published = self._rejected = 0
        self._pub = self.create_publisher(sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC, 10)
        self._info_pub = self.create_publisher(
            sensor_msgs.CameraInfo, contract.METRIC_DEPTH_TOPIC.rsplit('/', 1)[0]
            + '/camera_info', 10)
        self.create_subscription(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC,
                                 self._on_info, 10)
        self._diag = Diagnostics(self)
        self._tokens = None
        if p['depth_tokenizer']:
            self._start_tokens(p['depth_tokenizer'], p['device'])
        if self._mode == 'sensor':
            self.create_subscription(sensor_msgs.Image, contract.DEPTH_TOPIC, self._on_depth, 10)
        else:
            self._start_mono(p)

    def _on_info(self, msg) -> None:
        self._info = msg

    # --- sensor --------------------------------------------------------------------------------
    def _on_depth(self, msg) -> None:
        if self._check(msg, contract.CAMERA_DEPTH_ENCODING, 'expected 16UC1 millimetres '
                       '(realsense-ros aligned_depth_to_color)'):
            try:
                metres = mm_to_metres(image.from_msg(msg), self._range)
            except ValueError as err:
                return self._reject(ERROR, str(err))
            self._publish(self._filter.apply(metres), msg.header, self._info)

    def _check(self, msg, encodings, hint: str) -> bool:
        """Whether a frame can be processed; rejects it with a diagnostic otherwise."""
        if self._info is None:
            self._reject(WARN, f'no camera_info received yet on {contract.COLOR_INFO_TOPIC}; '
                         'is the camera running?')
        elif msg.encoding not in encodings:
            self._reject(ERROR, f'{msg.encoding!r} frame: {hint}')
        elif (msg.width, msg.height) != (self._info.width, self._info.height):
            self._reject(ERROR, f'image {msg.width}x{msg.height} does not match camera_info '
                         f'{self._info.width}x{self._info.height}: align depth to colour and '
                         "publish the colour stream's camera_info")
        else:
            return True
        return False

    def _publish(self, metres: np.ndarray, header, info, **values) -> None:
        valid = float(np.isfinite(metres).mean())
        if valid == 0.0:
            return self._reject(WARN, 'frame without a single valid depth pixel (all 0, NaN or '
                                f'outside [{self._range.min_m}, {self._range.max_m}] m): '
                                'not published')
        out = image.to_msg(metres, contract.METRIC_DEPTH_ENCODING)
        out.header = header
        info = copy.copy(info)  # messages are shared in-process: never mutate an input
        info.header = header
        self._pub.publish(out)
        self._info_pub.publish(info)
        if self._tokens is not None:
            self._tokens.submit((metres, header))
        self._published += 1
        self._diag.set(OK, f'publishing metric depth ({self._mode})', published=self._published,
                       rejected=self._rejected, valid_fraction=valid, **values)

    def _reject(self, level, reason: str) -> None:
        self._rejected += 1
        self.get_logger().warning(f'depth frame rejected: {reason}', throttle_duration_sec=2.0)
        self._diag.set(level, reason, published=self._published, rejected=self._rejected)

    # --- mono ----------------------------------------------------------------------------------
    def _start_mono(self, p: dict) -> None:
        import torch
        from vla_nodes.perception.calibrate import read_calibration
        from vla_nodes.perception.mono import MonoDepth, MonoDepthModel
        from vla_nodes.perception.worker import LatestWorker
        if not p['mono_model_dir']:
            raise ValueError('depth_node mode mono needs mono_model_dir: a local folder with a '
                             'Depth Anything checkpoint (config.json + model.safetensors)')
        if p['torch_threads'] > 0:
            torch.set_num_threads(p['torch_threads'])
        model = MonoDepthModel(p['mono_model_dir'], p['mono_input_size'], p['device'])
        self._mono = MonoDepth(model, p['mono_alignment'], p['mono_alignment_space'],
                               p['mono_fit_shift'], p['table_height_m'])
        self._camera_to_base = self._sensor = None
        self._max_age_ns = int(p['reference_max_age_s'] * 1e9)
        if p['mono_alignment'] == 'table' and p['calibration_file']:
            self._camera_to_base = read_calibration(p['calibration_file']).camera_to_base
        elif p['mono_alignment'] == 'table':
            self.create_subscription(tf2_msgs.TFMessage, contract.TF_STATIC_TOPIC,
                                     self._on_tf_static, ros.qos_profile_latched)
        if p['mono_alignment'] == 'sensor':
            self.create_subscription(sensor_msgs.Image, contract.DEPTH_TOPIC,
                                     self._on_sparse_depth, 10)
        self._worker = LatestWorker(self._run_mono, self._on_worker_error, 'mono_depth')
        self.create_subscription(sensor_msgs.Image, contract.COLOR_TOPIC, self._on_color, 2)
        self.get_logger().info(f'monocular depth: {model.kind} model from '
                               f"{p['mono_model_dir']}, alignment {p['mono_alignment']} "
                               f'({self._mono.space} space)')

    def _on_tf_static(self, msg) -> None:
        from vla_nodes.perception.calibrate import camera_to_base_from_tf
        pose = camera_to_base_from_tf(msg)
        if pose is not None:
            self._camera_to_base = pose

    def _on_sparse_depth(self, msg) -> None:
        if msg.encoding == contract.CAMERA_DEPTH_ENCODING:
            self._sensor = (stamp_to_ns(msg.header.stamp), msg)

    def _on_color(self, msg) -> None:
        if self._check(msg, ('rgb8', 'bgr8'), 'expected rgb8 or bgr8 colour'):
            self._worker.submit((msg, self._info, self._camera_to_base, self._sensor))

    def _run_mono(self, item) -> None:
        from vla_nodes.perception.align import AlignmentError
        msg, info, camera_to_base, sensor = item
        start = time.perf_counter()
        sensor_m = None
        if sensor is not None and abs(stamp_to_ns(msg.header.stamp) - sensor[0]) \
                <= self._max_age_ns:
            sensor_m = mm_to_metres(image.from_msg(sensor[1]), self._range)
        try:
            depth, fit = self._mono.estimate(image.from_msg(msg, 'rgb8'),
                                             np.reshape(info.k, (3, 3)), camera_to_base,
                                             sensor_m)
        except AlignmentError as err:
            return self._reject(WARN, f'monocular depth not aligned: {err}')
        values = {'mono_ms': (time.perf_counter() - start) * 1e3,
                  'dropped': self._worker.dropped}
        if fit is not None:
            values.update(scale=fit.scale, shift=fit.shift, fit_rms_m=fit.rms_m)
        self._publish(self._filter.apply(depth), msg.header, info, **values)

    # --- depth tokens (debug view) ----------------------------------------------------------
    def _start_tokens(self, directory: str, device: str) -> None:
        from vla_nodes.perception.depth_tokens import DepthTokenPreview
        from vla_nodes.perception.worker import LatestWorker
        self._preview = DepthTokenPreview(directory, device)
        self._tokens_pub = self.create_publisher(sensor_msgs.Image, contract.DEPTH_TOKENS_TOPIC,
                                                 2)
        self._tokens = LatestWorker(self._run_tokens, self._on_worker_error, 'depth_tokens')

    def _run_tokens(self, item) -> None:
        metres, header = item
        reconstruction, _codes = self._preview.reconstruct(metres)
        out = image.to_msg(reconstruction, contract.METRIC_DEPTH_ENCODING)
        out.header = header
        self._tokens_pub.publish(out)

    def _on_worker_error(self, err) -> None:
        self._reject(ERROR, f'depth worker failed: {err!r}')

    def destroy_node(self):
        if self._mode == 'mono':
            self._worker.close()
        if self._tokens is not None:
            self._tokens.close()
        super().destroy_node()


def main(args=None):
    run(DepthNode, args)
