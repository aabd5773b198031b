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

"""LeRobot's own datasets train here: several cameras, LeRobot's feature names and depth video.

`write_lerobot_dataset` writes a dataset the way lerobot 0.6.1's writer does, restated from its
source rather than through our writer (lerobot/datasets/dataset_writer.py, video_utils.py,
depth_utils.py, dataset_metadata.py): AV1 colour (libsvtav1, g 2, crf 30, preset 12), depth
quantised to 12-bit log codes with LeRobot's defaults (depth_min 0.01 m, so a sensor's 0 becomes
code 0) in lossless HEVC gray12le, every episode in one video file per camera (from_timestamp),
`video.*` / `is_depth_map` / `depth_unit` feature info, fixed-size float lists in data parquet.
Its info.json keys, parquet schemas and video streams were compared once with a dataset that
LeRobot's LeRobotDataset.create / add_frame / save_episode wrote (the same, less stats).
"""

from fractions import Fraction
import json
import math

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vla_nodes.contract import OBS_DEPTH, OBS_IMAGE, OBS_STATE
from vla_nodes.policy.checkpoint import read_policy_json
from vla_nodes.train.data import DatasetError, LeRobotDataset, parse_feature_map
from vla_nodes.train.train import main

pytestmark = pytest.mark.usefixtures('one_thread')

FPS, H, W, LENGTHS = 10, 48, 64, (12, 15)
NAMES = ['shoulder_pan.pos', 'shoulder_lift.pos', 'elbow_flex.pos', 'wrist_flex.pos',
         'wrist_roll.pos', 'wrist_yaw.pos', 'gripper.pos']
FRONT, WRIST, FRONT_DEPTH = ('observation.images.front', 'observation.images.wrist',
                             'observation.images.front_depth')
MAP = f'{FRONT}=image,{FRONT_DEPTH}=depth'
LEROBOT_DEPTH = {'depth_min': 0.01, 'depth_max': 10.0, 'shift': 3.5, 'use_log': True}


def state(episode, k):
    return (0.1 * np.arange(7) + 0.01 * k + episode).astype(np.float32)


def colour(camera, episode, k):
    """A flat frame whose colour says camera, episode and frame."""
    return np.array([20 + 10 * k, 60 + 80 * episode, 40 if camera == FRONT else 220], np.uint8)


def depth_mm(episode, k):
    """A flat depth per frame, with an invalid (0) band on top."""
    mm = np.full((H, W), 600 + 150 * k + 1000 * episode, np.uint16)
    mm[:8] = 0
    return mm


def quantize(mm):
    """lerobot/datasets/depth_utils.py quantize_depth, uint16 mm input, LeRobot's defaults."""
    lo, hi, shift = (np.float32(LEROBOT_DEPTH[k] * 1000)
                     for k in ('depth_min', 'depth_max', 'shift'))
    log_lo, log_hi = math.log(float(lo + shift)), math.log(float(hi + shift))
    norm = (np.log(mm.astype(np.float32) + shift) - log_lo) / (log_hi - log_lo)
    return np.rint(norm * 4095).clip(0, 4095).astype(np.uint16)


def encode(path, frames, codec, pix_fmt, fmt, options):
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), 'w') as container:
        stream = container.add_stream(codec, rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format=fmt)
            picture.pts, picture.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def video_info(depth):
    """A video feature's info as LeRobot's get_video_info + its encoder config record it."""
    info = {'video.height': H, 'video.width': W, 'video.codec': 'hevc' if depth else 'av1',
            'video.pix_fmt': 'gray12le' if depth else 'yuv420p', 'video.fps': FPS,
            'video.channels': 1 if depth else 3, 'has_audio': False, 'video.g': 2,
            'video.crf': 30, 'video.preset': None if depth else 12, 'video.fast_decode': 0,
            'video.video_backend': 'pyav',
            'video.extra_options': {'x265-params': 'lossless=1'} if depth else {},
            'is_depth_map': depth}
    if depth:
        info.update({'depth_unit': 'mm', **{f'video.{k}': v for k, v in LEROBOT_DEPTH.items()}})
    return info


