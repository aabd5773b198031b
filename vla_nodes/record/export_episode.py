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


"""vla-export per episode: the sampling plan, camera intrinsics, the pass that writes frames."""

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from vla_nodes import contract
from vla_nodes.record import bag_read, sync
from vla_nodes.record.export_config import ExportConfig, ExportError, Stream
from vla_nodes.record.lerobot_v3 import DatasetError, LeRobotV3Writer
from vla_nodes.ros import image


def plan(path: Path, scan: dict, config: ExportConfig) -> dict:
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


def camera_info(path: Path, scan: dict, config: ExportConfig, keys: set[str],
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


def write_frames(path: Path, cams: list[Stream], picks: dict[str, np.ndarray],
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
def naming(path: Path):
    """A problem found in a bag's messages names the bag: the CLI prints the message alone."""
    try:
        yield
    except (ExportError, DatasetError, image.ImageEncodingError) as exc:
        if str(path) in str(exc):
            raise
        raise ExportError(f'{path}: {exc}') from None
