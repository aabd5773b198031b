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

"""Transforms with literal values, checkpoints and their robot contract, VLAPolicy.infer."""

import json
import os
from pathlib import Path
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from vla_nodes.contract import (ACTION, JOINT_NAMES, OBS_DEPTH, OBS_IMAGE, OBS_INTRINSICS,
                                OBS_STATE, READY_POSITIONS)
from vla_nodes.models import presets
from vla_nodes.policy.checkpoint import (ContractMismatchError, load_checkpoint, make_contract,
                                         save_checkpoint)
from vla_nodes.policy.policy import make_piper_example, VLAPolicy
from vla_nodes.policy.transforms import (compose, compute_stats, crop_fraction, MIN_NORM_RANGE,
                                         Normalize, NormStats, resize_with_pad, ResizeWithPad,
                                         stats_from_dict, stats_to_dict, Unnormalize)

NAN = float('nan')
ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures('one_thread')


def stats_1d():
    one = np.ones(1, dtype=np.float32)
    return {ACTION: NormStats(mean=one, std=2 * one, q01=0 * one, q99=4 * one)}


# --- transforms ---------------------------------------------------------------------------------

def test_depth_resize_is_nearest_and_keeps_nan():
    depth = np.arange(16, dtype=np.float32).reshape(4, 4)
    depth[1, 3] = NAN
    out = resize_with_pad(depth, 2, 2)
    np.testing.assert_array_equal(out, [[5.0, NAN], [13.0, 15.0]])


def test_depth_padding_is_nan():
    depth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.float32)
    out = ResizeWithPad(4, 4)({OBS_DEPTH: depth})[OBS_DEPTH]
    np.testing.assert_array_equal(out, [[NAN] * 4, [1, 2, 3, 4], [5, 6, 7, 8], [NAN] * 4])
    assert out.dtype == np.float32


def test_image_resize_bilinear_and_black_padding():
    image = np.zeros((1, 2, 3), dtype=np.uint8)
    image[0, 1] = 200
    out = resize_with_pad(image, 3, 4)
    # Upsampling 2 -> 4 columns interpolates; 1 -> 2 rows, centred with one black row below.
    np.testing.assert_array_equal(out[..., 0], [[0, 50, 150, 200], [0, 50, 150, 200], [0] * 4])
    assert out.dtype == np.uint8 and out.shape == (3, 4, 3)


def test_image_downscale_is_antialiased():
    image = np.array([[0, 40, 80, 120]], dtype=np.uint8)[..., None]  # (1, 4, 1)
    out = resize_with_pad(image, 1, 2)
    # Triangle filter of half-width 2: weights (.75, .75, .25) / 1.75 around each output.
    assert out[0, :, 0].tolist() == [29, 91]


def test_camera_frame_fits_the_model_input():
    obs = make_piper_example()
    out = ResizeWithPad(64, 64)(obs)
    assert out[OBS_IMAGE].shape == (64, 64, 3) and out[OBS_DEPTH].shape == (64, 64)
    # 480x640 -> 48x64, centred: 8 padded rows above and below.
    assert not out[OBS_IMAGE][:8].any() and np.isnan(out[OBS_DEPTH][:8]).all()
    assert out[OBS_IMAGE][8:56].any() and np.isfinite(out[OBS_DEPTH][8:56]).mean() > 0.9
    assert obs[OBS_IMAGE].shape == (480, 640, 3)  # the input dict is left alone


def test_crop_keeps_the_same_fraction_of_the_frame_at_any_resolution():
    image = np.arange(48 * 64).reshape(48, 64)
    out = crop_fraction(image, (0.25, 0.5, 1.0, 0.75))
    assert out.shape == (36, 16) and out[0, 0] == image[12, 32] and out[-1, -1] == image[47, 47]
    assert crop_fraction(image[::2, ::2], (0.25, 0.5, 1.0, 0.75)).shape == (18, 8)
    assert crop_fraction(image, None) is image and crop_fraction(image, ()) is image
    for bad in ((0.5, 0, 0.4, 1), (0, 0, 1), (-0.1, 0, 1, 1), (0, 0, 1, 1.2)):
        with pytest.raises(ValueError, match='crop'):
            crop_fraction(image, bad)


def test_quantile_normalize_literal_and_inverse():
    x = {ACTION: np.array([[0.0], [2.0], [4.0], [5.0]], dtype=np.float32)}
    norm = Normalize(stats_1d())(x)[ACTION]
    np.testing.assert_allclose(norm[:, 0], [-1.0, 0.0, 1.0, 1.5], atol=1e-5)  # not clipped
    back = Unnormalize(stats_1d())({ACTION: norm})[ACTION]
    np.testing.assert_allclose(back, x[ACTION], atol=1e-5)


