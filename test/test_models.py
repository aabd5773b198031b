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

"""The model library: flow matching, tiny presets train, full ones count, VLM4VLA, save/load."""

from dataclasses import replace
import math

import pytest
import torch

from vla_nodes.contract import (ACTION, OBS_DEPTH, OBS_ENV_STATE, OBS_IMAGE, OBS_INSTRUCTION,
                                OBS_STATE)
from vla_nodes.models import presets
from vla_nodes.models.backbones import (BackboneConfig, build_backbone, TINY_PALIGEMMA,
                                        TINY_QWEN2_5_VL, TINY_SMOLVLM)
from vla_nodes.models.flow_expert import euler_sample, flow_pair, sample_time, time_embedding
from vla_nodes.models.mot import ExpertConfig
from vla_nodes.models.query_head import FCDecoder, MASKS, vlm4vla_loss
from vla_nodes.models.spatial_streams import SF_TARGET
from vla_nodes.models.vla import (ACTION_PAD, config_from_dict, unused_vlm_parameters, VLAConfig,
                                  VLAModel)

pytestmark = pytest.mark.usefixtures('one_thread')

TINY = ['tiny_pi0_baseline', 'tiny_pi0_depth', 'tiny_vlm4vla', 'tiny_pi0_smolvlm',
        'tiny_qdepth_vla', 'tiny_depthvla', 'tiny_spatial_forcing']


def make_model(name='tiny_pi0_depth', seed=0):
    torch.manual_seed(seed)
    return VLAModel(presets.get(name)).eval()


