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


"""A training run's settings: the CLI's flags, the recipes by head and the lr schedule."""

from dataclasses import dataclass, replace
import math


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
    # Pose snapshots (vla-snapshots): scene frames labelled with pose_node's object poses and no
    # actions. A preset that predicts the poses from the camera (env_state_from_image) fits its
    # estimator to `snapshot_batch` of them per sample at every step besides the demos' frames,
    # with the same crop and size; the action loss never sees them. '' = none.
    pose_snapshots: str = ''
    pose_snapshots_val: str = ''  # held-out snapshots: the estimator's error when validating
    snapshot_batch: int = 1
    # A checkpoint of a preset that predicts the poses (same dataset and crop): its trained
    # PoseEstimator is loaded into this run's and frozen (prepare.load_estimator). '' = none.
    estimator_from: str = ''
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
