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

"""vla-calibrate: hand-eye calibration of the camera-to-base transform, and the calibration file.

A target (a marker, a coloured ball) is fixed to the gripper; at each of N arm poses the
end-effector pose is recorded in base_link (`/vla/ee_pose`: the flange) together with the
target's 3D position in the camera optical frame (e.g. its pixel back-projected with depth).
For every sample i, with X = (R, t) the camera's pose in base_link and o the target's unknown
position in the flange frame:

    R p_i + t = R_i o + t_i

With a known offset this is a rigid point-set registration, solved in closed form (Kabsch /
Umeyama, SVD). With an unknown offset the solver alternates Kabsch for (R, t) and a linear
least-squares solve for (t, o), from o = 0; it needs wrist rotations about two axes or more.
Degenerate input (too few samples, collinear target positions, no wrist rotation) raises a
`CalibrationError` that says what to record instead.

The result is written in the format of `config/calibration.yaml`, which `pose_node` and
`depth_node` read (`read_calibration`); `camera_to_base_from_tf` reads the same transform from
a /tf_static message instead.

    vla-calibrate samples.csv -o config/calibration.yaml [--target-offset X Y Z]

samples.csv: one row per pose, header `ee_x,ee_y,ee_z,ee_qx,ee_qy,ee_qz,ee_qw,target_x,
target_y,target_z` (m; ee in base_link, target in the camera optical frame).
"""

import argparse
import csv
from dataclasses import dataclass
import math
from pathlib import Path
import sys

import numpy as np
import yaml

from vla_nodes import contract
from vla_nodes.arm.kinematics import matrix_from_quat, quat_from_matrix, rotation_log

SAMPLE_COLUMNS = ('ee_x', 'ee_y', 'ee_z', 'ee_qx', 'ee_qy', 'ee_qz', 'ee_qw',
                  'target_x', 'target_y', 'target_z')
MIN_SAMPLES = 4
# Relative singular-value floors below which the data cannot pin the solution down.
_COLLINEAR_RATIO = 1e-2    # 2nd / 1st spread of the target positions
_ROTATION_RATIO = 1e-2     # smallest / largest singular value of the offset's design matrix


class CalibrationError(ValueError):
    """Raised for calibration data that cannot determine the transform, or a bad file."""


@dataclass(frozen=True)
class Calibration:
    """The camera-to-base transform and where it came from.

    Attributes:
        camera_to_base: (4, 4) camera optical frame in base_link (m).
        parent_frame: 'base_link'.
        child_frame: 'camera_color_optical_frame'.
        method: 'hand_eye', 'sim', 'manual' ...
        rms_error_m: residual of the fit that produced it (m), 0 if exact.
    """

    camera_to_base: np.ndarray
    parent_frame: str = contract.BASE_FRAME
    child_frame: str = contract.CAMERA_FRAME
    method: str = 'hand_eye'
    rms_error_m: float = 0.0


@dataclass(frozen=True)
class HandEyeResult:
    """What `solve_hand_eye` found.

    Attributes:
        camera_to_base: (4, 4) camera optical frame in base_link (m).
        target_offset: (3,) target position in the flange frame (m), given or estimated.
        rms_error_m: root mean square of the per-sample residuals (m).
        residuals_m: (N,) distance between R p_i + t and R_i o + t_i per sample (m).
    """

    camera_to_base: np.ndarray
    target_offset: np.ndarray
    rms_error_m: float
    residuals_m: np.ndarray


