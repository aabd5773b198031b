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

"""VLM backbones from transformers behind one adapter, plus the sensor-depth patch encoder.

A backbone turns (camera image, instruction) into the prefix tokens of the language model and
lends its decoder layers to the mixture of transformers (mot.py), where the action expert
attends to them layer by layer (π0, Black et al., 2024). Families (one small subclass each):
- 'paligemma': PaliGemma (Beyer et al., 2024): SigLIP + linear projector + Gemma; π0's VLM and
  the one QDepth-VLA, DepthVLA and Pose-VLA build on. Pixels to [-1, 1].
- 'qwen2_5_vl': Qwen2.5-VL (Bai et al., 2025), VLM4VLA's default backbone: window-attention ViT,
  14 px patches, 2 x 2 merger; CLIP mean/std; 1-D sequential positions as VLM4VLA's code.
- 'smolvlm': SmolVLM (Idefics3 architecture, Marafioti et al., 2025): SigLIP + pixel-shuffle
  connector + Llama. Pixels to [-1, 1].
Prefix layout: [image tokens | text tokens], text right-padded to `max_text_tokens`. Tokens are in
the language model's layer-0 space (Gemma's sqrt(D) embedding scale included).

Weights come only from a local directory (`pretrained`, loaded with local_files_only=True) or are
random from `hf_config`; nothing is ever downloaded. Without tokenizer files in the directory,
text is UTF-8 bytes mapped to ids 3..258 (ByT5-style, Xue et al., 2022), which needs a
vocabulary of at least 259 ids: enough for tiny random models.

Sensor depth (`DepthEncoder`): the walking skeleton's depth path, a patch embedding of
(metric depth, validity) whose tokens join the image group (QDepth-VLA and DepthVLA instead
predict depth from RGB with a depth expert: qdepth.py, depthvla.py).
"""

from dataclasses import dataclass, field
import json
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from vla_nodes.models.mot import Stack

BYTE_OFFSET = 3  # byte b -> id b + 3: ids 0..2 stay free for pad / eos / bos
TEXT_PAD_ID = 0
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# Tiny random twins (research/feasibility.md Q5, seeds-vlm4vla.md 6.2): 2 layers, width 64,
# 4 heads of 16, one KV head for Gemma (as the real 2B), vocabulary 300 (bytes fit).
TINY_PALIGEMMA = {
    'vision_config': {'hidden_size': 32, 'intermediate_size': 64, 'num_hidden_layers': 2,
                      'num_attention_heads': 2, 'image_size': 56, 'patch_size': 14,
                      'projection_dim': 64, 'vision_use_head': False},
    'text_config': {'model_type': 'gemma', 'vocab_size': 300, 'hidden_size': 64,
                    'intermediate_size': 128, 'num_hidden_layers': 2, 'num_attention_heads': 4,
                    'num_key_value_heads': 1, 'head_dim': 16},
    'image_token_index': 299, 'projection_dim': 64,
}
# PaliGemma-2: the same with a Gemma-2 language model (sandwich norms, logit soft-capping,
# alternating sliding-window layers, query_pre_attn_scalar).
TINY_PALIGEMMA2 = {
    **TINY_PALIGEMMA,
    'text_config': {**TINY_PALIGEMMA['text_config'], 'model_type': 'gemma2',
                    'query_pre_attn_scalar': 16, 'sliding_window': 512,
                    'attn_logit_softcapping': 50.0, 'final_logit_softcapping': 30.0},
}
TINY_QWEN2_5_VL = {
    'text_config': {'vocab_size': 300, 'hidden_size': 64, 'intermediate_size': 128,
                    'num_hidden_layers': 2, 'num_attention_heads': 4, 'num_key_value_heads': 1,
                    'bos_token_id': 1, 'eos_token_id': 2,
                    'rope_scaling': {'type': 'mrope', 'mrope_section': [2, 3, 3]}},
    'vision_config': {'depth': 2, 'hidden_size': 32, 'intermediate_size': 64, 'num_heads': 2,
                      'out_hidden_size': 64, 'patch_size': 14, 'spatial_merge_size': 2,
                      'temporal_patch_size': 2, 'window_size': 112, 'fullatt_block_indexes': [1]},
    'image_token_id': 296, 'vision_start_token_id': 297, 'vision_end_token_id': 298,
    'video_token_id': 299,
}
TINY_SMOLVLM = {
    'text_config': {'vocab_size': 300, 'hidden_size': 64, 'intermediate_size': 128,
                    'num_hidden_layers': 2, 'num_attention_heads': 4, 'num_key_value_heads': 1},
    'vision_config': {'hidden_size': 32, 'intermediate_size': 64, 'num_hidden_layers': 2,
                      'num_attention_heads': 2, 'image_size': 64, 'patch_size': 8},
    'scale_factor': 2, 'image_token_id': 299,
}


