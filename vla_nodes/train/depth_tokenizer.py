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

"""vla-depth-tokenizer: train QDepth-VLA's VQ-VAE depth tokenizer on LeRobot v3 datasets.

Where it fits: QDepth-VLA's first stage (models/qdepth.py). The VQ-VAE is trained on depth maps
alone, one per dataset [paper], with AdamW at lr 1e-5 [paper]; the VLA stage then freezes it and
uses its 16 x 16 codes as the depth expert's targets. Depth comes from the datasets `vla-export`
writes (metres through train/data.py, NaN = invalid), resized with padding to the image size
exactly as the colour frame, so the code grid lines up with SigLIP's patches. The paper used
Video-Depth-Anything relative depth; we use the sensor's metric depth, min-max normalized per
frame (a documented deviation: research/seeds-qdepth-depthvla.md, D.2).

    vla-depth-tokenizer DATASET [DATASET ...] --output DIR [--preset paper|tiny] [--steps N]

Writes DIR/config.json, DIR/model.safetensors (DepthVQVAE.from_pretrained reads them) and
DIR/train_log.json (arguments, loss history, validation metrics).
"""

import argparse
import json
from pathlib import Path
import sys

import numpy as np

PRESETS = ('paper', 'tiny')


def load_depth(roots, image_size, val_fraction, frame_stride, max_frames):
    """Depth frames of the datasets, split by episode.

    Args:
        roots: LeRobot v3 dataset folders with an observation.depth video.
        image_size: S, frames are resized with padding to S x S (as policy_node does).
        val_fraction: share of each dataset's episodes (the last ones) kept for validation.
        frame_stride: keep every n-th usable frame (neighbouring frames are near-duplicates).
        max_frames: cap per split, taken evenly across the frames.

    Returns:
        (train, val) float16 metres, NaN invalid. # each (N, S, S)
    """
    from vla_nodes.contract import OBS_DEPTH
    from vla_nodes.train.data import LeRobotDataset, split_episodes

    splits = ([], [])
    for root in roots:
        probe = LeRobotDataset(root, horizon=1, image_size=image_size, use_depth=True)
        for out, episodes in zip(splits, split_episodes(probe.episodes, val_fraction)):
            if not episodes:
                continue
            data = LeRobotDataset(root, horizon=1, image_size=image_size, use_depth=True,
                                  episodes=episodes)
            out += [data[i][OBS_DEPTH].astype(np.float16)
                    for i in range(0, len(data), frame_stride)]
    result = []
    for frames in splits:
        if len(frames) > max_frames:
            frames = [frames[i] for i in np.linspace(0, len(frames) - 1, max_frames).astype(int)]
        result.append(np.stack(frames) if frames else np.zeros((0, image_size, image_size),
                                                               np.float16))
    return tuple(result)


def evaluate(model, frames, batch_size, device):
    """Validation metrics of a tokenizer on depth frames # (N, S, S).

    Returns:
        {'rec_mse': reconstruction MSE of the normalized depth, 'codes_used': distinct codes,
         'perplexity': exp(entropy) of code usage (K when all codes are used equally)}.
    """
    import torch

    model.eval()
    counts = torch.zeros(model.config.num_codes)
    total, n = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(frames), batch_size):
            depth = torch.from_numpy(frames[start:start + batch_size].astype(np.float32))
            out = model.loss(model.prepare(depth.to(device)))
            total += out['rec'].item() * len(depth)
            n += len(depth)
            counts += torch.bincount(out['indices'].flatten().cpu(),
                                     minlength=model.config.num_codes)
    model.train()
    p = counts / counts.sum().clamp_min(1)
    entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
    return {'rec_mse': total / max(n, 1), 'codes_used': int((counts > 0).sum()),
            'perplexity': float(np.exp(entropy))}


