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

"""TrajectoryFollower: chunk seams blended so the arm neither jerks nor pauses (pure numpy).

The seam tests replay what the policy does: a chunk every 0.5 s, stamped with its observation
time, 10 waypoints 0.1 s apart, arriving after an inference delay of 0.1-0.3 s, each off the
previous one by up to 0.04 rad (a new observation, a new sample of the model). The commanded
trajectory is sampled at the 200 Hz control rate and differentiated twice.
"""

import numpy as np
import pytest

from vla_nodes.arm.trajectory import Chunk, smoothstep, TrajectoryFollower
from vla_nodes.ros.convert import joint_positions, named_positions, select_joints
from vla_nodes.ros.msgs import sensor_msgs

DT = 0.005                    # control period (s), 200 Hz
PERIOD, HORIZON, STEP = 0.5, 10, 0.1
# Acceleration bound at the seams (rad/s^2). Inside a chunk, linear interpolation between
# 10 Hz waypoints of the motion below already bends by up to ~10 rad/s^2 at each waypoint.
SEAM_ACCEL_BOUND = 20.0


def truth(t) -> np.ndarray:
    """The motion the model imitates: (M,) s -> (M, 2) rad, a slow 0.25 Hz swing of 2 joints."""
    t = np.asarray(t, dtype=np.float64)
    w = 2 * np.pi * 0.25
    return np.stack([0.2 * np.sin(w * t), 1.2 + 0.1 * np.cos(w * t)], axis=-1)


def ns(t: float) -> int:
    return int(round(t * 1e9))


def run_policy(follower, observed, delays, offsets, seconds=4.0):
    """Feed chunks observed at `observed` (s) arriving `delays` later; return ticks, commands."""
    ticks = np.arange(0.0, seconds, DT)
    start = truth([0.0])[0]
    arrivals = [o + d for o, d in zip(observed, delays)]
    commands, next_chunk = [], 0
    for t in ticks:
        while next_chunk < len(observed) and arrivals[next_chunk] <= t + 1e-9:
            obs = observed[next_chunk]
            times = STEP * np.arange(1, HORIZON + 1)
            chunk = Chunk(ns(obs), times, truth(obs + times) + offsets[next_chunk])
            follower.set_chunk(chunk, current=start, now_ns=ns(t))
            next_chunk += 1
        q = follower.target(ns(t))
        commands.append(start if q is None else q)
    return ticks, np.array(commands), arrivals


def seam_accelerations(ticks, commands, arrivals, window_s):
    """|second difference| / DT^2 (rad/s^2) at ticks within a seam, and everywhere else."""
    accel = np.abs(np.diff(commands, 2, axis=0)) / DT**2   # (T - 2, J), centred on ticks[1:-1]
    centre = ticks[1:-1]
    seam = np.zeros(len(centre), bool)
    for a in arrivals[1:]:
        seam |= (centre >= a - 2 * DT) & (centre <= a + window_s + 2 * DT)
    return accel[seam], accel[~seam & (centre > arrivals[0] + window_s)]


@pytest.fixture
def inconsistent_chunks():
    rng = np.random.default_rng(7)
    observed = [k * PERIOD for k in range(8)]
    return observed, rng.uniform(0.1, 0.3, 8), rng.uniform(-0.04, 0.04, (8, 2))


def test_blending_bounds_the_acceleration_at_seams_where_a_hard_switch_does_not(
        inconsistent_chunks):
    blended = TrajectoryFollower(blend_s=0.2)
    ticks, commands, arrivals = run_policy(blended, *inconsistent_chunks)
    at_seams, inside = seam_accelerations(ticks, commands, arrivals, 0.2)
    assert at_seams.max() < SEAM_ACCEL_BOUND
    assert inside.max() < SEAM_ACCEL_BOUND  # the bound is not looser than the chunks themselves

    hard = TrajectoryFollower(blend_s=0.0)
    ticks, commands, arrivals = run_policy(hard, *inconsistent_chunks)
    at_seams, _ = seam_accelerations(ticks, commands, arrivals, 0.0)
    # A step of up to 0.04 rad in one 5 ms tick: over 1000 rad/s^2.
    assert at_seams.max() > 50 * SEAM_ACCEL_BOUND


