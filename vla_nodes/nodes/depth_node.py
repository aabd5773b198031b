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
holes (`perception/filters.py`, off by default). While nobody subscribes to the metric depth
(and no depth tokenizer is set) frames are checked but not converted, as image_pipeline's lazy
nodes do. Output keeps the input's header (stamp and
optical frame); the colour camera_info is passed through on `/vla/depth/camera_info`.

Frames with a wrong encoding, a size that disagrees with camera_info, no camera_info yet, no
valid pixel, or (mono) no usable alignment are rejected with a diagnostic; nothing that looks
valid is published from them.
"""

import copy

import numpy as np

from vla_nodes import contract, ros
from vla_nodes.nodes import run
from vla_nodes.nodes.calibration import CameraToBase
from vla_nodes.nodes.diagnostics import Diagnostics, ERROR, OK, WARN
from vla_nodes.nodes.parameters import declare_parameters
from vla_nodes.perception.frame_checks import check_frame, FrameRejected
from vla_nodes.perception.metric_depth import MetricDepth
from vla_nodes.ros import image
from vla_nodes.ros.msgs import sensor_msgs, stamp_to_ns

LEVELS = {'warn': WARN, 'error': ERROR}
SENSOR_HINT = 'expected 16UC1 millimetres (realsense-ros aligned_depth_to_color)'
COLOUR_HINT = 'expected rgb8 or bgr8 colour'


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
        self._depth = MetricDepth.from_parameters(p)
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

    def _check(self, msg, encodings, hint: str) -> None:
        """Raises FrameRejected unless the frame matches the colour camera_info."""
        info = None if self._info is None else (self._info.width, self._info.height)
        check_frame(msg.encoding, (msg.width, msg.height), info, encodings, hint)

    # --- sensor --------------------------------------------------------------------------------
    def _wanted(self) -> bool:
        """Whether anyone reads the metric depth (a lazy publisher, as image_pipeline's nodes).

        vla-eval of a policy that reads no depth has no reader once pose_node needs none.
        """
        return self._tokens is not None or self.count_subscribers(contract.METRIC_DEPTH_TOPIC) > 0

    def _on_depth(self, msg) -> None:
        try:
            self._check(msg, contract.CAMERA_DEPTH_ENCODING, SENSOR_HINT)
            if not self._wanted():  # still checked: a wrong stream shows in /diagnostics
                return
            self._publish(self._depth.from_sensor(image.from_msg(msg)), msg.header, self._info)
        except FrameRejected as err:
            self._reject(LEVELS[err.level], err.reason)

    def _publish(self, metres: np.ndarray, header, info, **values) -> None:
        valid = self._depth.valid_fraction(metres)  # FrameRejected: nothing to publish
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
        from vla_nodes.perception.worker import LatestWorker
        self._sensor = None
        self._camera_to_base = (CameraToBase(self, p['calibration_file'])
                                if p['mono_alignment'] == 'table' else None)
        if p['mono_alignment'] == 'sensor':
            self.create_subscription(sensor_msgs.Image, contract.DEPTH_TOPIC,
                                     self._on_sparse_depth, 10)
        self._worker = LatestWorker(self._run_mono, self._on_worker_error, 'mono_depth')
        self.create_subscription(sensor_msgs.Image, contract.COLOR_TOPIC, self._on_color, 2)
        self.get_logger().info(f'monocular depth: {self._depth.mono.model.kind} model from '
                               f"{p['mono_model_dir']}, alignment {p['mono_alignment']} "
                               f'({self._depth.mono.space} space)')

    def _on_sparse_depth(self, msg) -> None:
        if msg.encoding == contract.CAMERA_DEPTH_ENCODING:
            self._sensor = (stamp_to_ns(msg.header.stamp), msg)

    def _on_color(self, msg) -> None:
        try:
            self._check(msg, ('rgb8', 'bgr8'), COLOUR_HINT)
        except FrameRejected as err:
            return self._reject(LEVELS[err.level], err.reason)
        if not self._wanted():
            return
        self._worker.submit((msg, self._info, self._camera_to_base and self._camera_to_base.pose,
                             self._sensor))

    def _run_mono(self, item) -> None:
        msg, info, camera_to_base, sensor = item
        fresh = sensor is not None and self._depth.reference_is_fresh(
            stamp_to_ns(msg.header.stamp), sensor[0])
        try:
            depth, values = self._depth.from_colour(
                image.from_msg(msg, 'rgb8'), np.reshape(info.k, (3, 3)), camera_to_base,
                image.from_msg(sensor[1]) if fresh else None)
            self._publish(depth, msg.header, info, dropped=self._worker.dropped, **values)
        except FrameRejected as err:
            self._reject(LEVELS[err.level], err.reason)

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
