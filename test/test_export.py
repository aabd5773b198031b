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

"""vla-export end to end: synthetic bags written with BagWriter -> a LeRobot v3 dataset.

The bags hold 64x48 colour and depth at 30 Hz with stamp jitter, follower and leader joint states
at 100 Hz with jitter (the leader's joints in another order), end-effector poses, camera_info and
instructions. The checks recompute every as-of pick by brute force from what was written.
"""

import json
import math
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from vla_nodes import contract
from vla_nodes.nodes.camera_topics import camera_info
from vla_nodes.record import export, export_config, export_scan
from vla_nodes.record.bag import BagWriter
from vla_nodes.ros import image, msgs
from vla_nodes.ros.msgs import geometry_msgs, sensor_msgs, std_msgs

MS = 1_000_000
T0 = 1_700_000_000_000_000_000  # ns
K = np.array([[60.0, 0.0, 31.5], [0.0, 60.0, 23.5], [0.0, 0.0, 1.0]])
D = [0.01, -0.02, 0.0, 0.0, 0.001]
LEADER_ORDER = ['gripper'] + list(contract.ARM_JOINTS)  # the exporter must map by name
STALE_COMMAND = np.array([0.4, 1.6, -0.9, 0.0, 0.85, -0.6, 0.0])  # a previous episode's end
CALIBRATION = {'camera_to_base': np.eye(4).tolist()}
COLOR_KEY, DEPTH_KEY = contract.OBS_IMAGE, contract.OBS_DEPTH


def header(stamp_ns):
    return std_msgs.Header(stamp=msgs.ns_to_stamp(stamp_ns), frame_id='base_link')


def joints(t_ns, offset):
    """Joint positions at t: a ramp per joint, so a wrong pick shows as a wrong value."""
    s = (t_ns - T0) / 1e9
    return np.array([offset + 0.1 * i + s for i in range(7)])