def test_consistent_chunks_are_tracked_through_the_seams_without_a_pause():
    """Chunks that agree give the motion itself: no pause while the next chunk is computed."""
    rng = np.random.default_rng(3)
    observed = [k * PERIOD + rng.uniform(0.0, 0.03) for k in range(8)]  # camera frame times
    follower = TrajectoryFollower(blend_s=0.2)
    ticks, commands, arrivals = run_policy(follower, observed, rng.uniform(0.1, 0.3, 8),
                                           np.zeros((8, 2)))
    after_first = ticks > arrivals[0] + 0.2
    error = np.abs(commands[after_first] - truth(ticks[after_first]))
    assert error.max() < 1e-3          # linear interpolation error of 10 Hz waypoints: 6e-4
    speed = np.abs(np.diff(commands[after_first, 0])) / DT
    true_speed = np.abs(np.diff(truth(ticks[after_first])[:, 0])) / DT
    assert np.all(speed > true_speed - 0.05)


def test_the_fade_runs_from_the_old_trajectory_at_arrival_to_the_new_chunk():
    follower = TrajectoryFollower(blend_s=0.25)
    # Old chunk: joint at 1.0 from t = 0 to 10 s. New chunk observed at 1 s: 2.0 throughout.
    follower.set_chunk(Chunk(0, np.array([0.0, 10.0]), np.array([[1.0], [1.0]])), [1.0])
    follower.set_chunk(Chunk(ns(1.0), np.array([0.0, 5.0]), np.array([[2.0], [2.0]])),
                       [0.0], now_ns=ns(1.5))
    assert follower.target(ns(1.5))[0] == 1.0           # arrival: still the old trajectory
    assert follower.target(ns(1.625))[0] == 1.5         # half-way: smoothstep(0.5) = 0.5
    assert follower.target(ns(1.5625))[0] == pytest.approx(1.0 + smoothstep(0.25))
    assert follower.target(ns(1.75))[0] == 2.0          # blend_s later: the new chunk only
    assert follower.target(ns(3.0))[0] == 2.0


def test_a_new_chunk_starts_from_where_the_command_was_at_its_observation():
    follower = TrajectoryFollower(blend_s=0.0)
    # Old: a ramp 0 -> 1 over 1 s. New, observed at 0.5 s (command 0.5), first waypoint 0.2 s.
    follower.set_chunk(Chunk(0, np.array([0.0, 1.0]), np.array([[0.0], [1.0]])), [0.0])
    follower.set_chunk(Chunk(ns(0.5), np.array([0.2]), np.array([[0.9]])), [0.0],
                       now_ns=ns(0.6))
    assert follower.target(ns(0.6))[0] == pytest.approx(0.7)   # 0.5 + (0.9 - 0.5) / 2
    assert follower.target(ns(0.7))[0] == pytest.approx(0.9)


def test_the_first_chunk_fades_in_from_the_current_position():
    follower = TrajectoryFollower(blend_s=0.2)
    assert follower.target(0) is None and not follower.active
    # It arrives 0.3 s after its observation, past its first waypoint (0.1 s -> 1.0).
    follower.set_chunk(Chunk(0, np.array([0.1, 1.0]), np.array([[1.0], [1.0]])), [0.25],
                       now_ns=ns(0.3))
    assert follower.target(ns(0.3))[0] == 0.25          # no jump to the chunk
    assert follower.target(ns(0.5))[0] == 1.0


def test_out_of_order_and_mismatched_chunks_are_refused():
    follower = TrajectoryFollower(blend_s=0.2)
    follower.set_chunk(Chunk(ns(2.0), np.array([0.1]), np.array([[1.0]])), [0.0])
    with pytest.raises(ValueError, match='out of order'):
        follower.set_chunk(Chunk(ns(1.0), np.array([0.1]), np.array([[1.0]])), [0.0])
    with pytest.raises(ValueError, match='2 joints, the arm 1'):
        follower.set_chunk(Chunk(ns(3.0), np.array([0.1]), np.array([[1.0, 2.0]])), [0.0])
    with pytest.raises(ValueError, match='>= 0'):
        Chunk(0, np.array([-0.1]), np.array([[1.0]]))
    with pytest.raises(ValueError, match='blend_s'):
        TrajectoryFollower(blend_s=-1.0)


