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

"""Where the camera is in base_link, for a node: from `calibration_file` or from /tf_static.

depth_node (table-plane alignment) and pose_node (object poses in base_link) both need the
camera-to-base transform that vla-calibrate measured: a YAML file when the parameter names one,
otherwise the latched transform the launch file's static publisher (or a calibrated robot's)
sends. Until that transform arrives `pose` is None, and the node says it is waiting.
"""

from vla_nodes import contract, ros
from vla_nodes.ros.msgs import tf2_msgs


class CameraToBase:
    """The latest camera-to-base pose # (4, 4) for `node`, or None before one is known."""

    def __init__(self, node, calibration_file: str):
        from vla_nodes.perception.calibrate import read_calibration
        self.pose = None
        if calibration_file:
            self.pose = read_calibration(calibration_file).camera_to_base
        else:
            node.create_subscription(tf2_msgs.TFMessage, contract.TF_STATIC_TOPIC,
                                     self._on_tf_static, ros.qos_profile_latched)

    def _on_tf_static(self, msg) -> None:
        from vla_nodes.perception.calibrate import camera_to_base_from_tf
        pose = camera_to_base_from_tf(msg)
        if pose is not None:
            self.pose = pose
