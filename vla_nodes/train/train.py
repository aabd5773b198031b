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
- Output folder: checkpoints/step_NNNNNN/ (a policy checkpoint + optimizer.safetensors +
  train_state.json), `latest` (the newest checkpoint's name), metrics.jsonl, loss.png.
"""

import argparse
from dataclasses import asdict, dataclass, replace
import json
import math
import os
from pathlib import Path
import sys

import numpy as np

from vla_nodes.contract import (ACTION, cameras as named_cameras, DEFAULT_CAMERAS, OBS_DEPTH,
                                OBS_IMAGES_PREFIX, SCENE_CAMERA)
from vla_nodes.models import presets
from vla_nodes.models.spatial_streams import add_pose_answers, add_teacher_targets, build_teacher
from vla_nodes.models.vla import ACTION_LOSS_SCALE, ACTION_PAD
from vla_nodes.policy.checkpoint import (extra_image_keys, make_contract, read_policy_json,
                                         save_checkpoint)
from vla_nodes.train.data import (batch_indices, collate, LeRobotDataset, merged_stats,
                                  split_episodes)
from vla_nodes.train.validation import closed_loop_check, first_frame_error

RECIPES = {
    'flow': {'lr': 2.5e-5, 'min_lr': 2.5e-6, 'betas': (0.9, 0.95), 'weight_decay': 1e-10,
             'warmup': 1000, 'decay_steps': 30000, 'schedule': 'cosine'},
    'query': {'lr': 2e-5, 'min_lr': 2e-5, 'betas': (0.9, 0.999), 'weight_decay': 0.0,
              'warmup': 1000, 'decay_steps': 1, 'schedule': 'constant'},
}
LATEST = 'latest'
POSE_TOKENIZER_FILE = 'pose_tokenizer.json'  # Pose-VLA pre-training: the fitted pose bins


@dataclass(frozen=True)
class TrainConfig:
    """One training run (the CLI's flags; None means the head's recipe value)."""

    data: tuple = ()  # dataset folders
    out: str = 'runs/vla'
    preset: str = 'tiny_pi0_depth'
    backbone: str = ''  # local transformers checkpoint for the preset's VLM
    spatial_path: str = ''  # qdepth: trained VQ-VAE dir; depthvla: DINOv2 / Depth Anything dir
    teacher: str = ''  # spatial_forcing: local DINOv2 directory (the frozen 3D teacher)
    steps: int = 1000
    batch_size: int = 8  # global, split over DDP ranks
    lr: float = None
    min_lr: float = None
    warmup: int = None
    decay_steps: int = None
    weight_decay: float = None
    grad_clip: float = 1.0
    val_fraction: float = 0.1  # of the episodes
    val_every: int = 200
    val_batches: int = 4
    save_every: int = 500
    seed: int = 0
    device: str = 'auto'  # auto | cpu | cuda | cuda:N
    precision: str = 'auto'  # auto (bf16 on GPU) | fp32 | bf16
    cache_mb: int = 2048  # decoded frames kept in memory per dataset split
    image_size: int = 0  # 0 = the preset's; else the input side S (presets.with_image_size)
    crop: tuple = ()  # (top, left, bottom, right) fractions of the frame; saved in the contract
    feature_map: str = ''  # dataset features -> model inputs (data.parse_feature_map); contract
    # Contract camera names the model sees, the primary first ('' = the scene camera alone);
    # the others feed the model's extra_images (observation.images.<camera>); contract.
    cameras: str = ''
    # Object poses (the dataset's observation.environment_state, vla-export from pose_node's
    # /vla/objects) appended to the state; saved in the contract: policy_node then needs them.
    env_state: bool = False
    # Random shift of every training image by up to this many px (pad by replication, crop back;
    # DrQ, robomimic's crop): small data then teaches where things are, not which pixels they
    # cover. Training only: policy_node never shifts. 0 = off.
    shift_px: int = 4
    resume: bool = False
    progress: bool = True
    fsdp: bool = False  # shard with FSDP2 instead of DDP (torchrun, WORLD_SIZE > 1)
    eval_episodes: int = 0  # > 0: a lock-step closed-loop check of the last checkpoint
    eval_task: str = 'pick_red_cube'  # its sim task (the demos' task)
    eval_max_seconds: float = 10.0  # simulated s per episode of the check


def recipe(config, head):
    """The config with the head's recipe filled in where the flags left None."""
    values = {k: getattr(config, k) for k in ('lr', 'min_lr', 'warmup', 'decay_steps',
                                              'weight_decay')}
    base = RECIPES[head]
    return replace(config, **{k: base[k] if v is None else v for k, v in values.items()})


def lr_at(step, config, schedule):
    """Learning rate at `step`: linear warm-up, then cosine to min_lr (or constant)."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    if schedule == 'constant':
        return config.lr
    progress = min(1.0, (step - config.warmup) / max(1, config.decay_steps - config.warmup))
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


# --- distributed --------------------------------------------------------------------------------
def setup_distributed(device='auto'):
    """Join the torchrun process group when WORLD_SIZE > 1.

    Returns:
        (rank, world_size, torch.device).
    """
    import torch
    import torch.distributed as dist

    world = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local = int(os.environ.get('LOCAL_RANK', '0'))
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    dev = torch.device(device)
    if dev.type == 'cuda':
        dev = torch.device('cuda', local if dev.index is None else dev.index)
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group('nccl' if dev.type == 'cuda' else 'gloo')
    return rank, world, dev


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
    of (seed, step).
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
    for key in keys:
        x = batch[key]
        planes = (x[..., None] if x.dim() == 3 else x).permute(0, 3, 1, 2).float()
        side = planes.shape[-2:]
        padded = functional.pad(planes, (shift_px,) * 4, mode='replicate')
        shifted = torch.stack([padded[i, :, dy:dy + side[0], dx:dx + side[1]]
                               for i, (dy, dx) in enumerate(offsets)]).permute(0, 2, 3, 1)
        out[key] = (shifted[..., 0] if x.dim() == 3 else shifted).to(x.dtype)
    return out


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
def shard_model(model, device):
    """FSDP2: shard the model over the process group (one unit: see the module docstring)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    import torch.distributed as dist

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    fully_shard(model, mesh=mesh)
    return model


class FullState:
    """A gathered model as save_checkpoint wants it: `config` + `save_pretrained` (rank 0)."""

    def __init__(self, config, state):
        self.config, self.state = config, state

    def save_pretrained(self, directory):
        """config.json + model.safetensors, as VLAModel.save_pretrained writes them."""
        from safetensors.torch import save_file
        from vla_nodes.models.vla import CONFIG_FILE, WEIGHTS_FILE

        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + '\n')
        save_file({k: v.contiguous() for k, v in self.state.items()}, str(path / WEIGHTS_FILE),
                  metadata={'format': 'pt'})


