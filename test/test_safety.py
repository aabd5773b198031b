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

"""Tests for vla_nodes.arm.safety, faults and loop_timing: literal inputs, exact outputs."""

import math

import numpy as np
import pytest

from vla_nodes import contract
from vla_nodes.arm.faults import FaultMonitor, warnings_of
from vla_nodes.arm.loop_timing import LoopTiming
from vla_nodes.arm.safety import (clamp_step, clamp_to_limits, is_finite_command,
                                  limit_velocity, narrowed_limits, SafetyFilter, SafetyLimits)

# Three axes keep the literals readable: two joints (rad) and a gripper (m).
SMALL = SafetyLimits(lower=(-1.0, 0.0, 0.0), upper=(1.0, 2.0, 0.0625),
                     max_step=(0.25, 0.25, 0.015625), max_velocity=(1.0, 1.0, 0.125))


def test_default_limits_are_the_contract_intersection():
    limits = SafetyLimits()
    assert len(limits.lower) == 7
    assert limits.lower[2] == -2.967                  # j3: -170 deg rounded as AgileX does
    assert limits.upper[3] == math.radians(100.0)     # j4: SDK limit is tighter than the model
    assert (limits.lower[6], limits.upper[6]) == (0.0, 0.07)


def test_limits_reject_inconsistent_bounds():
    with pytest.raises(ValueError, match='length'):
        SafetyLimits(lower=(0.0,), upper=(1.0, 1.0), max_step=(0.1,), max_velocity=(0.1,))
    with pytest.raises(ValueError, match='exceeds'):
        SafetyLimits(lower=(1.0,), upper=(0.0,), max_step=(0.1,), max_velocity=(0.1,))


def test_is_finite_command():
    assert is_finite_command([0.0, 1.5, -2.0]) is True
    assert is_finite_command([0.0, float('nan')]) is False
    assert is_finite_command(np.array([float('inf'), 0.0])) is False
    assert is_finite_command([float('-inf')]) is False


def test_clamp_to_limits():
    out = clamp_to_limits([-2.0, 1.5, 0.125], SMALL)
    np.testing.assert_array_equal(out, [-1.0, 1.5, 0.0625])


def test_clamp_step_per_axis_and_scalar():
    np.testing.assert_array_equal(
        clamp_step([1.0, -1.0, 0.125], [0.0, 0.0, 0.0], [0.25, 0.5, 0.25]), [0.25, -0.5, 0.125])
    np.testing.assert_array_equal(clamp_step([0.75, 0.5], [0.5, 0.5], 0.125), [0.625, 0.5])


def test_clamp_step_keeps_small_moves_bit_exact():
    """Regressions pinned: current + (target - current) is not always target in floating point."""
    out = clamp_step([0.3], [0.1], 0.5)
    assert out[0] == 0.3


def test_limit_velocity():
    np.testing.assert_array_equal(
        limit_velocity([1.0, 0.5], [0.0, 0.0], 0.5, [1.0, 0.25]), [0.5, 0.125])
    np.testing.assert_array_equal(limit_velocity([1.0], [0.25], 0.0, 1.0), [0.25])
    np.testing.assert_array_equal(limit_velocity([1.0], [0.25], -0.5, 1.0), [0.25])


def test_filter_passes_a_safe_command_unchanged():
    q, reasons = SafetyFilter(SMALL).filter([0.125, 1.0, 0.03125], [0.0, 1.0, 0.03125], 0.5)
    np.testing.assert_array_equal(q, [0.125, 1.0, 0.03125])
    assert reasons == []


@pytest.mark.parametrize('bad', [float('nan'), float('inf'), float('-inf')])
def test_filter_rejects_non_finite_and_holds_the_measured_position(bad):
    q, reasons = SafetyFilter(SMALL).filter([bad, 1.0, 0.0], [0.5, 1.0, 0.015625], 0.01)
    np.testing.assert_array_equal(q, [0.5, 1.0, 0.015625])
    assert reasons == ['non-finite']


