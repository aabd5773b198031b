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


"""One optimisation step's inputs and losses: flow noise, image shift, targets, validation."""

import numpy as np

from vla_nodes.contract import ACTION, OBS_DEPTH, OBS_ENV_STATE, OBS_IMAGE, OBS_IMAGES_PREFIX
from vla_nodes.models.spatial_streams import add_pose_answers, add_teacher_targets
from vla_nodes.models.vla import (ACTION_LOSS_SCALE, ACTION_PAD, SNAPSHOT_ENV_STATE,
                                  SNAPSHOT_IMAGE, UNSHIFTED_IMAGE)
from vla_nodes.train.data import batch_indices, collate


def flow_noise(step, seed, batch, horizon, action_dim):
    """Noise # (B, H, A) and times # (B,) for global batch `step`, the same on every rank."""
    import torch
    from vla_nodes.models.flow_expert import sample_time

    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    noise = torch.randn(batch, horizon, action_dim, generator=generator)
    return noise, sample_time(batch, generator=generator)


def random_shift(batch, shift_px, step, seed):
    """The batch with each sample's images (every camera, and its depth) randomly shifted.

    One random (dy, dx) in [-shift_px, shift_px] per sample, edges replicated; a pure function
    of (seed, step). The primary image also stays as it was, under UNSHIFTED_IMAGE.
    """
    import torch
    from torch.nn import functional

    keys = [k for k in batch if k == OBS_DEPTH or k.startswith(OBS_IMAGES_PREFIX)]
    if shift_px <= 0 or not keys:
        return batch
    b = len(batch[ACTION])
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step + 7)
    offsets = torch.randint(0, 2 * shift_px + 1, (b, 2), generator=generator).tolist()
    out = dict(batch)
    if OBS_IMAGE in batch:
        out[UNSHIFTED_IMAGE] = batch[OBS_IMAGE]
    for key in keys:
        x = batch[key]
        planes = (x[..., None] if x.dim() == 3 else x).permute(0, 3, 1, 2).float()
        side = planes.shape[-2:]
        padded = functional.pad(planes, (shift_px,) * 4, mode='replicate')
        shifted = torch.stack([padded[i, :, dy:dy + side[0], dx:dx + side[1]]
                               for i, (dy, dx) in enumerate(offsets)]).permute(0, 2, 3, 1)
        out[key] = (shifted[..., 0] if x.dim() == 3 else shifted).to(x.dtype)
    return out


def add_snapshots(batch, snapshots, stats, per_sample, step, seed):
    """The batch with `per_sample` pose snapshots per sample: a pure function of (seed, step).

    Args:
        batch: a collated batch (its ACTION sets the size B).
        snapshots: {'image': uint8 # (N, S, S, 3) preprocessed as the dataset's frames,
            'env_state': pose_node's labels in physical units # (N, E)} (record/snapshots.py).
        stats: the run's normalization statistics (OBS_ENV_STATE's normalize the labels).
        per_sample: k snapshots per sample.

    Returns:
        The batch plus SNAPSHOT_IMAGE # (B, k, S, S, 3) and SNAPSHOT_ENV_STATE # (B, k, E),
        normalized, drawn uniformly with replacement.
    """
    import torch
    from vla_nodes.policy.transforms import Normalize

    b = len(batch[ACTION])
    rng = np.random.default_rng([seed, step, 11])
    idx = rng.integers(0, len(snapshots['image']), (b, per_sample))
    target = Normalize({OBS_ENV_STATE: stats[OBS_ENV_STATE]})(
        {OBS_ENV_STATE: snapshots['env_state'][idx]})[OBS_ENV_STATE]
    return {**batch, SNAPSHOT_IMAGE: torch.from_numpy(snapshots['image'][idx]),
            SNAPSHOT_ENV_STATE: torch.from_numpy(np.asarray(target, np.float32))}


def train_step(model, batch, noise, time, rank, world, precision, device, step=0):
    """Forward and backward of this rank's slice of a global batch.

    Args:
        model: VLAModel, or its DDP wrapper (gradients are then averaged over ranks).
        batch: the global batch (all ranks hold the same one).
        noise, time: from flow_noise for the global batch.
        rank, world: this process and the number of processes.
        precision: 'fp32' or 'bf16' (autocast).
        device: torch.device.
        step: the optimizer step (loss schedules).

    Returns:
        {name: float} of this rank's loss terms.
    """
    import torch

    b = len(batch[ACTION])
    if b % world:
        raise ValueError(f'batch size {b} does not split over {world} processes; '
                         'choose a multiple of the world size')
    part = slice(rank * b // world, (rank + 1) * b // world)
    local = {k: v[part] for k, v in batch.items()}
    if world > 1 and ACTION_PAD in batch:
        valid = (~batch[ACTION_PAD]).sum(dim=1)
        local[ACTION_LOSS_SCALE] = float(world * valid[part].sum() / valid.sum().clamp(min=1))
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == 'bf16'):
        terms = model(local, noise=noise[part], time=time[part], step=step)
    terms['loss'].backward()
    return {k: float(v.detach()) for k, v in terms.items()}


# --- checkpoints --------------------------------------------------------------------------------


def add_targets(batch, teacher, model, pose_tokenizer=None):
    """The batch with the targets its spatial module trains on.

    Spatial Forcing's teacher features, Pose-VLA's pose answers (each when given).
    """
    batch = add_teacher_targets(batch, teacher, model)
    if pose_tokenizer is not None:
        batch = add_pose_answers(batch, pose_tokenizer, model.config.pose.waypoint_stride)
    return batch


def validate(model, samples, stats, config, precision, device, teacher=None, step=0,
             pose_tokenizer=None):
    """Mean loss over up to `val_batches` fixed batches with fixed flow noise."""
    import torch

    if samples is None or len(samples) == 0:
        return None
    model.eval()
    losses = []
    with torch.no_grad():
        for k in range(config.val_batches):
            idx = batch_indices(len(samples), config.batch_size, k, seed=12345)
            batch = collate([samples[int(i)] for i in idx], stats)
            batch = add_targets(batch, teacher, model, pose_tokenizer)
            cfg = model.config
            noise, time = flow_noise(k, 12345, len(idx), cfg.horizon, cfg.action_dim)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == 'bf16'):
                terms = model(batch, noise=noise, time=time, step=step)  # FSDP: forward
            losses.append(float(terms['loss']))
    model.train()
    return float(np.mean(losses))
