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

"""robot_state_node: robot_state_publisher for the ROS-free runtime (it runs on rclpy too).

From `robot_description` (URDF text; '' = the packaged single Piper, description/piper.yaml) and
`/joint_states` it publishes what robot_state_publisher does: each fixed joint once on
`/tf_static` (transient local), each moving joint (mimics included) on `/tf` for every joint
state, stamped with it, so at the joint-state rate; and the URDF on `/robot_description`
(std_msgs/String, transient local) for RViz and Foxglove. The tree and its transforms are
`description/tree.py`.
"""

from vla_nodes import contract, paths, ros
from vla_nodes.description.generate import read_rsp_params
from vla_nodes.description.tree import UrdfTree
from vla_nodes.nodes import run
from vla_nodes.nodes.parameters import declare_parameters
from vla_nodes.ros.convert import named_positions, transform_msg
from vla_nodes.ros.msgs import sensor_msgs, std_msgs, tf2_msgs

TF_TOPIC = '/tf'
ROBOT_DESCRIPTION_TOPIC = '/robot_description'
PARAMETERS = {
    'robot_description': '',   # URDF text, as robot_state_publisher takes it
    'frame_prefix': '',        # prepended to every frame id, as in robot_state_publisher
}


class RobotStateNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('robot_state_node', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        urdf = p['robot_description'] or read_rsp_params(
            paths.package_share() / 'description' / 'piper.yaml')
        self._tree = UrdfTree(urdf)
        self._prefix = p['frame_prefix']
        self._tf = self.create_publisher(tf2_msgs.TFMessage, TF_TOPIC, 100)
        latched = ros.qos_profile_latched
        self.create_publisher(std_msgs.String, ROBOT_DESCRIPTION_TOPIC, latched).publish(
            std_msgs.String(data=urdf))
        static = tf2_msgs.TFMessage(transforms=[
            self._transform(parent, child, xyz_quat, self.get_clock().now().to_msg())
            for parent, child, xyz_quat in self._tree.static_transforms()])
        self.create_publisher(tf2_msgs.TFMessage, contract.TF_STATIC_TOPIC,
                              latched).publish(static)
        self.create_subscription(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC,
                                 self._on_joints, 10)

    def _on_joints(self, msg) -> None:
        try:
            positions = named_positions(msg)
        except ValueError as err:
            self.get_logger().warning(f'joint_states dropped: {err}', throttle_duration_sec=5.0)
            return
        transforms = [self._transform(parent, child, xyz_quat, msg.header.stamp)
                      for parent, child, xyz_quat in self._tree.moving_transforms(positions)]
        if transforms:
            self._tf.publish(tf2_msgs.TFMessage(transforms=transforms))

    def _transform(self, parent: str, child: str, xyz_quat: tuple, stamp):
        return transform_msg(self._prefix + parent, self._prefix + child, xyz_quat, stamp)


def main(args=None):
    run(RobotStateNode, args)
