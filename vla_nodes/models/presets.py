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

"""Named model presets, as plain values: the papers' models and their tiny CPU twins.

`PRESETS[name]` is a VLAConfig (models/vla.py); `get(name)` looks one up with a clear error.
Full-size presets carry the transformers configs of the released backbones (no weights: point
`backbone.pretrained` at a local checkpoint directory, e.g. `vla-train --backbone DIR`) and build
on the `meta` device for parameter accounting; `tiny_<name>` twins keep every structural choice
(families, groups, masks, heads) at widths of 32-64 so that tests and CPU runs take seconds.

- pi0_baseline: π0 (Black et al., 2024) as QDepth-VLA and DepthVLA compare against it:
  PaliGemma-3B (SigLIP So400m/14 at 224 px, Gemma-2B) + a Gemma-300M action expert
  (18 layers, width 1024, MLP 4096, 8 heads, 1 KV head of 256) in shared attention, π0's
  block-causal mask, flow matching with Beta(1.5, 1) times and 10 Euler steps, 48 text tokens
  (openpi). Chunk 16: the seed papers' Piper chunk (π0's own default is 50).
- pi0_depth: pi0_baseline + the camera's metric depth as patch tokens in the image group (the
  walking skeleton's depth path; VLAPolicy.random_init runs tiny_pi0_depth).
- vlm4vla: VLM4VLA (Zhang et al.) on Qwen2.5-VL-3B: 224 px frames up-sampled to 448 (256
  visual tokens), one zero-initialised query token, FCDecoder (head 1024), chunk 10 (CALVIN,
  Table 9's sizes), Huber + 0.01 BCE, causal attention as Qwen's.
- qdepth_vla: QDepth-VLA (Li et al., 2026) on pi0_baseline: a Gemma-300M-shaped depth expert fed
  SigLIP tokens (MLP 1152 -> 1024 -> 1024), 256 depth tokens, hybrid mask, CE over a frozen
  VQ-VAE codebook (K = 256, d = 160, 16 x 16) weighted 0.01 · 0.9999^step; 20 text tokens [P].
  Train the VQ-VAE first (vla-depth-tokenizer) and pass it with `vla-train --spatial-path`.
- depthvla: DepthVLA (Yuan et al., 2025) on pi0_baseline: DINOv2-L encoder (Depth Anything V2
  init through --spatial-path) -> a Gemma-300M-shaped decoder stream, block-wise mask, SILog.
- spatial_forcing: Spatial Forcing (Li et al., 2025) on pi0_baseline: Gemma-2B layer 12 of 18
  aligned to a frozen teacher, α = 0.5. The paper's teacher is VGGT (not installable here); the
  preset expects DINOv2-L (1024-d) through `vla-train --teacher`.
- pose_vla: Pose-VLA (Lin et al.) post-training on pi0_baseline: ray-map and depth [D, M]
  priors (PixelUnshuffle(14) -> MLP 588 / 392 -> 4608 -> 1152) added to SigLIP's tokens, the
  vocabulary extended by 4 x 1024 pose tokens (257,216 -> 261,312 ids, mean-resized when a
  released PaliGemma is loaded), chunk 50 [code], action-only flow loss. The pose pre-training
  objective (NTP over pose tokens, tied LM head) is `pose_vla_pretrain`: the same model with
  the flow loss + 1.0 x L_pre on batches that carry answer text (spatial_streams.POSE_ANSWER;
  vla-train makes it from the dataset's end-effector poses: add_pose_answers).
"""

from dataclasses import replace
from types import MappingProxyType

from vla_nodes.models.backbones import (BackboneConfig, TINY_PALIGEMMA, TINY_QWEN2_5_VL,
                                        TINY_SMOLVLM)