def test_filter_clamps_to_the_joint_limits():
    q, reasons = SafetyFilter(SMALL).filter([1.125, 0.0, 0.0625], [1.0, 0.0, 0.0625], 1.0)
    np.testing.assert_array_equal(q, [1.0, 0.0, 0.0625])
    assert reasons == ['joint-limit']


def test_filter_limits_velocity_against_the_previous_command():
    f = SafetyFilter(SMALL)
    q, reasons = f.filter([0.5, 0.0, 0.0], [0.0, 0.0, 0.0], 0.125)
    np.testing.assert_array_equal(q, [0.125, 0.0, 0.0])
    assert reasons == ['velocity']
    # The arm has not moved yet; velocity is paced from the last command, not the measurement.
    q, reasons = f.filter([0.5, 0.0, 0.0], [0.0, 0.0, 0.0], 0.125)
    np.testing.assert_array_equal(q, [0.25, 0.0, 0.0])
    assert reasons == ['velocity']
    # Next tick the step limit (0.25 from the measured 0.0) binds first.
    q, reasons = f.filter([0.5, 0.0, 0.0], [0.0, 0.0, 0.0], 0.125)
    np.testing.assert_array_equal(q, [0.25, 0.0, 0.0])
    assert reasons == ['velocity', 'max-step']


def test_filter_reset_forgets_the_previous_command():
    f = SafetyFilter(SMALL)
    f.filter([0.5, 0.0, 0.0], [0.0, 0.0, 0.0], 0.125)
    f.reset()
    q, _ = f.filter([1.0, 0.0, 0.0], [0.75, 0.0, 0.0], 0.125)
    np.testing.assert_array_equal(q, [0.875, 0.0, 0.0])


def test_filter_walks_back_into_the_limits_without_jumping():
    q, reasons = SafetyFilter(SMALL).filter([0.5, 1.0, 0.0], [0.0, -0.5, 0.0], 10.0)
    np.testing.assert_array_equal(q, [0.25, -0.25, 0.0])
    assert reasons == ['max-step']


def test_filter_refuses_a_non_finite_state_or_wrong_shapes():
    f = SafetyFilter(SMALL)
    with pytest.raises(ValueError, match='not finite'):
        f.filter([0.0, 0.0, 0.0], [float('nan'), 0.0, 0.0], 0.01)
    with pytest.raises(ValueError, match='expected'):
        f.filter([0.0, 0.0], [0.0, 0.0, 0.0], 0.01)


# --- narrowed_limits ---------------------------------------------------------------------------

CONTRACT_LOWER = [contract.PIPER_LIMITS[n].lower for n in contract.JOINT_NAMES]
CONTRACT_UPPER = [contract.PIPER_LIMITS[n].upper for n in contract.JOINT_NAMES]


def test_narrowed_limits_narrow_but_never_widen_the_contract():
    lower, upper = list(CONTRACT_LOWER), list(CONTRACT_UPPER)
    lower[0], upper[0] = -0.5, 0.25          # narrower: kept
    lower[6], upper[1] = -1.0, 4.0           # wider: replaced by the contract's
    limits, ignored = narrowed_limits(lower, upper, max_step=(0.1,) * 7)
    assert (limits.lower[0], limits.upper[0]) == (-0.5, 0.25)
    assert limits.lower[6] == 0.0 and limits.upper[1] == CONTRACT_UPPER[1]
    assert limits.max_step == (0.1,) * 7
    assert ignored == ['gripper lower -1.0000 < contract 0.0000',
                       'joint2 upper 4.0000 > contract 3.1400']


def test_narrowed_limits_refuse_wrong_lengths_and_empty_intervals():
    with pytest.raises(ValueError, match='need 7 values'):
        narrowed_limits([0.0] * 6, CONTRACT_UPPER)
    upper = list(CONTRACT_UPPER)
    upper[2] = -3.0                          # below joint3's lower limit -2.967
    with pytest.raises(ValueError, match=r"no room for \['joint3'\]"):
        narrowed_limits(CONTRACT_LOWER, upper)


