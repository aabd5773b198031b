"""Print VLAPolicy.infer latency (median of 20) on a make_piper_example() observation.

Usage: python bench/bench_policy.py [--threads N] [--checkpoint DIR] [--device cpu]
Without --checkpoint it times the tiny random-weight model of the walking skeleton. The figure
includes the 480x640 -> 64x64 resize, 10 Euler denoising steps and the unnormalization.
"""

import argparse
import statistics
import time

import torch

from vla_nodes.policy.policy import make_piper_example, VLAPolicy
from vla_nodes.policy.transforms import ResizeWithPad


def median_ms(fn, repeats=20, warmup=3):
    """Median wall time of fn() in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main(args=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=None, help='torch intra-op threads')
    parser.add_argument('--checkpoint', default=None, help='local checkpoint directory')
    parser.add_argument('--device', default='cpu')
    options = parser.parse_args(args)
    if options.threads:
        torch.set_num_threads(options.threads)
    if options.checkpoint:
        policy = VLAPolicy.from_checkpoint(options.checkpoint, device=options.device)
    else:
        policy = VLAPolicy.random_init()
    obs = make_piper_example()
    size = policy.model.config.image_size
    params = sum(p.numel() for p in policy.model.parameters())
    print(f'model: {params / 1e6:.3f} M parameters, image {size}x{size}, '
          f'chunk {policy.model.config.horizon}, torch threads {torch.get_num_threads()}')
    print(f'resize 480x640 -> {size}x{size}: '
          f'{median_ms(lambda: ResizeWithPad(size, size)(obs)):.2f} ms (median of 20)')
    print(f'infer: {median_ms(lambda: policy.infer(obs)):.2f} ms (median of 20)')


if __name__ == '__main__':
    main()
