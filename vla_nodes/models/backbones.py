"""Prefix encoders: camera image, metric depth, robot state and instruction text -> tokens.

Each encoder maps one observation field to tokens of the shared width D; `vla.py` concatenates
them into the prefix the flow expert attends to (π0, Black et al., 2024).
- Image: a `transformers` SigLIP vision tower (Zhai et al., 2023, "Sigmoid Loss for Language
  Image Pre-Training"), the vision half of PaliGemma, built from a config (no weights downloaded).
  Pixels are mapped to [-1, 1] as PaliGemma/open-pi-zero do.
- Depth: sensor metric depth as its own token group. This is the walking skeleton's depth path:
  a patch embedding of (depth, validity). QDepth-VLA (Li et al., 2025) and DepthVLA (Yuan et al.,
  2025) later replace it with a depth expert that predicts depth from RGB.
- State: one token, Linear(state) as π0's state projection.
- Text: UTF-8 bytes (ByT5-style, Xue et al., 2022) so that no tokenizer has to be downloaded;
  a PaliGemma/Gemma tokenizer replaces it when a real backbone is loaded.
"""

import torch
from torch import nn

TEXT_PAD_ID = 256  # bytes use ids 0..255


class ImageEncoder(nn.Module):
    """SigLIP vision tower + linear projector to the prefix width."""

    def __init__(self, config):
        super().__init__()
        from transformers import SiglipVisionConfig, SiglipVisionModel

        vision_config = SiglipVisionConfig(
            hidden_size=config.vision_width,
            intermediate_size=4 * config.vision_width,
            num_hidden_layers=config.vision_layers,
            num_attention_heads=config.vision_heads,
            image_size=config.image_size,
            patch_size=config.patch_size,
            vision_use_head=False,  # patch tokens only; the pooled head is unused
        )
        self.vision = SiglipVisionModel(vision_config)
        self.proj = nn.Linear(config.vision_width, config.width)

    def forward(self, image):
        """Encode RGB images.

        Args:
            image: RGB values in [0, 255], uint8 or float, channels last. # (B, S, S, 3)

        Returns:
            Image tokens. # (B, (S/p)^2, D)
        """
        pixels = image.permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B, 3, S, S) in [-1, 1]
        tokens = self.vision(pixel_values=pixels).last_hidden_state  # (B, N, vision_width)
        return self.proj(tokens)


class DepthEncoder(nn.Module):
    """Patch embedding of metric depth with a validity channel (NaN / Inf / <= 0 are invalid)."""

    def __init__(self, config):
        super().__init__()
        self.max_depth_m = config.max_depth_m
        p = config.patch_size
        self.patch = nn.Conv2d(2, config.width, kernel_size=p, stride=p)
        num_patches = (config.image_size // p) ** 2
        self.pos = nn.Parameter(torch.zeros(num_patches, config.width))
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
        tokens = self.patch(x.float()).flatten(2).transpose(1, 2)  # (B, N, D)
        return tokens + self.pos


class StateEncoder(nn.Module):
    """One token from the normalized proprioceptive state."""

    def __init__(self, config):
        super().__init__()
        self.proj = nn.Linear(config.state_dim, config.width)

    def forward(self, state):
        """Args: state # (B, state_dim). Returns: the state token # (B, 1, D)."""
        return self.proj(state.float())[:, None, :]


def byte_tokenize(texts, length):
    """UTF-8 bytes of each text, truncated or padded with TEXT_PAD_ID to `length`.

    Args:
        texts: instructions, one per sample.
        length: N, tokens per instruction.

    Returns:
        Token ids # (B, N) int64 and a mask that is True on real bytes # (B, N).
    """
    ids = torch.full((len(texts), length), TEXT_PAD_ID, dtype=torch.long)
    for row, text in enumerate(texts):
        data = list(text.encode('utf-8')[:length])
        ids[row, :len(data)] = torch.tensor(data, dtype=torch.long)
    return ids, ids != TEXT_PAD_ID


class TextEncoder(nn.Module):
    """Byte embedding + learned positions."""

    def __init__(self, config):
        super().__init__()
        self.length = config.text_tokens
        self.embed = nn.Embedding(TEXT_PAD_ID + 1, config.width)
        self.pos = nn.Parameter(torch.zeros(config.text_tokens, config.width))
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, texts, device):
        """Encode instructions.

        Args:
            texts: instructions, one str per sample.
            device: where the tokens go.

        Returns:
            Text tokens # (B, N, D) and their padding mask, True on real bytes # (B, N).
        """
        ids, mask = byte_tokenize(texts, self.length)
        ids, mask = ids.to(device), mask.to(device)
        return self.embed(ids) + self.pos, mask
