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
"""Print the closed-loop test's successes over several training seeds: its margin, measured.

Usage: MUJOCO_GL=egl python bench/bench_smallest_loop.py [--demos N] [--steps N]
       [--episodes N] [--seeds 0,1,2] [--out out/bench_smallest_loop]

The setting of test/test_closed_loop.py (orchestration/pipeline.py SMALLEST; the flags override
it): lock-step expert demos, exported with the cube's pose, its policy trained once per seed on
one CPU thread, each checkpoint evaluated on the same held-out seeds. Demos and dataset are
recorded once and reused (--out).
"""

import argparse
from dataclasses import replace
from pathlib import Path
import time

from vla_nodes.orchestration import pipeline


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--demos', type=int, default=pipeline.SMALLEST.demos)
    parser.add_argument('--steps', type=int, default=pipeline.SMALLEST.steps)
    parser.add_argument('--episodes', type=int, default=pipeline.SMALLEST.episodes)
    parser.add_argument('--seeds', default='0,1,2', help='training seeds, comma-separated')
    parser.add_argument('--out', default='out/bench_smallest_loop')
    opts = parser.parse_args(argv)
    import torch
    from vla_nodes.orchestration.evaluate import evaluate, PolicySpec
    torch.set_num_threads(1)
    setting = replace(pipeline.SMALLEST, demos=opts.demos, steps=opts.steps,
                      episodes=opts.episodes)
    spec = setting.presets[0]
    out = Path(opts.out).resolve()
    start = time.monotonic()
    bags = pipeline.record(out, setting, progress=False, resume=True)
    dataset = pipeline.export_dataset(bags, out, progress=False, resume=True)
    print(f'demos and dataset: {time.monotonic() - start:.0f} s', flush=True)
    rows = []
    for seed in (int(s) for s in opts.seeds.split(',')):
        start = time.monotonic()
        ckpt = pipeline.train(dataset, spec, out / f'seed{seed}', setting, progress=False,
                              seed=seed)
        trained = time.monotonic() - start
        result = evaluate(PolicySpec('trained', checkpoint=str(ckpt)), episodes=opts.episodes,
                          max_seconds=setting.max_seconds, out_dir=out / f'seed{seed}',
                          can_name=f'bench_smallest_loop_{seed}', progress=False)
        picked = sum(o == 'success' for o in result.outcomes)
        rows.append(f'{seed:>4}  {picked:>2}/{opts.episodes:<2}  {trained:7.0f} s  '
                    f'{time.monotonic() - start - trained:6.0f} s  '
                    + ' '.join(f'{d:.3f}' for d in result.final_distance_m))
        print(rows[-1], flush=True)
    print(f'\n{opts.demos} demos, {opts.steps} steps, {opts.episodes} held-out episodes')
    print('seed  picked  training  evaluation  final grasp-cube distance per episode (m)')
    print('\n'.join(rows))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