from vla_nodes.models.depthvla import DepthVLAConfig
from vla_nodes.models.flow_expert import FlowConfig
from vla_nodes.models.mot import ExpertConfig, GEMMA_300M
from vla_nodes.models.pose_vla import PoseVLAConfig, TINY_POSE
from vla_nodes.models.qdepth import DepthVQVAEConfig, QDepthConfig
from vla_nodes.models.query_head import QueryConfig
from vla_nodes.models.spatial_forcing import SpatialForcingConfig
from vla_nodes.models.vla import VLAConfig

# google/paligemma-3b-pt-224 (2,923 M parameters: Table 9 of VLM4VLA).
PALIGEMMA_3B = {
    'vision_config': {'hidden_size': 1152, 'intermediate_size': 4304, 'num_hidden_layers': 27,
                      'num_attention_heads': 16, 'image_size': 224, 'patch_size': 14,
                      'projection_dim': 2048, 'vision_use_head': False},
    'text_config': {'model_type': 'gemma', 'vocab_size': 257216, 'hidden_size': 2048,
                    'intermediate_size': 16384, 'num_hidden_layers': 18,
                    'num_attention_heads': 8, 'num_key_value_heads': 1, 'head_dim': 256},
    'image_token_index': 257152, 'projection_dim': 2048, 'hidden_size': 2048,
}
# Qwen/Qwen2.5-VL-3B-Instruct (3,755 M parameters: Table 9 of VLM4VLA).
QWEN2_5_VL_3B = {
    'text_config': {'vocab_size': 151936, 'hidden_size': 2048, 'intermediate_size': 11008,
                    'num_hidden_layers': 36, 'num_attention_heads': 16, 'num_key_value_heads': 2,
                    'rms_norm_eps': 1e-6, 'tie_word_embeddings': True, 'rope_theta': 1000000.0,
                    'max_position_embeddings': 128000,
                    'rope_scaling': {'type': 'mrope', 'mrope_section': [16, 24, 24]}},
    'vision_config': {'depth': 32, 'hidden_size': 1280, 'intermediate_size': 3420,
                      'num_heads': 16, 'out_hidden_size': 2048, 'patch_size': 14,
                      'spatial_merge_size': 2, 'temporal_patch_size': 2, 'window_size': 112,
                      'fullatt_block_indexes': [7, 15, 23, 31], 'hidden_act': 'silu'},
    'image_token_id': 151655, 'video_token_id': 151656, 'vision_start_token_id': 151652,
    'vision_end_token_id': 151653, 'tie_word_embeddings': True,
}

# The tiny expert matches the tiny VLMs' attention (2 layers, 4 heads, 1 KV head of 16).
TINY_EXPERT = ExpertConfig(width=32, mlp_dim=64, num_layers=2, num_heads=4, num_kv_heads=1,
                           head_dim=16)

PI0_BASELINE = VLAConfig(
    backbone=BackboneConfig('paligemma', PALIGEMMA_3B, image_size=224, max_text_tokens=48),
    head='flow', expert=GEMMA_300M, flow=FlowConfig(), mask='pi0', image_size=224, horizon=16)
TINY_PI0_BASELINE = VLAConfig(
    backbone=BackboneConfig('paligemma', TINY_PALIGEMMA, image_size=56, max_text_tokens=24),
    head='flow', expert=TINY_EXPERT, mask='pi0', image_size=56, horizon=16)

# A small π0 for CPU benchmarks and quick real runs: 224 px (256 image tokens), about 40 M
# parameters; the structure of pi0_baseline at a fraction of the width.
SMALL_PALIGEMMA = {
    'vision_config': {'hidden_size': 384, 'intermediate_size': 1536, 'num_hidden_layers': 6,
                      'num_attention_heads': 6, 'image_size': 224, 'patch_size': 14,
                      'projection_dim': 512, 'vision_use_head': False},
    'text_config': {'model_type': 'gemma', 'vocab_size': 512, 'hidden_size': 512,
                    'intermediate_size': 2048, 'num_hidden_layers': 6, 'num_attention_heads': 8,
                    'num_key_value_heads': 1, 'head_dim': 64},
    'image_token_index': 511, 'projection_dim': 512,
}
SMALL_PI0 = VLAConfig(
    backbone=BackboneConfig('paligemma', SMALL_PALIGEMMA, image_size=224, max_text_tokens=48),
    head='flow', expert=ExpertConfig(256, 1024, 6, 8, 1, 64), mask='pi0', image_size=224,
    horizon=16)

