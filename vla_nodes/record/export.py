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

"""vla-export: rosbag2 episodes -> a LeRobot v3 dataset, with depth and camera intrinsics kept.

Where it fits: teleop_recorder_node writes one bag per episode (`record/bag.py`); this module
samples them and hands rows and frames to `record/lerobot_v3.py`, which writes the dataset the
training code reads (DESIGN.md section 5). `vla-export BAG... -o DIR` is its CLI.

Sampling (`record/sync.py`): each episode is sampled at `fps` on a grid phase-locked to the first
camera, over the span where every stream has data; at each sample every stream contributes its
latest message with stamp <= the sample time, so nothing from the future leaks in. Stamps are
header stamps (the instruction, a String, uses receive time). Two bag reads per episode: the
first collects stamps and vectors, the second encodes only the picked frames, so memory stays
small whatever the episode's length.

What becomes what: observation.state = follower /joint_states, action = leader
/leader/joint_states (7 each, contract.JOINT_NAMES order, matched by name),
observation.ee_pose = /vla/ee_pose (x y z qx qy qz qw) when the bags have it,
observation.environment_state = pose_node's /vla/objects in base_link (by the bag's /tf_static,
else its calibration metadata; perception/env_state.py: x y z, cos/sin of the symmetric yaw of
each of `env_objects`, an object missing from a message keeping its last pose) when the bags
have detections, colour and aligned
16UC1 depth per camera (the 32FC1 /vla/depth/image is derived from the latter and not exported),
the task per row from /vla/instruction (else the bag's 'task' metadata), and `sync_ok`: False on
rows where some stream's pick is older than `max_age_s` (kept, flagged). An episode with more
than `max_stale_fraction` such rows is skipped and named in the report. Camera intrinsics go to
each video feature's `info.intrinsics` in meta/info.json, the bag's calibration (camera to base)
to the first camera's features' `info.calibration`, and the sync report to
meta/sync_report.json. A bag whose leader stream opens with a held command that then jumps
(`stale_leader_prefix`: the driver republishing the previous episode's last command until the
leader's first new frame) starts after it, so every episode's first action is its own. The
rate defaults to the first camera's recorded rate, so every row has a new frame; depth is
stored in LeRobot's own depth encoding unless `depth_codec` says otherwise (record/lerobot_v3.py).

Several cameras (`cameras`, contract.CAMERAS): each one's colour is observation.images.<name> and
its depth observation.depth.<name>; the scene camera keeps observation.images.color and
observation.depth, the single-camera keys.
"""

import argparse
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
import sys
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from vla_nodes import contract
from vla_nodes.cli_errors import run_cli
from vla_nodes.perception import env_state
from vla_nodes.record import bag_meta, bag_read, sync
from vla_nodes.record.bag_read import bag_topics
from vla_nodes.record.lerobot_v3 import (DatasetError, DEPTH_CODECS, DEPTH_FFV1_MM16, DEPTH_HEVC12,
                                         FFV1_NOTE, LeRobotV3Writer)
from vla_nodes.ros import image, msgs

EE_POSE_NAMES = ('x', 'y', 'z', 'qx', 'qy', 'qz', 'qw')
# A leader arm is moved by hand: between two of its messages no joint moves this far (rad; the
# gripper m). A held command followed by such a jump is the previous episode's last command.
LEADER_JUMP = (0.1,) * 6 + (0.01,)
TYPES = {'joints': 'sensor_msgs/msg/JointState', 'pose': 'geometry_msgs/msg/PoseStamped',
         'objects': 'vision_msgs/msg/Detection3DArray',
         'rgb8': 'sensor_msgs/msg/Image', '16UC1': 'sensor_msgs/msg/Image'}


VECTOR_KINDS = ('joints', 'pose', 'objects')  # streams that become parquet columns


class ExportError(RuntimeError):
    """Bags that cannot be exported as asked; the message says what to do."""


@dataclass(frozen=True)
class Camera:
    """One RGB-D camera's topics and the dataset keys they become (None: no depth)."""

    image_key: str = contract.OBS_IMAGE
    depth_key: str | None = contract.OBS_DEPTH
    color_topic: str = contract.COLOR_TOPIC
    color_info_topic: str = contract.COLOR_INFO_TOPIC
    depth_topic: str = contract.DEPTH_TOPIC
    depth_info_topic: str = contract.DEPTH_INFO_TOPIC


