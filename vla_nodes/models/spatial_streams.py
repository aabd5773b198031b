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
- 'pose_vla' (Pose-VLA, Lin et al.): ray-map (from K under POSE_INTRINSICS) and depth [D, M]
  priors added to SigLIP's tokens before the projector (pose_vla.PosePriors); optionally the pose
  pre-training NTP loss on answer text (POSE_ANSWER) through the VLM's tied LM head.
Depth tokens use their own RoPE stream (positions from 0, as in DepthVLA's stand-alone
pre-training [A]). Depth is needed for training only: at inference the depth stream runs from
RGB and is cached with the prefix, as the papers deploy.

Adapter interface (what vla.py calls): `group` (a mot.Group or None), `expert` (an ExpertStack
or None), `needs_vision_features`, `outputs` and `capture` (mixture results the loss reads),
`embed(batch, vision_features) -> (B, N, D_e)` and `loss(outputs, batch, step) -> dict`.
"""

from dataclasses import replace
from pathlib import Path
import re

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from vla_nodes.contract import OBS_DEPTH, OBS_IMAGE, OBS_IMAGE_CONTENT, OBS_INTRINSICS
from vla_nodes.models import depthvla, pose_vla, qdepth, spatial_forcing
from vla_nodes.models.backbones import BYTE_OFFSET
from vla_nodes.models.mot import ExpertConfig, ExpertStack, Group, MoT, Tokens

SF_TARGET = 'spatial_forcing.target'  # batch key: teacher targets # (B, N_image, C)
SF_MASK = 'spatial_forcing.mask'  # batch key: True on image tokens over content # (B, N_image)
POSE_ANSWER = 'pose_vla.answer'  # batch key: pose-token answer text, B str (ntp_weight > 0)
POSE_INTRINSICS = OBS_INTRINSICS  # batch key: K of the S x S image # (B, 3, 3), px
# Pose-VLA pre-training from robot data (LeRobotDataset(pose_targets=True)): the end-effector
# poses of the chunk, base_link x y z qx qy qz qw # (B, H, 7), and T_base_cam # (B, 4, 4).
POSE_EE_CHUNK = 'pose_vla.ee_chunk'
POSE_BASE_CAM = 'pose_vla.base_cam'
DEPTH = Group('depth', 'depth', stream='depth')
ANSWER = Group('pose', 'vlm', causal=True)
# Pose-VLA pre-training: prefix-LM, image + prompt bidirectional, the answer causal [code].
POSE_MASK = {'image': ('image', 'text'), 'text': ('image', 'text'),
             'pose': ('image', 'text', 'pose')}

# Attention tables by name, for VLAConfig.mask.
MASKS = {
    'qdepth_hybrid': qdepth.QDEPTH_HYBRID,
    'qdepth_dreamvla': qdepth.QDEPTH_DREAMVLA,
    'depthvla_blockwise': depthvla.DEPTHVLA_BLOCKWISE,
    'depthvla_vlm_depth_mutual': depthvla.DEPTHVLA_VLM_DEPTH_MUTUAL,
}
# spatial modes whose training batches need OBS_DEPTH
NEEDS_DEPTH = ('qdepth', 'depthvla', 'pose_vla')


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

    def decode(self, tokens):
        """The depth stream alone: (B, N, D) -> its outputs, as inside the VLA.

        Under the block-wise mask depth tokens attend only to depth tokens, on their own
        position stream, so this equals the VLA's depth outputs: depth pre-training
        (`pretrain_loss`) trains the very weights the VLA then uses.
        """
        mot = MoT({'depth': self.expert.stack()}, {DEPTH.name: (DEPTH.name,)})
        return mot(Tokens().add(DEPTH, tokens))[DEPTH.name]

    def pretrain_loss(self, batch):
        """DepthVLA's depth pre-training objective (section 3.2) on this model's weights."""
        device = self.stream.proj.weight.device
        return depthvla.depth_pretrain_loss(self.stream, self.decode,
                                            batch[OBS_IMAGE].to(device),
                                            batch[OBS_DEPTH].to(device))


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
        mask = batch.get(SF_MASK)  # padding tokens are not aligned [code]
        align = self.align.loss(states, target, start=0,
                                mask=None if mask is None else mask.to(target.device))
        return {'loss': self.align.config.alpha * align, 'align': align.detach()}


class PoseVLAAdapter(nn.Module):
    """Pose-VLA: ray-map and depth priors on SigLIP tokens; optional pose NTP objective.

    Post-training (the preset's default, `ntp_weight` 0) is π0's flow loss with the priors;
    with `ntp_weight` > 0 the answer text under POSE_ANSWER (PoseTokenizer.format) adds
    `ntp_weight` · L_pre (eq. 3): next-token CE of the pose tokens from the VLM's tied LM head,
    the answer group causal after the bidirectional image + prompt prefix (prefix-LM [code]).
    """

    group, expert, needs_vision_features, outputs, capture = None, None, True, (), ()
    needs_prefix = True  # loss() also takes the prefix Tokens and the backbone

    def __init__(self, config, backbone, load_weights=True):
        super().__init__()
        if not hasattr(backbone, 'vision_features'):
            raise ValueError(f'Pose-VLA adds its priors to SigLIP tokens before the projector; '
                             f'the {config.backbone.family!r} backbone has none (use paligemma)')
        vision = backbone.model.config.vision_config
        c = replace(config.pose, vision_width=vision.hidden_size, image_size=vision.image_size,
                    patch_size=vision.patch_size)
        self.config = c
        self.priors = pose_vla.PosePriors(c)
        self.tokenizer = backbone.tokenizer
        embed = backbone.language_model.embed_tokens
        if embed.num_embeddings < c.vocab_size:  # a released VLM: add the 4 pose families
            backbone.model.resize_token_embeddings(c.vocab_size, mean_resizing=True)
        if c.ntp_weight:  # the LM head reads the VLM's last layer, which π0 leaves frozen
            lm = backbone.language_model
            last = lm.layers[-1]
            for m in (last.self_attn.o_proj, last.mlp, last.post_attention_layernorm, lm.norm):
                m.requires_grad_(True)
        offsets, start = {'loc': c.loc_offset}, c.vocab_offset
        for family, n in zip(pose_vla.PoseTokenizer.FAMILIES, (c.n_rot, c.n_xy, c.n_z,
                                                               c.n_size)):
            offsets[family], start = start, start + n
        self.offsets = offsets

    def fuse(self, batch, features):
        """SigLIP tokens # (B, N, Dv) + the priors the batch carries (K, OBS_DEPTH)."""
        s = self.config.image_size
        raymap = depth = None
        if POSE_INTRINSICS in batch:  # K of the S x S model image -> K of SigLIP's s x s input
            k = torch.as_tensor(batch[POSE_INTRINSICS], dtype=torch.float64)  # (B, 3, 3)
            r = s / batch[OBS_IMAGE].shape[1]
            scale = torch.tensor([[r, 0, 0.5 * r - 0.5], [0, r, 0.5 * r - 0.5], [0, 0, 1]],
                                 dtype=torch.float64)
            raymap = torch.stack([pose_vla.compute_raymap(scale @ ki, s, s) for ki in k])
            raymap = raymap.to(features.device)
        if OBS_DEPTH in batch:  # metres, NaN invalid # (B, S, S)
            d = torch.as_tensor(batch[OBS_DEPTH]).float().to(features.device)[:, None]
            d = functional.interpolate(d, size=(s, s), mode='nearest')[:, 0]
            depth = pose_vla.depth_prior(d, self.config.max_depth_m)
        out = self.priors(features, raymap, depth)
        if self.training:  # an absent prior still joins the graph (DDP / FSDP need every grad)
            for prior, embed in ((raymap, self.priors.ray), (depth, self.priors.depth)):
                if prior is None:
                    out = out + 0.0 * sum(p.sum() for p in embed.parameters()).to(out.dtype)
        return out

    def embed(self, batch, vision_features):
        return None

    def encode_answers(self, texts):
        r"""Answer text -> ids # (B, T) and a mask, True on the supervised tokens # (B, T).

        Row: [separator '\n', answer tokens, eos, pad...]; `<locNNNN>`, `<rotNNNN>`, ...
        become single ids (self.offsets), the rest goes through the backbone's tokenizer.
        """
        t = self.config.max_answer_tokens
        ids = torch.zeros(len(texts), t, dtype=torch.long)  # pad id 0
        mask = torch.zeros(len(texts), t, dtype=torch.bool)
        eos = self.tokenizer.eos_token_id if self.tokenizer is not None else 1
        for row, text in enumerate(texts):
            seq = self._text_ids('\n')
            for part in _SPLIT.split(str(text)):
                found = _SPECIAL.fullmatch(part)
                if found:
                    family, idx = found.group(1), int(found.group(2))
                    seq.append(self.offsets[family] + idx)
                elif part:
                    seq += self._text_ids(part)
            seq.append(eos)
            if len(seq) > t:
                raise ValueError(f'pose answer of {len(seq)} tokens exceeds max_answer_tokens '
                                 f'= {t}: raise PoseVLAConfig.max_answer_tokens or shorten it')
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, 1:len(seq)] = True
        return ids, mask

    def _text_ids(self, text):
        if self.tokenizer is not None:
            return list(self.tokenizer(text, add_special_tokens=False)['input_ids'])
        return [b + BYTE_OFFSET for b in text.encode('utf-8')]

    def ntp_loss(self, backbone, prefix, answers):
        """L_pre (eq. 3) of answer texts after the prefix Tokens (image + prompt)."""
        ids, supervised = self.encode_answers(answers)
        embed = backbone.language_model.embed_tokens
        device = embed.weight.device
        ids, supervised = ids.to(device), supervised.to(device)
        first = next(iter(prefix.hidden.values()))
        valid = supervised.clone()
        valid[:, 0] = True  # the separator is input, never a target
        tokens = prefix.add(ANSWER, embed(ids).to(first.dtype), valid)
        hidden = MoT({'vlm': backbone.stack()}, POSE_MASK)(tokens, outputs=('pose',))['pose']
        logits = hidden @ embed.weight.T.to(hidden.dtype)  # tied LM head # (B, T, V)
        return pose_vla.pose_pretrain_loss(logits, ids, supervised)

    def loss(self, outputs, batch, step, prefix=None, backbone=None):
        if not self.config.ntp_weight:
            return {'loss': torch.zeros(())}
        if POSE_ANSWER not in batch:
            raise KeyError(f'ntp_weight > 0 needs the pose answers in the batch under '
                           f'{POSE_ANSWER!r} (PoseTokenizer.format text per sample)')
        ntp = self.ntp_loss(backbone, prefix, list(batch[POSE_ANSWER]))
        return {'loss': self.config.ntp_weight * ntp, 'pose_ntp': ntp.detach()}


