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

"""Print forward+backward time of each spatial module (QDepth, DepthVLA, SF, Pose-VLA) on CPU.

Usage: python bench/bench_spatial.py [--threads 1] [--repeats 5] [--batch 2]
Each row is the median wall time of one training step's forward and backward through the module
alone (random weights, no optimizer), at the tiny test size and at a small size; the paper-size
VQ-VAE is cheap enough to include. The VLM and the experts' transformers belong to the core and
are not timed here (DepthVLA's row includes a stand-alone decoder of the given size).
"""

import argparse
import time

import numpy as np
import torch

from timing import median_ms  # bench/timing.py, next to this script
from vla_nodes.models import depthvla, pose_vla, qdepth, spatial_forcing as sf


def params(*modules):
    return sum(p.numel() for m in modules for p in m.parameters()) / 1e6


def vqvae_case(config, b):
    model = qdepth.DepthVQVAE(config)
    x = model.prepare(0.3 + torch.rand(b, 224, 224))
    return (lambda: model.loss(x)['total'].backward()), params(model)


def qdepth_case(config, b):
    stream = qdepth.QDepthStream(config, torch.randn(config.num_codes, config.code_dim))
    vision = torch.randn(b, config.grid ** 2, config.vision_width)
    target = torch.randint(0, config.num_codes, (b, config.grid ** 2))
    return (lambda: stream.loss(stream.embed(vision), target).backward()), params(stream)


def depthvla_case(config, b):
    stream, decoder = depthvla.DepthVLAStream(config), depthvla.StandaloneDecoder(config)
    image = torch.randint(0, 256, (b, config.image_size, config.image_size, 3), dtype=torch.uint8)
    depth = 0.3 + torch.rand(b, config.image_size, config.image_size)

    def step():
        depthvla.depth_pretrain_loss(stream, decoder, image, depth).backward()
    return step, params(stream, decoder)


def sf_case(config, teacher_config, image_size, b):
    from transformers import Dinov2Model

    teacher = sf.DinoV2Teacher(Dinov2Model(teacher_config), image_size=image_size)
    module = sf.SpatialForcing(config)
    images = torch.randint(0, 256, (b, 1, image_size, image_size, 3), dtype=torch.uint8)
    g = image_size // 14
    hidden = [torch.randn(b, 1 + g * g, config.student_width, requires_grad=True)
              for _ in range(config.align_layer + 1)]

    def step():
        features, grid = teacher(images)
        target = sf.target_tokens(features, grid, (g, g), 0.1)
        module.loss(hidden, target, start=1).backward()
    return step, params(module)


def pose_case(config, b):
    priors = pose_vla.PosePriors(config).train()
    s = config.image_size
    n = (s // config.patch_size) ** 2
    k = np.array([[0.9 * s, 0, s / 2], [0, 0.9 * s, s / 2], [0, 0, 1]])
    rays = pose_vla.compute_raymap(k, s, s)[None].expand(b, -1, -1, -1)
    depth = pose_vla.depth_prior(0.3 + torch.rand(b, s, s))
    tokens = torch.randn(b, n, config.vision_width, requires_grad=True)
    logits = torch.randn(b, 64, 4096, requires_grad=True)  # a pose answer over a 4k vocab slice
    ids = torch.randint(0, 4096, (b, 64))
    answer = torch.arange(64)[None].expand(b, -1) >= 32

    def step():
        fused = priors(tokens, rays, depth)
        (fused.mean() + pose_vla.pose_pretrain_loss(logits, ids, answer)).backward()
    return step, params(priors)


def cases(b):
    from transformers import Dinov2Config

    small_vq = qdepth.DepthVQVAEConfig(in_res=128, channels=(32, 64, 128))
    small_qd = qdepth.QDepthConfig(vision_width=384, width=256, grid=16, head_hidden=128)
    small_dv = depthvla.DepthVLAConfig(encoder_width=384, encoder_layers=12, encoder_heads=6,
                                       width=256, n_layer=2, n_head=4, mlp_dim=1024)
    tiny_teacher = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                image_size=28, patch_size=14)
    small_teacher = Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                 image_size=224, patch_size=14)  # DINOv2-S shape
    small_sf = sf.SpatialForcingConfig(student_width=512, teacher_width=384, align_layer=2)
    small_pose = pose_vla.PoseVLAConfig(vision_width=384)
    yield 'QDepth VQ-VAE loss', 'tiny K16 d8 32px', lambda: vqvae_case(qdepth.TINY_VQVAE, b)
    yield 'QDepth VQ-VAE loss', 'small K256 d160 128px', lambda: vqvae_case(small_vq, b)
    yield 'QDepth VQ-VAE loss', 'paper K256 d160 256px', lambda: vqvae_case(
        qdepth.DepthVQVAEConfig(), b)
    yield 'QDepth head + code CE', 'tiny 4x4', lambda: qdepth_case(qdepth.TINY_QDEPTH, b)
    yield 'QDepth head + code CE', 'small 16x16 w256', lambda: qdepth_case(small_qd, b)
    yield 'QDepth head + code CE', 'paper 16x16 w1024', lambda: qdepth_case(
        qdepth.QDepthConfig(), b)
    yield 'DepthVLA pre-train SILog', 'tiny 28px', lambda: depthvla_case(
        depthvla.TINY_DEPTHVLA, b)
    yield 'DepthVLA pre-train SILog', 'small ViT-S 224px', lambda: depthvla_case(small_dv, b)
    yield 'SF teacher + align loss', 'tiny 28px', lambda: sf_case(sf.TINY_SF, tiny_teacher, 28, b)
    yield 'SF teacher + align loss', 'small ViT-S 224px', lambda: sf_case(
        small_sf, small_teacher, 224, b)
    yield 'Pose priors + NTP loss', 'tiny 28px', lambda: pose_case(pose_vla.TINY_POSE, b)
    yield 'Pose priors + NTP loss', 'small 224px w384', lambda: pose_case(small_pose, b)


def tokenizer_us(repeats=2000):
    """Microseconds per PoseTokenizer.format + parse of one object (1024 bins)."""
    rng = np.random.default_rng(0)
    tok = pose_vla.PoseTokenizer().fit(rng.normal(0.5, 0.2, (10000, 3)),
                                       rng.uniform(0.02, 0.3, (10000, 3)))
    t, size = np.array([0.1, -0.05, 0.6]), np.array([0.05, 0.05, 0.05])
    start = time.perf_counter()
    for _ in range(repeats):
        tok.parse(tok.format('red cube', [0.4, 0.6], t, [0.1, 0.2, 0.3], size))
    return (time.perf_counter() - start) / repeats * 1e6


def main(args=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=1, help='torch intra-op threads')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--batch', type=int, default=2)
    options = parser.parse_args(args)
    torch.set_num_threads(options.threads)
    torch.manual_seed(0)
    print(f'forward + backward, batch {options.batch}, torch {torch.__version__}, '
          f'{torch.get_num_threads()} thread(s), median of {options.repeats}')
    print(f'{"module":<26}{"size":<24}{"params (M)":>11}{"ms":>10}')
    for name, size, build in cases(options.batch):
        step, count = build()
        print(f'{name:<26}{size:<24}{count:>11.3f}{median_ms(step, options.repeats):>10.1f}',
              flush=True)
    print(f'PoseTokenizer format + parse, one object: {tokenizer_us():.0f} us')


if __name__ == '__main__':
    main()
