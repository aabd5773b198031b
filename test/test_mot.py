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

"""Mixture of transformers: masks cell by cell, the VLM layers as an expert, the prefix cache."""

import pytest
import torch

from vla_nodes.models.backbones import (BackboneConfig, build_backbone, byte_tokenize,
                                        TINY_PALIGEMMA, TINY_PALIGEMMA2, TINY_QWEN2_5_VL,
                                        TINY_SMOLVLM)
from vla_nodes.models.mot import (build_mask, ExpertConfig, ExpertStack, GEMMA_300M, Group, MoT,
                                  PI0_MASK, positions, Tokens)

pytestmark = pytest.mark.usefixtures('one_thread')

PI0_GROUPS = [Group('image', 'vlm'), Group('text', 'vlm'), Group('state', 'action'),
              Group('action', 'action')]
ONE_EACH = {'image': 1, 'text': 1, 'depth': 1, 'state': 1, 'action': 1}


def cells(groups, table, lengths=None):
    """The mask as a {(query group, key group): bool} table, one token per group."""
    mask = build_mask(groups, lengths or ONE_EACH, table)[0]
    return {(q.name, k.name): bool(mask[i, j]) for i, q in enumerate(groups)
            for j, k in enumerate(groups)}


def expected(rows, names):
    """A table written as rows of 0/1 in `names` order -> {(q, k): bool}."""
    return {(q, k): bool(v) for q, row in zip(names, rows) for k, v in zip(names, row)}


def test_pi0_mask_is_block_causal():
    names = ['image', 'text', 'state', 'action']
    assert cells(PI0_GROUPS, PI0_MASK) == expected([
        [1, 1, 0, 0],   # image: the prefix block, bidirectional
        [1, 1, 0, 0],   # text
        [1, 1, 1, 0],   # state: prefix and itself
        [1, 1, 1, 1],   # action: everything
    ], names)


def test_qdepth_hybrid_mask_matches_the_paper_table():
    """QDepth-VLA section 3.4.3 (spec A.1.3): proprio does not see depth; actions see all."""
    from vla_nodes.models.qdepth import QDEPTH_DREAMVLA, QDEPTH_HYBRID
    names = ['image', 'text', 'depth', 'state', 'action']
    groups = [Group(n, 'e') for n in names]
    table = [
        [1, 1, 0, 0, 0],   # image
        [1, 1, 0, 0, 0],   # text
        [1, 1, 1, 0, 0],   # depth
        [1, 1, 0, 1, 0],   # state (proprio)
        [1, 1, 1, 1, 1],   # action
    ]
    assert cells(groups, QDEPTH_HYBRID) == expected(table, names)
    table[3][2] = 1  # the "w/o Hybrid Attn" ablation: proprio -> depth
    assert cells(groups, QDEPTH_DREAMVLA) == expected(table, names)


def test_depthvla_blockwise_mask_matches_the_paper_table():
    """DepthVLA Fig. 2 (spec B.1.3): VLM and depth see only themselves; actions see all."""
    from vla_nodes.models.depthvla import DEPTHVLA_BLOCKWISE
    names = ['image', 'text', 'depth', 'state', 'action']
    groups = [Group(n, 'e') for n in names]
    assert cells(groups, DEPTHVLA_BLOCKWISE) == expected([
        [1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
    ], names)


def test_mask_tables_in_three_spellings_agree():
    as_pairs = {(q, k) for q, keys in PI0_MASK.items() for k in keys}
    as_bools = {q: {k: k in keys for k in ('image', 'text', 'state', 'action')}
                for q, keys in PI0_MASK.items()}
    reference = build_mask(PI0_GROUPS, ONE_EACH, PI0_MASK)
    assert torch.equal(build_mask(PI0_GROUPS, ONE_EACH, as_pairs), reference)
    assert torch.equal(build_mask(PI0_GROUPS, ONE_EACH, as_bools), reference)


def test_padding_keys_are_masked_and_causal_groups_are_lower_triangular():
    groups = [Group('image', 'vlm'), Group('text', 'vlm', causal=True), Group('query', 'vlm')]
    table = {'image': ('image',), 'text': ('image', 'text'), 'query': ('image', 'text', 'query')}
    valid = {'text': torch.tensor([[True, True, False], [True, False, False]])}
    mask = build_mask(groups, {'image': 2, 'text': 3, 'query': 1}, table, valid).int()
    assert mask[0].tolist() == [
        [1, 1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],   # text: causal within its group
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0, 0],   # a padded query row still sees its past, never the pad key
        [1, 1, 1, 1, 0, 1],   # query: everything real
    ]
    assert mask[1, -1].tolist() == [1, 1, 1, 0, 0, 1]


