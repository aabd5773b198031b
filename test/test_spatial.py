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

"""The spatial modules of the model library: QDepth-VLA, DepthVLA, Spatial Forcing, Pose-VLA.

Tiny random configs, real transformers models (DINOv2, Depth Anything, Gemma) saved and loaded
from local directories; literal expected values come from the papers' tables and formulas.
"""

import importlib.util
import json
import math

import numpy as np
import pytest
import torch
from torch.nn import functional

from vla_nodes.models import depthvla, pose_vla, qdepth, spatial_forcing as sf

pytestmark = pytest.mark.usefixtures('one_thread')

GROUPS = ('image', 'text', 'depth', 'state', 'action')


def table_matrix(table):
    """The mask table as rows of 0/1 in GROUPS order (query rows, key columns)."""
    assert set(table) == set(GROUPS)
    return [[int(k in table[q]) for k in GROUPS] for q in GROUPS]


# --- QDepth-VLA ---------------------------------------------------------------------------------

def test_qdepth_hybrid_mask_matches_the_paper_cell_by_cell():
    # QDepth-VLA Fig. 1b / section 3.4.3; columns image, text, depth, state, action.
    assert table_matrix(qdepth.QDEPTH_HYBRID) == [
        [1, 1, 0, 0, 0],  # image: only within the VLM block
        [1, 1, 0, 0, 0],  # text
        [1, 1, 1, 0, 0],  # depth: image + text (+ itself)
        [1, 1, 0, 1, 0],  # state (proprio): NOT depth
        [1, 1, 1, 1, 1],  # action: everything
    ]
    # "w/o Hybrid Attn" adds proprio -> depth and nothing else.
    hybrid, dream = (table_matrix(t) for t in (qdepth.QDEPTH_HYBRID, qdepth.QDEPTH_DREAMVLA))
    diff = [(q, k) for q in range(5) for k in range(5) if hybrid[q][k] != dream[q][k]]
    assert diff == [(GROUPS.index('state'), GROUPS.index('depth'))]


def test_paper_vqvae_gives_16x16_codes_for_224_frames():
    config = qdepth.DepthVQVAEConfig()
    assert (config.num_codes, config.code_dim, config.grid, config.beta) == (256, 160, 16, 0.25)
    model = qdepth.DepthVQVAE(config)  # on CPU: building an Embedding on 'meta' takes ~1.5 s
    assert model.codebook.weight.shape == (256, 160)
    assert model.encode(torch.zeros(1, 1, 256, 256)).shape == (1, 160, 16, 16)
    vqvae = qdepth.DepthVQVAE(qdepth.TINY_VQVAE)
    depth = 0.3 + torch.rand(2, 224, 224)
    depth[0, :10] = float('nan')
    x = vqvae.prepare(depth)
    assert x.shape == (2, 1, 32, 32) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    idx = vqvae.tokenize(depth)
    assert idx.shape == (2, 16) and idx.dtype == torch.int64
    assert vqvae.decode(vqvae.indices_to_latents(idx)).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match='prepare'):
        vqvae.encode(depth[:, None])


def grads(module):
    return [p.grad for p in module.parameters()]


def nonzero(gs):
    return any(g is not None and bool(g.abs().sum() > 0) for g in gs)


def test_vqvae_straight_through_routes_each_term_of_eq2():
    torch.manual_seed(0)
    vqvae = qdepth.DepthVQVAE(qdepth.TINY_VQVAE)
    x = vqvae.prepare(0.5 + torch.rand(2, 32, 32))
    expected = {'rec': (True, False, True), 'codebook': (False, True, False),
                'commit': (True, False, False)}  # (encoder, codebook, decoder) get gradient
    for term, (enc, code, dec) in expected.items():
        vqvae.zero_grad(set_to_none=True)
        out = vqvae.loss(x)
        out[term].backward()
        got = (nonzero(grads(vqvae.encoder)), nonzero(grads(vqvae.codebook)),
               nonzero(grads(vqvae.decoder)))
        assert got == (enc, code, dec), term
    # Both latent terms measure ||z_e − c||²; the commitment one is scaled by β = 0.25.
    assert out['commit'].item() == pytest.approx(0.25 * out['codebook'].item(), rel=1e-5)
    assert out['total'].item() == pytest.approx(
        out['rec'].item() + out['codebook'].item() + out['commit'].item(), rel=1e-6)


