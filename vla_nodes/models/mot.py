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

"""Mixture of transformers: named token groups, one weight set per expert, attention shared.

π0 (Black et al., 2024) runs its action expert next to the PaliGemma language model as a
mixture of transformers: every token group (image, text, state, action, and for the depth papers
a depth group) goes through its own expert's weights (norms, Q/K/V/O projections, MLP), but at
each layer all queries attend over the concatenated keys/values of all groups, gated by a block
mask over the groups. QDepth-VLA and DepthVLA add a third expert the same way
(research/seeds-qdepth-depthvla.md D.1: `MoTTransformer`, `BlockMaskBuilder`).

An expert is a `Stack`: Hugging Face-style decoder layers (attributes `input_layernorm`,
`self_attn.{q,k,v,o}_proj`, `post_attention_layernorm`, `mlp`, as Gemma, Llama, Qwen2 and the
Qwen2.5-VL text model have), a final norm and a rotary embedding. The VLM's own language model is
used as its expert unchanged (backbones.py), and our experts (`ExpertStack`) are built from
transformers' GemmaDecoderLayer so that weight names mirror GemmaForCausalLM. All experts of one
mixture share the number of layers, heads, KV heads and the head size.

Masks are tables {query group: key groups it attends to}, e.g. `PI0_MASK`; `build_mask` turns a
table, the group layout and per-token validity (text padding) into a boolean (B, S, S) mask.
Inference caches the keys/values of every group that does not attend to the action tokens once
(`MoT.fill_cache`) and runs only the action group per denoising step (`MoT.run_cached`).
"""

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional


@dataclass(frozen=True)
class ExpertConfig:
    """Shape of one expert stream (a Gemma decoder stack)."""

    width: int = 32  # D_e, the expert's hidden size
    mlp_dim: int = 64
    num_layers: int = 2  # must equal the VLM's layer count (shared attention per layer)
    num_heads: int = 4
    num_kv_heads: int = 1
    head_dim: int = 16
    rope_theta: float = 10000.0
    rms_eps: float = 1e-6


# π0 / openpi shapes [C-openpi]: gemma_2b (the PaliGemma LM) and gemma_300m (the action expert).
GEMMA_2B = ExpertConfig(2048, 16384, 18, 8, 1, 256)
GEMMA_300M = ExpertConfig(1024, 4096, 18, 8, 1, 256)

# π0's block-causal mask: the prefix (image + text) is one bidirectional block that sees nothing
# else; the state token sees the prefix and itself; actions see everything (openpi ar_mask).
PI0_MASK = MappingProxyType({
    'image': ('image', 'text'),
    'text': ('image', 'text'),
    'state': ('image', 'text', 'state'),
    'action': ('image', 'text', 'state', 'action'),
})


@dataclass(frozen=True)
class Group:
    """A named run of tokens in the sequence.

    Attributes:
        name: the mask tables' name for it ('image', 'text', 'state', 'action', 'depth', ...).
        expert: which Stack's weights process it.
        stream: RoPE position stream; positions count valid tokens in order within a stream.
        causal: tokens see only earlier-or-equal tokens of their own group (text in a causal LM).
    """

    name: str
    expert: str
    stream: str = 'main'
    causal: bool = False


@dataclass
class Stack:
    """What the mixture needs from one expert: decoder layers, final norm, rotary embedding.

    `rotary(x, positions # (B, T)) -> (cos, sin) # each (B, T, head_dim)`.
    """

    layers: Sequence[nn.Module]
    norm: nn.Module
    rotary: Callable


class ExpertStack(nn.Module):
    """Gemma decoder layers (transformers' GemmaDecoderLayer) + final RMSNorm: one expert."""

    def __init__(self, config: ExpertConfig):
        super().__init__()
        from transformers import GemmaConfig
        from transformers.models.gemma.modeling_gemma import (
            GemmaDecoderLayer, GemmaRMSNorm, GemmaRotaryEmbedding)

        hf = GemmaConfig(
            hidden_size=config.width, intermediate_size=config.mlp_dim,
            num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
            num_key_value_heads=config.num_kv_heads, head_dim=config.head_dim,
            rms_norm_eps=config.rms_eps, vocab_size=1, pad_token_id=None, bos_token_id=None,
            eos_token_id=None,
            rope_parameters={'rope_type': 'default', 'rope_theta': config.rope_theta})
        self.config = config
        self.layers = nn.ModuleList(GemmaDecoderLayer(hf, i) for i in range(config.num_layers))
        self.norm = GemmaRMSNorm(config.width, eps=config.rms_eps)
        self.rotary_emb = GemmaRotaryEmbedding(hf)
        # Gemma's init: N(0, 0.02) weights, zero biases; RMSNorm weights 0 mean a scale of 1.
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)

    def stack(self):
        """This expert as a Stack."""
        return Stack(self.layers, self.norm, self.rotary_emb)


