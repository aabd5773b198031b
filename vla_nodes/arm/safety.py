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

"""Command safety for joint-space arms: limits, per-tick step, velocity and NaN rejection.

Where it fits: `arm_driver_node` passes every target through `SafetyFilter.filter()` before
`PiperArm.send()`, so bad input never reaches the arm (DESIGN.md section 7). Pure numpy, no ROS.
Vectors are (7,): joints 1-6 in rad, then the gripper opening in m; per-axis bounds use the same
order, so the gripper entry of a "rad" bound is in metres.
"""

from dataclasses import dataclass, field

import numpy as np

from vla_nodes import contract

# 0.05 rad per tick = 5 rad/s at 100 Hz: only guards against jumps; the velocity limit paces.
DEFAULT_MAX_STEP = (0.05,) * 6 + (0.01,)
# Half the Piper's 3 rad/s joint speed, and a gripper that opens fully in about 0.7 s.
DEFAULT_MAX_VELOCITY = (1.5,) * 6 + (0.1,)


def _contract_bound(attr: str) -> tuple:
    """Lower or upper bounds of contract.PIPER_LIMITS in contract.JOINT_NAMES order."""
    return tuple(getattr(contract.PIPER_LIMITS[n], attr) for n in contract.JOINT_NAMES)


@dataclass(frozen=True)
class SafetyLimits:
    """Per-axis bounds; each is a tuple with one entry per axis (joints rad, gripper m).

    Attributes:
        lower: lowest allowed position.
        upper: highest allowed position.
        max_step: largest allowed distance from the measured position, per control tick.
        max_velocity: largest allowed speed of the command stream (per s).
    """

    lower: tuple = field(default_factory=lambda: _contract_bound('lower'))
    upper: tuple = field(default_factory=lambda: _contract_bound('upper'))
    max_step: tuple = DEFAULT_MAX_STEP
    max_velocity: tuple = DEFAULT_MAX_VELOCITY

    def __post_init__(self):
        """Check that all bounds have one entry per axis and are consistent."""
        sizes = {len(self.lower), len(self.upper), len(self.max_step), len(self.max_velocity)}
        if len(sizes) != 1:
            raise ValueError(f'SafetyLimits fields differ in length: {sorted(sizes)}')
        if np.any(np.asarray(self.lower) > np.asarray(self.upper)):
            raise ValueError(f'lower {self.lower} exceeds upper {self.upper}')
        if np.any(np.asarray(self.max_step) < 0) or np.any(np.asarray(self.max_velocity) < 0):
            raise ValueError('max_step and max_velocity must be >= 0')


def narrowed_limits(lower, upper, **bounds) -> tuple:
    """SafetyLimits with the requested position bounds, never wider than the contract's.

    A robot configuration may keep an arm away from a table or a wall by narrowing the joint
    limits; it can never widen them past `contract.PIPER_LIMITS` (the SDK and model limits).

    Args:
        lower: (7,) requested lowest positions (rad x6, m), contract.JOINT_NAMES order.
        upper: (7,) requested highest positions.
        **bounds: max_step and max_velocity, passed on to SafetyLimits.

    Returns:
        (limits, ignored): the SafetyLimits, and one message per requested bound that lay
        outside the contract envelope and was therefore replaced by the contract's.

    Raises:
        ValueError: wrong lengths, a NaN or infinite bound, or a joint whose narrowed interval
            is empty.
    """
    names = contract.JOINT_NAMES
    if len(lower) != len(names) or len(upper) != len(names):
        raise ValueError(f'joint limits need {len(names)} values ({", ".join(names)}), got '
                         f'{len(lower)} lower and {len(upper)} upper')
    if not is_finite_command(lower) or not is_finite_command(upper):
        raise ValueError(f'joint limits must be finite numbers (rad x6, gripper m), got lower '
                         f'{list(lower)} and upper {list(upper)}: write the values, or leave '
                         'them out for the contract limits')
    envelope_lo, envelope_hi = _contract_bound('lower'), _contract_bound('upper')
    ignored = [f'{n} lower {lo:.4f} < contract {c:.4f}'
               for n, lo, c in zip(names, lower, envelope_lo) if lo < c]
    ignored += [f'{n} upper {hi:.4f} > contract {c:.4f}'
                for n, hi, c in zip(names, upper, envelope_hi) if hi > c]
    lo = tuple(max(float(a), b) for a, b in zip(lower, envelope_lo))
    hi = tuple(min(float(a), b) for a, b in zip(upper, envelope_hi))
    empty = [n for n, a, b in zip(names, lo, hi) if a > b]
    if empty:
        raise ValueError(f'joint limits leave no room for {empty}: each lower limit must be '
                         '<= its upper one inside the envelope of contract.PIPER_LIMITS')
    return SafetyLimits(lower=lo, upper=hi, **bounds), ignored