def test_gaussian_normalize_literal_and_inverse():
    x = {ACTION: np.array([1.0, 3.0], dtype=np.float32)[:, None]}
    norm = Normalize(stats_1d(), use_quantiles=False)(x)[ACTION]
    np.testing.assert_allclose(norm[:, 0], [0.0, 1.0], atol=1e-5)
    back = Unnormalize(stats_1d(), use_quantiles=False)({ACTION: norm})[ACTION]
    np.testing.assert_allclose(back, x[ACTION], atol=1e-5)


def test_compose_runs_in_order_and_skips_absent_keys():
    pipeline = compose([Normalize(stats_1d()), Unnormalize(stats_1d(), use_quantiles=False)])
    out = pipeline({ACTION: np.array([4.0], dtype=np.float32), 'task': 'x'})
    # 4 -> quantile 1.0 -> gaussian 1.0 * 2 + 1 = 3.
    np.testing.assert_allclose(out[ACTION], [3.0], atol=1e-5)
    assert out['task'] == 'x'


def test_stats_compute_and_json_round_trip():
    stats = {ACTION: compute_stats(np.arange(101, dtype=np.float32)[:, None])}
    assert stats[ACTION].mean.tolist() == [50.0] and stats[ACTION].q01.tolist() == [1.0]
    back = stats_from_dict(json.loads(json.dumps(stats_to_dict(stats))))
    for name in ('mean', 'std', 'q01', 'q99'):
        np.testing.assert_array_equal(getattr(back[ACTION], name), getattr(stats[ACTION], name))


def test_stats_of_a_joint_that_barely_moves_have_a_range_floor():
    """Piper's joint 4 spans ~0.001 rad in the demos.

    A 0.01 rad deviation at run time must stay a small normalised number (was ~20 units), while
    wide ranges keep their quantiles.
    """
    rng = np.random.default_rng(0)
    rows = np.stack([rng.uniform(-1.0, 1.0, 500), rng.uniform(0.0, 0.001, 500)], axis=1)
    stats = compute_stats(rows)
    assert stats.q99[1] - stats.q01[1] == pytest.approx(MIN_NORM_RANGE, rel=1e-4)
    assert stats.q01[0] == pytest.approx(np.quantile(rows[:, 0], 0.01), rel=1e-5)
    assert stats.std[1] >= MIN_NORM_RANGE / 2
    deviated = Normalize({ACTION: stats})({ACTION: np.array([0.0, 0.0105], np.float32)})[ACTION]
    assert abs(deviated[1]) < 1.0
    wide = compute_stats(rows, min_range=0.0)  # no floor: what training used to save
    assert abs(Normalize({ACTION: wide})({ACTION: np.array([0.0, 0.0105], np.float32)})[
        ACTION][1]) > 15


def test_transforms_and_contract_check_import_without_torch():
    code = ('import sys\n'
            'import vla_nodes.policy.checkpoint, vla_nodes.policy.transforms\n'
            'assert "torch" not in sys.modules, "torch imported"\n')
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    subprocess.run([sys.executable, '-c', code], check=True, cwd=ROOT, env=env)


# --- checkpoints and the robot contract ---------------------------------------------------------

@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp('policy')
    policy = VLAPolicy.random_init(seed=3)
    save_checkpoint(directory, policy.model, policy.stats, make_contract(16, (56, 56)))
    return directory, policy


def test_checkpoint_round_trip_reproduces_chunks(checkpoint):
    directory, policy = checkpoint
    assert json.loads((directory / 'policy.json').read_text())['contract']['units'][-1] == 'm'
    loaded = VLAPolicy.from_checkpoint(directory)
    obs = make_piper_example(seed=11)
    np.testing.assert_array_equal(loaded.infer(obs)['actions'], policy.infer(obs)['actions'])


def test_contract_mismatch_names_the_fields(checkpoint):
    directory, _ = checkpoint
    left_arm = [f'left_{name}' for name in JOINT_NAMES]
    robot = make_contract(16, (56, 56), action_rate_hz=30.0, joint_names=left_arm)
    with pytest.raises(ContractMismatchError) as error:
        load_checkpoint(directory, expected_contract=robot)
    message = str(error.value)
    assert 'action_rate_hz' in message and 'joint_names' in message
    assert 'chunk_length' not in message and 'image_size' not in message
    same = load_checkpoint(directory, expected_contract=make_contract(16, (56, 56)))
    assert same['preset'] == 'tiny' and same['model'].config == presets.get('tiny_pi0_depth')


