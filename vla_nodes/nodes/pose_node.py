"""pose_node: end-effector pose in base_link from /joint_states (Piper forward kinematics).

Publishes `/vla/ee_pose` (PoseStamped, metres + quaternion) at the joint-state rate, stamped with
the joint state's time so that pose and state line up exactly in a recording.
"""

import numpy as np

from vla_nodes import contract, ros
from vla_nodes.arm.kinematics import forward_kinematics, pose_to_xyz_quat
from vla_nodes.nodes import run
from vla_nodes.ros.msgs import geometry_msgs, sensor_msgs


class PoseNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('pose_node', **kwargs)
        self.declare_parameter('joint_prefix', '')
        self.declare_parameter('dh_is_offset', 1)
        prefix = self.get_parameter('joint_prefix').value
        self._joints = [prefix + j for j in contract.ARM_JOINTS]
        self._dh_is_offset = self.get_parameter('dh_is_offset').value
        self._pub = self.create_publisher(geometry_msgs.PoseStamped, contract.EE_POSE_TOPIC, 10)
        self.create_subscription(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC,
                                 self._on_joints, 10)

    def _on_joints(self, msg) -> None:
        index = {name: i for i, name in enumerate(msg.name)}
        if not all(j in index for j in self._joints) or len(msg.position) != len(msg.name):
            self.get_logger().warning(f'joint_states lacks {self._joints} or positions',
                                      throttle_duration_sec=5.0)
            return
        q = np.array([msg.position[index[j]] for j in self._joints])
        if not np.all(np.isfinite(q)):
            return
        x, y, z, qx, qy, qz, qw = pose_to_xyz_quat(forward_kinematics(q, self._dh_is_offset))
        pose = geometry_msgs.PoseStamped()
        pose.header.stamp = msg.header.stamp
        pose.header.frame_id = contract.BASE_FRAME
        p, o = pose.pose.position, pose.pose.orientation
        p.x, p.y, p.z = float(x), float(y), float(z)
        o.x, o.y, o.z, o.w = float(qx), float(qy), float(qz), float(qw)
        self._pub.publish(pose)


def main(args=None):
    run(PoseNode, args)
