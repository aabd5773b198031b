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

"""Trust in joint feedback: the driver commands only from feedback it has reason to believe.

Where it fits: `arm_driver_node` passes each tick's joint sample (`PiperArm.read()`) and the
firmware's end pose (`PiperArm.read_end_pose()`) to `FeedbackGuard.check()`; it publishes
`/joint_states`, steps and enables the gripper only from samples the guard accepts. Pure numpy
and the repo's Piper kinematics (equal to piper_sdk's), no ROS.

Why (issue 12): piper_sdk starts from zeros and decodes any frame by its id, so the cached joint
values can be zeros at start-up (the driver then commanded the arm 1.15 rad toward zero), or a
rogue frame's bytes (a 1.96 rad jump). Trust is therefore earned, and lost loudly:

- waiting: a sample must be finite and inside the joint ranges (plus a margin), agree with the
  end pose the firmware computes from its own encoders (0x2A2-0x2A4, by forward kinematics),
  and `confirm_frames` consecutive new samples must agree with each other. Until then the
  driver sends nothing and says why.
- trusted: each new sample must stay in range and move no faster than the arm can. A sample
  out of range is a fault, which the driver latches. A jump is held (not followed) and judged
  on the next samples: back where the arm was, it was a rogue frame (fault); staying at the new
  place and agreeing with the end pose, the arm itself was moved outside the driver's control
  (the simulator's episode reset teleports it): trust is re-earned from there, the driver
  drops its trajectory (`Verdict.moved`). One look would not do: a tick may read the three
  joint frames of one instant half old, half new.
"""

from dataclasses import dataclass
import re
from typing import Callable, Optional

import numpy as np

from vla_nodes import contract
from vla_nodes.arm import kinematics

# 10 new samples: 50 ms at the arm's 200 Hz.
CONFIRM_FRAMES = 10
# Feedback may sit a little outside the soft limits (the arm is pushed, or settles there).
RANGE_MARGIN = (0.1,) * 6 + (0.005,)
# Twice the firmware's top speed (3 rad/s joints, 0.1 m/s gripper), plus slack for the three
# joint frames of one sample arriving up to a tick apart: faster than this is not the arm.
MAX_FEEDBACK_SPEED = (6.0,) * 6 + (0.2,)
JUMP_SLACK = (0.05,) * 6 + (0.005,)
# Joints against the end pose: frames 5 ms apart at 1.5 rad/s differ by < 5 mm at the flange.
POSE_TOLERANCE_M = 0.02
POSE_TOLERANCE_RAD = 0.1
# The end pose must be about as fresh as the joints to vouch for them.
POSE_MAX_AGE_S = 0.1
# New samples after a jump within which it must be explained (back: rogue; moved: the arm's).
JUMP_VERDICT_SAMPLES = 3


_MAX_SPEED, _SLACK = np.asarray(MAX_FEEDBACK_SPEED), np.asarray(JUMP_SLACK)


def plausible_bounds() -> tuple:
    """(lower, upper) (7,): the widest of the SDK's and the model's ranges, plus RANGE_MARGIN."""
    tables = (contract.PIPER_SDK_LIMITS, contract.PIPER_MODEL_LIMITS)
    lower = np.array([min(t[n].lower for t in tables) for n in contract.JOINT_NAMES])
    upper = np.array([max(t[n].upper for t in tables) for n in contract.JOINT_NAMES])
    return lower - RANGE_MARGIN, upper + RANGE_MARGIN


@dataclass(frozen=True)
class Verdict:
    """What the driver may do with one sample.

    Attributes:
        ok: the sample may be published and commanded from.
        reason: why not ('' when ok).
        fault: trusted feedback became impossible: latch a fault (never follow it).
        confirming: all is well so far, only more consistent frames are needed (the normal
            50 ms at start-up: not worth a warning).
        moved: the arm was moved outside the driver's control: drop the trajectory.
    """

    ok: bool
    reason: str = ''
    fault: bool = False
    confirming: bool = False
    moved: bool = False