def _edit(contract=None, stats=None):
    """A policy.json edit: contract fields replaced (None deletes), or stats rewritten."""
    def apply(policy):
        for key, value in (contract or {}).items():
            if value is None:
                policy['contract'].pop(key)
            else:
                policy['contract'][key] = value
        if stats:
            stats(policy['norm_stats'])
    return apply


def _set(key, field, value):
    def apply(stats):
        stats[key][field] = value
    return apply


ARM_UNITS = ['rad'] * 6 + ['m']


@pytest.mark.parametrize('edit, complaint', [
    (_edit({'units': ['deg'] * 6 + ['mm']}), r"units \['deg'"),
    (_edit({'units': None}), 'units None'),
    (_edit({'units': ['m'] + ARM_UNITS[1:6] + ['rad']}), 'units'),  # swapped
    (_edit({'joint_names': None}), 'joint_names None'),
    (_edit({'joint_names': list(JOINT_NAMES[:6])}), 'action_dim 7 differs from the 6'),
    (_edit({'action_rate_hz': 0.0}), 'action_rate_hz 0.0'),
    (_edit({'action_rate_hz': None}), 'action_rate_hz None'),
    (_edit({'chunk_length': 10}), "chunk_length 10 differs from the model's horizon 16"),
    (_edit({'image_size': [64, 64]}), 'image_size'),
    (_edit({'image_crop': [0.6, 0.0, 0.2, 1.0]}), 'image_crop'),
    (_edit(stats=_set(ACTION, 'q99', [1.0] * 6)), r"'action'\]\.q99 has shape \(6,\)"),
    (_edit(stats=_set(OBS_STATE, 'mean', [NAN] * 7)), 'mean is not finite'),
    (_edit(stats=lambda stats: stats.pop(ACTION)), "lack 'action'"),
    (_edit(stats=lambda stats: stats[ACTION].pop('std')), 'norm_stats are malformed'),
])
def test_an_unusable_checkpoint_is_refused_at_load_in_one_line(
        checkpoint, tmp_path, edit, complaint):
    """Issue 12.11: every field that changes what reaches the arm is checked before loading."""
    directory = tmp_path / 'ckpt'
    shutil.copytree(checkpoint[0], directory)
    policy = json.loads((directory / 'policy.json').read_text())
    edit(policy)
    (directory / 'policy.json').write_text(json.dumps(policy))
    with pytest.raises(ContractMismatchError, match=complaint) as error:
        VLAPolicy.from_checkpoint(directory)
    assert '\n' not in str(error.value) and 'retrain' in str(error.value)


def test_save_refuses_a_contract_the_model_cannot_keep(tmp_path):
    policy = VLAPolicy.random_init()
    with pytest.raises(ContractMismatchError, match='chunk_length'):
        save_checkpoint(tmp_path, policy.model, policy.stats, make_contract(50, (56, 56)))


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent'.*policy\.json"):
        VLAPolicy.from_checkpoint(tmp_path / 'absent')


# --- VLAPolicy ----------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def policy():
    return VLAPolicy.random_init()


def test_infer_on_piper_example(policy):
    result = policy.infer(make_piper_example())
    actions = result['actions']
    assert actions.shape == (16, 7) and actions.dtype == np.float32
    assert np.isfinite(actions).all() and result['infer_ms'] > 0
    # Unnormalized with the demo stats: joint targets scatter around the ready pose, in rad.
    assert np.abs(actions[:, :6].mean(0) - READY_POSITIONS[:6]).max() < 0.5


def test_observation_seed_fixes_the_chunk(policy):
    obs = make_piper_example(seed=5)
    first = policy.infer(obs)['actions']
    policy.infer(make_piper_example(seed=6))  # other calls in between change nothing
    np.testing.assert_array_equal(policy.infer(obs)['actions'], first)
    assert np.abs(policy.infer({**obs, 'seed': 6})['actions'] - first).max() > 1e-3


def test_unseeded_noise_restarts_on_reset(policy):
    obs = {k: v for k, v in make_piper_example().items() if k != 'seed'}
    policy.reset()
    first, second = policy.infer(obs)['actions'], policy.infer(obs)['actions']
    assert np.abs(first - second).max() > 1e-3
    policy.reset()
    np.testing.assert_array_equal(policy.infer(obs)['actions'], first)


