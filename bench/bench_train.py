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

"""Print training steps per second (forward, backward, AdamW step) per preset on random batches.

Usage: python bench/bench_train.py [--threads N] [--presets a b ...] [--batch-size 8]
       [--steps 10] [--device cpu|cuda] [--precision fp32|bf16]
The batch is synthetic (no video decoding): this measures the model, as vla-train's loop runs it
(train/train.py train_step, gradient clipping, AdamW).
"""

import argparse
import time

import torch

from vla_nodes.contract import ACTION, OBS_DEPTH, OBS_IMAGE, OBS_INSTRUCTION, OBS_STATE
from vla_nodes.models import presets
from vla_nodes.models.vla import VLAModel
from vla_nodes.train.step import flow_noise, train_step

PRESETS = ('tiny_pi0_depth', 'tiny_vlm4vla', 'small_pi0_baseline')


def random_batch(config, b):
    """A batch of b random observations and normalized chunks."""
    s = config.image_size
    return {OBS_IMAGE: torch.randint(0, 256, (b, s, s, 3), dtype=torch.uint8),
            OBS_DEPTH: 0.3 + torch.rand(b, s, s), OBS_STATE: torch.randn(b, config.state_dim),
            OBS_INSTRUCTION: ['pick up the red cube and place it in the bowl'] * b,
            ACTION: torch.randn(b, config.horizon, config.action_dim).clamp(-1, 1)}


def steps_per_second(name, batch_size, steps, device, precision):
    """Mean steps/s over `steps` steps after 2 warm-up steps."""
    torch.manual_seed(0)
    with device:  # made where it trains: a 3B model takes minutes to initialise on a CPU
        model = VLAModel(presets.get(name)).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    config = model.config
    batch = random_batch(config, batch_size)

    def step(k):
        noise, t = flow_noise(k, 0, batch_size, config.horizon, config.action_dim)
        optimizer.zero_grad(set_to_none=True)
        terms = train_step(model, batch, noise, t, 0, 1, precision, device)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        return terms

    for k in range(2):
        step(k)
    if device.type == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    for k in range(steps):
        step(k)
    if device.type == 'cuda':
        torch.cuda.synchronize()
    rate = steps / (time.perf_counter() - start)
    trainable = sum(p.numel() for p in params)
    peak = (f', peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB'
            if device.type == 'cuda' else '')
    print(f'{name:<20} {trainable / 1e6:8.2f} M trainable, batch {batch_size}: '
          f'{rate:7.2f} steps/s ({1e3 / rate:7.1f} ms/step){peak}', flush=True)


def main(args=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=None, help='torch intra-op threads')
    parser.add_argument('--presets', nargs='+', default=PRESETS)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--precision', default='fp32', choices=('fp32', 'bf16'))
    options = parser.parse_args(args)
    if options.threads:
        torch.set_num_threads(options.threads)
    device = torch.device(options.device)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, '
          f'{options.precision}; mean over {options.steps} steps')
    for name in options.presets:
        steps_per_second(name, options.batch_size, options.steps, device, options.precision)
        if device.type == 'cuda':  # the next preset's peak is its own
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)


if __name__ == '__main__':
    main()