# --- solvers -------------------------------------------------------------------------------------
def kabsch(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rigid transform T (no scale) minimizing sum |T source_i - target_i|^2.

    Args:
        source: (N, 3) points (m).
        target: (N, 3) corresponding points (m).

    Returns:
        (4, 4) transform with target ~= R source + t, det R = +1.
    """
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    u, _, vt = np.linalg.svd((target - mu_t).T @ (source - mu_s))
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])  # a rotation, not a reflection
    pose = np.eye(4)
    pose[:3, :3] = u @ fix @ vt
    pose[:3, 3] = mu_t - pose[:3, :3] @ mu_s
    return pose


def _check_spread(points: np.ndarray, what: str) -> None:
    """Raise unless `points` (N, 3) span at least a plane."""
    spread = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)
    if spread[0] < 1e-4 or spread[1] < _COLLINEAR_RATIO * spread[0]:
        raise CalibrationError(
            f'the {what} are (nearly) collinear or all in one place (spread {spread[0]:.4f} m, '
            f'{spread[1]:.4f} m): move the arm in at least two directions, e.g. over a '
            '20 x 20 cm grid at two heights')


def solve_hand_eye(ee_poses, target_cam, target_offset=None, iterations: int = 500,
                   tolerance_m: float = 1e-10) -> HandEyeResult:
    """Camera-to-base transform from end-effector poses and a target seen by the camera.

    Args:
        ee_poses: (N, 4, 4) flange poses in base_link (m).
        target_cam: (N, 3) target positions in the camera optical frame (m).
        target_offset: (3,) target position in the flange frame (m) when known (e.g. a marker
            at the TCP: (0, 0, TCP_OFFSET_M)); None estimates it too.
        iterations: most alternations when the offset is estimated.
        tolerance_m: stop when the offset moves less than this per alternation (m).

    Returns:
        The transform, the offset and the residuals.

    Raises:
        CalibrationError: shapes wrong, non-finite values, fewer than MIN_SAMPLES samples,
            collinear target positions, or (offset unknown) too little wrist rotation.
    """
    poses = np.asarray(ee_poses, dtype=np.float64)
    seen = np.asarray(target_cam, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or seen.shape != (len(poses), 3):
        raise CalibrationError(f'need (N, 4, 4) poses and (N, 3) target positions, got '
                               f'{poses.shape} and {seen.shape}')
    if not (np.isfinite(poses).all() and np.isfinite(seen).all()):
        raise CalibrationError('samples contain NaN/Inf: drop the rows where the target was '
                               'not seen')
    if len(poses) < MIN_SAMPLES:
        raise CalibrationError(f'{len(poses)} samples: record at least {MIN_SAMPLES} (10 or '
                               'more spread over the workspace give a good fit)')
    _check_spread(seen, 'target positions seen by the camera')
    rots, trans = poses[:, :3, :3], poses[:, :3, 3]
    if target_offset is not None:
        offset = np.asarray(target_offset, dtype=np.float64).reshape(3)
        pose = kabsch(seen, trans + rots @ offset)
    else:
        pose, offset = _alternate(rots, trans, seen, iterations, tolerance_m)
    residuals = np.linalg.norm(seen @ pose[:3, :3].T + pose[:3, 3] - (trans + rots @ offset),
                               axis=1)
    return HandEyeResult(pose, offset, float(np.sqrt(np.mean(residuals ** 2))), residuals)


def _alternate(rots, trans, seen, iterations, tolerance_m) -> tuple:
    """Alternate Kabsch (R, t | o) and linear least squares (t, o | R), from o = 0."""
    n = len(rots)
    design = np.zeros((3 * n, 6))  # [I, -R_i] [t; o] = t_i - R p_i
    design[:, :3] = np.tile(np.eye(3), (n, 1))
    design[:, 3:] = -rots.reshape(3 * n, 3)
    singular = np.linalg.svd(design, compute_uv=False)
    if singular[-1] < _ROTATION_RATIO * singular[0]:
        raise CalibrationError(
            'the end-effector orientations barely vary, so the target offset on the gripper '
            'cannot be told apart from the camera position: rotate the wrist between poses '
            '(20 deg or more about two axes) or give the offset (--target-offset)')
    offset = np.zeros(3)
    for _ in range(iterations):
        pose = kabsch(seen, trans + rots @ offset)
        rhs = (trans - seen @ pose[:3, :3].T).reshape(-1)
        solution = np.linalg.lstsq(design, rhs, rcond=None)[0]
        moved = np.linalg.norm(solution[3:] - offset)
        offset = solution[3:]
        if moved < tolerance_m:
            break
    return kabsch(seen, trans + rots @ offset), offset


# --- files ---------------------------------------------------------------------------------------
def read_calibration(path) -> Calibration:
    """Read a calibration file (the format of `config/calibration.yaml`).

    Raises:
        CalibrationError: missing file or keys, or a rotation that is not a unit quaternion.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f'calibration file not found: {path}; run vla-calibrate or set '
                               'calibration_file to config/calibration.yaml')
    try:
        section = yaml.safe_load(path.read_text())['camera_to_base']
        translation = np.asarray(section['translation'], dtype=np.float64)
        quat = np.asarray(section['rotation_xyzw'], dtype=np.float64)
    except (TypeError, KeyError, ValueError, yaml.YAMLError) as err:
        raise CalibrationError(f'{path}: expected camera_to_base: {{translation: [x, y, z], '
                               f'rotation_xyzw: [x, y, z, w], ...}} ({err!r})') from err
    if translation.shape != (3,) or quat.shape != (4,) or not np.isfinite(
            np.concatenate([translation, quat])).all():
        raise CalibrationError(f'{path}: translation needs 3 and rotation_xyzw 4 finite numbers')
    if abs(np.linalg.norm(quat) - 1.0) > 1e-3:
        raise CalibrationError(f'{path}: rotation_xyzw {quat.tolist()} is not a unit quaternion '
                               f'(norm {np.linalg.norm(quat):.4f})')
    pose = np.eye(4)
    pose[:3, :3] = matrix_from_quat(quat)
    pose[:3, 3] = translation
    return Calibration(pose, section.get('parent_frame', contract.BASE_FRAME),
                       section.get('child_frame', contract.CAMERA_FRAME),
                       str(section.get('method', 'unknown')),
                       float(section.get('rms_error_m', 0.0)))


