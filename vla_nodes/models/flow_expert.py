"""Flow-matching action expert: denoises an action chunk while attending to a context prefix.

The π0 recipe (Black et al., 2024, "π0: A Vision-Language-Action Flow Model for General Robot
Control"), as re-implemented by openpi and used by the seed papers QDepth-VLA (Li et al., 2025)
and DepthVLA (Yuan et al., 2025); see research/seeds-qdepth-depthvla.md sections A.1.5 and B.2.

Two token streams share attention layer by layer (a mixture of transformers): the prefix stream
(context tokens: image, depth, state, text) and the action stream (one token per chunk step).
The block mask is π0's: prefix tokens attend only to the prefix, action tokens attend to the
prefix and to every action token. Because the prefix never sees the actions, the prefix pass is
run once and its per-layer keys/values are reused by every denoising step (π0's KV cache); the
two-pass computation is exactly the masked joint pass, for training and sampling alike.

Flow convention (openpi, DepthVLA), with noise ε ~ N(0, I) and clean actions A:
    t ~ 0.999 · Beta(1.5, 1) + 0.001        (t = 1 is pure noise, t = 0 is data)
    x_t = t · ε + (1 − t) · A,    target velocity u = ε − A,    loss = mean((v_θ(x_t, t) − u)²)
    sampling: x_1 = ε, then Euler steps x ← x + dt · v_θ(x, t) with dt = −1/num_steps, t: 1 → 0.
Beta(1.5, 1) puts more training time near t = 1, the noisy end.
"""

from dataclasses import dataclass
import math

import torch
from torch import nn
from torch.nn import functional


@dataclass(frozen=True)
class FlowExpertConfig:
    """Sizes of the action expert; the defaults are the tiny walking-skeleton twin."""

    width: int = 64  # D, shared by both streams (shared attention needs equal head sizes)
    n_layer: int = 2
    n_head: int = 4
    mlp_ratio: int = 4
    horizon: int = 16  # H, action chunk length
    action_dim: int = 7  # A: six joints + gripper
    time_min_period: float = 4e-3  # openpi posemb_sincos periods
    time_max_period: float = 4.0


def time_embedding(t, dim, min_period, max_period):
    """Sinusoidal embedding of flow time (openpi `posemb_sincos`).

    Args:
        t: flow times in [0, 1]. # (B,)
        dim: embedding size, even.
        min_period: shortest sine period.
        max_period: longest sine period.

    Returns:
        The embedding. # (B, dim)
    """
    fraction = torch.linspace(0.0, 1.0, dim // 2, device=t.device, dtype=torch.float32)
    period = min_period * (max_period / min_period) ** fraction  # (dim/2,)
    angle = t.float()[:, None] * (2 * math.pi / period)[None, :]  # (B, dim/2)
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)


