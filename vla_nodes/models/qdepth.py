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

"""QDepth-VLA's spatial parts: a VQ-VAE depth tokenizer and a depth expert that predicts its codes.

Li, Chen, Zhou, Li, "QDepth-VLA: Quantized Depth Prediction as Auxiliary Supervision for
Vision-Language-Action Models" (AAMAS 2026); spec: research/seeds-qdepth-depthvla.md, part A.
Tags: [P] the paper, [A] our default where the paper is silent.

Where it fits: the model core (models/mot.py, models/vla.py) runs a mixture of transformers with
one weight set per token group. QDepth adds a `depth` group:
    SigLIP tokens (before language fusion)  # (B, N, Dv)
      -> QDepthStream.embed                 # (B, N, D) the depth expert's input tokens
      -> the core's depth stream (18 layers, shared attention under QDEPTH_HYBRID)
      -> QDepthStream.loss(hidden, codes)   # CE over the frozen VQ-VAE codebook (eqs. 3-4)
    total loss = L_action + λ_t · L_depth,  λ_t = λ0 · γ^t (eq. 8)
The VQ-VAE (eq. 2) is trained first, on depth maps alone (train/depth_tokenizer.py); its encoder
and codebook are then frozen and give the target code of each of the 16 x 16 cells.

Numbers: K = 256 codes of dimension 160 on a 16 x 16 grid, β = 0.25, AdamW lr 1e-5 for the VQ-VAE,
λ0 = 0.01 [P]. Depth maps are resized to 256 x 256 before the encoder (a 224 image does not
divide by 16; 256 / 2^4 = 16), so a 224 x 224 frame also gives the 16 x 16 grid that matches
SigLIP's 256 patches [A]. τ = 1, γ = 0.9999 per optimizer step, MSE reconstruction, plain-gradient
codebook (eq. 2 has a codebook term, so no EMA) [A].
"""

from dataclasses import asdict, dataclass
import json
from pathlib import Path
from types import MappingProxyType

import torch
from torch import nn
from torch.nn import functional

GROUPS = ('image', 'text', 'depth', 'state', 'action')

# Hybrid attention (Fig. 1b, section 3.4.3): query group -> key groups it attends to; attention is
# bidirectional inside a group. Image and text form one full block and see nothing else; depth
# sees image + text; the state (proprio) token does NOT see depth (the ablation "w/o Hybrid Attn"
# adds exactly that cell); actions see everything [P]. Depth attending to itself is [A].
QDEPTH_HYBRID = MappingProxyType({
    'image': ('image', 'text'),
    'text': ('image', 'text'),
    'depth': ('image', 'text', 'depth'),
    'state': ('image', 'text', 'state'),
    'action': ('image', 'text', 'depth', 'state', 'action'),
})
# Ablation "w/o Hybrid Attn" (DreamVLA-style, Table 6): proprio also attends to depth.
QDEPTH_DREAMVLA = MappingProxyType({
    **QDEPTH_HYBRID, 'state': ('image', 'text', 'depth', 'state')})


@dataclass(frozen=True)
class DepthVQVAEConfig:
    """The depth tokenizer (section 3.4.1); defaults are the paper's model."""

    num_codes: int = 256  # K [P]
    code_dim: int = 160  # d [P]
    in_res: int = 256  # depth maps are resized to in_res x in_res [A]
    channels: tuple = (64, 128, 256, 256)  # one stride-2 conv stage each [A]
    beta: float = 0.25  # commitment weight [P]
    lr: float = 1e-5  # AdamW [P]

    @property
    def grid(self):
        """Latent grid side g: in_res / 2^stages (16 for the paper, 256 tokens)."""
        return self.in_res // 2 ** len(self.channels)


TINY_VQVAE = DepthVQVAEConfig(num_codes=16, code_dim=8, in_res=32, channels=(8, 16, 16))  # g = 4


