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

"""As-of alignment on a fixed grid: exact picks, no future leakage, staleness, skew figures."""

import numpy as np
import pytest

from vla_nodes.record import sync

MS = 1_000_000  # ns


def test_sample_times_exact_grid_without_drift():
    np.testing.assert_array_equal(sync.sample_times(0, 100 * MS, 30),
                                  [0, 33_333_333, 66_666_667, 100_000_000])
    hour = sync.sample_times(5, 3600 * 1_000_000_000 + 5, 30)
    assert hour.size == 3600 * 30 + 1 and hour[-1] == 3600 * 1_000_000_000 + 5
    assert sync.sample_times(0, 10 * MS, 30).tolist() == [0]  # shorter than a period
    with pytest.raises(ValueError, match='do not overlap'):
        sync.sample_times(10, 0, 30)
    with pytest.raises(ValueError, match='fps must be positive'):
        sync.sample_times(0, 10, 0)


def test_as_of_picks_on_a_jittered_30hz_camera():
    # Frames nominally every 33.3 ms, stamped +0, +2, -3, +4, -1 ms off nominal.
    stamps = np.array([0, 35_333_333, 63_666_667, 104_000_000, 132_333_333])
    times = sync.sample_times(0, 140 * MS, 30)  # 0, 33.3, 66.7, 100, 133.3 ms
    picks = sync.as_of(stamps, times, max_age_ns=50 * MS)
    # 33.3 ms: frame 1 (35.3) is in the future, so frame 0; 100 ms: frame 3 (104) is too.
    assert picks.index.tolist() == [0, 0, 2, 2, 4]
    assert picks.age_ns.tolist() == [0, 33_333_333, 3_000_000, 36_333_333, 1_000_000]
    assert not picks.missing.any() and not picks.stale.any()


def test_as_of_unsorted_stamps_ties_and_missing():
    stamps = np.array([30, 10, 20, 20])  # log order is not stamp order; a tie at 20
    picks = sync.as_of(stamps, np.array([5, 10, 25, 35]))
    assert picks.index.tolist() == [-1, 1, 3, 0]  # the later of the tied messages wins
    assert picks.age_ns.tolist() == [-1, 0, 5, 5]
    assert picks.missing.tolist() == [True, False, False, False]
    values = np.array([[3.0, 3.5], [1.0, 1.5], [2.0, 2.5], [2.2, 2.7]])
    taken = picks.take(values)
    assert np.isnan(taken[0]).all()
    np.testing.assert_array_equal(taken[1:], values[[1, 3, 0]])
    empty = sync.as_of(np.array([], np.int64), np.array([1, 2]))
    assert empty.index.tolist() == [-1, -1] and empty.missing.all()


def test_no_sample_ever_uses_a_message_newer_than_its_time():
    rng = np.random.default_rng(7)
    for _ in range(300):
        stamps = rng.integers(0, 2_000, rng.integers(1, 60))
        times = np.sort(rng.integers(-100, 2_100, rng.integers(1, 80)))
        picks = sync.as_of(stamps, times, max_age_ns=int(rng.integers(1, 300)))
        for t, i, age in zip(times, picks.index, picks.age_ns):
            earlier = stamps[stamps <= t]
            if i < 0:
                assert earlier.size == 0  # missing only when nothing is at or before t
                continue
            assert stamps[i] <= t                 # never from the future
            assert stamps[i] == earlier.max()     # and the latest of the past
            assert age == t - stamps[i]
        assert np.array_equal(picks.stale, (picks.index >= 0) & (picks.age_ns > picks.max_age_ns))


def test_stale_marking_over_a_dropout():
    # 100 Hz joint states with a 0.3 s dropout between 0.2 s and 0.5 s.
    stamps = np.concatenate([np.arange(0, 200, 10), np.arange(500, 700, 10)]) * MS
    times = sync.sample_times(0, 690 * MS, 10)  # every 100 ms
    picks = sync.as_of(stamps, times, max_age_ns=50 * MS)
    # 300 and 400 ms pick the 190 ms message: 110 and 210 ms old.
    assert picks.stale.tolist() == [False, False, False, True, True, False, False]
    assert picks.fresh.tolist() == [True, True, True, False, False, True, True]
    assert picks.age_ns[3:5].tolist() == [110 * MS, 210 * MS]
    report = sync.skew_summary(picks)
    assert (report['samples'], report['stale'], report['missing']) == (7, 2, 0)
    assert report['skew_max_ms'] == 210.0
    assert sync.as_of(stamps, times).stale.sum() == 0  # no window: never stale


def test_skew_summary_percentiles():
    picks = sync.AsOf(np.arange(21), np.arange(21) * MS, None)  # ages 0, 1, ..., 20 ms
    report = sync.skew_summary(picks)
    assert report == {'samples': 21, 'missing': 0, 'stale': 0, 'skew_p50_ms': 10.0,
                      'skew_p95_ms': 19.0, 'skew_max_ms': 20.0}
    none = sync.skew_summary(sync.as_of(np.array([100]), np.array([0, 1])))
    assert none['missing'] == 2 and none['skew_p50_ms'] is None


def test_aligned_grid_uses_every_frame_of_a_jittery_camera_once():
    rng = np.random.default_rng(3)
    nominal = np.round(np.arange(300) * 1e9 / 30).astype(np.int64) + 10**18
    stamps = nominal + rng.integers(-5 * MS, 5 * MS, nominal.size)
    stamps[0] = nominal[0] + 9 * MS  # a late first frame does not set the phase
    start = sync.aligned_start(int(stamps[0]), 30, stamps)
    times = sync.sample_times(start, int(stamps[-1]), 30)
    picks = sync.as_of(stamps, times)
    assert picks.index.tolist() == list(range(picks.index.size))  # no duplicate, no skip
    assert picks.index.size >= 298
    # Half a period (16.7 ms) minus the jitter; the first frame, 9 ms late, is 7.7 ms old.
    assert (picks.age_ns[1:] > 11 * MS).all() and (picks.age_ns[1:] < 22 * MS).all()
    assert abs(picks.age_ns[0] - 7_666_667) < MS  # the median phase is within 1 ms
    # Why the phase matters: a grid on the frames' own phase picks the previous frame whenever
    # one is stamped late, duplicating it and skipping the next.
    naive = sync.as_of(stamps, sync.sample_times(int(nominal[1]), int(stamps[-1]), 30))
    assert np.unique(naive.index).size < naive.index.size - 50
    assert sync.aligned_start(123, 30, np.array([], np.int64)) == 123


def test_aligned_start_is_not_before_the_allowed_start():
    stamps = np.arange(0, 100) * 33_333_333
    start = sync.aligned_start(1_000 * MS, 30, stamps)
    assert 1_000 * MS <= start < 1_000 * MS + 33_333_334
    frame = stamps[stamps <= start].max()
    assert abs(start - frame - 16_666_667) < 100  # half a period after a frame


def test_overlap_names_the_streams():
    streams = {'state': np.array([5, 50]), 'color': np.array([10, 40]), 'action': [0, 60]}
    assert sync.overlap(streams) == (10, 40)
    with pytest.raises(ValueError, match='no messages on color'):
        sync.overlap({'state': np.array([1]), 'color': np.array([])})
    with pytest.raises(ValueError, match='color ends before state starts'):
        sync.overlap({'state': np.array([50, 60]), 'color': np.array([10, 20])})
