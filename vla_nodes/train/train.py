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

"""vla-train: train a preset on LeRobot v3 datasets; CPU or GPU; several GPUs through torchrun.

Read it top to bottom, as nanoGPT's train.py: settings, distributed set-up, data, model,
optimizer, the loop (validation, checkpoints, the loss plot), resume.

    vla-train --data DATASET --preset tiny_pi0_depth --out runs/cube --steps 2000
    vla-train --data DATASET --preset pi0_baseline --backbone ~/paligemma-3b-pt-224 --out runs/p
    torchrun --nproc_per_node 4 -m vla_nodes.train.train --data DATASET --preset ... --out ...

- Recipe defaults by head (`RECIPES`): flow (π0 as openpi trains it: AdamW β = (0.9, 0.95),
  weight decay 1e-10, 1000 warm-up steps, cosine from 2.5e-5 to 2.5e-6 at 30k steps) and query
  (VLM4VLA's code: AdamW, no weight decay, lr 2e-5 constant after warm-up); gradient clip 1.0.
- Normalization statistics (q01/q99) come from the training episodes and are saved with every
  checkpoint together with the robot contract (joint names, units, rate = the dataset's fps,
  chunk length, image size): policy/checkpoint.py.
- DDP: each of WORLD_SIZE ranks takes its slice of every global batch (gloo on CPU, NCCL on
  GPU); flow noise and times are drawn for the global batch from a per-step seed, so N ranks
  compute the gradients of one process on the same batch. Batches are a pure function of
  (seed, step) (train/data.py), so `--resume` continues exactly where the run stopped.
- bf16 autocast on GPU (`--precision auto`); fp32 on CPU unless `--precision bf16`.
- Spatial presets: qdepth_vla and depthvla train on the dataset's depth video (their auxiliary
  losses; `--spatial-path` = the trained VQ-VAE, required, or DINOv2 / Depth Anything V2
  weights); spatial_forcing computes its targets with a frozen teacher (`--teacher DIR`: DINOv2,
  or VGGT with the vggt package), padding tokens masked; pose_vla feeds the camera's K
  (info.json) to its ray-map prior, and pose_vla_pretrain makes its pose answers from the
  exported end-effector poses, calibration and K (bins saved to pose_tokenizer.json).
- `--fsdp` (with torchrun): FSDP2 `fully_shard` over the whole model as one unit instead of DDP.
  DDP keeps a full replica per GPU, about 16 bytes per parameter (53 GB for the 3.3 B π0);
  FSDP shards the fp32 weights, gradients and AdamW state (16 / N bytes per parameter at rest)
  and gathers the weights for each forward (the mixture runs layers' parts directly, so the
  layers cannot be separate units). Checkpoints are full state dicts gathered on rank 0, the
  same files as without FSDP; resume loads them on every rank. Works with gloo on CPU too.
- Validation (every `--val-every` steps, held-out episodes): the flow loss with fixed noise, and
  the chunk error at each episode's first frame (train/validation.py), which tracks whether the
  policy reads the object's place from the image. `--eval-episodes N`: after the last step, a
  lock-step closed-loop check of the last checkpoint on vla-eval's held-out seeds (success k/n,
  also in metrics.jsonl's last line).
- `--pose-snapshots DIR` (vla-snapshots): for a preset that predicts the object poses from the
  camera (tiny_pi0_keypoints_pose), scene frames labelled by pose_node with no actions, cropped
  and resized as the dataset's; its estimator's loss also runs over `--snapshot-batch` of them
  per sample each step, so it sees more placements than demos. Validation then reports the
  estimator's error (cm, deg) on the held-out episodes' first frames, the training episodes'
  and `--pose-snapshots-val DIR`'s; the checkpoint still needs the camera alone.
- Output folder: checkpoints/step_NNNNNN/ (a policy checkpoint + optimizer.safetensors +
  train_state.json), `latest` (the newest checkpoint's name), metrics.jsonl, loss.png.
"""

import argparse
from dataclasses import replace
import functools
import json
from pathlib import Path
import sys

import numpy as np

from vla_nodes.models import presets
from vla_nodes.models.spatial_streams import build_teacher
from vla_nodes.policy.checkpoint import (extra_image_keys, make_contract, read_policy_json,
                                         save_checkpoint)
from vla_nodes.train.config import (LATEST, lr_at, POSE_TOKENIZER_FILE, recipe, RECIPES,
                                    TrainConfig)
