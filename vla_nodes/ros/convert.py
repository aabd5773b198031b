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

"""Joint messages -> arrays ordered by joint name: the one conversion every node uses.

Where it fits: `arm_driver_node` (targets and chunks), `pose_node` (forward kinematics),
`robot_state_node` (every joint a message names, `named_positions`) and any
other node reading `/joint_states` or `/vla/action_chunk` pick their joints by name, never by
position in the message (a bimanual chunk holds both arms, a merged JointState any order).
One failure behaviour: a message that lacks a needed joint, or whose values do not match its
names, raises `ValueError` naming what is wrong; the node turns that into a one-line (throttled)
warning and drops the message (the arm driver rejects it and holds). Pure numpy, duck-typed
messages: works on rclpy's and the local backend's classes alike.

The other direction, arrays -> messages, also lives here once: poses and transforms from
(x, y, z, qx, qy, qz, qw).
"""

import numpy as np

from vla_nodes.ros.msgs import geometry_msgs, stamp_to_ns


def select_joints(names, rows, joints) -> np.ndarray:
    """Rows of values ordered like `names`, reordered to `joints`: (N, len(joints)) float.

    Args:
        names: the joint names of the message (e.g. JointTrajectory.joint_names); may hold
            more joints than `joints` (a bimanual chunk) in any order.
        rows: N sequences of len(names) values.
        joints: the joints this arm needs, in its order.

    Raises:
        ValueError: a joint of `joints` is missing, or a row has the wrong length.
    """
    index = {n: i for i, n in enumerate(names)}
    missing = [j for j in joints if j not in index]
    if missing:
        raise ValueError(f'joints {missing} missing from {list(names)}')
    wrong = [len(r) for r in rows if len(r) != len(names)]
    if wrong:
        raise ValueError(f'{wrong[0]} values for {len(names)} joint names')
    order = [index[j] for j in joints]
    return np.array([[row[i] for i in order] for row in rows], dtype=np.float64)


def joint_positions(msg, joints) -> np.ndarray:
    """A JointState's positions of `joints`, in that order: (len(joints),) float64.

    Raises:
        ValueError: as `select_joints`.
    """
    return select_joints(msg.name, [msg.position], joints)[0]


def trajectory_arrays(msg, joints) -> tuple:
    """A JointTrajectory as (stamp ns, times s (N,), positions (N, len(joints)) float64).

    The stamp is 0 for an unstamped message; times are each point's time_from_start.

    Raises:
        ValueError: no points, or as `select_joints`.
    """
    if not msg.points:
        raise ValueError('no points')
    positions = select_joints(msg.joint_names, [p.positions for p in msg.points], joints)
    times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
    return stamp_to_ns(msg.header.stamp), np.asarray(times, float), positions


def named_positions(msg) -> dict:
    """Every finite position of a JointState by joint name (for consumers of any subset).

    `robot_state_node` moves the frames of whatever joints a message carries; NaN (a joint
    with no position, as robot_state_publisher treats it) is left out.

    Raises:
        ValueError: names and positions differ in length.
    """
    if len(msg.position) != len(msg.name):
        raise ValueError(f'{len(msg.position)} positions for {len(msg.name)} joint names')
    return {n: float(q) for n, q in zip(msg.name, msg.position) if np.isfinite(q)}


def pose_msg(xyz_quat):
    """geometry_msgs/Pose of (x, y, z, qx, qy, qz, qw) (m, unit quaternion xyzw)."""
    x, y, z, qx, qy, qz, qw = (float(v) for v in xyz_quat)
    msg = geometry_msgs.Pose()
    msg.position.x, msg.position.y, msg.position.z = x, y, z
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = qx, qy, qz, qw
    return msg


def transform_msg(parent: str, child: str, xyz_quat, stamp=None):
    """geometry_msgs/TransformStamped of `child` in `parent` from (x, y, z, qx, qy, qz, qw)."""
    tf = geometry_msgs.TransformStamped(child_frame_id=child)
    tf.header.frame_id = parent
    if stamp is not None:
        tf.header.stamp = stamp
    x, y, z, qx, qy, qz, qw = (float(v) for v in xyz_quat)
    t, r = tf.transform.translation, tf.transform.rotation
    t.x, t.y, t.z = x, y, z
    r.x, r.y, r.z, r.w = qx, qy, qz, qw
    return tf