def gather_full_state(model, optimizer):
    """Collective: (FullState, optimizer state by parameter name) on rank 0, (None, None) else."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import (get_model_state_dict,
                                                         get_optimizer_state_dict,
                                                         StateDictOptions)

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = get_model_state_dict(model, options=options)
    opt_state = get_optimizer_state_dict(model, optimizer, options=options)
    if dist.get_rank() != 0:
        return None, None
    return FullState(model.config, weights), opt_state


def load_full_optimizer(directory, model, optimizer):
    """Every rank: load the full optimizer state saved by an FSDP run into the sharded one."""
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import (set_optimizer_state_dict,
                                                         StateDictOptions)

    info = json.loads((Path(directory) / 'train_state.json').read_text())
    state = {}
    for name, value in load_file(str(Path(directory) / 'optimizer.safetensors')).items():
        param, key = name.rsplit('::', 1)
        state.setdefault(param, {})[key] = value
    set_optimizer_state_dict(model, optimizer, {'state': state,
                                                'param_groups': info['param_groups']},
                             options=StateDictOptions(full_state_dict=True))


def save_train_state(directory, optimizer, step, config, state=None):
    """optimizer.safetensors (tensors) + train_state.json (step, param groups, settings).

    `state`: an optimizer state dict gathered by FSDP (keyed by parameter name, saved as
    'name::key'); else the optimizer's own (keyed by index, saved as 'index.key').
    """
    from safetensors.torch import save_file

    sep = '.' if state is None else '::'
    state = optimizer.state_dict() if state is None else state
    tensors = {f'{i}{sep}{k}': v.detach().cpu().contiguous()
               for i, s in state['state'].items() for k, v in s.items()}
    save_file(tensors, str(Path(directory) / 'optimizer.safetensors'))
    info = {'step': step, 'param_groups': state['param_groups'], 'config': asdict(config)}
    (Path(directory) / 'train_state.json').write_text(json.dumps(info, indent=2) + '\n')


def load_train_state(directory, optimizer):
    """Restore the optimizer; returns the step to continue from."""
    from safetensors.torch import load_file

    info = json.loads((Path(directory) / 'train_state.json').read_text())
    state = {}
    for name, value in load_file(str(Path(directory) / 'optimizer.safetensors')).items():
        index, key = name.split('.', 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({'state': state, 'param_groups': info['param_groups']})
    return int(info['step'])


def plot_losses(path, history):
    """Save the train and validation loss curves as a PNG (matplotlib, Agg)."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4))
    train = [(h['step'], h['loss']) for h in history if 'loss' in h]
    val = [(h['step'], h['val_loss']) for h in history if 'val_loss' in h]
    for points, label in ((train, 'train'), (val, 'validation')):
        if points:
            axes.plot(*zip(*points), label=label, marker='o' if label == 'validation' else None)
    axes.set_xlabel('step')
    axes.set_ylabel('loss')
    axes.set_yscale('log')
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