def make_batch(config, batch=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    s = config.image_size
    return {
        OBS_IMAGE: torch.randint(0, 256, (batch, s, s, 3), dtype=torch.uint8, generator=g),
        OBS_DEPTH: 0.3 + torch.rand(batch, s, s, generator=g),
        OBS_STATE: torch.randn(batch, config.state_dim, generator=g),
        OBS_INSTRUCTION: ['pick up the cube', 'open the drawer'][:batch],
        ACTION: torch.randn(batch, config.horizon, config.action_dim, generator=g).clamp(-1, 1),
        SF_TARGET: torch.randn(batch, 16, config.sf.teacher_width, generator=g),
    }


def sample(model, batch, seed, **kw):
    return model.sample_actions(batch, torch.Generator().manual_seed(seed), **kw)


@pytest.fixture(scope='module')
def depth_model():
    return make_model()


# --- flow matching ------------------------------------------------------------------------------

def test_time_embedding_is_sin_then_cos():
    emb = time_embedding(torch.tensor([0.0, 0.5]), 8, 4e-3, 4.0)
    assert torch.equal(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    # The longest period is 4.0, so t = 0.5 is an eighth of a turn on the last pair.
    assert emb[1, 3].item() == pytest.approx(math.sin(2 * math.pi * 0.5 / 4.0), abs=1e-6)


def test_beta_times_lie_in_range_with_the_beta_mean():
    t = sample_time(20000, 1.5, torch.Generator().manual_seed(0))
    assert t.min() >= 0.001 and t.max() <= 1.0
    # Beta(1.5, 1) has mean 0.6 (alpha / (alpha + beta)): 0.999 * 0.6 + 0.001.
    assert t.mean().item() == pytest.approx(0.6004, abs=0.01)
    assert (t > 0.5).float().mean() > 0.6  # more mass at the noisy end (1 - 0.5^1.5 = 0.65)


def test_euler_with_the_exact_velocity_recovers_the_data():
    """Straight paths: the target velocity u = ε - A is constant, so Euler is exact."""
    g = torch.Generator().manual_seed(0)
    data, noise = torch.randn(2, 4, 7, generator=g), torch.randn(2, 4, 7, generator=g)
    x_half, u = flow_pair(data, torch.full((2,), 0.5), noise)
    torch.testing.assert_close(x_half, 0.5 * (data + noise))
    out = euler_sample(lambda x, t: u, noise, num_steps=10)
    torch.testing.assert_close(out, data, rtol=0, atol=1e-5)


def test_overfitting_one_observation_learns_its_chunk():
    model = make_model('tiny_pi0_baseline').train()
    config = model.config
    one = make_batch(config, batch=1)
    t = torch.linspace(0, 1, config.horizon)[:, None]
    target = (0.8 * torch.sin(3 * t + 0.5 * torch.arange(7)))[None]  # (1, 16, 7)
    # The same observation 8 times: 8 noise draws per step lower the variance of the loss.
    batch = {k: v.expand(8, *v.shape[1:]) if torch.is_tensor(v) else v * 8
             for k, v in {**one, ACTION: target}.items()}
    before = (sample(model.eval(), one, 5) - target).abs().mean().item()
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(80):
        loss = model.loss(batch, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) < 0.3 * sum(losses[:10])
    after = (sample(model.eval(), one, 5) - target).abs().mean().item()
    assert after < 0.25 < before  # zero actions would score 0.51


# --- every tiny preset trains -------------------------------------------------------------------

@pytest.mark.parametrize('name', TINY)
def test_tiny_preset_forward_backward_and_one_step(name):
    model = make_model(name).train()
    batch = make_batch(model.config)
    batch[ACTION_PAD] = torch.zeros(2, model.config.horizon, dtype=torch.bool)
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    terms = model.losses(batch, torch.Generator().manual_seed(0))
    assert terms['loss'].ndim == 0 and torch.isfinite(terms['loss'])
    terms['loss'].backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []  # every trainable weight is used (DDP needs it)
    optimizer.step()
    moved = [n for n, p in model.named_parameters() if n in trainable
             and not torch.equal(p, trainable[n])]
    assert len(moved) == len(trainable)
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    chunk = sample(model.eval(), batch, 0)
    assert chunk.shape == (2, model.config.horizon, 7) and torch.isfinite(chunk).all()


@pytest.mark.parametrize('name', ['tiny_pi0_baseline', 'tiny_pi0_depth', 'tiny_pi0_smolvlm',
                                  'tiny_qdepth_vla', 'tiny_depthvla'])
def test_cached_and_uncached_sampling_agree(name):
    model = make_model(name)
    batch = make_batch(model.config)
    cached = sample(model, batch, 3)
    torch.testing.assert_close(sample(model, batch, 3, use_cache=False), cached,
                               rtol=1e-5, atol=1e-5)


def test_only_the_vlm_tail_is_frozen_under_the_flow_head(depth_model):
    frozen = {n for n, p in depth_model.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, p in depth_model.named_parameters()
                      if any(p is q for q in unused_vlm_parameters(depth_model.backbone))}
    assert frozen and all('layers.1.' in n or n.endswith('language_model.norm.weight')
                          for n in frozen)


def test_same_seed_same_chunk_other_seed_other_chunk(depth_model):
    batch = make_batch(depth_model.config)
    assert torch.equal(sample(depth_model, batch, 3), sample(depth_model, batch, 3))
    assert (sample(depth_model, batch, 3) - sample(depth_model, batch, 4)).abs().max() > 1e-2


def test_depth_changes_actions_and_nan_depth_is_safe(depth_model):
    batch = make_batch(depth_model.config)
    nearer = {**batch, OBS_DEPTH: batch[OBS_DEPTH] - 0.2}
    assert (sample(depth_model, batch, 0) - sample(depth_model, nearer, 0)).abs().max() > 1e-3
    holes = batch[OBS_DEPTH].clone()
    holes[:, :8] = float('nan')
    with_holes = sample(depth_model, {**batch, OBS_DEPTH: holes}, 0)
    assert torch.isfinite(with_holes).all()
    assert (with_holes - sample(depth_model, batch, 0)).abs().max() > 1e-3


def test_instruction_changes_only_its_own_sample(depth_model):
    batch = make_batch(depth_model.config)
    other = {**batch, OBS_INSTRUCTION: ['close the drawer', 'open the drawer']}
    diff = (sample(depth_model, batch, 0) - sample(depth_model, other, 0)).abs()
    assert diff[0].max() > 1e-3 and diff[1].max() < 1e-5


def test_action_expert_must_match_the_vlm_attention():
    config = VLAConfig(expert=ExpertConfig(head_dim=8))
    with pytest.raises(ValueError, match='head_dim is 8 but the VLM has 16'):
        VLAModel(config)


# --- VLM4VLA ------------------------------------------------------------------------------------

@pytest.mark.parametrize('hidden, chunk, count', [
    (2048, 10, 6_577_222), (2304, 10, 7_265_478), (2560, 10, 8_019_270),
    (3584, 10, 11_689_798), (4096, 10, 13_918_278), (2048, 4, 6_566_428),
])
def test_fc_decoder_reproduces_table_9_head_sizes(hidden, chunk, count):
    """VLM4VLA Table 9 'Policy Head Size' (exact ints: seeds-vlm4vla.md 1.2c)."""
    with torch.device('meta'):
        head = FCDecoder(hidden, chunk)
    assert sum(p.numel() for p in head.parameters()) == count


def test_vlm4vla_loss_by_hand():
    arm = torch.tensor([[[0.5] * 6, [0.0] * 6]])  # (1, 2, 6)
    arm_gt = torch.tensor([[[0.0] * 6, [3.0] * 6]])
    logits, grip = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]])
    out = vlm4vla_loss(arm, logits, arm_gt, grip)
    huber = (0.5 * 0.5 ** 2 + (3.0 - 0.5)) / 2  # |e| < 1: e^2 / 2; else |e| - 1/2
    bce = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert out['arm'].item() == pytest.approx(huber)
    assert out['gripper'].item() == pytest.approx(bce, rel=1e-6)
    assert out['loss'].item() == pytest.approx(huber + 0.01 * bce, rel=1e-6)
    # A padded step contributes nothing; the BCE weight is respected.
    masked = vlm4vla_loss(arm, logits, arm_gt, grip, valid=torch.tensor([[True, False]]),
                          gripper_weight=1.0)
    assert masked['loss'].item() == pytest.approx(0.125 + math.log(2), rel=1e-6)
    assert masked['gripper_acc'].item() == 0.0  # logit 0 says closed, target is open