def test_a_single_target_is_held_and_goes_stale_like_a_chunk_end():
    follower = TrajectoryFollower(blend_s=0.2)
    follower.set_chunk(Chunk(0, np.array([1.0]), np.array([[1.0, 1.0]])), [0.0, 0.0])
    follower.set_target([0.5, -0.5], now_ns=ns(0.4))
    with pytest.raises(ValueError, match='NaN'):
        follower.set_target([np.nan, 0.0], now_ns=ns(0.4))
    np.testing.assert_array_equal(follower.target(ns(0.4)), [0.5, -0.5])   # no fade
    np.testing.assert_array_equal(follower.target(ns(9.0)), [0.5, -0.5])
    assert follower.seconds_past_end(ns(0.9)) == pytest.approx(0.5)
    follower.clear()
    assert follower.target(ns(1.0)) is None
    assert follower.seconds_past_end(ns(1.0)) == float('inf')
    # A chunk observed before the target was set is still in order with the chunks.
    follower.set_chunk(Chunk(ns(0.3), np.array([0.1]), np.array([[2.0, 2.0]])), [0.5, -0.5])
    np.testing.assert_array_equal(follower.target(ns(0.3)), [0.5, -0.5])


def test_many_chunks_in_quick_succession_keep_memory_bounded():
    """Regressions pinned: fades must not nest one inside another without bound."""
    follower = TrajectoryFollower(blend_s=0.2)
    for k in range(2000):                                 # a chunk every control tick
        t = k * DT
        follower.set_chunk(Chunk(ns(t), np.array([0.1]), np.array([[np.sin(t)]])), [0.0],
                           now_ns=ns(t))
    assert follower._fade_from.positions.shape[0] <= 0.2 / 0.002 + 2
    assert np.isfinite(follower.target(ns(10.0))).all()


def test_target_agrees_with_the_vectorised_positions(inconsistent_chunks):
    follower = TrajectoryFollower(blend_s=0.2)
    run_policy(follower, *inconsistent_chunks, seconds=1.7)   # mid-fade of the 4th chunk
    times = ns(1.5) + np.arange(0, 400) * 1_000_000           # 1.5 s ... 1.9 s, every ms
    expected = follower.positions(times)
    got = np.array([follower.target(int(t)) for t in times])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_select_joints_reorders_by_name_and_says_what_is_missing():
    rows = select_joints(['b', 'x', 'a'], [[2.0, 9.0, 1.0], [4.0, 9.0, 3.0]], ['a', 'b'])
    np.testing.assert_array_equal(rows, [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match=r"joints \['c'\] missing from \['b', 'x', 'a'\]"):
        select_joints(['b', 'x', 'a'], [[2.0, 9.0, 1.0]], ['a', 'c'])
    with pytest.raises(ValueError, match='2 values for 3 joint names'):
        select_joints(['b', 'x', 'a'], [[2.0, 9.0]], ['a'])


def test_a_joint_state_becomes_a_vector_by_name_or_a_clear_error():
    """One conversion, one failure behaviour: ValueError naming the problem (nodes warn, drop)."""
    msg = sensor_msgs.JointState(name=['gripper', 'joint2', 'joint1'], position=[0.03, 0.2, 0.1])
    np.testing.assert_array_equal(joint_positions(msg, ['joint1', 'joint2']), [0.1, 0.2])
    with pytest.raises(ValueError, match=r"joints \['joint3'\] missing"):
        joint_positions(msg, ['joint1', 'joint3'])
    msg.position = [0.03, 0.2]
    with pytest.raises(ValueError, match='2 values for 3 joint names'):
        joint_positions(msg, ['joint1'])


def test_named_positions_keeps_finite_joints_or_raises_on_mismatched_lengths():
    msg = sensor_msgs.JointState(name=['joint2', 'joint1', 'joint3'],
                                 position=[0.2, 0.1, float('nan')])
    assert named_positions(msg) == {'joint2': 0.2, 'joint1': 0.1}
    with pytest.raises(ValueError, match='2 positions for 3 joint names'):
        named_positions(sensor_msgs.JointState(name=['a', 'b', 'c'], position=[0.0, 1.0]))
