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

"""FeedbackGuard and the CAN frame filter on literal samples (no bus, no clock)."""

import can
import numpy as np

from vla_nodes import contract
from vla_nodes.arm import kinematics
from vla_nodes.arm.can_bus import unusable
from vla_nodes.arm.feedback_guard import CONFIRM_FRAMES, FeedbackGuard

READY = np.array(contract.READY_POSITIONS)


def end_pose(q, stamp):
    """What the firmware reports for q: flange position and quaternion (0x2A2-0x2A4)."""
    pose = kinematics.forward_kinematics(q[:6])
    return pose[:3, 3], kinematics.quat_from_matrix(pose[:3, :3]), stamp


def confirmed(guard, q=READY, t0=1.0):
    for k in range(CONFIRM_FRAMES):
        verdict = guard.check(q, t0 + 0.005 * k, end_pose(q, t0 + 0.005 * k))
    return verdict, t0 + 0.005 * (CONFIRM_FRAMES - 1)


def test_trust_needs_consistent_frames_that_agree_with_the_end_pose():
    guard = FeedbackGuard()
    first = guard.check(READY, 1.0, end_pose(READY, 1.0))
    assert not first.ok and first.confirming and f'1 of {CONFIRM_FRAMES}' in first.reason
    assert guard.check(READY, 1.0, end_pose(READY, 1.0)).reason == first.reason  # same frame
    verdict, _ = confirmed(guard)
    assert verdict.ok and guard.trusted


def test_zero_joints_against_a_real_end_pose_wait_and_say_why():
    guard = FeedbackGuard()
    for k in range(3 * CONFIRM_FRAMES):
        verdict = guard.check(np.zeros(7), 1.0 + 0.005 * k, end_pose(READY, 1.0 + 0.005 * k))
    assert not verdict.ok and not verdict.fault and not guard.trusted
    assert 'from the end pose the arm reports' in verdict.reason
    no_pose = guard.check(READY, 2.0, None)
    assert not no_pose.ok and 'no end-pose frames' in no_pose.reason
    stale = guard.check(READY, 2.0, end_pose(READY, 1.0))
    assert not stale.ok and '1.000 s apart' in stale.reason


def test_once_trusted_a_jump_is_held_then_a_rogue_frame_is_a_fault():
    guard = FeedbackGuard()
    _, t = confirmed(guard)
    jump = READY + [1.96, 0, 0, 0, 0, 0, 0]
    held = guard.check(jump, t + 0.005, end_pose(READY, t + 0.005))
    assert not held.ok and not held.fault and 'joint1 jumped 1.9600 in 5.0 ms' in held.reason
    back = guard.check(READY, t + 0.010, end_pose(READY, t + 0.010))   # the arm never moved
    assert back.fault and 'joint feedback impossible: joint1 jumped' in back.reason
    assert not guard.trusted
    _, t = confirmed(guard, t0=t + 0.02)
    outside = READY + [4.576, 0, 0, 0, 0, 0, 0]
    verdict = guard.check(outside, t + 0.005, None)
    assert verdict.fault and 'joint1 reads 4.5760, outside' in verdict.reason
    _, t = confirmed(guard, t0=t + 0.01)
    moving = READY + [0.01, 0, 0, 0, 0, 0, 0]          # 2 rad/s: the arm can do that
    assert guard.check(moving, t + 0.005, None).ok


def test_a_jump_that_stays_and_agrees_with_the_end_pose_is_the_arm_moved_elsewhere():
    guard = FeedbackGuard()
    _, t = confirmed(guard)
    elsewhere = READY + [0.8, -0.3, 0.2, 0, 0, 0, 0]     # the simulator reset the arm
    half = np.concatenate([elsewhere[:2], READY[2:]])    # a tick read 0x2A5 new, 0x2A6-7 old
    assert not guard.check(half, t + 0.005, end_pose(elsewhere, t + 0.005)).fault
    moved = guard.check(elsewhere, t + 0.010, end_pose(elsewhere, t + 0.010))
    assert moved.moved and not moved.fault and 'moved outside the driver' in moved.reason
    verdict, _ = confirmed(guard, q=elsewhere, t0=t + 0.015)
    assert verdict.ok
    guard = FeedbackGuard()
    _, t = confirmed(guard)
    guard.check(np.zeros(7), t + 0.005, end_pose(READY, t + 0.005))   # zeros from now on
    verdicts = [guard.check(np.zeros(7), t + 0.005 * k, end_pose(READY, t + 0.005 * k))
                for k in range(2, 6)]
    assert any(v.fault for v in verdicts) and not any(v.moved for v in verdicts)


def test_a_reset_just_over_the_speed_bound_read_again_later_is_not_a_rogue_frame():
    # Measured in a lock-step episode reset: joint 1 teleported 0.1747 rad, seen 20 ms after the
    # last sample (bound 6 rad/s * 20 ms + 0.05 = 0.17: a jump); the next sample, 40 ms after
    # that last one, is within the bound of both the old place and the new one.
    guard = FeedbackGuard()
    old = READY + [0.1747, 0, 0, 0, 0, 0, 0]
    _, t = confirmed(guard, q=old)
    held = guard.check(READY, t + 0.020, end_pose(READY, t + 0.020))
    assert not held.ok and not held.fault
    again = guard.check(READY, t + 0.040, end_pose(READY, t + 0.040))
    assert again.moved and not again.fault, again.reason
    verdict, _ = confirmed(guard, t0=t + 0.045)
    assert verdict.ok


def test_frames_no_piper_sends_are_unusable():
    data = bytes(8)
    assert unusable(can.Message(arbitration_id=0x2A5, data=data, is_extended_id=False)) == ''
    assert unusable(can.Message(arbitration_id=0x2A5, data=data, is_extended_id=False,
                                is_error_frame=True)) == 'error frame'
    assert unusable(can.Message(arbitration_id=0x2A8, is_extended_id=False,
                                is_remote_frame=True)) == 'remote frame'
    assert unusable(can.Message(arbitration_id=0x2A5, data=data)) == 'extended id'
    assert unusable(can.Message(arbitration_id=0x2A6, data=bytes(4), is_extended_id=False)) \
        == 'feedback frame without 8 data bytes'
