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

"""camera_node: a RealSense camera (or its `.db3` recording) on realsense-ros topic names.

Publishes colour (rgb8), depth aligned to colour (16UC1 millimetres, 0 = invalid), both
camera_infos with one header stamp per pair, and its health on `/diagnostics` (1 Hz, measured frame
rate; ERROR while frames do not arrive). It can stand in for the official `realsense2_camera`
node. Frames are read on a capture thread, never on the executor. Several cameras: one node
each, named as realsense-ros names them (`camera_namespace`, `camera_name`: topics under
/<camera_namespace>/<camera_name>/, frame <camera_name>_color_optical_frame; the contract's
cameras, e.g. the wrist camera, are `contract.CAMERAS`), each with its `serial_number`.

Recovery (`camera.capture.CameraCapture`): when frames stop, the node logs, reports and restarts
the pipeline (after a USB hardware reset of a live camera if `hardware_reset_on_recovery`), up to
MAX_RESTARTS times in a row. A recording that ends is a camera whose frames stopped: it goes
through the same recovery path, which replays it from its start (`restart_at_end: false` stops
at its end instead).
"""

from vla_nodes import contract, ros
from vla_nodes.camera.capture import CameraCapture
from vla_nodes.camera.realsense import CameraError, RealSenseCamera, RealSenseConfig
from vla_nodes.nodes import run
from vla_nodes.nodes.camera_topics import camera_info, CameraPublishers
from vla_nodes.nodes.diagnostics import Diagnostics, ERROR, OK, WARN
from vla_nodes.nodes.parameters import declare_parameters

LEVELS = {'ok': OK, 'warn': WARN, 'error': ERROR}
PARAMETERS = {
    # A numeric serial given on the command line is parsed as an int: dynamic typing takes both.
    'serial_number': '',
    'width': 640,
    'height': 480,
    'fps': 30,
    'align_depth': True,
    'playback_file': '',
    'frame_timeout_s': 1.0,
    # realsense-ros names: scene camera camera/camera, wrist camera camera/wrist_camera.
    'camera_namespace': contract.SCENE_CAMERA.camera_namespace,
    'camera_name': contract.SCENE_CAMERA.camera_name,
    'color_frame_id': '',  # '' = <camera_name>_color_optical_frame
    # Off by default: a reset power-cycles the camera, which other programs may be using.
    'hardware_reset_on_recovery': False,
    'restart_at_end': True,
}


class CameraNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('camera', **kwargs)
        p = declare_parameters(self, PARAMETERS, dynamic_typing=('serial_number',))
        names = contract.Camera('', p.pop('camera_name'), p.pop('camera_namespace'),
                                image_key='-', depth_key='-')
        self._frame_id = p.pop('color_frame_id') or names.frame
        hardware_reset = p.pop('hardware_reset_on_recovery')
        restart_at_end = p.pop('restart_at_end')
        config = RealSenseConfig(**{**p, 'serial_number': str(p['serial_number'])})
        self._topics = CameraPublishers(self, names)
        source = config.playback_file or config.serial_number or 'first RealSense found'
        self._diag = Diagnostics(self, hardware_id=source)
        # Every key set now: the capture thread then only replaces values the timer reads.
        self._diag.set(OK, 'starting', frame_rate_hz=0.0, frames=0, restarts=0,
                       hardware_resets=0)
        camera = RealSenseCamera(config, clock_ns=lambda: self.get_clock().now().nanoseconds)
        try:
            camera.start()  # fail at launch, with what to do, rather than later
        except CameraError as err:
            self.get_logger().fatal(str(err))
            raise
        self._capture = CameraCapture(
            camera, self._publish,
            lambda level, message, **values: self._diag.set(LEVELS[level], message, **values),
            log=self.get_logger(), restart_at_end=restart_at_end, hardware_reset=hardware_reset)
        self._capture.start()
        self.get_logger().info(
            f'streaming from {source}: colour on {names.color_topic}, '
            f'{"aligned " if config.align_depth else "unaligned (depth stream) "}depth on '
            f'{names.depth_topic}')

    def _publish(self, frame) -> None:
        stamp = frame.stamp_ns
        self._topics.publish(frame.rgb, frame.depth, stamp, self._frame_id,
                             info_msg(frame.intrinsics, stamp, self._frame_id),
                             info_msg(frame.depth_intrinsics, stamp, self._frame_id))

    def destroy_node(self):
        self._capture.stop()
        super().destroy_node()


def info_msg(intrinsics, stamp_ns: int, frame_id: str):
    """CameraInfo of one RealSense stream at `stamp_ns`."""
    return camera_info(intrinsics.k, intrinsics.d, intrinsics.width, intrinsics.height,
                       intrinsics.distortion_model, stamp_ns, frame_id)


def main(args=None):
    run(CameraNode, args)
