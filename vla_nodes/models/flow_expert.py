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

"""Flow-matching action head: a π0 action expert in shared attention with the VLM.

The π0 recipe (Black et al., 2024, "π0: A Vision-Language-Action Flow Model for General Robot
Control"), as openpi implements it and as DepthVLA (Yuan et al., 2025) re-implements it
(research/seeds-qdepth-depthvla.md B.1.1, B.2). The head owns a Gemma-shaped expert (mot.py,
300M-class at full size: GEMMA_300M) and the action I/O layers of openpi:
    state token   = state_proj(state)                                       # (B, 1, D_e)
    action tokens = action_time_mlp(cat(action_in_proj(x_t), sincos(t)))    # (B, H, D_e)
    velocity      = action_out_proj(expert outputs at the action tokens)    # (B, H, A)
Groups 'state' and 'action' join the prefix groups in one mixture of transformers; the mask is
block-causal (mot.PI0_MASK), so the prefix and the state never see the actions and their
keys/values are computed once per chunk and reused by every denoising step.

Flow convention (openpi), noise ε ~ N(0, I), clean normalized actions A:
    t ~ 0.999 · Beta(1.5, 1) + 0.001        (t = 1 is pure noise, t = 0 is data)
    x_t = t · ε + (1 − t) · A,    target u = ε − A,    loss = mean((v_θ(x_t, t) − u)²)
    sampling: x_1 = ε, Euler steps x ← x + dt · v_θ(x, t), dt = −1 / num_steps, t: 1 → 0.
Beta(1.5, 1) puts more training time near t = 1, the noisy end.
"""

from dataclasses import dataclass
import math

import torch
from torch import nn
from torch.nn import functional

from vla_nodes.models.mot import ExpertStack, Group


@dataclass(frozen=True)
class FlowConfig:
    """Flow-matching settings (openpi's π0 values)."""

    num_steps: int = 10  # Euler steps at inference [C-openpi]
    beta_alpha: float = 1.5  # t ~ Beta(alpha, 1) [C-openpi]
    time_min_period: float = 4e-3  # posemb_sincos periods [C-openpi]
    time_max_period: float = 4.0


STATE = Group('state', 'action')
ACTION = Group('action', 'action')


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


def sample_time(batch, alpha=1.5, generator=None, device=None):
    """Flow times t = 0.999 · Beta(alpha, 1) + 0.001, shape (B,).

    Beta(alpha, 1) by inverse CDF (its CDF is t^alpha), so that a torch.Generator drives it.
    """
    u = torch.rand(batch, generator=generator, device=_device(generator))
    return (0.999 * u ** (1.0 / alpha) + 0.001).to(device)


def flow_pair(actions, t, noise):
    """The noisy chunk and its target velocity.

    Args:
        actions: clean chunk A. # (B, H, A)
        t: flow times. # (B,)
        noise: ε. # (B, H, A)

    Returns:
        x_t = t ε + (1 - t) A and u = ε - A, each # (B, H, A).
    """
    t_ = t[:, None, None].to(actions.dtype)
    return t_ * noise + (1 - t_) * actions, noise - actions


def euler_sample(velocity, noise, num_steps):
    """Integrate dx/dt = velocity(x, t) from t = 1 (noise) to t = 0 (data).

    Args:
        velocity: callable (x # (B, H, A), t # (B,)) -> (B, H, A).
        noise: x at t = 1. # (B, H, A)
        num_steps: Euler steps.

    Returns:
        x at t = 0. # (B, H, A)
    """
    x, dt = noise, -1.0 / num_steps
    for i in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 + i * dt, device=x.device)
        x = x + dt * velocity(x, t)
    return x


