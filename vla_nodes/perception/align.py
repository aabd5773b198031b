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

"""Scale alignment: relative or mis-scaled depth from a model -> metric depth, from references.

`perception/mono.py` applies it to Depth Anything output; any depth source whose output is right
up to an affine map can use it. Relative Depth Anything models predict *affine-invariant inverse
depth* (disparity up to an unknown scale and shift), so the default fit is in inverse-depth
space: `1 / depth = scale * output + shift`. Metric models fit in depth space
(`depth = scale * output + shift`). Both are linear least squares against metric references:
sparse sensor depth, or the table plane seen through the camera-to-base calibration
(`table_plane_depth`). The fit is robust: a least-median-of-squares start, then references off
the model (the arm, objects, the floor past the table edge) are rejected by a median-absolute-
deviation test and the fit repeated.

Reference: scale-and-shift alignment in inverse-depth space as in MiDaS (Ranftl et al., 2020).
"""

from dataclasses import dataclass

import numpy as np

SPACES = ('inverse', 'depth')


class AlignmentError(ValueError):
    """Raised when the references cannot fix a scale (too few, or no contrast)."""


@dataclass(frozen=True)
class ScaleShift:
    """A fitted map from model output to metric depth.

    Attributes:
        scale: slope of the map.
        shift: offset of the map (0 when fitted without shift).
        space: 'inverse' (1 / depth_m = scale * out + shift) or 'depth'
            (depth_m = scale * out + shift).
        rms_m: root mean square depth error on the inlier references (m).
        inliers: number of references the final fit used.
        references: number of references fitted (finite ones, thinned to `max_references`).
    """

    scale: float
    shift: float
    space: str
    rms_m: float
    inliers: int
    references: int

    def apply(self, output: np.ndarray) -> np.ndarray:
        """Model output (H, W) -> metric depth (H, W) float32 m, NaN where not positive."""
        mapped = self.scale * np.asarray(output, dtype=np.float64) + self.shift
        with np.errstate(divide='ignore', invalid='ignore'):
            depth = 1.0 / mapped if self.space == 'inverse' else mapped
        depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
        return depth.astype(np.float32)


def fit_scale_shift(output: np.ndarray, reference_m: np.ndarray, space: str = 'inverse',
                    with_shift: bool = True, min_references: int = 20, iterations: int = 3,
                    outlier_k: float = 3.0, max_references: int = 20000) -> ScaleShift:
    """Least-squares scale (and shift) from model output to metric reference depth.

    Args:
        output: (H, W) model output (relative inverse depth, or metric depth for 'depth').
        reference_m: (H, W) metric depth (m) where known, NaN (or <= 0) elsewhere: sparse sensor
            depth or `table_plane_depth`.
        space: 'inverse' fits 1 / reference = scale * output + shift (relative models);
            'depth' fits reference = scale * output + shift (metric models).
        with_shift: fit the shift too; False fits a scale through the origin.
        min_references: fewest finite references (and final inliers) accepted.
        iterations: refits after rejecting references farther than `outlier_k` robust
            standard deviations (1.4826 * median absolute deviation) from the fit; the
            first fit is a least-median-of-squares one, robust to half the references wrong.
        outlier_k: rejection threshold in robust standard deviations.
        max_references: a denser set is thinned to this many, evenly spaced (a dense table
            plane gives 10^5 references; two unknowns need far fewer).

    Returns:
        The fit; `rms_m` is measured in depth (m) on the inliers.

    Raises:
        AlignmentError: shapes differ, fewer than `min_references` usable references, the
            output has no contrast over them, or the scale comes out <= 0 (the output is not
            in `space`: a metric model fitted as 'inverse', or the reverse).
    """
    if space not in SPACES:
        raise AlignmentError(f'alignment space {space!r}: use one of {SPACES}')
    output = np.asarray(output, dtype=np.float64)
    reference_m = np.asarray(reference_m, dtype=np.float64)
    x, ref = _references(output, reference_m, min_references, max_references)
    y = 1.0 / ref if space == 'inverse' else ref
    _lstsq(x, y, with_shift)  # raises if the output has no contrast
    scale, shift = _least_median(x, y, with_shift)
    inliers = np.ones(x.size, bool)
    for _ in range(max(1, iterations)):
        residual = scale * x + shift - y
        mad = np.median(np.abs(residual - np.median(residual[inliers]))[inliers])
        keep = np.abs(residual) <= max(outlier_k * 1.4826 * mad, 1e-9 * np.abs(y).max())
        if keep.sum() >= min_references:
            inliers = keep
        scale, shift = _lstsq(x[inliers], y[inliers], with_shift)
    if not scale > 0:
        raise AlignmentError(f'fitted scale {scale:.3g} <= 0: the model output is not '
                             f'{"inverse depth" if space == "inverse" else "depth"}; set the '
                             'alignment space to match the model (relative -> inverse, '
                             'metric -> depth)')
    fit = ScaleShift(float(scale), float(shift), space, 0.0, int(inliers.sum()), int(x.size))
    error = fit.apply(x[inliers]) - ref[inliers]
    rms = float(np.sqrt(np.nanmean(error ** 2))) if np.isfinite(error).any() else float('inf')
    return ScaleShift(fit.scale, fit.shift, space, rms, fit.inliers, fit.references)


