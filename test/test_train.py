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

"""vla-train on a small LeRobot v3 dataset: reading, stats, checkpoints, resume, DDP, bf16."""

from dataclasses import replace
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from vla_nodes.contract import (ACTION, JOINT_NAMES, OBS_DEPTH, OBS_EE_POSE, OBS_IMAGE,
                                OBS_INSTRUCTION, OBS_INTRINSICS, OBS_STATE, READY_POSITIONS)
from vla_nodes.models import presets
from vla_nodes.models.vla import ACTION_PAD, VLAModel
from vla_nodes.policy.checkpoint import read_policy_json
from vla_nodes.policy.policy import make_piper_example, VLAPolicy
from vla_nodes.policy.transforms import compute_stats
from vla_nodes.train.data import batch_indices, collate, DatasetError, LeRobotDataset
from vla_nodes.train.step import flow_noise, train_step
from vla_nodes.train.train import main

pytestmark = pytest.mark.usefixtures('one_thread')

ROOT = Path(__file__).resolve().parents[1]
FPS, FRAMES, EPISODES = 15, 20, 3
TASKS = ('pick up the cube', 'push the cube')


def joints(episode):
    """Follower state of an episode, rad / m: (FRAMES, 7)."""
    t = np.arange(FRAMES)[:, None] / FPS
    return (np.asarray(READY_POSITIONS) + 0.1 * np.sin(t + np.arange(7) + episode)).astype(
        np.float32)


def brightness(episode, frame):
    return 20 + 40 * episode + 5 * frame


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    """3 episodes x 20 rows at 15 Hz: 64x48 colour of known brightness, depth 600 + 10 k mm."""
    from vla_nodes.record.lerobot_v3 import LeRobotV3Writer
    out = tmp_path_factory.mktemp('data') / 'piper_cube'
    writer = LeRobotV3Writer(out, fps=FPS, names={OBS_STATE: JOINT_NAMES, ACTION: JOINT_NAMES,
                                                  OBS_EE_POSE: ('x', 'y', 'z', 'qx', 'qy', 'qz',
                                                                'qw')})
    for e in range(EPISODES):
        for k in range(FRAMES):
            writer.add_frame(OBS_IMAGE, np.full((48, 64, 3), brightness(e, k), np.uint8))
            depth = np.full((48, 64), 600 + 10 * k, np.uint16)
            depth[:8] = 0  # invalid rows
            writer.add_frame(OBS_DEPTH, depth)
        ok = np.ones(FRAMES, bool)
        ok[3] = e != 1  # one stale row in episode 1
        writer.add_episode({OBS_STATE: joints(e), ACTION: joints(e) + 0.01, 'sync_ok': ok,
                            OBS_EE_POSE: ee_poses(e)}, [TASKS[e % 2]] * FRAMES)
    # What vla-export stores: K of the 64 x 48 frame (principal point central) from camera_info,
    # and the calibration: here the camera sits at the base, looking along its z axis.
    return writer.finish(robot_type='piper', video_info={OBS_IMAGE: {
        'intrinsics': {'width': 64, 'height': 48, 'K': K_FRAME.tolist()},
        'calibration': {'camera_to_base': {'translation': [0.0, 0.0, 0.0],
                                           'rotation_xyzw': [0.0, 0.0, 0.0, 1.0]}}}})


def ee_poses(episode):
    """Gripper poses of an episode in base_link (x y z qx qy qz qw): in front of the camera."""
    t = np.arange(FRAMES)[:, None] / FPS
    xyz = np.concatenate([0.05 * np.sin(t + episode), 0.02 * np.cos(t), 0.5 + 0.1 * t], 1)
    return np.concatenate([xyz, np.tile([0.0, 0.0, 0.0, 1.0], (FRAMES, 1))], 1).astype(
        np.float32)


K_FRAME = np.array([[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]])


# --- data ---------------------------------------------------------------------------------------

