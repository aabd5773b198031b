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
from dataclasses import replace
from pathlib import Path
import sys
from typing import Sequence

import numpy as np
from tqdm import tqdm

from vla_nodes import contract
from vla_nodes.cli_errors import run_cli
from vla_nodes.perception import env_state
from vla_nodes.record import sync
from vla_nodes.record.export_config import (EE_POSE_NAMES, ExportConfig, ExportError,
                                            VECTOR_KINDS)
from vla_nodes.record.export_episode import camera_info, naming, plan, write_frames
from vla_nodes.record.export_scan import bag_info, camera_rate, check_topics, scan, streams
from vla_nodes.record.lerobot_depth import DEPTH_CODECS, DEPTH_FFV1_MM16, DEPTH_HEVC12, FFV1_NOTE
from vla_nodes.record.lerobot_v3 import DatasetError, LeRobotV3Writer
from vla_nodes.ros import image


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
    infos = {path: bag_info(path) for path in paths}
    wanted = streams(config, infos[paths[0]][0])
    for path in paths:
        check_topics(path, infos[path][0], wanted, config)
    if config.fps is None:
        config = replace(config, fps=camera_rate(paths[0], config.cameras[0].color_topic))
    names = {s.key: {'pose': EE_POSE_NAMES, 'joints': contract.JOINT_NAMES,
                     'objects': env_state.feature_names(config.env_objects)}[s.kind]
             for s in wanted if s.kind in VECTOR_KINDS}
    writer = LeRobotV3Writer(output, config.fps, names, overwrite=overwrite, crf=config.crf,
                             depth_codec=config.depth_codec)
    episodes, runs, intrinsics = [], {}, {}
    try:
        for path in tqdm(paths, desc='vla-export', unit='episode', disable=not config.progress):
            episodes.append(_export_episode(path, wanted, config, infos[path][1], writer, runs,
                                            intrinsics))
        report = {'fps': config.fps, 'max_age_s': config.max_age_s,
                  'max_stale_fraction': config.max_stale_fraction, 'streams': _overall(runs),
                  'episodes': episodes}
        if not writer.episodes:
            raise ExportError(f'every episode was skipped as stale:\n{format_report(report)}\n'
                              f'Raise --max-age or --max-stale-fraction to keep them.')
    except BaseException:
        writer.abort()
        raise
    _finish(writer, config, infos[paths[0]][1], intrinsics, report)
    return report


def _finish(writer: LeRobotV3Writer, config: ExportConfig, metadata: dict, intrinsics: dict,
            report: dict) -> None:
    """Write meta/: each video's intrinsics, the first camera's calibration, the sync report."""
    video_info = {key: {'intrinsics': value} for key, value in intrinsics.items()}
    if metadata.get('calibration') is not None:  # the recorded camera's: the first one
        for key in (config.cameras[0].image_key, config.cameras[0].depth_key):
            if key in video_info:
                video_info[key]['calibration'] = metadata['calibration']
    writer.finish(config.robot_type or metadata.get('robot'), video_info,
                  {'sync_report.json': report})


def _export_episode(path: Path, wanted: list, config: ExportConfig, metadata: dict,
                    writer: LeRobotV3Writer, runs: dict, intrinsics: dict) -> dict:
    """Sample one bag and add it to `writer` unless too stale; returns its report entry.

    `runs` gathers each stream's picks and `intrinsics` each video key's camera, over episodes.
    """
    vectors = [s for s in wanted if s.kind in VECTOR_KINDS]
    cams = [s for s in wanted if s.kind in ('rgb8', '16UC1')]
    with naming(path):
        scanned = scan(path, wanted, config, metadata)
        planned = plan(path, scanned, config)
    stale = float(1.0 - planned['sync_ok'].mean())
    entry = {'bag': str(path), 'frames': int(planned['times'].size),
             'start_ns': int(planned['times'][0]), 'stale_fraction': stale,
             'streams': planned['report'], 'stale_leader_dropped': scanned['stale_leader']}
    if stale > config.max_stale_fraction:
        entry['skipped'] = (f'{stale:.0%} of rows stale, more than '
                            f'{config.max_stale_fraction:.0%}')
        return entry
    camera_info(path, scanned, config, {s.key for s in cams}, intrinsics)
    with naming(path):
        write_frames(path, cams, {s.key: planned['picks'][s.key].index for s in cams}, writer)
    columns = {s.key: planned['picks'][s.key].take(scanned['values'][s.key]) for s in vectors}
    sync_ok = planned['sync_ok']
    if contract.OBS_ENV_STATE in columns:  # rows before an object's first detection
        env = columns[contract.OBS_ENV_STATE]
        sync_ok = sync_ok & np.isfinite(env).all(axis=1)
        columns[contract.OBS_ENV_STATE] = np.nan_to_num(env)  # flagged, never trained on
    entry['episode_index'] = writer.add_episode({**columns, contract.SYNC_OK: sync_ok},
                                                planned['tasks'], {'source_bag': str(path)})
    for key, run in planned['picks'].items():
        runs.setdefault(key, []).append(run)
    return entry


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
