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

"""What QDepth-VLA's depth expert is asked to predict, as an image a user can look at.

QDepth-VLA (seeds/000) supervises its depth expert with the codes of a VQ-VAE depth tokenizer
(`models/qdepth.py`). `DepthTokenPreview` tokenizes a metric depth frame, decodes the codes back
and maps the result to metres with the frame's own range (the tokenizer normalizes each frame to
[0, 1] by its min and max), so the reconstruction can be compared with the input pixel by pixel.
"""

import numpy as np


class DepthTokenPreview:
    """Tokenize -> decode -> metres, with a tokenizer loaded from a local directory."""

    def __init__(self, directory, device: str = 'cpu'):
        """Load the tokenizer saved by `vla-depth-tokenizer` (never downloads).

        Args:
            directory: folder written by `DepthVQVAE.save_pretrained`.
            device: torch device.
        """
        from vla_nodes.models.qdepth import DepthVQVAE
        self.model = DepthVQVAE.from_pretrained(directory, device=device).eval()
        self.device = device

    def reconstruct(self, depth_m: np.ndarray) -> tuple:
        """The tokenizer's view of one frame.

        Args:
            depth_m: metric depth, NaN / <= 0 invalid. # (H, W) float32

        Returns:
            (reconstruction in metres, NaN where the input is invalid # (H, W) float32,
             code indices # (g * g,) int64).
        """
        import torch
        from torch.nn import functional
        valid = np.isfinite(depth_m) & (depth_m > 0)
        if not valid.any():
            raise ValueError('depth frame has no valid pixel: nothing to tokenize')
        lo, hi = float(depth_m[valid].min()), float(depth_m[valid].max())
        with torch.no_grad():
            depth = torch.as_tensor(np.nan_to_num(depth_m, nan=0.0), device=self.device)[None]
            codes = self.model.tokenize(depth)                                   # (1, g * g)
            unit = self.model.decode(self.model.indices_to_latents(codes))       # (1, 1, R, R)
            unit = functional.interpolate(unit, size=depth_m.shape, mode='bilinear',
                                          align_corners=False)[0, 0]
        metres = (lo + unit.clamp(0.0, 1.0).cpu().numpy() * max(hi - lo, 1e-6))
        metres = metres.astype(np.float32)
        metres[~valid] = np.nan
        return metres, codes[0].cpu().numpy()
