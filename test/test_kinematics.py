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

"""Piper kinematics (vla_nodes/arm/kinematics.py) against piper_sdk's FK, and IK round trips."""

import math

import numpy as np
from piper_sdk.kinematics.piper_fk import C_PiperForwardKinematics
import pytest

from vla_nodes import contract
from vla_nodes.arm import kinematics

READY = np.array(contract.READY_POSITIONS[:6])


def _random_joints(count: int, seed: int) -> np.ndarray:
    """(count, 6) joint vectors drawn uniformly inside contract.PIPER_LIMITS (rad)."""
    lower, upper = kinematics.limit_arrays()
    return np.random.default_rng(seed).uniform(lower, upper, size=(count, 6))


def _rot_zyx(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Rz(yaw) Ry(pitch) Rx(roll), piper_sdk's Euler convention (rad)."""
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def _angle_between(rot_a: np.ndarray, rot_b: np.ndarray) -> float:
    """Rotation angle (rad) of rot_a^T rot_b."""
    return float(np.linalg.norm(kinematics.rotation_log(rot_a.T @ rot_b)))


@pytest.mark.parametrize('dh_is_offset', [0, 1])
def test_fk_matches_piper_sdk_over_200_samples(dh_is_offset):
    sdk = C_PiperForwardKinematics(dh_is_offset)
    for q in _random_joints(200, seed=dh_is_offset):
        x, y, z, rx, ry, rz = sdk.CalFK(list(q))[5]  # mm and deg
        pose = kinematics.forward_kinematics(q, dh_is_offset)
        np.testing.assert_allclose(pose[:3, 3], np.array([x, y, z]) / 1000.0, atol=1e-3)
        sdk_rot = _rot_zyx(math.radians(rx), math.radians(ry), math.radians(rz))
        assert _angle_between(pose[:3, :3], sdk_rot) < math.radians(0.01)


def test_fk_zero_pose_is_sdk_init_pos():
    # piper_sdk's `init_pos` for dh_is_offset=1 is the flange pose at all-zero joints: x 56.128 mm,
    # z 213.266 mm, pitch 85 deg. (Its dh_is_offset=0 value is rounded to whole mm, so not used.)
    xyz_rpy = kinematics.pose_to_xyz_rpy(kinematics.forward_kinematics(np.zeros(6), 1))
    np.testing.assert_allclose(xyz_rpy[:3], [0.056128, 0.0, 0.213266], atol=1e-6)
    np.testing.assert_allclose(xyz_rpy[3:], [0.0, math.radians(85.0), 0.0], atol=1e-4)


def test_pose_to_xyz_rpy_matches_sdk_euler_convention():
    sdk = C_PiperForwardKinematics(1)
    for q in _random_joints(50, seed=7):
        ours = kinematics.pose_to_xyz_rpy(kinematics.forward_kinematics(q))
        ref = np.array(sdk.CalFK(list(q))[5])
        np.testing.assert_allclose(ours[:3] * 1000.0, ref[:3], atol=1e-6)
        wrapped = (np.degrees(ours[3:]) - ref[3:] + 180.0) % 360.0 - 180.0
        np.testing.assert_allclose(wrapped, 0.0, atol=1e-6)


def test_link_poses_chain_ends_at_fk_and_tcp_offset_moves_along_flange_z():
    poses = kinematics.link_poses(READY)
    assert poses.shape == (6, 4, 4)
    np.testing.assert_allclose(poses[5], kinematics.forward_kinematics(READY))
    np.testing.assert_allclose(poses[0][:3, 3], [0.0, 0.0, 0.123])  # joint 2 sits on top of d1
    tcp = kinematics.forward_kinematics(READY, tcp_offset_m=0.1)
    np.testing.assert_allclose(tcp[:3, 3], poses[5][:3, 3] + 0.1 * poses[5][:3, 2])


def test_pose_to_xyz_quat_literal_and_round_trip():
    pose = np.array([
        [0.0, -1.0, 0.0, 0.1],
        [1.0, 0.0, 0.0, 0.2],
        [0.0, 0.0, 1.0, 0.3],
        [0.0, 0.0, 0.0, 1.0],
    ])  # 90 deg about z
    half = math.sqrt(0.5)
    expected = [0.1, 0.2, 0.3, 0.0, 0.0, half, half]
    np.testing.assert_allclose(kinematics.pose_to_xyz_quat(pose), expected)
    for q in _random_joints(50, seed=3):
        fk = kinematics.forward_kinematics(q)
        xyz_quat = kinematics.pose_to_xyz_quat(fk)
        assert xyz_quat[6] >= 0.0
        np.testing.assert_allclose(kinematics.xyz_quat_to_pose(xyz_quat), fk, atol=1e-12)


def test_jacobian_matches_finite_differences():
    q = READY + 0.1
    jac = kinematics.jacobian(q, tcp_offset_m=kinematics.TCP_OFFSET_M)
    base = kinematics.forward_kinematics(q, tcp_offset_m=kinematics.TCP_OFFSET_M)
    eps = 1e-6
    for i in range(6):
        dq = np.zeros(6)
        dq[i] = eps
        moved = kinematics.forward_kinematics(q + dq, tcp_offset_m=kinematics.TCP_OFFSET_M)
        np.testing.assert_allclose((moved[:3, 3] - base[:3, 3]) / eps, jac[:3, i], atol=1e-5)
        omega = kinematics.rotation_log(moved[:3, :3] @ base[:3, :3].T) / eps
        np.testing.assert_allclose(omega, jac[3:, i], atol=1e-5)


def test_ik_reaches_random_reachable_poses_within_1mm_inside_limits():
    lower, upper = kinematics.limit_arrays()
    for q_true in _random_joints(60, seed=11):
        target = kinematics.forward_kinematics(q_true)
        q = kinematics.inverse_kinematics(target, READY)
        assert np.all(q >= lower) and np.all(q <= upper)
        reached = kinematics.forward_kinematics(q)
        assert np.linalg.norm(reached[:3, 3] - target[:3, 3]) < 1e-3
        assert _angle_between(reached[:3, :3], target[:3, :3]) < math.radians(0.1)


def test_ik_position_only_and_tcp_offset():
    for q_true in _random_joints(30, seed=12):
        point = kinematics.forward_kinematics(q_true, tcp_offset_m=kinematics.TCP_OFFSET_M)[:3, 3]
        q = kinematics.inverse_kinematics(point, READY, tcp_offset_m=kinematics.TCP_OFFSET_M)
        reached = kinematics.forward_kinematics(q, tcp_offset_m=kinematics.TCP_OFFSET_M)
        assert np.linalg.norm(reached[:3, 3] - point) < 1e-3


def test_ik_top_down_grasp_above_table():
    # The scripted expert's grasp: tool z straight down, fingers along base y, 2 cm above table.
    target = np.array([
        [-1.0, 0.0, 0.0, 0.3],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, -1.0, 0.02],
        [0.0, 0.0, 0.0, 1.0],
    ])
    q = kinematics.inverse_kinematics(target, READY, tcp_offset_m=kinematics.TCP_OFFSET_M)
    reached = kinematics.forward_kinematics(q, tcp_offset_m=kinematics.TCP_OFFSET_M)
    np.testing.assert_allclose(reached, target, atol=1e-3)


def test_ik_respects_narrower_limits_and_raises_when_unreachable():
    limits = dict(contract.PIPER_LIMITS, joint1=contract.JointLimit(-0.1, 0.1))
    target = kinematics.forward_kinematics(np.array([0.05, 1.0, -0.9, 0.2, 0.4, 0.1]))
    q = kinematics.inverse_kinematics(target, READY, limits)
    assert -0.1 <= q[0] <= 0.1
    with pytest.raises(kinematics.IkError, match='best position error'):
        kinematics.inverse_kinematics(np.array([2.0, 0.0, 0.2]), READY, restarts=2)
    outside = kinematics.forward_kinematics(np.array([1.0, 1.0, -0.9, 0.2, 0.4, 0.1]))
    with pytest.raises(kinematics.IkError):
        kinematics.inverse_kinematics(outside[:3, 3], READY, limits, restarts=2)
