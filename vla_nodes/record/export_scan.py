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


"""vla-export's first pass over a bag: its streams, their stamps and vectors, intrinsics, tasks."""

from pathlib import Path
from typing import Any

import numpy as np

from vla_nodes import contract
from vla_nodes.perception import env_state
from vla_nodes.record import bag_meta, bag_read
from vla_nodes.record.bag_read import bag_topics
from vla_nodes.record.export_config import ExportConfig, ExportError, Stream, VECTOR_KINDS
from vla_nodes.ros import msgs


# A leader arm is moved by hand: between two of its messages no joint moves this far (rad; the
# gripper m). A held command followed by such a jump is the previous episode's last command.
LEADER_JUMP = (0.1,) * 6 + (0.01,)
TYPES = {'joints': 'sensor_msgs/msg/JointState', 'pose': 'geometry_msgs/msg/PoseStamped',
         'objects': 'vision_msgs/msg/Detection3DArray',
         'rgb8': 'sensor_msgs/msg/Image', '16UC1': 'sensor_msgs/msg/Image'}


def streams(config: ExportConfig, first_topics: dict) -> list[Stream]:
    """What to export; the pose and the depths only when the first bag has them."""
    def present(topic):
        return first_topics.get(topic, (None, 0))[1] > 0

    streams = [Stream(contract.OBS_STATE, contract.JOINT_STATES_TOPIC, 'joints',
                      'follower joint state = observation.state'),
               Stream(contract.ACTION, contract.LEADER_JOINT_STATES_TOPIC, 'joints',
                      'leader arm command = action')]
    if present(contract.EE_POSE_TOPIC):
        streams.append(Stream(contract.OBS_EE_POSE, contract.EE_POSE_TOPIC, 'pose',
                              'end-effector pose'))
    if config.env_objects and present(contract.OBJECTS_TOPIC):
        streams.append(Stream(contract.OBS_ENV_STATE, contract.OBJECTS_TOPIC, 'objects',
                              'object poses (pose_node) = observation.environment_state'))
    for cam in config.cameras:
        streams.append(Stream(cam.image_key, cam.color_topic, 'rgb8', 'colour images'))
        if cam.depth_key and present(cam.depth_topic):
            streams.append(Stream(cam.depth_key, cam.depth_topic, '16UC1', 'aligned depth'))
    return streams


def check_topics(path: Path, topics: dict, streams: list[Stream], config: ExportConfig) -> None:
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


def bag_info(path: Path) -> tuple[dict[str, tuple[str, int]], dict]:
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


def env_state_rows(path: Path, detections: list, camera_to_base, metadata: dict,
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


def vector(msg: Any, kind: str, topic: str):
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


def intrinsics(info: Any) -> dict:
    return {'width': int(info.width), 'height': int(info.height),
            'K': np.asarray(info.k, float).reshape(3, 3).tolist(),
            'D': [float(c) for c in info.d], 'distortion_model': info.distortion_model,
            'frame_id': info.header.frame_id}


def scan(path: Path, streams: list[Stream], config: ExportConfig, metadata: dict) -> dict:
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
            infos.setdefault(topic, intrinsics(msg))
        else:
            stream = by_topic[topic]
            header[stream.key].append(msgs.stamp_to_ns(msg.header.stamp))
            receive[stream.key].append(log_ns)
            if stream.key in values:
                values[stream.key].append(vector(msg, stream.kind, topic))
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
        values[contract.OBS_ENV_STATE] = env_state_rows(
            path, values[contract.OBS_ENV_STATE], camera_to_base, metadata, config)
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
