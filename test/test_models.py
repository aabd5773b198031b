"""Tiny random-weight models: shapes, a real learning signal, determinism, depth, save/load."""

import math

import pytest
import torch

from vla_nodes.contract import ACTION, OBS_DEPTH, OBS_IMAGE, OBS_INSTRUCTION, OBS_STATE
from vla_nodes.models.backbones import byte_tokenize, TEXT_PAD_ID
from vla_nodes.models.flow_expert import FlowExpert, FlowExpertConfig, time_embedding
from vla_nodes.models.vla import config_from_dict, VLAConfig, VLAModel

# 32 px keeps the overfitting test at about 3 s on 2 cores; the default is 64.
SMALL = VLAConfig(image_size=32)


pytestmark = pytest.mark.usefixtures('one_thread')


def make_model(config=SMALL, seed=0):
    torch.manual_seed(seed)
    return VLAModel(config).eval()


def make_batch(config=SMALL, batch=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    s = config.image_size
    return {
        OBS_IMAGE: torch.randint(0, 256, (batch, s, s, 3), dtype=torch.uint8, generator=g),
        OBS_DEPTH: 0.3 + torch.rand(batch, s, s, generator=g),
        OBS_STATE: torch.randn(batch, config.state_dim, generator=g),
        OBS_INSTRUCTION: ['pick up the cube', 'open the drawer'][:batch],
        ACTION: torch.randn(batch, config.horizon, config.action_dim, generator=g),
    }


def sample(model, batch, seed):
    return model.sample_actions(batch, torch.Generator().manual_seed(seed))


def test_time_embedding_is_sin_then_cos():
    emb = time_embedding(torch.tensor([0.0, 0.5]), 8, 4e-3, 4.0)
    assert emb.shape == (2, 8)
    assert torch.equal(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    # The longest period is 4.0, so t = 0.5 is an eighth of a turn on the last pair.
    assert emb[1, 3].item() == pytest.approx(math.sin(2 * math.pi * 0.5 / 4.0), abs=1e-6)


def test_byte_tokenize_pads_and_truncates_utf8():
    ids, mask = byte_tokenize(['ab', 'héllo'], 4)
    assert ids.tolist() == [[97, 98, TEXT_PAD_ID, TEXT_PAD_ID], [104, 195, 169, 108]]
    assert mask.tolist() == [[True, True, False, False], [True] * 4]


def test_flow_expert_shapes_and_padding_is_ignored():
    torch.manual_seed(0)
    expert = FlowExpert(FlowExpertConfig()).eval()
    prefix = torch.randn(2, 10, 64)  # (B, P, D)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[:, -3:] = False
    assert expert.loss(prefix, torch.randn(2, 16, 7), mask).shape == ()
    first = expert.sample(prefix, mask, generator=torch.Generator().manual_seed(0))
    assert first.shape == (2, 16, 7)
    changed = prefix.clone()
    changed[:, -3:] = 100.0  # padded tokens: must not matter
    again = expert.sample(changed, mask, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(first, again, atol=1e-6)
    changed[:, 0] = 100.0  # a real token: must matter
    other = expert.sample(changed, mask, generator=torch.Generator().manual_seed(0))
    assert (first - other).abs().max() > 1e-3


def test_vla_shapes():
    model = make_model()
    batch = make_batch()
    prefix, mask = model.embed_prefix(batch)
    # 16 image + 16 depth patches (32 px / 8), 1 state token, 32 text bytes.
    assert prefix.shape == (2, 65, 64) and mask.shape == (2, 65)
    assert mask[0].sum().item() == 33 + len('pick up the cube')
    assert model.loss(batch).shape == ()
    assert sample(model, batch, 0).shape == (2, 16, 7)


def test_overfitting_one_batch_learns_the_chunk():
    model = make_model().train()
    one = make_batch(batch=1)
    t = torch.linspace(0, 1, 16)[:, None]
    target = (0.8 * torch.sin(3 * t + 0.5 * torch.arange(7)))[None]  # (1, 16, 7)
    # The same observation 8 times: 8 noise draws per step lower the variance of the loss.
    batch = {k: v.expand(8, *v.shape[1:]) if torch.is_tensor(v) else v * 8
             for k, v in {**one, ACTION: target}.items()}
    before = (sample(model.eval(), one, 5) - target).abs().mean().item()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(100):
        loss = model.loss(batch, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) < 0.3 * sum(losses[:10])
    after = (sample(model.eval(), one, 5) - target).abs().mean().item()
    assert after < 0.2 < before  # zero actions would score 0.51


def test_same_seed_same_chunk_other_seed_other_chunk():
    model = make_model()
    batch = make_batch()
    assert torch.equal(sample(model, batch, 3), sample(model, batch, 3))
    assert (sample(model, batch, 3) - sample(model, batch, 4)).abs().max() > 1e-2


def test_depth_changes_actions_and_nan_depth_is_safe():
    model = make_model()
    batch = make_batch()
    nearer = {**batch, OBS_DEPTH: batch[OBS_DEPTH] - 0.2}
    assert (sample(model, batch, 0) - sample(model, nearer, 0)).abs().max() > 1e-3
    holes = batch[OBS_DEPTH].clone()
    holes[:, :8] = float('nan')
    with_holes = sample(model, {**batch, OBS_DEPTH: holes}, 0)
    assert torch.isfinite(with_holes).all()
    assert (with_holes - sample(model, batch, 0)).abs().max() > 1e-3


def test_instruction_changes_actions():
    model = make_model()
    batch = make_batch()
    other = {**batch, OBS_INSTRUCTION: ['close the drawer', 'open the drawer']}
    diff = (sample(model, batch, 0) - sample(model, other, 0)).abs()
    assert diff[0].max() > 1e-3
    assert diff[1].max() < 1e-5  # same instruction, same sample


def test_save_load_round_trip(tmp_path):
    model = make_model(seed=7)
    batch = make_batch()
    model.save_pretrained(tmp_path / 'ckpt')
    assert {p.name for p in (tmp_path / 'ckpt').iterdir()} == {'config.json', 'model.safetensors'}
    loaded = VLAModel.from_pretrained(tmp_path / 'ckpt')
    assert loaded.config == model.config
    assert torch.equal(sample(model, batch, 1), sample(loaded, batch, 1))
    assert not torch.equal(sample(make_model(seed=8), batch, 1), sample(loaded, batch, 1))


def test_from_pretrained_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere'.*config\.json"):
        VLAModel.from_pretrained(tmp_path / 'nowhere')
    make_model().save_pretrained(tmp_path / 'half')
    (tmp_path / 'half' / 'model.safetensors').unlink()
    with pytest.raises(FileNotFoundError, match=r'model\.safetensors'):
        VLAModel.from_pretrained(tmp_path / 'half')


def test_config_refuses_unknown_fields():
    with pytest.raises(ValueError, match='hidden_size'):
        config_from_dict({'width': 64, 'hidden_size': 3})
    assert config_from_dict({'width': 32}) == VLAConfig(width=32)
