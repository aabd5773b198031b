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

"""Piper forward and inverse kinematics in numpy, from the DH chain that piper_sdk uses.

The chain is piper_sdk's `C_PiperForwardKinematics` (kinematics/piper_fk.py) in SI units: modified
(Craig) DH, `T_i = RotX(alpha_i) TransX(a_i) RotZ(theta_i + q_i) TransZ(d_i)`, lengths converted
from mm to m. `dh_is_offset=1` (the SDK default, current firmware) shifts the j2/j3 zero by 2 deg.
The end effector is the SDK's link6 frame (the flange): the pose the firmware reports as end pose.
Pass `tcp_offset_m` to move the point along the flange z axis, e.g. `TCP_OFFSET_M` for the grasp
centre between the finger pads of the simulated gripper.

The simulator (`vla_nodes/sim/world.py`) builds its MuJoCo arm from `DH_CHAINS`, so the two agree.
"""

from dataclasses import dataclass
import math

import numpy as np

from vla_nodes import contract


@dataclass(frozen=True)
class DhChain:
    """Modified DH parameters of the six Piper joints (m, rad); one tuple entry per joint."""

    a: tuple
    alpha: tuple
    theta: tuple
    d: tuple


_A = (0.0, 0.0, 0.28503, -0.02198, 0.0, 0.0)
_ALPHA = (0.0, -math.pi / 2, 0.0, math.pi / 2, -math.pi / 2, math.pi / 2)
_D = (0.123, 0.0, 0.0, 0.25075, 0.0, 0.091)

# Keyed by piper_sdk's `dh_is_offset`: 0 = old firmware zero, 1 = j2/j3 zero shifted by 2 deg.
DH_CHAINS = {
    0: DhChain(_A, _ALPHA, (0.0, math.radians(-174.22), math.radians(-100.78), 0.0, 0.0, 0.0), _D),
    1: DhChain(_A, _ALPHA, (0.0, math.radians(-172.22), math.radians(-102.78), 0.0, 0.0, 0.0), _D),
}

# Flange to the grasp centre between the simulated finger pads (m, along flange z).
TCP_OFFSET_M = 0.135


class IkError(ValueError):
    """Raised when inverse kinematics finds no joint vector within tolerance and limits."""


def dh_transform(alpha: float, a: float, theta: float, d: float) -> np.ndarray:
    """One modified-DH link transform, `RotX(alpha) TransX(a) RotZ(theta) TransZ(d)`.

    Args:
        alpha: link twist (rad).
        a: link length (m).
        theta: joint angle including its offset (rad).
        d: link offset (m).

    Returns:
        (4, 4) homogeneous transform from the previous frame to this one.
    """
    ca, sa, ct, st = math.cos(alpha), math.sin(alpha), math.cos(theta), math.sin(theta)
    return np.array([
        [ct, -st, 0.0, a],
        [st * ca, ct * ca, -sa, -sa * d],
        [st * sa, ct * sa, ca, ca * d],
        [0.0, 0.0, 0.0, 1.0],
    ])


def link_poses(q6, dh_is_offset: int = 1) -> np.ndarray:
    """Poses of the frames link1..link6 in base_link.

    Args:
        q6: (6,) joint angles (rad).
        dh_is_offset: piper_sdk's DH variant, 0 or 1.

    Returns:
        (6, 4, 4) transforms; entry i is frame link(i+1), whose z axis is joint i+1's axis.
    """
    chain = DH_CHAINS[dh_is_offset]
    q6 = np.asarray(q6, dtype=np.float64).reshape(6)
    poses = np.empty((6, 4, 4))
    pose = np.eye(4)
    for i in range(6):
        pose = pose @ dh_transform(chain.alpha[i], chain.a[i], chain.theta[i] + q6[i], chain.d[i])
        poses[i] = pose
    return poses


def translation(x: float, y: float, z: float) -> np.ndarray:
    """Return a (4, 4) pure translation by (x, y, z) (m)."""
    pose = np.eye(4)
    pose[:3, 3] = (x, y, z)
    return pose


def forward_kinematics(q6, dh_is_offset: int = 1, tcp_offset_m: float = 0.0) -> np.ndarray:
    """End-effector pose in base_link.

    Args:
        q6: (6,) joint angles (rad).
        dh_is_offset: piper_sdk's DH variant, 0 or 1.
        tcp_offset_m: distance of the tool point from the flange along its z axis (m).

    Returns:
        (4, 4) transform base_link <- flange (or tool point), translation in metres.
    """
    return link_poses(q6, dh_is_offset)[5] @ translation(0.0, 0.0, tcp_offset_m)


