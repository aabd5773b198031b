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

"""Pose-VLA's pre-training parts: pose tokens, camera-frame targets, geometric priors, NTP loss.

Lin, Yu, Huang, Zhang, Ling, Tan, Xue, Fu, "Universal Pose Pretraining for Generalizable
Vision-Language-Action Policies" (Pose-VLA); spec: research/seeds-sf-posevla.md, part B.
Tags: [paper], [code] (github.com/hetolin/PoseVLA), [A] our default.

Where it fits: pre-training teaches the VLM to write camera-frame poses as discrete tokens, then
the core's flow-matching expert is attached (post-training).
    SigLIP tokens # (B, N, Dv) + PosePriors(ray map K⁻¹[u v 1], depth [D, M])  -> projector -> VLM
    answer text: "{name}<loc x><loc y><transXY x><transXY y><transZ z><rot r><rot p><rot y>;"
    L_pre = −Σ_k log p(s_k | φ(O), L, s_<k) over answer tokens only (`pose_pretrain_loss`)
Token families (App. A): 1024 bins each for rotation (uniform Euler, roll-pitch-yaw with
R = Rz·Ry·Rx), x/y translation (one shared family), z translation and object size, the three
metric ones with equal-frequency (quantile) edges fitted on the training data; loc tokens are
PaliGemma's 1024 `<locNNNN>`, x before y [code]. Robot trajectories become targets by expressing
future end-effector poses in the camera frame of each view, every 10th action [code]. Priors are
added to the SigLIP output before the projector; each is dropped with p = 0.5 in training [code].
"""

from dataclasses import dataclass
import math
import re

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from vla_nodes.arm.kinematics import pose_to_xyz_rpy


@dataclass(frozen=True)
class PoseVLAConfig:
    """Pose vocabulary, targets and priors; defaults are the paper's."""

    n_rot: int = 1024  # bins per family [paper]; the code's defaults were 360/2048/2048/2048
    n_xy: int = 1024
    n_z: int = 1024
    n_size: int = 1024
    n_loc: int = 1024  # PaliGemma <loc> tokens
    waypoint_stride: int = 10  # every 10th action of the chunk becomes a waypoint [code]
    vision_width: int = 1152  # Dv: SigLIP So400m output, where the priors are added [code]
    image_size: int = 224
    patch_size: int = 14
    max_depth_m: float = 4.0  # farther depth is dropped from the prior [code]
    p_keep_depth: float = 0.5  # modality dropout [code]
    p_keep_ray: float = 0.5
    # Token ids in the VLM's vocabulary: PaliGemma's <loc0000> is id 256000; the 4 pose
    # families (FAMILIES order, n_rot + n_xy + n_z + n_size ids) are appended after its 257,216.
    loc_offset: int = 256000
    vocab_offset: int = 257216
    ntp_weight: float = 0.0  # pose NTP co-training weight; 0 = post-training, action only [code]
    max_answer_tokens: int = 128  # answer ids per sample (separator + answer + eos, padded)

    @property
    def vocab_size(self):
        """The extended vocabulary: every id up to the last pose token."""
        return self.vocab_offset + self.n_rot + self.n_xy + self.n_z + self.n_size


TINY_POSE = PoseVLAConfig(n_rot=64, n_xy=64, n_z=64, n_size=64, vision_width=32, image_size=28)


# --- bins ------------------------------------------------------------------------------------