def normalize_table(table):
    """A mask table as a frozenset of allowed (query group, key group) pairs.

    Accepts {query: (keys, ...)}, {query: {key: bool}} or an iterable of (query, key) pairs.
    """
    if isinstance(table, (dict, MappingProxyType)):
        pairs = set()
        for query, keys in table.items():
            if isinstance(keys, (dict, MappingProxyType)):
                pairs |= {(query, k) for k, allowed in keys.items() if allowed}
            else:
                pairs |= {(query, k) for k in keys}
        return frozenset(pairs)
    return frozenset(tuple(pair) for pair in table)


def build_mask(groups, lengths, table, valid=None, batch=1, device=None):
    """Boolean attention mask over a sequence of named groups.

    Args:
        groups: the Groups in sequence order.
        lengths: {group name: number of tokens}.
        table: which query group attends to which key group (see normalize_table).
        valid: optional {group name: True on real tokens # (B, T)}; invalid keys are masked.
        batch: B when `valid` is None.
        device: where the mask goes.

    Returns:
        True where query token i may attend to key token j. # (B, S, S), S = sum of lengths

    Raises:
        ValueError: a group name is used twice.
    """
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise ValueError(f'group names must be unique, got {names}')
    allowed = normalize_table(table)
    total = sum(lengths[n] for n in names)
    mask = torch.zeros(total, total, dtype=torch.bool, device=device)
    starts = _starts(groups, lengths)
    for q in groups:
        rows = slice(starts[q.name], starts[q.name] + lengths[q.name])
        for k in groups:
            cols = slice(starts[k.name], starts[k.name] + lengths[k.name])
            if q.name == k.name and q.causal:
                n = lengths[q.name]
                mask[rows, cols] = torch.ones(n, n, dtype=torch.bool, device=device).tril()
            elif (q.name, k.name) in allowed:
                mask[rows, cols] = True
    keys = _valid_row(groups, lengths, valid, batch, device)  # (B, S)
    return mask[None] & keys[:, None, :]


def positions(groups, lengths, valid=None, batch=1, device=None):
    """RoPE positions per group: valid tokens counted from 0 within each position stream.

    openpi's rule (positions = cumsum(input_mask) - 1): padding does not advance the count, so
    the state and action tokens follow the last real text token whatever the padding.

    Returns:
        {group name: positions # (B, T) int64}.
    """
    counts, out = {}, {}
    for g in groups:
        ok = _valid(g, lengths, valid, batch, device).long()  # (B, T)
        start = counts.get(g.stream, torch.zeros(ok.shape[0], 1, dtype=torch.long,
                                                 device=ok.device))
        pos = start + ok.cumsum(1) - 1
        out[g.name] = pos.clamp(min=0)
        counts[g.stream] = pos[:, -1:] + 1
    return out


def _starts(groups, lengths):
    starts, offset = {}, 0
    for g in groups:
        starts[g.name] = offset
        offset += lengths[g.name]
    return starts


def _valid(group, lengths, valid, batch, device):
    if valid is not None and group.name in valid:
        return valid[group.name].to(device=device, dtype=torch.bool)
    b = next(iter(valid.values())).shape[0] if valid else batch
    return torch.ones(b, lengths[group.name], dtype=torch.bool, device=device)


def _valid_row(groups, lengths, valid, batch, device):
    return torch.cat([_valid(g, lengths, valid, batch, device) for g in groups], dim=1)


def _rotate(x, cos, sin):
    """Rotary embedding, rotate-half convention (as transformers). x # (B, h, T, hd)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[:, None] + rotated * sin[:, None]


@dataclass
class Tokens:
    """A sequence under construction: groups in order, their hidden states and validity."""

    groups: list = field(default_factory=list)
    hidden: dict = field(default_factory=dict)  # name -> (B, T, D_expert)
    valid: dict = field(default_factory=dict)  # name -> (B, T) bool, only where padded

    def add(self, group, hidden, valid=None):
        """A new Tokens with `group` appended (the original is left alone)."""
        out = Tokens(self.groups + [group], {**self.hidden, group.name: hidden}, dict(self.valid))
        if valid is not None:
            out.valid[group.name] = valid
        return out

    def lengths(self):
        return {name: h.shape[1] for name, h in self.hidden.items()}


@dataclass
class Cache:
    """Per-layer keys/values of the cached groups, post-RoPE. # each (B, kv_heads, P, hd)."""

    tokens: Tokens
    keys: list
    values: list
    positions: dict  # stream -> next position # (B, 1)
    masks: dict = field(default_factory=dict)  # (group name, T) -> rows of the new group


