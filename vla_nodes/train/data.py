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

"""LeRobot v3 dataset folders -> training samples and batches, through policy/transforms.py.

Reads what `vla-export` writes and what LeRobot's own writer writes (record/lerobot_v3.py;
LeRobot's v3.0 layout): meta/info.json (fps, features, path templates), meta/tasks.parquet,
meta/episodes/*.parquet (row ranges and video time ranges per episode), data/*.parquet (state,
action, episode_index, frame_index, index, task_index, optional sync_ok) and the videos, decoded
with PyAV: colour (H.264, AV1, ...) and depth in LeRobot's 12-bit log-quantised convention or
as 16-bit millimetres (lerobot_depth.depth_decoder). Several episodes may share a video file.

Which dataset features feed the model is a feature map, {role: dataset key} with the roles
image, depth, state and action (ROLES). The default is vla-export's names; a dataset with other
names or several cameras is mapped by configuration: `parse_feature_map('observation.images.
front=image,observation.images.front_depth=depth')` or a YAML file {dataset key: role}. The map
goes into the checkpoint's contract (vla-train).

A sample is one row t of an episode:
    OBS_IMAGE rgb uint8 # (S, S, 3) and OBS_DEPTH metres, NaN invalid # (S, S), resized with
    padding exactly as policy_node does (transforms.ResizeWithPad); OBS_STATE # (7,);
    ACTION the chunk a[t : t + H] # (H, 7), repeating the last action past the episode's end
    with ACTION_PAD True there (LeRobot's `action_is_pad`); OBS_INSTRUCTION the task text;
    OBS_INTRINSICS K of the S x S image # (3, 3) px, when the export stored the camera's;
    OBS_IMAGE_CONTENT the frame's (top, left, height, width) inside the S x S image # (4,) px;
    each of `extra_images` (further cameras, observation.images.<camera>) rgb uint8 # (S, S, 3);
    with `env_state`, OBS_ENV_STATE the object poses # (E,) (perception/env_state.py).
Rows flagged `sync_ok = False` by the exporter (a stale stream) are not used as samples.
Frames are decoded one episode at a time and kept, resized, in an LRU cache with a memory budget:
random batches touch every episode, so a cache smaller than the dataset decodes a video per sample.
"""

from collections import OrderedDict
import json
from pathlib import Path

import numpy as np

from vla_nodes.contract import (ACTION, OBS_DEPTH, OBS_EE_POSE, OBS_ENV_STATE, OBS_IMAGE,
                                OBS_IMAGE_CONTENT, OBS_IMAGES_PREFIX, OBS_INSTRUCTION,
                                OBS_INTRINSICS, OBS_STATE, SYNC_OK)
from vla_nodes.models.spatial_streams import POSE_BASE_CAM, POSE_EE_CHUNK
from vla_nodes.models.vla import ACTION_PAD
from vla_nodes.policy.transforms import (check_crop, compute_stats, content_box, Normalize,
                                         resize_intrinsics, resize_with_pad)
from vla_nodes.record.lerobot_depth import depth_decoder, is_depth_map
from vla_nodes.record.lerobot_v3 import (DATA_GLOB, DatasetError, EPISODES_GLOB, INFO_PATH,
                                         require, TASKS_PATH)

# role -> the sample key the model reads; also the dataset key vla-export writes (the default map)
ROLES = {'image': OBS_IMAGE, 'depth': OBS_DEPTH, 'state': OBS_STATE, 'action': ACTION}


def parse_feature_map(spec=None):
    """{role: dataset key} from 'KEY=ROLE,KEY=ROLE', a YAML file of {KEY: ROLE}, or a dict.

    Roles not given keep vla-export's key (ROLES). None or '' is the default map.

    Raises:
        DatasetError: an unknown role, a role given twice, or an unreadable spec (named).
    """
    pairs = spec or {}
    if isinstance(spec, (str, Path)) and Path(spec).is_file():
        import yaml
        pairs = yaml.safe_load(Path(spec).read_text(encoding='utf-8')) or {}
        if not isinstance(pairs, dict):
            raise DatasetError(f'feature map {spec}: expected a YAML mapping dataset key: role')
    elif isinstance(spec, str):
        try:
            pairs = dict(item.strip().rsplit('=', 1) for item in spec.split(',') if item.strip())
        except ValueError:
            raise DatasetError(f'feature map {spec!r}: expected KEY=ROLE[,KEY=ROLE...] or a '
                               f'YAML file') from None
    mapping = dict(ROLES)
    given = {}
    for key, role in pairs.items():
        key, role = str(key).strip(), str(role).strip()
        if role not in ROLES:
            raise DatasetError(f'feature map: unknown role {role!r} for {key!r}; roles are '
                               f'{", ".join(ROLES)}')
        if role in given:
            raise DatasetError(f'feature map: role {role!r} given twice ({given[role]!r} and '
                               f'{key!r})')
        given[role] = mapping[role] = key
    return mapping