class FlowHead(nn.Module):
    """π0 action expert: state/action token I/O + a Gemma expert stream in the mixture."""

    def __init__(self, flow, expert, state_dim, action_dim, horizon):
        """Build the head.

        Args:
            flow: a FlowConfig.
            expert: the ExpertConfig of the action expert (heads, KV heads, head size and layer
                count equal to the VLM's).
            state_dim: S, normalized state size.
            action_dim: A, normalized action size.
            horizon: H, chunk length.
        """
        super().__init__()
        d = expert.width
        self.flow, self.horizon, self.action_dim = flow, horizon, action_dim
        self.expert = ExpertStack(expert)
        self.state_proj = nn.Linear(state_dim, d)
        self.action_in_proj = nn.Linear(action_dim, d)
        self.action_time_mlp_in = nn.Linear(2 * d, d)
        self.action_time_mlp_out = nn.Linear(d, d)
        self.action_out_proj = nn.Linear(d, action_dim)

    def embed_state(self, state):
        """State # (B, S) -> one token # (B, 1, D_e)."""
        return self.state_proj(state.to(self.state_proj.weight.dtype))[:, None]

    def embed_actions(self, x_t, t):
        """Noisy chunk # (B, H, A) at times t # (B,) -> action tokens # (B, H, D_e)."""
        a = self.action_in_proj(x_t.to(self.action_in_proj.weight.dtype))  # (B, H, D_e)
        f = self.flow
        time = time_embedding(t, a.shape[-1], f.time_min_period, f.time_max_period)
        time = time[:, None].expand_as(a).to(a.dtype)
        h = functional.silu(self.action_time_mlp_in(torch.cat([a, time], -1)))
        return self.action_time_mlp_out(h)

    def losses(self, mot, prefix, state, actions, generator=None, noise=None, time=None,
               valid=None, outputs=(), capture=()):
        """Flow-matching loss on one batch.

        Args:
            mot: the mixture (mot.MoT) with an 'action' expert = this head's stack.
            prefix: mot.Tokens of the observation groups.
            state: normalized state. # (B, S)
            actions: clean normalized chunk. # (B, H, A)
            generator: optional torch.Generator for the noise and the times.
            noise: optional ε # (B, H, A) and time: optional t # (B,) drawn by the caller
                (DDP draws them for the global batch so that a split batch matches a whole one).
            valid: optional, True on real (not padded) chunk steps # (B, H).
            outputs, capture: other groups' outputs and layer-wise states to return (mot.MoT),
                for auxiliary losses (QDepth-VLA, DepthVLA, Spatial Forcing).

        Returns:
            {'loss': scalar, 'flow': the same scalar detached, 'outputs': the mixture's outputs}.
        """
        if noise is None:
            noise = _randn(actions.shape, generator, actions)
        if time is None:
            time = sample_time(actions.shape[0], self.flow.beta_alpha, generator, actions.device)
        noise, time = noise.to(actions.device), time.to(actions.device)
        x_t, target = flow_pair(actions, time, noise)
        tokens = prefix.add(STATE, self.embed_state(state))
        tokens = tokens.add(ACTION, self.embed_actions(x_t, time))
        out = mot(tokens, outputs=('action',) + tuple(outputs), capture=capture)
        v = self.action_out_proj(out['action'])  # (B, H, A)
        err = (v.float() - target.float()) ** 2  # (B, H, A)
        if valid is None:
            loss = err.mean()
        else:
            w = valid.to(err.dtype)[..., None].expand_as(err)
            loss = (err * w).sum() / w.sum().clamp(min=1.0)
        return {'loss': loss, 'flow': loss.detach(), 'outputs': out}

    def sample(self, mot, prefix, state, generator=None, num_steps=None, use_cache=True):
        """Denoise a chunk from Gaussian noise.

        Args:
            mot, prefix, state: as for `losses`.
            generator: torch.Generator for the initial noise; same state, same chunk.
            num_steps: Euler steps (default flow.num_steps).
            use_cache: compute the prefix and state keys/values once (π0) instead of re-running
                the whole sequence at every step; both give the same chunk.

        Returns:
            The normalized chunk. # (B, H, A)
        """
        b = state.shape[0]
        noise = _randn((b, self.horizon, self.action_dim), generator, state)
        tokens = prefix.add(STATE, self.embed_state(state))
        if use_cache:
            cache = mot.fill_cache(tokens)

            def velocity(x, t):
                h = mot.run_cached(cache, ACTION, self.embed_actions(x, t))
                return self.action_out_proj(h).to(x.dtype)
        else:
            def velocity(x, t):
                h = mot(tokens.add(ACTION, self.embed_actions(x, t)), outputs=('action',))
                h = h['action']
                return self.action_out_proj(h).to(x.dtype)
        return euler_sample(velocity, noise.float(), num_steps or self.flow.num_steps)


def _device(generator):
    return generator.device if generator is not None else torch.device('cpu')


def _randn(shape, generator, like):
    """Gaussian noise drawn on the generator's device, then moved next to `like` (float32).

    Drawing on the generator's (CPU) device keeps a seeded chunk identical across devices.
    """
    noise = torch.randn(shape, generator=generator, device=_device(generator))
    return noise.to(device=like.device, dtype=torch.float32)