def rgb(k):
    frame = np.empty((48, 64, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 8 + 3 * k % 240, 128, 248 - 3 * k % 240
    return frame


def depth(k):
    mm = np.random.default_rng(k).integers(300, 4000, (48, 64)).astype(np.uint16)
    mm[: k % 5, :7] = 0  # invalid pixels
    return mm


def write_episode(path, seconds, seed, *, dropout=None, camera_gap=None, instructions=(),
                  topics=None, k_matrix=K, camera_hz=30, stale_leader=0):
    """Write one bag; returns what was written, per stream: (stamps, values).

    `stale_leader`: the first this many leader messages repeat another episode's last command.
    """
    rng = np.random.default_rng(seed)
    items, written = [], {'color': [], 'state': [], 'action': [], 'pose': []}
    info = camera_info(k_matrix, D, 64, 48, 'plumb_bob', T0, 'camera_color_optical_frame')
    for n in range(int(seconds * camera_hz)):
        stamp = T0 + round(n * 1e9 / camera_hz) + int(rng.integers(-3 * MS, 3 * MS))
        if camera_gap and camera_gap[0] <= stamp - T0 < camera_gap[1]:
            continue
        frame = len(written['color'])
        written['color'].append((stamp, frame))
        receive = stamp + 25 * MS  # camera frames arrive late; their header stamp is kept
        items += [(contract.COLOR_TOPIC, image.to_msg(rgb(frame), 'rgb8', stamp, 'cam'), receive),
                  (contract.DEPTH_TOPIC, image.to_msg(depth(frame), '16UC1', stamp, 'cam'),
                   receive),
                  (contract.COLOR_INFO_TOPIC, info, receive),
                  (contract.DEPTH_INFO_TOPIC, info, receive)]
    for n in range(int(seconds * 100)):
        stamp = T0 - 50 * MS + n * 10 * MS + int(rng.integers(-2 * MS, 2 * MS))
        if dropout and dropout[0] <= stamp - T0 < dropout[1]:
            continue
        state, action = joints(stamp, 0.0), joints(stamp, 0.5)
        if len(written['action']) < stale_leader:
            action = STALE_COMMAND
        written['state'].append((stamp, state))
        written['action'].append((stamp, action))
        written['pose'].append((stamp, state[:7]))
        leader = dict(zip(contract.JOINT_NAMES, action))
        p = state
        pose = geometry_msgs.PoseStamped(header=header(stamp), pose=geometry_msgs.Pose(
            position=geometry_msgs.Point(x=p[0], y=p[1], z=p[2]),
            orientation=geometry_msgs.Quaternion(x=p[3], y=p[4], z=p[5], w=p[6])))
        items += [
            (contract.JOINT_STATES_TOPIC, sensor_msgs.JointState(
                header=header(stamp), name=list(contract.JOINT_NAMES), position=list(state)),
             stamp + MS),
            (contract.LEADER_JOINT_STATES_TOPIC, sensor_msgs.JointState(
                header=header(stamp), name=LEADER_ORDER,
                position=[leader[name] for name in LEADER_ORDER]), stamp + MS),
            (contract.EE_POSE_TOPIC, pose, stamp + 2 * MS)]
    for receive, text in instructions:
        items.append((contract.INSTRUCTION_TOPIC, std_msgs.String(data=text), receive))
    items = [item for item in items if topics is None or item[0] in topics]
    metadata = {'task': 'pick up the red cube', 'robot': 'piper', 'calibration': CALIBRATION}
    with BagWriter(path, metadata=metadata, queue_size=100_000) as writer:  # never drops
        for topic, msg, receive in sorted(items, key=lambda item: item[2]):
            writer.write(topic, msg, receive)
    assert writer.dropped == 0
    return {key: (np.array([s for s, _ in v], np.int64), [x for _, x in v])
            for key, v in written.items()}


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp('export')
    bags = base / 'bags'
    bags.mkdir()
    truth = [
        write_episode(bags / 'ep_000', 2.0, 1,
                      instructions=[(T0 - 100 * MS, 'pick up the red cube')]),
        write_episode(bags / 'ep_001', 3.0, 2, dropout=(1000 * MS, 1250 * MS),
                      instructions=[(T0 - 100 * MS, 'pick up the red cube'),
                                    (T0 + 1500 * MS, 'place it on the green plate')]),
        # the camera stops for 1.2 of 2 s: mostly stale rows, the episode is skipped
        write_episode(bags / 'ep_002', 2.0, 3, camera_gap=(400 * MS, 1600 * MS)),
    ]
    out = base / 'dataset'
    config = export_config.ExportConfig(max_age_s=0.1, progress=False)  # fps: the camera's, 30 Hz
    report = export.export([bags], out, config)
    return out, truth, report


def lerobot_depth_mm(codes, info):
    """LeRobot 0.6.1's dequantize_depth (lerobot/datasets/depth_utils.py), restated.

    12-bit codes -> millimetres with the quantiser in the feature's info (metres).
    """
    lo, hi, shift = (info[f'video.{k}'] for k in ('depth_min', 'depth_max', 'shift'))
    assert info['video.use_log'] is True
    log_lo, log_hi = math.log(lo + shift), math.log(hi + shift)
    metres = np.exp(codes.astype(np.float64) * (log_hi - log_lo) / 4095 + log_lo) - shift
    return np.clip(metres, lo, hi) * 1000.0


def half_step_mm(mm, info):
    """Half a code step at depth mm: the most rounding to 12 bits can be off by."""
    lo, hi, shift = (info[f'video.{k}'] for k in ('depth_min', 'depth_max', 'shift'))
    return 0.5 * (mm + shift * 1000) * math.log((hi + shift) / (lo + shift)) / 4095


def read_json(path):
    return json.loads(Path(path).read_text())


def decode(path, fmt):
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format=fmt) for frame in container.decode(video=0)]


def as_of_brute(stamps, t):
    before = np.flatnonzero(stamps <= t)
    return before[np.argmax(stamps[before])]


def sample_times(report, episode):
    entry = [e for e in report['episodes'] if e.get('episode_index') == episode][0]
    return entry['start_ns'] + np.round(np.arange(entry['frames']) * 1e9 / 30).astype(np.int64)


