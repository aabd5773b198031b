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

"""pose_node: end-effector pose from /joint_states and object poses from colour + metric depth.

- `/vla/ee_pose` (PoseStamped, base_link, metres + quaternion): forward kinematics of the Piper
  (`arm/kinematics.py`, equal to piper_sdk's). The pose is the flange (link6, the SDK's end pose,
  `SimWorld.ee_pose`); `tcp_offset_m` moves it along the flange z axis (0.135 m: the simulated
  gripper's grasp centre, `SimWorld.tcp_pose`). Published in the joint-state callback, so at the
  joint-state rate and stamped with the joint state's time.
- `/vla/objects` (vision_msgs/Detection3DArray, camera optical frame, the colour frame's
  header): per object its category (`class_id`), score, SE(3) pose and 3D box size, from the
  colour image and `/vla/depth/image` with the same stamp (`perception/objects.py`). The
  camera-to-base transform comes from `calibration_file` or, when that is empty, /tf_static.
  Detection runs on a worker thread on the newest frame pair, so the ee pose never waits on it.
  While nobody subscribes to `/vla/objects` nothing is detected and metric depth is not
  subscribed to (checked at each colour frame), so depth_node need not convert it.
  With `synchronous_detection` it runs in the frame callback instead (lock-step simulation).
  Frames that cannot give poses (no camera_info or transform yet, wrong encoding or size, depth
  without a valid pixel) publish nothing and are reported in /diagnostics.
"""

import collections

import numpy as np

from vla_nodes import contract, ros
from vla_nodes.arm.kinematics import forward_kinematics, pose_to_xyz_quat
from vla_nodes.nodes import run
from vla_nodes.nodes.calibration import CameraToBase
from vla_nodes.nodes.diagnostics import Diagnostics, ERROR, OK, WARN
from vla_nodes.nodes.parameters import declare_parameters
from vla_nodes.perception.frame_checks import check_pair, FrameRejected, valid_fraction
from vla_nodes.perception.frame_pairs import FramePairs
from vla_nodes.ros import image
from vla_nodes.ros.convert import joint_positions, pose_msg
from vla_nodes.ros.msgs import geometry_msgs, sensor_msgs, stamp_to_ns, vision_msgs

# Parameters and their defaults; config/<robot>.yaml overrides them.
PARAMETERS = {
    'joint_prefix': '',
    'dh_is_offset': 1,               # piper_sdk's DH variant (1: current firmware)
    'tcp_offset_m': 0.0,             # 0: the flange, as the SDK reports its end pose
    'detect_objects': True,
    'calibration_file': '',          # camera-to-base YAML; '' = listen to /tf_static
    'table_height_m': 0.0,           # table top z in base_link (m): objects rest on it
    'min_object_pixels': 20,         # smaller colour blobs are ignored (px)
    # true: detect inside the frame callback (lock-step simulation waits for it: exact replays)
    'synchronous_detection': False,
}
LEVELS = {'warn': WARN, 'error': ERROR}


class PoseNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('pose_node', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        self._joints = [p['joint_prefix'] + j for j in contract.ARM_JOINTS]
        self._dh_is_offset, self._tcp_offset_m = p['dh_is_offset'], p['tcp_offset_m']
        self._pub = self.create_publisher(geometry_msgs.PoseStamped, contract.EE_POSE_TOPIC, 10)
        self.create_subscription(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC,
                                 self._on_joints, 10)
        self._worker = None
        if p['detect_objects']:
            self._start_objects(p)

    def _wanted(self, topic: str) -> bool:
        """Whether anyone subscribes to `topic` (a lazy publisher, as image_transport does).

        In a graph without consumers (vla-eval of a policy that reads neither) the forward
        kinematics at 100 Hz and the detector at the camera rate were a fifth of the CPU.
        """
        return self.count_subscribers(topic) > 0

    # --- end effector --------------------------------------------------------------------------
    def _on_joints(self, msg) -> None:
        if not self._wanted(contract.EE_POSE_TOPIC):
            return
        try:
            q = joint_positions(msg, self._joints)
        except ValueError as err:
            self.get_logger().warning(f'joint_states dropped: {err}', throttle_duration_sec=5.0)
            return
        if not np.all(np.isfinite(q)):
            return
        pose = geometry_msgs.PoseStamped()
        pose.header.stamp = msg.header.stamp
        pose.header.frame_id = contract.BASE_FRAME
        pose.pose = pose_msg(pose_to_xyz_quat(
            forward_kinematics(q, self._dh_is_offset, self._tcp_offset_m)))
        self._pub.publish(pose)

    # --- objects -------------------------------------------------------------------------------
    def _start_objects(self, p: dict) -> None:
        from vla_nodes.perception.objects import DetectorConfig, ObjectDetector
        from vla_nodes.perception.worker import LatestWorker
        self._detector = ObjectDetector(DetectorConfig(
            min_pixels=p['min_object_pixels'], table_height_m=p['table_height_m']))
        self._info = None
        self._camera_to_base = CameraToBase(self, p['calibration_file'])
        self._pairs = FramePairs()
        self.stats = collections.Counter()
        self._objects_pub = self.create_publisher(vision_msgs.Detection3DArray,
                                                  contract.OBJECTS_TOPIC, 10)
        self.create_subscription(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC,
                                 self._on_info, 10)
        self.create_subscription(sensor_msgs.Image, contract.COLOR_TOPIC,
                                 lambda msg: self._pair('color', msg), 5)
        self._depth_sub = None
        self._subscribe_depth(True)
        self._worker = LatestWorker(self._detect, self._on_worker_error, 'object_poses',
                                    synchronous=p['synchronous_detection'])
        self._diag = Diagnostics(self)

    def _on_info(self, msg) -> None:
        self._info = msg

    def _subscribe_depth(self, wanted: bool) -> None:
        """Read metric depth only while someone reads the object poses (a lazy subscription).

        Asked at each colour frame: without a reader of its depth, depth_node converts none.
        """
        if wanted and self._depth_sub is None:
            self._depth_sub = self.create_subscription(
                sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC,
                lambda msg: self._pair('depth', msg), 5)
        elif not wanted and self._depth_sub is not None:
            self.destroy_subscription(self._depth_sub)
            self._depth_sub = None

    def _pair(self, kind: str, msg) -> None:
        """Hand a colour/depth pair with equal stamps to the worker."""
        wanted = self._wanted(contract.OBJECTS_TOPIC)
        if kind == 'color':
            self._subscribe_depth(wanted)
        if not wanted:
            return
        pair = self._pairs.add(kind, stamp_to_ns(msg.header.stamp), msg)
        if pair is not None:
            self._worker.submit((*pair, self._info, self._camera_to_base.pose))

    def _detect(self, item) -> None:
        color, depth, info, camera_to_base = item
        try:
            sizes = None if info is None else {(m.width, m.height) for m in (color, depth, info)}
            check_pair(color.encoding, depth.encoding, sizes, camera_to_base is not None)
            depth_m = image.from_msg(depth)
            valid_fraction(depth_m, 'depth frame without a valid pixel: no object poses')
        except FrameRejected as err:
            return self._reject(LEVELS[err.level], err.reason)
        objects = self._detector.detect(image.from_msg(color, 'rgb8'), depth_m,
                                        np.reshape(info.k, (3, 3)), camera_to_base)
        self._objects_pub.publish(detections_msg(objects, color.header))
        self.stats['frames'] += 1
        self._diag.set(OK, f'{len(objects)} objects', objects=len(objects),
                       dropped=self._worker.dropped, **self.stats)

    def _reject(self, level, reason: str) -> None:
        self.stats['rejected'] += 1
        self.get_logger().warning(f'object poses: {reason}', throttle_duration_sec=2.0)
        self._diag.set(level, reason, **self.stats)

    def _on_worker_error(self, err) -> None:
        self._reject(ERROR, f'object detection failed: {err!r}')

    def destroy_node(self):
        if self._worker is not None:
            self._worker.close()
        super().destroy_node()


def detections_msg(objects: list, header):
    """vision_msgs/Detection3DArray of `DetectedObject`s (perception/objects.py), in `header`."""
    array = vision_msgs.Detection3DArray(header=header)
    for i, obj in enumerate(objects):
        hypothesis = vision_msgs.ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = obj.category
        hypothesis.hypothesis.score = float(obj.score)
        hypothesis.pose.pose = pose_msg(pose_to_xyz_quat(obj.pose))
        detection = vision_msgs.Detection3D(header=header, results=[hypothesis],
                                            id=f'{obj.category}_{i}')
        detection.bbox.center = pose_msg(pose_to_xyz_quat(obj.pose))
        detection.bbox.size.x, detection.bbox.size.y, detection.bbox.size.z = (
            float(v) for v in obj.size)
        array.detections.append(detection)
    return array


def main(args=None):
    run(PoseNode, args)
