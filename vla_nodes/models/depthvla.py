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

"""DepthVLA's depth expert: DINOv2 encoder -> decoder in shared attention -> linear depth head.

Yuan, Liu, Lu, Chen, Jiang, Zhao, "DepthVLA: Enhancing Vision-Language-Action Models with
Depth-Aware Spatial Reasoning"; spec: research/seeds-qdepth-depthvla.md, part B.
Tags: [P] the paper, [A] our default where the paper is silent.

Where it fits: a third stream of the core's mixture of transformers (models/mot.py):
    RGB # (B, S, S, 3) -> DINOv2 (Depth Anything V2 init) -> Linear -> DepthVLAStream.embed
      # (B, N, D) the `depth` group's input tokens
    -> the core's depth stream (Gemma-300M shape, 18 layers) under DEPTHVLA_BLOCKWISE
    -> DepthVLAStream.loss(hidden, depth)  # SILog (λ = 0.5) on the linear head's log-depth
    total loss = L_si + L_flow (unit weights) [P]
Because VLM and depth tokens attend only to themselves, the depth expert runs alone in the
pre-training stage (`depth_pretrain_loss`, 50k steps, batch 1024, lr 5e-5 cosine [P]) and plugs
into the VLA unchanged. The encoder is 24 layers and cannot share attention layer by layer with
the 18-layer VLM, so it runs before the mixture, like SigLIP before Gemma [A].

Defaults: ViT-L/14 encoder (1024 wide, 24 layers, 16 heads) [P], 224 x 224 input -> 16 x 16 = 256
tokens, ImageNet mean/std, patch tokens only (CLS dropped), Linear(1024 -> 1024) projection, a
per-token Linear(D -> 14·14) head predicting log-depth, SILog per image over valid pixels then
averaged over the batch [A]. Weights are never downloaded: `load_encoder(path)` reads a local
Dinov2Model or DepthAnythingForDepthEstimation directory.
"""

from dataclasses import dataclass, field, replace
import json
import math
from pathlib import Path
from types import MappingProxyType

import torch
from torch import nn
from torch.nn import functional

# Block-wise mask (Fig. 2 right): query group -> key groups it attends to, bidirectional inside a
# group. "Tokens from the VLM and depth experts attend only to themselves, while action tokens can
# attend to all streams" [P]; the state token sees VLM, depth and itself [A, as π0's state row].
DEPTHVLA_BLOCKWISE = MappingProxyType({
    'image': ('image', 'text'),
    'text': ('image', 'text'),
    'depth': ('depth',),
    'state': ('image', 'text', 'depth', 'state'),
    'action': ('image', 'text', 'depth', 'state', 'action'),
})
# Ablation (iv): VLM <-> depth mutual attention.
DEPTHVLA_VLM_DEPTH_MUTUAL = MappingProxyType({
    **DEPTHVLA_BLOCKWISE,
    'image': ('image', 'text', 'depth'),
    'text': ('image', 'text', 'depth'),
    'depth': ('image', 'text', 'depth'),
})

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DepthVLAConfig:
    """The depth expert's sizes and loss; defaults are the paper's model."""

    image_size: int = 224  # S: encoder input side [A]
    patch_size: int = 14  # p: DINOv2 patches, also the depth head's unpatchify size
    encoder_width: int = 1024  # DINOv2-L (Depth Anything V2 encoder) [P]
    encoder_layers: int = 24
    encoder_heads: int = 16
    width: int = 1024  # D: decoder stream width, "matched in size to the action expert" [P]
    n_layer: int = 18  # decoder layers: must equal the VLM's for shared attention [A]
    n_head: int = 8
    mlp_dim: int = 4096
    silog_lambda: float = 0.5  # λ of the scale term [P]
    loss_weight: float = 1.0  # L = L_si + L_flow [P]; 0 is ablation (ii)
    # The Dinov2Config of an encoder read from a directory (resolve_encoder), so a checkpoint
    # rebuilds that very encoder (e.g. Depth Anything V2's, native image_size 518); {} = built
    # from the fields above.
    encoder_config: dict = field(default_factory=dict)

    @property
    def grid(self):
        """Tokens per side: S / p (16 for 224 / 14)."""
        return self.image_size // self.patch_size


TINY_DEPTHVLA = DepthVLAConfig(image_size=28, encoder_width=32, encoder_layers=2, encoder_heads=2,
                               width=32, n_layer=2, n_head=2, mlp_dim=64)


def dinov2_config(config):
    """The transformers Dinov2Config of the encoder (random init)."""
    from transformers import Dinov2Config

    if config.encoder_config:
        return Dinov2Config(**config.encoder_config)
    return Dinov2Config(
        hidden_size=config.encoder_width, num_hidden_layers=config.encoder_layers,
        num_attention_heads=config.encoder_heads, image_size=config.image_size,
        patch_size=config.patch_size)


