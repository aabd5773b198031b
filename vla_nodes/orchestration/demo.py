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

"""vla-demo: the simulated robot end to end, in one command, without ROS.

Runs `launch/sim.launch.yaml` on the built-in runtime for a few seconds (MuJoCo Piper and camera,
CAN firmware, driver through piper_sdk, depth, pose, the VLA policy, the recorder), then reads the
episode bag back and prints what happened: per-topic counts and rates, how far the arm moved, how
many action chunks the model produced. It also saves an image strip of the episode.
"""

import argparse
from pathlib import Path
import sys

import numpy as np

from vla_nodes import contract
from vla_nodes.paths import package_share


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='vla-demo', description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=20.0, help='how long the graph runs')
    parser.add_argument('--output-dir', default='out/demo', help='where the episode bag goes')
    args = parser.parse_args(argv)

    from vla_nodes.ros import launch
    out = Path(args.output_dir).resolve()
    launch_file = package_share() / 'launch' / 'sim.launch.yaml'
    print(f'== running {launch_file.name} for {args.seconds:.0f} s (episodes -> {out})')
    specs = launch.load_launch(launch_file, {'output_dir': str(out)})
    launch.run(specs, duration=args.seconds)

    bags = sorted(p for p in out.glob('episode_*') if p.is_dir())
    if not bags:
        print('no episode was recorded: see the log above for the failing node')
        return 1
    return report(bags[-1])


def report(bag: Path) -> int:
    """Print the episode summary and save the image strip; 0 when the loop was closed."""
    from vla_nodes.orchestration.evaluate import save_strip
    from vla_nodes.record.bag_read import read_bag, summarize
    summary = summarize(bag)
    print(f'\n== episode {bag}')
    print(f"{'topic':48s} {'type':36s} {'count':>6s} {'rate Hz':>8s}")
    for topic, row in sorted(summary.items()):
        print(f"{topic:48s} {row['type']:36s} {row['count']:6d} {row['rate_hz']:8.1f}")
    joints, frames = [], []
    wanted = [contract.JOINT_STATES_TOPIC, contract.COLOR_TOPIC]
    for topic, _type, _stamp, msg in read_bag(bag, topics=wanted):
        if topic == contract.JOINT_STATES_TOPIC:
            joints.append(np.asarray(msg.position, float))
        else:
            frames.append(msg)
    chunks = summary.get(contract.ACTION_CHUNK_TOPIC, {}).get('count', 0)
    travel = np.ptp(np.stack(joints), axis=0) if joints else np.zeros(len(contract.JOINT_NAMES))
    print('\njoint travel (max - min): ' + ', '.join(
        f'{n} {v:.3f}' for n, v in zip(contract.JOINT_NAMES, travel)))
    print(f'action chunks from the model: {chunks}')
    strip = save_strip(frames, bag / 'episode_strip.png', count=5)
    if strip:
        print(f'image strip: {strip}')
    closed = chunks > 0 and float(np.max(travel[:6])) > 0.01
    print('closed loop: ' + ('yes, the model moved the arm' if closed else 'NO'))
    return 0 if closed else 1


if __name__ == '__main__':
    sys.exit(main())