# --- the run ------------------------------------------------------------------------------------
def resolve_spatial(model_config, config):
    """The model config with --spatial-path set, and the VQ-VAE's config read from it.

    Raises:
        ValueError: qdepth without a trained tokenizer: a random VQ-VAE's codes carry no depth,
            the depth loss would stay at chance (ln K) and the run would look fine.
    """
    if model_config.spatial == 'qdepth' and not config.spatial_path:
        raise ValueError(
            'QDepth-VLA needs its trained depth tokenizer: run vla-depth-tokenizer DATASET '
            '--output DIR (--preset tiny for tiny_ presets, --image-size as the policy) and '
            'pass --spatial-path DIR')
    if not config.spatial_path:
        return model_config
    model_config = replace(model_config, spatial_path=config.spatial_path)
    if model_config.spatial == 'qdepth':
        from vla_nodes.models.qdepth import DepthVQVAEConfig
        path = Path(config.spatial_path) / 'config.json'
        if not path.is_file():
            raise FileNotFoundError(f'{config.spatial_path!r} has no config.json: train the '
                                    'depth tokenizer first (vla-depth-tokenizer)')
        values = json.loads(path.read_text())
        values['channels'] = tuple(values['channels'])
        model_config = replace(model_config, vqvae=DepthVQVAEConfig(**values))
    return model_config


def needs_pose_answers(model_config):
    """Pose-VLA's pose NTP objective is on: batches need answers made from robot data."""
    return model_config.spatial == 'pose_vla' and model_config.pose.ntp_weight > 0


def fit_pose_tokenizer(datasets, pose_config):
    """Pose-VLA's tokenizer, its metric bins fitted on the training rows.

    Fitted on the camera-frame end-effector positions (equal-frequency edges [paper App. A]).
    """
    from vla_nodes.arm.kinematics import xyz_quat_to_pose
    from vla_nodes.models.pose_vla import pose_in_camera, PoseTokenizer

    points = [pose_in_camera(d.base_cam, np.stack([xyz_quat_to_pose(p)
                                                  for p in d.ee_pose[d.rows()]]))[:, :3, 3]
              for d in datasets]
    return PoseTokenizer(pose_config).fit(np.concatenate(points))


def contract_cameras_of(config):
    """The run's cameras (contract.Camera), primary first; the scene camera by default."""
    return named_cameras(config.cameras or ','.join(DEFAULT_CAMERAS))


def open_data(config, model_config):
    """(train datasets, val datasets) over the dataset folders, split by episode."""
    train, val = [], []
    primary = contract_cameras_of(config)[0]
    feature_map = config.feature_map or None
    if feature_map is None and primary is not SCENE_CAMERA:
        feature_map = {primary.image_key: 'image', primary.depth_key: 'depth'}
    for folder in config.data:
        kw = dict(horizon=model_config.horizon, image_size=model_config.image_size,
                  use_depth=model_config.needs_depth, cache_mb=config.cache_mb,
                  crop=config.crop, pose_targets=needs_pose_answers(model_config),
                  feature_map=feature_map, extra_images=model_config.extra_images,
                  env_state=config.env_state)
        probe = LeRobotDataset(folder, **kw)
        fit, held = split_episodes(probe.episodes, config.val_fraction)
        train.append(LeRobotDataset(folder, episodes=fit, **kw))
        if held:
            val.append(LeRobotDataset(folder, episodes=held, **kw))
    names, fps = {tuple(d.names) for d in train}, {d.fps for d in train}
    env = {tuple(d.env_names or ()) for d in train}
    if len(names) > 1 or len(fps) > 1 or len(env) > 1:
        raise ValueError(f'datasets disagree on joint names {names}, fps {fps} or environment '
                         f'state {env}; train one robot contract at a time')
    return train, val