# --- FaultMonitor ------------------------------------------------------------------------------

HEALTHY = {'is_ok': True, 'bus_state': 'ACTIVE', 'arm_status': 0, 'err_code': 0, 'ctrl_mode': 1}


def test_silence_is_the_measured_gap_since_the_last_frame_and_latches_until_reset():
    monitor = FaultMonitor(can_timeout_s=0.5)   # times on the stamps' clock (time.time())
    assert monitor.update(10.0, {'joints': 0.0, 'status': 10.0}, HEALTHY) == ''
    assert monitor.update(10.4, {'joints': 0.0, 'status': 10.0}, HEALTHY) == ''  # no joints ever
    assert monitor.update(10.5, {'joints': 0.0, 'status': 10.0}, HEALTHY) == ''  # 0.5 s: not yet
    fault = monitor.update(10.75, {'joints': 0.0, 'status': 10.0}, HEALTHY)
    assert fault.startswith('no CAN status for 0.750 s (can_timeout_s 0.5 s)')
    assert fault.endswith('~/enable true') and monitor.fault == fault
    assert monitor.update(11.0, {'joints': 0.0, 'status': 11.0}, HEALTHY) == ''   # latched
    assert monitor.fault == fault
    monitor.reset()
    # A frame older than the reset: silence counts from the reset, not from the old frame.
    assert monitor.fault == '' and monitor.update(20.0, {'status': 11.0}, HEALTHY) == ''
    assert monitor.update(20.5, {'status': 11.0}, HEALTHY) == ''
    assert 'for 0.600 s' in monitor.update(20.6, {'status': 11.0}, HEALTHY)


def test_the_sdk_isok_flag_does_not_latch_can_timeout_s_decides():
    # piper_sdk's isOk turns false after its own ~0.35 s window, whatever can_timeout_s says.
    assert FaultMonitor(can_timeout_s=1.0).update(
        10.4, {'status': 10.0}, {**HEALTHY, 'is_ok': False}) == ''


@pytest.mark.parametrize('change, words', [
    ({'bus_state': 'ERROR'}, 'bus-off'),
    ({'arm_status': 0x07}, 'collision (arm_status 0x07)'),
    ({'arm_status': 0x01}, 'emergency stop'),
    ({'err_code': 0b100100}, 'communication error on joints [3, 6]'),
])
def test_arm_errors_latch_a_fault(change, words):
    monitor = FaultMonitor()
    assert words in monitor.update(0.0, {}, {**HEALTHY, **change})


def test_limits_and_modes_are_warnings_not_faults():
    status = {**HEALTHY, 'arm_status': 0x04, 'err_code': 0x0300, 'ctrl_mode': 2}
    assert FaultMonitor().update(0.0, {}, status) == ''
    assert warnings_of(status) == [
        'arm_status: target beyond a joint limit', 'joints [1, 2] at their angle limit',
        'control mode 2 is not CAN control: is the teach pendant or a leader arm in charge?']
    assert warnings_of(HEALTHY) == []


def test_latch_keeps_the_first_fault():
    monitor = FaultMonitor()
    monitor.latch('enable failed: no answer')
    monitor.latch('something else')
    assert monitor.fault == 'enable failed: no answer'


# --- LoopTiming --------------------------------------------------------------------------------

def test_loop_timing_reports_period_jitter_and_tick_duration():
    timing = LoopTiming(period_s=0.005)
    assert timing.summary() == {}
    for start in (0.0, 0.005, 0.010, 0.020, 0.025):     # one late tick: 10 ms
        timing.tick(start)
        timing.done(0.001, 0.0005)
    figures = timing.summary()
    assert figures['period_p50_ms'] == pytest.approx(5.0)
    assert figures['period_max_ms'] == pytest.approx(10.0)
    assert figures['jitter_p50_ms'] == pytest.approx(0.0, abs=1e-9)
    assert figures['tick_p99_ms'] == pytest.approx(1.0)
    assert figures['tick_cpu_p50_ms'] == pytest.approx(0.5)
    assert timing.ticks == 5