def resolve_encoder(config, path):
    """`config` with `encoder_config` read from the encoder directory `path` (no weights read).

    Dinov2's position embeddings are sized by the encoder's own image_size (Depth Anything V2:
    518) and interpolated to config.image_size at run time, so a reload must build the encoder
    from its config, not from config.image_size.
    """
    from transformers import DepthAnythingConfig, Dinov2Config

    values = _encoder_json(path)
    if values.get('model_type') == 'depth_anything':
        encoder = DepthAnythingConfig(**_config_kwargs(values)).backbone_config
    else:
        encoder = Dinov2Config(**_config_kwargs(values))
    # Only what differs from Dinov2Config's defaults, as JSON has it: equal after a round trip.
    diff = json.loads(encoder.to_json_string(use_diff=True))
    return replace(config, encoder_config=_config_kwargs(diff))


def _config_kwargs(values):
    """A transformers config dict without the fields that are not constructor arguments."""
    dropped = ('model_type', 'architectures', 'transformers_version')
    return {k: v for k, v in values.items() if k not in dropped}


def _encoder_json(path):
    config_file = Path(path) / 'config.json'
    if not config_file.is_file():
        raise FileNotFoundError(f'{str(path)!r} has no config.json: point at a local '
                                'save_pretrained directory of DINOv2 or Depth Anything V2')
    values = json.loads(config_file.read_text())
    if values.get('model_type') not in ('dinov2', 'depth_anything'):
        raise ValueError(f'{str(path)!r} holds a {values.get("model_type")!r} model; the '
                         "DepthVLA encoder needs 'dinov2' or 'depth_anything'")
    return values


def load_encoder(path):
    """A Dinov2Model from a local directory: DINOv2 itself or Depth Anything (V2)'s backbone.

    Depth Anything keeps its encoder as `backbone` (a Dinov2Backbone whose parameter names equal
    Dinov2Model's), so its weights are copied over unchanged. Never downloads.

    Raises:
        FileNotFoundError: no config.json in `path`.
        ValueError: the directory holds another kind of model.
    """
    from transformers import DepthAnythingForDepthEstimation, Dinov2Model

    if _encoder_json(path)['model_type'] == 'dinov2':
        return Dinov2Model.from_pretrained(str(path), local_files_only=True)
    full = DepthAnythingForDepthEstimation.from_pretrained(str(path), local_files_only=True)
    encoder = Dinov2Model(full.config.backbone_config)
    encoder.load_state_dict(full.backbone.state_dict())
    return encoder


def silog_loss(pred_log_depth, gt_depth, valid=None, lam=0.5, eps=1e-6):
    """Scale-invariant log loss (Eigen et al., 2014), as DepthVLA writes it.

    L = sqrt(mean(y²) − λ · mean(y)²), y = log d̂ − log d over the valid pixels of each image,
    then the mean over images that have any valid pixel. With λ = 1 it ignores a global scale of
    d̂; with λ = 0.5 a pure scale error e^a costs |a| / √2.

    Args:
        pred_log_depth: predicted log-depth (log metres). # (B, H, W)
        gt_depth: ground-truth depth in metres; NaN / Inf / <= 0 invalid. # (B, H, W)
        valid: optional extra validity mask. # (B, H, W) bool
        lam: λ in [0, 1].
        eps: below this variance the square root turns linear, so the gradient stays finite.

    Returns:
        The scalar loss (0 when no pixel is valid).
    """
    if pred_log_depth.shape != gt_depth.shape:
        raise ValueError(f'prediction {tuple(pred_log_depth.shape)} and ground truth '
                         f'{tuple(gt_depth.shape)} differ; resize the depth with resize_depth')
    ok = torch.isfinite(gt_depth) & (gt_depth > 0)
    if valid is not None:
        ok = ok & valid
    log_gt = torch.log(torch.where(ok, gt_depth, torch.ones_like(gt_depth)))
    y = torch.where(ok, pred_log_depth - log_gt, torch.zeros_like(pred_log_depth))  # (B, H, W)
    n = ok.flatten(1).sum(-1)  # (B,)
    has = n > 0
    mean_y = y.flatten(1).sum(-1) / n.clamp_min(1)  # (B,)
    mean_y2 = y.pow(2).flatten(1).sum(-1) / n.clamp_min(1)
    var = (mean_y2 - lam * mean_y.pow(2)).clamp_min(0.0)  # (B,), >= 0 for λ <= 1
    per_image = torch.where(var > eps, var.clamp_min(eps).sqrt(), var / math.sqrt(eps))
    if not bool(has.any()):
        return pred_log_depth.sum() * 0.0
    return per_image[has].mean()