def test_v3_layout_and_info(exported):
    out, _, _ = exported
    for rel in ('meta/info.json', 'meta/stats.json', 'meta/tasks.parquet',
                'meta/sync_report.json', 'meta/episodes/chunk-000/file-000.parquet',
                'data/chunk-000/file-000.parquet',
                f'videos/{COLOR_KEY}/chunk-000/file-000.mp4',
                f'videos/{DEPTH_KEY}/chunk-000/file-000.mp4'):
        assert (out / rel).is_file(), rel
    assert not out.with_name(out.name + '.partial').exists()
    info = read_json(out / 'meta/info.json')
    data = pq.read_table(out / 'data/chunk-000/file-000.parquet')
    assert info['codebase_version'] == 'v3.0' and info['fps'] == 30  # the camera's rate
    assert info['robot_type'] == 'piper'
    assert (info['total_episodes'], info['total_frames']) == (2, data.num_rows)
    assert info['total_tasks'] == 2 and info['splits'] == {'train': '0:2'}
    assert info['data_path'].format(chunk_index=0, file_index=0) == \
        'data/chunk-000/file-000.parquet'
    assert (out / info['video_path'].format(video_key=DEPTH_KEY, chunk_index=0,
                                            file_index=0)).is_file()
    features = info['features']
    assert features[contract.OBS_STATE] == {'dtype': 'float32', 'shape': [7],
                                            'names': list(contract.JOINT_NAMES)}
    assert features[contract.ACTION]['names'] == list(contract.JOINT_NAMES)
    assert features[contract.OBS_EE_POSE]['names'] == list(export_config.EE_POSE_NAMES)
    for key in ('timestamp', 'frame_index', 'episode_index', 'index', 'task_index'):
        assert features[key]['shape'] == [1]
    assert set(data.column_names) == {k for k, f in features.items() if f['dtype'] != 'video'}
    color, depth = features[COLOR_KEY], features[DEPTH_KEY]
    assert color['dtype'] == depth['dtype'] == 'video'
    assert color['shape'] == [48, 64, 3] and depth['shape'] == [48, 64, 1]
    assert color['info']['video.codec'] == 'h264' and not color['info']['is_depth_map']
    # LeRobot's depth convention (lerobot/configs/video.py DepthEncoderConfig): HEVC gray12le,
    # lossless x265, the unit and the quantiser in the info; depth_min 0 keeps 0 = invalid.
    assert depth['info']['is_depth_map'] and depth['info']['depth_unit'] == 'mm'
    assert (depth['info']['video.codec'], depth['info']['video.pix_fmt']) == ('hevc', 'gray12le')
    assert 'lossless=1' in depth['info']['video.extra_options']['x265-params']
    quantiser = {k: depth['info'][f'video.{k}']
                 for k in ('depth_min', 'depth_max', 'shift', 'use_log')}
    assert quantiser == {'depth_min': 0.0, 'depth_max': 10.0, 'shift': 3.5, 'use_log': True}
    assert depth['info']['depth.invalid_value'] == 0 and 'depth.unit' not in depth['info']
    for feature in (color, depth):  # intrinsics, which LeRobot drops
        intrinsics = feature['info']['intrinsics']
        np.testing.assert_allclose(intrinsics['K'], K)
        np.testing.assert_allclose(intrinsics['D'], D)
        assert (intrinsics['width'], intrinsics['height']) == (64, 48)
    assert color['info']['calibration'] == depth['info']['calibration'] == CALIBRATION


