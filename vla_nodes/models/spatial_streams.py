"""The spatial papers' modules wired into the π0 mixture: extra groups, experts and losses.

vla.py composes a VLM and the π0 action expert; a spatial adapter adds what one paper adds,
using the paper's own module (qdepth.py, depthvla.py, spatial_forcing.py):
- 'qdepth' (QDepth-VLA, Li et al., 2026): a 'depth' group whose tokens are SigLIP's patch
  tokens before the projector, passed through QDepthStream's MLP, processed by a depth expert
  (Gemma-300M shape at full size) under the hybrid mask; loss λ_t · CE over the frozen VQ-VAE
  codebook of the sensor depth's codes, λ_t = 0.01 · γ^step (eq. 8).
- 'depthvla' (DepthVLA, Yuan et al., 2025): a 'depth' group from a DINOv2 encoder, a decoder
  stream of the action expert's size under the block-wise mask; loss SILog(λ = 0.5) of the linear
  head's log-depth against the sensor's metric depth, weight 1.
- 'spatial_forcing' (Spatial Forcing, Li et al., 2025): no group; the image tokens' residual
  stream after VLM layer L is projected and aligned (cosine) to a frozen 3D teacher's features,
  which the batch carries (`SF_TARGET`; vla-train computes them with the teacher), weight α = 0.5.
Depth tokens use their own RoPE stream (positions from 0, as in DepthVLA's stand-alone
pre-training [A]). Depth is needed for training only: at inference the depth stream runs from
RGB and is cached with the prefix, as the papers deploy.

Adapter interface (what vla.py calls): `group` (a mot.Group or None), `expert` (an ExpertStack
or None), `needs_vision_features`, `outputs` and `capture` (mixture results the loss reads),
`embed(batch, vision_features) -> (B, N, D_e)` and `loss(outputs, batch, step) -> dict`.
"""

from dataclasses import replace

import torch
from torch import nn

from vla_nodes.contract import OBS_DEPTH, OBS_IMAGE
from vla_nodes.models import depthvla, qdepth, spatial_forcing
from vla_nodes.models.mot import ExpertConfig, ExpertStack, Group

SF_TARGET = 'spatial_forcing.target'  # batch key: teacher targets # (B, N_image, C)
DEPTH = Group('depth', 'depth', stream='depth')

# Attention tables by name, for VLAConfig.mask.
MASKS = {
    'qdepth_hybrid': qdepth.QDEPTH_HYBRID,
    'qdepth_dreamvla': qdepth.QDEPTH_DREAMVLA,
    'depthvla_blockwise': depthvla.DEPTHVLA_BLOCKWISE,
    'depthvla_vlm_depth_mutual': depthvla.DEPTHVLA_VLM_DEPTH_MUTUAL,
}
NEEDS_DEPTH = ('qdepth', 'depthvla')  # spatial modes whose training batches need OBS_DEPTH