def test_vlm4vla_is_deterministic_and_reads_the_query():
    model = make_model('tiny_vlm4vla')
    batch = make_batch(model.config)
    first = model.sample_actions(batch)
    assert torch.equal(first, model.sample_actions(batch))
    assert set(first[..., 6].unique().tolist()) <= {-1.0, 1.0}
    assert first[..., :6].abs().max() <= 1.0
    with torch.no_grad():
        model.head.query.add_(1.0)  # the query token is what the head reads
    assert (model.sample_actions(batch) - first)[..., :6].abs().max() > 1e-4


def test_vlm4vla_query_gets_gradient():
    model = make_model('tiny_vlm4vla').train()
    model.loss(make_batch(model.config)).backward()
    assert model.head.query.grad.abs().sum() > 0


def test_vlm4vla_prefix_lm_mask():
    """The paper's PaliGemma scheme: image bidirectional, text causal, query sees all."""
    causal, table = MASKS['prefix_lm']
    assert causal == ('text',) and table['image'] == ('image',)
    assert set(table['query']) == {'image', 'text', 'query'}


# --- full-size presets on the meta device -------------------------------------------------------

def count(module):
    return sum(p.numel() for p in module.parameters())


def test_pi0_baseline_reproduces_the_papers_parameter_counts():
    with torch.device('meta'):
        model = VLAModel(presets.get('pi0_baseline'))
    backbone, head = model.backbone, model.head
    assert round(count(backbone) / 1e6) == 2923  # PaliGemma-1 (VLM4VLA Table 9)
    assert count(head.expert.layers) == 311_463_936  # the Gemma-300M expert
    assert round(count(head) / 1e9, 3) == 0.315  # open-pi-zero's action part
    # open-pi-zero's trainable count, which QDepth-VLA quotes for π0: everything but the
    # embedding table and the VLM's unused tail = 2.606 B (spec A.1.1, A.7).
    embed = backbone.language_model.embed_tokens.weight.numel()
    tail = sum(p.numel() for p in unused_vlm_parameters(backbone))
    assert round((count(model) - embed - tail) / 1e9, 3) == 2.606