def _references(output: np.ndarray, reference_m: np.ndarray, min_references: int,
                max_references: int) -> tuple:
    """(x, ref): the output and metric depth where both are usable, thinned to max_references."""
    if output.shape != reference_m.shape:
        raise AlignmentError(f'model output {output.shape} and references {reference_m.shape} '
                             'differ in size: resample the references to the image size')
    with np.errstate(invalid='ignore'):
        usable = np.isfinite(output) & np.isfinite(reference_m) & (reference_m > 0)
    x, ref = output[usable], reference_m[usable]
    if x.size > max_references:
        keep = np.linspace(0, x.size - 1, max_references).astype(int)
        x, ref = x[keep], ref[keep]
    if x.size < min_references:
        raise AlignmentError(f'only {x.size} metric references (need {min_references}): give '
                             'sparse sensor depth or the table plane (calibration + table height)')
    return x, ref


def _least_median(x: np.ndarray, y: np.ndarray, with_shift: bool, trials: int = 200,
                  sample: int = 2000) -> tuple:
    """(scale, shift) of the best of `trials` minimal fits (2 points, or 1 without shift).

    Least median of squares (Rousseeuw, 1984): a start that tolerates up to half the
    references being wrong, where plain least squares is pulled off by a few far ones.
    Seeded, so a frame always gives the same fit.
    """
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, x.size, trials), rng.integers(0, x.size, trials)
    with np.errstate(divide='ignore', invalid='ignore'):
        if with_shift:
            scale = (y[i] - y[j]) / (x[i] - x[j])
            shift = y[i] - scale * x[i]
        else:
            scale, shift = y[i] / x[i], np.zeros(trials)
    ok = np.isfinite(scale) & np.isfinite(shift)
    if not ok.any():
        return _lstsq(x, y, with_shift)
    scale, shift = scale[ok], shift[ok]
    pick = rng.choice(x.size, min(x.size, sample), replace=False)
    residual = np.abs(scale[:, None] * x[pick] + shift[:, None] - y[pick])  # (trials, sample)
    best = int(np.argmin(np.median(residual, axis=1)))
    return float(scale[best]), float(shift[best])


def _lstsq(x: np.ndarray, y: np.ndarray, with_shift: bool) -> tuple:
    """(scale, shift) minimizing sum (scale * x + shift - y)^2; raises on no contrast."""
    design = np.stack([x, np.ones_like(x)], axis=1) if with_shift else x[:, None]
    spread = np.ptp(x) if with_shift else np.abs(x).max()
    if not spread > 1e-12 * max(1.0, np.abs(x).max()):
        raise AlignmentError('the model output has no contrast over the references (constant): '
                             'cannot fit a scale; is the model loaded and the image valid?')
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    return float(solution[0]), float(solution[1]) if with_shift else 0.0


def table_plane_depth(k_matrix, width: int, height: int, camera_to_base: np.ndarray,
                      table_height_m: float = 0.0, max_depth_m: float = 3.0) -> np.ndarray:
    """Depth (z along the optical axis) at which each pixel's ray meets the table plane.

    Args:
        k_matrix: (3, 3) pinhole intrinsics (px), pixel centres at integer coordinates.
        width: image width (px).
        height: image height (px).
        camera_to_base: (4, 4) pose of the camera optical frame in base_link (m).
        table_height_m: the table top's z in base_link (m); 0 when the arm stands on it.
        max_depth_m: rays meeting the plane farther than this (m) get NaN: near the horizon a
            small tilt error is a large depth error, and far pixels are rarely the table.

    Returns:
        (H, W) float32 metres; NaN where the ray is parallel to the plane, meets it behind the
        camera or beyond `max_depth_m`.
    """
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ np.linalg.inv(k_matrix).T  # z = 1
    rot, origin = camera_to_base[:3, :3], camera_to_base[:3, 3]
    dz = rays @ rot[2]  # base z component of each ray
    with np.errstate(divide='ignore', invalid='ignore'):
        depth = (table_height_m - origin[2]) / dz  # ray parameter = z-depth, as the ray has z = 1
    depth[~(np.isfinite(depth) & (depth > 0) & (depth <= max_depth_m))] = np.nan
    return depth.astype(np.float32)