class Attention(nn.Module):
    """Multi-head self-attention that can also attend to extra (cached) keys and values."""

    def __init__(self, config):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.width, 3 * config.width)
        self.proj = nn.Linear(config.width, config.width)

    def forward(self, x, key_mask, extra_kv=None):
        """Attend from `x` to [extra keys; own keys].

        Args:
            x: token embeddings. # (B, T, D)
            key_mask: True where a key may be attended. # (B, S + T) or (B, T)
            extra_kv: optional (k, v) of another stream. # each (B, nh, S, hd)

        Returns:
            The output # (B, T, D) and this stream's (k, v) # each (B, nh, T, hd).
        """
        b, n, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(b, n, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        own_kv = (k, v)
        if extra_kv is not None:
            k = torch.cat([extra_kv[0], k], dim=2)  # (B, nh, S + T, hd)
            v = torch.cat([extra_kv[1], v], dim=2)
        y = functional.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
        return self.proj(y.transpose(1, 2).reshape(b, n, d)), own_kv


class Block(nn.Module):
    """Pre-norm transformer block (nanoGPT) whose attention may see another stream's keys."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.width)
        self.attn = Attention(config)
        self.ln_2 = nn.LayerNorm(config.width)
        hidden = config.mlp_ratio * config.width
        self.mlp = nn.Sequential(
            nn.Linear(config.width, hidden), nn.GELU(), nn.Linear(hidden, config.width))

    def forward(self, x, key_mask, extra_kv=None):
        """Returns the updated tokens # (B, T, D) and this block's (k, v)."""
        y, kv = self.attn(self.ln_1(x), key_mask, extra_kv)
        x = x + y
        return x + self.mlp(self.ln_2(x)), kv


class FlowExpert(nn.Module):
    """π0-style action expert: prefix stream + action stream in layer-wise shared attention."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        d = config.width
        self.prefix_blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.action_blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.action_in = nn.Linear(config.action_dim, d)
        self.action_time_mlp = nn.Sequential(nn.Linear(2 * d, d), nn.SiLU(), nn.Linear(d, d))
        self.action_pos = nn.Parameter(torch.zeros(config.horizon, d))
        self.ln_f = nn.LayerNorm(d)
        self.action_out = nn.Linear(d, config.action_dim)
        nn.init.normal_(self.action_pos, std=0.02)

    def encode_prefix(self, prefix, prefix_mask=None):
        """Run the prefix stream once; its per-layer keys/values serve every denoising step.

        Args:
            prefix: context tokens. # (B, P, D)
            prefix_mask: True for real tokens, False for padding. # (B, P)

        Returns:
            A cache: (list of per-layer (k, v) # each (B, nh, P, hd), key mask # (B, P)).
        """
        if prefix_mask is None:
            prefix_mask = torch.ones(prefix.shape[:2], dtype=torch.bool, device=prefix.device)
        x, kvs = prefix, []
        for block in self.prefix_blocks:
            x, kv = block(x, prefix_mask)
            kvs.append(kv)
        return kvs, prefix_mask

    def velocity(self, x_t, t, cache):
        """Predicted flow velocity v_θ(x_t, t) given the prefix cache.

        Args:
            x_t: noisy action chunk. # (B, H, A)
            t: flow time per sample. # (B,)
            cache: the result of `encode_prefix`.

        Returns:
            The velocity. # (B, H, A)
        """
        kvs, prefix_mask = cache
        c = self.config
        time = time_embedding(t, c.width, c.time_min_period, c.time_max_period)  # (B, D)
        a = self.action_in(x_t)  # (B, H, D)
        time = time[:, None, :].expand_as(a).to(a.dtype)
        x = self.action_time_mlp(torch.cat([a, time], dim=-1)) + self.action_pos  # (B, H, D)
        action_mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        key_mask = torch.cat([prefix_mask, action_mask], dim=1)  # (B, P + H)
        for block, kv in zip(self.action_blocks, kvs):
            x, _ = block(x, key_mask, extra_kv=kv)
        return self.action_out(self.ln_f(x))

    def loss(self, prefix, actions, prefix_mask=None, generator=None):
        """Flow-matching loss (openpi convention, see the module docstring).

        Args:
            prefix: context tokens. # (B, P, D)
            actions: clean normalized action chunk. # (B, H, A)
            prefix_mask: True for real prefix tokens. # (B, P)
            generator: optional torch.Generator for the noise and the times.

        Returns:
            The scalar mean squared velocity error.
        """
        b = actions.shape[0]
        noise = _randn(actions.shape, generator, actions)  # (B, H, A)
        # Beta(1.5, 1) by inverse CDF (its CDF is t^1.5), so that a generator can drive it.
        u = torch.rand(b, generator=generator, device=_device(generator)).to(actions.device)
        t = 0.999 * u ** (1.0 / 1.5) + 0.001  # (B,)
        t_ = t[:, None, None].to(actions.dtype)
        x_t = t_ * noise + (1 - t_) * actions
        v = self.velocity(x_t, t, self.encode_prefix(prefix, prefix_mask))
        return functional.mse_loss(v, noise - actions)

    @torch.no_grad()
    def sample(self, prefix, prefix_mask=None, num_steps=10, generator=None):
        """Denoise an action chunk from Gaussian noise with `num_steps` Euler steps.

        Args:
            prefix: context tokens. # (B, P, D)
            prefix_mask: True for real prefix tokens. # (B, P)
            num_steps: Euler steps from t = 1 (noise) to t = 0 (actions).
            generator: torch.Generator for the initial noise; same generator state, same chunk.

        Returns:
            The normalized action chunk. # (B, H, A)
        """
        c = self.config
        shape = (prefix.shape[0], c.horizon, c.action_dim)
        x = _randn(shape, generator, prefix)  # (B, H, A) at t = 1
        cache = self.encode_prefix(prefix, prefix_mask)
        dt = -1.0 / num_steps
        for i in range(num_steps):
            t = torch.full((shape[0],), 1.0 + i * dt, device=prefix.device)
            x = x + dt * self.velocity(x, t, cache)
        return x


def _device(generator):
    return generator.device if generator is not None else torch.device('cpu')


def _randn(shape, generator, like):
    """Gaussian noise drawn on the generator's device, then moved next to `like`.

    Drawing on the generator's (CPU) device keeps a seeded chunk identical across devices.
    """
    noise = torch.randn(shape, generator=generator, device=_device(generator))
    return noise.to(device=like.device, dtype=like.dtype)
