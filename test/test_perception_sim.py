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

"""Perception against simulation ground truth: object poses and table-plane depth alignment.

SimWorld renders colour and metric depth from a calibrated camera; ground truth comes from
`object_pose` and `camera_pose`. Depth goes through 16UC1 millimetres and back, as from the
camera, before the perception cores see it.
"""

import math
import os

os.environ.setdefault('MUJOCO_GL', 'egl')  # mujoco picks its GL backend when first imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vla_nodes.perception import align  # noqa: E402
from vla_nodes.perception.depth import metres_to_mm, mm_to_metres  # noqa: E402
from vla_nodes.perception.objects import DEFAULT_CLASSES, ObjectDetector, reduce_yaw  # noqa: E402
from vla_nodes.sim.tasks import TASKS  # noqa: E402

SEEDS = (0, 1, 2, 3)


def camera_frame(world):
    """(rgb, depth (m) through 16UC1, K, camera_to_base) of the current scene."""
    rgb, depth = world.render()
    depth = mm_to_metres(metres_to_mm(np.where(depth < 10.0, depth, np.nan)))
    return rgb, depth, world.intrinsics()[0], world.camera_pose()


def yaw(pose) -> float:
    return math.atan2(pose[1, 0], pose[0, 0])


def in_view(world, position, margin_px=8) -> bool:
    k, width, height = world.intrinsics()
    cam = np.linalg.inv(world.camera_pose()) @ np.append(position, 1.0)
    u, v, w = k @ cam[:3]
    return w > 0 and margin_px <= u / w <= width - margin_px and margin_px <= v / w <= height \
        - margin_px


@pytest.mark.parametrize('task', sorted(TASKS))
def test_object_poses_match_ground_truth_within_1cm_and_10deg(world, task):
    detector = ObjectDetector()
    checked = 0
    for seed in SEEDS:
        TASKS[task].reset(world, seed)
        rgb, depth, k, camera_to_base = camera_frame(world)
        found = detector.detect(rgb, depth, k, camera_to_base)
        by_category = {}
        for obj in found:
            by_category.setdefault(obj.category, []).append(obj)
        for name, cls in DEFAULT_CLASSES.items():
            truth = world.object_pose(name)
            if not in_view(world, truth[:3, 3]):
                assert name not in by_category, f'{task} seed {seed}: {name} out of view'
                continue
            assert len(by_category.get(name, [])) == 1, f'{task} seed {seed}: {name} missed'
            obj = by_category[name][0]
            estimate = camera_to_base @ obj.pose  # detections are in the optical frame
            error_m = np.linalg.norm(estimate[:3, 3] - truth[:3, 3])
            assert error_m <= 0.01, f'{task} seed {seed} {name}: {error_m * 1000:.1f} mm'
            # Up stays up; yaw agrees modulo the object's symmetry.
            assert estimate[2, 2] == pytest.approx(1.0)
            yaw_error = abs(reduce_yaw(yaw(estimate) - yaw(truth), cls.symmetry_deg))
            assert math.degrees(yaw_error) <= 10.0, f'{task} seed {seed} {name}'
            checked += 1
    assert checked >= 2 * len(SEEDS)  # the task's objects were really seen


def test_object_sizes_are_close_to_the_models(world):
    TASKS['push_block_left'].reset(world, 0)
    found = {o.category: o for o in ObjectDetector().detect(*camera_frame(world))}
    np.testing.assert_allclose(found['cube'].size, (0.04, 0.04, 0.04), atol=0.004)
    np.testing.assert_allclose(found['block'].size, (0.05, 0.04, 0.04), atol=0.004)
    np.testing.assert_allclose(found['plate'].size, (0.12, 0.12, 0.01), atol=0.006)
    assert all(0.9 <= o.score <= 1.0 for o in found.values())


def test_detector_skips_segments_without_depth(world):
    TASKS['push_block_left'].reset(world, 0)
    rgb, depth, k, camera_to_base = camera_frame(world)
    assert ObjectDetector().detect(rgb, np.full_like(depth, np.nan), k, camera_to_base) == []
    with pytest.raises(ValueError, match='aligned to colour'):
        ObjectDetector().detect(rgb, depth[:-1], k, camera_to_base)


def test_table_plane_alignment_recovers_metric_depth_from_relative_inverse_depth(world):
    """A model that is right up to scale and shift becomes metric through the table plane."""
    TASKS['place_cube_on_plate'].reset(world, 1)
    _, depth, k, camera_to_base = camera_frame(world)
    relative = (1.0 / depth - 0.02) / 3.5   # unknown to the fit; NaN where nothing was hit
    plane = align.table_plane_depth(k, depth.shape[1], depth.shape[0], camera_to_base)
    fit = align.fit_scale_shift(relative, plane, 'inverse')
    assert fit.scale == pytest.approx(3.5, rel=1e-3)
    assert fit.shift == pytest.approx(0.02, abs=1e-3)
    assert fit.inliers < fit.references  # arm, objects and floor were rejected
    metric = fit.apply(relative)
    valid = np.isfinite(depth)
    np.testing.assert_allclose(metric[valid], depth[valid], rtol=2e-3)
