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

"""Monocular metric depth: a Depth Anything model from a local folder, aligned to metric scale.

`depth_node` uses this when there is no depth camera (`mode: mono`). `MonoDepthModel` runs
`transformers`' `DepthAnythingForDepthEstimation` (Depth Anything V1/V2, relative or metric
heads) on one RGB frame; weights are never downloaded, the model is read from a local folder.
`MonoDepth` aligns its output to metric scale (`perception/align.py`): relative models in
inverse-depth space, metric ones in depth space, against the table plane or sparse sensor depth.

Reference: Depth Anything V2 (Yang et al., 2024).
"""

import json
from pathlib import Path

import numpy as np

from vla_nodes.perception.align import (AlignmentError, fit_scale_shift, SPACES,
                                        table_plane_depth)

# ImageNet statistics: what the DINOv2 backbone of every Depth Anything checkpoint expects.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class MonoDepthModel:
    """A `DepthAnythingForDepthEstimation` read from a local folder, run on single RGB frames."""

    def __init__(self, model_dir, input_size: int = 518, device: str = 'cpu'):
        """Load the model.

        Args:
            model_dir: folder written by `save_pretrained` (config.json + weights), e.g. a
                local copy of depth-anything/Depth-Anything-V2-Small-hf.
            input_size: shorter image side fed to the model (px), rounded to the patch size;
                518 is what Depth Anything was trained at, smaller is faster and coarser.
            device: torch device ('cpu', 'cuda', ...).

        Raises:
            FileNotFoundError: the folder or its config.json is missing.
            ValueError: the folder holds another kind of model.
        """
        path = Path(model_dir).expanduser()
        config = path / 'config.json'
        if not config.is_file():
            raise FileNotFoundError(
                f'mono_model_dir {str(path)!r} has no config.json: point it at a local Depth '
                'Anything folder (e.g. `hf download depth-anything/Depth-Anything-V2-Small-hf '
                '--local-dir DIR` on a machine with internet); nothing is downloaded at run time')
        kind = json.loads(config.read_text()).get('model_type')
        if kind != 'depth_anything':
            raise ValueError(f'{config} describes a {kind!r} model: mono depth needs a '
                             "'depth_anything' (DepthAnythingForDepthEstimation) checkpoint")
        import torch
        from transformers import DepthAnythingForDepthEstimation
        self._torch = torch
        self.model = DepthAnythingForDepthEstimation.from_pretrained(
            str(path), local_files_only=True).to(device).eval()
        self.device = device
        self.input_size = int(input_size)
        self.patch = int(self.model.config.patch_size)
        self.kind = self.model.config.depth_estimation_type  # 'relative' | 'metric'
        self._mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)

    @property
    def space(self) -> str:
        """The alignment space of this model's output: 'inverse' (relative) or 'depth'."""
        return 'depth' if self.kind == 'metric' else 'inverse'

    def model_size(self, height: int, width: int) -> tuple:
        """(h, w) (px) fed to the model for an image of (height, width): aspect kept, patches."""
        factor = self.input_size / min(height, width)
        return tuple(max(self.patch, int(round(s * factor / self.patch)) * self.patch)
                     for s in (height, width))

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """Run the model on one frame.

        Args:
            rgb: (H, W, 3) uint8 RGB.

        Returns:
            (H, W) float32 model output resampled to the image: relative inverse depth
            (unitless) for relative models, metres for metric ones.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'expected an (H, W, 3) uint8 RGB image, got {rgb.dtype} '
                             f'{rgb.shape}')
        torch = self._torch
        functional = torch.nn.functional
        height, width = rgb.shape[:2]
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device)
            x = x.permute(2, 0, 1)[None].float() / 255.0                       # (1, 3, H, W)
            x = functional.interpolate(x, size=self.model_size(height, width), mode='bilinear',
                                       align_corners=False)                      # (1, 3, h, w)
            out = self.model(pixel_values=(x - self._mean) / self._std).predicted_depth
            out = functional.interpolate(out[:, None], size=(height, width), mode='bilinear',
                                         align_corners=False)                    # (1, 1, H, W)
        return out[0, 0].float().cpu().numpy()


REFERENCES = ('table', 'sensor', 'none')


class MonoDepth:
    """Metric depth from one RGB frame: `MonoDepthModel` output aligned to metric references."""

    def __init__(self, model, reference: str = 'table', space: str = '',
                 with_shift: bool = True, table_height_m: float = 0.0,
                 min_references: int = 20):
        """Combine a model with an alignment.

        Args:
            model: a `MonoDepthModel` (or anything with `predict(rgb)` and `space`).
            reference: 'table' (the table plane through the camera-to-base calibration),
                'sensor' (sparse metric depth given per frame) or 'none' (metric models only:
                their output is published as is).
            space: alignment space, 'inverse' or 'depth'; '' takes the model's
                (relative -> 'inverse', metric -> 'depth').
            with_shift: fit a shift as well as a scale.
            table_height_m: z of the table top in base_link (m), for 'table'.
            min_references: fewest references a fit accepts.

        Raises:
            ValueError: an unknown reference or space, or 'none' with a relative model.
        """
        if reference not in REFERENCES:
            raise ValueError(f'mono alignment {reference!r}: use one of {REFERENCES}')
        self.space = space or model.space
        if self.space not in SPACES:
            raise ValueError(f'alignment space {space!r}: use one of {SPACES} or empty')
        if reference == 'none' and model.space != 'depth':
            raise ValueError('a relative depth model needs metric references: set the '
                             "alignment to 'table' (calibration + table height) or 'sensor'")
        self.model, self.reference, self.with_shift = model, reference, with_shift
        self.table_height_m, self.min_references = table_height_m, min_references
        self._plane_key, self._plane = None, None

    def references(self, shape: tuple, k_matrix=None, camera_to_base=None,
                   sensor_m=None) -> np.ndarray | None:
        """(H, W) metric reference depth (m, NaN = none) for this frame, or None for 'none'.

        Raises:
            AlignmentError: the inputs the chosen reference needs are missing or misshapen.
        """
        if self.reference == 'none':
            return None
        if self.reference == 'sensor':
            if sensor_m is None:
                raise AlignmentError('no recent sensor depth to align to: publish the sparse '
                                     'depth topic or use the table alignment')
            if sensor_m.shape != shape:
                raise AlignmentError(f'sensor depth {sensor_m.shape} differs from the image '
                                     f'{shape}: align it to colour')
            return sensor_m
        if k_matrix is None or camera_to_base is None:
            raise AlignmentError('table alignment needs camera_info and the camera-to-base '
                                 'transform (calibration_file or /tf_static)')
        key = (shape, np.asarray(k_matrix).tobytes(), np.asarray(camera_to_base).tobytes())
        if key != self._plane_key:  # the same camera every frame: compute the plane once
            self._plane = table_plane_depth(np.asarray(k_matrix), shape[1], shape[0],
                                            np.asarray(camera_to_base), self.table_height_m)
            self._plane_key = key
        return self._plane

    def estimate(self, rgb: np.ndarray, k_matrix=None, camera_to_base=None,
                 sensor_m=None) -> tuple:
        """Metric depth of one frame.

        Args:
            rgb: (H, W, 3) uint8 RGB.
            k_matrix: (3, 3) intrinsics (px), for 'table'.
            camera_to_base: (4, 4) camera optical frame in base_link (m), for 'table'.
            sensor_m: (H, W) sparse metric depth (m, NaN = none), for 'sensor'.

        Returns:
            (depth (H, W) float32 m with NaN = invalid, `ScaleShift` or None for 'none').

        Raises:
            AlignmentError: missing references or a fit that failed.
        """
        output = self.model.predict(rgb)
        reference = self.references(output.shape, k_matrix, camera_to_base, sensor_m)
        if reference is None:
            depth = np.where(output > 0, output, np.nan).astype(np.float32)
            return depth, None
        fit = fit_scale_shift(output, reference, self.space, self.with_shift,
                              self.min_references)
        return fit.apply(output), fit


def save_random_model(folder, size: str = 'tiny', seed: int = 0):
    """Save a random-weight Depth Anything model with `save_pretrained`, for tests and benches.

    Args:
        folder: where config.json and model.safetensors go (created if missing).
        size: 'tiny' (0.14 M parameters, a 4-layer 32-wide DINOv2) or 'small' (24.8 M, the
            architecture of Depth-Anything-V2-Small: same cost, random weights).
        seed: torch seed of the weights.

    Returns:
        `folder`, ready for `MonoDepthModel(folder)`. The head's last bias is set to 1 so that
        random weights give positive, varied output instead of ReLU zeros.
    """
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config
    torch.manual_seed(seed)
    if size == 'tiny':
        backbone = Dinov2Config(image_size=56, patch_size=14, hidden_size=32,
                                num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                                out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
        config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32,
                                     neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16,
                                     head_hidden_size=8)
    elif size == 'small':
        config = DepthAnythingConfig()  # transformers' defaults are the Small model
    else:
        raise ValueError(f"size {size!r}: use 'tiny' or 'small'")
    model = DepthAnythingForDepthEstimation(config)
    with torch.no_grad():
        model.head.conv3.bias.fill_(1.0)
    model.save_pretrained(folder)
    return folder