def _read_info(root):
    """meta/info.json of a LeRobot v3.x dataset folder."""
    info_path = root / INFO_PATH
    if not info_path.is_file():
        raise DatasetError(f'{root} is not a LeRobot dataset: no meta/info.json '
                           '(make one with vla-export)')
    info = json.loads(info_path.read_text())
    version = str(info.get('codebase_version', ''))
    if not version.startswith('v3'):
        raise DatasetError(f'{root}: codebase_version {version!r}; this reader '
                           'needs a LeRobot v3.x dataset (re-export with vla-export)')
    return info


def _read_parquets(paths):
    pq = require('pyarrow.parquet')
    pa = require('pyarrow')
    return pa.concat_tables([pq.read_table(p) for p in paths])


def _column(table, name):
    """A parquet column as numpy: fixed-size lists -> (N, D), scalars -> (N,)."""
    col = table.column(name).combine_chunks()
    if hasattr(col, 'flatten') and hasattr(col.type, 'list_size'):
        return np.asarray(col.flatten(), dtype=np.float32).reshape(len(col), col.type.list_size)
    if hasattr(col, 'flatten'):  # variable-size lists
        return np.asarray(col.to_pylist(), dtype=np.float32)
    return col.to_numpy(zero_copy_only=False)


class LeRobotDataset:
    """Samples of one LeRobot v3 dataset folder (a subset of its episodes)."""

    def __init__(self, root, horizon, image_size, use_depth=False, episodes=None,
                 cache_mb=2048, crop=None, pose_targets=False, feature_map=None,
                 extra_images=(), env_state=False):
        """Open a dataset.

        Args:
            root: the dataset folder (with meta/info.json).
            horizon: H, actions per chunk.
            image_size: S, frames are resized with padding to S x S.
            use_depth: decode the depth video too (models with sensor-depth tokens).
            episodes: episode indices to use (default all).
            crop: (top, left, bottom, right) fractions of the frame kept before the resize
                (transforms.crop_fraction), as the policy will crop; None = whole frame.
            pose_targets: samples also carry what Pose-VLA's pre-training answers are made of
                (the chunk's end-effector poses, T_base_cam; spatial_streams.add_pose_answers).
            cache_mb: memory for decoded, resized episodes (MB); the least recently used
                episode goes first (the newest always stays).
            feature_map: which dataset features are the image, depth, state and action:
                anything parse_feature_map takes (default: vla-export's keys).
            extra_images: dataset keys of further colour cameras (observation.images.<camera>),
                each resized to S x S like the image but not cropped; samples carry them under
                the same keys (the model's `extra_images`).
            env_state: samples carry OBS_ENV_STATE (vla-export's object poses).

        Raises:
            DatasetError: not a v3 dataset, or a needed feature is missing or of the wrong kind
                (named).
        """
        self.root = Path(root)
        self.info = _read_info(self.root)
        features = self.info['features']
        roles = ['state', 'action', 'image'] + (['depth'] if use_depth else [])
        mapping = parse_feature_map(feature_map)
        self.features = {role: mapping[role] for role in roles}  # role -> dataset key
        self.extra_images = tuple(extra_images)
        self._check_features(features)
        self.fps = float(self.info['fps'])
        self.horizon, self.image_size, self.use_depth = horizon, image_size, use_depth
        self.crop = check_crop(crop)
        self.names = list(features[self.features['action']].get('names') or [])
        image = features[self.features['image']]
        self.intrinsics = _intrinsics(image, image_size, self.crop)
        self.content = np.asarray(content_box(image['shape'][:2], image_size,
                                              image_size, self.crop), dtype=np.int64)
        self.base_cam = _camera_to_base(image) if pose_targets else None
        if pose_targets:
            self._check_pose_targets(features)
        self.pose_targets = pose_targets
        self.env_names = self._env_names(features) if env_state else None
        self._load_tables()
        chosen = sorted(self.episodes) if episodes is None else list(episodes)
        unknown = sorted(set(chosen) - set(self.episodes))
        if unknown:
            raise DatasetError(f'{self.root}: no episodes {unknown}')
        self.chosen = chosen
        rows = self.rows()
        ok = self.sync_ok[rows] if self.sync_ok is not None else np.ones(len(rows), bool)
        self.samples = rows[ok]  # (N,) row numbers
        self._cache = OrderedDict()
        self._cache_bytes = int(cache_mb * 2 ** 20)

    def _check_pose_targets(self, features):
        """Pose-VLA pre-training needs the end-effector poses, intrinsics and calibration."""
        lacking = [what for what, ok in (
            (f'{OBS_EE_POSE} (the /vla/ee_pose topic in the bags)', OBS_EE_POSE in features),
            ('the camera intrinsics', self.intrinsics is not None),
            ('the camera calibration (camera_to_base)', self.base_cam is not None)) if not ok]
        if lacking:
            raise DatasetError(f'{self.root}: Pose-VLA pre-training needs {lacking}: record '
                               'with pose_node and a calibration, then re-export with '
                               'vla-export')

    def _env_names(self, features):
        """The environment state's feature names (object poses); the feature must exist."""
        if OBS_ENV_STATE not in features:
            raise DatasetError(f'{self.root}: no {OBS_ENV_STATE} (object poses): record with '
                               'pose_node running (/vla/objects) and a calibration, then '
                               're-export with vla-export; or train without --env-state')
        return list(features[OBS_ENV_STATE].get('names') or [])

    def _check_features(self, features):
        """Every mapped feature exists and is of its role's kind."""
        hint = ('; map the dataset features with --map KEY=ROLE (roles: ' +
                ', '.join(ROLES) + f'). Features: {sorted(features)}')
        for role, key in self.features.items():
            feature = features.get(key)
            if feature is None:
                raise DatasetError(f'{self.root}: dataset has no {key!r} for {role}{hint}')
            shape, kind = list(feature.get('shape') or []), feature.get('dtype')
            if role in ('image', 'depth') and kind == 'image':
                raise DatasetError(f'{self.root}: {key!r} is stored as images in parquet; this '
                                   f'reader needs videos (lerobot-edit-dataset --operation.type '
                                   f'convert_image_to_video)')
            if role == 'image' and (kind != 'video' or shape[2:] != [3] or is_depth_map(feature)):
                raise DatasetError(f'{self.root}: {key!r} ({kind} {shape}) is not a colour video '
                                   f'for image{hint}')
            if role == 'depth' and (kind != 'video' or not is_depth_map(feature)):
                raise DatasetError(f'{self.root}: {key!r} ({kind} {shape}) is not a depth video '
                                   f'(is_depth_map) for depth{hint}')
            if role in ('state', 'action') and (kind not in ('float32', 'float64') or
                                                len(shape) != 1):
                raise DatasetError(f'{self.root}: {key!r} ({kind} {shape}) is not a vector for '
                                   f'{role}{hint}')
        for key in self.extra_images:
            feature = features.get(key) or {}
            if feature.get('dtype') != 'video' or is_depth_map(feature) or list(
                    feature.get('shape') or [])[2:] != [3]:
                raise DatasetError(f'{self.root}: no colour video {key!r} for a further camera; '
                                   f'export the camera with vla-export --cameras. Features: '
                                   f'{sorted(features)}')

    def _load_tables(self):
        data_files = sorted(self.root.glob(DATA_GLOB))
        if not data_files:
            raise DatasetError(f'{self.root}: no data/*/*.parquet files')
        table = _read_parquets(data_files)
        order = np.argsort(_column(table, 'index'), kind='stable')
        self.state = _column(table, self.features['state'])[order]
        self.action = _column(table, self.features['action'])[order]
        if self.pose_targets:
            self.ee_pose = _column(table, OBS_EE_POSE)[order]
        if self.env_names is not None:
            self.env = _column(table, OBS_ENV_STATE)[order]
        self.episode_index = _column(table, 'episode_index')[order].astype(np.int64)
        self.frame_index = _column(table, 'frame_index')[order].astype(np.int64)
        self.task_index = _column(table, 'task_index')[order].astype(np.int64)
        names = table.column_names
        self.sync_ok = _column(table, SYNC_OK)[order].astype(bool) if SYNC_OK in names else None
        tasks = _read_parquets([self.root / TASKS_PATH])
        self.tasks = dict(zip(_column(tasks, 'task_index').tolist(),
                              tasks.column('task').to_pylist()))
        episodes = _read_parquets(sorted(self.root.glob(EPISODES_GLOB)))
        self.episodes = {}
        for row in episodes.to_pylist():
            e = int(row['episode_index'])
            start = int(np.searchsorted(self.episode_index, e))
            self.episodes[e] = {'rows': (start, start + int(row['length'])), 'meta': row}

    def __len__(self):
        return len(self.samples)

    def rows(self):
        """Row numbers of the chosen episodes: (N,) int."""
        return np.concatenate([np.arange(*self.episodes[e]['rows']) for e in self.chosen])

    def stats(self):
        """q01/q99 (and mean/std) of state and action over the chosen episodes' rows."""
        return merged_stats([self])

    def __getitem__(self, i):
        """Sample i: the module docstring's keys, numpy arrays in physical units."""
        row = int(self.samples[i])
        e = int(self.episode_index[row])
        start, stop = self.episodes[e]['rows']
        steps = np.arange(row, row + self.horizon)
        pad = steps >= stop
        frames = self._frames(e)
        sample = {
            OBS_IMAGE: frames['image'][row - start],
            OBS_STATE: self.state[row],
            ACTION: self.action[np.minimum(steps, stop - 1)],
            ACTION_PAD: pad,
            OBS_INSTRUCTION: self.tasks[int(self.task_index[row])],
            OBS_IMAGE_CONTENT: self.content,
        }
        if self.use_depth:
            sample[OBS_DEPTH] = frames['depth'][row - start]
        for key in self.extra_images:
            sample[key] = frames[key][row - start]
        if self.intrinsics is not None:
            sample[OBS_INTRINSICS] = self.intrinsics
        if self.env_names is not None:
            sample[OBS_ENV_STATE] = self.env[row]
        if self.pose_targets:
            sample[POSE_EE_CHUNK] = self.ee_pose[np.minimum(steps, stop - 1)]
            sample[POSE_BASE_CAM] = self.base_cam
        return sample

    def _frames(self, episode):
        """Decoded, resized frames of one episode (LRU-cached)."""
        if episode in self._cache:
            self._cache.move_to_end(episode)
            return self._cache[episode]
        start, stop = self.episodes[episode]['rows']
        out = {}
        for role in ('image', 'depth') if self.use_depth else ('image',):
            raw = self._decode(episode, self.features[role], stop - start)
            out[role] = np.stack([resize_with_pad(f, self.image_size, self.image_size, self.crop)
                                  for f in raw])
        for key in self.extra_images:  # never cropped: the crop is the primary camera's
            out[key] = np.stack([resize_with_pad(f, self.image_size, self.image_size)
                                 for f in self._decode(episode, key, stop - start)])
        self._cache[episode] = out
        while len(self._cache) > 1 and self._cached_bytes() > self._cache_bytes:
            self._cache.popitem(last=False)
        return out

    def _cached_bytes(self) -> int:
        return sum(a.nbytes for frames in self._cache.values() for a in frames.values())

    def _decode(self, episode, key, count):
        """The episode's `count` frames of video `key`.

        RGB (H, W, 3) uint8 or depth metres (float32, NaN invalid).
        """
        av = require('av')
        meta = self.episodes[episode]['meta']
        path = self.root / self.info['video_path'].format(
            video_key=key, chunk_index=int(meta.get(f'videos/{key}/chunk_index', 0)),
            file_index=int(meta.get(f'videos/{key}/file_index', 0)))
        if not path.is_file():
            raise DatasetError(f'{self.root}: video {path} of episode {episode} is missing')
        begin = float(meta.get(f'videos/{key}/from_timestamp', 0.0))
        feature = self.info['features'][key]
        fmt, convert = depth_decoder(feature) if is_depth_map(feature) else ('rgb24', None)
        frames = []
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            container.seek(int(begin / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                t = float(frame.pts * stream.time_base)
                if t < begin - 0.5 / self.fps:
                    continue
                frames.append(frame.to_ndarray(format=fmt))
                if convert is not None:
                    frames[-1] = convert(frames[-1])
                if len(frames) == count:
                    break
        if len(frames) != count:
            raise DatasetError(f'{path}: episode {episode} needs {count} frames from '
                               f'{begin:.3f} s, the video has {len(frames)}')
        return frames


def _intrinsics(feature, image_size, crop):
    """K of the S x S model image from the colour feature's `info.intrinsics`, or None."""
    info = (feature.get('info') or {}).get('intrinsics')
    if not info or 'K' not in info:
        return None
    size = (info.get('height'), info.get('width'))
    if None in size:
        size = feature['shape'][:2]
    return resize_intrinsics(info['K'], size, image_size, image_size, crop)


def _camera_to_base(feature):
    """T_base_cam # (4, 4) from the colour feature's `info.calibration`, or None."""
    from vla_nodes.arm.kinematics import xyz_quat_to_pose

    calib = ((feature.get('info') or {}).get('calibration') or {}).get('camera_to_base')
    if not calib or 'translation' not in calib or 'rotation_xyzw' not in calib:
        return None
    return xyz_quat_to_pose(list(calib['translation']) + list(calib['rotation_xyzw']))


def merged_stats(datasets):
    """The normalisation statistics over the chosen rows of datasets.

    Returns {OBS_STATE, ACTION (and OBS_ENV_STATE): NormStats}.

    The environment state's statistics skip rows flagged `sync_ok = False` (before an object's
    first detection vla-export stores zeros there).
    """
    stats = {OBS_STATE: compute_stats(np.concatenate([d.state[d.rows()] for d in datasets])),
             ACTION: compute_stats(np.concatenate([d.action[d.rows()] for d in datasets]))}
    if all(d.env_names is not None for d in datasets):
        stats[OBS_ENV_STATE] = compute_stats(np.concatenate([d.env[d.samples] for d in datasets]))
    return stats


def split_episodes(episodes, val_fraction):
    """(train, val) episode lists: the last ceil(fraction * n) episodes validate (n > 1)."""
    episodes = sorted(episodes)
    if len(episodes) < 2 or val_fraction <= 0:
        return episodes, []
    n_val = max(1, int(np.ceil(val_fraction * len(episodes))))
    return episodes[:-n_val], episodes[-n_val:]


def collate(samples, stats):
    """Stack samples into a model batch; state and actions normalized with `stats`.

    Returns:
        {OBS_IMAGE uint8 # (B, S, S, 3), OBS_DEPTH (if present) # (B, S, S), OBS_STATE
         # (B, 7), ACTION # (B, H, 7), ACTION_PAD # (B, H), OBS_INSTRUCTION list of B str,
         OBS_INTRINSICS (if present) # (B, 3, 3), OBS_IMAGE_CONTENT # (B, 4)} as torch
        tensors.
    """
    import torch

    extra = [k for k in samples[0] if k.startswith(OBS_IMAGES_PREFIX) and k != OBS_IMAGE]
    keys = [k for k in (OBS_IMAGE, OBS_DEPTH, OBS_STATE, ACTION, ACTION_PAD, OBS_INTRINSICS,
                        OBS_IMAGE_CONTENT, POSE_EE_CHUNK, POSE_BASE_CAM, OBS_ENV_STATE, *extra)
            if all(k in s for s in samples)]
    stacked = {k: np.stack([s[k] for s in samples]) for k in keys}
    stacked = Normalize({k: stats[k] for k in (OBS_STATE, ACTION, OBS_ENV_STATE)
                         if k in stats})(stacked)
    batch = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in stacked.items()}
    batch[OBS_INSTRUCTION] = [s[OBS_INSTRUCTION] for s in samples]
    return batch


def batch_indices(n, batch_size, step, seed):
    """The sample indices of global batch `step`: epochs are seeded permutations.

    A pure function of (n, batch_size, step, seed), so every DDP rank agrees and a resumed run
    sees exactly the batches an uninterrupted one would have.
    """
    per_epoch = max(1, n // batch_size)  # drop the last incomplete batch of each epoch
    epoch, k = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    if n < batch_size:
        order = np.resize(order, batch_size)
    return order[k * batch_size:(k + 1) * batch_size]