@dataclass(frozen=True)
class QDepthConfig:
    """The depth expert's input projector, latent head and loss (section 3.4.2, Table 1)."""

    vision_width: int = 1152  # Dv: SigLIP So400m tokens, before language fusion [P, C-opz]
    width: int = 1024  # D: depth expert width, = the action expert's [P]
    n_layer: int = 18  # the expert transformer the core builds (Table 1) [P]
    n_head: int = 8
    mlp_dim: int = 4096
    grid: int = 16  # g: 256 depth tokens [P]
    num_codes: int = 256  # K [P]
    code_dim: int = 160  # d [P]
    head_hidden: int = 512  # shallow CNN decoder channels [A]
    tau: float = 1.0  # temperature of eq. 3 [A]
    lambda0: float = 0.01  # initial depth-loss weight [P]
    gamma: float = 0.9999  # decay per optimizer step, half-life ~6.9k steps [A]


TINY_QDEPTH = QDepthConfig(vision_width=32, width=32, n_layer=2, n_head=2, mlp_dim=64, grid=4,
                           num_codes=16, code_dim=8, head_hidden=16)


# --- VQ-VAE (eq. 2) ------------------------------------------------------------------------------

class ResBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))), the VQ-VAE paper's residual block."""

    def __init__(self, channels):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(), nn.Conv2d(channels, channels, 1))

    def forward(self, x):
        return x + self.net(x)


