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

"""Hand-eye calibration (vla-calibrate) on synthetic noisy data, degenerate input and the file.

The synthetic set-up is the simulated one: the camera where config/calibration.yaml puts it,
a target on the gripper at an offset from the flange, arm poses from forward kinematics around
the ready pose, and 0.5 mm of noise on every coordinate the camera sees.
"""

import csv

import numpy as np
import pytest

from vla_nodes import contract, paths
from vla_nodes.arm.kinematics import forward_kinematics, pose_to_xyz_quat
from vla_nodes.perception import calibrate
from vla_nodes.ros.msgs import geometry_msgs, tf2_msgs

READY = np.array(contract.READY_POSITIONS[:6])
OFFSET = np.array([0.012, -0.02, 0.135])  # target in the flange frame (m)


def truth() -> np.ndarray:
    return calibrate.read_calibration(paths.package_share() / 'config' /
                                      'calibration.yaml').camera_to_base


def samples(n=30, noise_m=0.0005, spread_rad=0.4, seed=0, offset=OFFSET):
    """(N, 4, 4) flange poses and (N, 3) noisy target positions in the camera frame."""
    rng = np.random.default_rng(seed)
    poses = np.array([forward_kinematics(q) for q in READY + rng.uniform(
        -spread_rad, spread_rad, (n, 6))])
    in_base = poses[:, :3, 3] + poses[:, :3, :3] @ offset
    base_to_camera = np.linalg.inv(truth())
    seen = in_base @ base_to_camera[:3, :3].T + base_to_camera[:3, 3]
    return poses, seen + rng.normal(0.0, noise_m, seen.shape)


def errors(found: np.ndarray) -> tuple:
    """(translation error m, rotation error deg) against the true camera pose."""
    return (np.linalg.norm(found[:3, 3] - truth()[:3, 3]),
            calibrate.rotation_error_deg(found, truth()))


@pytest.mark.parametrize('offset_known', [True, False])
def test_hand_eye_recovers_a_known_transform_within_2mm_and_half_a_degree(offset_known):
    poses, seen = samples()
    result = calibrate.solve_hand_eye(poses, seen, OFFSET if offset_known else None)
    translation_m, rotation_deg = errors(result.camera_to_base)
    assert translation_m <= 0.002 and rotation_deg <= 0.5
    np.testing.assert_allclose(result.target_offset, OFFSET, atol=0.002)
    # The residual is the noise: sqrt(3) * 0.5 mm per sample on average.
    assert 0.0005 < result.rms_error_m < 0.0015
    assert result.residuals_m.shape == (30,)


def test_hand_eye_is_exact_without_noise():
    poses, seen = samples(n=8, noise_m=0.0)
    result = calibrate.solve_hand_eye(poses, seen)
    translation_m, rotation_deg = errors(result.camera_to_base)
    assert translation_m < 1e-6 and rotation_deg < 1e-4 and result.rms_error_m < 1e-6


def test_degenerate_input_gets_errors_that_say_what_to_record():
    poses, seen = samples()
    with pytest.raises(calibrate.CalibrationError, match='at least 4'):
        calibrate.solve_hand_eye(poses[:3], seen[:3])
    # Translations along one line, orientation fixed.
    line = np.tile(poses[0], (10, 1, 1))
    line[:, 0, 3] += np.linspace(0.0, 0.2, 10)
    line_seen = (line[:, :3, 3] + line[:, :3, :3] @ OFFSET) @ np.linalg.inv(truth())[:3, :3].T
    with pytest.raises(calibrate.CalibrationError, match='collinear'):
        calibrate.solve_hand_eye(line, line_seen)
    # Translations in a plane, orientation fixed: the offset cannot be separated.
    grid = np.tile(poses[0], (9, 1, 1))
    grid[:, 0, 3] += np.repeat([0.0, 0.1, 0.2], 3)
    grid[:, 1, 3] += np.tile([0.0, 0.1, 0.2], 3)
    grid_seen = (grid[:, :3, 3] @ np.linalg.inv(truth())[:3, :3].T)
    with pytest.raises(calibrate.CalibrationError, match='rotate the wrist'):
        calibrate.solve_hand_eye(grid, grid_seen)
    fixed = calibrate.solve_hand_eye(grid, grid_seen + np.linalg.inv(truth())[:3, 3],
                                     target_offset=(0.0, 0.0, 0.0))  # known offset: solvable
    assert errors(fixed.camera_to_base)[0] < 1e-9
    bad = seen.copy()
    bad[3, 1] = np.nan
    with pytest.raises(calibrate.CalibrationError, match='NaN'):
        calibrate.solve_hand_eye(poses, bad)


