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

"""Small frozen transforms on observation dicts, shared by training (train/data.py) and the node.

Shaped after openpi `transforms.py` (Physical Intelligence, 2025): each transform is a frozen
dataclass called on a flat dict of numpy arrays keyed by contract names and returning a new dict;
`compose([...])` chains them. Numpy only, so this module imports without torch.

Normalization: quantile bounds by default, as open-pi-zero (which QDepth-VLA builds on) and
openpi's pi0-FAST/pi05 do: x' = 2 (x - q01) / (q99 - q01 + eps) - 1 maps the 1st..99th percentile
to [-1, 1] and is robust to outliers in teleoperation data. It is not clipped: 2% of the data
legitimately lies outside, and the arm's safety layer clamps joint limits. Gaussian mean/std is
the option `use_quantiles=False`.
"""

from dataclasses import dataclass, field

import numpy as np

from vla_nodes.contract import OBS_DEPTH, OBS_IMAGE, OBS_INTRINSICS

EPS = 1e-6  # keeps a constant dimension (q99 == q01 or std == 0) finite
# Narrowest q01..q99 range (and twice the smallest std) of training statistics, in the field's
# unit (rad, m): a joint that never moves in the demos (Piper's joint 4 spans ~0.001 rad) would
# otherwise turn a 0.01 rad deviation at run time into ~20 normalised units, far outside
# anything the model saw. 0.05 is ~3 deg, below every joint's working range.
MIN_NORM_RANGE = 0.05


@dataclass(frozen=True, eq=False)
class NormStats:
    """Per-dimension statistics of one field (state or action), in its physical units."""

    mean: np.ndarray
    std: np.ndarray
    q01: np.ndarray
    q99: np.ndarray

    def to_dict(self):
        """Plain lists, for JSON."""
        return {k: np.asarray(v, dtype=np.float64).tolist() for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, values):
        """Inverse of to_dict."""
        return cls(**{k: np.asarray(values[k], dtype=np.float32)
                      for k in ('mean', 'std', 'q01', 'q99')})


def stats_to_dict(stats):
    """{key: NormStats} -> JSON-ready dict."""
    return {key: s.to_dict() for key, s in stats.items()}


def stats_from_dict(values):
    """JSON dict -> {key: NormStats}."""
    return {key: NormStats.from_dict(v) for key, v in values.items()}


