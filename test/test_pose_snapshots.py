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

"""Pose snapshots: the folder vla-snapshots writes, and what they teach the pose estimator.

Real parts: MuJoCo renders the scene and pose_node's detector labels it (vla-snapshots); a real
tiny `tiny_pi0_keypoints_pose` model trains through `VLAModel.losses` on synthetic scenes. The
recording path (pose_node in the graph, export, vla-train) is in test_env_state.py.
"""

import csv
import os

os.environ.setdefault('MUJOCO_GL', 'egl')  # mujoco picks its GL backend when first imported

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vla_nodes import contract  # noqa: E402
from vla_nodes.models import presets  # noqa: E402
from vla_nodes.models.vla import VLAModel  # noqa: E402
from vla_nodes.orchestration.pipeline import WORKSPACE_CROP  # noqa: E402
from vla_nodes.perception import env_state  # noqa: E402
from vla_nodes.policy.transforms import compute_stats, resize_with_pad  # noqa: E402
from vla_nodes.record import snapshots  # noqa: E402
from vla_nodes.train.data import collate  # noqa: E402
from vla_nodes.train.step import add_snapshots  # noqa: E402
from vla_nodes.train.validation import pose_errors  # noqa: E402

NAMES = env_state.feature_names(('cube',))


def test_snapshots_carry_pose_nodes_labels_of_the_rendered_cube(tmp_path):
    out = snapshots.record_snapshots(tmp_path / 'snaps', 3, 100000, progress=False)
    info = (out / snapshots.INFO_FILE).read_text()
    assert snapshots.FORMAT in info and '100002' in info
    with open(out / snapshots.LABELS_FILE, newline='') as f:
        header = next(csv.reader(f))
    assert header == ['index', 'seed', *NAMES, *(f'truth.{n}' for n in NAMES)]
    depth = np.asarray(Image.open(out / 'depth' / '000001.png'))
    assert depth.dtype == np.uint16 and 500 < np.median(depth) < 1500  # mm, as the camera's
    read = snapshots.read_snapshots(out)
    assert read['image'].shape == (3, 240, 320, 3)
    assert list(read['seed']) == [100000, 100001, 100002]
    # pose_node's detector, not the simulator: about a millimetre and a degree off the truth.
    labels, truth = read['env_state'], read['truth']
    assert not np.array_equal(labels, truth)
    np.testing.assert_allclose(labels[:, :3], truth[:, :3], atol=0.003)
    np.testing.assert_allclose(labels[:, 3:], truth[:, 3:], atol=0.15)  # cos/sin of 4 yaw
    # Preprocessed exactly as the dataset's frames: the crop, then resize with padding.
    cropped = snapshots.read_snapshots(out, 84, WORKSPACE_CROP, limit=2)
    assert cropped['image'].shape == (2, 84, 84, 3)
    np.testing.assert_array_equal(cropped['image'][1],
                                  resize_with_pad(read['image'][1], 84, 84, WORKSPACE_CROP))
    with pytest.raises(FileExistsError, match='already holds snapshots'):
        snapshots.record_snapshots(out, 1, 7, progress=False)
    assert snapshots.main([str(tmp_path / 'arm'), '--count', '1', '--arm', 'expert',
                           '--first-seed', '100003', '--no-progress']) == 0


def scene(xy, size=28):
    """A grey image with a red 5 px square at xy in [-1, 1]^2 # (S, S, 3) uint8."""
    image = np.full((size, size, 3), 90, np.uint8)
    u, v = np.round((np.asarray(xy) + 1) / 2 * (size - 5)).astype(int)
    image[v:v + 5, u:u + 5] = (230, 20, 20)
    return image


def pose(xy):
    return np.array([xy[0], xy[1], 0.02, 1.0, 0.0], np.float32)


def demo_sample(xy, rng):
    return {contract.OBS_IMAGE: scene(xy), contract.OBS_STATE: np.zeros(7, np.float32),
            contract.ACTION: rng.normal(size=(16, 7)).astype(np.float32),
            'action_is_pad': np.zeros(16, bool), contract.OBS_INSTRUCTION: 'pick up the red cube',
            contract.OBS_ENV_STATE: pose(xy)}