def test_vqvae_overfits_one_batch():
    torch.manual_seed(0)
    vqvae = qdepth.DepthVQVAE(qdepth.TINY_VQVAE)
    ramp = torch.linspace(0.5, 2.0, 32)
    x = vqvae.prepare(torch.stack([ramp[None].expand(32, 32), ramp[:, None].expand(32, 32)]))
    opt = torch.optim.Adam(vqvae.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = vqvae.loss(x)['total']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.4 * losses[0]


def test_codebook_logits_and_cross_entropy_follow_eqs_3_and_4():
    g = torch.Generator().manual_seed(0)
    codebook = torch.randn(16, 8, generator=g)
    x = torch.randn(2, 5, 8, generator=g)
    logits = qdepth.codebook_logits(x, codebook, tau=2.0)
    explicit = -((x[:, :, None] - codebook[None, None]) ** 2).sum(-1) / 2.0  # (B, N, K)
    assert torch.allclose(logits, explicit, atol=1e-4)
    assert torch.equal(logits.argmax(-1), torch.cdist(x, codebook[None]).argmin(-1))
    target = torch.randint(0, 16, (2, 5), generator=g)
    assert qdepth.quantized_depth_loss(logits, target).item() == pytest.approx(
        functional.cross_entropy(explicit.reshape(10, 16), target.flatten()).item(), rel=1e-5)
    # A prediction sitting on its target code with a small τ costs (almost) nothing.
    exact = qdepth.codebook_logits(codebook[target], codebook, tau=1e-3)
    assert qdepth.quantized_depth_loss(exact, target).item() < 1e-6
    with pytest.raises(ValueError, match='disagree'):
        qdepth.quantized_depth_loss(logits, target[:, :4])


def test_depth_loss_weight_decays_from_0_01():
    assert qdepth.depth_loss_weight(0) == 0.01
    assert qdepth.depth_loss_weight(1000, gamma=0.999) == pytest.approx(0.01 * 0.999 ** 1000)
    stream = qdepth.QDepthStream(qdepth.TINY_QDEPTH)
    half_life = math.log(0.5) / math.log(0.9999)  # ≈ 6931 steps for the default γ
    assert stream.weight(half_life) == pytest.approx(0.005)
    with pytest.raises(ValueError, match='step'):
        qdepth.depth_loss_weight(-1)


def test_qdepth_stream_learns_codes_through_a_frozen_codebook():
    torch.manual_seed(0)
    config = qdepth.TINY_QDEPTH
    vqvae = qdepth.DepthVQVAE(qdepth.TINY_VQVAE)
    stream = qdepth.QDepthStream.from_vqvae(config, vqvae)
    assert 'codebook' not in dict(stream.named_parameters())
    assert torch.equal(stream.codebook, vqvae.codebook.weight)
    vision = torch.randn(2, 16, config.vision_width)  # SigLIP tokens, g = 4
    target = vqvae.tokenize(0.5 + torch.rand(2, 32, 32))
    tokens = stream.embed(vision)
    assert tokens.shape == (2, 16, config.width)
    # The core's depth stream sits between embed and loss; the identity stands in for it here.
    loss = stream.weight(0) * stream.loss(tokens, target)
    loss.backward()
    assert nonzero(grads(stream.proj)) and nonzero(grads(stream.head))
    stream.zero_grad(set_to_none=True)
    (0.0 * stream.loss(stream.embed(vision), target)).backward()  # "w/o Depth Loss": weight 0
    assert not nonzero(grads(stream.head))
    with pytest.raises(ValueError, match='16 tokens'):
        stream.loss(tokens[:, :15], target)
    with pytest.raises(ValueError, match='codebook'):
        qdepth.QDepthStream(config, torch.zeros(8, 8))


def test_full_size_qdepth_heads_fit_the_papers_parameter_budget():
    with torch.device('meta'):
        stream = qdepth.QDepthStream()
    count = sum(p.numel() for p in stream.parameters())
    assert count == 7_031_456  # MLP 1152->1024->1024 + conv3x3 1024->512 + conv1x1 512->160
    gemma_300m = 311_463_936  # one 18-layer expert (spec A.7)
    # 2.924B − 2.606B = 0.318B for "the additional depth expert and its projection layers".
    assert (gemma_300m + count) / 1e9 == pytest.approx(0.318, abs=0.001)


# --- DepthVLA -----------------------------------------------------------------------------------

def test_depthvla_blockwise_mask_matches_the_paper_cell_by_cell():
    # DepthVLA Fig. 2 (right); columns image, text, depth, state, action.
    assert table_matrix(depthvla.DEPTHVLA_BLOCKWISE) == [
        [1, 1, 0, 0, 0],  # VLM (image + text) attends only to itself
        [1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],  # depth attends only to itself
        [1, 1, 1, 1, 0],  # state
        [1, 1, 1, 1, 1],  # actions attend to all streams
    ]
    assert table_matrix(depthvla.DEPTHVLA_VLM_DEPTH_MUTUAL)[:3] == [
        [1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0]]


def test_silog_hand_computed_values():
    gt = torch.tensor([[[1.0, 2.0], [0.5, 4.0]]])  # (1, 2, 2) metres
    y = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])
    # mean(y²) = 14 / 4 = 3.5, mean(y) = 1.5: sqrt(3.5 − 0.5 · 2.25) = sqrt(2.375)
    got = depthvla.silog_loss(torch.log(gt) + y, gt)
    assert got.item() == pytest.approx(math.sqrt(2.375), rel=1e-6)
    assert depthvla.silog_loss(torch.log(gt), gt).item() == 0.0
    # A pure scale error e^a costs |a| / √2 with λ = 0.5 ...
    a = 0.7
    assert depthvla.silog_loss(torch.log(gt) + a, gt).item() == pytest.approx(
        a / math.sqrt(2), rel=1e-6)
    # ... and nothing with λ = 1: the loss is then scale invariant.
    pred = torch.log(gt) + y
    for scale in (0.1, 3.0):
        assert depthvla.silog_loss(pred + math.log(scale), gt, lam=1.0).item() == pytest.approx(
            depthvla.silog_loss(pred, gt, lam=1.0).item(), rel=1e-5)