class MoT:
    """Runs token groups through their experts with attention shared at every layer.

    Holds no weights: the experts are Stacks owned elsewhere (the backbone, the heads).
    """

    def __init__(self, stacks, table):
        """Args: stacks {expert name: Stack}; table: the mask table (see normalize_table)."""
        self.stacks = stacks
        self.table = table
        depths = {name: len(s.layers) for name, s in stacks.items()}
        if len(set(depths.values())) != 1:
            raise ValueError(f'experts of one mixture need the same number of layers: {depths}')
        self.num_layers = next(iter(depths.values()))

    def __call__(self, tokens, outputs=None, capture=()):
        """Joint pass over every group (training, or inference without the cache).

        Args:
            tokens: the sequence (Tokens).
            outputs: names of the groups whose outputs are wanted (default: all). The last
                layer's attention output, MLP and final norm are skipped for the others, as
                open-pi-zero does for the VLM under an action head.
            capture: groups whose residual stream is also returned after every layer, as
                transformers' hidden_states (Spatial Forcing aligns one of them).

        Returns:
            {group name: final-norm outputs # (B, T, D_expert)} for the wanted groups, and
            {'<name>.layers': [embeddings, layer 1 output, ...] # each (B, T, D)} per capture.
        """
        lengths = tokens.lengths()
        b, device = _batch(tokens)
        mask = build_mask(tokens.groups, lengths, self.table, tokens.valid, b, device)
        pos = positions(tokens.groups, lengths, tokens.valid, b, device)
        wanted = set(lengths if outputs is None else outputs)
        out, _ = self._run(tokens, mask, pos, None, wanted=wanted, capture=capture)
        return out

    def fill_cache(self, tokens):
        """Run the prefix groups once and keep their keys/values for `run_cached`.

        Returns:
            A Cache (outputs of the prefix are not needed by the flow head).
        """
        lengths = tokens.lengths()
        b, device = _batch(tokens)
        mask = build_mask(tokens.groups, lengths, self.table, tokens.valid, b, device)
        pos = positions(tokens.groups, lengths, tokens.valid, b, device)
        _, (keys, values) = self._run(tokens, mask, pos, None, keep_kv=True, wanted=set())
        nxt = {}
        for g in tokens.groups:
            nxt[g.stream] = pos[g.name][:, -1:] + 1
        return Cache(tokens, keys, values, nxt)

    def run_cached(self, cache, group, hidden):
        """Run one new group that attends to the cached groups (a denoising step).

        Raises:
            ValueError: the mask lets a cached group attend to `group` (then the cache would be
                stale: the prefix's outputs depend on the new tokens).
        """
        allowed = normalize_table(self.table)
        leaks = [g.name for g in cache.tokens.groups if (g.name, group.name) in allowed]
        if leaks:
            raise ValueError(f'groups {leaks} attend to {group.name!r}: their keys/values '
                             'cannot be cached; use a block-causal mask (e.g. PI0_MASK)')
        b, device = _batch(cache.tokens)
        key = (group.name, hidden.shape[1])
        if key not in cache.masks:  # the same for every denoising step
            full = cache.tokens.add(group, hidden)
            mask = build_mask(full.groups, full.lengths(), self.table, full.valid, b, device)
            cache.masks[key] = mask[:, -hidden.shape[1]:]  # (B, T, P + T): the new rows
        mask = cache.masks[key]
        start = cache.positions.get(group.stream)
        if start is None:
            start = torch.zeros(b, 1, dtype=torch.long, device=device)
        pos = {group.name: start + torch.arange(hidden.shape[1], device=device)[None]}
        new = Tokens([group], {group.name: hidden})
        out, _ = self._run(new, mask, pos, cache, wanted={group.name})
        return out[group.name]

    def _run(self, tokens, mask, pos, cache, keep_kv=False, wanted=None, capture=()):
        x = dict(tokens.hidden)
        states = {name: [x[name]] for name in capture}
        kept_k, kept_v = [], []
        additive = None
        for i in range(self.num_layers):
            qs, ks, vs, caps, windows, normed = [], [], [], [], [], {}
            for g in tokens.groups:
                layer = self.stacks[g.expert].layers[i]
                attn = layer.self_attn
                h = layer.input_layernorm(x[g.name])
                q, k, v = _project(attn, h)  # (B, heads, T, hd)
                cos, sin = self.stacks[g.expert].rotary(h, pos[g.name])
                # Each query group scores with its own expert's scale and logit cap (Gemma-2's
                # query_pre_attn_scalar and soft-cap), so an expert alone computes as in the mix.
                qs.append(_rotate(q, cos.to(q.dtype), sin.to(q.dtype)) * attn.scaling)
                cap = getattr(attn, 'attn_logit_softcapping', None)
                caps.append(torch.full((q.shape[2],), float(cap or 0.0), device=q.device))
                windows.append(attn)
                ks.append(_rotate(k, cos.to(k.dtype), sin.to(k.dtype)))
                vs.append(v)
                normed[g.name] = h
            q, k, v = torch.cat(qs, 2), torch.cat(ks, 2), torch.cat(vs, 2)
            if keep_kv:
                kept_k.append(k)
                kept_v.append(v)
            if cache is not None:
                k = torch.cat([cache.keys[i].to(k.dtype), k], dim=2)
                v = torch.cat([cache.values[i].to(v.dtype), v], dim=2)
            if additive is None or additive.dtype != q.dtype:
                additive = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(
                    ~mask, torch.finfo(q.dtype).min)[:, None]  # (B, 1, T, S)
            for attn in windows:
                _check_window(attn, k.shape[2])
            y = _attention(q, k, v, additive, torch.cat(caps))
            y = y.transpose(1, 2).flatten(2)  # (B, T, heads * hd)
            start, last = 0, i == self.num_layers - 1
            for g in tokens.groups:
                n = x[g.name].shape[1]
                start += n
                if last and g.name not in wanted and g.name not in states:
                    continue  # only its keys/values mattered
                layer = self.stacks[g.expert].layers[i]
                attended = layer.self_attn.o_proj(y[:, start - n:start])
                x[g.name] = _residual(layer, x[g.name], attended)
                if g.name in states:
                    states[g.name].append(x[g.name])
        out = {g.name: self.stacks[g.expert].norm(x[g.name])
               for g in tokens.groups if g.name in wanted}
        out.update({f'{name}.layers': layers for name, layers in states.items()})
        return out, (kept_k, kept_v)


