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

"""Lock-step evaluation speed: 50 held-out episodes of one tiny preset, against real time.

Usage: MUJOCO_GL=egl python bench/bench_lockstep.py [--checkpoint DIR | --random]
       [--preset tiny_depthvla] [--episodes 50] [--real-time-episodes 3] [--max-seconds 10]

Without --checkpoint or --random it first trains a tiny checkpoint quickly (3 expert demos,
60 steps, in out/bench_lockstep): the speed is that of the graph with a real checkpoint, not
of a good policy. The episodes are held-out seeds (vla-eval's, disjoint from the demos').
Prints the command, the wall time (whole run, graph start-up included, and the episodes
alone), the simulated time, the speed-up over real time, the process's CPU time, the load
average before and after (the machine is shared), and the same figures for a few episodes in
real-time mode (`vla-eval --real-time`), where an episode costs at least its simulated time.
"""

import argparse
import os
from pathlib import Path
import sys
import time

from vla_nodes.orchestration.evaluate import evaluate, PolicySpec

OUT = Path('out/bench_lockstep')


def quick_checkpoint(preset: str, demos: int, steps: int) -> str:
    """Record `demos` expert demos, export them and train `preset` for `steps` steps."""
    from vla_nodes.orchestration import pipeline
    setting = pipeline.Setting(demos=demos, presets=(preset,), steps=steps, batch_size=4)
    bags = pipeline.record(OUT, setting, progress=False, resume=True)
    dataset = pipeline.export_dataset(bags, OUT, progress=False, resume=True)
    return str(pipeline.train(dataset, preset, OUT, setting, progress=False))


def _cpu_s() -> float:
    """CPU time of this process and its finished children (policy_node's model process)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measure(spec: PolicySpec, episodes: int, max_seconds: float, lockstep: bool,
            inference_process: bool = True) -> dict:
    load_before = os.getloadavg()
    start, cpu = time.monotonic(), _cpu_s()
    result = evaluate(spec, episodes, max_seconds=max_seconds, progress=False,
                      lockstep=lockstep, can_name=f'bench_lockstep_{int(lockstep)}',
                      inference_process=inference_process)
    wall, cpu = time.monotonic() - start, _cpu_s() - cpu
    sim = sum(result.episode_s)
    mode = ('lock-step' if lockstep else 'real time') + ('' if inference_process
                                                         else ', model in process')
    return {'mode': mode, 'episodes': episodes,
            'wall_s': wall, 'episodes_wall_s': sum(result.wall_s), 'sim_s': sim,
            'cpu_s': cpu, 'load': (load_before, os.getloadavg()),
            'success': result.outcomes.count('success'), 'result': result}


def report(row: dict) -> None:
    load = ' -> '.join('/'.join(f'{v:.1f}' for v in avg) for avg in row['load'])
    print(f"{row['mode']}: {row['episodes']} episodes, success {row['success']}/"
          f"{row['episodes']}, simulated {row['sim_s']:.1f} s, wall {row['wall_s']:.1f} s "
          f"(episodes alone {row['episodes_wall_s']:.1f} s), speed-up over real time "
          f"{row['sim_s'] / row['wall_s']:.2f}x (episodes alone "
          f"{row['sim_s'] / row['episodes_wall_s']:.2f}x), wall per simulated s "
          f"{row['episodes_wall_s'] / row['sim_s']:.3f}, CPU {row['cpu_s']:.1f} s "
          f"({row['cpu_s'] / row['sim_s']:.3f} per simulated s), load average 1/5/15 min "
          f'{load}')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--checkpoint', help='policy checkpoint directory')
    source.add_argument('--random', action='store_true', help='a random-weight model')
    parser.add_argument('--preset', default='tiny_depthvla', help='preset trained quickly')
    parser.add_argument('--demos', type=int, default=3)
    parser.add_argument('--steps', type=int, default=60)
    parser.add_argument('--episodes', type=int, default=50)
    parser.add_argument('--real-time-episodes', type=int, default=3)
    parser.add_argument('--max-seconds', type=float, default=10.0,
                        help='simulated s per episode (vla-main uses 10)')
    parser.add_argument('--compare-in-process', action='store_true',
                        help="also run the lock-step episodes with the model on policy_node's "
                             'worker thread (before inference_process)')
    opts = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print('command: python bench/bench_lockstep.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv))
    print(f'cpus: {os.cpu_count()}')
    if opts.random:
        spec = PolicySpec('random-weight')
    else:
        checkpoint = opts.checkpoint or quick_checkpoint(opts.preset, opts.demos, opts.steps)
        spec = PolicySpec(Path(checkpoint).parent.parent.name, checkpoint=checkpoint)
    print(f'policy: {spec.name} {spec.checkpoint or "(random weights)"}')
    if opts.compare_in_process:
        report(measure(spec, opts.episodes, opts.max_seconds, lockstep=True,
                       inference_process=False))
    rows = [measure(spec, opts.episodes, opts.max_seconds, lockstep=True)]
    report(rows[0])
    if opts.real_time_episodes:
        rows.append(measure(spec, opts.real_time_episodes, opts.max_seconds, lockstep=False))
        report(rows[1])
        lock, real = (r['episodes_wall_s'] / r['sim_s'] for r in rows)
        print(f'lock-step costs {lock / real:.2f} of real time per simulated second '
              f'({real / lock:.1f}x faster)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