_SPECIAL = re.compile(r'<(loc|rot|transXY|transZ|size)(\d+)>')
_SPLIT = re.compile(r'(<(?:loc|rot|transXY|transZ|size)\d+>)')  # keeps the special tokens

ADAPTERS = {
    'qdepth': QDepthAdapter,
    'depthvla': DepthVLAAdapter,
    'spatial_forcing': SpatialForcingAdapter,
    'pose_vla': PoseVLAAdapter,
}


def resolve(config):
    """The VLAConfig with what its spatial module reads from `spatial_path` written into it.

    A checkpoint's config.json then rebuilds the module without the directory: DepthVLA's
    encoder config (its position-embedding size is the encoder's own image_size).
    """
    path = Path(config.spatial_path or '.') / 'config.json'
    if config.spatial == 'depthvla' and config.spatial_path and path.is_file() \
            and not config.depthvla.encoder_config:
        return replace(config, depthvla=depthvla.resolve_encoder(config.depthvla,
                                                                 config.spatial_path))
    return config


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
        return spatial_forcing.load_teacher(path, image_size=size)
    if not allow_random:
        raise ValueError('spatial_forcing needs its 3D teacher: pass --teacher DIR (a local '
                         'VGGT-1B checkpoint with the vggt package, or a DINOv2 '
                         'save_pretrained directory)')
    from transformers import Dinov2Config, Dinov2Model
    width = config.sf.teacher_width
    model = Dinov2Model(Dinov2Config(hidden_size=width, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=2 * width,
                                     image_size=size, patch_size=14))
    return spatial_forcing.DinoV2Teacher(model, image_size=size)