@dataclass(frozen=True)
class ExportConfig:
    """How bags become a dataset.

    Attributes:
        fps: sample rate (Hz), an integer as LeRobot expects; None = the first camera's rate in
            the first bag (camera_rate), so rows do not repeat frames.
        max_age_s: freshness window (s); 0.1 s is 3 camera frames or 20 joint states.
        max_stale_fraction: skip an episode when more of its rows than this are stale.
        cameras: the cameras to export (contract.Camera, or Camera for other topics); the
            first one sets the grid's phase. A camera's depth is exported when the first bag
            has its depth topic (then every bag must have it).
        task: task text for every frame; None reads /vla/instruction, else the bag's 'task'.
        robot_type: info.json robot_type; None takes the first bag's 'robot' metadata.
        crf: H.264 quality of the colour videos (lower is better and larger; 23 is x264's).
        env_objects: object categories of observation.environment_state, in order (exported
            when the first bag has /vla/objects); () = none.
        depth_codec: 'hevc12-log' (LeRobot's depth video; LeRobot reads it) or 'ffv1-mm16'
            (lossless 16-bit millimetres; LeRobot cannot read it); lerobot_v3.DEPTH_CODECS.
        progress: show a progress bar over episodes.
    """

    fps: int | None = None
    max_age_s: float = 0.1
    max_stale_fraction: float = 0.1
    cameras: tuple = (contract.SCENE_CAMERA,)
    task: str | None = None
    robot_type: str | None = None
    crf: int = 23
    depth_codec: str = DEPTH_HEVC12
    env_objects: tuple = env_state.DEFAULT_OBJECTS
    progress: bool = True


@dataclass(frozen=True)
class _Stream:
    key: str     # dataset feature key
    topic: str
    kind: str    # 'joints' | 'pose' | 'rgb8' | '16UC1'
    why: str     # what it is, for error messages


# --- reading a bag ------------------------------------------------------------------------------
def _streams(config: ExportConfig, first_topics: dict) -> list[_Stream]:
    """What to export; the pose and the depths only when the first bag has them."""
    def present(topic):
        return first_topics.get(topic, (None, 0))[1] > 0

    streams = [_Stream(contract.OBS_STATE, contract.JOINT_STATES_TOPIC, 'joints',
                       'follower joint state = observation.state'),
               _Stream(contract.ACTION, contract.LEADER_JOINT_STATES_TOPIC, 'joints',
                       'leader arm command = action')]
    if present(contract.EE_POSE_TOPIC):
        streams.append(_Stream(contract.OBS_EE_POSE, contract.EE_POSE_TOPIC, 'pose',
                               'end-effector pose'))
    if config.env_objects and present(contract.OBJECTS_TOPIC):
        streams.append(_Stream(contract.OBS_ENV_STATE, contract.OBJECTS_TOPIC, 'objects',
                               'object poses (pose_node) = observation.environment_state'))
    for cam in config.cameras:
        streams.append(_Stream(cam.image_key, cam.color_topic, 'rgb8', 'colour images'))
        if cam.depth_key and present(cam.depth_topic):
            streams.append(_Stream(cam.depth_key, cam.depth_topic, '16UC1', 'aligned depth'))
    return streams


def _check_topics(path: Path, topics: dict, streams: list[_Stream], config: ExportConfig) -> None:
    """Raise ExportError naming every needed topic the bag lacks or holds with another type."""
    needed = [(s.topic, TYPES[s.kind], s.why) for s in streams]
    needed += [(cam.color_info_topic, 'sensor_msgs/msg/CameraInfo', 'camera intrinsics')
               for cam in config.cameras]
    problems = []
    for topic, expected, why in needed:
        found, count = topics.get(topic, (None, 0))
        if not count:
            problems.append(f'no {topic} ({expected}: {why})')
        elif found != expected:
            problems.append(f'{topic} is {found}, not {expected} ({why})')
    if problems:
        raise ExportError(
            f'cannot export {path}: {"; ".join(problems)}. Record these topics '
            f'(teleop_recorder_node records every contract topic by default) or leave this bag '
            f'out.')


def _bag_info(path: Path) -> tuple[dict[str, tuple[str, int]], dict]:
    """({topic: (type, message count)}, custom metadata) from metadata.yaml alone."""
    metadata = bag_meta.read_metadata(path)  # a clear BagError for a missing or unfinished bag
    return bag_topics(path), metadata


