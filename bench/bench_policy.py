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
       [--device cuda] [--precision fp32 bf16]
       python bench/bench_policy.py --checkpoint DIR [--device cuda]
Random weights (models/presets.py). A figure covers one make_piper_example() observation:
the 480x640 resize, the prefix, 10 Euler denoising steps (flow head) and the unnormalization.
`cached` runs the image + text + state prefix once per chunk (π0); `uncached` re-runs the
whole sequence at every step; both give the same chunk (test_models.py). bf16 runs the
model under torch.autocast (weights stay fp32). On CUDA a figure ends with the chunk on the
host (infer returns numpy), and the preset's peak GPU memory is printed.
"""

import argparse
import contextlib

import torch

from timing import median_ms  # bench/timing.py, next to this script
from vla_nodes.models import presets
from vla_nodes.policy.policy import make_piper_example, VLAPolicy

PRESETS = ('tiny_pi0_depth', 'tiny_pi0_baseline', 'tiny_vlm4vla', 'small_pi0_baseline')


def bench(policy, name, repeats, precision='fp32'):
    config = policy.model.config
    obs = make_piper_example()
    params = sum(p.numel() for p in policy.model.parameters())
    device = next(policy.model.parameters()).device
    line = (f'{name:<20} {params / 1e6:8.2f} M params, image {config.image_size}, '
            f'chunk {config.horizon:>2}, {precision}:')
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == 'bf16'
                else contextlib.nullcontext())
    for cached in ((True, False) if config.head == 'flow' else (True,)):
        policy.use_cache = cached
        label = ('cached' if cached else 'uncached') if config.head == 'flow' else 'one pass'
        with autocast:
            line += f'  {label} {median_ms(lambda: policy.infer(obs), repeats):8.1f} ms'
    if device.type == 'cuda':
        line += f'  peak {torch.cuda.max_memory_allocated(device) / 2**30:6.1f} GiB'
    print(line, flush=True)


def main(args=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=None, help='torch intra-op threads')
    parser.add_argument('--presets', nargs='+', default=PRESETS)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--checkpoint', default=None, help='local checkpoint directory')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--precision', nargs='+', default=['fp32'], choices=('fp32', 'bf16'))
    options = parser.parse_args(args)
    if options.threads:
        torch.set_num_threads(options.threads)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'device {options.device}; median of {options.repeats} chunks')
    if options.checkpoint:
        policy = VLAPolicy.from_checkpoint(options.checkpoint, device=options.device)
        for precision in options.precision:
            bench(policy, 'checkpoint', options.repeats, precision)
        return
    for name in options.presets:
        policy = VLAPolicy.random_init(presets.get(name), device=options.device)
        for precision in options.precision:
            bench(policy, name, options.repeats, precision)
        del policy
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()


if __name__ == '__main__':
    main()
