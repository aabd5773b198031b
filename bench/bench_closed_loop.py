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

"""Print the closed-loop success table: vla-main's benchmark, full or reduced, with 95% intervals.

Usage: MUJOCO_GL=egl python bench/bench_closed_loop.py [--full | --ablation] [--demos N]
       [--steps N] [--episodes N] [--presets a b ...] [--max-seconds S] [--out DIR]

Without --full it runs the quick setting (orchestration/pipeline.py QUICK); --full is the
acceptance benchmark (orchestration/pipeline.py FULL: 50 demos, held-out seeds 1001-1050, the
scripted expert, the policy with the object poses as input, the image-only policies and a
random-weight model); --ablation is the seed papers' ablation (pipeline.py ABLATION: the same
demos and budget, the image-only baseline against every depth-aware preset).
Overrides shrink either. The table (success rate, mean episode time, final grasp-to-cube
distance, chunk count, inference and observation-to-chunk latency p50/p95) is printed by
vla-main; this script adds each policy's 95% Wilson interval, the settings used and the wall
time, so a figure always comes with what produced it.
"""

import json
import math
from pathlib import Path
import sys
import time

from vla_nodes.orchestration import pipeline


def wilson(successes: int, n: int, z: float = 1.96) -> tuple:
    """The Wilson score interval (low, high) of a success rate; z 1.96: 95%."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def interval_table(results: list) -> str:
    """One line per policy of results.json: successes/episodes, rate and its 95% interval."""
    lines = ['policy                   success          95% Wilson interval']
    for r in results:
        n, k = len(r['outcomes']), sum(o == 'success' for o in r['outcomes'])
        low, high = wilson(k, n)
        lines.append(f"{r['name']:<24} {k:>3}/{n:<3} ({k / max(n, 1):4.0%})  "
                     f'{low:4.0%} - {high:4.0%}')
    return '\n'.join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if '--out' not in argv:
        argv += ['--out', 'out/bench_closed_loop']
    print('command: vla-main ' + ' '.join(argv))
    start = time.monotonic()
    code = pipeline.main(argv)
    print(f'wall time: {time.monotonic() - start:.0f} s')
    results = Path(argv[argv.index('--out') + 1]) / 'results.json'
    print(interval_table(json.loads(results.read_text())))
    return code


if __name__ == '__main__':
    sys.exit(main())