def test_silog_ignores_invalid_pixels_and_has_finite_gradients():
    gt = torch.tensor([[[1.0, float('nan')], [0.0, 2.0]], [[0.0, 0.0], [float('nan'), 0.0]]])
    pred = torch.log(torch.tensor([[[1.0, 99.0], [99.0, 2.0]], [[5.0, 5.0], [5.0, 5.0]]]))
    pred.requires_grad_(True)
    loss = depthvla.silog_loss(pred, gt)  # image 2 has no valid pixel and is left out
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    with pytest.raises(ValueError, match='resize_depth'):
        depthvla.silog_loss(pred[:, :1], gt)


def test_depth_pretraining_objective_trains_the_expert_alone():
    torch.manual_seed(0)
    config = depthvla.TINY_DEPTHVLA
    stream = depthvla.DepthVLAStream(config)
    decoder = depthvla.StandaloneDecoder(config)
    image = torch.randint(0, 256, (2, 40, 40, 3), dtype=torch.uint8)
    depth = 0.4 + torch.rand(2, 30, 30)
    depth[0, :5] = float('nan')
    assert stream.embed(image).shape == (2, 4, config.width)  # 28 / 14 = 2 x 2 tokens
    assert stream.log_depth(stream.embed(image)).shape == (2, 28, 28)
    params = list(stream.parameters()) + list(decoder.parameters())
    opt = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for _ in range(15):
        loss = depthvla.depth_pretrain_loss(stream, decoder, image, depth)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert nonzero(grads(stream.encoder))
    stream.freeze()  # ablation (iii)
    assert not any(p.requires_grad for p in stream.parameters())


def test_encoder_loads_from_local_depth_anything_and_dinov2_dirs(tmp_path):
    from transformers import (DepthAnythingConfig, DepthAnythingForDepthEstimation,
                              Dinov2Config, GemmaConfig, GemmaModel)

    torch.manual_seed(0)
    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            image_size=28, patch_size=14, out_indices=[1, 2])
    da = DepthAnythingForDepthEstimation(DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16],
        reassemble_factors=[2, 1], fusion_hidden_size=8, head_hidden_size=8))
    da.save_pretrained(tmp_path / 'da')
    stream = depthvla.DepthVLAStream.from_pretrained_encoder(
        depthvla.TINY_DEPTHVLA, tmp_path / 'da')
    expected = da.backbone.state_dict()
    for name, value in stream.encoder.state_dict().items():
        assert torch.equal(value, expected[name]), name
    stream.encoder.save_pretrained(tmp_path / 'dino')
    again = depthvla.load_encoder(tmp_path / 'dino')
    assert torch.equal(again.embeddings.cls_token, da.backbone.embeddings.cls_token)
    GemmaModel(GemmaConfig(vocab_size=8, hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                           num_attention_heads=1, num_key_value_heads=1, head_dim=8)
               ).save_pretrained(tmp_path / 'gemma')
    with pytest.raises(ValueError, match="'gemma'"):
        depthvla.load_encoder(tmp_path / 'gemma')
    with pytest.raises(FileNotFoundError, match='config.json'):
        depthvla.load_encoder(tmp_path / 'nowhere')


def test_full_size_depth_encoder_is_dinov2_large():
    with torch.device('meta'):
        stream = depthvla.DepthVLAStream()
    encoder = sum(p.numel() for p in stream.encoder.parameters())
    assert encoder / 1e6 == pytest.approx(303.2, abs=0.1)  # ViT-L/14 at 224: "~300M" [P]
    assert stream.head.out_features == 14 * 14 and stream.config.grid == 16


# --- Spatial Forcing ----------------------------------------------------------------------------