def test_indices_timestamps_and_episodes(exported):
    out, _, _ = exported
    data = pq.read_table(out / 'data/chunk-000/file-000.parquet').to_pydict()
    episodes = pq.read_table(out / 'meta/episodes/chunk-000/file-000.parquet').to_pylist()
    n = len(data['index'])
    assert data['index'] == list(range(n))
    assert [e['episode_index'] for e in episodes] == [0, 1]
    assert episodes[0]['dataset_from_index'] == 0
    assert episodes[0]['dataset_to_index'] == episodes[1]['dataset_from_index']
    assert episodes[1]['dataset_to_index'] == n
    for e in episodes:
        rows = range(e['dataset_from_index'], e['dataset_to_index'])
        assert e['length'] == len(rows) > 50
        assert [data['episode_index'][i] for i in rows] == [e['episode_index']] * len(rows)
        assert [data['frame_index'][i] for i in rows] == list(range(len(rows)))
        np.testing.assert_array_equal([data['timestamp'][i] for i in rows],
                                      (np.arange(len(rows)) / 30).astype(np.float32))
        for key in (COLOR_KEY, DEPTH_KEY):
            assert e[f'videos/{key}/from_timestamp'] == e['dataset_from_index'] / 30
            assert e[f'videos/{key}/to_timestamp'] == e['dataset_to_index'] / 30
        assert e['source_bag'].endswith(f'ep_00{e["episode_index"]}')
    assert episodes[0]['tasks'] == ['pick up the red cube']
    assert episodes[1]['tasks'] == ['pick up the red cube', 'place it on the green plate']
    tasks = pq.read_table(out / 'meta/tasks.parquet')
    assert tasks.column('task').to_pylist() == ['pick up the red cube',
                                                'place it on the green plate']
    assert tasks.column('task_index').to_pylist() == [0, 1]
    assert json.loads(tasks.schema.metadata[b'pandas'])['index_columns'] == ['task']


def test_rows_and_frames_are_the_as_of_picks(exported):
    """State, action, pose, colour and depth of every row are the latest message <= its time."""
    out, truth, report = exported
    data = pq.read_table(out / 'data/chunk-000/file-000.parquet').to_pydict()
    colors = decode(out / f'videos/{COLOR_KEY}/chunk-000/file-000.mp4', 'rgb24')
    codes = decode(out / f'videos/{DEPTH_KEY}/chunk-000/file-000.mp4', 'gray12le')
    depths = [lerobot_depth_mm(c, read_json(out / 'meta/info.json')['features'][DEPTH_KEY]['info'])
              for c in codes]
    assert len(colors) == len(depths) == len(data['index'])
    row = 0
    for episode in (0, 1):
        written = truth[episode]
        for t in sample_times(report, episode):
            i = as_of_brute(written['state'][0], t)
            assert written['state'][0][i] <= t
            np.testing.assert_allclose(data[contract.OBS_STATE][row], written['state'][1][i],
                                       rtol=0, atol=1e-6)
            np.testing.assert_allclose(data[contract.ACTION][row], written['action'][1][i],
                                       rtol=0, atol=1e-6)
            np.testing.assert_allclose(data[contract.OBS_EE_POSE][row], written['pose'][1][i],
                                       rtol=0, atol=1e-6)
            frame = written['color'][1][as_of_brute(written['color'][0], t)]
            assert np.abs(depths[row] - depth(frame)).max() < 2.0  # 12-bit codes
            assert np.abs(colors[row].astype(int) - rgb(frame)).max() <= 3  # H.264, lossy
            row += 1
    assert data['task_index'][row - 1] == 1  # the second instruction holds at the end


def test_depth_is_lerobots_encoding_within_the_quantisation_error(exported):
    """The stored depth video, decoded independently, is the recorded depth within half a step.

    Decoded with PyAV and LeRobot's formula restated; the step is a 12-bit code; invalid pixels
    (0) stay exactly 0.
    """
    out, truth, report = exported
    info = read_json(out / 'meta/info.json')['features'][DEPTH_KEY]['info']
    codes = np.stack(decode(out / f'videos/{DEPTH_KEY}/chunk-000/file-000.mp4', 'gray12le'))
    recorded = np.stack([depth(truth[e]['color'][1][as_of_brute(truth[e]['color'][0], t)])
                         for e in (0, 1) for t in sample_times(report, e)]).astype(np.float64)
    assert codes.shape == recorded.shape and codes.max() <= 4095
    invalid = recorded == 0
    assert invalid.any() and (codes[invalid] == 0).all() and (codes[~invalid] > 0).all()
    got = lerobot_depth_mm(codes, info)
    error = np.abs(got - recorded)[~invalid]
    bound = half_step_mm(np.maximum(got, recorded)[~invalid], info)  # steps grow with depth
    assert (error <= bound + 0.01).all(), (error - bound).max()  # + float32 rounding
    assert 0.1 < np.median(error) < 0.6 and error.max() < 1.3  # 300..4000 mm: steps 1.1-2.5 mm


