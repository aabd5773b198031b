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

"""VLM4VLA action head: one learnable query token appended to the VLM input, then an MLP.

Zhang et al., "VLM4VLA: Revisiting Vision-Language-Models in Vision-Language-Action Models"
(research/seeds-vlm4vla.md section 1). The simplest VLA: no flow, no proprioception, no history.
    action = MLP(VLM([image tokens | text tokens | <ActionQuery>]))
The query is a zero-initialised embedding of the VLM width H (not a vocabulary id); the last
layer's hidden state at the query, after the final norm, feeds `FCDecoder` (the official code's
structure, which reproduces every "Policy Head Size" of the paper's Table 9 with chunk 10):
    z    = Linear(H, H/2) -> ReLU -> Linear(H/2, 1024)
    arm  = Linear(1024,1024)-ReLU-Linear(1024,512)-ReLU-Linear(512,256)-ReLU-Linear(256, C*6), tanh
    grip = same tower -> Linear(256, C)        (logits)
Loss: Huber (δ = 1) on the 6 arm dims + 0.01 · BCE on the gripper (the code's weights; the
paper's Eq. 1 has weight 1), over valid chunk steps. Inference is deterministic; the gripper is
open when sigmoid(logit) > 0.5.

On the Piper (section 6.3 [A]): the arm part is the 6 normalized joint targets (clipped to
[-1, 1], the range of tanh) and the gripper target is binary: open when the normalized opening
is above the middle of its q01..q99 range. Predictions return +1 / -1 for the gripper, which
unnormalize to the q99 / q01 opening.
Attention over the VLM input ('mask'): 'prefix_lm' (the paper's PaliGemma scheme: image
bidirectional, text and query causal), 'causal' (Qwen, Kosmos-2), 'full' (the official code's
PaliGemma call, fully bidirectional).
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from vla_nodes.models.mot import Group

QUERY = Group('query', 'vlm')

# {mask: (groups whose tokens are causal among themselves, table)}; 'query' sees everything.
MASKS = {
    'prefix_lm': (('text',), {'image': ('image',), 'text': ('image', 'text'),
                              'query': ('image', 'text', 'query')}),
    'causal': (('image', 'text'), {'image': ('image',), 'text': ('image', 'text'),
                                   'query': ('image', 'text', 'query')}),
    'full': ((), {g: ('image', 'text', 'query') for g in ('image', 'text', 'query')}),
}


@dataclass(frozen=True)
class QueryConfig:
    """VLM4VLA head settings (seeds-vlm4vla.md 6.1 defaults)."""

    head_hidden: int = 1024  # width after the first projection, the same for every VLM [P]
    arm_dim: int = 6  # continuous dims; the remaining action dim is the binary gripper
    num_queries: int = 1  # learnable tokens (Table 9: 1) [P]
    arm_loss: str = 'huber'  # 'huber' | 'mse' | 'l1'
    huber_delta: float = 1.0  # [C]
    gripper_loss_weight: float = 0.01  # [C]; 1.0 follows Eq. 1 literally
    mask: str = 'prefix_lm'  # a key of MASKS


def _tower(width, out):
    """Linear(w,w)-ReLU-Linear(w,w/2)-ReLU-Linear(w/2,w/4)-ReLU-Linear(w/4, out)."""
    return nn.Sequential(
        nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width // 2), nn.ReLU(),
        nn.Linear(width // 2, width // 4), nn.ReLU(), nn.Linear(width // 4, out))


class FCDecoder(nn.Module):
    """The policy head of the official VLM4VLA code (Xavier-uniform weights, zero biases)."""

    def __init__(self, hidden_size, chunk, arm_dim=6, head_hidden=1024):
        """Args: hidden_size H of the VLM; chunk C; arm_dim; head_hidden (1024 in the paper)."""
        super().__init__()
        self.chunk, self.arm_dim = chunk, arm_dim
        self.proj = nn.Sequential(nn.Linear(hidden_size, hidden_size // 2), nn.ReLU(),
                                  nn.Linear(hidden_size // 2, head_hidden))
        self.arm = _tower(head_hidden, chunk * arm_dim)
        self.gripper = _tower(head_hidden, chunk)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, h):
        """Decode the query state.

        Args:
            h: the VLM's last hidden state at the query. # (B, H)

        Returns:
            Arm actions in [-1, 1] # (B, C, arm_dim) and gripper logits # (B, C).
        """
        z = self.proj(h)  # (B, head_hidden)
        arm = torch.tanh(self.arm(z)).view(-1, self.chunk, self.arm_dim)
        return arm, self.gripper(z)


def vlm4vla_loss(arm, grip_logits, arm_gt, grip_gt, valid=None, arm_loss='huber',
                 huber_delta=1.0, gripper_weight=0.01):
    """VLM4VLA's loss over valid chunk steps.

    Args:
        arm: predicted arm actions. # (B, C, 6)
        grip_logits: gripper logits. # (B, C)
        arm_gt: target arm actions in [-1, 1]. # (B, C, 6)
        grip_gt: target gripper, 1 = open, 0 = closed. # (B, C)
        valid: True on real (not padded) chunk steps. # (B, C) or None
        arm_loss: 'huber', 'mse' or 'l1'.
        huber_delta: δ of the Huber loss.
        gripper_weight: weight of the BCE term.

    Returns:
        {'loss', 'arm', 'gripper', 'gripper_acc'} scalars; only 'loss' carries gradients.
    """
    if valid is None:
        valid = torch.ones(grip_gt.shape, dtype=torch.bool, device=grip_gt.device)
    w = valid.float()
    n = w.sum().clamp(min=1.0)
    if arm_loss == 'huber':
        per = functional.huber_loss(arm, arm_gt, reduction='none', delta=huber_delta)
    elif arm_loss == 'mse':
        per = functional.mse_loss(arm, arm_gt, reduction='none')
    elif arm_loss == 'l1':
        per = functional.l1_loss(arm, arm_gt, reduction='none')
    else:
        raise ValueError(f"arm_loss must be 'huber', 'mse' or 'l1', got {arm_loss!r}")
    arm_term = (per.mean(-1) * w).sum() / n
    bce = functional.binary_cross_entropy_with_logits(grip_logits, grip_gt.float(),
                                                      reduction='none')
    grip_term = (bce * w).sum() / n
    acc = (((grip_logits > 0) == (grip_gt > 0.5)).float() * w).sum() / n
    return {'loss': arm_term + gripper_weight * grip_term, 'arm': arm_term.detach(),
            'gripper': grip_term.detach(), 'gripper_acc': acc.detach()}


class QueryHead(nn.Module):
    """Learnable ActionQuery token(s) + FCDecoder, reading the VLM through the mixture."""

    def __init__(self, config, hidden_size, horizon, action_dim):
        """Args: config QueryConfig; hidden_size H of the VLM; horizon C; action_dim A."""
        super().__init__()
        if config.mask not in MASKS:
            raise ValueError(f'unknown VLM4VLA mask {config.mask!r}; known: {sorted(MASKS)}')
        if action_dim != config.arm_dim + 1:
            raise ValueError(f'VLM4VLA predicts {config.arm_dim} arm dims + 1 gripper, '
                             f'but action_dim is {action_dim}')
        self.config = config
        self.causal, self.table = MASKS[config.mask]
        self.query = nn.Parameter(torch.zeros(1, config.num_queries, hidden_size))  # [C] zeros
        self.decoder = FCDecoder(hidden_size, horizon, config.arm_dim, config.head_hidden)

    def forward(self, mot, prefix):
        """Arm actions # (B, C, 6) and gripper logits # (B, C) for a prefix (mot.Tokens)."""
        b = next(iter(prefix.hidden.values())).shape[0]
        query = self.query.expand(b, -1, -1).to(next(iter(prefix.hidden.values())).dtype)
        h = mot(prefix.add(QUERY, query), outputs=('query',))['query'][:, -1]  # (B, H)
        arm, grip = self.decoder(h.to(self.query.dtype))
        return arm, grip

    def losses(self, mot, prefix, actions, valid=None):
        """Loss against a normalized chunk # (B, C, A) (gripper last); see vlm4vla_loss."""
        arm, grip = self(mot, prefix)
        c = self.config
        arm_gt = actions[..., :c.arm_dim].clamp(-1.0, 1.0)
        grip_gt = (actions[..., c.arm_dim] > 0).float()
        return vlm4vla_loss(arm, grip, arm_gt, grip_gt, valid, c.arm_loss, c.huber_delta,
                            c.gripper_loss_weight)

    @torch.no_grad()
    def sample(self, mot, prefix):
        """The normalized chunk # (B, C, A): arm in [-1, 1], gripper +1 (open) or -1."""
        arm, grip = self(mot, prefix)
        gripper = torch.where(grip > 0, 1.0, -1.0)  # sigmoid(logit) > 0.5
        return torch.cat([arm.float(), gripper[..., None].float()], dim=-1)