def test_uv_sincos_embedding_matches_vggt_formula():
    emb = sf.sincos_2d_embed(3, 4, 16)  # (h, w, dim)
    assert emb.shape == (3, 4, 16) and float(emb.abs().max()) <= 1.0
    # x half depends on the column only, y half on the row only.
    assert torch.equal(emb[0, :, :8], emb[2, :, :8])
    assert torch.equal(emb[:, 0, 8:], emb[:, 3, 8:])
    # Hand value: aspect 4/3, diag 5/3, u span 0.8 · 3/4 = 0.6, so column 3 has u = 0.6;
    # channel 1 of the x half is sin(u · ω_1) with ω_1 = 100^(−1/4).
    assert emb[0, 3, 1].item() == pytest.approx(math.sin(0.6 * 100 ** -0.25), abs=1e-6)
    assert emb[0, 3, 4].item() == pytest.approx(math.cos(0.6), abs=1e-6)
    with pytest.raises(ValueError, match='divisible by 4'):
        sf.sincos_2d_embed(2, 2, 6)


def test_teacher_tokens_resample_to_the_vlm_grid():
    # VGGT: 518 px -> 37 x 37 patches per view; two views onto 2 x 256 = 512 VLM tokens.
    features = torch.full((1, 2, 37 * 37, 8), 3.0)
    features[:, 1] = -1.0
    out = sf.target_tokens(features, (37, 37), (16, 16), pe_ratio=0.0)
    assert out.shape == (1, 512, 8)
    assert torch.allclose(out[0, :256], torch.tensor(3.0))
    assert torch.allclose(out[0, 256:], torch.tensor(-1.0))
    # Row-major order survives: a field equal to the column index stays so on the same grid.
    cols = torch.arange(4.0).repeat(3)[None, None, :, None]  # (1, 1, 12, 1), 3 rows x 4 cols
    same = sf.target_tokens(cols, (3, 4), (3, 4), pe_ratio=0.0)
    assert torch.allclose(same.flatten(), cols.flatten())
    with_pe = sf.target_tokens(torch.zeros(1, 1, 12, 8), (3, 4), (3, 4), pe_ratio=0.1)
    assert torch.allclose(with_pe[0].view(3, 4, 8), 0.1 * sf.sincos_2d_embed(3, 4, 8))
    with pytest.raises(ValueError, match='needs 16'):
        sf.target_tokens(torch.zeros(1, 1, 12, 8), (4, 4), (2, 2))


def test_cosine_alignment_loss_values_and_mask():
    g = torch.Generator().manual_seed(0)
    target = functional.normalize(torch.randn(2, 5, 8, generator=g), dim=-1)
    assert sf.cosine_alignment_loss(target.clone(), target).item() == pytest.approx(0.0, abs=1e-6)
    assert sf.cosine_alignment_loss(3.0 * target, target).item() == pytest.approx(0.0, abs=1e-6)
    assert sf.cosine_alignment_loss(-target, target).item() == pytest.approx(2.0, abs=1e-6)
    e = torch.eye(8)
    assert sf.cosine_alignment_loss(e[None, :1], e[None, 1:2]).item() == pytest.approx(1.0)
    pred = target.clone()
    pred[:, -1] = -target[:, -1]  # a wrong token that the mask excludes
    mask = torch.tensor([[True] * 4 + [False]] * 2)
    assert sf.cosine_alignment_loss(pred, target, mask).item() == pytest.approx(0.0, abs=1e-6)


def test_pad_token_mask_drops_the_padding_bars():
    # 640 x 480 into 224 x 224: content rows 28..195, so token rows 2..13 of 16 (centres 7 + 14 r).
    mask = sf.pad_token_mask((480, 640), 224, 16).view(16, 16)
    assert mask.sum().item() == 12 * 16
    assert not mask[:2].any() and mask[2:14].all() and not mask[14:].any()
    assert sf.pad_token_mask((224, 224), 224, 16).all()


def tiny_teacher(tmp_path):
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(1)
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             image_size=28, patch_size=14)).save_pretrained(tmp_path / 'dino')
    return sf.DinoV2Teacher.from_pretrained(tmp_path / 'dino', image_size=28)


