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

"""A VLA: a transformers VLM backbone + an action head, composed as a mixture of transformers.

The model library's top (DESIGN.md section 6). Layout of one sample:
    groups  [image (+ sensor depth) | text | (state | action) or (query)]
    image, text -> the VLM's own layers ('vlm' expert, backbones.py)
    state, action -> the π0 action expert ('action' expert, flow_expert.py), or
    query -> the VLM4VLA query token read by an MLP (query_head.py)
    depth -> a spatial paper's depth expert ('depth' expert, spatial_streams.py)
References: π0 (Black et al., 2024) for the VLM + flow-matching expert in shared attention;
VLM4VLA (Zhang et al.) for the query head; QDepth-VLA, DepthVLA, Spatial Forcing and Pose-VLA
through `spatial` (spatial_streams.py); the walking skeleton's sensor-depth tokens join the image
group when `sensor_depth` is set. States and actions are normalized (policy/transforms.py); the
model never sees radians.

Checkpoints are a local directory: config.json (this VLAConfig, nested) + model.safetensors.
Batch keys: OBS_IMAGE RGB 0..255 # (B, S, S, 3); OBS_DEPTH metres, NaN invalid # (B, S, S)
(sensor_depth only); OBS_STATE normalized # (B, state_dim); OBS_INSTRUCTION list of B str;
ACTION (training) normalized # (B, H, A); ACTION_PAD (optional) True on padded steps # (B, H);
each key of `extra_images` (further cameras) RGB 0..255 # (B, S, S, 3); OBS_ENV_STATE
normalized object poses # (B, env_state_dim) when env_state_dim > 0, appended to the state the
flow head reads.
"""

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
import json
from pathlib import Path

import torch
from torch import nn

from vla_nodes.contract import (ACTION, OBS_DEPTH, OBS_ENV_STATE, OBS_IMAGE, OBS_INSTRUCTION,
                                OBS_STATE)
from vla_nodes.models import spatial_streams
from vla_nodes.models.backbones import BackboneConfig, build_backbone, DepthEncoder
from vla_nodes.models.depthvla import DepthVLAConfig, TINY_DEPTHVLA
from vla_nodes.models.flow_expert import FlowConfig, FlowHead
from vla_nodes.models.mot import ExpertConfig, Group, MoT, PI0_MASK, Tokens
from vla_nodes.models.pose_vla import PoseVLAConfig
from vla_nodes.models.qdepth import DepthVQVAEConfig, QDepthConfig, TINY_QDEPTH, TINY_VQVAE
from vla_nodes.models.query_head import QueryConfig, QueryHead
from vla_nodes.models.spatial_forcing import SpatialForcingConfig, TINY_SF

CONFIG_FILE = 'config.json'
WEIGHTS_FILE = 'model.safetensors'
ACTION_PAD = 'action_is_pad'  # LeRobot's key: chunk steps past the episode end
# Data-parallel training: this rank's share of the global batch's valid chunk steps, times the
# number of ranks. The action loss is a mean over valid steps; scaled so, DDP's average of the
# ranks' gradients equals one process's mean over the whole batch, however padding is spread.
ACTION_LOSS_SCALE = 'action_loss_scale'
# The primary camera's image before training's random shift: the PoseEstimator regresses
# absolute object poses, which a shifted image would blur by a few cm (the policy's keypoints
# keep the shift).
UNSHIFTED_IMAGE = 'image_before_shift'  # not under observation.images.: not a camera
# Pose snapshots (record/snapshots.py, vla-train --pose-snapshots): scene frames labelled with
# pose_node's object poses and no actions, k per sample; the PoseEstimator's loss also runs over
# them (more placements than demos), the action loss never sees them.
SNAPSHOT_IMAGE = 'pose_snapshot_image'  # uint8 # (B, k, S, S, 3), as OBS_IMAGE, never shifted
SNAPSHOT_ENV_STATE = 'pose_snapshot_env_state'  # normalized # (B, k, E), NaN: not detected

# Attention tables of the flow head, by name.
MASKS = {'pi0': PI0_MASK, **spatial_streams.MASKS}