def resize_depth(depth, size):
    """Nearest-neighbour resize that keeps invalid pixels invalid: (B, H, W) -> (B, size, size)."""
    return functional.interpolate(depth[:, None].float(), size=(size, size), mode='nearest')[:, 0]


class DepthVLAStream(nn.Module):
    """The depth expert's ends: DINOv2 + projection (token producer), linear depth head (consumer).

    The decoder between them is the core's `depth` stream in the VLA; `depth_pretrain_loss` takes
    it (or any (B, N, D) -> (B, N, D) module) for the stand-alone stage.
    """

    def __init__(self, config=DepthVLAConfig(), encoder=None):
        super().__init__()
        from transformers import Dinov2Model

        self.config = config
        self.encoder = encoder if encoder is not None else Dinov2Model(dinov2_config(config))
        got = (self.encoder.config.hidden_size, self.encoder.config.patch_size)
        if got != (config.encoder_width, config.patch_size):
            raise ValueError(f'encoder has (width, patch) {got}, config says '
                             f'{(config.encoder_width, config.patch_size)}; make them agree')
        self.proj = nn.Linear(config.encoder_width, config.width)  # [A]
        self.head = nn.Linear(config.width, config.patch_size ** 2)  # "a linear head" [P]
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    @classmethod
    def from_pretrained_encoder(cls, config, path):
        """The stream with its encoder read from a local DINOv2 / Depth Anything directory."""
        return cls(config, load_encoder(path))

    def embed(self, image):
        """RGB -> depth-stream input tokens.

        Args:
            image: RGB 0..255, channels last, any size (resized to S). # (B, H, W, 3)

        Returns:
            Tokens, row-major over the (S/p)² patches. # (B, N, D)
        """
        s = self.config.image_size
        x = image.permute(0, 3, 1, 2).float() / 255.0  # (B, 3, H, W) in [0, 1]
        if x.shape[-2:] != (s, s):
            x = functional.interpolate(x, size=(s, s), mode='bilinear', antialias=True,
                                       align_corners=False)
        x = (x - self.mean) / self.std
        tokens = self.encoder(pixel_values=x).last_hidden_state[:, 1:]  # (B, N, Dw), no CLS
        return self.proj(tokens)

    def log_depth(self, hidden):
        """Depth-stream output # (B, N, D) -> predicted log-depth (log m) # (B, S, S)."""
        b, n, _ = hidden.shape
        g, p = self.config.grid, self.config.patch_size
        if n != g * g:
            raise ValueError(f'the depth stream must carry {g}x{g} = {g * g} tokens, got {n}')
        patches = self.head(hidden).view(b, g, g, p, p)  # (B, gy, gx, py, px)
        return patches.permute(0, 1, 3, 2, 4).reshape(b, g * p, g * p)

    def loss(self, hidden, depth):
        """L_si of the head's prediction against metric depth # (B, H, W) (NaN invalid)."""
        pred = self.log_depth(hidden)
        return silog_loss(pred, resize_depth(depth, pred.shape[-1]), lam=self.config.silog_lambda)

    def freeze(self):
        """Ablation (iii): no gradient into the encoder, projection or head."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self


class StandaloneDecoder(nn.Module):
    """Bidirectional pre-norm transformer over depth tokens only, shaped like the config's stream.

    For tests and benchmarks of the objective only: its weights do not map onto the VLA's
    depth stream. To pre-train the weights the VLA uses, use the VLA's depth stream
    (spatial_streams.DepthVLAAdapter.decode / pretrain_loss).
    """

    def __init__(self, config=DepthVLAConfig()):
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            config.width, config.n_head, config.mlp_dim, dropout=0.0, activation='gelu',
            batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, config.n_layer, enable_nested_tensor=False)
        self.ln_f = nn.LayerNorm(config.width)

    def forward(self, tokens):
        """(B, N, D) -> (B, N, D)."""
        return self.ln_f(self.blocks(tokens))


def depth_pretrain_loss(stream, decoder, image, depth):
    """The depth pre-training objective: monocular depth from RGB alone, SILog (section 3.2).

    Args:
        stream: the DepthVLAStream.
        decoder: the depth stream's transformer, (B, N, D) -> (B, N, D).
        image: RGB 0..255, channels last. # (B, H, W, 3)
        depth: metric depth in metres, NaN / <= 0 invalid. # (B, H', W')

    Returns:
        The scalar L_si.
    """
    return stream.loss(decoder(stream.embed(image)), depth)
