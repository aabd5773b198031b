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

"""Print the closed-loop success table: vla-main's benchmark, full or reduced.

Usage: MUJOCO_GL=egl python bench/bench_closed_loop.py [--full] [--demos N] [--steps N]
       [--episodes N] [--presets a b ...] [--max-seconds S] [--out out/bench_closed_loop]

Without --full it runs the quick setting (orchestration/pipeline.py QUICK); --full the acceptance
benchmark (50 demos, tiny_pi0_depth + tiny_depthvla + tiny_pi0_baseline, 50 held-out episodes
each, plus the scripted expert and a random-weight model). Overrides shrink either. The table
(success rate, mean episode time, final grasp-to-cube distance, chunk count, inference and
observation-to-chunk latency p50/p95) is printed by vla-main; this script adds the settings used
and the wall time, so a figure always comes with what produced it.
"""

import sys
import time

from vla_nodes.orchestration import pipeline


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if '--out' not in argv:
        argv += ['--out', 'out/bench_closed_loop']
    print('command: vla-main ' + ' '.join(argv))
    start = time.monotonic()
    code = pipeline.main(argv)
    print(f'wall time: {time.monotonic() - start:.0f} s')
    return code


if __name__ == '__main__':
    sys.exit(main())