def test_config_calibration_is_the_simulated_camera_pose():
    from vla_nodes.sim.world import SimConfig, SimWorld
    world = SimWorld(SimConfig(width=64, height=48))
    translation_m, rotation_deg = errors(world.camera_pose())
    assert translation_m < 1e-6 and rotation_deg < 1e-3


def test_calibration_file_round_trip_and_tf_static(tmp_path):
    cal = calibrate.Calibration(truth(), method='hand_eye', rms_error_m=0.0012)
    path = tmp_path / 'calibration.yaml'
    calibrate.write_calibration(path, cal, comment='test')
    back = calibrate.read_calibration(path)
    np.testing.assert_allclose(back.camera_to_base, truth(), atol=1e-6)
    assert (back.parent_frame, back.child_frame, back.method, back.rms_error_m) == (
        'base_link', 'camera_color_optical_frame', 'hand_eye', 0.0012)
    tf = geometry_msgs.TransformStamped(child_frame_id=contract.CAMERA_FRAME)
    tf.header.frame_id = contract.BASE_FRAME
    x, y, z, qx, qy, qz, qw = (float(v) for v in pose_to_xyz_quat(truth()))
    tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = x, y, z
    r = tf.transform.rotation
    r.x, r.y, r.z, r.w = qx, qy, qz, qw
    other = geometry_msgs.TransformStamped(child_frame_id='tool')
    message = tf2_msgs.TFMessage(transforms=[other, tf])
    np.testing.assert_allclose(calibrate.camera_to_base_from_tf(message), truth(), atol=1e-9)
    assert calibrate.camera_to_base_from_tf(tf2_msgs.TFMessage(transforms=[other])) is None


@pytest.mark.parametrize('text, match', [
    ('camera_to_base: {translation: [1, 2]}', 'rotation_xyzw'),
    ('camera_to_base: {translation: [0, 0, 0], rotation_xyzw: [0, 0, 0, 2]}', 'unit quat'),
    ('other: 1', 'camera_to_base'),
])
def test_bad_calibration_files_are_refused_clearly(tmp_path, text, match):
    path = tmp_path / 'bad.yaml'
    path.write_text(text)
    with pytest.raises(calibrate.CalibrationError, match=match):
        calibrate.read_calibration(path)
    with pytest.raises(calibrate.CalibrationError, match='not found'):
        calibrate.read_calibration(tmp_path / 'missing.yaml')


def write_samples(path, poses, seen):
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(calibrate.SAMPLE_COLUMNS)
        for pose, point in zip(poses, seen):
            writer.writerow([*pose_to_xyz_quat(pose), *point])


def test_vla_calibrate_cli_writes_the_calibration_file(tmp_path, capsys):
    poses, seen = samples()
    write_samples(tmp_path / 'samples.csv', poses, seen)
    out = tmp_path / 'calibration.yaml'
    assert calibrate.main([str(tmp_path / 'samples.csv'), '-o', str(out)]) == 0
    assert 'rms residual' in capsys.readouterr().out
    written = calibrate.read_calibration(out)
    assert written.method == 'hand_eye' and 0.0005 < written.rms_error_m < 0.0015
    translation_m, rotation_deg = errors(written.camera_to_base)
    assert translation_m <= 0.002 and rotation_deg <= 0.5


def test_vla_calibrate_cli_reports_bad_data_without_writing(tmp_path, capsys):
    poses, seen = samples(n=3)
    write_samples(tmp_path / 'few.csv', poses, seen)
    out = tmp_path / 'calibration.yaml'
    assert calibrate.main([str(tmp_path / 'few.csv'), '-o', str(out)]) == 1
    assert 'at least 4' in capsys.readouterr().err and not out.exists()
    (tmp_path / 'cols.csv').write_text('ee_x,ee_y\n1,2\n')
    assert calibrate.main([str(tmp_path / 'cols.csv'), '-o', str(out)]) == 1
    assert 'missing columns' in capsys.readouterr().err