def estimator_error(with_snapshots: bool, steps: int = 60, lr: float = 1e-2,
                    per_sample: int = 4) -> dict:
    """The estimator's error on 16 held-out placements after training a tiny policy.

    The policy predicts the poses (tiny_pi0_keypoints_pose) and learns from demos at 2
    placements along x (y = 0), with or without 64 snapshots anywhere. 60 steps at lr 1e-2
    with 4 snapshots per sample: y error 0.07 against 0.40 without.
    """
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = VLAModel(presets.with_image_size(presets.get('tiny_pi0_keypoints_pose'), 28))
    demos = [demo_sample(xy, rng) for xy in ((-0.6, 0.0), (0.6, 0.0))] * 2
    anywhere = rng.uniform(-0.8, 0.8, (80, 2))
    snaps = {'image': np.stack([scene(xy) for xy in anywhere[:64]]),
             'env_state': np.stack([pose(xy) for xy in anywhere[:64]])}
    stats = {contract.OBS_STATE: compute_stats(np.zeros((4, 7))),
             contract.ACTION: compute_stats(np.stack([d[contract.ACTION] for d in demos])
                                            .reshape(-1, 7)),
             contract.OBS_ENV_STATE: compute_stats(np.stack([pose(xy) for xy in anywhere]))}
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    for step in range(steps):
        batch = collate(demos, stats)
        if with_snapshots:
            batch = add_snapshots(batch, snaps, stats, per_sample, step, seed=0)
        optimizer.zero_grad()
        terms = model.losses(batch, torch.Generator().manual_seed(step))
        terms['loss'].backward()
        optimizer.step()
    assert ('snapshot_pose' in terms) == with_snapshots
    held = anywhere[64:]
    return pose_errors(model, np.stack([scene(xy) for xy in held]),
                       np.stack([pose(xy) for xy in held]), stats, NAMES)


def test_snapshots_teach_the_estimator_placements_the_demos_lack():
    without, with_ = estimator_error(False), estimator_error(True)
    # The demos never move the cube in y: only the snapshots can teach it (units: 'cm' of 1).
    assert with_['y_cm'] < 0.5 * without['y_cm'], (with_, without)
    assert with_['n'] == without['n'] == 16 and 0.0 <= with_['yaw_deg'] < 1.0


def test_several_snapshot_folders_train_as_one_set(tmp_path):
    # e.g. the arm at rest and on its way (vla-snapshots --arm expert): --pose-snapshots A,B.
    from types import SimpleNamespace
    from vla_nodes.train.prepare import open_snapshots
    a = snapshots.record_snapshots(tmp_path / 'a', 2, 100000, progress=False)
    b = snapshots.record_snapshots(tmp_path / 'b', 1, 200000, progress=False)
    dataset = SimpleNamespace(info={'features': {'img': {'shape': [240, 320, 3]}}},
                              features={'image': 'img'}, env_names=NAMES)
    model_config = presets.get('tiny_pi0_keypoints_pose')
    config = SimpleNamespace(preset='tiny_pi0_keypoints_pose', crop=WORKSPACE_CROP)
    both = open_snapshots(f'{a},{b}', model_config, config, [dataset])
    assert list(both['seed']) == [100000, 100001, 200000]
    assert both['image'].shape == (3, 84, 84, 3) and both['env_state'].shape == (3, 5)
    one = open_snapshots(str(b), model_config, config, [dataset])
    np.testing.assert_array_equal(both['image'][2], one['image'][0])
    np.testing.assert_array_equal(both['env_state'][2], one['env_state'][0])


def test_an_estimator_trained_in_one_run_serves_another_policy_frozen(tmp_path):
    # vla-train --estimator-from: the pose estimator of a checkpoint (same dataset and crop)
    # is loaded into another pose-predicting preset's and frozen.
    from vla_nodes.policy.checkpoint import make_contract, save_checkpoint
    from vla_nodes.train.prepare import load_estimator
    rng = np.random.default_rng(0)
    stats = {contract.OBS_STATE: compute_stats(rng.normal(size=(8, 7))),
             contract.ACTION: compute_stats(rng.normal(size=(8, 7))),
             contract.OBS_ENV_STATE: compute_stats(rng.normal(size=(8, 5)))}
    torch.manual_seed(0)
    source = VLAModel(presets.get('tiny_pi0_keypoints_pose'))
    save_checkpoint(tmp_path / 'source', source, stats,
                    make_contract(16, (84, 84), image_crop=WORKSPACE_CROP),
                    preset='tiny_pi0_keypoints_pose')
    torch.manual_seed(1)
    model = VLAModel(presets.get('tiny_pi0_pose_blind'))
    assert load_estimator(model, tmp_path / 'source', stats, WORKSPACE_CROP) > 0
    for mine, theirs in zip(model.env_readout.parameters(), source.env_readout.parameters()):
        assert torch.equal(mine, theirs) and not mine.requires_grad
    assert all(p.requires_grad for p in model.head.parameters())
    other = {**stats, contract.OBS_ENV_STATE: compute_stats(rng.normal(size=(8, 5)))}
    with pytest.raises(ValueError, match='other statistics'):
        load_estimator(model, tmp_path / 'source', other, WORKSPACE_CROP)
    with pytest.raises(ValueError, match='crop'):
        load_estimator(model, tmp_path / 'source', stats, ())
    with pytest.raises(ValueError, match='no pose estimator'):
        load_estimator(VLAModel(presets.get('tiny_pi0_baseline')), tmp_path / 'source', stats)