def write_calibration(path, calibration: Calibration, comment: str = '') -> None:
    """Write `calibration` in the format of `config/calibration.yaml` (comment lines first)."""
    t = calibration.camera_to_base[:3, 3]
    q = quat_from_matrix(calibration.camera_to_base[:3, :3])
    lines = ["# Camera-to-base calibration: the pose of the camera's optical frame in the arm's "
             'base frame.']
    lines += [f'# {line}' for line in comment.splitlines()]
    lines += [
        'camera_to_base:',
        f'  parent_frame: {calibration.parent_frame}',
        f'  child_frame: {calibration.child_frame}',
        f'  translation: [{", ".join(f"{v:.6f}" for v in t)}]   # metres',
        f'  rotation_xyzw: [{", ".join(f"{v:.7f}" for v in q)}]   # unit quaternion',
        f'  method: {calibration.method}',
        f'  rms_error_m: {calibration.rms_error_m:.6f}',
    ]
    Path(path).write_text('\n'.join(lines) + '\n')


def camera_to_base_from_tf(tf_message, parent: str = contract.BASE_FRAME,
                           child: str = contract.CAMERA_FRAME):
    """(4, 4) pose of `child` in `parent` from a tf2_msgs/TFMessage, or None if absent."""
    for tf in tf_message.transforms:
        if tf.header.frame_id.lstrip('/') == parent and tf.child_frame_id.lstrip('/') == child:
            t, r = tf.transform.translation, tf.transform.rotation
            pose = np.eye(4)
            pose[:3, :3] = matrix_from_quat([r.x, r.y, r.z, r.w])
            pose[:3, 3] = (t.x, t.y, t.z)
            return pose
    return None


def read_samples(path) -> tuple:
    """(N, 4, 4) ee poses and (N, 3) target positions from a samples CSV (see module doc)."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f'samples file not found: {path}')
    with path.open(newline='') as f:
        reader = csv.DictReader(f)
        missing = [c for c in SAMPLE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CalibrationError(f'{path}: missing columns {missing}; the header must be '
                                   f'{",".join(SAMPLE_COLUMNS)}')
        try:
            rows = np.array([[float(row[c]) for c in SAMPLE_COLUMNS] for row in reader])
        except ValueError as err:
            raise CalibrationError(f'{path}: {err}') from err
    rows = rows.reshape(-1, len(SAMPLE_COLUMNS))
    poses = np.tile(np.eye(4), (len(rows), 1, 1))
    for pose, row in zip(poses, rows):
        pose[:3, :3] = matrix_from_quat(row[3:7])
        pose[:3, 3] = row[:3]
    return poses, rows[:, 7:10]


def rotation_error_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (deg) of the rotation between two (4, 4) or (3, 3) poses."""
    return math.degrees(np.linalg.norm(rotation_log(a[:3, :3].T @ b[:3, :3])))


def main(argv=None) -> int:
    """vla-calibrate: samples CSV -> calibration YAML; prints the fit; 1 on bad data."""
    parser = argparse.ArgumentParser(
        prog='vla-calibrate', description=__doc__.split('\n\n')[0],
        epilog='Columns of SAMPLES: ' + ','.join(SAMPLE_COLUMNS) + ' (m; ee in base_link, '
        'target in the camera optical frame).')
    parser.add_argument('samples', help='CSV of end-effector poses and target positions')
    parser.add_argument('-o', '--output', default='calibration.yaml',
                        help='calibration YAML to write (default: %(default)s)')
    parser.add_argument('--target-offset', nargs=3, type=float, metavar=('X', 'Y', 'Z'),
                        help='target position in the flange frame (m), if known')
    args = parser.parse_args(argv)
    try:
        poses, seen = read_samples(args.samples)
        result = solve_hand_eye(poses, seen, args.target_offset)
    except CalibrationError as err:
        print(f'vla-calibrate: {err}', file=sys.stderr)
        return 1
    offset = ' '.join(f'{v:.4f}' for v in result.target_offset)
    write_calibration(args.output, Calibration(result.camera_to_base, method='hand_eye',
                                               rms_error_m=result.rms_error_m),
                      comment=f'Written by vla-calibrate from {len(poses)} samples in '
                      f'{args.samples}; target offset in the flange frame: {offset} m.')
    print(f'{len(poses)} samples, rms residual {result.rms_error_m * 1000:.2f} mm, max '
          f'{result.residuals_m.max() * 1000:.2f} mm; target offset {offset} m')
    print(f'wrote {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