def camera_rate(path: Path, topic: str, frames: int = 50) -> int:
    """The rate (Hz, rounded) of a camera topic.

    The median header-stamp period of its first `frames` images. Raises ExportError when the bag
    has fewer than two.
    """
    stamps = []
    for _, _, log_ns, msg in bag_read.read_bag(path, topics=[topic]):
        stamps.append(msgs.stamp_to_ns(msg.header.stamp) or log_ns)
        if len(stamps) == frames:
            break
    periods = np.diff(np.sort(stamps))
    periods = periods[periods > 0]
    if not periods.size:
        raise ExportError(f'{path}: cannot tell the rate of {topic} from {len(stamps)} '
                          f'images; pass --fps')
    return max(1, round(1e9 / float(np.median(periods))))


def _env_state(path: Path, detections: list, camera_to_base, metadata: dict,
               config: ExportConfig) -> np.ndarray:
    """(N, E) environment state in base_link of an episode's detections.

    The detections are {category: pose in the camera}; an object missing from a message keeps its
    last pose (env_state.hold_last).
    """
    if camera_to_base is None:
        calib = (metadata.get('calibration') or {}).get('camera_to_base')
        if isinstance(calib, dict) and 'translation' in calib:
            from vla_nodes.arm.kinematics import xyz_quat_to_pose
            camera_to_base = xyz_quat_to_pose(list(calib['translation'])
                                              + list(calib['rotation_xyzw']))
        elif calib is not None:
            camera_to_base = np.asarray(calib, dtype=np.float64)
    if camera_to_base is None:
        raise ExportError(f'{path}: object detections need the camera-to-base transform: the '
                          f'bag has neither {contract.TF_STATIC_TOPIC} nor a calibration in its '
                          f'metadata (record with the calibration, or pass --no-env-state)')
    rows = [env_state.vector(d, camera_to_base, config.env_objects) for d in detections]
    width = len(env_state.feature_names(config.env_objects))
    return env_state.hold_last(np.reshape(rows, (len(rows), width)))


def _vector(msg: Any, kind: str, topic: str):
    if kind == 'objects':  # poses in the camera frame; base_link once /tf_static is read
        return env_state.detection_poses(msg)
    if kind == 'pose':
        p, q = msg.pose.position, msg.pose.orientation
        return np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w])
    names, positions = list(msg.name), np.asarray(msg.position, np.float64)
    if not names and positions.size == len(contract.JOINT_NAMES):
        return positions  # unnamed: the contract's order
    lookup = dict(zip(names, positions))
    missing = [n for n in contract.JOINT_NAMES if n not in lookup]
    if missing:
        raise ExportError(f'{topic}: a JointState lacks joints {missing} (has {names}); the '
                          f'dataset needs {list(contract.JOINT_NAMES)}')
    return np.array([lookup[n] for n in contract.JOINT_NAMES])


def _intrinsics(info: Any) -> dict:
    return {'width': int(info.width), 'height': int(info.height),
            'K': np.asarray(info.k, float).reshape(3, 3).tolist(),
            'D': [float(c) for c in info.d], 'distortion_model': info.distortion_model,
            'frame_id': info.header.frame_id}


