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

"""Pure cores used by the nodes: metric depth conversion and chunk following."""

import numpy as np
import pytest

from vla_nodes.arm.trajectory import Chunk, TrajectoryFollower
from vla_nodes.perception.depth import DepthRange, metres_to_mm, mm_to_metres


def test_mm_to_metres_is_exact_and_marks_invalid_pixels():
    mm = np.array([[0, 1, 1000], [1234, 65535, 40]], np.uint16)
    m = mm_to_metres(mm, DepthRange(min_m=0.05, max_m=10.0))
    assert m.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(m), [[True, True, False], [False, True, True]])
    assert m[0, 2] == np.float32(1.0) and m[1, 0] == np.float32(1.234)
    back = metres_to_mm(m)
    np.testing.assert_array_equal(back, [[0, 0, 1000], [1234, 0, 0]])


def test_every_millimetre_value_converts_to_the_nearest_float32_and_back_exactly():
    mm = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    m = mm_to_metres(mm, DepthRange(min_m=0.001, max_m=65.535))
    assert np.isnan(m[0, 0]) and np.isfinite(m.flat[1:]).all()
    np.testing.assert_array_equal(m.flat[1:], (np.arange(1, 65536) / 1000.0).astype(np.float32))
    np.testing.assert_array_equal(metres_to_mm(m), mm)


def test_mm_to_metres_refuses_the_wrong_dtype():
    with pytest.raises(ValueError, match='uint16'):
        mm_to_metres(np.zeros((2, 2), np.float32))


def chunk(start_ns=0):
    times = np.array([0.1, 0.2, 0.3])
    positions = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 1.0]])
    return Chunk(start_ns, times, positions)


def test_follower_interpolates_in_time_from_the_current_position():
    follower = TrajectoryFollower()
    assert follower.target(0) is None
    follower.set_chunk(chunk(start_ns=1_000_000_000), current=np.array([0.0, 0.0]))
    np.testing.assert_allclose(follower.target(1_000_000_000), [0.0, 0.0])
    np.testing.assert_allclose(follower.target(1_050_000_000), [0.5, 0.0])
    np.testing.assert_allclose(follower.target(1_250_000_000), [2.5, 0.5])
    np.testing.assert_allclose(follower.target(9_000_000_000), [3.0, 1.0])  # holds the end
    assert follower.seconds_past_end(1_300_000_000) == pytest.approx(0.0)
    assert follower.seconds_past_end(1_800_000_000) == pytest.approx(0.5)


@pytest.mark.parametrize('times, positions, reason', [
    ([0.1, 0.1], [[0.0], [1.0]], 'increase'),
    ([0.1], [[np.nan]], 'NaN'),
    ([0.1, 0.2], [[0.0]], 'times'),
])
def test_bad_chunks_are_refused(times, positions, reason):
    with pytest.raises(ValueError, match=reason):
        Chunk(0, np.array(times), np.array(positions, float))
