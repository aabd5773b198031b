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

"""Print VLAPolicy.infer latency per chunk, with and without the prefix KV cache, per preset.

Usage: python bench/bench_policy.py [--threads N] [--presets a b ...] [--repeats 10]
       python bench/bench_policy.py --checkpoint DIR [--device cuda]
Random weights (models/presets.py). A figure covers one make_piper_example() observation:
the 480x640 resize, the prefix, 10 Euler denoising steps (flow head) and the unnormalization.
`cached` runs the image + text + state prefix once per chunk (π0); `uncached` re-runs the
whole sequence at every step; both give the same chunk (test_models.py).
"""

import argparse

import torch

from timing import median_ms  # bench/timing.py, next to this script
from vla_nodes.models import presets
from vla_nodes.policy.policy import make_piper_example, VLAPolicy

PRESETS = ('tiny_pi0_depth', 'tiny_pi0_baseline', 'tiny_vlm4vla', 'small_pi0_baseline')


def bench(policy, name, repeats):
    config = policy.model.config
    obs = make_piper_example()
    params = sum(p.numel() for p in policy.model.parameters())
    line = (f'{name:<20} {params / 1e6:8.2f} M params, image {config.image_size}, '
            f'chunk {config.horizon:>2}:')
    for cached in ((True, False) if config.head == 'flow' else (True,)):
        policy.use_cache = cached
        label = ('cached' if cached else 'uncached') if config.head == 'flow' else 'one pass'
        line += f'  {label} {median_ms(lambda: policy.infer(obs), repeats):8.1f} ms'
    print(line, flush=True)


def main(args=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=None, help='torch intra-op threads')
    parser.add_argument('--presets', nargs='+', default=PRESETS)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--checkpoint', default=None, help='local checkpoint directory')
    parser.add_argument('--device', default='cpu')
    options = parser.parse_args(args)
    if options.threads:
        torch.set_num_threads(options.threads)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'device {options.device}; median of {options.repeats} chunks')
    if options.checkpoint:
        policy = VLAPolicy.from_checkpoint(options.checkpoint, device=options.device)
        bench(policy, 'checkpoint', options.repeats)
        return
    for name in options.presets:
        policy = VLAPolicy.random_init(presets.get(name))
        bench(policy, name, options.repeats)


if __name__ == '__main__':
    main()