def write_lerobot_dataset(root):
    """Two episodes, two colour cameras and one depth camera, at 10 Hz (module docstring)."""
    rows = [(e, k) for e, n in enumerate(LENGTHS) for k in range(n)]
    tasks = ['pick up the cube', 'stack the cubes']
    image = {'dtype': 'video', 'shape': [H, W, 3], 'names': ['height', 'width', 'channels']}
    vector = {'dtype': 'float32', 'shape': [7], 'names': NAMES}
    scalar = {'shape': [1], 'names': None}
    features = {OBS_STATE: vector, 'action': vector,
                FRONT: {**image, 'info': video_info(False)},
                WRIST: {**image, 'info': video_info(False)},
                FRONT_DEPTH: {**image, 'shape': [H, W, 1], 'info': video_info(True)},
                'timestamp': {'dtype': 'float32', **scalar},
                **{k: {'dtype': 'int64', **scalar}
                   for k in ('frame_index', 'episode_index', 'index', 'task_index')}}
    chunk = 'chunk-{chunk_index:03d}/file-{file_index:03d}'
    info = {'codebase_version': 'v3.0', 'fps': FPS, 'features': features,
            'total_episodes': len(LENGTHS), 'total_frames': len(rows), 'total_tasks': 2,
            'chunks_size': 1000, 'data_files_size_in_mb': 100, 'video_files_size_in_mb': 200,
            'data_path': f'data/{chunk}.parquet',
            'video_path': f'videos/{{video_key}}/{chunk}.mp4',
            'robot_type': 'so100', 'splits': {'train': f'0:{len(LENGTHS)}'}}
    (root / 'meta').mkdir(parents=True)
    (root / 'meta' / 'info.json').write_text(json.dumps(info, indent=4))
    for camera in (FRONT, WRIST):
        frames = [np.broadcast_to(colour(camera, e, k), (H, W, 3)).copy() for e, k in rows]
        encode(root / f'videos/{camera}/chunk-000/file-000.mp4', frames, 'libsvtav1', 'yuv420p',
               'rgb24', {'g': '2', 'crf': '30', 'preset': '12'})
    encode(root / f'videos/{FRONT_DEPTH}/chunk-000/file-000.mp4',
           [quantize(depth_mm(e, k)) for e, k in rows], 'hevc', 'gray12le', 'gray12le',
           {'g': '2', 'crf': '30', 'x265-params': 'lossless=1:log-level=error'})
    states = np.stack([state(e, k) for e, k in rows])
    data = pa.table({  # LeRobot's float vectors: fixed-size lists (datasets' List(length=7))
        OBS_STATE: pa.FixedSizeListArray.from_arrays(pa.array(states.reshape(-1)), 7),
        'action': pa.FixedSizeListArray.from_arrays(pa.array(states.reshape(-1) + 0.5), 7),
        'timestamp': pa.array([k / FPS for _, k in rows], pa.float32()),
        'frame_index': pa.array([k for _, k in rows], pa.int64()),
        'episode_index': pa.array([e for e, _ in rows], pa.int64()),
        'index': pa.array(range(len(rows)), pa.int64()),
        'task_index': pa.array([e for e, _ in rows], pa.int64())})
    (root / 'data/chunk-000').mkdir(parents=True)
    pq.write_table(data, root / 'data/chunk-000/file-000.parquet')
    episodes, start = [], 0
    for e, n in enumerate(LENGTHS):
        row = {'episode_index': e, 'tasks': [tasks[e]], 'length': n, 'data/chunk_index': 0,
               'data/file_index': 0, 'dataset_from_index': start, 'dataset_to_index': start + n}
        for camera in (FRONT, WRIST, FRONT_DEPTH):
            row.update({f'videos/{camera}/chunk_index': 0, f'videos/{camera}/file_index': 0,
                        f'videos/{camera}/from_timestamp': start / FPS,
                        f'videos/{camera}/to_timestamp': (start + n) / FPS})
        episodes.append({**row, 'meta/episodes/chunk_index': 0, 'meta/episodes/file_index': 0})
        start += n
    (root / 'meta/episodes/chunk-000').mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(episodes),
                   root / 'meta/episodes/chunk-000/file-000.parquet')
    pq.write_table(pa.table({'task_index': pa.array([0, 1], pa.int64()), 'task': tasks}),
                   root / 'meta/tasks.parquet')
    return root


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    return write_lerobot_dataset(tmp_path_factory.mktemp('lerobot') / 'so100_cubes')