@dataclass(frozen=True)
class BackboneConfig:
    """Which VLM, where its weights are, and how its prefix is laid out."""

    family: str = 'paligemma'  # a key of BACKBONES
    hf_config: dict = field(default_factory=lambda: dict(TINY_PALIGEMMA))  # transformers config
    pretrained: str = ''  # local directory of a transformers checkpoint; '' = random weights
    image_size: int = 56  # vision input side, px (Qwen: a multiple of 28)
    max_text_tokens: int = 24  # N: text tokens kept (QDepth-VLA: 20; openpi: 48)


def resolve(config):
    """The config with hf_config read from `pretrained`/config.json when it is empty.

    Checkpoints store the resolved config, so a trained policy rebuilds without the directory.
    """
    if config.hf_config or not config.pretrained:
        return config
    path = Path(config.pretrained) / 'config.json'
    if not path.is_file():
        raise FileNotFoundError(
            f'backbone directory {config.pretrained!r} has no config.json: point `pretrained` at '
            'a local transformers checkpoint (save_pretrained output); nothing is downloaded')
    values = json.loads(path.read_text())
    values.pop('architectures', None)
    return BackboneConfig(**{**vars(config), 'hf_config': values})


class VLMBackbone(nn.Module):
    """One transformers VLM: `embed_prefix` and its language model as a mixture expert."""

    config_name = ''  # the transformers config class of the family

    def __init__(self, config, load_weights=True):
        """Build the VLM.

        Args:
            config: a BackboneConfig.
            load_weights: read weights from `config.pretrained` (False when a policy
                checkpoint will overwrite them anyway).
        """
        super().__init__()
        import transformers
        from transformers import AutoModel

        self.config = config = resolve(config)
        if config.pretrained and load_weights:
            # fp32 master weights whatever the checkpoint's dtype: the experts train in fp32
            # and vla-train autocasts to bf16 on GPU.
            self.model = AutoModel.from_pretrained(config.pretrained, local_files_only=True,
                                                   dtype=torch.float32)
        else:
            hf = {k: v for k, v in config.hf_config.items() if k != 'model_type'}
            config_class = getattr(transformers, self.config_name)
            self.model = AutoModel.from_config(config_class(**hf))
        self.tokenizer = _tokenizer(config.pretrained) if config.pretrained else None
        self.text_config = self.model.config.get_text_config()
        if self.tokenizer is None and self.text_config.vocab_size < 256 + BYTE_OFFSET:
            raise ValueError(
                f'vocabulary of {self.text_config.vocab_size} ids has no room for byte tokens '
                f'(needs {256 + BYTE_OFFSET}); add tokenizer files to the backbone directory')

    @property
    def width(self):
        """D_vlm, the language model's hidden size."""
        return self.text_config.hidden_size

    @property
    def language_model(self):
        return self.model.language_model

    def stack(self):
        """The language model's decoder layers as a mixture expert (mot.Stack)."""
        lm = self.language_model
        return Stack(lm.layers, lm.norm, lm.rotary_emb)

    def embed_prefix(self, images, texts):
        """Prefix tokens of a batch.

        Args:
            images: RGB 0..255, channels last, square. # (B, S, S, 3) uint8 or float
            texts: instructions, one str per sample.

        Returns:
            Tokens # (B, Ni + N, D) in layer-0 space and a mask, True on real tokens # (B, Ni + N).
        """
        image = self.embed_images(images)  # (B, Ni, D)
        text, mask = self.embed_text(texts, image.device)  # (B, N, D)
        ones = torch.ones(image.shape[:2], dtype=torch.bool, device=image.device)
        return torch.cat([image, text.to(image.dtype)], 1), torch.cat([ones, mask], 1)

    def embed_text(self, texts, device):
        """Text tokens # (B, N, D) and their mask, True on real tokens # (B, N)."""
        ids, mask = self.tokenize(texts)
        return self.language_model.embed_tokens(ids.to(device)), mask.to(device)

    def tokenize(self, texts):
        """Token ids # (B, N) int64, right-padded, and a mask True on real tokens # (B, N)."""
        n = self.config.max_text_tokens
        if self.tokenizer is not None:
            out = self.tokenizer(list(texts), padding='max_length', truncation=True,
                                 max_length=n, return_tensors='pt')
            return out['input_ids'], out['attention_mask'].bool()
        return byte_tokenize(texts, n)

    def embed_images(self, images):
        """Image tokens # (B, Ni, D) (family-specific)."""
        raise NotImplementedError

    def _resized(self, images, size, mean, std):
        """(B, S, S, 3) 0..255 -> (B, 3, size, size) normalized floats."""
        x = images.permute(0, 3, 1, 2).float() / 255.0
        if x.shape[-1] != size or x.shape[-2] != size:
            x = functional.interpolate(x, size=(size, size), mode='bilinear', antialias=True,
                                       align_corners=False)
        mean = torch.tensor(mean, device=x.device)[:, None, None]
        std = torch.tensor(std, device=x.device)[:, None, None]
        return ((x - mean) / std).to(self.model.dtype)