class QuantileBins:
    """Equal-frequency bins: N + 1 edges at the data's quantiles; decode gives the bin midpoint."""

    def __init__(self, n_bins, edges=None):
        self.n_bins = n_bins
        self.edges = None if edges is None else np.asarray(edges, dtype=np.float64)

    def fit(self, values):
        """Set the edges from samples (any shape, metres)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        if v.size < 2 or v.min() == v.max():
            raise ValueError(f'need at least two distinct finite values to fit {self.n_bins} '
                             f'bins, got {v.size} values')
        self.edges = np.quantile(v, np.linspace(0.0, 1.0, self.n_bins + 1))
        return self

    def encode(self, values):
        """Values -> bin indices in [0, N−1]; values outside the fitted range clip to the ends."""
        if self.edges is None:
            raise RuntimeError('QuantileBins.encode before fit: fit on training data first')
        return np.digitize(np.asarray(values, dtype=np.float64), self.edges[1:-1])

    def decode(self, idx):
        """Bin indices -> bin midpoints."""
        idx = np.clip(np.asarray(idx), 0, self.n_bins - 1)
        return 0.5 * (self.edges[idx] + self.edges[idx + 1])


class UniformAngleBins:
    """N uniform levels over [−π, π]: bin b <-> −π + b · 2π / (N − 1) (rounded, not floored)."""

    def __init__(self, n_bins):
        self.n_bins = n_bins

    def encode(self, angles):
        """Angles (rad, wrapped to [−π, π)) -> indices in [0, N−1]."""
        a = np.mod(np.asarray(angles, dtype=np.float64) + math.pi, 2 * math.pi) - math.pi
        return np.rint((a + math.pi) / (2 * math.pi) * (self.n_bins - 1)).astype(np.int64)

    def decode(self, idx):
        return np.asarray(idx) / (self.n_bins - 1) * 2 * math.pi - math.pi


# --- tokenizer ---------------------------------------------------------------------------------

class PoseTokenizer:
    """Poses <-> pose-token text; the token strings extend the VLM's vocabulary."""

    FAMILIES = ('rot', 'transXY', 'transZ', 'size')

    def __init__(self, config=PoseVLAConfig()):
        self.config = config
        self.rot = UniformAngleBins(config.n_rot)
        self.xy = QuantileBins(config.n_xy)
        self.z = QuantileBins(config.n_z)
        self.size = QuantileBins(config.n_size)
        counts = (config.n_rot, config.n_xy, config.n_z, config.n_size, config.n_loc)
        self._width = dict(zip(self.FAMILIES + ('loc',), (len(str(n - 1)) for n in counts)))
        self._count = dict(zip(self.FAMILIES + ('loc',), counts))

    def fit(self, translations, sizes=None):
        """Fit the metric bins: x and y share one family, z has its own, sizes pool 3 axes.

        Args:
            translations: camera-frame positions (m). # (M, 3)
            sizes: object extents (m). # (M', 3) or None (trajectories only)
        """
        t = np.asarray(translations, dtype=np.float64).reshape(-1, 3)
        self.xy.fit(t[:, :2])
        self.z.fit(t[:, 2])
        if sizes is not None:
            self.size.fit(sizes)
        return self

    def token(self, family, idx):
        """The token string of a bin: ('transZ', 7) -> '<transZ0007>' for 1024 bins."""
        return f'<{family}{int(idx):0{self._width[family]}d}>'

    def token_strings(self):
        """The new vocabulary: every rot, transXY, transZ and size token (4 × 1024 by default)."""
        return [self.token(f, i) for f in self.FAMILIES for i in range(self._count[f])]

    def format(self, name, uv, translation, rpy, size=None):
        """One object or waypoint as text (field order: name, loc, trans, [size], rot [code]).

        Args:
            name: category or waypoint name.
            uv: projected centre, normalized to [0, 1] (x = u / W, y = v / H).
            translation: camera-frame position (m). # (3,)
            rpy: roll, pitch, yaw (rad). # (3,)
            size: object extent (m) # (3,) or None.
        """
        loc = np.clip((np.asarray(uv, dtype=np.float64) * (self.config.n_loc - 1)).astype(int),
                      0, self.config.n_loc - 1)
        xy = self.xy.encode(translation[:2])
        parts = [name, *(self.token('loc', i) for i in loc),
                 *(self.token('transXY', i) for i in xy),
                 self.token('transZ', self.z.encode(translation[2]))]
        if size is not None:
            parts += [self.token('size', i) for i in self.size.encode(size)]
        parts += [self.token('rot', i) for i in self.rot.encode(rpy)]
        return ''.join(parts) + ';'

    _ITEM = re.compile(r'\s*([^<;]*?)((?:<[A-Za-z]+\d+>)+);')

    def parse(self, text):
        """Inverse of `format` (decoded to bin centres); returns one dict per object/waypoint."""
        items = []
        for name, tokens in self._ITEM.findall(text):
            found = {}
            for family, idx in re.findall(r'<([A-Za-z]+?)(\d+)>', tokens):
                found.setdefault(family, []).append(int(idx))
            loc = np.asarray(found.get('loc', []), dtype=np.float64)
            item = {'name': name, 'uv': loc / (self.config.n_loc - 1),
                    'translation': np.concatenate([self.xy.decode(found['transXY']),
                                                   self.z.decode(found['transZ'])]),
                    'rpy': self.rot.decode(found['rot'])}
            if 'size' in found:
                item['size'] = self.size.decode(found['size'])
            items.append(item)
        return items

    def to_dict(self):
        """Fitted edges, for the checkpoint."""
        return {'xy': self.xy.edges.tolist(), 'z': self.z.edges.tolist(),
                'size': None if self.size.edges is None else self.size.edges.tolist()}

    def load_dict(self, values):
        self.xy.edges, self.z.edges = np.asarray(values['xy']), np.asarray(values['z'])
        self.size.edges = None if values['size'] is None else np.asarray(values['size'])
        return self


