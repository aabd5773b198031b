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

"""Lock-step speed of two source trees side by side, robust to a shared machine.

Usage: MUJOCO_GL=egl python bench/bench_lockstep_ab.py BEFORE_TREE AFTER_TREE
       [--episodes 5] [--rounds 2] [--max-seconds 10] [--checkpoint DIR]

e.g. `git worktree add /tmp/before main` then `python bench/bench_lockstep_ab.py /tmp/before .`.
Each round runs `--episodes` lock-step episodes (random weights, or `--checkpoint`: a policy
that fails runs every episode to its end) of each tree, alternating, in
a fresh process whose `vla_nodes` is that tree's. Prints, per tree, simulated seconds per CPU
second of the process (time.process_time(), all its threads: the graph runs in-process; what
load from other processes does not change much) and the wall speed-up over real time (the
episodes alone; that one depends on the load, printed before and after).
"""

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys

CHILD = """
import json, sys, time
sys.path.insert(0, {bench!r})
from bench_lockstep import measure
from vla_nodes.orchestration.evaluate import PolicySpec
checkpoint = {checkpoint!r}
spec = PolicySpec('x', checkpoint=checkpoint) if checkpoint else PolicySpec('random-weight')
row = measure(spec, {episodes}, {max_seconds}, lockstep=True)
print('RESULT ' + json.dumps({{k: row[k] for k in ('sim_s', 'cpu_s', 'episodes_wall_s')}}))
"""


def run_tree(tree: str, episodes: int, max_seconds: float, checkpoint: str = '') -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()), VLA_ROS_BACKEND='local')
    code = CHILD.format(bench=str(Path(__file__).resolve().parent), episodes=episodes,
                        max_seconds=max_seconds, checkpoint=checkpoint)
    out = subprocess.run([sys.executable, '-c', code], cwd=tree, env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(next(line for line in out.splitlines()
                           if line.startswith('RESULT '))[len('RESULT '):])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('trees', nargs=2, help='BEFORE and AFTER source trees')
    parser.add_argument('--episodes', type=int, default=5)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--max-seconds', type=float, default=10.0)
    parser.add_argument('--checkpoint', default='', help='policy checkpoint (default: random '
                        'weights)')
    opts = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print('command: python bench/bench_lockstep_ab.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv))
    totals = {tree: {'sim_s': 0.0, 'cpu_s': 0.0, 'episodes_wall_s': 0.0} for tree in opts.trees}
    for round_ in range(opts.rounds):
        for tree in opts.trees:
            load = os.getloadavg()[0]
            row = run_tree(tree, opts.episodes, opts.max_seconds, opts.checkpoint)
            for key in row:
                totals[tree][key] += row[key]
            print(f"round {round_ + 1} {tree}: {row['sim_s'] / row['cpu_s']:.2f} simulated s "
                  f"per CPU s, {row['sim_s'] / row['episodes_wall_s']:.2f}x real time, load "
                  f'{load:.1f} -> {os.getloadavg()[0]:.1f}')
    for label, tree in zip(('before', 'after'), opts.trees):
        t = totals[tree]
        print(f"{label:>6s} {tree}: {t['sim_s']:.0f} simulated s, "
              f"{t['sim_s'] / t['cpu_s']:.2f} simulated s per CPU s, "
              f"{t['sim_s'] / t['episodes_wall_s']:.2f}x real time (wall)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
