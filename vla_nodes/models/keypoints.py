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


class SpatialSoftmax(nn.Module):
    """(B, K, H, W) feature maps -> (B, K, 2) expected (x, y) in [-1, 1], learned temperature."""

    def __init__(self):
        super().__init__()
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, features):
        b, k, h, w = features.shape
        weights = torch.softmax(features.flatten(2) / self.log_temperature.exp(), dim=-1)
        ys = torch.linspace(-1.0, 1.0, h, device=features.device, dtype=features.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=features.device, dtype=features.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
        grid = torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], -1)  # (H W, 2)
        return weights @ grid  # (B, K, 2)


class KeypointEncoder(nn.Module):
    """RGB 0..255 # (B, S, S, 3) -> K keypoint tokens # (B, K, D)."""

    def __init__(self, width: int, keypoints: int = 32, channels: tuple = (32, 32, 64)):
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
        x = images.permute(0, 3, 1, 2).to(self.identity.dtype) / 255.0 - 0.5
        return self.softmax(self.trunk(x))

    def tokens(self, points):
        """Keypoint tokens # (B, K, D)."""
        return self.embed(points) + self.identity

    def forward(self, images):
        return self.tokens(self.points(images))