class FeedbackGuard:
    """Decides, sample by sample, whether joint feedback can be believed."""

    def __init__(self, fk: Optional[Callable] = None, confirm_frames: int = CONFIRM_FRAMES):
        """Start untrusted.

        Args:
            fk: (6,) joints (rad) -> 4x4 flange pose (m), as the firmware computes its end
                pose; default `kinematics.forward_kinematics` (dh_is_offset 1).
            confirm_frames: consecutive consistent new samples needed before trusting.
        """
        self._fk = fk or kinematics.forward_kinematics
        self._confirm = confirm_frames
        self._lower, self._upper = plausible_bounds()
        self.reset()

    @property
    def trusted(self) -> bool:
        """Whether the feedback has been confirmed (and not broken since)."""
        return self._trusted

    def reset(self) -> None:
        """Distrust the feedback until it is confirmed again (start-up, after a fault)."""
        self._trusted = False
        self._count = 0
        self._last = None  # (positions, stamp) of the last accepted sample
        self._jumped = None  # (reason, stamps seen, (q, stamp) jumped to) while judged

    def check(self, positions, stamp: float, end_pose=None) -> Verdict:
        """Judge one sample.

        Args:
            positions: (7,) joints (rad) and gripper opening (m), as decoded by the SDK.
            stamp: receive time of its newest joint frame (s, the SDK's clock).
            end_pose: (position (3,) m, quaternion (4,) xyzw, stamp s) from 0x2A2-0x2A4, or
                None when the arm sent none.
        """
        q = np.asarray(positions, dtype=np.float64)
        if self._trusted and not self._implausible(q):
            verdict = self._judge_jump(q, stamp, end_pose)
            if verdict is not None:
                return verdict
        problem = self._implausible(q) or self._jump(q, stamp)
        if problem:
            return self._refuse(problem)
        if not self._trusted:
            mismatch = self._pose_mismatch(q, stamp, end_pose)
            if mismatch:
                self._count, self._last = 0, None
                return Verdict(False, f'joint feedback not trusted yet: {mismatch}')
            if self._last is None or stamp != self._last[1]:
                self._count += 1
            self._last = (q, stamp)
            if self._count < self._confirm:
                return Verdict(False, f'joint feedback not trusted yet: {self._count} of '
                               f'{self._confirm} consistent frames', confirming=True)
            self._trusted = True
        self._last = (q, stamp)
        return Verdict(True)

    def _judge_jump(self, q: np.ndarray, stamp: float, end_pose) -> Optional[Verdict]:
        """While trusted: None if `q` continues the last sample, else the jump's verdict."""
        jump = self._jump(q, stamp)
        if self._jumped is None:
            if not jump:
                return None
            self._jumped = (jump, {stamp}, (q, stamp))
            return Verdict(False, f'joint feedback jumped, held until explained: {jump}')
        reason, stamps, jumped_to = self._jumped
        stamps.add(stamp)
        # Back where the arm was (and not where the jump went): the jump was not the arm's. A
        # sample that continues both (a jump just over the speed bound, then a later sample:
        # the bound grows with time) is not "back": the end pose decides.
        if not jump and self._jump(q, stamp, since=jumped_to):
            self.reset()
            return Verdict(False, f'joint feedback impossible: {reason}', fault=True)
        if not self._pose_mismatch(q, stamp, end_pose):
            self.reset()  # the arm is elsewhere, as its own end pose says: re-earn trust
            return Verdict(False, f'joint feedback not trusted yet: the arm moved outside the '
                           f'driver ({reason}), its end pose agrees', moved=True)
        if len(stamps) > JUMP_VERDICT_SAMPLES:
            self.reset()
            return Verdict(False, f'joint feedback impossible: {reason}', fault=True)
        return Verdict(False, f'joint feedback jumped, held until explained: {reason}')

    def _refuse(self, problem: str) -> Verdict:
        if self._trusted:
            self.reset()
            return Verdict(False, f'joint feedback impossible: {problem}', fault=True)
        self._count, self._last = 0, None
        return Verdict(False, f'joint feedback not trusted yet: {problem}')

    def _implausible(self, q: np.ndarray) -> str:
        if q.shape != (7,) or not np.all(np.isfinite(q)):
            return f'not 7 finite values: {q.tolist()}'
        bad = np.flatnonzero((q < self._lower) | (q > self._upper))
        if bad.size:
            i = int(bad[0])
            return (f'{contract.JOINT_NAMES[i]} reads {q[i]:.4f}, outside '
                    f'[{self._lower[i]:.3f}, {self._upper[i]:.3f}] (a rogue or garbled frame?)')
        return ''

    def _jump(self, q: np.ndarray, stamp: float, since: Optional[tuple] = None) -> str:
        """Why `q` cannot follow `since` at the arm's top speed, or ''.

        `since` is (positions, stamp); by default the last accepted sample.
        """
        since = since or self._last
        if since is None:
            return ''
        last, last_stamp = since
        allowed = _MAX_SPEED * max(stamp - last_stamp, 0.0) + _SLACK
        jump = np.abs(q - last)
        bad = np.flatnonzero(jump > allowed)
        if bad.size:
            i = int(bad[0])
            return (f'{contract.JOINT_NAMES[i]} jumped {jump[i]:.4f} in '
                    f'{max(stamp - last_stamp, 0.0) * 1e3:.1f} ms, faster than the arm can move '
                    f'(a rogue frame?)')
        return ''

    def _pose_mismatch(self, q: np.ndarray, stamp: float, end_pose) -> str:
        if end_pose is None:
            return ('no end-pose frames (0x2A2-0x2A4) to cross-check the joints against: is '
                    'the arm a follower sending feedback?')
        position, quaternion, pose_stamp = end_pose
        if abs(pose_stamp - stamp) > POSE_MAX_AGE_S:
            return (f'end pose and joints are {abs(pose_stamp - stamp):.3f} s apart; waiting '
                    'for both')
        fk = self._fk(q[:6])
        offset = float(np.linalg.norm(fk[:3, 3] - np.asarray(position, dtype=np.float64)))
        rot = kinematics.matrix_from_quat(quaternion)
        angle = float(np.linalg.norm(kinematics.rotation_log(fk[:3, :3].T @ rot)))
        if offset > POSE_TOLERANCE_M or angle > POSE_TOLERANCE_RAD:
            return (f'the joints put the flange {offset * 1e3:.0f} mm and {angle:.2f} rad from '
                    'the end pose the arm reports (0x2A2-0x2A4): zeros or garbled joint frames?')
        return ''


def reason_kind(reason: str) -> str:
    """A waiting reason without its numbers: logged once per kind, not once per tick."""
    return re.sub(r'[0-9.]+', '#', reason)