def test_alignment_gradient_reaches_the_student_up_to_the_aligned_layer_only(tmp_path):
    from transformers import GemmaConfig, GemmaModel

    teacher = tiny_teacher(tmp_path)
    torch.manual_seed(0)
    student = GemmaModel(GemmaConfig(vocab_size=16, hidden_size=32, intermediate_size=64,
                                     num_hidden_layers=4, num_attention_heads=2,
                                     num_key_value_heads=1, head_dim=16))
    module = sf.SpatialForcing(sf.TINY_SF)  # layer 2 of 4, teacher width 32
    images = torch.randint(0, 256, (2, 1, 40, 40, 3), dtype=torch.uint8)  # (B, S, H, W, 3)
    features, grid = teacher(images)
    assert features.shape == (2, 1, 4, 32) and grid == (2, 2)
    target = sf.target_tokens(features, grid, (2, 2))  # (B, 4, 32)
    embeds = torch.randn(2, 6, 32)  # [bos, 4 visual tokens, text]
    hidden = student(inputs_embeds=embeds, output_hidden_states=True).hidden_states
    align = module.loss(hidden, target, start=1)
    total = module.combine(torch.tensor(1.0), align)
    assert total.item() == pytest.approx(1.0 + 0.5 * align.item())
    total.backward()
    layers = student.layers
    assert nonzero(grads(layers[0])) and nonzero(grads(layers[1]))
    assert not nonzero(grads(layers[2])) and not nonzero(grads(layers[3]))
    assert nonzero(grads(module.projector))
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    teacher.train()
    assert not teacher.model.training  # the teacher stays frozen in eval mode
    with pytest.raises(ValueError, match='4 blocks'):
        sf.SpatialForcing(sf.SpatialForcingConfig(32, 32, align_layer=5)).loss(hidden, target)


def test_adaptive_layer_gate_mixes_layers_with_softmax_weights():
    layers = torch.randn(3, 2, 4, 8)  # (L, B, N, D)
    gate = sf.AdaptiveLayerGate(3, 8)
    mixed, weights = gate(layers)
    assert torch.allclose(weights, torch.full((2, 3), 1 / 3))  # M_g = 0: uniform
    assert torch.allclose(mixed, layers.mean(0), atol=1e-6)
    with torch.no_grad():
        gate.gate[1] = 50 * layers[1].mean(dim=(0, 1))
    mixed, weights = gate(layers)
    assert torch.allclose(weights.sum(-1), torch.ones(2)) and bool((weights[:, 1] > 0.99).all())


def test_teacher_feature_cache_round_trip(tmp_path):
    meta = {'teacher': 'dinov2-tiny', 'grid': [2, 2], 'width': 8}
    cache = sf.TeacherFeatureCache(tmp_path / 'cache', meta, dtype=np.float32)
    value = torch.randn(4, 8)
    key = sf.frame_key(3, 120)
    assert key == 'ep000003/f000120' and key not in cache and cache.get(key) is None
    cache.put(key, value)
    assert key in cache and torch.equal(cache.get(key), value)
    calls = []

    def compute(missing):
        calls.append(missing)
        return torch.stack([torch.full((4, 8), float(i)) for i in missing])

    keys = [key, sf.frame_key(3, 121), sf.frame_key(4, 0)]
    batch = cache.get_or_compute(keys, compute)
    assert calls == [[1, 2]] and batch.shape == (3, 4, 8) and torch.equal(batch[0], value)
    assert torch.equal(cache.get_or_compute(keys, compute), batch) and len(calls) == 1
    half = sf.TeacherFeatureCache(tmp_path / 'half', meta)  # float16 by default
    half.put(key, value)
    assert torch.allclose(half.get(key), value, rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match='another directory'):
        sf.TeacherFeatureCache(tmp_path / 'cache', {**meta, 'width': 16}, dtype=np.float32)
    with pytest.raises(ValueError, match='bad cache key'):
        cache.get('../escape')


@pytest.mark.skipif(importlib.util.find_spec('vggt') is not None, reason='vggt is installed')
def test_vggt_teacher_says_how_to_get_it():
    with pytest.raises(ImportError, match='DinoV2Teacher'):
        sf.VGGTTeacher.from_pretrained('/nonexistent')


# --- Pose-VLA -----------------------------------------------------------------------------------

def test_quantile_bins_equal_frequency_and_round_trip_within_one_bin():
    rng = np.random.default_rng(0)
    z = rng.lognormal(mean=-0.5, sigma=0.4, size=20_000)  # skewed like tabletop depth
    bins = pose_vla.QuantileBins(1024).fit(z)
    counts = np.bincount(bins.encode(z), minlength=1024)
    assert counts.min() >= 0.5 * 20_000 / 1024 and counts.max() <= 1.5 * 20_000 / 1024
    idx = bins.encode(z)
    width = bins.edges[idx + 1] - bins.edges[idx]
    assert np.all(np.abs(bins.decode(idx) - z) <= 0.5 * width + 1e-12)
    assert bins.encode([z.min() - 1, z.max() + 1]).tolist() == [0, 1023]
    with pytest.raises(ValueError, match='distinct'):
        pose_vla.QuantileBins(8).fit([1.0, 1.0])
    with pytest.raises(RuntimeError, match='fit'):
        pose_vla.QuantileBins(8).encode([1.0])


def test_uniform_angle_bins_round_trip_and_wrap():
    bins = pose_vla.UniformAngleBins(1024)
    a = np.linspace(-math.pi, math.pi - 1e-9, 5001)
    assert np.max(np.abs(bins.decode(bins.encode(a)) - a)) <= math.pi / 1023 + 1e-12
    assert bins.encode([-math.pi, 0.0, 3 * math.pi / 2]).tolist() == [
        0, 512, bins.encode(-math.pi / 2)]  # 0 is bin 511.5 -> 512; 3π/2 wraps to −π/2


