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

"""The camera's topics as realsense-ros publishes them: one helper for camera_node and sim_node.

Colour (rgb8), depth aligned to colour (16UC1 millimetres, 0 = invalid) and both camera_infos,
all four with the same header stamp and optical frame, so the two nodes are interchangeable with
each other and with the official `realsense2_camera` node.
"""

import numpy as np

from vla_nodes import contract
from vla_nodes.ros import image, msgs
from vla_nodes.ros.msgs import sensor_msgs


def camera_info(k: np.ndarray, d, width: int, height: int, distortion_model: str,
                stamp_ns: int, frame_id: str):
    """sensor_msgs/CameraInfo: K (3, 3) px, D, R = I, P = [K | 0] (a monocular stream)."""
    info = sensor_msgs.CameraInfo(width=width, height=height, distortion_model=distortion_model)
    info.header.stamp = msgs.ns_to_stamp(stamp_ns)
    info.header.frame_id = frame_id
    info.k = np.asarray(k, float).reshape(-1)
    info.d = [float(c) for c in d]
    info.r = np.eye(3).reshape(-1)
    info.p = np.hstack([np.asarray(k, float), np.zeros((3, 1))]).reshape(-1)
    return info


class CameraPublishers:
    """Publishers of one RGB-D camera on its realsense-ros topic names (contract.Camera)."""

    def __init__(self, node, camera: contract.Camera = contract.SCENE_CAMERA):
        self.camera = camera
        self._color = node.create_publisher(sensor_msgs.Image, camera.color_topic, 10)
        self._depth = node.create_publisher(sensor_msgs.Image, camera.depth_topic, 10)
        self._color_info = node.create_publisher(sensor_msgs.CameraInfo,
                                                 camera.color_info_topic, 10)
        self._depth_info = node.create_publisher(sensor_msgs.CameraInfo,
                                                 camera.depth_info_topic, 10)

    def publish(self, rgb: np.ndarray, depth_mm: np.ndarray, stamp_ns: int, frame_id: str,
                color_info, depth_info) -> None:
        """Publish one frame pair: rgb (H, W, 3) uint8 and depth (H, W) uint16 millimetres."""
        self._color.publish(image.to_msg(rgb, contract.COLOR_ENCODING, stamp_ns, frame_id))
        self._depth.publish(image.to_msg(depth_mm, contract.CAMERA_DEPTH_ENCODING, stamp_ns,
                                         frame_id))
        self._color_info.publish(color_info)
        self._depth_info.publish(depth_info)