class DepthVQVAE(nn.Module):
    """VQ-VAE over 1-channel depth (van den Oord et al., 2017), straight-through estimator."""

    def __init__(self, config=DepthVQVAEConfig()):
        super().__init__()
        self.config = config
        c = (1,) + tuple(config.channels)
        down = [nn.Sequential(nn.Conv2d(a, b, 4, stride=2, padding=1), nn.ReLU())
                for a, b in zip(c[:-1], c[1:])]
        self.encoder = nn.Sequential(
            *down, ResBlock(c[-1]), ResBlock(c[-1]), nn.ReLU(),
            nn.Conv2d(c[-1], config.code_dim, 1))
        up = [nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(b, a, 4, stride=2, padding=1))
              for a, b in zip(c[1:-1], c[2:])][::-1]
        self.decoder = nn.Sequential(
            nn.Conv2d(config.code_dim, c[-1], 3, padding=1), ResBlock(c[-1]), ResBlock(c[-1]),
            *up, nn.ReLU(), nn.ConvTranspose2d(c[1], 1, 4, stride=2, padding=1))
        self.codebook = nn.Embedding(config.num_codes, config.code_dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / config.num_codes, 1.0 / config.num_codes)

    def prepare(self, depth):
        """Depth maps -> the encoder's input: per-frame min-max to [0, 1], resized [A].

        Args:
            depth: relative or metric depth, NaN / Inf / <= 0 invalid. # (B, H, W)

        Returns:
            Normalized depth, invalid pixels 0. # (B, 1, R, R) with R = in_res
        """
        if depth.dim() != 3:
            raise ValueError(f'depth must be (B, H, W), got shape {tuple(depth.shape)}')
        depth = depth.float()
        valid = torch.isfinite(depth) & (depth > 0)  # (B, H, W)
        big = torch.finfo(depth.dtype).max
        lo = torch.where(valid, depth, big).amin(dim=(1, 2), keepdim=True)  # (B, 1, 1)
        hi = torch.where(valid, depth, -big).amax(dim=(1, 2), keepdim=True)
        scaled = (depth - lo) / (hi - lo).clamp_min(1e-6)
        x = torch.where(valid, scaled, torch.zeros_like(depth))[:, None]  # (B, 1, H, W)
        r = self.config.in_res
        return functional.interpolate(x, size=(r, r), mode='bilinear', align_corners=False)

    def encode(self, x):
        """z_e = f_θ(x). x # (B, 1, R, R) -> z_e # (B, d, g, g)."""
        r = self.config.in_res
        if x.shape[1:] != (1, r, r):
            raise ValueError(f'VQ-VAE input must be (B, 1, {r}, {r}), got {tuple(x.shape)}; '
                             'pass depth maps through DepthVQVAE.prepare first')
        return self.encoder(x)

    def quantize(self, z_e):
        """Nearest code per cell, with the straight-through estimator.

        Args:
            z_e: encoder output. # (B, d, g, g)

        Returns:
            z_q_st = z_e + sg[z_q - z_e] (value z_q, gradient to z_e) # (B, d, g, g),
            the code indices j* # (B, g * g) int64, and z_q itself # (B, d, g, g).
        """
        b, d, g, _ = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(b, g * g, d)  # (B, N, d)
        idx = codebook_logits(flat, self.codebook.weight).argmax(dim=-1)  # (B, N)
        z_q = self.indices_to_latents(idx)  # (B, d, g, g)
        return z_e + (z_q - z_e).detach(), idx, z_q

    def indices_to_latents(self, idx):
        """Code indices # (B, g * g) -> codebook vectors on the grid # (B, d, g, g)."""
        g = self.config.grid
        return self.codebook(idx).view(idx.shape[0], g, g, -1).permute(0, 3, 1, 2)

    def decode(self, z_q):
        """x̂ = g_φ(z_q). z_q # (B, d, g, g) -> reconstruction # (B, 1, R, R)."""
        return self.decoder(z_q)

    def loss(self, x):
        """Eq. 2: ℓ_rec(x, g_φ(z_q)) + ||sg[z_e] − c_j*||² + β ||z_e − sg[c_j*]||².

        Args:
            x: prepared depth. # (B, 1, R, R)

        Returns:
            dict: 'rec', 'codebook', 'commit', 'total' (scalars), 'indices' # (B, g * g),
            'recon' # (B, 1, R, R).
        """
        z_e = self.encode(x)
        z_q_st, idx, z_q = self.quantize(z_e)
        recon = self.decode(z_q_st)
        rec = functional.mse_loss(recon, x)
        codebook = functional.mse_loss(z_q, z_e.detach())
        commit = self.config.beta * functional.mse_loss(z_e, z_q.detach())
        return {'rec': rec, 'codebook': codebook, 'commit': commit,
                'total': rec + codebook + commit, 'indices': idx, 'recon': recon,
                'latents': z_e.detach().permute(0, 2, 3, 1).flatten(0, 2)}  # (B g g, d)

    @torch.no_grad()
    def restart_dead_codes(self, latents, counts, generator=None):
        """Move the codes no cell chose onto encoder outputs of the current batch.

        The usual cure for codebook collapse (Dhariwal et al., 2020, Jukebox; Zeghidour et al.,
        2021, SoundStream): a code far from every z_e never wins the argmin, gets no gradient
        from eq. 2 and stays dead. With all counts 0 it is a data-dependent initialization.

        Args:
            latents: encoder outputs, one per row. # (N, d)
            counts: how often each code was chosen since the last restart. # (K,)
            generator: torch.Generator for the choice of latents.

        Returns:
            The indices of the restarted codes. # (n_dead,) int64
        """
        dead = torch.nonzero(counts.to(latents.device) == 0).flatten()
        if len(dead) and len(latents):
            pick = torch.randint(len(latents), (len(dead),), generator=generator,
                                 device='cpu').to(latents.device)
            self.codebook.weight[dead] = latents[pick].to(self.codebook.weight.dtype)
        return dead

    @torch.no_grad()
    def tokenize(self, depth):
        """Target codes z* for the depth expert: depth # (B, H, W) -> indices # (B, g * g)."""
        return self.quantize(self.encode(self.prepare(depth)))[1]

    def save_pretrained(self, directory):
        """Write config.json and model.safetensors into `directory` (created if needed)."""
        from safetensors.torch import save_model

        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / 'config.json').write_text(json.dumps(asdict(self.config), indent=2) + '\n')
        save_model(self, str(path / 'model.safetensors'))

    @classmethod
    def from_pretrained(cls, directory, device='cpu'):
        """Load a tokenizer saved by `save_pretrained` (a local directory; never downloads)."""
        from safetensors.torch import load_model

        path = Path(directory)
        for name in ('config.json', 'model.safetensors'):
            if not (path / name).is_file():
                raise FileNotFoundError(f'depth tokenizer directory {str(path)!r} has no {name}; '
                                        'train one with vla-depth-tokenizer')
        values = json.loads((path / 'config.json').read_text())
        values['channels'] = tuple(values['channels'])
        model = cls(DepthVQVAEConfig(**values))
        load_model(model, str(path / 'model.safetensors'), device=str(device))
        return model.to(device).eval()


# --- depth expert head and loss (eqs. 3, 4, 8) --------------------------------------------------