def compute_stats(values, min_range=MIN_NORM_RANGE):
    """NormStats of samples stacked on the first axis, ranges widened to `min_range`.

    Args:
        values: samples of one field. # (N, dim)
        min_range: floor on q99 - q01 (widened about its middle) and on 2 std.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1, np.shape(values)[-1])
    q01, q99 = np.quantile(x, 0.01, axis=0), np.quantile(x, 0.99, axis=0)
    widen = np.maximum(min_range - (q99 - q01), 0.0) / 2
    std = np.maximum(x.std(0), min_range / 2)
    return NormStats(*(a.astype(np.float32) for a in (x.mean(0), std, q01 - widen, q99 + widen)))


def _affine(s: NormStats, use_quantiles: bool) -> tuple:
    """(offset, scale) with normalized = (x - offset) / scale: q01/q99 -> -1/1, or mean/std."""
    if use_quantiles:
        half_range = (s.q99 - s.q01 + EPS) / 2.0
        return s.q01 + half_range, half_range
    return s.mean, s.std + EPS


def _apply(data, stats: dict, use_quantiles: bool, fn):
    out = dict(data)
    for key, s in stats.items():
        if key in data:
            offset, scale = _affine(s, use_quantiles)
            out[key] = fn(np.asarray(data[key], dtype=np.float32), offset, scale).astype(
                np.float32)
    return out


@dataclass(frozen=True)
class Normalize:
    """Physical units -> normalized, for every key in `stats` that the dict holds."""

    stats: dict = field(hash=False)
    use_quantiles: bool = True

    def __call__(self, data):
        return _apply(data, self.stats, self.use_quantiles, lambda x, o, s: (x - o) / s)


@dataclass(frozen=True)
class Unnormalize:
    """Normalized -> physical units; the exact inverse of Normalize with the same arguments."""

    stats: dict = field(hash=False)
    use_quantiles: bool = True

    def __call__(self, data):
        return _apply(data, self.stats, self.use_quantiles, lambda x, o, s: x * s + o)


@dataclass(frozen=True)
class ResizeWithPad:
    """Fit the image and depth inside height x width, keep the aspect ratio, pad the rest.

    RGB uint8 (H, W, 3): antialiased bilinear, padded with black (as openpi resize_with_pad).
    Depth float32 metres (H, W): nearest neighbour so that no depth is invented across edges;
    NaN stays NaN and the padding is NaN (unobserved). Intrinsics K of the image follow it
    (resize_intrinsics).
    """

    height: int
    width: int
    crop: tuple | None = None  # (top, left, bottom, right) fractions: see crop_fraction
    # Keys of further cameras' RGB images, resized alike but never cropped: the crop is a
    # workspace box in the primary (scene) camera's frame.
    extra_images: tuple = ()

    def __call__(self, data):
        out = dict(data)
        for key in self.extra_images:
            if key in data:
                out[key] = resize_with_pad(np.asarray(data[key]), self.height, self.width)
        if OBS_INTRINSICS in data and OBS_IMAGE in data:
            out[OBS_INTRINSICS] = resize_intrinsics(
                data[OBS_INTRINSICS], np.shape(data[OBS_IMAGE])[:2], self.height, self.width,
                self.crop)
        if OBS_IMAGE in data:
            out[OBS_IMAGE] = resize_with_pad(np.asarray(data[OBS_IMAGE]), self.height,
                                             self.width, self.crop)
        if OBS_DEPTH in data:
            out[OBS_DEPTH] = resize_with_pad(np.asarray(data[OBS_DEPTH], dtype=np.float32),
                                             self.height, self.width, self.crop)
        return out


@dataclass(frozen=True)
class Compose:
    """Apply transforms in order."""

    transforms: tuple

    def __call__(self, data):
        for transform in self.transforms:
            data = transform(data)
        return data


def compose(transforms):
    """Chain transforms, applied in order: [ResizeWithPad(64, 64), Normalize(stats)]."""
    return Compose(tuple(transforms))


def check_crop(crop):
    """A crop box as a tuple of 4 floats, or None for the full frame.

    Raises:
        ValueError: not 0 <= top < bottom <= 1 and 0 <= left < right <= 1.
    """
    if crop is None or len(crop) == 0:
        return None
    if len(crop) != 4:
        raise ValueError(f'a crop is (top, left, bottom, right) fractions, got {crop!r}')
    top, left, bottom, right = (float(v) for v in crop)
    if not (0.0 <= top < bottom <= 1.0 and 0.0 <= left < right <= 1.0):
        raise ValueError(f'crop {crop!r}: need 0 <= top < bottom <= 1 and 0 <= left < right '
                         '<= 1 (fractions of the frame)')
    return (top, left, bottom, right)


def crop_fraction(array, crop):
    """The part of an image (H, W[, C]) inside `crop`, (top, left, bottom, right) as fractions.

    Fractions keep a crop valid at any camera resolution; None returns the array unchanged.
    Cropping the frame to the workspace before the resize gives a small model more pixels on
    the objects (a 4 cm cube is under 2 px in a 56 px view of the whole sim camera frame).
    """
    if check_crop(crop) is None:
        return array
    r0, r1, c0, c1 = _crop_box(array.shape[0], array.shape[1], crop)
    return array[r0:r1, c0:c1]


def _crop_box(h, w, crop):
    """Pixel rows [r0, r1) and columns [c0, c1) of `crop` in an h x w frame."""
    crop = check_crop(crop)
    if crop is None:
        return 0, h, 0, w
    top, left, bottom, right = crop
    r0, r1 = int(round(top * h)), max(int(round(bottom * h)), int(round(top * h)) + 1)
    c0, c1 = int(round(left * w)), max(int(round(right * w)), int(round(left * w)) + 1)
    return r0, r1, c0, c1


def _fit(h, w, height, width):
    """resize_with_pad's geometry: content size (new_h, new_w) and its (top, left) offset."""
    ratio = max(h / height, w / width)
    new_h, new_w = max(1, int(h / ratio)), max(1, int(w / ratio))
    return new_h, new_w, (height - new_h) // 2, (width - new_w) // 2


def content_box(frame_hw, height, width, crop=None):
    """Where resize_with_pad(height, width, crop) puts a frame of (H, W): (top, left, h, w) px."""
    r0, r1, c0, c1 = _crop_box(int(frame_hw[0]), int(frame_hw[1]), crop)
    new_h, new_w, top, left = _fit(r1 - r0, c1 - c0, height, width)
    return top, left, new_h, new_w