def test_samples_hold_the_recorded_rows(dataset):
    data = LeRobotDataset(dataset, horizon=4, image_size=32, use_depth=True)
    assert len(data) == EPISODES * FRAMES - 1  # the stale row is not a sample
    assert data.names == list(JOINT_NAMES) and data.fps == FPS
    s = data[FRAMES + 5]  # episode 1, row 6 (row 3 was skipped)
    np.testing.assert_array_equal(s[OBS_STATE], joints(1)[6])
    np.testing.assert_array_equal(s[ACTION], joints(1)[6:10] + 0.01)
    assert s[OBS_INSTRUCTION] == TASKS[1] and not s[ACTION_PAD].any()
    # 64x48 -> 32x24 centred in 32x32: 4 padded rows, the depth's 8 invalid rows -> 4 NaN rows.
    assert s[OBS_IMAGE].shape == (32, 32, 3) and s[OBS_DEPTH].shape == (32, 32)
    assert abs(float(s[OBS_IMAGE][4:28].mean()) - brightness(1, 6)) < 4  # H.264 is lossy
    assert np.isnan(s[OBS_DEPTH][:8]).all()
    # LeRobot's 12-bit log codes: within half a code step, 0.7 mm at 0.66 m
    np.testing.assert_allclose(s[OBS_DEPTH][8:28], 0.66, rtol=0, atol=7e-4)


def test_lossless_16bit_depth_is_read_exactly(tmp_path):
    from vla_nodes.record.lerobot_v3 import LeRobotV3Writer
    writer = LeRobotV3Writer(tmp_path / 'ds', fps=FPS, depth_codec='ffv1-mm16')
    for k in range(FRAMES):
        writer.add_frame(OBS_IMAGE, np.full((48, 64, 3), 100, np.uint8))
        depth = np.full((48, 64), 600 + 10 * k, np.uint16)
        depth[:8] = 0
        writer.add_frame(OBS_DEPTH, depth)
    writer.add_episode({OBS_STATE: joints(0), ACTION: joints(0)}, [TASKS[0]] * FRAMES)
    s = LeRobotDataset(writer.finish(), horizon=4, image_size=32, use_depth=True)[6]
    assert np.isnan(s[OBS_DEPTH][:8]).all()
    np.testing.assert_allclose(s[OBS_DEPTH][8:28], 0.66)  # millimetres -> metres, exactly


def test_chunks_past_the_episode_end_are_padded(dataset):
    data = LeRobotDataset(dataset, horizon=4, image_size=32, episodes=[0])
    last = data[FRAMES - 2]
    assert last[ACTION_PAD].tolist() == [False, False, True, True]
    np.testing.assert_array_equal(last[ACTION][2:], np.stack([joints(0)[-1] + 0.01] * 2))
    assert OBS_DEPTH not in last


def test_stats_and_collate_normalize_like_the_policy(dataset):
    data = LeRobotDataset(dataset, horizon=4, image_size=32, episodes=[0, 2])
    stats = data.stats()
    rows = np.concatenate([joints(0), joints(2)])
    np.testing.assert_allclose(stats[OBS_STATE].q99, compute_stats(rows).q99)
    batch = collate([data[i] for i in range(3)], stats)
    assert batch[OBS_STATE].shape == (3, 7) and batch[ACTION].shape == (3, 4, 7)
    q01, q99 = stats[OBS_STATE].q01, stats[OBS_STATE].q99
    expected = 2 * (joints(0)[1] - q01) / (q99 - q01 + 1e-6) - 1  # q01..q99 -> [-1, 1]
    np.testing.assert_allclose(batch[OBS_STATE][1].numpy(), expected, atol=1e-4)
    assert batch[OBS_INSTRUCTION] == [TASKS[0]] * 3