def test_positions_skip_padding_and_streams_restart():
    groups = [Group('image', 'vlm'), Group('text', 'vlm'), Group('depth', 'depth', 'depth'),
              Group('state', 'action'), Group('action', 'action')]
    valid = {'text': torch.tensor([[True, False, False]])}
    pos = positions(groups, {'image': 2, 'text': 3, 'depth': 2, 'state': 1, 'action': 2}, valid)
    assert pos['image'].tolist() == [[0, 1]] and pos['text'].tolist() == [[2, 2, 2]]
    assert pos['depth'].tolist() == [[0, 1]]  # its own stream (DepthVLA [A])
    assert pos['state'].tolist() == [[3]] and pos['action'].tolist() == [[4, 5]]


# PaliGemma-2 with a logit cap that bites on tiny random logits and a scale unequal to head_dim.
BITING_GEMMA2 = {**TINY_PALIGEMMA2, 'text_config': {
    **TINY_PALIGEMMA2['text_config'], 'attn_logit_softcapping': 0.5, 'query_pre_attn_scalar': 8}}


@pytest.mark.parametrize('family, hf_config, size, causal', [
    ('paligemma', TINY_PALIGEMMA, 56, False),  # Gemma under PaliGemma: bidirectional prefix
    # Gemma-2 alone is causal in transformers (PaliGemma-2 passes its prefix mask: below).
    ('paligemma', BITING_GEMMA2, 56, True),
    ('qwen2_5_vl', TINY_QWEN2_5_VL, 56, True),
    ('smolvlm', TINY_SMOLVLM, 64, True),
])
def test_vlm_layers_as_an_expert_equal_the_language_model(family, hf_config, size, causal):
    """The mixture re-implements the decoder loop; alone, it must be the HF forward pass."""
    torch.manual_seed(0)
    backbone = build_backbone(BackboneConfig(family, hf_config, image_size=size)).eval()
    images = torch.randint(0, 256, (2, size, size, 3), dtype=torch.uint8)
    tokens, _ = backbone.embed_prefix(images, ['pick up the cube', 'open the drawer'])
    group = Group('all', 'vlm', causal=causal)
    ours = MoT({'vlm': backbone.stack()}, {'all': ('all',)})(Tokens().add(group, tokens))['all']
    ids = torch.arange(tokens.shape[1])[None].expand(2, -1)
    theirs = backbone.language_model(inputs_embeds=tokens, position_ids=ids).last_hidden_state
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_gemma2_bidirectional_prefix_equals_the_language_model_under_a_full_mask():
    """As PaliGemma-2 runs its prefix: every token sees every token, in every layer type."""
    torch.manual_seed(0)
    backbone = build_backbone(BackboneConfig('paligemma', BITING_GEMMA2, image_size=56)).eval()
    tokens, _ = backbone.embed_prefix(torch.zeros(2, 56, 56, 3), ['pick up', 'open'])
    group = Group('all', 'vlm')
    ours = MoT({'vlm': backbone.stack()}, {'all': ('all',)})(Tokens().add(group, tokens))['all']
    n = tokens.shape[1]
    full = torch.zeros(2, 1, n, n)  # additive: nothing masked
    theirs = backbone.language_model(
        inputs_embeds=tokens, position_ids=torch.arange(n)[None].expand(2, -1),
        attention_mask={'full_attention': full, 'sliding_attention': full}).last_hidden_state
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_sequences_beyond_a_sliding_window_are_refused():
    text = {**TINY_PALIGEMMA2['text_config'], 'sliding_window': 8}
    backbone = build_backbone(BackboneConfig('paligemma', {**TINY_PALIGEMMA2,
                                                           'text_config': text})).eval()
    tokens, _ = backbone.embed_prefix(torch.zeros(1, 56, 56, 3), ['pick'])
    mot = MoT({'vlm': backbone.stack()}, {'all': ('all',)})
    with pytest.raises(ValueError, match='exceeds the sliding window of 8'):
        mot(Tokens().add(Group('all', 'vlm'), tokens))


