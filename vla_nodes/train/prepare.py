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


"""What a run trains on: spatial weights, pose bins, datasets, cameras and the sample index."""

from dataclasses import replace
import json
from pathlib import Path

import numpy as np

from vla_nodes.contract import cameras as named_cameras, DEFAULT_CAMERAS, SCENE_CAMERA
from vla_nodes.train.data import LeRobotDataset, split_episodes


def resolve_spatial(model_config, config):
    """The model config with --spatial-path set, and the VQ-VAE's config read from it.

    Raises:
        ValueError: qdepth without a trained tokenizer: a random VQ-VAE's codes carry no depth,
            the depth loss would stay at chance (ln K) and the run would look fine.
    """
    if model_config.spatial == 'qdepth' and not config.spatial_path:
        raise ValueError(
            'QDepth-VLA needs its trained depth tokenizer: run vla-depth-tokenizer DATASET '
            '--output DIR (--preset tiny for tiny_ presets, --image-size as the policy) and '
            'pass --spatial-path DIR')
    if not config.spatial_path:
        return model_config
    model_config = replace(model_config, spatial_path=config.spatial_path)
    if model_config.spatial == 'qdepth':
        from vla_nodes.models.qdepth import DepthVQVAEConfig
        path = Path(config.spatial_path) / 'config.json'
        if not path.is_file():
            raise FileNotFoundError(f'{config.spatial_path!r} has no config.json: train the '
                                    'depth tokenizer first (vla-depth-tokenizer)')
        values = json.loads(path.read_text())
        values['channels'] = tuple(values['channels'])
        model_config = replace(model_config, vqvae=DepthVQVAEConfig(**values))
    return model_config


def needs_pose_answers(model_config):
    """Pose-VLA's pose NTP objective is on: batches need answers made from robot data."""
    return model_config.spatial == 'pose_vla' and model_config.pose.ntp_weight > 0


def fit_pose_tokenizer(datasets, pose_config):
    """Pose-VLA's tokenizer, its metric bins fitted on the training rows.

    Fitted on the camera-frame end-effector positions (equal-frequency edges [paper App. A]).
    """
    from vla_nodes.arm.kinematics import xyz_quat_to_pose
    from vla_nodes.models.pose_vla import pose_in_camera, PoseTokenizer

    points = [pose_in_camera(d.base_cam, np.stack([xyz_quat_to_pose(p)
                                                  for p in d.ee_pose[d.rows()]]))[:, :3, 3]
              for d in datasets]
    return PoseTokenizer(pose_config).fit(np.concatenate(points))


def contract_cameras_of(config):
    """The run's cameras (contract.Camera), primary first; the scene camera by default."""
    return named_cameras(config.cameras or ','.join(DEFAULT_CAMERAS))


def open_data(config, model_config):
    """(train datasets, val datasets) over the dataset folders, split by episode."""
    if config.env_state and model_config.env_state_from_image:
        raise ValueError(f'{config.preset} predicts the object poses from the camera: train it '
                         "without --env-state (the dataset's poses are its targets)")
    train, val = [], []
    primary = contract_cameras_of(config)[0]
    feature_map = config.feature_map or None
    if feature_map is None and primary is not SCENE_CAMERA:
        feature_map = {primary.image_key: 'image', primary.depth_key: 'depth'}
    for folder in config.data:
        kw = dict(horizon=model_config.horizon, image_size=model_config.image_size,
                  use_depth=model_config.needs_depth, cache_mb=config.cache_mb,
                  crop=config.crop, pose_targets=needs_pose_answers(model_config),
                  feature_map=feature_map, extra_images=model_config.extra_images,
                  env_state=config.env_state or model_config.env_state_from_image)
        probe = LeRobotDataset(folder, **kw)
        fit, held = split_episodes(probe.episodes, config.val_fraction)
        train.append(LeRobotDataset(folder, episodes=fit, **kw))
        if held:
            val.append(LeRobotDataset(folder, episodes=held, **kw))
    names, fps = {tuple(d.names) for d in train}, {d.fps for d in train}
    env = {tuple(d.env_names or ()) for d in train}
    if len(names) > 1 or len(fps) > 1 or len(env) > 1:
        raise ValueError(f'datasets disagree on joint names {names}, fps {fps} or environment '
                         f'state {env}; train one robot contract at a time')
    return train, val


