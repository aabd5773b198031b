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

"""The ros2_control side of the description: controller joint groups and chunk splitting.

`config/controllers.yaml` names the joints of each joint_trajectory_controller; a policy chunk
(one JointTrajectory over all the contract's joints) is split into one trajectory per controller
with the same stamp and timing (`trajectory_relay_node` publishes them). Pure Python, no ROS.
"""

from pathlib import Path

import yaml

TRAJECTORY_CONTROLLER = 'joint_trajectory_controller/JointTrajectoryController'


def trajectory_controllers(path) -> dict:
    """Controller name -> joint names of each joint_trajectory_controller in a controllers YAML.

    Raises:
        ValueError: a trajectory controller without a joint list.
    """
    tree = yaml.safe_load(Path(path).read_text())
    manager = tree['controller_manager']['ros__parameters']
    out = {}
    for name, spec in manager.items():
        if isinstance(spec, dict) and spec.get('type') == TRAJECTORY_CONTROLLER:
            joints = (tree.get(name) or {}).get('ros__parameters', {}).get('joints')
            if not joints:
                raise ValueError(f'{path}: controller {name!r} has no joints list')
            out[name] = list(joints)
    return out


def split_points(joint_names, points, groups: dict) -> dict:
    """Split a trajectory's columns by controller.

    Args:
        joint_names: the trajectory's joint names.
        points: per point a (positions, time_from_start) pair; positions in joint_names order.
        groups: controller -> its joint names (`trajectory_controllers`).

    Returns:
        controller -> (its joint names, [(positions, time_from_start), ...]) for each controller
        whose joints the trajectory all has; the others are left out (a controller must not get a
        partial goal).
    """
    index = {name: i for i, name in enumerate(joint_names)}
    out = {}
    for controller, joints in groups.items():
        if all(j in index for j in joints):
            columns = [index[j] for j in joints]
            out[controller] = (list(joints), [([positions[c] for c in columns], stamp)
                                              for positions, stamp in points])
    return out