from vla_nodes.train.data import batch_indices, collate, merged_stats
from vla_nodes.train.distributed import setup_distributed, shard_model
from vla_nodes.train.prepare import (contract_cameras_of, fit_pose_tokenizer, load_estimator,
                                     needs_pose_answers, open_data, open_snapshots,
                                     resolve_spatial, Samples)
from vla_nodes.train.run_folder import (gather_full_state, load_full_optimizer, load_train_state,
                                        plot_losses, read_metrics, save_train_state,
                                        write_metrics)
from vla_nodes.train.step import (add_snapshots, add_targets, flow_noise, random_shift,
                                  train_step, validate)
from vla_nodes.train.validation import (closed_loop_check, first_frame_error,
                                        first_frame_indices, pose_errors)


def run(config):
    """Train; returns the output folder. See the module docstring."""
    import torch

    rank, world, device = setup_distributed(config.device)
    precision = config.precision
    if precision == 'auto':
        precision = 'bf16' if device.type == 'cuda' else 'fp32'
    out = Path(config.out)
    model_config = model_config_of(config)
    config = recipe(config, model_config.head)
    latest = out / LATEST
    if latest.is_file() and not config.resume:
        raise FileExistsError(f'{out} already holds a run (see {latest}); pass --resume to '
                              'continue it or choose another --out')
    data = RunData(config, model_config, out, rank)
    model_config = data.model_config

    torch.manual_seed(config.seed)
    teacher = build_teacher(model_config, config.teacher, config.preset.startswith('tiny_'))
    if teacher is not None:
        teacher = teacher.to(device)
        # The projector's output width is the teacher's (DINOv2-L 1024, VGGT 2048).
        model_config = replace(model_config, sf=replace(model_config.sf,
                                                        teacher_width=teacher.width))
    model, wrapped, optimizer, step, history = build_training(
        config, model_config, data, teacher, out, world, device)
    train = Training(config, model_config, data, out, rank, world, precision, device)
    train.loop(model, wrapped, optimizer, teacher, step, history)
    if rank == 0 and config.eval_episodes > 0:
        check_closed_loop(config, out, data.contract, history)
    if world > 1:
        torch.distributed.barrier()
    return out


def model_config_of(config):
    """The preset's model configuration with the run's backbone, spatial weights and cameras."""
    from vla_nodes.models.backbones import resolve

    model_config = presets.get(config.preset)
    if config.backbone:
        model_config = replace(model_config, backbone=replace(
            model_config.backbone, pretrained=config.backbone, hf_config={}))
    model_config = replace(model_config, backbone=resolve(model_config.backbone))
    model_config = resolve_spatial(model_config, config)
    if config.image_size:
        model_config = presets.with_image_size(model_config, config.image_size)
    if config.cameras:
        model_config = replace(model_config, extra_images=extra_image_keys(
            [c.name for c in contract_cameras_of(config)]))
    return model_config


class RunData:
    """The run's datasets, samples, statistics, pose bins and robot contract."""

    def __init__(self, config, model_config, out, rank):
        if not config.data:
            raise ValueError('no dataset: pass --data DIR (a LeRobot v3 folder from vla-export)')
        train_sets, val_sets = open_data(config, model_config)
        env_names = train_sets[0].env_names
        if env_names:  # read (--env-state) or predicted (env_state_from_image): the data's size
            model_config = replace(model_config, env_state_dim=len(env_names))
        self.pose_tokenizer = None
        if needs_pose_answers(model_config):
            self.pose_tokenizer = fit_pose_tokenizer(train_sets, model_config.pose)
            if rank == 0:  # the bins that decode this model's pose tokens
                out.mkdir(parents=True, exist_ok=True)
                (out / POSE_TOKENIZER_FILE).write_text(
                    json.dumps(self.pose_tokenizer.to_dict()) + '\n')
        blind = [str(d.root) for d in train_sets + val_sets if d.intrinsics is None]
        if model_config.spatial == 'pose_vla' and blind:
            raise ValueError(f'pose_vla trains its ray-map prior from the camera intrinsics; '
                             f'{blind} store none (features.observation.images.color.info.'
                             'intrinsics): re-export with vla-export')
        self.samples = Samples(train_sets)
        self.held = Samples(val_sets) if val_sets else None
        if len(self.samples) == 0:
            raise ValueError(f'no training samples in {list(config.data)}')
        self.stats = merged_stats(train_sets)
        # Pose snapshots: more placements than demos for the pose estimator (and held out).
        self.snapshots, self.snapshots_val = (
            open_snapshots(folder, model_config, config, train_sets) if folder else None
            for folder in (config.pose_snapshots, config.pose_snapshots_val))
        self.contract = make_contract(
            model_config.horizon, (model_config.image_size,) * 2,
            action_rate_hz=train_sets[0].fps, joint_names=train_sets[0].names or None,
            image_crop=config.crop, dataset_features=train_sets[0].features,
            cameras=[c.name for c in contract_cameras_of(config)] if config.cameras else None,
            environment_state=env_names if config.env_state else None)
        self.model_config = model_config