class Samples:
    """Several datasets indexed as one."""

    def __init__(self, datasets):
        self.datasets = datasets
        self.offsets = np.cumsum([0] + [len(d) for d in datasets])

    def __len__(self):
        return int(self.offsets[-1])

    def __getitem__(self, i):
        k = int(np.searchsorted(self.offsets, i, side='right')) - 1
        return self.datasets[k][int(i - self.offsets[k])]


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


def run(config):
    """Train; returns the output folder. See the module docstring."""
    import torch
    from tqdm import tqdm
    from vla_nodes.models.backbones import resolve
    from vla_nodes.models.vla import VLAModel

    rank, world, device = setup_distributed(config.device)
    precision = config.precision
    if precision == 'auto':
        precision = 'bf16' if device.type == 'cuda' else 'fp32'
    out = Path(config.out)
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
    config = recipe(config, model_config.head)
    schedule = RECIPES[model_config.head]['schedule']
    latest = out / LATEST
    if latest.is_file() and not config.resume:
        raise FileExistsError(f'{out} already holds a run (see {latest}); pass --resume to '
                              'continue it or choose another --out')

    # data
    if not config.data:
        raise ValueError('no dataset: pass --data DIR (a LeRobot v3 folder from vla-export)')
    train_sets, val_sets = open_data(config, model_config)
    env_names = train_sets[0].env_names if config.env_state else None
    if env_names:
        model_config = replace(model_config, env_state_dim=len(env_names))
    pose_tokenizer = None
    if needs_pose_answers(model_config):
        pose_tokenizer = fit_pose_tokenizer(train_sets, model_config.pose)
        if rank == 0:  # the bins that decode this model's pose tokens
            out.mkdir(parents=True, exist_ok=True)
            (out / POSE_TOKENIZER_FILE).write_text(json.dumps(pose_tokenizer.to_dict()) + '\n')
    blind = [str(d.root) for d in train_sets + val_sets if d.intrinsics is None]
    if model_config.spatial == 'pose_vla' and blind:
        raise ValueError(f'pose_vla trains its ray-map prior from the camera intrinsics; {blind} '
                         'store none (features.observation.images.color.info.intrinsics): '
                         're-export with vla-export')
    samples, held = Samples(train_sets), (Samples(val_sets) if val_sets else None)
    if len(samples) == 0:
        raise ValueError(f'no training samples in {list(config.data)}')
    stats = merged_stats(train_sets)
    contract = make_contract(model_config.horizon, (model_config.image_size,) * 2,
                             action_rate_hz=train_sets[0].fps,
                             joint_names=train_sets[0].names or None,
                             image_crop=config.crop, dataset_features=train_sets[0].features,
                             cameras=[c.name for c in contract_cameras_of(config)]
                             if config.cameras else None, environment_state=env_names)

    # model and optimizer
    torch.manual_seed(config.seed)
    teacher = build_teacher(model_config, config.teacher, config.preset.startswith('tiny_'))
    if teacher is not None:
        teacher = teacher.to(device)
        # The projector's output width is the teacher's (DINOv2-L 1024, VGGT 2048).
        model_config = replace(model_config, sf=replace(model_config.sf,
                                                        teacher_width=teacher.width))
    model = VLAModel(model_config).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, betas=RECIPES[model_config.head][
        'betas'], weight_decay=config.weight_decay)
    step, history = 0, []
    if config.resume and latest.is_file():
        ckpt = out / latest.read_text().strip()
        from safetensors.torch import load_model
        load_model(model, str(ckpt / 'model.safetensors'), device=str(device))
        if config.fsdp:  # the optimizer is built after sharding; its state loads then
            step = int(json.loads((ckpt / 'train_state.json').read_text())['step'])
        else:
            step = load_train_state(ckpt, optimizer)
        stats = read_policy_json(ckpt)['norm_stats']
        history = [h for h in _read_metrics(out) if h['step'] <= step]
    wrapped = model
    if config.fsdp:
        if world < 2:
            raise ValueError('--fsdp shards over processes: launch with torchrun '
                             '--nproc_per_node N (N >= 2)')
        if teacher is not None:
            raise ValueError('--fsdp does not support spatial_forcing (its teacher reads the '
                             'VLM outside forward); train it with DDP')
        shard_model(model, device)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.lr, betas=RECIPES[model_config.head][
            'betas'], weight_decay=config.weight_decay)
        if config.resume and latest.is_file():
            load_full_optimizer(out / latest.read_text().strip(), model, optimizer)
    elif world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == 'cuda' else None)
    model.train()

    def save():
        name = f'checkpoints/step_{step:06d}'
        if config.fsdp:  # collective: every rank gathers, rank 0 writes
            saved, opt_state = gather_full_state(model, optimizer)
            if rank != 0:
                return
            save_checkpoint(out / name, saved, stats, contract, preset=config.preset)
            save_train_state(out / name, None, step, config, opt_state)
        else:
            save_checkpoint(out / name, model, stats, contract, preset=config.preset)
            save_train_state(out / name, optimizer, step, config)
        tmp = out / (LATEST + '.tmp')
        tmp.write_text(name + '\n')
        tmp.replace(latest)
        _write_metrics(out, history)
        plot_losses(out / 'loss.png', history)

    # the loop
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=config.steps, initial=step, disable=rank != 0 or not config.progress,
               desc='vla-train', dynamic_ncols=True)
    while step < config.steps:
        for group in optimizer.param_groups:
            group['lr'] = lr_at(step, config, schedule)
        idx = batch_indices(len(samples), config.batch_size, step, config.seed)
        batch = random_shift(collate([samples[int(i)] for i in idx], stats), config.shift_px,
                             step, config.seed)
        batch = add_targets(batch, teacher, model, pose_tokenizer)
        noise, time = flow_noise(step, config.seed, len(idx), model_config.horizon,
                                 model_config.action_dim)
        optimizer.zero_grad(set_to_none=True)
        terms = train_step(wrapped, batch, noise, time, rank, world, precision, device, step)
        norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        norm = norm.full_tensor() if hasattr(norm, 'full_tensor') else norm  # FSDP: a DTensor
        optimizer.step()
        step += 1
        record = {'step': step, 'lr': optimizer.param_groups[0]['lr'],
                  'grad_norm': float(norm), **terms}
        val_step = step % config.val_every == 0 or step == config.steps
        if (rank == 0 or config.fsdp) and held is not None and val_step:
            record['val_loss'] = validate(model, held, stats, config, precision, device,
                                          teacher, step, pose_tokenizer)
            if not config.fsdp:  # sampling a chunk bypasses FSDP's forward hooks
                record['val_first_frame_err'] = first_frame_error(model, held, stats,
                                                                  config.batch_size)
        history.append(record)
        bar.update(1)
        bar.set_postfix(loss=f'{terms["loss"]:.4f}', **(
            {'val': f'{record["val_loss"]:.4f}'} if 'val_loss' in record else {}), **(
            {'first_frame': f'{record["val_first_frame_err"]:.3f}'}
            if record.get('val_first_frame_err') is not None else {}))
        if (rank == 0 or config.fsdp) and (step % config.save_every == 0
                                           or step == config.steps):
            save()
    bar.close()
    if rank == 0 and config.eval_episodes > 0:
        check = closed_loop_check(out / latest.read_text().strip(), config.eval_episodes,
                                  float(contract['action_rate_hz']), config.eval_task,
                                  config.eval_max_seconds)
        print('vla-train: closed-loop check (lock-step, held-out seeds '
              f"{check['closed_loop_seeds'][0]}-{check['closed_loop_seeds'][-1]}): success "
              f"{check['closed_loop_success']}/{check['closed_loop_episodes']}, mean final "
              f"grasp-to-cube distance {check['closed_loop_final_distance_m']:.3f} m")
        history[-1].update(check)
        _write_metrics(out, history)
    if world > 1:
        torch.distributed.barrier()
    return out


def _write_metrics(out, history):
    lines = ''.join(json.dumps(h) + '\n' for h in history)
    (out / 'metrics.jsonl').write_text(lines)


def _read_metrics(out):
    path = out / 'metrics.jsonl'
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


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
