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

"""What teleop_recorder_node records and what its audit expects: topics, rates, metadata.

Pure functions of its parameters (no ROS): the camera streams a camera namespace stands for,
the message type of each recorded topic, the nominal rate of each (with 'topic=Hz' overrides)
and the static metadata (robot, task, calibration file) every bag carries.
"""

from pathlib import Path

import yaml

from vla_nodes import contract
from vla_nodes.paths import package_share

CAMERA_STREAMS = {  # realsense-ros topic under a camera namespace -> the contract topic it mirrors
    'color/image_raw': contract.COLOR_TOPIC,
    'color/camera_info': contract.COLOR_INFO_TOPIC,
    'aligned_depth_to_color/image_raw': contract.DEPTH_TOPIC,
    'aligned_depth_to_color/camera_info': contract.DEPTH_INFO_TOPIC,
}
DEFAULT_CAMERA = contract.COLOR_TOPIC.rsplit('/color/', 1)[0]  # '/camera/camera'
# The whole contract but the clock; camera topics come from `cameras`.
DEFAULT_TOPICS = [t for t in contract.TOPIC_TYPES
                  if t != contract.CLOCK_TOPIC and t not in CAMERA_STREAMS.values()]
# Nominal rates the audit expects; camera_info comes with every frame, the leader at the
# follower's rate. Override with `expected_rates: ['topic=Hz', ...]` (0 = not checked).
NOMINAL_RATES = {
    **contract.NOMINAL_RATES,
    contract.COLOR_INFO_TOPIC: contract.NOMINAL_RATES[contract.COLOR_TOPIC],
    contract.DEPTH_INFO_TOPIC: contract.NOMINAL_RATES[contract.DEPTH_TOPIC],
    contract.LEADER_JOINT_STATES_TOPIC: contract.NOMINAL_RATES[contract.JOINT_STATES_TOPIC],
}


def static_metadata(p) -> dict:
    """The metadata every bag of teleop_recorder_node carries: robot, task, calibration."""
    metadata = {'robot': p['robot'], 'recorder': 'vla_nodes teleop_recorder_node'}
    if p['task_name']:
        metadata['task_name'] = p['task_name']
    path = p['calibration_file']
    if not path:
        default = package_share() / 'config' / 'calibration.yaml'
        path = str(default) if default.is_file() else ''
    elif not Path(path).expanduser().is_file():
        raise FileNotFoundError(f'calibration_file {path!r} does not exist: give the YAML '
                                f'written by vla-calibrate, or leave it empty')
    if path:
        path = Path(path).expanduser().resolve()
        try:
            metadata['calibration'] = yaml.safe_load(path.read_text(encoding='utf-8'))
        except yaml.YAMLError as err:
            raise ValueError(f'calibration_file {path} is not valid YAML ({err}); fix it or '
                             f'write it again with vla-calibrate') from None
        metadata['calibration_file'] = str(path)
    return metadata


def camera_prefix(camera: str) -> str:
    """A camera's topic namespace.

    '/camera/wrist_camera' for 'wrist' (contract.camera), or the namespace itself when given as
    one ('/camera/camera').
    """
    return camera if camera.startswith('/') else contract.camera(camera).prefix


def record_topics(topics: list, cameras: list) -> dict:
    """topic -> message type of everything to record: `topics` plus each camera's 4 streams."""
    chosen = {}
    for camera in cameras:
        for stream, contract_topic in CAMERA_STREAMS.items():
            chosen[f'{camera.rstrip("/")}/{stream}'] = contract.TOPIC_TYPES[contract_topic]
    for topic in topics:
        type_name = contract.TOPIC_TYPES.get(topic)
        if type_name is None:
            raise ValueError(f'no message type known for topic {topic!r}: record the contract '
                             f'topics ({", ".join(contract.TOPIC_TYPES)}) and cameras by '
                             f'namespace in the `cameras` parameter')
        chosen[topic] = type_name
    return chosen


def expected_rates(topics: dict, cameras: list, overrides: list,
                   camera_hz: float = 0.0) -> dict:
    """Topic -> Hz for the audit.

    Nominal rates (every camera stream at `camera_hz` if > 0), then 'topic=Hz' overrides.
    """
    rates = {t: NOMINAL_RATES[t] for t in topics if t in NOMINAL_RATES}
    for camera in cameras:
        for stream, contract_topic in CAMERA_STREAMS.items():
            rates[f'{camera.rstrip("/")}/{stream}'] = camera_hz or NOMINAL_RATES[contract_topic]
    for topic, hz in key_values(overrides, 'expected_rates', f'{contract.COLOR_TOPIC}=30.0',
                                'Hz').items():
        try:
            rates[topic] = float(hz)
        except ValueError:
            raise ValueError(f'expected_rates entry {topic}={hz}: the rate must be a number of '
                             f'Hz, e.g. "{contract.COLOR_TOPIC}=30.0"') from None
    return {t: r for t, r in rates.items() if r > 0}


def key_values(entries: list, parameter: str, example: str, value: str = 'value') -> dict:
    """['a=1', 'b=x'] -> {'a': '1', 'b': 'x'}; empty entries are skipped."""
    pairs = {}
    for entry in (e for e in entries if e):
        key, sep, text = entry.partition('=')
        if not sep or not key.strip():
            raise ValueError(f'{parameter} entry {entry!r}: write it as "key={value}", e.g. '
                             f'"{example}"')
        pairs[key.strip()] = text.strip()
    return pairs