def build_training(config, model_config, data, teacher, out, world, device):
    """The model, its DDP/FSDP wrapper and the optimizer, resumed from `out` when asked.

    Returns:
        (model, wrapped, optimizer, step, history); `data.stats` becomes the checkpoint's.
    """
    import torch
    from vla_nodes.models.vla import VLAModel

    latest = out / LATEST
    model = VLAModel(model_config).to(device)
    if config.estimator_from:  # before the optimizer: its parameters are frozen
        load_estimator(model, config.estimator_from, data.stats, config.crop)
    optimizer = adamw(model, config, model_config.head)
    step, history = 0, []
    if config.resume and latest.is_file():
        ckpt = out / latest.read_text().strip()
        from safetensors.torch import load_model
        load_model(model, str(ckpt / 'model.safetensors'), device=str(device))
        if config.fsdp:  # the optimizer is built after sharding; its state loads then
            step = int(json.loads((ckpt / 'train_state.json').read_text())['step'])
        else:
            step = load_train_state(ckpt, optimizer)
        data.stats = read_policy_json(ckpt)['norm_stats']
        history = [h for h in read_metrics(out) if h['step'] <= step]
    wrapped = model
    if config.fsdp:
        if world < 2:
            raise ValueError('--fsdp shards over processes: launch with torchrun '
                             '--nproc_per_node N (N >= 2)')
        if teacher is not None:
            raise ValueError('--fsdp does not support spatial_forcing (its teacher reads the '
                             'VLM outside forward); train it with DDP')
        shard_model(model, device)
        optimizer = adamw(model, config, model_config.head)
        if config.resume and latest.is_file():
            load_full_optimizer(out / latest.read_text().strip(), model, optimizer)
    elif world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == 'cuda' else None)
    model.train()
    return model, wrapped, optimizer, step, history


