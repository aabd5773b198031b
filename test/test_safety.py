"""Tests for vla_nodes.arm.safety: literal inputs, exact outputs (binary-exact fractions)."""

import math

import numpy as np
import pytest

from vla_nodes.arm.safety import (clamp_step, clamp_to_limits, is_finite_command,
                                  limit_velocity, SafetyFilter, SafetyLimits)

# Three axes keep the literals readable: two joints (rad) and a gripper (m).
SMALL = SafetyLimits(lower=(-1.0, 0.0, 0.0), upper=(1.0, 2.0, 0.0625),
                     max_step=(0.25, 0.25, 0.015625), max_velocity=(1.0, 1.0, 0.125))


def test_default_limits_are_the_contract_intersection():
    limits = SafetyLimits()
    assert len(limits.lower) == 7
    assert limits.lower[2] == -2.697                  # j3: model limit is tighter than the SDK
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
