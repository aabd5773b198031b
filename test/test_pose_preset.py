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

"""The pose_vla presets: Pose-VLA's priors and pose pre-training objective on the π0 mixture."""

from dataclasses import asdict, replace

import pytest
import torch

from vla_nodes.contract import (ACTION, OBS_DEPTH, OBS_IMAGE, OBS_INSTRUCTION, OBS_STATE)
from vla_nodes.models import presets
from vla_nodes.models.pose_vla import PoseTokenizer
from vla_nodes.models.spatial_streams import POSE_ANSWER, POSE_INTRINSICS
from vla_nodes.models.vla import config_from_dict, VLAModel

pytestmark = pytest.mark.usefixtures('one_thread')

ANSWERS = ['left arm 0<loc0003><loc0010><transXY0001><transXY0063><transZ0005>'
           '<rot0000><rot0032><rot0063>;',
           'cup<loc0001><loc0002><transXY0002><transXY0003><transZ0004><size0007><size0008>'
           '<size0009><rot0001><rot0002><rot0003>;']


def make_batch(b=2, s=56, answers=True):
    g = torch.Generator().manual_seed(0)
    k = torch.tensor([[50.0, 0.0, 28.0], [0.0, 50.0, 28.0], [0.0, 0.0, 1.0]])
    batch = {OBS_IMAGE: torch.randint(0, 255, (b, s, s, 3), generator=g).float(),
             OBS_DEPTH: 0.3 + torch.rand(b, s, s, generator=g),
             OBS_STATE: torch.randn(b, 7, generator=g), OBS_INSTRUCTION: ['pick', 'place it'],
             ACTION: torch.randn(b, 16, 7, generator=g), POSE_INTRINSICS: k.expand(b, 3, 3)}
    if answers:
        batch[POSE_ANSWER] = ANSWERS[:b]
    return batch


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('name', ['tiny_pose_vla', 'tiny_pose_vla_pretrain'])
def test_tiny_pose_presets_take_an_optimizer_step(name):
    torch.manual_seed(0)
    model = VLAModel(presets.get(name)).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    terms = model.losses(make_batch(), generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(terms['loss'])
    terms['loss'].backward()
    priors = model.spatial.priors
    assert priors.ray.mlp[0].weight.grad is not None
    assert priors.depth.mlp[0].weight.grad is not None
    before = priors.depth.mlp[2].bias.detach().clone()
    optimizer.step()
    assert not torch.equal(before, priors.depth.mlp[2].bias)
    if name.endswith('pretrain'):
        assert terms['pose_ntp'] > 0
        # the pose tokens' embedding rows learn through the tied LM head
        rows = model.backbone.language_model.embed_tokens.weight.grad[364:]
        assert rows.abs().sum() > 0
    else:
        assert 'pose_ntp' not in terms


def test_pose_answers_map_special_tokens_to_single_vocabulary_ids():
    model = VLAModel(presets.get('tiny_pose_vla_pretrain'))
    ids, supervised = model.spatial.encode_answers(ANSWERS)
    c = model.config.pose
    name = [b + 3 for b in b'left arm 0']
    row = ids[0].tolist()
    assert row[0] == ord('\n') + 3 and row[1:1 + len(name)] == name
    special = row[1 + len(name):1 + len(name) + 8]
    assert special == [c.loc_offset + 3, c.loc_offset + 10, c.vocab_offset + c.n_rot + 1,
                       c.vocab_offset + c.n_rot + 63, c.vocab_offset + c.n_rot + c.n_xy + 5,
                       c.vocab_offset, c.vocab_offset + 32, c.vocab_offset + 63]
    n = 1 + len(name) + 8 + 2  # separator, name, 8 pose tokens, ';', eos
    assert row[n - 1] == 1 and not supervised[0, 0] and supervised[0, 1:n].all()
    assert not supervised[0, n:].any() and max(ids.max().item(), 0) < c.vocab_size
    # the tokenizer's strings line up with the ids: family order rot, transXY, transZ, size
    assert PoseTokenizer(c).token_strings()[c.n_rot] == '<transXY00>'
    with pytest.raises(ValueError, match='max_answer_tokens'):
        model.spatial.encode_answers(['x' * 100])


def test_ntp_objective_needs_answers_and_ignores_the_action_inputs():
    torch.manual_seed(0)
    model = VLAModel(presets.get('tiny_pose_vla_pretrain')).eval()
    with pytest.raises(KeyError, match=POSE_ANSWER):
        model.losses(make_batch(answers=False))
    batch = make_batch()
    first = model.losses(batch)['pose_ntp']
    other = {**batch, OBS_STATE: batch[OBS_STATE] + 5, ACTION: -batch[ACTION]}
    assert torch.allclose(model.losses(other)['pose_ntp'], first)
    answers = {**batch, POSE_ANSWER: [a.replace('0003', '0004') for a in ANSWERS]}
    assert not torch.allclose(model.losses(answers)['pose_ntp'], first)


def test_priors_change_the_image_tokens_and_are_optional_at_inference():
    torch.manual_seed(0)
    model = VLAModel(presets.get('tiny_pose_vla')).eval()
    batch = make_batch(answers=False)
    with torch.no_grad():
        plain = model.prefix({k: v for k, v in batch.items()
                              if k not in (OBS_DEPTH, POSE_INTRINSICS)}).hidden['image']
        depth = model.prefix({k: v for k, v in batch.items() if k != POSE_INTRINSICS})
        both = model.prefix(batch).hidden['image']
        direct = model.backbone.embed_images(batch[OBS_IMAGE])
    assert torch.equal(plain, direct)  # RGB only: the plain PaliGemma path
    assert not torch.allclose(depth.hidden['image'], plain)
    assert not torch.allclose(both, depth.hidden['image'])
    chunk = model.sample_actions({k: v for k, v in batch.items() if k != OBS_DEPTH},
                                 generator=torch.Generator().manual_seed(0))
    assert chunk.shape == (2, 16, 7)


def test_pose_config_survives_the_checkpoint_config_round_trip():
    config = presets.get('tiny_pose_vla_pretrain')
    assert config_from_dict(asdict(config)) == config


def test_full_pose_vla_builds_on_meta_with_the_papers_sizes():
    with torch.device('meta'):
        pose = VLAModel(presets.get('pose_vla'))
        pi0 = VLAModel(presets.get('pi0_baseline'))
    assert pose.config.horizon == 50 and pose.config.pose.n_rot == 1024
    embed = pose.backbone.language_model.embed_tokens
    assert embed.num_embeddings == 257216 + 4 * 1024  # 4,096 new pose tokens [derived]
    assert count(pose.head.expert.layers) == 311_463_936  # the π0 expert ("311M" [code])
    prior = {c: (c * 196 * 4608 + 4608) + (4608 * 1152 + 1152) for c in (3, 2)}
    assert count(pose.spatial.priors.ray) == prior[3]
    assert count(pose.spatial.priors.depth) == prior[2]
    assert count(pose) - count(pi0) == 4096 * 2048 + prior[3] + prior[2]
    print(f'pose_vla: {count(pose) / 1e9:.3f} B parameters '
          f'(pi0_baseline {count(pi0) / 1e9:.3f} B + vocabulary and priors)')
    assert 3.2e9 < count(pose) < 3.3e9  # "Ours-VLM (3B)" + the 300M expert


def test_a_released_vocabulary_is_mean_resized_for_the_pose_tokens():
    """A VLM without the pose ids (as a released PaliGemma) grows them on the embedding's mean."""
    torch.manual_seed(0)
    small = replace(presets.get('tiny_pose_vla'), backbone=presets.TINY_PI0_BASELINE.backbone)
    model = VLAModel(small)
    embed = model.backbone.language_model.embed_tokens
    c = small.pose
    assert embed.num_embeddings == c.vocab_size == 620
    old, new = embed.weight[:300], embed.weight[300:]
    assert (new.mean(0) - old.mean(0)).abs().max() < 0.5 * old.std()
    ids = torch.tensor([[5, 400]])
    scale = small.backbone.hf_config['text_config']['hidden_size'] ** 0.5  # Gemma's sqrt(D)
    torch.testing.assert_close(embed(ids)[0, 1], embed.weight[400] * scale)