def train(model, frames, steps, batch_size, lr, seed, device, progress=True, restart_every=0):
    """Train a DepthVQVAE on depth frames with AdamW (eq. 2's loss).

    Args:
        model: the DepthVQVAE (trained in place).
        frames: depth in metres, NaN invalid. # (N, S, S)
        steps: optimizer steps.
        batch_size: frames per step (epochs are seeded permutations).
        lr: AdamW learning rate (1e-5 in the paper).
        seed: permutation seed.
        device: torch device.
        progress: show a tqdm bar.
        restart_every: every this many steps (and before the first, which initializes the
            codebook from data), codes unused since the last restart move onto encoder outputs
            (DepthVQVAE.restart_dead_codes); 0 = never.

    Returns:
        Loss history: one dict of floats per step ('rec', 'codebook', 'commit', 'total',
        'codes_used' in the batch, 'restarted' codes before the step).
    """
    import torch
    from tqdm import tqdm

    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    order, cursor, history = rng.permutation(len(frames)), 0, []
    counts = torch.zeros(model.config.num_codes, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    bar = tqdm(range(steps), desc='vq-vae', disable=not progress)
    for step in bar:
        if cursor + batch_size > len(order):
            order, cursor = rng.permutation(len(frames)), 0
        pick = np.sort(order[cursor:cursor + min(batch_size, len(frames))])
        cursor += batch_size
        depth = torch.from_numpy(frames[pick].astype(np.float32)).to(device)
        x = model.prepare(depth)
        restarted = 0
        if restart_every and step % restart_every == 0:
            with torch.no_grad():
                latents = model.encode(x).permute(0, 2, 3, 1).flatten(0, 2)
            dead = model.restart_dead_codes(latents, counts, generator)
            _forget(opt, model.codebook.weight, dead)
            restarted, counts = len(dead), torch.zeros_like(counts)
        out = model.loss(x)
        used = torch.bincount(out['indices'].flatten().cpu(), minlength=len(counts))
        counts += used
        opt.zero_grad(set_to_none=True)
        out['total'].backward()
        opt.step()
        history.append({**{k: out[k].item() for k in ('rec', 'codebook', 'commit', 'total')},
                        'codes_used': int((used > 0).sum()), 'restarted': restarted})
        bar.set_postfix(loss=f'{history[-1]["total"]:.4f}')
    return history


def _forget(optimizer, param, rows):
    """Zero AdamW's moments of `param`'s restarted rows: their old momentum is meaningless."""
    state = optimizer.state.get(param, {})
    for key in ('exp_avg', 'exp_avg_sq'):
        if key in state and len(rows):
            state[key][rows.to(state[key].device)] = 0.0


def parse_args(argv=None):
    """The vla-depth-tokenizer flags."""
    parser = argparse.ArgumentParser(prog='vla-depth-tokenizer',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('datasets', nargs='+', help='LeRobot v3 dataset folders (vla-export)')
    parser.add_argument('--output', required=True, help='directory for the trained tokenizer')
    parser.add_argument('--preset', choices=PRESETS, default='paper',
                        help='paper: K=256, d=160, 16x16 codes; tiny: K=16, d=8, 4x4 (tests)')
    parser.add_argument('--image-size', type=int, default=224,
                        help='the policy image size the depth is padded to (px)')
    parser.add_argument('--steps', type=int, default=2000)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--lr', type=float, default=1e-5, help='AdamW learning rate (paper)')
    parser.add_argument('--restart-every', type=int, default=25,
                        help='steps between restarts of unused codes (0 = never); without '
                        'them the codebook collapses to a few codes')
    parser.add_argument('--val-fraction', type=float, default=0.1)
    parser.add_argument('--frame-stride', type=int, default=1)
    parser.add_argument('--max-frames', type=int, default=10000)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--overwrite', action='store_true')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def main(argv=None):
    """The vla-depth-tokenizer command line; returns the exit status."""
    from vla_nodes.models.qdepth import DepthVQVAE, DepthVQVAEConfig, TINY_VQVAE

    args = parse_args(argv)

    import torch

    output = Path(args.output)
    if (output / 'model.safetensors').exists() and not args.overwrite:
        print(f'vla-depth-tokenizer: {output} already holds a tokenizer; pass --overwrite or '
              'choose another --output', file=sys.stderr)
        return 2
    try:
        train_frames, val_frames = load_depth(args.datasets, args.image_size, args.val_fraction,
                                              args.frame_stride, args.max_frames)
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        print(f'vla-depth-tokenizer: {error}', file=sys.stderr)
        return 2
    if len(train_frames) == 0:
        print('vla-depth-tokenizer: no depth frames to train on (are the datasets empty?)',
              file=sys.stderr)
        return 2
    torch.manual_seed(args.seed)
    config = DepthVQVAEConfig() if args.preset == 'paper' else TINY_VQVAE
    model = DepthVQVAE(config).to(args.device)
    print(f'{len(train_frames)} training and {len(val_frames)} validation depth frames; '
          f'{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, '
          f'K={config.num_codes}, d={config.code_dim}, {config.grid}x{config.grid} codes')
    history = train(model, train_frames, args.steps, args.batch_size, args.lr, args.seed,
                    args.device, progress=not args.no_progress,
                    restart_every=args.restart_every)
    metrics = evaluate(model, val_frames if len(val_frames) else train_frames,
                       args.batch_size, args.device)
    model.save_pretrained(output)
    log = {'args': vars(args), 'history': history, 'validation': metrics,
           'validated_on': 'val' if len(val_frames) else 'train'}
    (output / 'train_log.json').write_text(json.dumps(log, indent=1) + '\n')
    print(f'loss {history[0]["total"]:.4f} -> {history[-1]["total"]:.4f}; {log["validated_on"]} '
          f'reconstruction MSE {metrics["rec_mse"]:.4f}, {metrics["codes_used"]}/'
          f'{config.num_codes} codes used (perplexity {metrics["perplexity"]:.1f}); '
          f'saved to {output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
