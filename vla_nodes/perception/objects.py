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

"""Tabletop object poses from RGB + metric depth: category, SE(3) pose and 3D size per object.

`pose_node` publishes these as vision_msgs/Detection3DArray (the tuple Pose-VLA predicts). Three
steps, each replaceable:

1. Segmentation behind the `Segmenter` protocol (`segment(rgb) -> [Segment]`).
   `HsvSegmenter` thresholds hue, saturation and value per category (red cube, green plate,
   blue block by default) and splits each mask into connected components; a learned segmenter
   plugs in by returning the same `Segment`s.
2. Back-projection of the segment's pixels with metric depth through the pinhole intrinsics,
   then into base_link through the camera-to-base calibration.
3. A robust fit for objects resting on the table: the top face is the band of points within a
   few millimetres of the highest ones; the minimum-area rectangle of its (x, y) gives centre,
   yaw and footprint; the height runs down to the table plane. Orientation is a yaw about the
   base z axis, reduced by the category's symmetry (90 deg for a cube, 180 for a block, none
   for a disc, which gets yaw 0). The pose is returned in the camera optical frame.

Pure numpy; frames and units: metres, radians, base_link z up, optical frame X right Y down.
"""

from dataclasses import dataclass, field
import math
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class HsvRange:
    """An HSV box: hue in degrees [0, 360) (wrapping when hue_min > hue_max), s and v in [0, 1]."""

    hue_min: float
    hue_max: float
    sat_min: float = 0.5
    val_min: float = 0.2


@dataclass(frozen=True)
class ObjectClass:
    """One category the detector knows.

    Attributes:
        hsv: colour range of its pixels.
        symmetry_deg: rotation about the vertical that maps it onto itself (deg): 90 for a
            square box, 180 for an oblong one, 0 for a body of revolution (no yaw reported).
    """

    hsv: HsvRange
    symmetry_deg: float


# The simulated tasks' objects (vla_nodes/sim/piper_mjcf.py); names match SimWorld bodies.
DEFAULT_CLASSES = {
    'cube': ObjectClass(HsvRange(340.0, 20.0), 90.0),
    'plate': ObjectClass(HsvRange(90.0, 150.0), 0.0),
    'block': ObjectClass(HsvRange(200.0, 260.0), 180.0),
}


@dataclass(frozen=True)
class Segment:
    """One object instance in the image: its category, (H, W) bool pixel mask and score [0, 1]."""

    category: str
    mask: np.ndarray
    score: float = 1.0


class Segmenter(Protocol):
    """What the detector needs from a segmenter (colour thresholds or a learned model)."""

    def segment(self, rgb: np.ndarray) -> list:
        """(H, W, 3) uint8 RGB -> list of `Segment` (one per instance)."""


@dataclass(frozen=True)
class DetectedObject:
    """One object: what Pose-VLA predicts.

    Attributes:
        category: class name (a `DEFAULT_CLASSES` key).
        pose: (4, 4) object frame in the camera optical frame (m); z along base_link's up.
        size: (3,) full extent along the object's x, y, z axes (m); x is the longer side.
        score: confidence in [0, 1] (fraction of the segment's pixels with valid depth).
        points: number of 3D points the fit used.
    """

    category: str
    pose: np.ndarray
    size: np.ndarray
    score: float
    points: int


@dataclass(frozen=True)
class DetectorConfig:
    """Fit settings.

    Attributes:
        classes: category name -> `ObjectClass`.
        min_pixels: segments smaller than this (px) are ignored (noise, far objects).
        min_points: fewest valid-depth points for a fit.
        table_height_m: the table top's z in base_link (m).
        top_band_m: points within this of the highest ones form the top face (m): above the
            depth noise, below the height of the flattest object (a 1 cm plate).
    """

    classes: dict = field(default_factory=lambda: dict(DEFAULT_CLASSES))
    min_pixels: int = 20
    min_points: int = 12
    table_height_m: float = 0.0
    top_band_m: float = 0.004