def add_teacher_targets(batch, teacher, model):
    """The batch with Spatial Forcing's targets for its images under SF_TARGET (if a teacher).

    With OBS_IMAGE_CONTENT in the batch, SF_MASK marks the image tokens over the frame, so the
    padding bars are not aligned (the official π0 path [code]).
    """
    if teacher is None:
        return batch
    device = next(teacher.parameters()).device
    images = batch[OBS_IMAGE].to(device)
    with torch.no_grad():
        n = model.backbone.embed_images(images[:1].to(model.head_device())).shape[1]
        grid = int(round(n ** 0.5))
        target = teacher_targets(teacher, images, grid, model.config.sf.pe_ratio)
    out = {**batch, SF_TARGET: target}
    if OBS_IMAGE_CONTENT in batch:
        size = images.shape[1]
        out[SF_MASK] = torch.stack([spatial_forcing.content_token_mask(box, size, grid)
                                    for box in batch[OBS_IMAGE_CONTENT]]).to(target.device)
    return out


def add_pose_answers(batch, tokenizer, stride):
    """The batch with Pose-VLA's pre-training answers under POSE_ANSWER, from its robot data.

    Future end-effector poses of the chunk, every `stride`-th, in the camera frame of the
    current step, projected with K of the model image: "arm {i}<loc..><trans..><rot..>;" per
    waypoint [code: Agibot reader], none when the first waypoint is outside the image.

    Args:
        batch: with POSE_EE_CHUNK, POSE_BASE_CAM, POSE_INTRINSICS and OBS_IMAGE.
        tokenizer: a fitted pose_vla.PoseTokenizer.
        stride: pose_vla.PoseVLAConfig.waypoint_stride.
    """
    from vla_nodes.arm.kinematics import xyz_quat_to_pose

    size = tuple(batch[OBS_IMAGE].shape[1:3])
    answers = []
    for chunk, base_cam, k in zip(batch[POSE_EE_CHUNK], batch[POSE_BASE_CAM],
                                  batch[POSE_INTRINSICS]):
        poses = np.stack([xyz_quat_to_pose(p) for p in np.asarray(chunk, dtype=np.float64)])
        points = pose_vla.waypoint_targets(np.asarray(base_cam, np.float64), np.asarray(k),
                                           size, poses, stride)
        text = '' if not points or not points[0]['in_view'] else ''.join(
            tokenizer.format(f'arm {i}', p['uv'], p['translation'], p['rpy'])
            for i, p in enumerate(points))
        answers.append(text)
    return {**batch, POSE_ANSWER: answers}


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