def quat_from_matrix(rot: np.ndarray) -> np.ndarray:
    """Return the unit quaternion (qx, qy, qz, qw), qw >= 0, of a (3, 3) rotation matrix."""
    m = np.asarray(rot, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    candidates = np.array([trace, m[0, 0], m[1, 1], m[2, 2]])
    k = int(np.argmax(candidates))
    if k == 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    else:
        i, j, n = k - 1, k % 3, (k + 1) % 3
        s = 2.0 * math.sqrt(1.0 + m[i, i] - m[j, j] - m[n, n])
        q = [0.0, 0.0, 0.0, (m[n, j] - m[j, n]) / s]
        q[i] = s / 4
        q[j] = (m[j, i] + m[i, j]) / s
        q[n] = (m[n, i] + m[i, n]) / s
    q = np.array(q)
    return q / np.linalg.norm(q) * (1.0 if q[3] >= 0 else -1.0)


def matrix_from_quat(quat) -> np.ndarray:
    """(3, 3) rotation matrix of a quaternion (qx, qy, qz, qw); normalised first."""
    x, y, z, w = np.asarray(quat, dtype=np.float64) / np.linalg.norm(quat)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def pose_to_xyz_quat(pose: np.ndarray) -> np.ndarray:
    """(4, 4) transform -> (7,) x, y, z (m), qx, qy, qz, qw (geometry_msgs/Pose order)."""
    return np.concatenate([pose[:3, 3], quat_from_matrix(pose[:3, :3])])


def xyz_quat_to_pose(xyz_quat) -> np.ndarray:
    """(7,) x, y, z (m), qx, qy, qz, qw -> (4, 4) transform."""
    xyz_quat = np.asarray(xyz_quat, dtype=np.float64)
    pose = np.eye(4)
    pose[:3, :3] = matrix_from_quat(xyz_quat[3:])
    pose[:3, 3] = xyz_quat[:3]
    return pose


def pose_to_xyz_rpy(pose: np.ndarray) -> np.ndarray:
    """(4, 4) transform -> (6,) x, y, z (m), roll, pitch, yaw (rad); R = Rz Ry Rx.

    The same Euler convention and gimbal-lock handling as piper_sdk's FK and end-pose feedback
    (which the firmware sends in 0.001 mm and 0.001 deg).
    """
    r = pose[:3, :3]
    if r[2, 0] < -1 + 1e-4:
        roll, pitch, yaw = math.atan2(r[0, 1], r[1, 1]), math.pi / 2, 0.0
    elif r[2, 0] > 1 - 1e-4:
        roll, pitch, yaw = -math.atan2(r[0, 1], r[1, 1]), -math.pi / 2, 0.0
    else:
        pitch = math.atan2(-r[2, 0], math.hypot(r[0, 0], r[1, 0]))
        yaw = math.atan2(r[1, 0], r[0, 0])
        roll = math.atan2(r[2, 1], r[2, 2])
    return np.array([pose[0, 3], pose[1, 3], pose[2, 3], roll, pitch, yaw])


def rotation_log(rot: np.ndarray) -> np.ndarray:
    """(3,) axis * angle (rad) of a (3, 3) rotation matrix, angle in [0, pi]."""
    quat = quat_from_matrix(rot)
    sin_half = np.linalg.norm(quat[:3])
    if sin_half < 1e-12:
        return np.zeros(3)
    return quat[:3] / sin_half * 2.0 * math.atan2(sin_half, quat[3])


def jacobian(q6, dh_is_offset: int = 1, tcp_offset_m: float = 0.0) -> np.ndarray:
    """Geometric Jacobian of the end effector in base_link.

    Args:
        q6: (6,) joint angles (rad).
        dh_is_offset: piper_sdk's DH variant, 0 or 1.
        tcp_offset_m: tool point offset along the flange z axis (m).

    Returns:
        (6, 6): rows 0-2 linear velocity (m/rad), rows 3-5 angular velocity (rad/rad).
    """
    poses = link_poses(q6, dh_is_offset)
    tip = (poses[5] @ translation(0.0, 0.0, tcp_offset_m))[:3, 3]
    axes = poses[:, :3, 2]  # (6, 3)
    origins = poses[:, :3, 3]  # (6, 3)
    return np.vstack([np.cross(axes, tip - origins).T, axes.T])


def limit_arrays(limits: dict = contract.PIPER_LIMITS) -> tuple:
    """(6,) lower and (6,) upper bounds (rad) of the arm joints from a contract limit table."""
    lower = np.array([limits[n].lower for n in contract.ARM_JOINTS])
    upper = np.array([limits[n].upper for n in contract.ARM_JOINTS])
    return lower, upper


def pose_error(target, q6, dh_is_offset: int = 1, tcp_offset_m: float = 0.0) -> np.ndarray:
    """Task-space error of `q6` to `target` in base_link.

    Args:
        target: (4, 4) pose, or (3,) position (m) for a position-only target.
        q6: (6,) joint angles (rad).
        dh_is_offset: piper_sdk's DH variant, 0 or 1.
        tcp_offset_m: tool point offset along the flange z axis (m).

    Returns:
        (3,) position error (m) for a position target, else (6,) position (m) and rotation
        vector (rad), both target minus current.
    """
    pose = forward_kinematics(q6, dh_is_offset, tcp_offset_m)
    target = np.asarray(target, dtype=np.float64)
    if target.shape == (3,):
        return target - pose[:3, 3]
    rot_err = rotation_log(target[:3, :3] @ pose[:3, :3].T)
    return np.concatenate([target[:3, 3] - pose[:3, 3], rot_err])


def _within(err, tol_m, tol_rad) -> bool:
    """Check the position part against tol_m and the rotation part against tol_rad."""
    return np.linalg.norm(err[:3]) <= tol_m and np.linalg.norm(err[3:]) <= tol_rad


def _dls_solve(target, q, bounds, tols, dh_is_offset, tcp_offset_m, iters, damping):
    """Damped least squares from `q`, projected onto the limits each step; returns (q, error)."""
    err = pose_error(target, q, dh_is_offset, tcp_offset_m)
    for _ in range(iters):
        if _within(err, *tols):
            break
        jac = jacobian(q, dh_is_offset, tcp_offset_m)[: err.shape[0]]
        # Levenberg-style damping: small near the solution, larger far from it or near singularity.
        lam2 = damping ** 2 + float(err @ err)
        step = jac.T @ np.linalg.solve(jac @ jac.T + lam2 * np.eye(err.shape[0]), err)
        q = np.clip(q + step, *bounds)
        err = pose_error(target, q, dh_is_offset, tcp_offset_m)
    return q, err


def inverse_kinematics(target, q_init, limits: dict = contract.PIPER_LIMITS, *,
                       dh_is_offset: int = 1, tcp_offset_m: float = 0.0, tol_m: float = 1e-4,
                       tol_rad: float = 1e-3, iters: int = 60, restarts: int = 30,
                       damping: float = 1e-3, seed: int = 0) -> np.ndarray:
    """Joint angles that put the end effector at `target`, within joint limits.

    Damped least squares from `q_init`, each step clamped to the limits. If that does not
    converge, it restarts from `restarts` seeded random joint vectors inside the limits and
    keeps the first solution found, so the result is deterministic for a given input.

    Args:
        target: (4, 4) pose in base_link (position and orientation), or (3,) position (m).
        q_init: (6,) initial joint angles (rad); clamped to the limits first.
        limits: contract-style limit table; only the six arm joints are used.
        dh_is_offset: piper_sdk's DH variant, 0 or 1.
        tcp_offset_m: tool point offset along the flange z axis (m).
        tol_m: position tolerance (m).
        tol_rad: orientation tolerance (rad, rotation angle).
        iters: iterations per attempt.
        restarts: random restarts after the first attempt fails.
        damping: base damping of the least-squares step (m or rad).
        seed: seed of the restart sampler.

    Returns:
        (6,) joint angles (rad) within the limits.

    Raises:
        IkError: no attempt reached the tolerances.
    """
    lower, upper = limit_arrays(limits)
    rng = np.random.default_rng(seed)
    q = np.clip(np.asarray(q_init, dtype=np.float64).reshape(6), lower, upper)
    best_q, best_err = q, None
    for attempt in range(restarts + 1):
        start = q if attempt == 0 else rng.uniform(lower, upper)
        sol, err = _dls_solve(target, start, (lower, upper), (tol_m, tol_rad), dh_is_offset,
                              tcp_offset_m, iters, damping)
        if _within(err, tol_m, tol_rad):
            return sol
        if best_err is None or np.linalg.norm(err) < np.linalg.norm(best_err):
            best_q, best_err = sol, err
    raise IkError(
        f'no IK solution within {tol_m} m / {tol_rad} rad; best position error '
        f'{np.linalg.norm(best_err[:3]):.4g} m, rotation error {np.linalg.norm(best_err[3:]):.4g} '
        f'rad at q={np.round(best_q, 4).tolist()}')