def test_pose_tokenizer_text_round_trip_within_one_bin():
    rng = np.random.default_rng(1)
    t = np.column_stack([rng.normal(0, 0.15, 5000), rng.normal(0, 0.1, 5000),
                         rng.uniform(0.3, 1.2, 5000)])
    sizes = rng.uniform(0.02, 0.3, (5000, 3))
    tok = pose_vla.PoseTokenizer().fit(t, sizes)
    strings = tok.token_strings()
    assert len(strings) == len(set(strings)) == 4 * 1024
    assert strings[0] == '<rot0000>' and strings[-1] == '<size1023>'
    text = tok.format('red cube', [0.25, 0.5], t[7], [0.1, -0.2, 3.0], sizes[7]) + \
        tok.format('arm 1', [0.9, 0.1], t[8], [0.0, 0.5, -1.0])
    assert text.startswith('red cube<loc0255><loc0511><transXY')
    cube, arm = tok.parse(text)
    assert cube['name'] == 'red cube' and arm['name'] == 'arm 1' and 'size' not in arm
    for item, i in ((cube, 7), (arm, 8)):
        xy = tok.xy.edges
        k = tok.xy.encode(t[i, :2])
        assert np.all(np.abs(item['translation'][:2] - t[i, :2]) <= xy[k + 1] - xy[k])
        kz = tok.z.encode(t[i, 2])
        assert abs(item['translation'][2] - t[i, 2]) <= tok.z.edges[kz + 1] - tok.z.edges[kz]
    assert np.allclose(cube['rpy'], [0.1, -0.2, 3.0], atol=2 * math.pi / 1023)
    assert np.allclose(cube['size'], sizes[7], atol=0.01)
    assert np.allclose(cube['uv'], [255 / 1023, 511 / 1023])
    again = pose_vla.PoseTokenizer().load_dict(tok.to_dict())
    assert again.format('a', [0, 0], t[3], [0, 0, 0]) == tok.format('a', [0, 0], t[3], [0, 0, 0])


def test_waypoints_are_camera_frame_and_project_with_k():
    from vla_nodes.arm.kinematics import xyz_quat_to_pose

    k = np.array([[400.0, 0, 320], [0, 400.0, 240], [0, 0, 1]])
    # Camera 1 m above the base looking straight down: optical z = −base z, x = base x.
    base_cam = np.eye(4)
    base_cam[:3, :3] = np.diag([1.0, -1.0, -1.0])
    base_cam[2, 3] = 1.0
    chunk = np.stack([xyz_quat_to_pose([0.1 + 0.01 * i, 0.0, 0.2, 0, 0, 0, 1])
                      for i in range(50)])  # (H_a, 4, 4)
    tcp = np.eye(4)
    tcp[2, 3] = 0.05  # tool point 5 cm along the flange z
    targets = pose_vla.waypoint_targets(base_cam, k, (480, 640), chunk, stride=10, ee_tcp=tcp)
    assert len(targets) == 5
    first = targets[0]
    assert np.allclose(first['translation'], [0.1, 0.0, 0.75])  # camera frame, metres
    assert np.allclose(np.abs(first['rpy']), [math.pi, 0.0, 0.0])  # Rx(±π): optical z down
    assert np.allclose(first['uv'] * [640, 480], [320 + 400 * 0.1 / 0.75, 240])
    assert first['in_view']
    assert np.allclose(targets[4]['translation'][0], 0.1 + 0.01 * 40)
    behind = pose_vla.waypoint_targets(base_cam, k, (480, 640), chunk[:1] @ _lift(2.0))
    assert not behind[0]['in_view']


def _lift(z):
    t = np.eye(4)
    t[2, 3] = z
    return t