class PaliGemmaBackbone(VLMBackbone):
    """SigLIP patches -> linear projector -> Gemma."""

    config_name = 'PaliGemmaConfig'

    def vision_features(self, images):
        """SigLIP patch tokens before the projector (QDepth-VLA's depth input): (B, Ni, Dv)."""
        size = self.model.config.vision_config.image_size
        pixels = self._resized(images, size, (0.5,) * 3, (0.5,) * 3)
        return self.model.vision_tower(pixel_values=pixels).last_hidden_state

    def project(self, features):
        """Vision features # (B, Ni, Dv) -> image tokens # (B, Ni, D)."""
        return self.model.multi_modal_projector(features)

    def embed_images(self, images):
        return self.project(self.vision_features(images))  # (B, (S/14)^2, D)


class Qwen25VLBackbone(VLMBackbone):
    """Qwen2.5-VL: flattened 2-frame patches, window-attention ViT, 2 x 2 patch merger."""

    config_name = 'Qwen2_5_VLConfig'

    def stack(self):
        lm = self.language_model
        # 1-D sequential positions on all three M-RoPE axes (VLM4VLA's code): plain RoPE.

        def rotary(x, pos):  # pos (B, T) -> (3, B, T)
            return lm.rotary_emb(x, pos[None].expand(3, -1, -1))
        return Stack(lm.layers, lm.norm, rotary)

    def embed_images(self, images):
        v = self.model.config.vision_config
        size, p, m = self.config.image_size, v.patch_size, v.spatial_merge_size
        tp = v.temporal_patch_size
        if size % (p * m):
            raise ValueError(f'Qwen2.5-VL image_size must be a multiple of {p * m}, got {size}')
        x = self._resized(images, size, CLIP_MEAN, CLIP_STD)  # (B, 3, S, S)
        b, g = x.shape[0], size // p
        # The image processor's layout: the frame repeated to temporal_patch frames, patches
        # ordered by merge window. (B, T, C, g/m, m, p, g/m, m, p) -> (B g g, C T p p)
        x = x[:, None].expand(b, tp, 3, size, size).reshape(b, tp, 3, g // m, m, p, g // m, m, p)
        x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(b * g * g, 3 * tp * p * p)
        grid = torch.tensor([[1, g, g]] * b, device=x.device)
        tokens = self.model.get_image_features(x, grid).pooler_output  # B x (g g / m^2, D)
        return torch.stack(list(tokens))


class SmolVLMBackbone(VLMBackbone):
    """SmolVLM / Idefics3: SigLIP patches -> pixel-shuffle connector -> Llama."""

    config_name = 'SmolVLMConfig'

    @property
    def language_model(self):
        return self.model.text_model

    def vision_features(self, images):
        """SigLIP patch tokens before the pixel-shuffle connector: (B, (S/p)^2, Dv)."""
        v = self.model.config.vision_config
        pixels = self._resized(images, v.image_size, (0.5,) * 3, (0.5,) * 3)
        side = v.image_size // v.patch_size
        patches = torch.ones(pixels.shape[0], side, side, dtype=torch.bool, device=pixels.device)
        return self.model.vision_model(
            pixel_values=pixels, patch_attention_mask=patches).last_hidden_state

    def project(self, features):
        """Vision features -> image tokens # (B, (S/p)^2 / scale^2, D)."""
        return self.model.connector(features)

    def embed_images(self, images):
        return self.project(self.vision_features(images))


BACKBONES = {
    'paligemma': PaliGemmaBackbone,
    'qwen2_5_vl': Qwen25VLBackbone,
    'smolvlm': SmolVLMBackbone,
}


def build_backbone(config, load_weights=True):
    """The VLMBackbone for `config.family`.

    Raises:
        ValueError: an unknown family, naming the known ones.
    """
    if config.family not in BACKBONES:
        raise ValueError(f'unknown backbone family {config.family!r}; known: {sorted(BACKBONES)}')
    return BACKBONES[config.family](config, load_weights=load_weights)


def _tokenizer(directory):
    """AutoTokenizer from the directory when it holds tokenizer files, else None (bytes)."""
    names = ('tokenizer.json', 'tokenizer.model', 'tokenizer_config.json')
    if not any((Path(directory) / n).is_file() for n in names):
        return None
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(directory, local_files_only=True)


def byte_tokenize(texts, length):
    """UTF-8 bytes of each text as ids byte + BYTE_OFFSET, truncated or padded to `length`.

    Args:
        texts: instructions, one per sample.
        length: N, tokens per instruction.

    Returns:
        Token ids # (B, N) int64 (TEXT_PAD_ID on padding) and a mask True on real bytes # (B, N).
    """
    ids = torch.full((len(texts), length), TEXT_PAD_ID, dtype=torch.long)
    mask = torch.zeros(len(texts), length, dtype=torch.bool)
    for row, text in enumerate(texts):
        data = list(str(text).encode('utf-8')[:length])
        ids[row, :len(data)] = torch.tensor(data, dtype=torch.long) + BYTE_OFFSET
        mask[row, :len(data)] = True
    return ids, mask


class DepthEncoder(nn.Module):
    """Patch embedding of metric depth with a validity channel (NaN / Inf / <= 0 are invalid)."""

    def __init__(self, width, image_size, patch_size, max_depth_m):
        """Args: width D; image_size S and patch_size p in px; max_depth_m clamp, metres."""
        super().__init__()
        self.max_depth_m = max_depth_m
        self.patch = nn.Conv2d(2, width, kernel_size=patch_size, stride=patch_size)
        self.pos = nn.Parameter(torch.zeros((image_size // patch_size) ** 2, width))
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, depth):
        """Encode depth maps.

        Args:
            depth: metric depth in metres, NaN where invalid. # (B, S, S)

        Returns:
            Depth tokens. # (B, (S/p)^2, D)
        """
        valid = torch.isfinite(depth) & (depth > 0)  # (B, S, S)
        scaled = torch.where(valid, depth, torch.zeros_like(depth)).clamp(max=self.max_depth_m)
        x = torch.stack([scaled / self.max_depth_m, valid.float()], dim=1)  # (B, 2, S, S)
        tokens = self.patch(x.to(self.patch.weight.dtype)).flatten(2).transpose(1, 2)
        return tokens + self.pos
