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

"""Print vla-export throughput: rows (frames) per second from bags to a LeRobot v3 dataset.

Run: `python bench/bench_export.py` (2 episodes of 20 s: 640x480 colour and aligned depth at
30 Hz with stamp jitter, follower and leader joint states and end-effector poses at 200 Hz).
The synthetic scene is a moving box on a textured table with sensor noise, so the encoders have
real work to do. Also printed: the time to only read the bags (a floor for any exporter), the
CPU time per row (wall figures depend on the machine's load), and the sizes of bags and dataset,
for both depth codecs side by side: LeRobot's 12-bit HEVC (the default) and lossless FFV1.
`--seconds` and `--episodes` change the dataset; `--keep DIR` keeps it.
"""

import argparse
from pathlib import Path
import shutil
import tempfile
import time

import numpy as np

from vla_nodes import contract
from vla_nodes.nodes.camera_topics import camera_info
from vla_nodes.record import bag_read, export, export_config, lerobot_depth
from vla_nodes.record.bag import BagWriter
from vla_nodes.ros import image, msgs
from vla_nodes.ros.msgs import geometry_msgs, sensor_msgs, std_msgs

T0 = 1_700_000_000_000_000_000  # ns
W, H = 640, 480
K = np.array([[600.0, 0.0, 319.5], [0.0, 600.0, 239.5], [0.0, 0.0, 1.0]])


def scene(k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frame k: (H, W, 3) uint8 colour and (H, W) uint16 depth in mm (0 = invalid)."""
    yy, xx = np.mgrid[0:H, 0:W]
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[..., 0] = 90 + (xx // 8 % 2) * 30
    rgb[..., 1] = 70 + yy // 6
    rgb[..., 2] = 60
    depth = (700 + yy * 1.2).astype(np.uint16)  # the table, tilted away from the camera
    x0, y0 = 100 + (k * 3) % 400, 150 + int(60 * np.sin(k / 20))
    rgb[y0:y0 + 80, x0:x0 + 80] = (200, 30, 30)
    depth[y0:y0 + 80, x0:x0 + 80] -= 60
    rgb = np.clip(rgb + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.uint8)
    depth = depth + rng.integers(-4, 5, depth.shape).astype(np.uint16)
    depth[rng.random(depth.shape) < 0.02] = 0
    return rgb, depth


def write(writer: BagWriter, topic: str, msg, stamp: int) -> None:
    while not writer.write(topic, msg, stamp):  # a full queue: wait instead of dropping
        time.sleep(0.002)


def write_episode(path: Path, seconds: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    items = []
    for n in range(int(seconds * 200)):
        stamp = T0 + n * 5_000_000 + int(rng.integers(-500_000, 500_000))
        items.append((stamp, 'joints', n))
    for k in range(int(seconds * 30)):
        items.append((T0 + round(k * 1e9 / 30) + int(rng.integers(-2e6, 2e6)), 'camera', k))
    info = camera_info(K, [0.0] * 5, W, H, 'plumb_bob', T0, 'camera_color_optical_frame')
    metadata = {'task': 'pick up the red cube', 'robot': 'piper'}
    with BagWriter(path, metadata=metadata) as writer:
        write(writer, contract.INSTRUCTION_TOPIC, std_msgs.String(data=metadata['task']), T0)
        for stamp, kind, n in sorted(items):
            head = std_msgs.Header(stamp=msgs.ns_to_stamp(stamp))
            if kind == 'camera':
                rgb, depth = scene(n, rng)
                write(writer, contract.COLOR_TOPIC, image.to_msg(rgb, 'rgb8', stamp), stamp)
                write(writer, contract.DEPTH_TOPIC, image.to_msg(depth, '16UC1', stamp), stamp)
                write(writer, contract.COLOR_INFO_TOPIC, info, stamp)
                write(writer, contract.DEPTH_INFO_TOPIC, info, stamp)
                continue
            q = [0.3 * np.sin(n / 200 + i) for i in range(7)]
            for topic in (contract.JOINT_STATES_TOPIC, contract.LEADER_JOINT_STATES_TOPIC):
                write(writer, topic, sensor_msgs.JointState(
                    header=head, name=list(contract.JOINT_NAMES), position=q), stamp)
            write(writer, contract.EE_POSE_TOPIC, geometry_msgs.PoseStamped(header=head), stamp)


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob('*') if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=20.0)
    parser.add_argument('--episodes', type=int, default=2)
    parser.add_argument('--keep', type=Path, help='keep bags and dataset in this folder')
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix='bench_export_'))
    bags = work / 'bags'
    bags.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        for e in range(args.episodes):
            write_episode(bags / f'episode_{e:03d}', args.seconds, e)
        print(f'wrote {args.episodes} bags of {args.seconds:.0f} s ({size_mb(bags):.0f} MB) '
              f'in {time.perf_counter() - start:.1f} s')
        start = time.perf_counter()
        count = sum(1 for path in sorted(bags.iterdir()) for _ in bag_read.read_bag(path))
        read_s = time.perf_counter() - start
        print(f'read only: {count} messages in {read_s:.1f} s')
        # LeRobot's 12-bit HEVC depth, lossless 16-bit FFV1
        for codec in lerobot_depth.DEPTH_CODECS:
            dataset = work / f'dataset_{codec}'
            start, cpu = time.perf_counter(), time.process_time()
            report = export.export([bags], dataset, export_config.ExportConfig(
                progress=False, depth_codec=codec), overwrite=True)
            export_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
            rows = sum(e['frames'] for e in report['episodes'] if 'episode_index' in e)
            videos = dataset / 'videos'
            print(f'export, depth {codec:>10}: {rows} rows at {report["fps"]} Hz ({W}x{H} '
                  f'colour + depth each) in {export_s:.1f} s = {rows / export_s:.1f} frames/s '
                  f'({args.seconds * args.episodes / export_s:.2f}x real time); CPU time '
                  f'{cpu_s:.1f} s = {1000 * cpu_s / rows:.1f} ms per row (load-independent; '
                  f'threads included); dataset {size_mb(dataset):.0f} MB: colour H.264 '
                  f'{size_mb(videos / contract.OBS_IMAGE):.1f} MB, depth '
                  f'{size_mb(videos / contract.OBS_DEPTH):.1f} MB')
        print(export.format_report(report))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
