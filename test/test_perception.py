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

"""Perception cores on literal and synthetic data: filters, scale alignment, segmentation, worker.

Simulation ground truth is in test_perception_sim.py, calibration in test_perception_calibrate.py
and the nodes in test_perception_nodes.py.
"""

import math
import threading

import numpy as np
import pytest

from vla_nodes.perception import align, filters, objects
from vla_nodes.perception.frame_checks import check_frame, FrameRejected
from vla_nodes.perception.frame_pairs import FramePairs
from vla_nodes.perception.worker import LatestWorker

NAN = np.nan


# --- filters -------------------------------------------------------------------------------------
def test_clip_range_marks_out_of_range_and_nan_as_invalid():
    depth = np.array([[0.01, 0.5, 6.0, NAN]], np.float32)
    out = filters.clip_range(depth, 0.05, 5.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(out), [[True, False, True, True]])
    assert out[0, 1] == np.float32(0.5) and depth[0, 2] == np.float32(6.0)  # input untouched


def test_fill_holes_takes_the_farthest_or_nearest_neighbour_and_stops_at_max_px():
    depth = np.array([[1.0, NAN, 2.0, NAN, NAN, NAN, NAN, NAN, 3.0]], np.float32)
    far = filters.fill_holes(depth, 1, 'farthest')
    near = filters.fill_holes(depth, 1, 'nearest')
    assert far[0, 1] == 2.0 and near[0, 1] == 1.0
    # A 5 px hole: one pass fills its two rims, the middle three stay NaN.
    np.testing.assert_array_equal(np.isnan(far[0, 3:8]), [False, True, True, True, False])
    filled = filters.fill_holes(depth, 3, 'farthest')
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[0, 3:8], [2.0, 2.0, 3.0, 3.0, 3.0])


def test_fill_holes_leaves_an_all_nan_frame_invalid():
    assert np.isnan(filters.fill_holes(np.full((4, 5), NAN, np.float32), 10)).all()


def test_temporal_filter_smooths_small_changes_and_restarts_on_jumps_and_holes():
    temporal = filters.TemporalFilter(alpha=0.5, delta_m=0.02)
    first = temporal.apply(np.array([[1.0, 1.0, 1.0]], np.float32))
    np.testing.assert_array_equal(first, [[1.0, 1.0, 1.0]])
    out = temporal.apply(np.array([[1.01, 1.5, NAN]], np.float32))
    np.testing.assert_allclose(out[0, :2], [1.005, 1.5], rtol=1e-6)  # smoothed, jumped
    assert np.isnan(out[0, 2])                                       # no persistence
    out = temporal.apply(np.array([[1.01, 1.5, 1.0]], np.float32))
    np.testing.assert_allclose(out, [[1.0075, 1.5, 1.0]], rtol=1e-6)
    temporal.reset()
    np.testing.assert_array_equal(temporal.apply(np.array([[2.0, 2.0, 2.0]], np.float32)),
                                  [[2.0, 2.0, 2.0]])


def test_depth_filter_chain_is_only_a_clip_by_default():
    depth = np.array([[0.5, NAN, 0.6, 9.0]], np.float32)
    chain = filters.DepthFilter(filters.FilterConfig(max_m=5.0))
    out = chain.apply(depth)
    np.testing.assert_array_equal(np.isnan(out), [[False, True, False, True]])
    both = filters.DepthFilter(filters.FilterConfig(max_m=5.0, hole_filling=True,
                                                    temporal=True))
    np.testing.assert_array_equal(both.apply(depth),
                                  np.float32([[0.5, 0.6, 0.6, 0.6]]))


@pytest.mark.parametrize('kwargs, match', [
    ({'min_m': 2.0, 'max_m': 1.0}, 'min_depth_m'),
    ({'temporal_alpha': 0.0}, 'temporal_alpha'),
    ({'hole_fill_mode': 'left'}, 'hole_fill_mode'),
    ({'hole_fill_max_px': -1}, 'hole_fill_max_px'),
])
def test_filter_config_refuses_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        filters.FilterConfig(**kwargs)