def test_bad_folders_are_named(dataset, tmp_path):
    with pytest.raises(DatasetError, match='no meta/info.json.*vla-export'):
        LeRobotDataset(tmp_path, horizon=4, image_size=32)
    info = json.loads((dataset / 'meta' / 'info.json').read_text())
    (tmp_path / 'meta').mkdir()
    (tmp_path / 'meta' / 'info.json').write_text(json.dumps({**info, 'codebase_version': 'v2.1'}))
    with pytest.raises(DatasetError, match="'v2.1'.*v3"):
        LeRobotDataset(tmp_path, horizon=4, image_size=32)
    with pytest.raises(DatasetError, match=r'no episodes \[7\]'):
        LeRobotDataset(dataset, horizon=4, image_size=32, episodes=[7])


def test_batches_are_a_pure_function_of_seed_and_step():
    first = [batch_indices(10, 4, step, seed=1).tolist() for step in range(4)]
    assert first == [batch_indices(10, 4, step, seed=1).tolist() for step in range(4)]
    assert len(set(first[0] + first[1])) == 8  # an epoch does not repeat samples
    assert first != [batch_indices(10, 4, step, seed=2).tolist() for step in range(4)]


# --- vla-train ----------------------------------------------------------------------------------

def train(dataset, out, *extra):
    args = ['--data', str(dataset), '--out', str(out), '--batch-size', '4', '--lr', '1e-3',
            '--warmup', '1', '--val-every', '2', '--save-every', '2', '--val-batches', '1',
            '--no-progress', *extra]
    return main(args)


@pytest.fixture(scope='module')
def run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp('runs') / 'straight'
    assert train(dataset, out, '--steps', '4') == 0
    return out


def test_a_run_leaves_checkpoints_metrics_and_a_plot(run, dataset):
    assert (run / 'latest').read_text().strip() == 'checkpoints/step_000004'
    assert (run / 'checkpoints' / 'step_000002' / 'model.safetensors').is_file()
    assert (run / 'loss.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    metrics = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    assert [m['step'] for m in metrics] == [1, 2, 3, 4]
    assert all(np.isfinite(m['loss']) for m in metrics)
    assert 'val_loss' in metrics[1] and 'val_loss' in metrics[3]
    assert all(np.isfinite(metrics[k]['val_first_frame_err']) and
               metrics[k]['val_first_frame_err'] > 0 for k in (1, 3))
    policy = read_policy_json(run / 'checkpoints' / 'step_000004')
    assert policy['contract']['action_rate_hz'] == FPS
    assert policy['contract']['joint_names'] == list(JOINT_NAMES)
    # Statistics from the training episodes only: episode 2 validates.
    rows = np.concatenate([joints(0), joints(1)])
    np.testing.assert_allclose(policy['norm_stats'][OBS_STATE].q01, compute_stats(rows).q01)
    loaded = VLAPolicy.from_checkpoint(run / 'checkpoints' / 'step_000004')
    assert loaded.infer(make_piper_example())['actions'].shape == (16, 7)


def test_the_first_frame_error_compares_each_held_out_episodes_first_chunk(dataset):
    from vla_nodes.train.prepare import Samples
    from vla_nodes.train.validation import first_frame_error, first_frame_indices
    config = presets.get('tiny_pi0_depth')
    held = Samples([LeRobotDataset(dataset, horizon=config.horizon, image_size=config.image_size,
                                   use_depth=True, episodes=[1, 2])])
    # Episode 1 starts at sample 0; its stale row 3 is no sample, so episode 2 starts at 19.
    assert first_frame_indices(held) == [0, FRAMES - 1]
    torch.manual_seed(0)
    model = VLAModel(config)
    stats = held.datasets[0].stats()
    error = first_frame_error(model, held, stats)
    assert np.isfinite(error) and error > 0
    assert first_frame_error(model, held, stats) == error  # fixed noise: weights alone move it
    model.sample_actions = lambda batch, generator=None: batch[ACTION]  # the demonstration
    assert first_frame_error(model, held, stats) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.slow
@pytest.mark.filterwarnings('ignore:.*bustype.*:DeprecationWarning')
def test_training_can_end_with_a_closed_loop_check_on_held_out_seeds(dataset, tmp_path, capsys):
    os.environ.setdefault('MUJOCO_GL', 'egl')
    assert train(dataset, tmp_path / 'e', '--steps', '1', '--eval-episodes', '2',
                 '--eval-max-seconds', '0.5') == 0
    assert 'closed-loop check (lock-step, held-out seeds 1001-1002): success 0/2' in \
        capsys.readouterr().out
    last = json.loads((tmp_path / 'e' / 'metrics.jsonl').read_text().splitlines()[-1])
    assert last['closed_loop_episodes'] == 2 and last['closed_loop_seeds'] == [1001, 1002]


def test_resume_continues_exactly(run, dataset, tmp_path):
    from safetensors.torch import load_file
    assert train(dataset, tmp_path / 'r', '--steps', '2') == 0
    assert train(dataset, tmp_path / 'r', '--steps', '4', '--resume') == 0
    resumed = load_file(str(tmp_path / 'r' / 'checkpoints' / 'step_000004' / 'model.safetensors'))
    straight = load_file(str(run / 'checkpoints' / 'step_000004' / 'model.safetensors'))
    assert resumed.keys() == straight.keys()
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)
    lines = (tmp_path / 'r' / 'metrics.jsonl').read_text().splitlines()
    assert [json.loads(line)['step'] for line in lines] == [1, 2, 3, 4]


