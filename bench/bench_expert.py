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

"""Print the scripted expert's success rate and episode length per task over seeded episodes.

Run: `python bench/bench_expert.py [--seeds 100] [--hz 50]` (physics only, no rendering). Seeds
0..N-1 of every task, each a fresh `run_episode` (vla_nodes/sim/expert.py) with the task's time
budget; the goal is >= 95 % success per task. Failed seeds are listed, to replay them.
"""

import argparse
import time

import numpy as np

from vla_nodes.sim import expert, tasks
from vla_nodes.sim.world import SimConfig, SimWorld


def bench_task(name: str, seeds: int, control_hz: float, world: SimWorld) -> tuple:
    """Run seeds 0..seeds-1 of one task.

    Returns:
        (success rate in [0, 1], mean simulated episode length (s), mean wall time (s),
        failed seeds).
    """
    results, walls = [], []
    for seed in range(seeds):
        start = time.perf_counter()
        results.append(expert.run_episode(name, seed, control_hz=control_hz, world=world))
        walls.append(time.perf_counter() - start)
    ok, seconds = zip(*results)
    failed = [seed for seed, success in enumerate(ok) if not success]
    return float(np.mean(ok)), float(np.mean(seconds)), float(np.mean(walls)), failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, default=100)
    parser.add_argument('--hz', type=float, default=50.0, help='expert action rate (Hz)')
    args = parser.parse_args()
    world = SimWorld(SimConfig())
    print(f'scripted expert, {args.seeds} seeds per task, actions at {args.hz:g} Hz')
    print(f'{"task":<22} {"success":>8} {"episode (sim)":>14} {"wall":>8}  failed seeds')
    for name in tasks.TASKS:
        rate, seconds, wall, failed = bench_task(name, args.seeds, args.hz, world)
        print(f'{name:<22} {rate:8.1%} {seconds:12.2f} s {wall:6.2f} s  '
              f'{" ".join(map(str, failed)) or "-"}')


if __name__ == '__main__':
    main()