def adamw(model, config, head):
    """AdamW over the trainable parameters, with the head's recipe betas."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=config.lr, betas=RECIPES[head]['betas'],
                             weight_decay=config.weight_decay)


class Training:
    """The loop: learning rate, batch, step, validation, progress bar and checkpoints."""

    def __init__(self, config, model_config, data, out, rank, world, precision, device):
        self.config, self.model_config, self.data, self.out = config, model_config, data, out
        self.rank, self.world, self.precision, self.device = rank, world, precision, device

    def loop(self, model, wrapped, optimizer, teacher, step, history):
        """Train from `step` to config.steps, appending a record per step to `history`."""
        from tqdm import tqdm

        config = self.config
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=config.steps, initial=step,
                   disable=self.rank != 0 or not config.progress, desc='vla-train',
                   dynamic_ncols=True)
        while step < config.steps:
            terms, norm = self.step(model, wrapped, optimizer, teacher, step)
            step += 1
            record = {'step': step, 'lr': optimizer.param_groups[0]['lr'],
                      'grad_norm': float(norm), **terms}
            self.validate(model, teacher, step, record)
            history.append(record)
            bar.update(1)
            bar.set_postfix(loss=f'{terms["loss"]:.4f}', **(
                {'val': f'{record["val_loss"]:.4f}'} if 'val_loss' in record else {}), **(
                {'first_frame': f'{record["val_first_frame_err"]:.3f}'}
                if record.get('val_first_frame_err') is not None else {}))
            if (self.rank == 0 or config.fsdp) and (step % config.save_every == 0
                                                    or step == config.steps):
                self.save(model, optimizer, step, history)
        bar.close()

    def step(self, model, wrapped, optimizer, teacher, step):
        """One optimisation step; returns its loss terms and the gradient norm."""
        import torch

        config, model_config, data = self.config, self.model_config, self.data
        schedule = RECIPES[model_config.head]['schedule']
        for group in optimizer.param_groups:
            group['lr'] = lr_at(step, config, schedule)
        idx = batch_indices(len(data.samples), config.batch_size, step, config.seed)
        batch = random_shift(collate([data.samples[int(i)] for i in idx], data.stats),
                             config.shift_px, step, config.seed)
        batch = add_targets(batch, teacher, model, data.pose_tokenizer)
        if data.snapshots is not None:
            batch = add_snapshots(batch, data.snapshots, data.stats, config.snapshot_batch, step,
                                  config.seed)
        noise, time = flow_noise(step, config.seed, len(idx), model_config.horizon,
                                 model_config.action_dim)
        optimizer.zero_grad(set_to_none=True)
        terms = train_step(wrapped, batch, noise, time, self.rank, self.world, self.precision,
                           self.device, step)
        params = [p for group in optimizer.param_groups for p in group['params']]
        norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        norm = norm.full_tensor() if hasattr(norm, 'full_tensor') else norm  # FSDP: a DTensor
        optimizer.step()
        return terms, norm

    def validate(self, model, teacher, step, record):
        """Add the held-out losses to `record` on validation steps."""
        config, data = self.config, self.data
        val_step = step % config.val_every == 0 or step == config.steps
        if (self.rank == 0 or config.fsdp) and data.held is not None and val_step:
            record['val_loss'] = validate(model, data.held, data.stats, config, self.precision,
                                          self.device, teacher, step, data.pose_tokenizer)
            if not config.fsdp:  # sampling a chunk bypasses FSDP's forward hooks
                record['val_first_frame_err'] = first_frame_error(model, data.held, data.stats,
                                                                  config.batch_size)
        if self.rank == 0 and not config.fsdp and val_step and (
                self.model_config.env_state_from_image):
            record.update(self.pose_metrics(model))

    def pose_metrics(self, model):
        """The pose estimator's errors (validation.pose_errors), as metrics.

        On the first frames of the held-out episodes (val_pose_x_cm, _y_cm, _yaw_deg), of the
        training episodes (train_pose_...) and on the held-out snapshots (snap_pose_...).
        """
        names = self.data.samples.datasets[0].env_names
        out = {}
        for prefix, (images, target) in self._pose_sets().items():
            errors = pose_errors(model, images, target, self.data.stats, names)
            out.update({f'{prefix}_pose_{k}': v for k, v in errors.items() if k != 'n'})
        return out

    @functools.cache
    def _pose_sets(self) -> dict:
        """{prefix: (images, poses)} pose_metrics measures on: read (decoded) once per run."""
        from vla_nodes.contract import OBS_ENV_STATE, OBS_IMAGE
        data, sets = self.data, {}
        for prefix, samples in (('val', data.held), ('train', data.samples)):
            if samples is not None:
                frames = [samples[i] for i in first_frame_indices(samples)]
                sets[prefix] = (np.stack([f[OBS_IMAGE] for f in frames]),
                                np.stack([f[OBS_ENV_STATE] for f in frames]))
        if data.snapshots_val is not None:
            sets['snap'] = (data.snapshots_val['image'], data.snapshots_val['env_state'])
        return sets

    def save(self, model, optimizer, step, history):
        """Write checkpoints/step_NNNNNN, point `latest` at it, update metrics and the plot."""
        config, out, data = self.config, self.out, self.data
        name = f'checkpoints/step_{step:06d}'
        if config.fsdp:  # collective: every rank gathers, rank 0 writes
            saved, opt_state = gather_full_state(model, optimizer)
            if self.rank != 0:
                return
            save_checkpoint(out / name, saved, data.stats, data.contract, preset=config.preset)
            save_train_state(out / name, None, step, config, opt_state)
        else:
            save_checkpoint(out / name, model, data.stats, data.contract, preset=config.preset)
            save_train_state(out / name, optimizer, step, config)
        tmp = out / (LATEST + '.tmp')
        tmp.write_text(name + '\n')
        tmp.replace(out / LATEST)
        write_metrics(out, history)
        plot_losses(out / 'loss.png', history)


def check_closed_loop(config, out, contract, history):
    """The lock-step closed-loop check of the last checkpoint, printed and in metrics.jsonl."""
    check = closed_loop_check(out / (out / LATEST).read_text().strip(), config.eval_episodes,
                              float(contract['action_rate_hz']), config.eval_task,
                              config.eval_max_seconds)
    print('vla-train: closed-loop check (lock-step, held-out seeds '
          f"{check['closed_loop_seeds'][0]}-{check['closed_loop_seeds'][-1]}): success "
          f"{check['closed_loop_success']}/{check['closed_loop_episodes']}, mean final "
          f"grasp-to-cube distance {check['closed_loop_final_distance_m']:.3f} m")
    history[-1].update(check)
    write_metrics(out, history)


def parse_args(argv=None):
    """TrainConfig from command-line flags."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog='vla-train', description=__doc__.splitlines()[0])
    parser.add_argument('--data', nargs='+', required=True, help='LeRobot v3 dataset folders')
    parser.add_argument('--out', default=defaults.out, help='run folder (checkpoints, plots)')
    parser.add_argument('--preset', default=defaults.preset,
                        help=f'one of {", ".join(sorted(presets.PRESETS))}')
    parser.add_argument('--backbone', default='', help='local VLM checkpoint directory')
    parser.add_argument('--spatial-path', default='',
                        help='qdepth: trained VQ-VAE dir; depthvla: DINOv2 / DAv2 dir')
    parser.add_argument('--teacher', default='',
                        help='spatial_forcing: local DINOv2 directory (the frozen teacher)')
    for name in ('steps', 'batch_size', 'warmup', 'decay_steps', 'val_every', 'val_batches',
                 'save_every', 'seed', 'cache_mb', 'image_size', 'shift_px'):
        parser.add_argument('--' + name.replace('_', '-'), type=int,
                            default=getattr(defaults, name))
    for name in ('lr', 'min_lr', 'weight_decay', 'grad_clip', 'val_fraction'):
        parser.add_argument('--' + name.replace('_', '-'), type=float,
                            default=getattr(defaults, name))
    parser.add_argument('--crop', type=float, nargs=4, default=(),
                        metavar=('TOP', 'LEFT', 'BOTTOM', 'RIGHT'),
                        help='the part of the camera frame the model sees, as fractions '
                             '(e.g. the workspace); saved in the checkpoint for policy_node')
    parser.add_argument('--map', dest='feature_map', default='', metavar='KEY=ROLE,...|YAML',
                        help='which dataset features feed the model (roles: image, depth, '
                             'state, action), e.g. observation.images.front=image,'
                             'observation.images.front_depth=depth; or a YAML file '
                             '{key: role}. Default: the names vla-export writes. Saved in the '
                             'contract')
    parser.add_argument('--cameras', default='', metavar='NAME,...',
                        help='cameras the model sees, contract names, primary first (default: '
                             "the scene camera); e.g. 'scene,wrist' also encodes "
                             'observation.images.wrist with the shared vision tower. Saved in '
                             'the contract: policy_node refuses a robot without them')
    parser.add_argument('--env-state', action='store_true',
                        help='append the object poses (observation.environment_state, from '
                             "pose_node's /vla/objects via vla-export) to the state; policy_node "
                             'then needs /vla/objects')
    parser.add_argument('--pose-snapshots', default='', metavar='DIR',
                        help='a vla-snapshots folder (or several, comma-separated): scene '
                             'frames labelled by pose_node that also train a pose-estimating '
                             "preset's estimator (no actions)")
    parser.add_argument('--pose-snapshots-val', default='', metavar='DIR',
                        help="held-out vla-snapshots: the estimator's error at validation")
    parser.add_argument('--snapshot-batch', type=int, default=defaults.snapshot_batch,
                        help='pose snapshots per sample per step')
    parser.add_argument('--estimator-from', default='', metavar='CHECKPOINT',
                        help="a pose-estimating preset's checkpoint (same dataset and crop): "
                             'its trained pose estimator is loaded into this one and frozen')
    parser.add_argument('--device', default=defaults.device)
    parser.add_argument('--precision', default=defaults.precision,
                        choices=('auto', 'fp32', 'bf16'))
    parser.add_argument('--resume', action='store_true', help='continue the run in --out')
    parser.add_argument('--fsdp', action='store_true',
                        help='shard weights, gradients and optimizer state (FSDP2; torchrun)')
    parser.add_argument('--no-progress', dest='progress', action='store_false')
    parser.add_argument('--eval-episodes', type=int, default=0,
                        help='after training, a lock-step closed-loop check of the last '
                             'checkpoint on this many held-out sim seeds (success k/n)')
    parser.add_argument('--eval-task', default=defaults.eval_task, help='its sim task')
    parser.add_argument('--eval-max-seconds', type=float, default=defaults.eval_max_seconds,
                        help='simulated s per episode of the check')
    values = vars(parser.parse_args(argv))
    values['data'] = tuple(values['data'])
    values['crop'] = tuple(values['crop'])
    return TrainConfig(**values)


def main(argv=None):
    """Console entry point: vla-train."""
    config = parse_args(argv)
    try:
        out = run(config)
    except (FileExistsError, FileNotFoundError, ImportError, ValueError, KeyError) as error:
        print(f'vla-train: {error}', file=sys.stderr)
        return 2
    print(f'vla-train: checkpoints in {out / "checkpoints"}, loss curve {out / "loss.png"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