@pytest.fixture(scope='module')
def depth_tokenizer_dir(dataset, tmp_path_factory):
    """A tiny QDepth-VLA tokenizer trained on the dataset by vla-depth-tokenizer."""
    from vla_nodes.train import depth_tokenizer
    out = tmp_path_factory.mktemp('tokenizer') / 'tok'
    assert depth_tokenizer.main([str(dataset), '--output', str(out), '--preset', 'tiny',
                                 '--image-size', '56', '--steps', '4', '--batch-size', '4',
                                 '--no-progress']) == 0
    return out


@pytest.mark.parametrize('preset, term', [('tiny_qdepth_vla', 'depth_ce'),
                                          ('tiny_spatial_forcing', 'align')])
def test_spatial_presets_train_with_their_losses(dataset, tmp_path, preset, term, request):
    extra = ()
    if preset == 'tiny_qdepth_vla':
        extra = ('--spatial-path', str(request.getfixturevalue('depth_tokenizer_dir')))
    assert train(dataset, tmp_path, '--steps', '1', '--preset', preset, *extra) == 0
    metrics = json.loads((tmp_path / 'metrics.jsonl').read_text())
    assert np.isfinite(metrics[term]) and metrics['loss'] > metrics['flow']


@pytest.mark.parametrize('preset', ['qdepth_vla', 'tiny_qdepth_vla'])
def test_qdepth_without_a_trained_tokenizer_is_refused(dataset, tmp_path, capsys, preset):
    """Issue 12.6: a random VQ-VAE gives codes without depth; the depth CE would stay ln K."""
    assert train(dataset, tmp_path, '--steps', '1', '--preset', preset) == 2
    err = capsys.readouterr().err
    assert 'vla-depth-tokenizer' in err and '--spatial-path DIR' in err
    assert not (tmp_path / 'checkpoints').exists()


def test_pose_vla_trains_with_its_priors_and_pretrains_on_the_robots_trajectories(
        dataset, tmp_path, capsys):
    assert train(dataset, tmp_path / 'post', '--steps', '1', '--preset', 'tiny_pose_vla') == 0
    metrics = json.loads((tmp_path / 'post' / 'metrics.jsonl').read_text())
    assert np.isfinite(metrics['loss']) and metrics['loss'] == metrics['flow']
    # Issue 12.7: pre-training answers come from the export (ee pose, calibration, K).
    assert train(dataset, tmp_path / 'pre', '--steps', '1', '--preset',
                 'tiny_pose_vla_pretrain') == 0
    metrics = json.loads((tmp_path / 'pre' / 'metrics.jsonl').read_text())
    assert np.isfinite(metrics['pose_ntp']) and metrics['pose_ntp'] > 0
    assert (tmp_path / 'pre' / 'pose_tokenizer.json').is_file()
    # A dataset without end-effector poses cannot pre-train: refused, with what to do.
    blind = tmp_path / 'no_ee'
    shutil.copytree(dataset, blind)
    info = json.loads((blind / 'meta' / 'info.json').read_text())
    del info['features'][OBS_EE_POSE]
    (blind / 'meta' / 'info.json').write_text(json.dumps(info))
    assert train(blind, tmp_path / 'x', '--steps', '1', '--preset', 'tiny_pose_vla_pretrain') == 2
    assert 'observation.ee_pose' in capsys.readouterr().err


