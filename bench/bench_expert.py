"""Print the scripted expert's success rate and episode length per task over seeded episodes.

Run: `python bench/bench_expert.py [--seeds 20] [--hz 50]` (physics only, no rendering).
"""

import argparse
import time

import numpy as np

from vla_nodes.sim import expert, tasks
from vla_nodes.sim.world import SimConfig, SimWorld


def bench_task(name: str, seeds: int, control_hz: float, world: SimWorld) -> tuple:
    """Run seeds 0..seeds-1 of one task.

    Returns:
        (success rate in [0, 1], mean simulated episode length (s), mean wall time (s)).
    """
    results, walls = [], []
    for seed in range(seeds):
        start = time.perf_counter()
        results.append(expert.run_episode(name, seed, control_hz=control_hz, world=world))
        walls.append(time.perf_counter() - start)
    ok, seconds = zip(*results)
    return float(np.mean(ok)), float(np.mean(seconds)), float(np.mean(walls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, default=20)
    parser.add_argument('--hz', type=float, default=50.0, help='expert action rate (Hz)')
    args = parser.parse_args()
    world = SimWorld(SimConfig())
    for name in tasks.TASKS:
        rate, seconds, wall = bench_task(name, args.seeds, args.hz, world)
        print(f'{name:<22} success {rate:6.1%} over {args.seeds} seeds, '
              f'episode {seconds:.2f} s simulated, {wall:.2f} s wall')


if __name__ == '__main__':
    main()