VLM4VLA = VLAConfig(
    backbone=BackboneConfig('qwen2_5_vl', QWEN2_5_VL_3B, image_size=448, max_text_tokens=48),
    head='query', query=QueryConfig(head_hidden=1024, mask='causal'), image_size=224,
    horizon=10)
TINY_VLM4VLA = VLAConfig(
    backbone=BackboneConfig('qwen2_5_vl', TINY_QWEN2_5_VL, image_size=56, max_text_tokens=24),
    head='query', query=QueryConfig(head_hidden=64, mask='causal'), image_size=56, horizon=10)

# The spatial papers on π0 (the defaults of VLAConfig's qdepth / depthvla / sf are the tiny twins).
QDEPTH_VLA = replace(
    PI0_BASELINE, backbone=replace(PI0_BASELINE.backbone, max_text_tokens=20), spatial='qdepth',
    mask='qdepth_hybrid', qdepth=QDepthConfig(), vqvae=DepthVQVAEConfig())
DEPTHVLA = replace(PI0_BASELINE, spatial='depthvla', mask='depthvla_blockwise',
                   depthvla=DepthVLAConfig())
SPATIAL_FORCING = replace(PI0_BASELINE, spatial='spatial_forcing', sf=SpatialForcingConfig(
    student_width=2048, teacher_width=1024, align_layer=12))


def _vocab(backbone, size):
    """The backbone config with the language model's vocabulary grown to `size` ids."""
    hf = dict(backbone.hf_config)
    hf['text_config'] = {**hf['text_config'], 'vocab_size': size}
    return replace(backbone, hf_config=hf)


POSE = PoseVLAConfig()  # the paper's 1024 bins per family; PaliGemma's <loc> ids
POSE_VLA = replace(PI0_BASELINE, spatial='pose_vla', pose=POSE, horizon=50,
                   backbone=_vocab(PI0_BASELINE.backbone, POSE.vocab_size))
# Tiny: 64 bins and 64 <loc> ids appended after the 300 byte-level ids (364 + 4 x 64 = 620).
TINY_POSE_CONFIG = replace(TINY_POSE, n_loc=64, loc_offset=300, vocab_offset=364,
                           max_answer_tokens=48)
TINY_POSE_VLA = replace(TINY_PI0_BASELINE, spatial='pose_vla', pose=TINY_POSE_CONFIG,
                        backbone=_vocab(TINY_PI0_BASELINE.backbone, TINY_POSE_CONFIG.vocab_size))


def with_image_size(config, size):
    """The preset at another input side S (px): vision tower, depth patches and transforms.

    Only for backbones built from a config here (the tiny and small twins): a pretrained VLM's
    vision tower has the size it was trained at. SigLIP (PaliGemma) and SmolVLM grow their
    position embeddings with S; Qwen2.5-VL needs S a multiple of 28.

    Raises:
        ValueError: a pretrained backbone, or S not a multiple of the patch size.
    """
    backbone = config.backbone
    vision = dict(backbone.hf_config.get('vision_config') or {})
    if backbone.pretrained or not vision:
        raise ValueError('--image-size changes the vision tower: only for presets built from '
                         'a config (tiny_*, small_*), not a pretrained backbone')
    patch = int(vision.get('patch_size', 14))
    if size % patch or size % config.depth_patch:
        raise ValueError(f'image size {size} must be a multiple of the patch sizes '
                         f'({patch}, depth {config.depth_patch})')
    if 'image_size' in vision:
        vision['image_size'] = size
    hf = {**backbone.hf_config, 'vision_config': vision}
    return replace(config, image_size=size,
                   backbone=replace(backbone, hf_config=hf, image_size=size))