# --- camera-frame targets ----------------------------------------------------------------------

def pose_in_camera(base_cam, base_ee, ee_tcp=None):
    """T_cam_tcp = inv(T_base_cam) · T_base_ee · T_ee_tcp (the extrinsic of the current step).

    Args:
        base_cam: camera optical frame in base_link. # (4, 4)
        base_ee: end-effector poses in base_link. # (..., 4, 4)
        ee_tcp: tool-point offset in the flange frame # (4, 4), identity if None.
    """
    tcp = np.eye(4) if ee_tcp is None else np.asarray(ee_tcp)
    return np.linalg.inv(np.asarray(base_cam)) @ np.asarray(base_ee) @ tcp


def project(k, points):
    """Pinhole projection: camera-frame points # (..., 3), K # (3, 3) -> pixels # (..., 2)."""
    p = np.asarray(points, dtype=np.float64)
    uvw = p @ np.asarray(k, dtype=np.float64).T
    return uvw[..., :2] / uvw[..., 2:3]


def waypoint_targets(base_cam, k, image_hw, ee_chunk, stride=10, ee_tcp=None):
    """Future end-effector poses of one chunk as camera-frame waypoints [paper Table V; code].

    Args:
        base_cam: T_base_cam at the current step. # (4, 4)
        k: colour intrinsics. # (3, 3)
        image_hw: (H, W) in pixels.
        ee_chunk: absolute end-effector poses of the action chunk, base_link. # (H_a, 4, 4)
        stride: keep every stride-th pose (0, stride, 2·stride, ...).
        ee_tcp: tool-point offset in the flange frame. # (4, 4)

    Returns:
        One dict per waypoint: 'uv' normalized # (2,), 'translation' m # (3,), 'rpy' rad # (3,),
        'in_view' (in front of the camera and inside the image).
    """
    h, w = image_hw
    out = []
    for pose in pose_in_camera(base_cam, np.asarray(ee_chunk)[::stride], ee_tcp):
        xyz_rpy = pose_to_xyz_rpy(pose)
        u, v = project(k, pose[:3, 3])
        in_view = bool(pose[2, 3] > 0 and 0 <= u < w and 0 <= v < h)
        out.append({'uv': np.array([u / w, v / h]), 'translation': xyz_rpy[:3],
                    'rpy': xyz_rpy[3:], 'in_view': in_view})
    return out


# --- geometric priors ----------------------------------------------------------------------------

def compute_raymap(k, height, width):
    """Ray directions r = K⁻¹ [u, v, 1]ᵀ per pixel (pixel centres at integer u, v).

    Returns:
        The ray map, z = 1. # (3, H, W) float32
    """
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                          torch.arange(width, dtype=torch.float64), indexing='ij')
    pix = torch.stack([u, v, torch.ones_like(u)])  # (3, H, W)
    k_inv = torch.linalg.inv(torch.as_tensor(np.asarray(k), dtype=torch.float64))
    return torch.einsum('ij,jhw->ihw', k_inv, pix).float()