def test_lossless_16bit_depth_option(exported, tmp_path, capsys):
    """--depth-codec ffv1-mm16 keeps the millimetres exactly and says LeRobot cannot read it."""
    out, truth, report = exported
    bags = out.parent / 'bags'
    assert export.main([str(bags / 'ep_000'), '-o', str(tmp_path / 'ds'), '--no-progress',
                        '--depth-codec', 'ffv1-mm16']) == 0
    assert 'LeRobot 0.6.1 cannot' in capsys.readouterr().err
    info = read_json(tmp_path / 'ds/meta/info.json')['features'][DEPTH_KEY]['info']
    assert (info['video.codec'], info['video.pix_fmt'], info['depth_unit']) == \
        ('ffv1', 'gray16le', 'mm')
    assert 'LeRobot 0.6.1 cannot' in info['note'] and 'video.depth_min' not in info
    lossless = decode(tmp_path / f'ds/videos/{DEPTH_KEY}/chunk-000/file-000.mp4', 'gray16le')
    stored = decode(out / f'videos/{DEPTH_KEY}/chunk-000/file-000.mp4', 'gray12le')
    frames = [depth(truth[0]['color'][1][as_of_brute(truth[0]['color'][0], t)])
              for t in sample_times(report, 0)]
    assert len(lossless) == len(frames)
    for mm, codes, want in zip(lossless, stored, frames):
        np.testing.assert_array_equal(mm, want)
        assert np.abs(lerobot_depth_mm(codes, {**info, **read_json(
            out / 'meta/info.json')['features'][DEPTH_KEY]['info']}) - want).max() < 2.0


def test_stale_rows_are_flagged_and_stale_episodes_skipped(exported):
    out, truth, report = exported
    data = pq.read_table(out / 'data/chunk-000/file-000.parquet').to_pydict()
    start = len([i for i in data['episode_index'] if i == 0])
    stamps = truth[1]['state'][0]
    expected = [t - stamps[as_of_brute(stamps, t)] <= 100 * MS for t in sample_times(report, 1)]
    assert data['sync_ok'][start:] == expected
    assert 0 < expected.count(False) < 10  # the 250 ms dropout less the 100 ms window
    saved = read_json(out / 'meta/sync_report.json')
    assert saved == json.loads(json.dumps(report))
    episode = saved['episodes'][1]['streams']
    assert episode[contract.OBS_STATE]['stale'] == expected.count(False)
    assert episode[COLOR_KEY]['stamp_source'] == 'header'
    assert episode['task']['stamp_source'] == 'receive'
    # Header stamps, not the 25 ms late receive time: the camera is ~half a period old.
    assert 10 < saved['streams'][COLOR_KEY]['skew_p50_ms'] < 23
    assert saved['streams'][COLOR_KEY]['skew_p95_ms'] < 33
    skipped = saved['episodes'][2]
    assert skipped['bag'].endswith('ep_002') and 'stale' in skipped['skipped']
    assert 'episode_index' not in skipped