@pytest.fixture(scope='module', params=['gemma', 'gemma2'])
def pi0_parts(request):
    torch.manual_seed(0)
    hf = TINY_PALIGEMMA if request.param == 'gemma' else BITING_GEMMA2
    backbone = build_backbone(BackboneConfig('paligemma', hf)).eval()
    expert = ExpertStack(ExpertConfig()).eval()
    mot = MoT({'vlm': backbone.stack(), 'action': expert.stack()}, PI0_MASK)
    images = torch.randint(0, 256, (2, 56, 56, 3), dtype=torch.uint8)
    prefix, mask = backbone.embed_prefix(images, ['pick up the cube', 'open'])
    tokens = (Tokens().add(Group('image', 'vlm'), prefix[:, :16])
              .add(Group('text', 'vlm'), prefix[:, 16:], mask[:, 16:])
              .add(Group('state', 'action'), torch.randn(2, 1, 32)))
    return mot, tokens


def test_state_and_actions_leave_the_vlm_outputs_unchanged(pi0_parts):
    mot, tokens = pi0_parts
    actions = Group('action', 'action')
    first = mot(tokens.add(actions, torch.randn(2, 4, 32)))
    other_state = Tokens(tokens.groups, {**tokens.hidden, 'state': torch.randn(2, 1, 32)},
                         tokens.valid)
    second = mot(other_state.add(actions, torch.randn(2, 4, 32)))
    for name in ('image', 'text'):
        assert torch.equal(first[name], second[name])
    assert (first['state'] - second['state']).abs().max() > 1e-3
    assert (first['action'] - second['action']).abs().max() > 1e-3
    # New actions alone leave the state token's output unchanged too.
    third = mot(tokens.add(actions, torch.randn(2, 4, 32)))
    assert torch.equal(first['state'], third['state'])


def test_padded_text_changes_nothing(pi0_parts):
    mot, tokens = pi0_parts
    actions = torch.randn(2, 4, 32)
    hidden = dict(tokens.hidden)
    hidden['text'] = hidden['text'].clone()
    hidden['text'][1, 5:] = 50.0  # sample 1 has 4 real text tokens ('open')
    first = mot(tokens.add(Group('action', 'action'), actions))['action']
    second = mot(Tokens(tokens.groups, hidden, tokens.valid)
                 .add(Group('action', 'action'), actions))['action']
    torch.testing.assert_close(first, second, rtol=0, atol=1e-6)
    hidden['text'][1, 2] = 50.0  # a real token
    third = mot(Tokens(tokens.groups, hidden, tokens.valid)
                .add(Group('action', 'action'), actions))['action']
    assert (third[1] - first[1]).abs().max() > 1e-3


def test_cached_prefix_equals_the_joint_pass(pi0_parts):
    mot, tokens = pi0_parts
    cache = mot.fill_cache(tokens)
    for seed in range(3):  # three "denoising steps" on one cache
        actions = torch.randn(2, 4, 32, generator=torch.Generator().manual_seed(seed))
        joint = mot(tokens.add(Group('action', 'action'), actions))['action']
        cached = mot.run_cached(cache, Group('action', 'action'), actions)
        torch.testing.assert_close(cached, joint, rtol=1e-5, atol=1e-5)