def depth_prior(depth_m, max_depth_m=4.0):
    """[D, M]: metric depth (not normalized) and its validity mask; NaN, <= 0 and far are 0.

    Args:
        depth_m: depth in metres. # (B, H, W)

    Returns:
        The prior. # (B, 2, H, W)
    """
    ok = torch.isfinite(depth_m) & (depth_m > 0) & (depth_m <= max_depth_m)
    return torch.stack([torch.where(ok, depth_m, torch.zeros_like(depth_m)), ok.float()], dim=1)


def sparsify(prior, n_min, n_max, generator=None):
    """Keep a random number n in [n_min, n_max] of each image's valid depth pixels [paper, code].

    Args:
        prior: [D, M] maps. # (B, 2, H, W)
        n_min: fewest pixels kept per image.
        n_max: most pixels kept per image.
        generator: torch.Generator drawing n and the pixels (None: torch's global one).
    """
    out = torch.zeros_like(prior)
    for b in range(prior.shape[0]):
        valid = prior[b, 1].flatten().nonzero().squeeze(1)
        n = int(torch.randint(n_min, n_max + 1, (1,), generator=generator))
        keep = valid[torch.randperm(valid.numel(), generator=generator)[:n]]
        out[b].view(2, -1)[:, keep] = prior[b].view(2, -1)[:, keep]
    return out


class PriorPatchEmbed(nn.Module):
    """PixelUnshuffle(p) -> MLP(C·p² -> 4·Dv -> Dv, GELU): one token per p x p patch [code]."""

    def __init__(self, in_channels, patch_size, width):
        super().__init__()
        self.unshuffle = nn.PixelUnshuffle(patch_size)
        self.mlp = nn.Sequential(nn.Linear(in_channels * patch_size ** 2, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width))

    def forward(self, x):
        """(B, C, H, W) -> (B, (H/p)·(W/p), Dv), row-major like SigLIP's patches."""
        return self.mlp(self.unshuffle(x).flatten(2).transpose(1, 2))


class PosePriors(nn.Module):
    """Adds ray-map and depth embeddings to SigLIP tokens, with modality dropout in training."""

    def __init__(self, config=PoseVLAConfig()):
        super().__init__()
        self.config = config
        self.ray = PriorPatchEmbed(3, config.patch_size, config.vision_width)
        self.depth = PriorPatchEmbed(2, config.patch_size, config.vision_width)

    def forward(self, vision_tokens, raymap=None, depth=None, generator=None):
        """Fuse the priors (additively, "like positional encodings" [paper]).

        Args:
            vision_tokens: SigLIP last hidden state. # (B, N, Dv)
            raymap: from compute_raymap at the model's image size. # (B, 3, S, S) or None
            depth: from depth_prior, metres. # (B, 2, S, S) or None
            generator: drives the dropout draws.

        Returns:
            Fused tokens # (B, N, Dv); unchanged when both priors are None.
        """
        out = vision_tokens
        for prior, embed, p_keep in ((raymap, self.ray, self.config.p_keep_ray),
                                     (depth, self.depth, self.config.p_keep_depth)):
            if prior is None:
                continue
            tokens = embed(prior.to(out.dtype))  # (B, N, Dv)
            if tokens.shape != out.shape:
                raise ValueError(f'prior gives {tuple(tokens.shape)} tokens, SigLIP '
                                 f'{tuple(out.shape)}; priors must be at the image size')
            if self.training:
                keep = torch.rand(out.shape[0], generator=generator) < p_keep  # (B,)
                tokens = tokens * keep.to(tokens)[:, None, None]
            out = out + tokens
        return out


# --- the pre-training objective ---------------------------------------------------------------

def pose_pretrain_loss(logits, input_ids, answer_mask):
    """Eq. 3: next-token cross-entropy on the answer (pose) tokens only.

    Args:
        logits: the VLM's logits. # (B, T, V)
        input_ids: prompt + answer ids. # (B, T)
        answer_mask: True on answer tokens (prompt, image and padding False). # (B, T)

    Returns:
        The mean over supervised tokens.
    """
    labels = torch.where(answer_mask, input_ids, torch.full_like(input_ids, -100))[:, 1:]
    if not bool((labels != -100).any()):
        raise ValueError('no answer token to supervise: answer_mask is all False')
    return functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels.flatten(),
                                    ignore_index=-100)