def stream_shape(width, mlp_dim, num_layers, num_heads, text_config):
    """ExpertConfig of a depth stream: its own width/MLP, the VLM's attention layout."""
    head_dim = getattr(text_config, 'head_dim', None) or (
        text_config.hidden_size // text_config.num_attention_heads)
    return ExpertConfig(width=width, mlp_dim=mlp_dim, num_layers=num_layers,
                        num_heads=num_heads, num_kv_heads=text_config.num_key_value_heads,
                        head_dim=head_dim)


class QDepthAdapter(nn.Module):
    """QDepth-VLA: SigLIP tokens -> depth expert -> codebook CE with a decaying weight."""

    group, needs_vision_features, outputs, capture = DEPTH, True, ('depth',), ()

    def __init__(self, config, backbone, load_weights=True):
        super().__init__()
        if not hasattr(backbone, 'vision_features'):
            raise ValueError(f'QDepth-VLA reads SigLIP tokens before the projector; the '
                             f'{config.backbone.family!r} backbone has none (use paligemma)')
        c = config.qdepth
        vq = qdepth.DepthVQVAE(config.vqvae)
        if config.spatial_path and load_weights:
            vq = qdepth.DepthVQVAE.from_pretrained(config.spatial_path)
            if vq.config != config.vqvae:
                raise ValueError(f'the depth tokenizer in {config.spatial_path!r} has '
                                 f'{vq.config}; set VLAConfig.vqvae to it')
        self.vqvae = vq.requires_grad_(False)  # frozen [P]; it gives the target codes
        self.stream = qdepth.QDepthStream.from_vqvae(c, vq)
        self.expert = ExpertStack(stream_shape(c.width, c.mlp_dim, c.n_layer, c.n_head,
                                               backbone.text_config))

    def embed(self, batch, vision_features):
        return self.stream.embed(vision_features)  # (B, g * g, D_e)

    def loss(self, outputs, batch, step):
        with torch.no_grad():
            self.vqvae.eval()
            codes = self.vqvae.tokenize(batch[OBS_DEPTH].to(outputs['depth'].device))
        ce = self.stream.loss(outputs['depth'].float(), codes)
        weight = self.stream.weight(step)
        return {'loss': weight * ce, 'depth_ce': ce.detach(),
                'depth_weight': torch.tensor(weight)}


class DepthVLAAdapter(nn.Module):
    """DepthVLA: DINOv2 -> depth decoder stream -> linear log-depth head, SILog."""

    group, needs_vision_features, outputs, capture = DEPTH, False, ('depth',), ()

    def __init__(self, config, backbone, load_weights=True):
        super().__init__()
        c = config.depthvla
        encoder = None
        if config.spatial_path and load_weights:
            encoder = depthvla.load_encoder(config.spatial_path)  # DINOv2 / Depth Anything V2
        self.stream = depthvla.DepthVLAStream(c, encoder)
        # DINOv2's mask token serves masked-image pre-training only: no gradient ever reaches it.
        self.stream.encoder.embeddings.mask_token.requires_grad_(False)
        self.expert = ExpertStack(stream_shape(c.width, c.mlp_dim, c.n_layer, c.n_head,
                                               backbone.text_config))

    def embed(self, batch, vision_features):
        return self.stream.embed(batch[OBS_IMAGE].to(self.stream.proj.weight.device))

    def loss(self, outputs, batch, step):
        depth = batch[OBS_DEPTH].to(outputs['depth'].device)
        si = self.stream.loss(outputs['depth'].float(), depth)
        return {'loss': self.stream.config.loss_weight * si, 'silog': si.detach()}


class SpatialForcingAdapter(nn.Module):
    """Spatial Forcing: align VLM layer L's image tokens to the teacher targets in the batch."""

    group, expert, needs_vision_features, outputs, capture = None, None, False, (), ('image',)

    def __init__(self, config, backbone, load_weights=True):
        super().__init__()
        c = config.sf
        if c.student_width != backbone.width:
            c = replace(c, student_width=backbone.width)
        self.align = spatial_forcing.SpatialForcing(c)

    def embed(self, batch, vision_features):
        return None

    def loss(self, outputs, batch, step):
        if SF_TARGET not in batch:
            raise KeyError(f'Spatial Forcing needs teacher targets in the batch under '
                           f'{SF_TARGET!r} (vla-train computes them: --teacher DIR)')
        states = outputs['image.layers']
        target = batch[SF_TARGET].to(states[0].device)
        align = self.align.loss(states, target, start=0)
        return {'loss': self.align.config.alpha * align, 'align': align.detach()}


ADAPTERS = {
    'qdepth': QDepthAdapter,
    'depthvla': DepthVLAAdapter,
    'spatial_forcing': SpatialForcingAdapter,
}


def build_adapter(config, backbone, load_weights=True):
    """The adapter of `config.spatial`, or None.

    Raises:
        ValueError: an unknown name, or a head other than the flow head.
    """
    if not config.spatial:
        return None
    if config.spatial not in ADAPTERS:
        raise ValueError(f'unknown spatial module {config.spatial!r}; known: {sorted(ADAPTERS)}')
    if config.head != 'flow':
        raise ValueError('the spatial modules extend the π0 flow head; use head="flow"')
    return ADAPTERS[config.spatial](config, backbone, load_weights)


def build_teacher(config, path='', allow_random=False):
    """Spatial Forcing's frozen teacher for a VLAConfig, or None for other configs.

    Args:
        config: the VLAConfig.
        path: a local DINOv2 save_pretrained directory.
        allow_random: without `path`, build a random tiny DINOv2 (tiny presets, tests: its
            targets carry no 3D knowledge, but the whole path runs).

    Raises:
        ValueError: spatial_forcing without a teacher directory.
    """
    if config.spatial != 'spatial_forcing':
        return None
    size = config.image_size // 14 * 14
    if path:
        return spatial_forcing.DinoV2Teacher.from_pretrained(path, image_size=size)
    if not allow_random:
        raise ValueError('spatial_forcing needs its 3D teacher: pass --teacher DIR (a local '
                         'DINOv2 save_pretrained directory; VGGT is not installed here)')
    from transformers import Dinov2Config, Dinov2Model
    width = config.sf.teacher_width
    model = Dinov2Model(Dinov2Config(hidden_size=width, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=2 * width,
                                     image_size=size, patch_size=14))
    return spatial_forcing.DinoV2Teacher(model, image_size=size)


def add_teacher_targets(batch, teacher, model):
    """The batch with Spatial Forcing's targets for its images under SF_TARGET (if a teacher)."""
    if teacher is None:
        return batch
    device = next(teacher.parameters()).device
    images = batch[OBS_IMAGE].to(device)
    with torch.no_grad():
        n = model.backbone.embed_images(images[:1].to(model.head_device())).shape[1]
        target = teacher_targets(teacher, images, int(round(n ** 0.5)), model.config.sf.pe_ratio)
    return {**batch, SF_TARGET: target}


def teacher_targets(teacher, images, grid, pe_ratio):
    """Spatial Forcing targets on the VLM's image-token grid.

    Args:
        teacher: a frozen teacher (spatial_forcing.DinoV2Teacher): images -> patch features.
        images: RGB 0..255 as the VLM sees them. # (B, S, S, 3)
        grid: VLM image tokens per side.
        pe_ratio: scale of the teacher's positional embedding (0.1).

    Returns:
        Targets. # (B, grid * grid, C)
    """
    features, hw = teacher(images[:, None])  # (B, 1, h * w, C)
    return spatial_forcing.target_tokens(features, hw, (grid, grid), pe_ratio)