def _scan(path: Path, streams: list[_Stream], config: ExportConfig, metadata: dict) -> dict:
    """Pass 1: stamps and vectors of every stream, image sizes, intrinsics, instructions."""
    by_topic = {s.topic: s for s in streams}
    info_topics = {c.color_info_topic for c in config.cameras}
    info_topics |= {c.depth_info_topic for c in config.cameras if c.depth_key}
    header = {s.key: [] for s in streams}
    receive = {s.key: [] for s in streams}
    values = {s.key: [] for s in streams if s.kind in VECTOR_KINDS}
    sizes, infos, instructions, camera_to_base = {}, {}, [], None
    topics = set(by_topic) | info_topics | {contract.INSTRUCTION_TOPIC, contract.TF_STATIC_TOPIC}
    for topic, _, log_ns, msg in bag_read.read_bag(path, topics=topics):
        if topic == contract.INSTRUCTION_TOPIC:
            instructions.append((log_ns, msg.data))
        elif topic == contract.TF_STATIC_TOPIC:
            from vla_nodes.perception.calibrate import camera_to_base_from_tf
            found = camera_to_base_from_tf(msg, child=config.cameras[0].frame)
            camera_to_base = found if found is not None else camera_to_base
        elif topic in info_topics:
            infos.setdefault(topic, _intrinsics(msg))
        else:
            stream = by_topic[topic]
            header[stream.key].append(msgs.stamp_to_ns(msg.header.stamp))
            receive[stream.key].append(log_ns)
            if stream.key in values:
                values[stream.key].append(_vector(msg, stream.kind, topic))
            elif msg.encoding != stream.kind:
                raise ExportError(f'{path}: {topic} holds {msg.encoding} images; the dataset '
                                  f'needs {stream.kind} ({stream.why})')
            elif sizes.setdefault(stream.key, (msg.height, msg.width)) != (
                    msg.height, msg.width):
                raise ExportError(f'{path}: {topic} changes size within the episode '
                                  f'({sizes[stream.key]} then {(msg.height, msg.width)}); '
                                  f'record one camera mode per episode')
    stamps, sources = {}, {}
    for key in header:  # header stamps, unless a driver never set them
        use_header = any(header[key])
        stamps[key] = np.array(header[key] if use_header else receive[key], np.int64)
        sources[key] = 'header' if use_header else 'receive'
    if contract.OBS_ENV_STATE in values:
        values[contract.OBS_ENV_STATE] = _env_state(path, values[contract.OBS_ENV_STATE],
                                                    camera_to_base, metadata, config)
    values = {k: np.array(v).reshape(len(v), -1) for k, v in values.items()}
    stale = stale_leader_prefix(values[contract.ACTION]) if contract.ACTION in values else 0
    if stale:  # the episode starts with the leader's first command of its own
        values[contract.ACTION] = values[contract.ACTION][stale:]
        stamps[contract.ACTION] = stamps[contract.ACTION][stale:]
    return {'stamps': stamps, 'sources': sources, 'sizes': sizes, 'infos': infos,
            'values': values, 'instructions': instructions, 'metadata': metadata,
            'stale_leader': stale}


def stale_leader_prefix(values: np.ndarray, jump=LEADER_JUMP) -> int:
    """How many leading leader commands are a carry-over: the same command held, then a jump.

    Args:
        values: (N, 7) leader commands in bag order.
        jump: per joint, a step larger than a hand moves a leader arm between two messages.

    Returns:
        The number of leading messages to drop (0 when the stream opens with a command of its
        own: held and then moving on smoothly, as a leader at rest does).
    """
    if len(values) < 2:
        return 0
    steps = np.abs(np.diff(values, axis=0))
    moved = np.flatnonzero(steps.max(axis=1) > 0)
    if not moved.size:
        return 0
    first = int(moved[0])  # values[0 .. first] are one held command
    return first + 1 if np.any(steps[first] > np.asarray(jump)) else 0


# --- sampling ---------------------------------------------------------------------------------
def _plan(path: Path, scan: dict, config: ExportConfig) -> dict:
    """Grid, as-of picks per stream, per-frame task text and the episode's sync report."""
    stamps = scan['stamps']
    try:
        start, end = sync.overlap(stamps)
    except ValueError as exc:
        raise ExportError(f'cannot export {path}: {exc}') from None
    start = sync.aligned_start(start, config.fps, stamps[config.cameras[0].image_key])
    if start > end:
        raise ExportError(f'cannot export {path}: its streams overlap for less than one sample '
                          f'period (1/{config.fps} s); leave this bag out')
    times = sync.sample_times(start, end, config.fps)
    max_age = round(config.max_age_s * 1e9)
    picks = {key: sync.as_of(s, times, max_age) for key, s in stamps.items()}
    sync_ok = np.logical_and.reduce([p.fresh for p in picks.values()])
    report = {key: {**sync.skew_summary(p), 'messages': int(stamps[key].size),
                    'stamp_source': scan['sources'][key]} for key, p in picks.items()}
    fallback = config.task or scan['metadata'].get('task') or next(
        (text for _, text in scan['instructions']), None)
    if not fallback:
        raise ExportError(f'{path} has no task: no {contract.INSTRUCTION_TOPIC} messages and no '
                          f'"task" in its metadata. Pass --task "the task text".')
    tasks = [fallback] * times.size
    if config.task is None and scan['instructions']:
        told = sync.as_of(np.array([ns for ns, _ in scan['instructions']]), times)
        texts = [text for _, text in scan['instructions']]
        tasks = [texts[i] if i >= 0 else fallback for i in told.index]
        report['task'] = {**sync.skew_summary(told), 'messages': len(texts),
                          'stamp_source': 'receive'}
    return {'times': times, 'picks': picks, 'sync_ok': sync_ok, 'tasks': tasks,
            'report': report}