def test_pose_answers_are_the_chunks_waypoints_in_the_camera_frame(dataset):
    from vla_nodes.models import pose_vla
    from vla_nodes.models.spatial_streams import add_pose_answers, POSE_ANSWER
    from vla_nodes.train.prepare import fit_pose_tokenizer
    config = presets.get('tiny_pose_vla_pretrain')
    data = LeRobotDataset(dataset, 16, 56, pose_targets=True)
    tokenizer = fit_pose_tokenizer([data], config.pose)
    batch = add_pose_answers(collate([data[0]], data.stats()), tokenizer,
                             config.pose.waypoint_stride)
    items = tokenizer.parse(batch[POSE_ANSWER][0])
    assert [i['name'] for i in items] == ['arm 0', 'arm 1']  # rows 0 and 10 of the chunk
    ee = ee_poses(0)[10, :3]  # camera = base here: camera-frame position = base position
    np.testing.assert_allclose(items[1]['translation'], ee, atol=0.02)
    u = pose_vla.project(data[0][OBS_INTRINSICS], ee)[0] / 56
    assert abs(items[1]['uv'][0] - u) < 2 / config.pose.n_loc


def test_pose_vla_ray_map_prior_is_trained_from_the_datasets_intrinsics(
        dataset, tmp_path, capsys):
    """Issue 12.7: the export's K reaches the model (resized as the image) and its ray prior."""
    data = LeRobotDataset(dataset, 16, 56)
    # 64 x 48 -> 56 x 42 content (x 0.875), centred 7 rows down: centre (31.5, 23.5) -> 27.5.
    np.testing.assert_allclose(data[0][OBS_INTRINSICS], [[43.75, 0, 27.5], [0, 43.75, 27.5],
                                                         [0, 0, 1]], atol=1e-5)
    config = presets.get('tiny_pose_vla')
    config = replace(config, pose=replace(config.pose, p_keep_ray=1.0))
    torch.manual_seed(0)
    model = VLAModel(config).train()
    batch = collate([data[i] for i in range(4)], data.stats())
    assert batch[OBS_INTRINSICS].shape == (4, 3, 3)
    noise, time = flow_noise(0, 0, 4, config.horizon, config.action_dim)
    train_step(model, batch, noise, time, 0, 1, 'fp32', torch.device('cpu'))
    grad = model.spatial.priors.ray.mlp[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0
    # A dataset without K cannot train the ray prior: refused, with what to do.
    blind = tmp_path / 'blind'
    shutil.copytree(dataset, blind)
    info = json.loads((blind / 'meta' / 'info.json').read_text())
    del info['features'][OBS_IMAGE]['info']['intrinsics']
    (blind / 'meta' / 'info.json').write_text(json.dumps(info))
    assert train(blind, tmp_path / 'run', '--steps', '1', '--preset', 'tiny_pose_vla') == 2
    assert 'intrinsics' in capsys.readouterr().err


def test_spatial_forcing_skips_the_padding_tokens(dataset):
    """Issue 12.7: the 64 x 48 frame fills rows 7..48 of 56: token row 3 (centre 49) is pad."""
    from vla_nodes.models.spatial_streams import (add_teacher_targets, build_teacher, SF_MASK,
                                                  SF_TARGET)
    config = presets.get('tiny_spatial_forcing')
    torch.manual_seed(0)
    model = VLAModel(config).eval()
    teacher = build_teacher(config, allow_random=True)
    data = LeRobotDataset(dataset, 16, 56)
    batch = add_teacher_targets(collate([data[i] for i in range(2)], data.stats()), teacher,
                                model)
    rows = batch[SF_MASK].view(2, 4, 4)
    assert rows[:, :3].all() and not rows[:, 3].any()
    noise, time = flow_noise(0, 0, 2, config.horizon, config.action_dim)
    with torch.no_grad():
        first = model(batch, noise=noise, time=time)['align']
        moved = batch[SF_TARGET].clone()
        moved[:, 12:] = torch.randn_like(moved[:, 12:])  # targets under the padding bar
        second = model({**batch, SF_TARGET: moved}, noise=noise, time=time)['align']
        third = model({**batch, SF_TARGET: moved.flip(1)}, noise=noise, time=time)['align']
    assert torch.equal(first, second) and not torch.equal(first, third)


def test_a_vggt_teacher_directory_reaches_vggt(dataset, tmp_path, capsys):
    """Issue 12.7: --teacher with a VGGT checkpoint is VGGT's (it needs the vggt package)."""
    vggt = tmp_path / 'vggt'
    vggt.mkdir()
    (vggt / 'config.json').write_text(json.dumps({'img_size': 518, 'patch_size': 14,
                                                  'embed_dim': 1024}))
    assert train(dataset, tmp_path / 'run', '--steps', '1', '--preset', 'tiny_spatial_forcing',
                 '--teacher', str(vggt)) == 2
    assert 'vggt package' in capsys.readouterr().err


def test_spatial_forcing_without_a_teacher_is_refused(dataset, tmp_path, capsys):
    assert train(dataset, tmp_path, '--steps', '1', '--preset', 'spatial_forcing') == 2
    assert '--teacher DIR' in capsys.readouterr().err


def test_an_existing_run_is_not_overwritten(run, dataset, capsys):
    assert train(dataset, run, '--steps', '6') == 2
    assert '--resume' in capsys.readouterr().err


def tiny_batch(config, b=4):
    g = torch.Generator().manual_seed(5)
    s = config.image_size
    return {OBS_IMAGE: torch.randint(0, 256, (b, s, s, 3), dtype=torch.uint8, generator=g),
            OBS_DEPTH: 0.5 + torch.rand(b, s, s, generator=g),
            OBS_STATE: torch.randn(b, 7, generator=g),
            OBS_INSTRUCTION: ['pick up the cube', 'push', 'open', 'stack'][:b],
            ACTION: torch.randn(b, config.horizon, 7, generator=g),
            # chunks that run past their episode's end, unevenly over the batch's halves
            ACTION_PAD: torch.arange(config.horizon)[None, :] >= torch.tensor(
                [config.horizon, 3, config.horizon - 1, config.horizon])[:b, None]}


def test_image_size_and_crop_are_trained_saved_and_applied_by_the_policy(dataset, tmp_path):
    crop = [0.25, 0.0, 1.0, 1.0]  # drops the top quarter: the depth's 8 invalid rows of 48
    assert train(dataset, tmp_path / 'c', '--steps', '2', '--image-size', '28',
                 '--crop', *map(str, crop)) == 0
    policy = VLAPolicy.from_checkpoint(tmp_path / 'c' / 'checkpoints' / 'step_000002')
    assert policy.model.config.image_size == 28 and policy.contract['image_crop'] == crop
    # The dataset crops as the policy will: no invalid depth left inside the 28 x 28 content.
    depth = LeRobotDataset(dataset, 4, 28, use_depth=True, crop=crop)[0][OBS_DEPTH]
    content = depth[~np.isnan(depth).all(axis=1)]
    assert content.shape == (15, 28) and not np.isnan(content).any()  # 36 x 64 -> 15 x 28
    # policy_node's frames are cropped too: what lies above the crop cannot change the chunk.
    obs = make_piper_example()
    changed = {**obs, OBS_IMAGE: obs[OBS_IMAGE].copy(), OBS_DEPTH: obs[OBS_DEPTH].copy()}
    changed[OBS_IMAGE][:100] = 255 - changed[OBS_IMAGE][:100]
    changed[OBS_DEPTH][:100] = 2.0
    np.testing.assert_array_equal(policy.infer(obs)['actions'], policy.infer(changed)['actions'])
    changed[OBS_IMAGE][200:] = 0
    assert not np.array_equal(policy.infer(obs)['actions'], policy.infer(changed)['actions'])


def test_image_size_needs_a_built_backbone_and_whole_patches():
    config = presets.with_image_size(presets.get('tiny_pi0_depth'), 112)
    assert config.image_size == config.backbone.image_size == 112
    assert config.backbone.hf_config['vision_config']['image_size'] == 112
    with pytest.raises(ValueError, match='multiple of the patch'):
        presets.with_image_size(presets.get('tiny_pi0_depth'), 100)
    pi0 = presets.get('pi0_baseline')
    with pytest.raises(ValueError, match='pretrained'):
        presets.with_image_size(replace(pi0, backbone=replace(pi0.backbone,
                                                              pretrained='/ckpt/paligemma')), 112)


def test_ddp_with_two_cpu_processes_gives_the_one_process_gradients(tmp_path):
    """torchrun, 2 ranks on gloo, each half of a batch of 4 == one process on all 4.

    The halves hold different numbers of padded chunk steps: the ranks' losses are weighted by
    their share of the valid steps, so the average of their gradients is still exact.
    """
    from safetensors.torch import load_file
    script = tmp_path / 'ddp.py'
    script.write_text(
        'import sys, torch\n'
        'from safetensors.torch import save_file\n'
        'sys.path.insert(0, sys.argv[2])\n'
        'from test_train import tiny_batch\n'
        'from vla_nodes.models import presets\n'
        'from vla_nodes.models.vla import VLAModel\n'
        'from vla_nodes.train.distributed import setup_distributed\n'
        'from vla_nodes.train.step import flow_noise, train_step\n'
        'torch.set_num_threads(1)\n'
        "rank, world, device = setup_distributed('cpu')\n"
        'torch.manual_seed(0)\n'
        "model = VLAModel(presets.get('tiny_pi0_depth'))\n"
        'ddp = torch.nn.parallel.DistributedDataParallel(model)\n'
        'noise, time = flow_noise(7, 0, 4, 16, 7)\n'
        "train_step(ddp, tiny_batch(model.config), noise, time, rank, world, 'fp32', device)\n"
        'if rank == 0:\n'
        '    save_file({n: p.grad.contiguous() for n, p in model.named_parameters()\n'
        '               if p.grad is not None}, sys.argv[1])\n'
        'torch.distributed.destroy_process_group()\n')
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT)}
    out = tmp_path / 'grads.safetensors'
    subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone',
                    '--nproc_per_node', '2', str(script), str(out), str(ROOT / 'test')],
                   check=True, env=env, cwd=tmp_path, timeout=300, capture_output=True)
    torch.manual_seed(0)
    model = VLAModel(presets.get('tiny_pi0_depth'))
    noise, time = flow_noise(7, 0, 4, 16, 7)
    train_step(model, tiny_batch(model.config), noise, time, 0, 1, 'fp32', torch.device('cpu'))
    ddp = load_file(str(out))
    single = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert ddp.keys() == single.keys() and len(single) > 50
    for name, grad in single.items():
        torch.testing.assert_close(ddp[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_bf16_autocast_step_is_finite():
    torch.manual_seed(0)
    model = VLAModel(presets.get('tiny_vlm4vla'))
    batch = tiny_batch(model.config)
    noise, time = flow_noise(0, 0, 4, 10, 7)
    terms = train_step(model, batch, noise, time, 0, 1, 'bf16', torch.device('cpu'))
    assert np.isfinite(terms['loss'])
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    with pytest.raises(ValueError, match='multiple of the world size'):
        train_step(model, batch, noise, time, 0, 3, 'fp32', torch.device('cpu'))


def test_fsdp_needs_torchrun(dataset, tmp_path, capsys):
    assert train(dataset, tmp_path / 'f', '--steps', '1', '--fsdp') == 2
    assert 'torchrun --nproc_per_node' in capsys.readouterr().err


def test_fsdp_on_two_cpu_processes_trains_saves_and_resumes_like_ddp(dataset, tmp_path):
    """FSDP2 over gloo, 2 steps then resumed to 3, gives DDP's 3-step weights (full state)."""
    from safetensors.torch import load_file
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT)}
    args = ['--data', str(dataset), '--batch-size', '4', '--lr', '1e-3', '--warmup', '1',
            '--val-every', '2', '--val-batches', '1', '--save-every', '2', '--no-progress',
            '--device', 'cpu']
    for out, steps, more in (('fsdp', '2', ['--fsdp']), ('fsdp', '3', ['--fsdp', '--resume']),
                             ('ddp', '3', [])):
        subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone',
                        '--nproc_per_node', '2', '-m', 'vla_nodes.train.train', *args,
                        '--out', str(tmp_path / out), '--steps', steps, *more],
                       check=True, env=env, cwd=tmp_path, timeout=300, capture_output=True)
    ckpt = Path('checkpoints') / 'step_000003' / 'model.safetensors'
    sharded = load_file(str(tmp_path / 'fsdp' / ckpt))
    ddp = load_file(str(tmp_path / 'ddp' / ckpt))
    assert sharded.keys() == ddp.keys() and len(ddp) > 50
    for name, value in ddp.items():
        # Key biases get no gradient in exact arithmetic (softmax ignores a shift shared by all
        # keys): they hold rounding noise that Adam scales up, bounded by lr * steps.
        atol = 3e-3 if name.endswith('k_proj.bias') else 1e-6
        torch.testing.assert_close(sharded[name], value, rtol=1e-5, atol=atol, msg=name)
    metrics = [json.loads(line) for line in
               (tmp_path / 'fsdp' / 'metrics.jsonl').read_text().splitlines()]
    assert [m['step'] for m in metrics] == [1, 2, 3] and 'val_loss' in metrics[1]
    policy = VLAPolicy.from_checkpoint(tmp_path / 'fsdp' / 'checkpoints' / 'step_000003')
    assert policy.infer(make_piper_example())['actions'].shape == (16, 7)