def is_finite_command(q) -> bool:
    """Return True if every entry of q is a finite number (no NaN, no +-Inf)."""
    return bool(np.all(np.isfinite(np.asarray(q, dtype=np.float64))))


def clamp_to_limits(q, limits: SafetyLimits) -> np.ndarray:
    """Return q clipped into [limits.lower, limits.upper], per axis."""
    return np.clip(np.asarray(q, dtype=np.float64), limits.lower, limits.upper)


def clamp_step(q_target, q_current, max_step) -> np.ndarray:
    """q_target moved toward q_current until no axis is more than max_step away from it.

    Args:
        q_target: wanted positions.
        q_current: reference positions (e.g. measured).
        max_step: largest allowed |q_target - q_current|, scalar or per axis.
    """
    current = np.asarray(q_current, dtype=np.float64)
    target = np.asarray(q_target, dtype=np.float64)
    bound = np.broadcast_to(np.asarray(max_step, dtype=np.float64), target.shape)
    delta = target - current
    # Axes within the bound keep their exact value (current + delta may differ in the last bit).
    return np.where(np.abs(delta) > bound, current + np.sign(delta) * bound, target)


def limit_velocity(q_target, q_prev, dt: float, max_vel) -> np.ndarray:
    """q_target limited so that going from q_prev takes at least dt at speed max_vel.

    Args:
        q_target: wanted positions.
        q_prev: previous command.
        dt: time since the previous command (s); dt <= 0 holds q_prev.
        max_vel: largest allowed speed per axis (rad/s, gripper m/s), scalar or per axis.
    """
    return clamp_step(q_target, q_prev, np.asarray(max_vel) * max(dt, 0.0))


class SafetyFilter:
    """Limits, then velocity (against the previous output), then step (against the measurement).

    The step limit is applied last, so the output is never more than max_step from the measured
    position, even if that position lies outside the limits: the arm walks back, never jumps.
    """

    def __init__(self, limits: SafetyLimits = SafetyLimits()):
        """Start with no previous command.

        Args:
            limits: bounds to enforce.
        """
        self.limits = limits
        self._prev = None

    def reset(self) -> None:
        """Forget the previous command (e.g. after re-enabling the arm)."""
        self._prev = None

    def filter(self, q_target, q_current, dt: float) -> tuple:
        """Make q_target safe to send.

        Args:
            q_target: (N,) wanted positions (rad / m).
            q_current: (N,) measured positions (rad / m); must be finite.
            dt: seconds since the previous call.

        Returns:
            (q_safe, reasons): q_safe (N,) to send; reasons lists what changed the command,
            in order, from 'non-finite' (command rejected, q_safe = q_current), 'joint-limit',
            'velocity' and 'max-step'. Empty if q_target passed unchanged.

        Raises:
            ValueError: q_current is not finite or the shapes do not match the limits.
        """
        current = np.asarray(q_current, dtype=np.float64)
        target = np.asarray(q_target, dtype=np.float64)
        if current.shape != (len(self.limits.lower),) or target.shape != current.shape:
            raise ValueError(f'expected ({len(self.limits.lower)},) vectors, got '
                             f'{target.shape} and {current.shape}')
        if not is_finite_command(current):
            raise ValueError(f'measured state is not finite: {current}')
        if not is_finite_command(target):
            self._prev = current.copy()
            return current.copy(), ['non-finite']
        prev = current if self._prev is None else self._prev
        steps = (
            ('joint-limit', lambda q: clamp_to_limits(q, self.limits)),
            ('velocity', lambda q: limit_velocity(q, prev, dt, self.limits.max_velocity)),
            ('max-step', lambda q: clamp_step(q, current, self.limits.max_step)),
        )
        reasons = []
        q = target
        for reason, step in steps:
            limited = step(q)
            if not np.array_equal(limited, q):
                reasons.append(reason)
            q = limited
        self._prev = q.copy()
        return q, reasons