def test_stats_match_the_data(exported):
    out, truth, report = exported
    stats = read_json(out / 'meta/stats.json')
    data = pq.read_table(out / 'data/chunk-000/file-000.parquet').to_pydict()
    for key in (contract.OBS_STATE, contract.ACTION, contract.OBS_EE_POSE):
        x = np.array(data[key], np.float64)
        np.testing.assert_allclose(stats[key]['mean'], x.mean(0), atol=1e-6)
        np.testing.assert_allclose(stats[key]['std'], x.std(0), atol=1e-6)
        np.testing.assert_allclose(stats[key]['min'], x.min(0))
        np.testing.assert_allclose(stats[key]['max'], x.max(0))
        np.testing.assert_allclose(stats[key]['q01'], np.quantile(x, 0.01, axis=0))
        np.testing.assert_allclose(stats[key]['q99'], np.quantile(x, 0.99, axis=0))
        assert stats[key]['count'] == [len(x)]
    assert stats['index']['max'] == [len(x) - 1]
    depths = np.stack([depth(truth[e]['color'][1][as_of_brute(truth[e]['color'][0], t)])
                       for e in (0, 1) for t in sample_times(report, e)]).astype(np.float64)
    # in the depth_unit, mm, over every pixel (0 = invalid included), as LeRobot computes them
    assert np.array(stats[DEPTH_KEY]['mean']).shape == (1, 1, 1)
    assert stats[DEPTH_KEY]['min'] == [[[0.0]]]
    assert stats[DEPTH_KEY]['max'] == [[[depths.max()]]]
    np.testing.assert_allclose(stats[DEPTH_KEY]['mean'], [[[depths.mean()]]])
    np.testing.assert_allclose(stats[DEPTH_KEY]['q50'],
                               [[[np.quantile(depths, 0.5, method='inverted_cdf')]]])
    color = np.array(stats[COLOR_KEY]['mean']).reshape(3)
    assert color[1] == pytest.approx(128 / 255)
    assert stats[COLOR_KEY]['min'][1] == stats[COLOR_KEY]['max'][1] == [[128 / 255]]
    episodes = pq.read_table(out / 'meta/episodes/chunk-000/file-000.parquet').to_pylist()
    first = np.array(data[contract.OBS_STATE][:episodes[0]['length']])
    np.testing.assert_allclose(episodes[0][f'stats/{contract.OBS_STATE}/mean'], first.mean(0),
                               atol=1e-6)


def test_the_rate_defaults_to_the_cameras(tmp_path):
    """A 10 Hz camera gives a 10 Hz dataset, one new frame per row; --fps still overrides it.

    A 30 Hz default repeated every frame three times.
    """
    write_episode(tmp_path / 'ep', 2.0, 8, camera_hz=10)
    report = export.export([tmp_path / 'ep'], tmp_path / 'ds',
                           export_config.ExportConfig(progress=False))
    assert report['fps'] == read_json(tmp_path / 'ds/meta/info.json')['fps'] == 10
    frames = decode(tmp_path / f'ds/videos/{COLOR_KEY}/chunk-000/file-000.mp4', 'rgb24')
    assert 15 <= len(frames) <= 20
    red = np.array([f[..., 0].mean() for f in frames])  # rgb(k): red rises by 3 per frame
    assert (np.diff(red) > 0).all() and abs(red[-1] - red[0] - 3 * (len(red) - 1)) < 4
    report = export.export([tmp_path / 'ep'], tmp_path / 'ds', export_config.ExportConfig(
        fps=20, progress=False), overwrite=True)
    assert report['fps'] == 20


def test_missing_topic_is_named(tmp_path):
    path = tmp_path / 'no_leader'
    keep = set(contract.TOPIC_TYPES) - {contract.LEADER_JOINT_STATES_TOPIC}
    write_episode(path, 0.5, 4, topics=keep)
    with pytest.raises(export_config.ExportError, match='/leader/joint_states') as error:
        export.export([path], tmp_path / 'out', export_config.ExportConfig(progress=False))
    assert 'action' in str(error.value)
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'out.partial').exists()


def test_a_different_camera_is_refused(tmp_path):
    (tmp_path / 'bags').mkdir()
    write_episode(tmp_path / 'bags' / 'a', 0.5, 6)
    write_episode(tmp_path / 'bags' / 'b', 0.5, 7, k_matrix=K * [[1.1], [1.1], [1]])
    with pytest.raises(export_config.ExportError, match='intrinsics differ') as error:
        export.export([tmp_path / 'bags'], tmp_path / 'out',
                      export_config.ExportConfig(progress=False))
    assert str(tmp_path / 'bags' / 'b') in str(error.value)
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'out.partial').exists()