def test_ray_map_and_depth_prior():
    k = np.array([[100.0, 0, 3], [0, 80.0, 2], [0, 0, 1]])
    rays = pose_vla.compute_raymap(k, 5, 7)
    assert rays.shape == (3, 5, 7)
    assert torch.allclose(rays[:, 2, 3], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.allclose(rays[:, 4, 6], torch.tensor([3 / 100, 2 / 80, 1.0]))
    depth = torch.tensor([[[0.5, float('nan')], [0.0, 9.0]]])
    prior = pose_vla.depth_prior(depth)
    assert prior[0, 0].tolist() == [[0.5, 0.0], [0.0, 0.0]]
    assert prior[0, 1].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    dense = pose_vla.depth_prior(0.5 + torch.rand(3, 10, 10))
    g = torch.Generator().manual_seed(0)
    sparse = pose_vla.sparsify(dense, 5, 20, g)
    kept = sparse[:, 1].flatten(1).sum(-1)
    assert bool(((kept >= 5) & (kept <= 20)).all())
    on = sparse[:, 1] > 0
    assert torch.equal(sparse[:, 0][on], dense[:, 0][on]) and bool((sparse[:, 0][~on] == 0).all())


def test_pose_priors_add_to_siglip_tokens_with_modality_dropout():
    torch.manual_seed(0)
    config = pose_vla.TINY_POSE
    priors = pose_vla.PosePriors(config).eval()
    tokens = torch.randn(2, 4, config.vision_width)  # 28 / 14 = 2 x 2 SigLIP tokens
    assert torch.equal(priors(tokens), tokens)
    k = np.array([[30.0, 0, 14], [0, 30.0, 14], [0, 0, 1]])
    rays = pose_vla.compute_raymap(k, 28, 28)[None].expand(2, -1, -1, -1)
    depth = pose_vla.depth_prior(0.5 + torch.rand(2, 28, 28))
    fused = priors(tokens, rays, depth)
    assert torch.allclose(fused, tokens + priors.ray(rays) + priors.depth(depth), atol=1e-6)
    priors.train()
    many = torch.zeros(4000, 4, config.vision_width)
    g = torch.Generator().manual_seed(0)
    out = priors(many, raymap=None, depth=depth[:1].expand(4000, -1, -1, -1), generator=g)
    kept = (out.abs().sum(dim=(1, 2)) > 0).float().mean().item()
    assert kept == pytest.approx(0.5, abs=0.03)
    with pytest.raises(ValueError, match='image size'):
        priors(tokens, pose_vla.compute_raymap(k, 56, 56)[None].expand(2, -1, -1, -1))


def test_pose_pretraining_loss_is_hf_next_token_loss_on_answer_tokens():
    from transformers import GemmaConfig, GemmaForCausalLM

    torch.manual_seed(0)
    model = GemmaForCausalLM(GemmaConfig(
        vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16))
    ids = torch.randint(0, 40, (2, 10))
    answer = torch.zeros(2, 10, dtype=torch.bool)
    answer[0, 6:], answer[1, 4:8] = True, True  # prompt first, then pose tokens (row 1 padded)
    logits = model(input_ids=ids).logits
    ours = pose_vla.pose_pretrain_loss(logits, ids, answer)
    labels = torch.where(answer, ids, -100)
    assert ours.item() == pytest.approx(model(input_ids=ids, labels=labels).loss.item(), rel=1e-5)
    changed = logits.clone()
    changed[0, :5] += 10.0  # prompt positions predict prompt tokens: not supervised
    assert pose_vla.pose_pretrain_loss(changed, ids, answer).item() == pytest.approx(ours.item())
    with pytest.raises(ValueError, match='answer_mask'):
        pose_vla.pose_pretrain_loss(logits, ids, torch.zeros_like(answer))


# --- vla-depth-tokenizer ------------------------------------------------------------------------

def write_depth_dataset(root, episodes=3, frames=6, size=32):
    """A LeRobot v3 folder as vla-export writes it: colour, depth mm (0 invalid), state, action."""
    from vla_nodes.contract import ACTION, OBS_DEPTH, OBS_IMAGE, OBS_STATE
    from vla_nodes.record.lerobot_v3 import LeRobotV3Writer

    rng = np.random.default_rng(0)
    writer = LeRobotV3Writer(root, fps=10)
    ramp = np.linspace(400, 1600, size)
    for e in range(episodes):
        for f in range(frames):
            writer.add_frame(OBS_IMAGE, rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
            depth = (ramp[None, :] + 20 * f + 100 * e + np.zeros((size, 1))).astype(np.uint16)
            depth[:3, :3] = 0  # invalid corner
            writer.add_frame(OBS_DEPTH, depth)
        q = rng.normal(size=(frames, 7)).astype(np.float32)
        writer.add_episode({OBS_STATE: q, ACTION: q}, ['stack the cubes'] * frames)
    return writer.finish(robot_type='piper')


def test_depth_tokenizer_cli_trains_and_saves_a_loadable_tokenizer(tmp_path, capsys):
    from vla_nodes.train import depth_tokenizer

    data = write_depth_dataset(tmp_path / 'ds')
    out = tmp_path / 'tok'
    args = [str(data), '--output', str(out), '--preset', 'tiny', '--image-size', '32',
            '--steps', '40', '--batch-size', '4', '--lr', '3e-3', '--no-progress']
    assert depth_tokenizer.main(args) == 0
    log = json.loads((out / 'train_log.json').read_text())
    assert log['validated_on'] == 'val'  # 3 episodes: the last one validates
    assert log['history'][-1]['total'] < log['history'][0]['total']
    assert 1 <= log['validation']['codes_used'] <= 16
    model = qdepth.DepthVQVAE.from_pretrained(out)
    assert model.config == qdepth.TINY_VQVAE
    assert model.tokenize(0.5 + torch.rand(1, 32, 32)).shape == (1, 16)
    assert 'saved to' in capsys.readouterr().out
    assert depth_tokenizer.main(args) == 2  # refuses to overwrite
    assert 'overwrite' in capsys.readouterr().err
    assert depth_tokenizer.main([str(tmp_path / 'nothing'), '--output', str(tmp_path / 'x')]) == 2
    assert 'meta/info.json' in capsys.readouterr().err


def test_dead_code_restarts_keep_the_tiny_tokenizer_from_collapsing():
    """Issue 12.6: at the paper's lr (1e-5) the tiny VQ-VAE uses 1 of 16 codes; restarts revive.

    Depth: tilted planes with a box on them at random places and distances (a tabletop).
    """
    from vla_nodes.train import depth_tokenizer

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:32, 0:32] / 32.0
    frames = []
    for _ in range(64):
        depth = 0.6 + rng.uniform(0.2, 1.0) * y + rng.uniform(-0.2, 0.2) * x
        top, left = rng.integers(0, 24, 2)
        depth[top:top + 8, left:left + 8] -= rng.uniform(0.05, 0.3)
        frames.append(depth)
    frames = np.stack(frames).astype(np.float16)
    used = {}
    for every in (0, 10):
        torch.manual_seed(0)
        model = qdepth.DepthVQVAE(qdepth.TINY_VQVAE)
        history = depth_tokenizer.train(model, frames, 40, 16, 1e-5, 0, 'cpu', progress=False,
                                        restart_every=every)
        used[every] = depth_tokenizer.evaluate(model, frames, 16, 'cpu')['codes_used']
        assert all(np.isfinite(h['total']) for h in history)
    assert used[0] <= 2 and used[10] >= 6, used


def test_depthvla_checkpoint_with_an_encoder_of_another_image_size_round_trips(tmp_path):
    """Issue 12.4: Depth Anything V2's encoder is native 518 px; the preset runs it at 28 here.

    The reload must rebuild that encoder (position embeddings of its own size), not one at the
    preset's image size.
    """
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    from vla_nodes.models import presets
    from vla_nodes.models.vla import VLAModel

    torch.manual_seed(0)
    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            image_size=70, patch_size=14, out_indices=[1, 2])
    DepthAnythingForDepthEstimation(DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16],
        reassemble_factors=[2, 1], fusion_hidden_size=8, head_hidden_size=8)
    ).save_pretrained(tmp_path / 'da')
    config = presets.get('tiny_depthvla')
    assert config.depthvla.image_size == 28
    model = VLAModel(replace_spatial_path(config, tmp_path / 'da')).eval()
    model.save_pretrained(tmp_path / 'ckpt')
    loaded = VLAModel.from_pretrained(tmp_path / 'ckpt').eval()
    image = torch.randint(0, 256, (1, 56, 56, 3), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.spatial.stream.embed(image),
                                   model.spatial.stream.embed(image), rtol=0, atol=0)
    assert loaded.config == model.config
    assert model.config.depthvla.encoder_config['image_size'] == 70