def test_mapped_features_are_read_in_lerobots_conventions(dataset):
    data = LeRobotDataset(dataset, horizon=4, image_size=64, use_depth=True, feature_map=MAP)
    assert data.features == {'state': OBS_STATE, 'action': 'action', 'image': FRONT,
                             'depth': FRONT_DEPTH}
    assert data.names == NAMES and data.fps == FPS and len(data) == sum(LENGTHS)
    for i, (e, k) in enumerate([(0, 0), (0, 11), (1, 0), (1, 14)]):
        sample = data[[0, 11, 12, 26][i]]
        np.testing.assert_array_equal(sample[OBS_STATE], state(e, k))
        centre = sample[OBS_IMAGE][32, 32].astype(int)
        assert np.abs(centre - colour(FRONT, e, k)).max() <= 6  # AV1, lossy
        metres = sample[OBS_DEPTH]  # 64 x 64: 48 rows of frame between 8-row pads
        want = depth_mm(e, k)[20, 20] / 1000.0
        assert np.nanmax(np.abs(metres[20:50] - want)) < 0.0015  # 12-bit codes: < 1.5 mm
        assert np.isnan(metres[8:16]).all()  # the sensor's 0: code 0, invalid
    wrist = LeRobotDataset(dataset, 4, 64, feature_map=f'{WRIST}=image')
    assert np.abs(wrist[12][OBS_IMAGE][32, 32].astype(int) - colour(WRIST, 1, 0)).max() <= 6


def test_unmapped_or_wrong_features_are_named(dataset, tmp_path):
    with pytest.raises(DatasetError, match=f"no '{OBS_IMAGE}' for image.*--map.*{FRONT}"):
        LeRobotDataset(dataset, horizon=4, image_size=32)
    with pytest.raises(DatasetError, match=f"'{FRONT}'.*not a depth video"):
        LeRobotDataset(dataset, 4, 32, use_depth=True, feature_map=f'{FRONT}=depth,{WRIST}=image')
    with pytest.raises(DatasetError, match=f"'{FRONT_DEPTH}'.*not a colour video"):
        LeRobotDataset(dataset, 4, 32, feature_map=f'{FRONT_DEPTH}=image')
    with pytest.raises(DatasetError, match="unknown role 'rgb'.*image, depth, state, action"):
        parse_feature_map(f'{FRONT}=rgb')
    with pytest.raises(DatasetError, match="role 'image' given twice"):
        parse_feature_map(f'{FRONT}=image,{WRIST}=image')
    spec = tmp_path / 'map.yaml'
    spec.write_text(f'{FRONT}: image\n{FRONT_DEPTH}: depth\n')
    assert parse_feature_map(spec) == parse_feature_map(MAP) == {
        'image': FRONT, 'depth': FRONT_DEPTH, 'state': OBS_STATE, 'action': 'action'}


def test_vla_train_on_a_lerobot_dataset_saves_the_map_in_the_contract(dataset, tmp_path):
    out = tmp_path / 'run'
    assert main(['--data', str(dataset), '--out', str(out), '--preset', 'tiny_pi0_depth',
                 '--map', MAP, '--steps', '2', '--batch-size', '4', '--warmup', '1',
                 '--val-every', '2', '--save-every', '2', '--val-batches', '1',
                 '--no-progress']) == 0
    metrics = [json.loads(line) for line in (out / 'metrics.jsonl').read_text().splitlines()]
    assert all(np.isfinite(m['loss']) for m in metrics) and 'val_loss' in metrics[-1]
    contract = read_policy_json(out / 'checkpoints' / 'step_000002')['contract']
    assert contract['dataset_features'] == {'state': OBS_STATE, 'action': 'action',
                                            'image': FRONT, 'depth': FRONT_DEPTH}
    assert contract['joint_names'] == NAMES and contract['action_rate_hz'] == FPS