# --- writing an episode -------------------------------------------------------------------------
def _camera_info(path: Path, scan: dict, config: ExportConfig, keys: set[str],
                 known: dict) -> None:
    """Intrinsics per video key into `known`; the same camera (size, K, D) in every episode."""
    for cam in config.cameras:
        color = scan['infos'][cam.color_info_topic]
        for key, info in ((cam.image_key, color),
                          (cam.depth_key, scan['infos'].get(cam.depth_info_topic, color))):
            if key not in keys:
                continue
            height, width = scan['sizes'][key]
            if (info['width'], info['height']) != (width, height):
                raise ExportError(f'{path}: {key} frames are {width}x{height} but its '
                                  f'camera_info says {info["width"]}x{info["height"]}; record '
                                  f'images and camera_info of the same stream')
            first = known.setdefault(key, info)
            if (first['width'], first['height']) != (width, height) or not (
                    np.allclose(first['K'], info['K']) and np.allclose(first['D'], info['D'])):
                raise ExportError(f'{path}: {key} intrinsics differ from those of the first '
                                  f'episode ({first["K"]} vs {info["K"]}); a dataset holds one '
                                  f'camera setup. Export these bags into separate datasets.')


def _write_frames(path: Path, cams: list[_Stream], picks: dict[str, np.ndarray],
                  writer: LeRobotV3Writer) -> None:
    """Pass 2: hand each video its picked frames in row order (a frame may repeat).

    Picks are indices into a topic's messages in bag order; a message's uses are consecutive
    rows, so a frame is held only until its last row is written.
    """
    key_of = {s.topic: s.key for s in cams}
    needed = {key: set(index.tolist()) for key, index in picks.items()}
    done, held = dict.fromkeys(picks, 0), {key: {} for key in picks}
    seen = dict.fromkeys(key_of, 0)
    for topic, _, _, msg in bag_read.read_bag(path, topics=list(key_of)):
        key, k = key_of[topic], seen[topic]
        seen[topic] += 1
        if k not in needed[key]:
            continue
        held[key][k] = image.from_msg(msg)
        index = picks[key]
        while done[key] < index.size and index[done[key]] in held[key]:
            j = index[done[key]]
            writer.add_frame(key, held[key][j])
            done[key] += 1
            if done[key] == index.size or index[done[key]] != j:
                del held[key][j]
    short = [key for key in picks if done[key] != picks[key].size]
    if short:
        raise ExportError(f'{path}: {short} lost frames between two reads; is the bag still '
                          f'being written? Export finished bags only.')


@contextmanager
def _naming(path: Path):
    """A problem found in a bag's messages names the bag: the CLI prints the message alone."""
    try:
        yield
    except (ExportError, DatasetError, image.ImageEncodingError) as exc:
        if str(path) in str(exc):
            raise
        raise ExportError(f'{path}: {exc}') from None


# --- the export ---------------------------------------------------------------------------------
def find_bags(paths: Sequence[str | Path]) -> list[Path]:
    """Bag folders from paths that are bags or folders of bags (sorted by name)."""
    bags = []
    for path in map(Path, paths):
        if (path / 'metadata.yaml').is_file():
            bags.append(path)
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if (p / 'metadata.yaml').is_file())
            if not found:
                raise ExportError(f'{path} is neither a bag nor a folder of bags (no '
                                  f'metadata.yaml in it or in its subfolders)')
            bags.extend(found)
        else:
            raise ExportError(f'bag {path} does not exist; check the path')
    if not bags:
        raise ExportError('no bags given; pass bag folders or a folder of bags')
    return bags


def _overall(runs: dict[str, list[sync.AsOf]]) -> dict:
    return {key: sync.skew_summary(sync.AsOf(np.concatenate([r.index for r in parts]),
                                             np.concatenate([r.age_ns for r in parts]),
                                             parts[0].max_age_ns))
            for key, parts in runs.items()}