def rgb_to_hsv(rgb: np.ndarray) -> tuple:
    """(..., 3) uint8 RGB -> hue (deg, [0, 360)), saturation and value ([0, 1]), each (...)."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    value = np.maximum(np.maximum(r, g), b)
    chroma = value - np.minimum(np.minimum(r, g), b)
    safe = np.where(chroma > 0, chroma, np.float32(1.0))
    hue = np.where(value == r, (g - b) / safe,
                   np.where(value == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = np.where(chroma > 0, (hue * 60.0) % 360.0, 0.0)
    saturation = chroma / np.where(value > 0, value, np.float32(1.0))
    return hue, saturation, value / 255.0


def hsv_mask(hsv: tuple, bounds: HsvRange) -> np.ndarray:
    """(H, W) bool: pixels of `hsv` (from `rgb_to_hsv`) inside `bounds`."""
    hue, sat, val = hsv
    if bounds.hue_min <= bounds.hue_max:
        in_hue = (hue >= bounds.hue_min) & (hue <= bounds.hue_max)
    else:  # wraps through 0 deg (red)
        in_hue = (hue >= bounds.hue_min) | (hue <= bounds.hue_max)
    return in_hue & (sat >= bounds.sat_min) & (val >= bounds.val_min)


def label_components(mask: np.ndarray) -> tuple:
    """8-connected components of a bool mask, from row runs joined by union-find.

    Args:
        mask: (H, W) bool.

    Returns:
        (labels, count): labels (H, W) int32, 0 = background, 1..count the components in
        order of their first pixel (row-major).
    """
    mask = np.asarray(mask, bool)
    height, width = mask.shape
    padded = np.zeros((height, width + 2), np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    rows, starts = np.nonzero(edges == 1)        # run [start, end) in each row, row-major
    ends = np.nonzero(edges == -1)[1]
    parent = list(range(len(rows)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row_first = np.searchsorted(rows, np.arange(height + 1)).tolist()
    starts, ends = starts.tolist(), ends.tolist()  # plain ints: the loops below are Python
    for row in range(1, height):
        j, above_end = row_first[row - 1], row_first[row]  # runs of the row above, sorted
        for i in range(row_first[row], row_first[row + 1]):
            while j < above_end and ends[j] < starts[i]:
                j += 1
            k = j
            while k < above_end and starts[k] <= ends[i]:  # overlap, diagonals included
                a, b = find(i), find(k)
                if a != b:
                    parent[max(a, b)] = min(a, b)
                k += 1
    roots = [find(i) for i in range(len(rows))]
    ids = {}
    labels = np.zeros((height, width), np.int32)
    for i, root in enumerate(roots):
        labels[rows[i], starts[i]:ends[i]] = ids.setdefault(root, len(ids) + 1)
    return labels, len(ids)


class HsvSegmenter:
    """Colour-threshold segmentation: one `Segment` per connected component per category."""

    def __init__(self, classes: dict = DEFAULT_CLASSES, min_pixels: int = 20):
        """Keep the category -> `ObjectClass` table and the smallest segment kept (px)."""
        self.classes, self.min_pixels = classes, min_pixels

    def segment(self, rgb: np.ndarray) -> list:
        """(H, W, 3) uint8 RGB -> list of `Segment`, largest first within each category."""
        # Hue only where some category could match: saturated, bright pixels are few on a
        # tabletop, and HSV of every pixel would cost more than all the rest.
        mins = [(c.hsv.sat_min, c.hsv.val_min) for c in self.classes.values()]
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        lo = np.minimum(np.minimum(r, g), b).astype(np.int16)
        hi = np.maximum(np.maximum(r, g), b).astype(np.int16)
        candidate = (hi >= 255 * min(v for _, v in mins)) \
            & (hi - lo >= hi * min(s for s, _ in mins))
        v, u = np.nonzero(candidate)
        hsv = rgb_to_hsv(rgb[v, u])
        segments = []
        for name, cls in self.classes.items():
            keep = hsv_mask(hsv, cls.hsv)
            if keep.sum() < self.min_pixels:
                continue
            rows, cols = v[keep], u[keep]
            top, left = rows.min(), cols.min()
            crop = np.zeros((rows.max() - top + 1, cols.max() - left + 1), bool)
            crop[rows - top, cols - left] = True
            labels, count = label_components(crop)
            sizes = np.bincount(labels.ravel(), minlength=count + 1)
            for label in np.argsort(-sizes[1:], kind='stable') + 1:
                if sizes[label] >= self.min_pixels:
                    mask = np.zeros(rgb.shape[:2], bool)
                    mask[top:top + crop.shape[0], left:left + crop.shape[1]] = labels == label
                    segments.append(Segment(name, mask))
        return segments


def back_project(depth_m: np.ndarray, k_matrix, mask: np.ndarray) -> np.ndarray:
    """(N, 3) optical-frame points (m) of the masked pixels with finite depth > 0."""
    v, u = np.nonzero(mask)
    z = depth_m[v, u].astype(np.float64)
    valid = np.isfinite(z) & (z > 0)
    v, u, z = v[valid], u[valid], z[valid]
    fx, fy, cx, cy = k_matrix[0, 0], k_matrix[1, 1], k_matrix[0, 2], k_matrix[1, 2]
    return np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=1)


def min_area_rectangle(xy: np.ndarray, coarse_deg: float = 1.0, fine_deg: float = 0.05) -> tuple:
    """Smallest-area rectangle around 2D points, by a coarse-to-fine search over angle.

    Args:
        xy: (N, 2) points (m).
        coarse_deg: first search step over [0, 90) deg.
        fine_deg: refinement step around the best coarse angle.

    Returns:
        (centre (2,), angle rad in [0, pi/2), extents (2,)): the rectangle's centre, the angle
        of its first side from the x axis and its side lengths along (angle, angle + 90 deg).
    """
    def areas(angles):
        c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
        a = xy[:, 0] * c + xy[:, 1] * s                      # (A, N) along the first side
        b = -xy[:, 0] * s + xy[:, 1] * c                     # (A, N) along the second
        lo_a, hi_a, lo_b, hi_b = a.min(1), a.max(1), b.min(1), b.max(1)
        return (hi_a - lo_a) * (hi_b - lo_b), (lo_a, hi_a, lo_b, hi_b)

    coarse = np.radians(np.arange(0.0, 90.0, coarse_deg))
    best = coarse[np.argmin(areas(coarse)[0])]
    fine = best + np.radians(np.arange(-coarse_deg, coarse_deg + fine_deg / 2, fine_deg))
    area, (lo_a, hi_a, lo_b, hi_b) = areas(fine)
    i = int(np.argmin(area))
    angle = float(fine[i])
    mid_a, mid_b = (lo_a[i] + hi_a[i]) / 2, (lo_b[i] + hi_b[i]) / 2
    c, s = math.cos(angle), math.sin(angle)
    centre = np.array([mid_a * c - mid_b * s, mid_a * s + mid_b * c])
    extents = np.array([hi_a[i] - lo_a[i], hi_b[i] - lo_b[i]])
    if not 0.0 <= angle < math.pi / 2:  # the refinement crossed 0 or 90 deg: turn by 90 deg,
        angle, extents = angle % (math.pi / 2), extents[::-1]  # so the sides swap roles
    return centre, angle, extents


def reduce_yaw(yaw: float, symmetry_deg: float) -> float:
    """Yaw (rad) into [-period / 2, period / 2) for a symmetry period in degrees (0: 0 rad)."""
    if symmetry_deg <= 0:
        return 0.0
    period = math.radians(symmetry_deg)
    return (yaw + period / 2) % period - period / 2


def fit_resting_box(points_base: np.ndarray, table_height_m: float, symmetry_deg: float,
                    top_band_m: float = 0.004) -> tuple:
    """Pose and size of an object resting on the table, from its points in base_link.

    Args:
        points_base: (N, 3) surface points (m), base_link (z up).
        table_height_m: z of the table top (m); the object's bottom.
        symmetry_deg: yaw symmetry of the category (see `ObjectClass`).
        top_band_m: thickness of the top-face band (m).

    Returns:
        (pose (4, 4) in base_link, size (3,) m): centre at half height, z up, x along the
        footprint's longer side; yaw reduced by the symmetry.
    """
    z = points_base[:, 2]
    top = float(np.percentile(z, 99))  # robust to a few stray points above the face
    face = points_base[z >= top - top_band_m, :2]
    centre, angle, extents = min_area_rectangle(face)
    if extents[1] > extents[0]:  # x along the longer side
        angle, extents = angle + math.pi / 2, extents[::-1]
    if symmetry_deg <= 0:  # a disc: report its diameter both ways and no yaw
        extents = np.full(2, extents.mean())
    yaw = reduce_yaw(angle, symmetry_deg)
    height = max(top - table_height_m, 0.0)
    pose = np.eye(4)
    pose[:2, :2] = [[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]]
    pose[:3, 3] = (centre[0], centre[1], table_height_m + height / 2)
    return pose, np.array([extents[0], extents[1], height])


class ObjectDetector:
    """Segments, back-projects and fits every object in one RGB-D frame."""

    def __init__(self, config: DetectorConfig = DetectorConfig(), segmenter=None):
        """Use `segmenter` (any `Segmenter`), or colour thresholds of `config.classes`."""
        self.config = config
        self.segmenter = segmenter or HsvSegmenter(config.classes, config.min_pixels)

    def detect(self, rgb: np.ndarray, depth_m: np.ndarray, k_matrix,
               camera_to_base: np.ndarray) -> list:
        """Detect the objects of one frame.

        Args:
            rgb: (H, W, 3) uint8 RGB.
            depth_m: (H, W) float32 metric depth aligned to `rgb` (m), NaN = invalid.
            k_matrix: (3, 3) intrinsics of both images (px).
            camera_to_base: (4, 4) camera optical frame in base_link (m).

        Returns:
            list of `DetectedObject`, poses in the camera optical frame; segments with too
            few valid depth points are skipped.

        Raises:
            ValueError: image sizes disagree.
        """
        if rgb.shape[:2] != depth_m.shape:
            raise ValueError(f'colour {rgb.shape[:2]} and depth {depth_m.shape} differ in '
                             'size: depth must be aligned to colour')
        k_matrix = np.asarray(k_matrix, dtype=np.float64).reshape(3, 3)
        base_to_camera = np.linalg.inv(camera_to_base)
        found = []
        for seg in self.segmenter.segment(rgb):
            points = back_project(depth_m, k_matrix, seg.mask)
            if len(points) < self.config.min_points:
                continue
            in_base = points @ camera_to_base[:3, :3].T + camera_to_base[:3, 3]
            symmetry = self.config.classes[seg.category].symmetry_deg \
                if seg.category in self.config.classes else 0.0
            pose, size = fit_resting_box(in_base, self.config.table_height_m, symmetry,
                                         self.config.top_band_m)
            score = seg.score * len(points) / max(int(seg.mask.sum()), 1)
            found.append(DetectedObject(seg.category, base_to_camera @ pose, size,
                                        float(score), len(points)))
        return found