@dataclass(frozen=True)
class VLAConfig:
    """The whole model; the defaults are the tiny CPU twin of π0 (random weights)."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    head: str = 'flow'  # 'flow' (π0 action expert) or 'query' (VLM4VLA)
    expert: ExpertConfig = field(default_factory=ExpertConfig)  # the flow head's expert
    flow: FlowConfig = field(default_factory=FlowConfig)
    query: QueryConfig = field(default_factory=lambda: QueryConfig(head_hidden=64))
    mask: str = 'pi0'  # flow head: a key of MASKS
    sensor_depth: bool = False  # depth patch tokens from the camera's metric depth
    depth_patch: int = 14  # px per depth patch
    max_depth_m: float = 2.0  # depth is clamped here, then scaled to [0, 1]; tabletop reach
    image_size: int = 56  # S: the policy resizes-with-pad camera frames to S x S
    # Batch keys of further colour cameras (e.g. 'observation.images.wrist'), S x S like
    # OBS_IMAGE: each is encoded by the shared vision tower and its tokens join the image group
    # after OBS_IMAGE's (and the sensor depth's), as π0 takes several views. () = one camera.
    extra_images: tuple = ()
    # The image encoder: '' = the VLM's vision tower; 'keypoints' = a small CNN + spatial softmax
    # trained from scratch (models/keypoints.py), `keypoints` tokens per camera, for tens of
    # demos on a CPU. The language model, expert and mask stay the preset's.
    vision: str = ''
    keypoints: int = 32
    state_dim: int = 7
    # Object poses appended to the state (perception/env_state.py; vla-train --env-state); 0 =
    # none. The flow head reads [state | environment state].
    env_state_dim: int = 0
    # The object poses predicted from the primary camera instead of read from pose_node: the
    # dataset's OBS_ENV_STATE supervises models/keypoints.PoseEstimator (its own keypoint
    # trunk, whatever the policy's vision; `env_state_weight` x its MSE) and the flow head
    # reads the prediction; in
    # training it reads the demonstrated poses plus `env_state_noise` (normalized units), so
    # that it learns to act on poses while the readout learns them. At run time: cameras only.
    env_state_from_image: bool = False
    # The policy's image group sees a blank frame (the camera's pixels are zeroed before its
    # encoder): with env_state_from_image the camera then reaches the action expert only
    # through the predicted poses, as pose_node's reach tiny_pi0_baseline+env, whose 56 px
    # whole-frame tokens say little. π0's structure and token count are unchanged.
    blank_policy_image: bool = False
    env_state_noise: float = 0.05
    env_state_weight: float = 1.0
    action_dim: int = 7
    horizon: int = 16  # H: chunk length (16 on Piper in QDepth-VLA and DepthVLA)
    # Spatial modules (spatial_streams.py); the defaults are tiny twins, used only when named.
    spatial: str = ''  # '' | 'qdepth' | 'depthvla' | 'spatial_forcing' | 'pose_vla'
    spatial_path: str = ''  # local weights: a trained VQ-VAE (qdepth), DINOv2 / DAv2 (depthvla)
    qdepth: QDepthConfig = field(default_factory=lambda: replace(TINY_QDEPTH, n_head=4))
    vqvae: DepthVQVAEConfig = TINY_VQVAE
    depthvla: DepthVLAConfig = field(default_factory=lambda: replace(TINY_DEPTHVLA, n_head=4))
    sf: SpatialForcingConfig = field(default_factory=lambda: replace(
        TINY_SF, student_width=64, align_layer=1))
    pose: PoseVLAConfig = PoseVLAConfig()  # pose_vla: priors, pose vocabulary, NTP weight

    @property
    def needs_depth(self):
        """Training batches need OBS_DEPTH (sensor tokens or a depth-supervised stream)."""
        return self.sensor_depth or self.spatial in spatial_streams.NEEDS_DEPTH

    @property
    def reads_env_state(self):
        """Observations must carry OBS_ENV_STATE (pose_node's poses), not predicted here."""
        return self.env_state_dim > 0 and not self.env_state_from_image


class VLAModel(nn.Module):
    """Backbone + optional sensor-depth encoder + head; batches are dicts of contract keys."""

    def __init__(self, config, load_backbone=True):
        """Build the model.

        Args:
            config: a VLAConfig.
            load_backbone: read the backbone's weights from its `pretrained` directory.
        """
        super().__init__()
        self.config = config = spatial_streams.resolve(config)
        self.backbone = build_backbone(config.backbone, load_weights=load_backbone)
        width = self.backbone.width
        self.keypoints, self._keypoint_state = None, None
        if config.vision == 'keypoints':
            from vla_nodes.models.keypoints import KeypointEncoder
            self.keypoints = KeypointEncoder(width, config.keypoints)
            for p in self.backbone.model.parameters():  # the tower is not used: no gradients
                p.requires_grad_(False)
            for p in self.backbone.language_model.parameters():
                p.requires_grad_(True)
        elif config.vision:
            raise ValueError(f"vision must be '' (the VLM's tower) or 'keypoints', got "
                             f'{config.vision!r}')
        self.env_readout, self._env_prediction = None, None
        if config.env_state_from_image:
            if config.head != 'flow' or not config.env_state_dim:
                raise ValueError('env_state_from_image needs the flow head and env_state_dim > 0 '
                                 '(the poses it predicts)')
            from vla_nodes.models.keypoints import PoseEstimator
            self.env_readout = PoseEstimator(config.env_state_dim, config.keypoints)
        self.depth = None
        if config.sensor_depth:
            self.depth = DepthEncoder(width, config.image_size, config.depth_patch,
                                      config.max_depth_m)
        if config.head == 'flow':
            if config.mask not in MASKS:
                raise ValueError(f'unknown mask {config.mask!r}; known: {sorted(MASKS)}')
            _check_shared_attention(self.backbone, config.expert)
            keypoint_state = 2 * config.keypoints if config.vision == 'keypoints' else 0
            self.head = FlowHead(config.flow, config.expert,
                                 config.state_dim + config.env_state_dim + keypoint_state,
                                 config.action_dim, config.horizon)
            for p in unused_vlm_parameters(self.backbone):
                p.requires_grad_(False)
        elif config.head == 'query':
            if config.env_state_dim:
                raise ValueError('the query head reads no state: env_state_dim needs the flow '
                                 'head')
            self.head = QueryHead(config.query, width, config.horizon, config.action_dim)
        else:
            raise ValueError(f"head must be 'flow' or 'query', got {config.head!r}")
        self.spatial = spatial_streams.build_adapter(config, self.backbone, load_backbone)
        if self.keypoints is not None and self.spatial is not None and (
                self.spatial.needs_vision_features or 'image' in self.spatial.capture):
            raise ValueError(f'{config.spatial} reads the vision tower; it cannot take '
                             "vision='keypoints'")
        if self.spatial is not None and self.spatial.expert is not None:
            _check_shared_attention(self.backbone, self.spatial.expert.config)

    def mot(self):
        """The mixture of this model's experts under its mask."""
        stacks = {'vlm': self.backbone.stack()}
        if self.config.head == 'query':
            return MoT(stacks, self.head.table)
        stacks['action'] = self.head.expert.stack()
        if self.spatial is not None and self.spatial.expert is not None:
            stacks['depth'] = self.spatial.expert.stack()
        return MoT(stacks, MASKS[self.config.mask])

    def prefix(self, batch):
        """The observation groups: image (+ sensor depth), text (+ a spatial group), as Tokens."""
        device = self.head_device()
        images = batch[OBS_IMAGE].to(device)
        if self.env_readout is not None:  # its own trunk, whatever the policy's encoder
            self._env_prediction = self.env_readout(
                batch.get(UNSHIFTED_IMAGE, batch[OBS_IMAGE]).to(device))
        if self.config.blank_policy_image:
            images = torch.zeros_like(images)
        features = None
        if self.spatial is not None and self.spatial.needs_vision_features:
            features = self.backbone.vision_features(images)  # (B, Ni, Dv)
            if hasattr(self.spatial, 'fuse'):  # Pose-VLA's geometric priors
                features = self.spatial.fuse(batch, features)
            image = self.backbone.project(features)
        elif self.keypoints is not None:
            points = self.keypoints.points(images)  # (B, K, 2)
            # Read by state(), which losses and sample_actions call right after prefix().
            self._keypoint_state = points.flatten(1)
            image = self.keypoints.tokens(points)
        else:
            image = self.embed_images(images)  # (B, Ni, D)
        text, mask = self.backbone.embed_text(list(batch[OBS_INSTRUCTION]), device)
        if self.depth is not None:
            depth = self.depth(batch[OBS_DEPTH].to(device))  # (B, Nd, D)
            image = torch.cat([image, depth.to(image.dtype)], 1)
        # After the primary camera's tokens, so that spatial modules reading those (Spatial
        # Forcing aligns image tokens from position 0) see the same positions as with one camera.
        for key in self.config.extra_images:
            more = self.embed_images(batch[key].to(device))  # (B, Ni, D)
            image = torch.cat([image, more.to(image.dtype)], 1)
        causal = getattr(self.head, 'causal', ())
        tokens = (Tokens()
                  .add(Group('image', 'vlm', causal='image' in causal), image)
                  .add(Group('text', 'vlm', causal='text' in causal), text.to(image.dtype),
                       mask))
        if self.spatial is not None and self.spatial.group is not None:
            tokens = tokens.add(self.spatial.group, self.spatial.embed(batch, features))
        return tokens

    def head_device(self):
        return next(self.head.parameters()).device

    def embed_images(self, images):
        """Image tokens # (B, Ni, D) of one camera: the vision tower's, or keypoints."""
        if self.keypoints is not None:
            return self.keypoints(images)
        return self.backbone.embed_images(images)

    def state(self, batch):
        """The flow head's state input.

        OBS_STATE, then OBS_ENV_STATE when the model takes it, then the primary camera's
        keypoints (vision 'keypoints').
        """
        device = self.head_device()
        state = batch[OBS_STATE].to(device)
        if self.config.env_state_dim:
            state = torch.cat([state, self._env_state(batch).to(device, state.dtype)], -1)
        if self.keypoints is not None:  # the primary camera's, from prefix()
            state = torch.cat([state, self._keypoint_state.to(state.dtype)], -1)
        return state

    def _env_state(self, batch):
        """The object poses the flow head reads: the input's, or predicted from the image."""
        if self.env_readout is None:
            return batch[OBS_ENV_STATE]
        if self.training and OBS_ENV_STATE in batch:  # teacher forcing, noised
            truth = torch.nan_to_num(batch[OBS_ENV_STATE].to(self._env_prediction))
            return truth + self.config.env_state_noise * torch.randn_like(truth)
        return self._env_prediction

    def env_state_loss(self, batch):
        """MSE of the predicted object poses against OBS_ENV_STATE's finite values (normalized)."""
        return _seen_mse(self._env_prediction, batch[OBS_ENV_STATE])

    def snapshot_loss(self, batch):
        """The PoseEstimator's MSE on the batch's pose snapshots (normalized), finite labels."""
        images = batch[SNAPSHOT_IMAGE].to(self.head_device())  # (B, k, S, S, 3)
        predicted = self.env_readout(images.flatten(0, 1))  # (B k, E)
        return _seen_mse(predicted, batch[SNAPSHOT_ENV_STATE].flatten(0, 1))

    def losses(self, batch, generator=None, noise=None, time=None, step=0):
        """Training losses: {'loss': scalar with gradients, other terms detached}.

        Args:
            batch: the module docstring's keys.
            generator: torch.Generator for the flow noise and times.
            noise: the flow noise # (B, H, A), if drawn by the caller.
            time: the flow times # (B,), if drawn by the caller.
            step: the optimizer step (QDepth-VLA's depth-loss weight decays with it).
        """
        prefix = self.prefix(batch)
        device = self.head_device()
        actions = batch[ACTION].to(device)
        pad = batch.get(ACTION_PAD)
        valid = None if pad is None else ~pad.to(device)
        scale = batch.get(ACTION_LOSS_SCALE, 1.0)
        if self.config.head == 'query':
            terms = self.head.losses(self.mot(), prefix, actions, valid)
            terms['loss'] = terms['loss'] * scale
            return terms
        spatial = self.spatial
        terms = self.head.losses(
            self.mot(), prefix, self.state(batch), actions, generator, noise, time,
            valid, outputs=spatial.outputs if spatial else (),
            capture=spatial.capture if spatial else ())
        terms['loss'] = terms['loss'] * scale
        if self.env_readout is not None and OBS_ENV_STATE in batch:
            pose = self.env_state_loss(batch)
            terms['env_pose'] = pose.detach()
            terms['loss'] = terms['loss'] + self.config.env_state_weight * pose * scale
        if self.env_readout is not None and SNAPSHOT_IMAGE in batch:
            pose = self.snapshot_loss(batch)
            terms['snapshot_pose'] = pose.detach()
            terms['loss'] = terms['loss'] + self.config.env_state_weight * pose
        outputs = terms.pop('outputs')
        if spatial is not None:
            more = ({'prefix': prefix, 'backbone': self.backbone}
                    if getattr(spatial, 'needs_prefix', False) else {})
            extra = spatial.loss(outputs, batch, step, **more)
            terms['loss'] = terms['loss'] + extra.pop('loss')
            terms.update(extra)
        return terms

    def loss(self, batch, generator=None):
        """The scalar training loss."""
        return self.losses(batch, generator)['loss']

    def forward(self, batch, generator=None, noise=None, time=None, step=0):
        """Same as `losses` (what DDP wraps)."""
        return self.losses(batch, generator, noise, time, step)

    @torch.no_grad()
    def sample_actions(self, batch, generator=None, num_steps=None, use_cache=True):
        """A normalized action chunk # (B, H, A); same generator state, same chunk.

        Args:
            batch: observation dict (module docstring).
            generator: torch.Generator for the flow noise (the query head is deterministic).
            num_steps: Euler steps (flow head).
            use_cache: reuse the prefix keys/values across denoising steps (flow head).
        """
        prefix = self.prefix(batch)
        if self.config.head == 'query':
            return self.head.sample(self.mot(), prefix)
        state = self.state(batch)
        return self.head.sample(self.mot(), prefix, state, generator, num_steps, use_cache)

    def save_pretrained(self, directory):
        """Write config.json and model.safetensors into `directory` (created if needed)."""
        from safetensors.torch import save_model

        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + '\n')
        save_model(self, str(path / WEIGHTS_FILE))

    @classmethod
    def from_pretrained(cls, directory, device='cpu'):
        """Load a model saved by `save_pretrained` from a local directory (never downloads).

        Raises:
            FileNotFoundError: the directory or one of its two files is missing.
            ValueError: config.json holds fields this VLAConfig does not know.
        """
        from safetensors.torch import load_model

        path = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (path / name).is_file():
                raise FileNotFoundError(
                    f'VLA checkpoint directory {str(path)!r} has no {name} '
                    f'(expected {CONFIG_FILE} and {WEIGHTS_FILE}, written by save_pretrained)')
        config = config_from_dict(json.loads((path / CONFIG_FILE).read_text()))
        model = cls(config, load_backbone=False)
        load_model(model, str(path / WEIGHTS_FILE), device=str(device))
        return model.to(device).eval()