def open_snapshots(folder, model_config, config, datasets):
    """Pose snapshots (vla-snapshots) cropped and resized as the datasets' frames are.

    `folder`: one folder, or several separated by commas (e.g. arm at rest and on its way),
    read as one set.

    Returns:
        record/snapshots.read_snapshots' dict: 'image' # (N, S, S, 3), 'env_state' # (N, E).

    Raises:
        ValueError: the preset has no pose estimator, or the snapshots' frame size or object
            poses differ from the dataset's (the crop fractions would cut another box).
    """
    from vla_nodes.policy.transforms import check_crop
    from vla_nodes.record.snapshots import read_snapshots

    if not model_config.env_state_from_image:
        raise ValueError(f'--pose-snapshots train a pose estimator and {config.preset} has none: '
                         'use a preset that predicts the poses from the camera '
                         '(env_state_from_image, e.g. tiny_pi0_keypoints_pose)')
    sets = []
    for one in str(folder).split(','):
        snapshots = read_snapshots(one, model_config.image_size, check_crop(config.crop))
        camera = snapshots['info']['camera']
        frame = datasets[0].info['features'][datasets[0].features['image']]['shape'][:2]
        if [camera['height'], camera['width']] != list(frame):
            raise ValueError(f'{one}: snapshots of {camera["width"]}x{camera["height"]} px, the '
                             f"dataset's frames are {frame[1]}x{frame[0]}: record them at its "
                             'size')
        if snapshots['names'] != list(datasets[0].env_names):
            raise ValueError(f'{one}: snapshots label {snapshots["names"]} but the object poses '
                             f'of the dataset are {datasets[0].env_names}')
        sets.append(snapshots)
    if len(sets) == 1:
        return sets[0]
    return {**sets[0], **{key: np.concatenate([s[key] for s in sets])
                          for key in ('image', 'env_state', 'truth', 'seed')}}


def load_estimator(model, checkpoint, stats, crop=()) -> int:
    """Load a trained PoseEstimator into `model` and freeze it (vla-train --estimator-from).

    The estimator is trained by its pose losses alone and the policy's flow head learns on the
    dataset's poses (teacher forcing), so an estimator fitted in another run (e.g. beside
    another policy, longer, on more snapshots) can serve this policy as it is.

    Args:
        model: a VLAModel with env_state_from_image.
        checkpoint: a policy checkpoint directory of such a preset.
        stats: this run's norm stats; the estimator predicts normalized poses, so the
            checkpoint's OBS_ENV_STATE statistics must be these.
        crop: this run's crop fractions; the checkpoint's must be the same.

    Returns:
        How many tensors were loaded.

    Raises:
        ValueError: no estimator on either side, or another crop, image size or pose scale.
    """
    from safetensors.torch import load_file

    from vla_nodes.contract import OBS_ENV_STATE
    from vla_nodes.models.vla import config_from_dict, CONFIG_FILE, WEIGHTS_FILE
    from vla_nodes.policy.checkpoint import read_policy_json

    path = Path(checkpoint)
    if model.env_readout is None:
        raise ValueError('--estimator-from: this preset has no pose estimator '
                         '(env_state_from_image)')
    source = config_from_dict(json.loads((path / CONFIG_FILE).read_text()))
    if not source.env_state_from_image or source.env_state_dim != model.config.env_state_dim \
            or source.image_size != model.config.image_size:
        raise ValueError(f'--estimator-from {path}: no pose estimator of '
                         f'{model.config.env_state_dim} values at {model.config.image_size} px '
                         'there')
    policy = read_policy_json(path)
    theirs = list(policy['contract'].get('image_crop') or ())
    if [float(v) for v in crop or ()] != [float(v) for v in theirs]:
        raise ValueError(f'--estimator-from {path}: trained on crop {theirs}, this run uses '
                         f'{list(crop or ())}')
    mine, other = stats[OBS_ENV_STATE], policy['norm_stats'][OBS_ENV_STATE]
    if not all(np.allclose(getattr(mine, f), getattr(other, f), atol=1e-6)
               for f in ('q01', 'q99', 'mean', 'std')):
        raise ValueError(f'--estimator-from {path}: its object poses were normalized with '
                         'other statistics (another dataset)')
    weights = {k[len('env_readout.'):]: v for k, v in load_file(str(path / WEIGHTS_FILE)).items()
               if k.startswith('env_readout.')}
    model.env_readout.load_state_dict(weights)
    for p in model.env_readout.parameters():
        p.requires_grad_(False)
    return len(weights)


class Samples:
    """Several datasets indexed as one."""

    def __init__(self, datasets):
        self.datasets = datasets
        self.offsets = np.cumsum([0] + [len(d) for d in datasets])

    def __len__(self):
        return int(self.offsets[-1])

    def __getitem__(self, i):
        k = int(np.searchsorted(self.offsets, i, side='right')) - 1
        return self.datasets[k][int(i - self.offsets[k])]
