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

"""A vision encoder fit for tens of demos on a CPU: a small CNN + spatial softmax keypoints.

Where it fits: `VLAConfig.vision = 'keypoints'` (presets `tiny_pi0_keypoints`) encodes each camera
image with this instead of the VLM's vision tower; its tokens join the image group as the
tower's would, so the rest of the π0-style model (language model, action expert, mask) is
unchanged. Why: the tiny SigLIP (16 patches of 14 px at 56 px) sees the 4 cm cube as ~3 pixels
and learned no better than the mean trajectory from 45 demos (research/efficacy-diagnosis.md),
while robomimic's and Diffusion Policy's image policies localise objects from ~100-200 demos with
a convolutional trunk + spatial softmax (Levine et al. 2016, arXiv 1504.00702; Mandlekar et al.
2021, arXiv 2108.03298). Each of K feature maps becomes one keypoint, the softmax-weighted mean
pixel position (x, y) in [-1, 1], embedded as a token with a learned per-keypoint embedding; the
primary camera's keypoints also join the state the action expert reads (VLAModel.state), as
robomimic feeds them to its policy beside the proprioception: the expert then reads where things
are directly, not only through the language model's attention.
Trained from scratch (nothing to download); random-shift augmentation in training
(train.random_shift) keeps it from memorising pixels.
"""

import torch
from torch import nn


CHANNELS = (32, 32, 64)  # the trunk's three 3x3 convolutions


class SpatialSoftmax(nn.Module):
    """(B, K, H, W) feature maps -> (B, K, 2) expected (x, y) in [-1, 1], learned temperature."""

    def __init__(self):
        super().__init__()
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def attention(self, features):
        """The softmax over pixels of each map # (B, K, H W)."""
        return torch.softmax(features.flatten(2) / self.log_temperature.exp(), dim=-1)

    def forward(self, features, weights=None):
        b, k, h, w = features.shape
        if weights is None:
            weights = self.attention(features)
        ys = torch.linspace(-1.0, 1.0, h, device=features.device, dtype=features.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=features.device, dtype=features.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
        grid = torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], -1)  # (H W, 2)
        return weights @ grid  # (B, K, 2)


class KeypointEncoder(nn.Module):
    """RGB 0..255 # (B, S, S, 3) -> K keypoint tokens # (B, K, D)."""

    def __init__(self, width: int, keypoints: int = 32, channels: tuple = CHANNELS):
        """A keypoint encoder.

        Args: width D of the tokens; keypoints K; channels of the three 3x3 conv layers (the
        first strided by 2).
        """
        super().__init__()
        layers, previous = [], 3
        for i, c in enumerate(channels):
            layers += [nn.Conv2d(previous, c, 3, stride=2 if i == 0 else 1, padding=1),
                       nn.GroupNorm(min(8, c), c), nn.ReLU()]
            previous = c
        layers.append(nn.Conv2d(previous, keypoints, 1))
        self.trunk = nn.Sequential(*layers)
        self.softmax = SpatialSoftmax()
        self.embed = nn.Linear(2, width)
        self.identity = nn.Parameter(torch.zeros(keypoints, width))
        nn.init.normal_(self.identity, std=0.02)

    def points(self, images):
        """Keypoint coordinates x, y in [-1, 1] # (B, K, 2) of RGB 0..255 images # (B, S, S, 3)."""
        return self.softmax(self.trunk(self._input(images)))

    def points_and_features(self, images):
        """Keypoints # (B, K, 2) and the trunk's features where each keypoint looks # (B, K, C).

        The features (the attention-weighted mean of the last convolution's channels) say what
        is at a keypoint, which its position alone does not: an object's orientation.
        """
        features = self.trunk[:-1](self._input(images))  # (B, C, H', W')
        maps = self.trunk[-1](features)  # (B, K, H', W')
        weights = self.softmax.attention(maps)
        return self.softmax(maps, weights), weights @ features.flatten(2).transpose(1, 2)

    def _input(self, images):
        return images.permute(0, 3, 1, 2).to(self.identity.dtype) / 255.0 - 0.5

    def tokens(self, points):
        """Keypoint tokens # (B, K, D)."""
        return self.embed(points) + self.identity

    def forward(self, images):
        return self.tokens(self.points(images))


class PoseEstimator(nn.Module):
    """RGB 0..255 # (B, S, S, 3) -> object poses # (B, E), normalized: a learned pose_node.

    For `VLAConfig.env_state_from_image`: its own keypoint trunk, read by an MLP (keypoints
    and the features where they look), supervised by the dataset's object poses (pose_node's
    detections when it was recorded) and by nothing else, so that at run time the policy needs
    no pose_node. Its own trunk because, sharing the policy's, the action loss kept it from
    learning the poses at all (normalized MSE 0.30 after 6000 steps, as at the start; alone,
    0.03-0.17 after 600).
    """

    def __init__(self, env_dim: int, keypoints: int = 32, hidden: int = 128):
        super().__init__()
        self.encoder = KeypointEncoder(1, keypoints)  # tokens unused: width 1
        self.mlp = nn.Sequential(nn.Linear(keypoints * (2 + CHANNELS[-1]), hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, env_dim))

    def forward(self, images):
        points, features = self.encoder.points_and_features(images)
        return self.mlp(torch.cat([points, features.to(points.dtype)], -1).flatten(1))