def test_random_init_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a, b = VLAPolicy.random_init(seed=1), VLAPolicy.random_init(seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    obs = make_piper_example()
    np.testing.assert_array_equal(a.infer(obs)['actions'], b.infer(obs)['actions'])


def test_bad_observations_are_refused(policy):
    obs = make_piper_example()
    with pytest.raises(ValueError, match='finite'):
        policy.infer({**obs, OBS_STATE: np.full(7, np.nan, dtype=np.float32)})
    with pytest.raises(ValueError, match='uint8'):
        policy.infer({**obs, OBS_IMAGE: obs[OBS_IMAGE].astype(np.float32)})
    with pytest.raises(KeyError, match='observation.depth'):
        policy.infer({k: v for k, v in obs.items() if k != OBS_DEPTH})


def test_vlm4vla_policy_needs_no_depth_and_snaps_the_gripper(tmp_path):
    policy = VLAPolicy.random_init(presets.get('tiny_vlm4vla'), seed=2)
    obs = {k: v for k, v in make_piper_example().items() if k != OBS_DEPTH}
    actions = policy.infer(obs)['actions']
    assert actions.shape == (10, 7)
    stats = policy.stats[ACTION]
    # The gripper is binary: the q01 (closed) or q99 (open) opening, in metres.
    closed = np.isclose(actions[:, 6], stats.q01[6], atol=1e-5)
    opened = np.isclose(actions[:, 6], stats.q99[6], atol=1e-5)
    assert np.all(closed | opened)
    save_checkpoint(tmp_path, policy.model, policy.stats, make_contract(10, (56, 56)),
                    preset='tiny_vlm4vla')
    np.testing.assert_array_equal(VLAPolicy.from_checkpoint(tmp_path).infer(obs)['actions'],
                                  actions)  # deterministic: no noise, no seed needed


def test_intrinsics_follow_the_crop_and_the_resize_with_pad():
    from vla_nodes.policy.transforms import resize_intrinsics
    k = np.array([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]])
    # 640 x 480 -> 56 x 42 content (x 0.0875), 7 rows of padding on top.
    np.testing.assert_allclose(resize_intrinsics(k, (480, 640), 56, 56),
                               [[43.75, 0, 27.5], [0, 43.75, 27.5], [0, 0, 1]], atol=1e-5)
    # The bottom-right quarter (320 x 240 px from (320, 240)) fills 56 x 42 at x 0.175: the
    # principal point, now the crop's top-left corner, lands half a pixel before the content.
    cropped = resize_intrinsics(k, (480, 640), 56, 56, (0.5, 0.5, 1.0, 1.0))
    np.testing.assert_allclose(cropped, [[87.5, 0, -0.5], [0, 87.5, 6.5], [0, 0, 1]],
                               atol=1e-5)
    # A pixel of the frame and its image under the resize agree with the new K's projection.
    point = np.array([0.1, -0.05, 0.8])
    u, v = (k @ point / point[2])[:2]
    out = ResizeWithPad(56, 56)({OBS_IMAGE: np.zeros((480, 640, 3), np.uint8),
                                 OBS_INTRINSICS: k})[OBS_INTRINSICS]
    np.testing.assert_allclose((out @ point / point[2])[:2],
                               [(u + 0.5) * 0.0875 - 0.5, (v + 0.5) * 0.0875 - 0.5 + 7],
                               atol=1e-4)


def test_a_ray_map_policy_reads_the_camera_intrinsics():
    """Issue 12.7: K from the observation (policy_node: camera_info) reaches the ray prior."""
    from vla_nodes.nodes.policy_inputs import frame_intrinsics
    from vla_nodes.ros.msgs import sensor_msgs
    policy = VLAPolicy.random_init(presets.get('tiny_pose_vla'), seed=0)
    obs = make_piper_example(seed=1)
    k = np.array([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]])
    without = policy.infer(obs)['actions']
    with_k = policy.infer({**obs, OBS_INTRINSICS: k})['actions']
    other_k = policy.infer({**obs, OBS_INTRINSICS: k * [[0.5], [0.5], [1]]})['actions']
    assert np.abs(with_k - without).max() > 1e-4 and np.abs(with_k - other_k).max() > 1e-4
    with pytest.raises(ValueError, match='3 x 3 K'):
        policy.infer({**obs, OBS_INTRINSICS: np.eye(2)})
    info = sensor_msgs.CameraInfo(width=640, height=480, k=k.flatten())
    color = sensor_msgs.Image(width=640, height=480)
    np.testing.assert_array_equal(frame_intrinsics(info, color), k)
    assert frame_intrinsics(info, sensor_msgs.Image(width=320, height=240)) is None
    assert frame_intrinsics(None, color) is None