def replace_spatial_path(config, path):
    from dataclasses import replace
    return replace(config, spatial_path=str(path))


def test_depth_pretraining_trains_the_vlas_own_depth_stream():
    """Issue 12.7: DepthVLA's pre-training runs the VLA's depth expert alone.

    Alone it computes what it computes inside the VLA (block-wise mask: depth sees only depth).
    """
    from vla_nodes.contract import OBS_DEPTH, OBS_IMAGE, OBS_INSTRUCTION, OBS_STATE
    from vla_nodes.models import presets
    from vla_nodes.models.vla import VLAModel

    torch.manual_seed(0)
    model = VLAModel(presets.get('tiny_depthvla')).eval()
    batch = {OBS_IMAGE: torch.randint(0, 256, (2, 56, 56, 3), dtype=torch.uint8),
             OBS_DEPTH: 0.4 + torch.rand(2, 56, 56), OBS_STATE: torch.randn(2, 7),
             OBS_INSTRUCTION: ['pick', 'push']}
    adapter = model.spatial
    with torch.no_grad():
        prefix = model.prefix(batch)
        inside = model.mot()(prefix, outputs=('depth',))['depth']
        alone = adapter.decode(adapter.stream.embed(batch[OBS_IMAGE]))
    torch.testing.assert_close(alone, inside, rtol=1e-5, atol=1e-5)
    before = {k: v.clone() for k, v in adapter.expert.state_dict().items()}
    opt = torch.optim.Adam(adapter.parameters(), lr=1e-3)
    adapter.train()
    loss = adapter.pretrain_loss(batch)
    loss.backward()
    opt.step()
    after = adapter.expert.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the VLA's own weights