def test_cache_is_refused_when_the_prefix_sees_the_actions(pi0_parts):
    _, tokens = pi0_parts
    leaky = MoT(pi0_parts[0].stacks, {**PI0_MASK, 'state': ('image', 'text', 'state', 'action')})
    cache = leaky.fill_cache(tokens)
    with pytest.raises(ValueError, match='state.*cannot be cached'):
        leaky.run_cached(cache, Group('action', 'action'), torch.randn(2, 4, 32))


def test_experts_must_agree_on_depth():
    short = ExpertStack(ExpertConfig(num_layers=1))
    with pytest.raises(ValueError, match='same number of layers'):
        MoT({'vlm': ExpertStack(ExpertConfig()).stack(), 'action': short.stack()}, PI0_MASK)


def test_gemma_300m_expert_has_the_papers_parameter_count():
    """18 x (q, k, v, o, gated MLP, 2 norms) = 311,463,936 (spec A.7 [D]; openpi's "311M")."""
    with torch.device('meta'):
        expert = ExpertStack(GEMMA_300M)
    assert sum(p.numel() for p in expert.layers.parameters()) == 311_463_936
    assert sum(p.numel() for p in expert.norm.parameters()) == 1024


def test_byte_tokens_keep_clear_of_special_ids():
    ids, mask = byte_tokenize(['ab', 'héllo'], 4)
    assert ids.tolist() == [[100, 101, 0, 0], [107, 198, 172, 111]]
    assert mask.tolist() == [[True, True, False, False], [True] * 4]


def three_streams(table, depth_hidden, state_hidden, image_hidden=None):
    """Outputs of image, text, depth, state and action tokens under `table`."""
    torch.manual_seed(1)
    stacks = {name: ExpertStack(ExpertConfig()).eval().stack() for name in ('v', 'd', 'a')}
    g = torch.Generator().manual_seed(2)
    image = torch.randn(1, 4, 32, generator=g) if image_hidden is None else image_hidden
    tokens = (Tokens().add(Group('image', 'v'), image)
              .add(Group('text', 'v'), torch.randn(1, 3, 32, generator=g))
              .add(Group('depth', 'd', 'depth'), depth_hidden)
              .add(Group('state', 'a'), state_hidden)
              .add(Group('action', 'a'), torch.randn(1, 4, 32, generator=g)))
    return MoT(stacks, table)(tokens)


def test_information_flow_follows_the_depth_papers_masks():
    """QDepth: depth never reaches the VLM or (hybrid) the state; DepthVLA: VLM and depth apart."""
    from vla_nodes.models.depthvla import DEPTHVLA_BLOCKWISE
    from vla_nodes.models.qdepth import QDEPTH_DREAMVLA, QDEPTH_HYBRID
    g = torch.Generator().manual_seed(3)
    depth, other_depth, state = (torch.randn(1, n, 32, generator=g) for n in (4, 4, 1))
    for table, state_sees_depth in ((QDEPTH_HYBRID, False), (QDEPTH_DREAMVLA, True)):
        a, b = three_streams(table, depth, state), three_streams(table, other_depth, state)
        assert torch.equal(a['image'], b['image']) and torch.equal(a['text'], b['text'])
        assert torch.equal(a['state'], b['state']) != state_sees_depth
        assert (a['action'] - b['action']).abs().max() > 1e-4
        changed_state = three_streams(table, depth, state + 1.0)
        assert torch.equal(changed_state['depth'], a['depth'])  # depth never sees the state
    a = three_streams(DEPTHVLA_BLOCKWISE, depth, state)
    b = three_streams(DEPTHVLA_BLOCKWISE, other_depth, state)
    assert torch.equal(a['image'], b['image']) and torch.equal(a['text'], b['text'])
    moved = three_streams(DEPTHVLA_BLOCKWISE, depth, state, image_hidden=torch.ones(1, 4, 32))
    assert torch.equal(moved['depth'], a['depth'])  # the VLM never reaches the depth stream
    assert (moved['action'] - a['action']).abs().max() > 1e-4