# --- scale alignment -----------------------------------------------------------------------------
def synthetic_scene(seed=0, shape=(48, 64)):
    """True depth (m) and a relative inverse depth with a known scale and shift."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.4, 3.0, shape)
    scale, shift = 0.37, 0.05  # 1 / depth = scale * relative + shift
    relative = (1.0 / depth - shift) / scale
    return depth, relative, scale, shift


def test_fit_in_inverse_depth_recovers_a_known_scale_and_shift_despite_outliers():
    depth, relative, scale, shift = synthetic_scene()
    reference = np.full(depth.shape, NAN)
    rng = np.random.default_rng(1)
    picks = rng.choice(depth.size, 300, replace=False)           # sparse references
    reference.flat[picks] = depth.flat[picks]
    reference.flat[picks[:60]] *= rng.uniform(1.3, 2.0, 60)      # 20 % wrong (arm, objects)
    fit = align.fit_scale_shift(relative, reference, 'inverse')
    assert fit.scale == pytest.approx(scale, rel=1e-9)
    assert fit.shift == pytest.approx(shift, abs=1e-9)
    assert fit.inliers == 240 and fit.references == 300 and fit.rms_m < 1e-6  # float32 output
    np.testing.assert_allclose(fit.apply(relative), depth, rtol=1e-5)


def test_fit_in_depth_space_and_scale_only():
    depth, _, _, _ = synthetic_scene(seed=2)
    metric_guess = depth / 1.7  # a metric model off by a factor
    fit = align.fit_scale_shift(metric_guess, depth, 'depth', with_shift=False)
    assert fit.scale == pytest.approx(1.7, rel=1e-9) and fit.shift == 0.0
    np.testing.assert_allclose(fit.apply(metric_guess), depth, rtol=1e-6)


def test_fit_refuses_too_few_references_no_contrast_and_the_wrong_space():
    depth, relative, _, _ = synthetic_scene()
    few = np.full(depth.shape, NAN)
    few[0, :5] = depth[0, :5]
    with pytest.raises(align.AlignmentError, match='only 5 metric references'):
        align.fit_scale_shift(relative, few)
    with pytest.raises(align.AlignmentError, match='no contrast'):
        align.fit_scale_shift(np.ones_like(relative), depth)
    with pytest.raises(align.AlignmentError, match='scale'):
        align.fit_scale_shift(relative, depth, 'depth')  # inverse depth fitted as depth
    with pytest.raises(align.AlignmentError, match='differ in size'):
        align.fit_scale_shift(relative[:10], depth)


def test_scale_shift_marks_non_positive_depth_invalid():
    fit = align.ScaleShift(1.0, -1.0, 'inverse', 0.0, 0, 0)
    out = fit.apply(np.array([3.0, 1.0, 0.5]))   # 1 / (r - 1): 0.5 m, inf, negative
    assert out[0] == np.float32(0.5) and np.isnan(out[1:]).all()


def test_table_plane_depth_back_projects_onto_the_plane():
    k = np.array([[200.0, 0, 31.5], [0, 200.0, 23.5], [0, 0, 1]])
    camera = np.eye(4)  # optical axis straight down from 0.8 m: z_cam = -z_base
    camera[:3, :3] = np.diag([1.0, -1.0, -1.0])
    camera[:3, 3] = (0.3, 0.0, 0.8)
    depth = align.table_plane_depth(k, 64, 48, camera, table_height_m=0.05)
    np.testing.assert_allclose(depth, 0.75, rtol=1e-6)
    tilted = camera.copy()
    tilted[:3, :3] = np.eye(3)  # looking up: never meets the table
    assert np.isnan(align.table_plane_depth(k, 64, 48, tilted)).all()


# --- segmentation and fitting primitives ---------------------------------------------------------
def test_rgb_to_hsv_matches_colorsys():
    import colorsys
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [200, 150, 100], [30, 30, 30]]],
                   np.uint8)
    hue, sat, val = objects.rgb_to_hsv(rgb)
    for i, pixel in enumerate(rgb[0]):
        h, s, v = colorsys.rgb_to_hsv(*(pixel / 255.0))
        assert (hue[0, i], sat[0, i], val[0, i]) == pytest.approx((h * 360, s, v), abs=1e-5)


def test_label_components_joins_diagonals_and_keeps_blobs_apart():
    mask = np.array([
        [1, 1, 0, 0, 0, 1],
        [0, 0, 1, 0, 0, 1],
        [0, 0, 0, 0, 0, 0],
        [1, 0, 1, 1, 0, 1],
        [1, 1, 1, 0, 0, 1],
    ], bool)
    labels, count = objects.label_components(mask)
    np.testing.assert_array_equal(labels, [
        [1, 1, 0, 0, 0, 2],
        [0, 0, 1, 0, 0, 2],
        [0, 0, 0, 0, 0, 0],
        [3, 0, 3, 3, 0, 4],
        [3, 3, 3, 0, 0, 4],
    ])
    assert count == 4
    assert objects.label_components(np.zeros((3, 3), bool))[1] == 0


@pytest.mark.parametrize('angle_deg, found_deg, extents', [
    (32.0, 32.0, (0.05, 0.04)),
    (-0.3, 89.7, (0.04, 0.05)),   # the same rectangle seen from its other side
    (90.4, 0.4, (0.04, 0.05)),
])
def test_min_area_rectangle_recovers_a_rotated_rectangle(angle_deg, found_deg, extents):
    u, v = np.meshgrid(np.linspace(-0.025, 0.025, 26), np.linspace(-0.02, 0.02, 21))
    angle = math.radians(angle_deg)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    xy = np.stack([u.ravel(), v.ravel()], 1) @ rot.T + (0.3, -0.1)
    centre, found, sides = objects.min_area_rectangle(xy)
    np.testing.assert_allclose(centre, (0.3, -0.1), atol=1e-6)
    assert math.degrees(found) == pytest.approx(found_deg, abs=0.05)
    np.testing.assert_allclose(sides, extents, atol=1e-5)


@pytest.mark.parametrize('yaw_deg, symmetry, expected', [
    (100.0, 90.0, 10.0), (-50.0, 90.0, 40.0), (190.0, 180.0, 10.0), (33.0, 0.0, 0.0)])
def test_reduce_yaw_by_symmetry(yaw_deg, symmetry, expected):
    out = objects.reduce_yaw(math.radians(yaw_deg), symmetry)
    assert math.degrees(out) == pytest.approx(expected)


def test_hsv_segmenter_finds_each_coloured_blob_and_ignores_specks():
    rgb = np.full((40, 60, 3), 200, np.uint8)            # grey table
    rgb[5:15, 5:15] = (220, 20, 20)                      # red
    rgb[20:30, 30:50] = (20, 180, 40)                    # green
    rgb[35, 58] = (220, 20, 20)                          # a red speck
    segments = objects.HsvSegmenter(min_pixels=20).segment(rgb)
    assert [(s.category, int(s.mask.sum())) for s in segments] == [('cube', 100),
                                                                   ('plate', 200)]
    assert segments[0].mask[5:15, 5:15].all()


# --- worker --------------------------------------------------------------------------------------
def test_latest_worker_drops_waiting_frames_for_newer_ones_and_survives_errors():
    started, release = threading.Event(), threading.Event()
    seen, errors = [], []

    def work(item):
        seen.append(item)
        if item == 'boom':
            raise RuntimeError('bad frame')
        if item == 0:
            started.set()
            release.wait(5.0)

    worker = LatestWorker(work, errors.append)
    worker.submit(0)
    assert started.wait(5.0)          # 0 is running and blocks
    assert worker.submit(1) is True   # waits
    assert worker.submit(2) is False  # replaces 1
    assert worker.submit(3) is False  # replaces 2
    release.set()
    assert worker.wait_idle(5.0)
    worker.submit('boom')
    assert worker.wait_idle(5.0)
    worker.submit(4)
    assert worker.wait_idle(5.0)
    worker.close()
    assert seen == [0, 3, 'boom', 4]
    assert worker.dropped == 2 and worker.errors == 1
    assert [str(e) for e in errors] == ['bad frame']


def test_frame_pairs_match_equal_stamps_and_keep_a_bounded_history():
    pairs = FramePairs(history=2)
    assert pairs.add('color', 1, 'c1') is None
    assert pairs.add('depth', 2, 'd2') is None
    assert pairs.add('depth', 1, 'd1') == ('c1', 'd1')  # (colour, depth) whichever came first
    assert pairs.add('color', 2, 'c2') == ('c2', 'd2')
    for stamp in (3, 4, 5):
        pairs.add('color', stamp, f'c{stamp}')
    assert pairs.add('depth', 3, 'd3') is None  # c3 was dropped: the history holds 2
    assert pairs.add('depth', 5, 'd5') == ('c5', 'd5')


def test_frames_are_refused_with_a_level_until_camera_info_matches():
    with pytest.raises(FrameRejected) as waiting:
        check_frame('16UC1', (4, 3), None, ('16UC1',), 'mm')
    assert waiting.value.level == 'warn'
    with pytest.raises(FrameRejected, match='4x3 does not match camera_info 6x3') as size:
        check_frame('16UC1', (4, 3), (6, 3), ('16UC1',), 'mm')
    assert size.value.level == 'error'
    check_frame('16UC1', (6, 3), (6, 3), ('16UC1',), 'mm')