def opz_trainable(model):
    """open-pi-zero's convention: trainable weights minus the VLM's embedding table."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable - model.backbone.language_model.embed_tokens.weight.numel()


def test_depth_presets_reproduce_the_papers_parameter_counts():
    with torch.device('meta'):
        pi0 = opz_trainable(VLAModel(presets.get('pi0_baseline')))
        qdepth = VLAModel(presets.get('qdepth_vla'))
        depthvla = VLAModel(presets.get('depthvla'))
    # QDepth-VLA section 4.5: 2.606 B (Open π0) -> 2.924 B, +0.318 B (depth expert + projector
    # + CNN head; the frozen VQ-VAE is not trained).
    assert 2.924e9 <= opz_trainable(qdepth) < 2.925e9
    assert abs(opz_trainable(qdepth) - pi0 - 0.318e9) < 1e6
    assert count(qdepth.spatial.expert.layers) == 311_463_936  # "aligned with the action expert"
    # DepthVLA: a ~300M DINOv2-L encoder and a ~300M decoder on top of π0 (spec D.5 item 10).
    assert 0.55e9 < opz_trainable(depthvla) - pi0 < 0.65e9


def test_vlm4vla_reproduces_table_9():
    with torch.device('meta'):
        model = VLAModel(presets.get('vlm4vla'))
    assert round(count(model.backbone) / 1e6) == 3755  # Qwen2.5VL-3B
    assert count(model.head.decoder) == 6_577_222 and model.head.query.numel() == 2048


# --- presets, configs, save / load --------------------------------------------------------------

def test_every_full_preset_has_a_tiny_twin_and_unknown_names_are_listed():
    names = set(presets.PRESETS)
    full = {n for n in names if not n.startswith(('tiny_', 'small_'))}
    assert {'pi0_baseline', 'vlm4vla', 'qdepth_vla', 'depthvla', 'spatial_forcing'} <= full
    assert all(f'tiny_{n}' in names for n in full)
    with pytest.raises(KeyError, match='tiny_pi0_baseline'):
        presets.get('pi0')


def test_save_load_round_trip(tmp_path, depth_model):
    batch = make_batch(depth_model.config)
    depth_model.save_pretrained(tmp_path / 'ckpt')
    assert {p.name for p in (tmp_path / 'ckpt').iterdir()} == {'config.json', 'model.safetensors'}
    loaded = VLAModel.from_pretrained(tmp_path / 'ckpt')
    assert loaded.config == depth_model.config
    assert torch.equal(sample(depth_model, batch, 1), sample(loaded, batch, 1))
    assert not torch.equal(sample(make_model(seed=8), batch, 1), sample(loaded, batch, 1))


def test_from_pretrained_names_the_missing_file(tmp_path, depth_model):
    with pytest.raises(FileNotFoundError, match=r"nowhere'.*config\.json"):
        VLAModel.from_pretrained(tmp_path / 'nowhere')
    depth_model.save_pretrained(tmp_path / 'half')
    (tmp_path / 'half' / 'model.safetensors').unlink()
    with pytest.raises(FileNotFoundError, match=r'model\.safetensors'):
        VLAModel.from_pretrained(tmp_path / 'half')


def test_config_refuses_unknown_fields_at_every_level():
    with pytest.raises(ValueError, match='hidden_size'):
        config_from_dict({'horizon': 8, 'hidden_size': 3})
    with pytest.raises(ValueError, match=r'ExpertConfig.*widht'):
        config_from_dict({'expert': {'widht': 3}})
    assert config_from_dict({'expert': {'width': 48}}) == VLAConfig(expert=ExpertConfig(48))


@pytest.mark.parametrize('family, hf_config, model_class', [
    ('paligemma', TINY_PALIGEMMA, 'PaliGemmaForConditionalGeneration'),
    ('qwen2_5_vl', TINY_QWEN2_5_VL, 'Qwen2_5_VLForConditionalGeneration'),
    ('smolvlm', TINY_SMOLVLM, 'SmolVLMForConditionalGeneration'),
])
def test_backbone_loads_from_a_local_directory_only(tmp_path, family, hf_config, model_class):
    """A user's checkpoint is a save_pretrained directory of the full VLM (with its LM head)."""
    import transformers
    torch.manual_seed(3)
    cls = getattr(transformers, model_class)
    original = cls(build_backbone(BackboneConfig(family, hf_config)).model.config)
    original.save_pretrained(tmp_path / family)
    loaded = build_backbone(BackboneConfig(family, {}, pretrained=str(tmp_path / family)))
    assert loaded.config.hf_config['text_config']['hidden_size'] == 64  # resolved from disk
    theirs = dict(original.named_parameters())
    ours = dict(loaded.model.named_parameters())
    assert len(ours) > 20 and all(torch.equal(p, theirs['model.' + n]) for n, p in ours.items())


