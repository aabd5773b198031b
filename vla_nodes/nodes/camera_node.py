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

Recovery: when frames stop, the node logs, reports and restarts the pipeline (after a USB
hardware reset of a live camera if `hardware_reset_on_recovery`), up to MAX_RESTARTS times in a
row. A recording that ends is a camera whose frames stopped: it goes through the same recovery
path, which replays it from its start (`restart_at_end: false` stops at its end instead).
"""

import collections
import threading
import time

from vla_nodes import contract, ros
from vla_nodes.camera.realsense import CameraError, RealSenseCamera, RealSenseConfig
from vla_nodes.nodes import run
from vla_nodes.nodes.camera_topics import camera_info, CameraPublishers
from vla_nodes.nodes.diagnostics import Diagnostics, ERROR, OK, WARN
from vla_nodes.nodes.parameters import declare_parameters

# Consecutive pipeline restarts without a frame before the node gives up (USB re-enumeration
# usually succeeds within one or two; more means a cable, power or firmware problem).
MAX_RESTARTS = 5
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
        self._hardware_reset = p.pop('hardware_reset_on_recovery')
        self._restart_at_end = p.pop('restart_at_end')
        config = RealSenseConfig(**{**p, 'serial_number': str(p['serial_number'])})
        self._topics = CameraPublishers(self, names)
        source = config.playback_file or config.serial_number or 'first RealSense found'
        self._diag = Diagnostics(self, hardware_id=source)
        # Every key set now: the capture thread then only replaces values the timer reads.
        self._diag.set(OK, 'starting', frame_rate_hz=0.0, frames=0, restarts=0,
                       hardware_resets=0)
        self._frame_times = collections.deque()  # monotonic s of the last second's frames
        self._frames = self._restarts = self._resets = 0
        self._camera = RealSenseCamera(
            config, clock_ns=lambda: self.get_clock().now().nanoseconds)
        try:
            self._camera.start()  # fail at launch, with what to do, rather than later
        except CameraError as err:
            self.get_logger().fatal(str(err))
            raise
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._capture_loop, name='camera_capture',
                                        daemon=True)
        self._thread.start()
        self.get_logger().info(
            f'streaming from {source}: colour on {names.color_topic}, '
            f'{"aligned " if config.align_depth else "unaligned (depth stream) "}depth on '
            f'{names.depth_topic}')

    def _capture_loop(self) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                frame = self._camera.read()
                if frame is not None:
                    self._publish(frame)
                    failures = 0
                    continue
                if self._stop.is_set():
                    break
                if self._camera.finished:
                    if not self._restart_at_end:
                        self._report_finished()
                        break
                    self._restart(WARN, 'recording ended')
                elif failures >= MAX_RESTARTS:
                    self._give_up()
                    break
                else:
                    failures += 1
                    timeout = self._camera.config.frame_timeout_s
                    self._restart(ERROR, f'no frames for {timeout:.1f} s',
                                  f' ({failures}/{MAX_RESTARTS})')
        finally:
            self._camera.stop()

    def _publish(self, frame) -> None:
        stamp = frame.stamp_ns
        self._topics.publish(frame.rgb, frame.depth, stamp, self._frame_id,
                             info_msg(frame.intrinsics, stamp, self._frame_id),
                             info_msg(frame.depth_intrinsics, stamp, self._frame_id))
        self._frames += 1
        now = time.monotonic()
        self._frame_times.append(now)
        while now - self._frame_times[0] > 1.0:
            self._frame_times.popleft()
        rate = (len(self._frame_times) - 1) / max(now - self._frame_times[0], 1e-9)
        self._diag.set(OK, f'streaming at {rate:.1f} Hz', frame_rate_hz=rate,
                       frames=self._frames, restarts=self._restarts)

    def _report_finished(self) -> None:
        self.get_logger().info(f'recording {self._camera.config.playback_file} finished after '
                               f'{self._frames} frames')
        self._diag.set(WARN, 'recording finished', frame_rate_hz=0.0)

    def _restart(self, level, reason: str, attempt: str = '') -> None:
        """The recovery path: report, stop, (reset a live camera,) settle, start again."""
        log = self.get_logger().error if level == ERROR else self.get_logger().warning
        log(f'{reason}: restarting the camera{attempt}')
        self._diag.set(level, reason, frame_rate_hz=0.0)
        self._camera.stop()
        if self._hardware_reset and not self._camera.config.playback_file:
            self.get_logger().warning('hardware reset of the camera (USB power cycle)')
            if self._camera.hardware_reset():
                self._resets += 1
            else:
                self.get_logger().error('hardware reset failed: the camera did not come back')
        if self._stop.wait(self._camera.config.frame_timeout_s):  # let the device settle
            return
        try:
            self._camera.start()
            self._restarts += 1
            self._diag.set(level, reason, restarts=self._restarts, hardware_resets=self._resets)
        except CameraError as err:
            self.get_logger().error(f'restart failed: {err}')

    def _give_up(self) -> None:
        reason = (f'no frames after {MAX_RESTARTS} restarts: check the cable (USB 3), power '
                  'and firmware, then restart the node')
        self.get_logger().error(reason)
        self._diag.set(ERROR, reason, frame_rate_hz=0.0)

    def destroy_node(self):
        self._stop.set()
        self._thread.join(timeout=self._camera.config.frame_timeout_s + 2.0)
        super().destroy_node()


def info_msg(intrinsics, stamp_ns: int, frame_id: str):
    """CameraInfo of one RealSense stream at `stamp_ns`."""
    return camera_info(intrinsics.k, intrinsics.d, intrinsics.width, intrinsics.height,
                       intrinsics.distortion_model, stamp_ns, frame_id)


def main(args=None):
    run(CameraNode, args)