def codebook_logits(x, codebook, tau=1.0):
    """Eq. 3: ℓ_ik = −||x_i − c_k||² / τ.

    Args:
        x: predicted latents. # (B, N, d)
        codebook: frozen codes. # (K, d)
        tau: temperature.

    Returns:
        Logits; their argmax is the nearest code. # (B, N, K)
    """
    dist = (x.pow(2).sum(-1, keepdim=True) - 2 * x @ codebook.t()
            + codebook.pow(2).sum(-1))  # (B, N, K)
    return -dist / tau


def quantized_depth_loss(logits, target_idx):
    """Eq. 4: cross-entropy of the ground-truth codes, mean over the B·N cells.

    Args:
        logits: from codebook_logits. # (B, N, K)
        target_idx: z*, codes from the frozen VQ-VAE. # (B, N) int64
    """
    if logits.shape[:2] != target_idx.shape:
        raise ValueError(f'logits {tuple(logits.shape)} and target codes '
                         f'{tuple(target_idx.shape)} disagree on (B, N)')
    return functional.cross_entropy(logits.flatten(0, 1), target_idx.flatten())


def depth_loss_weight(step, lambda0=0.01, gamma=0.9999):
    """Eq. 8: λ_t = λ0 · γ^t, t the optimizer step (0-based)."""
    if step < 0:
        raise ValueError(f'step must be >= 0, got {step}')
    return lambda0 * gamma ** step


class QDepthStream(nn.Module):
    """The depth expert's ends: input MLP (a token producer) and CNN latent head (a consumer).

    The 18-layer transformer between them is the core's `depth` stream. The codebook is a frozen
    buffer copied from the trained VQ-VAE [P: "VQ-VAE encoder and codebook are frozen"].
    """

    def __init__(self, config=QDepthConfig(), codebook=None):
        super().__init__()
        self.config = config
        c = config
        self.proj = nn.Sequential(  # "lightweight MLP" 1152 -> 1024 -> 1024 [A]
            nn.Linear(c.vision_width, c.width), nn.GELU(), nn.Linear(c.width, c.width))
        self.head = nn.Sequential(  # "shallow CNN decoder" [A]
            nn.Conv2d(c.width, c.head_hidden, 3, padding=1), nn.GELU(),
            nn.Conv2d(c.head_hidden, c.code_dim, 1))
        if codebook is None:
            codebook = torch.zeros(c.num_codes, c.code_dim)
        if tuple(codebook.shape) != (c.num_codes, c.code_dim):
            raise ValueError(f'codebook must be ({c.num_codes}, {c.code_dim}) as in the config, '
                             f'got {tuple(codebook.shape)}; use the VQ-VAE this config names')
        self.register_buffer('codebook', codebook.detach().clone())

    @classmethod
    def from_vqvae(cls, config, vqvae):
        """A stream whose codebook is the (trained, frozen) VQ-VAE's."""
        return cls(config, vqvae.codebook.weight)

    def embed(self, vision_tokens):
        """SigLIP tokens # (B, N, Dv) -> depth-stream input tokens # (B, N, D)."""
        return self.proj(vision_tokens)

    def latents(self, hidden):
        """Depth-stream output # (B, g * g, D) -> predicted latents x_i # (B, g * g, d)."""
        b, n, d = hidden.shape
        g = self.config.grid
        if n != g * g:
            raise ValueError(f'the depth stream must carry {g}x{g} = {g * g} tokens, got {n}')
        grid = hidden.transpose(1, 2).reshape(b, d, g, g)  # (B, D, g, g), row-major cells
        return self.head(grid).flatten(2).transpose(1, 2)  # (B, N, d)

    def logits(self, hidden):
        """The codebook logits of eq. 3 # (B, N, K)."""
        return codebook_logits(self.latents(hidden), self.codebook, self.config.tau)

    def loss(self, hidden, target_idx):
        """L_depth (eq. 4) from the depth stream's output and the VQ-VAE's codes # (B, N)."""
        return quantized_depth_loss(self.logits(hidden), target_idx)

    def weight(self, step):
        """λ_t for this config (eq. 8)."""
        return depth_loss_weight(step, self.config.lambda0, self.config.gamma)

    @torch.no_grad()
    def predict_depth(self, hidden, vqvae):
        """Argmax codes -> the VQ-VAE decoder's depth map # (B, 1, R, R) (visualization)."""
        return vqvae.decode(vqvae.indices_to_latents(self.logits(hidden).argmax(-1)))