def test_cli_bad_input_and_overwrite(tmp_path, capsys):
    bag_path = tmp_path / 'ep'
    write_episode(bag_path, 0.6, 5, instructions=[(T0, 'push the cube')])
    out = tmp_path / 'ds'
    assert export.main([str(tmp_path / 'nope'), '-o', str(out)]) == 1
    assert 'nope does not exist' in capsys.readouterr().err
    assert export.main([str(bag_path), '-o', str(out), '--no-progress']) == 0
    printed = capsys.readouterr().out
    assert contract.OBS_STATE in printed and 'skew p50 ms' in printed
    assert export.main([str(bag_path), '-o', str(out), '--no-progress']) == 1
    assert '--overwrite' in capsys.readouterr().err
    assert export.main([str(bag_path), '-o', str(out), '--no-progress', '--overwrite',
                        '--task', 'stack the cubes']) == 0
    tasks = pq.read_table(out / 'meta/tasks.parquet').column('task').to_pylist()
    assert tasks == ['stack the cubes']
    other = tmp_path / 'not_a_dataset'
    other.mkdir()
    (other / 'notes.txt').write_text('keep me')
    assert export.main([str(bag_path), '-o', str(other), '--overwrite', '--no-progress']) == 1
    assert 'not a LeRobot dataset' in capsys.readouterr().err
    assert (other / 'notes.txt').read_text() == 'keep me'


def test_a_bag_opening_with_the_previous_episodes_command_starts_with_its_own(tmp_path):
    """The driver republishes the leader's last command until the leader's first new frame.

    In the main job an episode's first action was the previous episode's final command.
    """
    (tmp_path / 'bags').mkdir()
    written = write_episode(tmp_path / 'bags' / 'ep', 1.0, 1, stale_leader=20)  # 0.2 s held
    assert export_scan.stale_leader_prefix(np.stack(written['action'][1])) == 20
    report = export.export([tmp_path / 'bags'], tmp_path / 'dataset',
                           export_config.ExportConfig(progress=False))
    assert report['episodes'][0]['stale_leader_dropped'] == 20
    table = pq.read_table(next((tmp_path / 'dataset' / 'data').glob('*/*.parquet')))
    actions = np.array(table.column(contract.ACTION).to_pylist())
    assert not np.any(np.all(np.isclose(actions, STALE_COMMAND), axis=1))
    first_own = written['action'][0][20]
    assert report['episodes'][0]['start_ns'] >= first_own
    # A leader at rest that then moves on smoothly keeps its first messages.
    held = np.repeat(STALE_COMMAND[None], 5, axis=0)
    assert export_scan.stale_leader_prefix(np.vstack([held, held[-1] + 0.001])) == 0


def test_depth_video_decodes_from_every_frame_a_reader_seeks_to(tmp_path):
    # Readers (LeRobot's and train/data.py) seek to an episode's first frame. With x265's
    # default open GOPs the frames leading a CRA picture were lost there: an episode of the
    # wrist camera's depth came back one frame short. Busy depth, as a scene with motion has.
    from vla_nodes.record.lerobot_v3 import _Video
    rng = np.random.default_rng(0)
    base = rng.integers(200, 3000, (48, 64)).astype(np.uint16)
    frames = []
    for k in range(40):
        frame = base.copy() if rng.random() < 0.7 else rng.integers(200, 3000, (48, 64))
        frame = frame.astype(np.uint16)
        frame[:, (3 * k) % 64] = 3500
        frames.append(frame)
    video = _Video(tmp_path / 'videos' / 'depth' / 'f.mp4', 10, frames[0], crf=23)
    for frame in frames:
        video.add(frame)
    video.close()
    wrong = []
    for first in range(len(frames)):
        with av.open(str(tmp_path / 'videos' / 'depth' / 'f.mp4')) as container:
            stream = container.streams.video[0]
            container.seek(int(first / 10 / stream.time_base), stream=stream, backward=True)
            got = next(round(float(f.pts * stream.time_base) * 10)
                       for f in container.decode(stream)
                       if float(f.pts * stream.time_base) > first / 10 - 0.05)
        if got != first:
            wrong.append((first, got))
    assert wrong == [], f'seeking to these frames decoded later ones: {wrong}'