# The tiny π0 at 84 px (36 patches of 14 px).
_TINY_PI0_84 = with_image_size(TINY_PI0_BASELINE, 84)

PRESETS = MappingProxyType({
    'pi0_baseline': PI0_BASELINE,
    'tiny_pi0_baseline': TINY_PI0_BASELINE,
    'pi0_depth': replace(PI0_BASELINE, sensor_depth=True),
    'tiny_pi0_depth': replace(TINY_PI0_BASELINE, sensor_depth=True),
    'small_pi0_baseline': SMALL_PI0,
    'vlm4vla': VLM4VLA,
    'tiny_vlm4vla': TINY_VLM4VLA,
    'qdepth_vla': QDEPTH_VLA,
    'tiny_qdepth_vla': replace(TINY_PI0_BASELINE, spatial='qdepth', mask='qdepth_hybrid'),
    'depthvla': DEPTHVLA,
    'tiny_depthvla': replace(TINY_PI0_BASELINE, spatial='depthvla', mask='depthvla_blockwise'),
    'spatial_forcing': SPATIAL_FORCING,
    'tiny_spatial_forcing': replace(TINY_PI0_BASELINE, spatial='spatial_forcing'),
    'pose_vla': POSE_VLA,
    'tiny_pose_vla': TINY_POSE_VLA,
    'pose_vla_pretrain': replace(POSE_VLA, pose=replace(POSE, ntp_weight=1.0)),
    'tiny_pose_vla_pretrain': replace(TINY_POSE_VLA,
                                      pose=replace(TINY_POSE_CONFIG, ntp_weight=1.0)),
    # π0's structure with a from-scratch keypoint encoder instead of the vision tower (models/
    # keypoints.py) at 84 px, robomimic's input side: image-only policies from tens of demos.
    'tiny_pi0_keypoints': replace(TINY_PI0_BASELINE, vision='keypoints', image_size=84),
    # The same, with the object poses learned from the camera (VLAConfig.env_state_from_image):
    # trained on a dataset with pose_node's poses, run with cameras only. 5 = a cube's x, y, z,
    # cos 4 yaw, sin 4 yaw; vla-train sets the dataset's size.
    'tiny_pi0_keypoints_pose': replace(TINY_PI0_BASELINE, vision='keypoints', image_size=84,
                                       env_state_from_image=True, env_state_dim=5),
    # tiny_pi0_baseline+env with pose_node replaced by its own PoseEstimator (models/keypoints.
    # py) on the camera: the policy as the one that picks with pose_node's poses (the tiny
    # SigLIP, the head reading [state | poses]), at 84 px for the estimator's sake.
    'tiny_pi0_pose': replace(_TINY_PI0_84, env_state_from_image=True, env_state_dim=5),
    # The same with the policy's image tokens from a blank frame: the camera reaches the
    # action expert only as the estimator's poses (VLAConfig.blank_policy_image).
    'tiny_pi0_pose_blind': replace(_TINY_PI0_84, env_state_from_image=True, env_state_dim=5,
                                   blank_policy_image=True),
    # SmolVLM (Idefics3) as a small π0 backbone on CPU: the third family through the same path.
    'tiny_pi0_smolvlm': replace(
        TINY_PI0_BASELINE, image_size=64,
        backbone=BackboneConfig('smolvlm', TINY_SMOLVLM, image_size=64, max_text_tokens=24)),
})


def get(name):
    """The VLAConfig of a preset.

    Raises:
        KeyError: an unknown name, listing the known ones.
    """
    if name not in PRESETS:
        raise KeyError(f'unknown preset {name!r}; known: {sorted(PRESETS)}')
    return PRESETS[name]