def unused_vlm_parameters(backbone):
    """The VLM weights an action expert never uses: the last layer after its keys/values.

    Under π0's mask nothing reads the VLM tokens' outputs, so the last layer's o_proj, MLP and
    post-attention norm and the final norm get no gradient (open-pi-zero freezes them too;
    leaving them trainable would make DDP wait for gradients that never come).
    """
    lm = backbone.language_model
    last = lm.layers[-1]
    modules = (last.self_attn.o_proj, last.mlp, last.post_attention_layernorm, lm.norm)
    return [p for m in modules for p in m.parameters()]


def _seen_mse(predicted, target):
    """Mean squared error over the target's finite entries (0, with gradients, when none)."""
    target = target.to(predicted)
    error = (predicted - torch.nan_to_num(target))[torch.isfinite(target)]
    return (error ** 2).mean() if error.numel() else predicted.sum() * 0.0


def _check_shared_attention(backbone, expert):
    """Shared attention concatenates keys: heads, KV heads, head size and depth must agree."""
    lm = backbone.text_config
    vlm = {'num_layers': lm.num_hidden_layers, 'num_heads': lm.num_attention_heads,
           'num_kv_heads': lm.num_key_value_heads,
           'head_dim': getattr(lm, 'head_dim', None) or lm.hidden_size // lm.num_attention_heads}
    wrong = {k: (getattr(expert, k), v) for k, v in vlm.items() if getattr(expert, k) != v}
    if wrong:
        raise ValueError('the action expert must match the VLM for shared attention: ' + ', '.join(
            f'{k} is {mine} but the VLM has {theirs}' for k, (mine, theirs) in wrong.items()))


def config_from_dict(values, cls=VLAConfig):
    """A (nested) config dataclass from a dict, refusing unknown fields by name."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f'unknown {cls.__name__} fields in {CONFIG_FILE}: {unknown}')
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name) if name in _NESTED.get(cls, ()) else None
        if is_dataclass(default) and isinstance(value, dict):
            value = config_from_dict(value, type(default))
        elif isinstance(value, list) and name != 'hf_config':
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


_NESTED = {VLAConfig: ('backbone', 'expert', 'flow', 'query', 'qdepth', 'vqvae', 'depthvla',
                       'sf', 'pose')}