def _residual(layer, x, attended):
    """The layer's residual updates after attention (Gemma-1/Llama/Qwen, or Gemma-2 sandwich)."""
    if hasattr(layer, 'pre_feedforward_layernorm'):  # Gemma-2: norms after attention and MLP
        h = x + layer.post_attention_layernorm(attended)
        return h + layer.post_feedforward_layernorm(layer.mlp(layer.pre_feedforward_layernorm(h)))
    h = x + attended
    return h + layer.mlp(layer.post_attention_layernorm(h))


def _attention(q, k, v, additive, caps):
    """Softmax attention of pre-scaled queries; rows with a cap > 0 get Gemma-2's soft-cap.

    The tanh logit soft-cap is cap · tanh(s / cap).
    q # (B, heads, T, hd), caps # (T,) -> (B, heads, T, hd).
    """
    if not bool((caps > 0).any()):
        return functional.scaled_dot_product_attention(
            q, k, v, attn_mask=additive, scale=1.0, enable_gqa=q.shape[1] != k.shape[1])
    groups = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    scores = q @ k.transpose(2, 3)  # (B, heads, T, S)
    cap = caps.to(scores.dtype)[:, None]  # (T, 1)
    capped = torch.tanh(scores / cap.clamp_min(1e-6)) * cap
    scores = torch.where(cap > 0, capped, scores) + additive
    return torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype) @ v


def _check_window(attn, length):
    """Sliding-window layers (Gemma-2) equal full attention only within their window.

    `length`: the keys of the whole sequence (cached prefix included), which bounds the
    query-key distance.
    """
    window = getattr(attn, 'sliding_window', None)
    if window is not None and length > window:
        raise ValueError(f'sequence of {length} tokens exceeds the sliding window of {window} '
                         'of this backbone; shorten the prefix (fewer image or text tokens)')


def _project(attn, h):
    """Q, K, V of one group through one expert's attention. # each (B, heads, T, hd)."""
    b, t = h.shape[:2]
    hd = attn.head_dim
    q = attn.q_proj(h).view(b, t, -1, hd)
    k = attn.k_proj(h).view(b, t, -1, hd)
    v = attn.v_proj(h).view(b, t, -1, hd)
    if hasattr(attn, 'q_norm'):  # Qwen3-style per-head norms
        q, k = attn.q_norm(q), attn.k_norm(k)
    return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)


def _batch(tokens):
    h = next(iter(tokens.hidden.values()))
    return h.shape[0], h.device