def test_backbone_directories_are_never_downloaded():
    with pytest.raises(FileNotFoundError, match='no config.json.*nothing is downloaded'):
        build_backbone(BackboneConfig(pretrained='google/paligemma-3b-pt-224', hf_config={}))


# --- the keypoint vision encoder (tiny_pi0_keypoints) -------------------------------------------

def test_spatial_softmax_finds_the_peak():
    from vla_nodes.models.keypoints import SpatialSoftmax
    maps = torch.zeros(1, 2, 9, 9)
    maps[0, 0, 0, 8] = 50.0  # top right
    maps[0, 1, 4, 4] = 50.0  # centre
    points = SpatialSoftmax()(maps)[0]
    assert torch.allclose(points, torch.tensor([[1.0, -1.0], [0.0, 0.0]]), atol=1e-3)


def test_the_keypoint_preset_trains_its_encoder_not_the_vision_tower():
    torch.manual_seed(0)
    model = VLAModel(presets.get('tiny_pi0_keypoints'))
    config = model.config
    assert config.vision == 'keypoints' and config.image_size == 84
    assert not any(p.requires_grad for p in model.backbone.model.vision_tower.parameters())
    batch = make_batch(config)
    model.losses(batch)['loss'].backward()
    grads = [p.grad for p in model.keypoints.trunk.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    assert sample(model, batch, 1).shape == (2, config.horizon, config.action_dim)
    # The image reaches the action expert: another image, another chunk.
    other = {**batch, OBS_IMAGE: batch[OBS_IMAGE].flip(1)}
    assert not torch.allclose(sample(model, batch, 1), sample(model, other, 1))
    with pytest.raises(ValueError, match='keypoints'):
        VLAModel(replace(presets.get('tiny_qdepth_vla'), vision='keypoints'))


def red_square_batch(batch=4, size=84, seed=0):
    """Images with one red square each; its centre (x, y in [-1, 1]) is the 'pose' to learn."""
    g = torch.Generator().manual_seed(seed)
    images = torch.full((batch, size, size, 3), 60, dtype=torch.uint8)
    centres = torch.randint(10, size - 10, (batch, 2), generator=g)
    for i, (x, y) in enumerate(centres.tolist()):
        images[i, y - 4:y + 4, x - 4:x + 4] = torch.tensor([220, 20, 20], dtype=torch.uint8)
    config = presets.get('tiny_pi0_keypoints_pose')
    return {**make_batch(config, batch, seed),
            OBS_IMAGE: images, OBS_INSTRUCTION: ['pick up the cube'] * batch,
            OBS_ENV_STATE: torch.cat([centres / (size - 1) * 2 - 1, torch.zeros(batch, 3)], 1)}


def test_the_pose_preset_learns_object_poses_from_the_image_and_acts_on_its_prediction():
    torch.manual_seed(0)
    model = VLAModel(presets.get('tiny_pi0_keypoints_pose'))
    batch = red_square_batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(160):  # the spatial softmax finds the square after ~110 steps
        terms = model.losses(batch)
        optimizer.zero_grad()
        terms['loss'].backward()
        optimizer.step()
        first = float(terms['env_pose']) if first is None else first
    assert float(terms['env_pose']) < 0.3 * first  # supervised by the dataset's poses
    model.eval()
    # At run time the flow head reads the prediction: no OBS_ENV_STATE in the observation, and
    # another readout, another chunk.
    observation = {k: v for k, v in batch.items() if k not in (ACTION, OBS_ENV_STATE)}
    chunk = sample(model, observation, 1)
    with torch.no_grad():
        model.env_readout.mlp[-1].bias += 1.0
    assert not torch.allclose(chunk, sample(model, observation, 1))
    assert not presets.get('tiny_pi0_keypoints_pose').reads_env_state
    with pytest.raises(ValueError, match='flow head'):
        VLAModel(replace(presets.get('tiny_vlm4vla'), env_state_from_image=True,
                         env_state_dim=5))


def test_the_vision_tower_pose_preset_acts_on_its_estimators_poses():
    # tiny_pi0_pose: the vision tower as tiny_pi0_baseline+env has it, the PoseEstimator's
    # poses instead of pose_node's, at run time from the camera alone.
    batch = red_square_batch()
    config = presets.get('tiny_pi0_pose')
    model = VLAModel(config).eval()
    with torch.no_grad():
        model.prefix(batch)
        assert model.state(batch).shape == (len(batch[OBS_STATE]), config.state_dim + 5)
    assert model.keypoints is None and not model.config.reads_env_state
    observation = {k: v for k, v in batch.items() if k not in (ACTION, OBS_ENV_STATE)}
    chunk = sample(model, observation, 1)
    with torch.no_grad():
        model.env_readout.mlp[-1].bias += 1.0
    assert not torch.allclose(chunk, sample(model, observation, 1))


def test_a_blind_pose_policy_sees_the_camera_only_through_its_estimated_poses():
    batch = red_square_batch()
    observation = {k: v for k, v in batch.items() if k not in (ACTION, OBS_ENV_STATE)}
    moved = {**observation, OBS_IMAGE: observation[OBS_IMAGE].flip(1)}
    for name, blind in (('tiny_pi0_pose_blind', True), ('tiny_pi0_pose', False)):
        torch.manual_seed(0)
        model = VLAModel(presets.get(name)).eval()
        assert not torch.allclose(sample(model, observation, 1), sample(model, moved, 1))
        model.env_readout.forward = lambda images: torch.zeros(len(images), 5)
        same = torch.allclose(sample(model, observation, 1), sample(model, moved, 1))
        assert same == blind, name


def test_the_pose_estimator_reads_the_image_before_trainings_random_shift():
    from vla_nodes.models.vla import UNSHIFTED_IMAGE
    from vla_nodes.train.step import random_shift
    torch.manual_seed(0)
    model = VLAModel(presets.get('tiny_pi0_keypoints_pose')).eval()
    batch = red_square_batch()
    shifted = random_shift(batch, 4, step=3, seed=0)
    assert torch.equal(shifted[UNSHIFTED_IMAGE], batch[OBS_IMAGE])
    assert not torch.equal(shifted[OBS_IMAGE], batch[OBS_IMAGE])
    with torch.no_grad():
        model.prefix(shifted)
        from_original = model._env_prediction.clone()
        model.prefix(batch)
    assert torch.equal(from_original, model._env_prediction)  # the shift does not reach it