def export(bags: Sequence[str | Path], output: str | Path, config: ExportConfig = ExportConfig(),
           overwrite: bool = False) -> dict:
    """Export bags (one episode each) to a LeRobot v3 dataset folder.

    Every bag's topics are checked before anything is written; the dataset appears at `output`
    only once complete (see LeRobotV3Writer).

    Args:
        bags: bag folders, or folders holding bag folders.
        output: dataset folder to create.
        config: sampling and encoding choices.
        overwrite: replace an existing dataset at output.

    Returns:
        The sync report, also saved as meta/sync_report.json: {'fps', 'max_age_s',
        'max_stale_fraction', 'streams': {key: figures over the exported episodes},
        'episodes': [{'bag', 'frames', 'start_ns', 'stale_fraction', 'streams', and
        'episode_index' or 'skipped'}]}; figures are sync.skew_summary's.

    Raises:
        ExportError: a missing bag, a bag without the needed topics or task, or every episode
            skipped as stale. DatasetError: an existing output without overwrite.
        BagError: a bag that cannot be read.
    """
    if not (config.max_age_s > 0 and 0 <= config.max_stale_fraction <= 1):
        raise ExportError(f'max_age_s must be > 0 and max_stale_fraction in [0, 1]; got '
                          f'{config.max_age_s} and {config.max_stale_fraction}')
    paths = find_bags(bags)
    infos = {path: _bag_info(path) for path in paths}
    streams = _streams(config, infos[paths[0]][0])
    for path in paths:
        _check_topics(path, infos[path][0], streams, config)
    if config.fps is None:
        config = replace(config, fps=camera_rate(paths[0], config.cameras[0].color_topic))
    vectors = [s for s in streams if s.kind in VECTOR_KINDS]
    cams = [s for s in streams if s.kind in ('rgb8', '16UC1')]
    names = {s.key: {'pose': EE_POSE_NAMES, 'joints': contract.JOINT_NAMES,
                     'objects': env_state.feature_names(config.env_objects)}[s.kind]
             for s in vectors}
    writer = LeRobotV3Writer(output, config.fps, names, overwrite=overwrite, crf=config.crf,
                             depth_codec=config.depth_codec)
    episodes, runs, intrinsics = [], {}, {}
    try:
        for path in tqdm(paths, desc='vla-export', unit='episode', disable=not config.progress):
            with _naming(path):
                scan = _scan(path, streams, config, infos[path][1])
                plan = _plan(path, scan, config)
            stale = float(1.0 - plan['sync_ok'].mean())
            entry = {'bag': str(path), 'frames': int(plan['times'].size),
                     'start_ns': int(plan['times'][0]), 'stale_fraction': stale,
                     'streams': plan['report'], 'stale_leader_dropped': scan['stale_leader']}
            episodes.append(entry)
            if stale > config.max_stale_fraction:
                entry['skipped'] = (f'{stale:.0%} of rows stale, more than '
                                    f'{config.max_stale_fraction:.0%}')
                continue
            _camera_info(path, scan, config, {s.key for s in cams}, intrinsics)
            with _naming(path):
                _write_frames(path, cams, {s.key: plan['picks'][s.key].index for s in cams},
                              writer)
            columns = {s.key: plan['picks'][s.key].take(scan['values'][s.key]) for s in vectors}
            sync_ok = plan['sync_ok']
            if contract.OBS_ENV_STATE in columns:  # rows before an object's first detection
                env = columns[contract.OBS_ENV_STATE]
                sync_ok = sync_ok & np.isfinite(env).all(axis=1)
                columns[contract.OBS_ENV_STATE] = np.nan_to_num(env)  # flagged, never trained on
            entry['episode_index'] = writer.add_episode({**columns, contract.SYNC_OK: sync_ok},
                                                        plan['tasks'], {'source_bag': str(path)})
            for key, run in plan['picks'].items():
                runs.setdefault(key, []).append(run)
        report = {'fps': config.fps, 'max_age_s': config.max_age_s,
                  'max_stale_fraction': config.max_stale_fraction, 'streams': _overall(runs),
                  'episodes': episodes}
        if not writer.episodes:
            raise ExportError(f'every episode was skipped as stale:\n{format_report(report)}\n'
                              f'Raise --max-age or --max-stale-fraction to keep them.')
    except BaseException:
        writer.abort()
        raise
    metadata = infos[paths[0]][1]
    video_info = {key: {'intrinsics': value} for key, value in intrinsics.items()}
    if metadata.get('calibration') is not None:  # the recorded camera's: the first one
        for key in (config.cameras[0].image_key, config.cameras[0].depth_key):
            if key in video_info:
                video_info[key]['calibration'] = metadata['calibration']
    writer.finish(config.robot_type or metadata.get('robot'), video_info,
                  {'sync_report.json': report})
    return report