def test_random_shift_moves_each_samples_images_and_depth_together_and_is_reproducible():
    from vla_nodes.train.step import random_shift
    image = torch.arange(8 * 8, dtype=torch.float32).reshape(1, 8, 8)
    batch = {OBS_IMAGE: image[..., None].expand(4, 8, 8, 3).to(torch.uint8),
             OBS_DEPTH: image.expand(4, 8, 8).clone(), ACTION: torch.zeros(4, 2, 7)}
    out = random_shift(batch, 2, step=3, seed=0)
    again = random_shift(batch, 2, step=3, seed=0)
    assert all(torch.equal(out[k], again[k]) for k in batch)  # a pure function of (seed, step)
    assert out[OBS_IMAGE].shape == (4, 8, 8, 3) and out[OBS_IMAGE].dtype == torch.uint8
    for i in range(4):  # the image moved like its depth, by at most 2 px
        np.testing.assert_array_equal(out[OBS_IMAGE][i, ..., 0].numpy(), out[OBS_DEPTH][i].numpy())
        centre = out[OBS_DEPTH][i, 4, 4].item()
        dy, dx = divmod(int(centre), 8)
        assert abs(dy - 4) <= 2 and abs(dx - 4) <= 2
    assert len({out[OBS_DEPTH][i, 4, 4].item() for i in range(4)}) > 1  # samples differ
    assert random_shift(batch, 0, step=3, seed=0) is batch  # off