def resize_intrinsics(k, frame_hw, height, width, crop=None):
    """Pinhole K of a frame -> K of its resize_with_pad(height, width, crop) image.

    Pixel centres at integer coordinates, as the resize samples them: a pixel u of the frame
    lands at u' = (u - c0 + 0.5) * new_w / (c1 - c0) - 0.5 + left (rows alike).

    Args:
        k: intrinsics of the frame, px. # (3, 3)
        frame_hw: (H, W) of the frame K belongs to.
        height, width: the model image.
        crop: as resize_with_pad.

    Returns:
        K of the model image, px. # (3, 3) float32
    """
    r0, r1, c0, c1 = _crop_box(int(frame_hw[0]), int(frame_hw[1]), crop)
    new_h, new_w, top, left = _fit(r1 - r0, c1 - c0, height, width)
    sx, sy = new_w / (c1 - c0), new_h / (r1 - r0)
    k = np.asarray(k, dtype=np.float64).reshape(3, 3)
    affine = np.array([[sx, 0.0, (0.5 - c0) * sx - 0.5 + left],
                       [0.0, sy, (0.5 - r0) * sy - 0.5 + top],
                       [0.0, 0.0, 1.0]])
    return (affine @ k).astype(np.float32)


def resize_with_pad(array, height, width, crop=None):
    """Resize an RGB uint8 (H, W, 3) or a depth float (H, W) array into height x width.

    With `crop`, only that part of the array is resized (crop_fraction).

    The content is scaled by the same factor on both axes and centred; uint8 images are
    resized bilinearly with antialiasing and padded with 0, float depth by nearest neighbour and
    padded with NaN.

    Returns:
        The resized array. # (height, width[, 3])
    """
    array = crop_fraction(array, crop)
    h, w = array.shape[:2]
    new_h, new_w, top, left = _fit(h, w, height, width)
    if array.dtype == np.uint8:
        resized = _resize_bilinear(array, new_h, new_w)
        out = np.zeros((height, width) + array.shape[2:], dtype=np.uint8)
    else:
        rows = np.minimum(((np.arange(new_h) + 0.5) * h / new_h).astype(int), h - 1)
        cols = np.minimum(((np.arange(new_w) + 0.5) * w / new_w).astype(int), w - 1)
        resized = array[rows[:, None], cols[None, :]]
        out = np.full((height, width) + array.shape[2:], np.nan, dtype=array.dtype)
    out[top:top + new_h, left:left + new_w] = resized
    return out


def _resize_bilinear(image, height, width):
    """Separable triangle-filter resize (PIL-style antialiased bilinear) of a uint8 image.

    Plain numpy gathers, no BLAS: the result is bit-identical on every machine, and no BLAS
    thread pool competes with torch's threads inside policy_node.
    """
    x = image.reshape(image.shape[0], image.shape[1], -1)  # (H, W, C)
    rows, row_weights = _filter_taps(x.shape[0], height)  # (height, K)
    cols, col_weights = _filter_taps(x.shape[1], width)  # (width, K')
    y = np.zeros((height, x.shape[1], x.shape[2]), dtype=np.float32)
    for k in range(rows.shape[1]):
        y += row_weights[:, k, None, None] * x[rows[:, k]]  # (height, W, C)
    z = np.zeros((height, width, x.shape[2]), dtype=np.float32)
    for k in range(cols.shape[1]):
        z += col_weights[None, :, k, None] * y[:, cols[:, k]]  # (height, width, C)
    out = np.clip(np.rint(z), 0, 255).astype(np.uint8)
    return out.reshape((height, width) + image.shape[2:])


def _filter_taps(n_in, n_out):
    """Input indices and normalized triangle-filter weights of each output sample.

    Returns:
        Indices # (n_out, K) int and weights # (n_out, K) float32, rows summing to 1.
    """
    scale = n_in / n_out
    support = max(scale, 1.0)  # widen the filter when shrinking: antialiasing
    centres = (np.arange(n_out) + 0.5) * scale - 0.5  # output centres in input coordinates
    first = np.floor(centres - support).astype(int) + 1
    index = first[:, None] + np.arange(int(np.ceil(2 * support)))[None, :]  # (n_out, K)
    weights = np.maximum(0.0, 1.0 - np.abs(index - centres[:, None]) / support)
    weights[(index < 0) | (index >= n_in)] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    return np.clip(index, 0, n_in - 1), weights.astype(np.float32)