def format_report(report: dict) -> str:
    """The sync report as text: one line per stream, then the skipped episodes."""
    def ms(value):
        return '-' if value is None else f'{value:.1f}'

    lines = [f'{"stream":<28}{"samples":>9}{"stale":>7}{"missing":>8}'
             f'{"skew p50 ms":>13}{"p95 ms":>8}{"max ms":>8}']
    for key, s in report['streams'].items():
        lines.append(f'{key:<28}{s["samples"]:>9}{s["stale"]:>7}{s["missing"]:>8}'
                     f'{ms(s["skew_p50_ms"]):>13}{ms(s["skew_p95_ms"]):>8}'
                     f'{ms(s["skew_max_ms"]):>8}')
    lines += [f'skipped {e["bag"]}: {e["skipped"]}' for e in report['episodes'] if 'skipped' in e]
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    """`vla-export BAG... -o DIR`: bags (or folders of bags) to a LeRobot v3 dataset."""
    parser = argparse.ArgumentParser(
        prog='vla-export', description='Export rosbag2 episodes to a LeRobot v3 dataset with '
        'depth and camera intrinsics, sampled at a fixed rate with as-of alignment.')
    parser.add_argument('bags', nargs='+', type=Path, help='bag folders or folders of bags')
    parser.add_argument('-o', '--output', type=Path, required=True, help='dataset folder')
    parser.add_argument('--fps', type=int, default=None,
                        help="sample rate, Hz (default: the camera's recorded rate)")
    parser.add_argument('--max-age', type=float, default=0.1,
                        help='freshness window, s: older picks are stale (default 0.1)')
    parser.add_argument('--max-stale-fraction', type=float, default=0.1,
                        help='skip episodes with more stale rows than this (default 0.1)')
    parser.add_argument('--cameras', default=','.join(contract.DEFAULT_CAMERAS),
                        help='cameras to export, contract names, the first sets the sampling '
                             "(default 'scene'; 'scene,wrist' adds observation.images.wrist "
                             'and observation.depth.wrist)')
    parser.add_argument('--env-objects', default=','.join(env_state.DEFAULT_OBJECTS),
                        help='object categories of observation.environment_state, from the '
                             "bags' /vla/objects (default 'cube'; '' = none)")
    parser.add_argument('--no-env-state', dest='env_objects', action='store_const', const='',
                        help='no observation.environment_state')
    parser.add_argument('--task', help='task text for every frame (default: the instruction)')
    parser.add_argument('--robot-type', help="robot_type (default: the bag's robot)")
    parser.add_argument('--crf', type=int, default=23, help='H.264 quality (default 23)')
    parser.add_argument('--depth-codec', choices=DEPTH_CODECS, default=DEPTH_HEVC12,
                        help=f'{DEPTH_HEVC12} (default): 12-bit log-quantised HEVC depth as '
                             f'LeRobot writes and reads it; {DEPTH_FFV1_MM16}: lossless 16-bit '
                             f'mm, which LeRobot cannot read')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing dataset')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    try:
        cameras = contract.cameras(args.cameras)
    except ValueError as err:
        parser.error(str(err))
    config = ExportConfig(fps=args.fps, max_age_s=args.max_age, cameras=cameras,
                          max_stale_fraction=args.max_stale_fraction, task=args.task,
                          robot_type=args.robot_type, crf=args.crf,
                          depth_codec=args.depth_codec, progress=not args.no_progress,
                          env_objects=tuple(c.strip() for c in args.env_objects.split(',')
                                            if c.strip()))
    if args.depth_codec == DEPTH_FFV1_MM16:
        print(f'vla-export: depth as {FFV1_NOTE}', file=sys.stderr)
    return run_cli('vla-export', lambda: _export(args, config),
                   (ExportError, DatasetError, image.ImageEncodingError))


def _export(args, config: ExportConfig) -> int:
    report = export(args.bags, args.output, config, overwrite=args.overwrite)
    print(format_report(report))
    kept = [e for e in report['episodes'] if 'episode_index' in e]
    print(f'{args.output}: {len(kept)} episodes, {sum(e["frames"] for e in kept)} frames at '
          f'{report["fps"]} Hz; sync report in meta/sync_report.json')
    return 0


if __name__ == '__main__':
    sys.exit(main())
