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

"""The arm driver's control state: what to send each tick, and when to send nothing.

Where it fits: `nodes/arm_driver_node.py` declares parameters, converts messages and publishes;
its callbacks and 200 Hz timer call this class, which decides: follow the blended chunk
trajectory (`arm.trajectory`), hold the measured position after an episode start, hold when
commands go stale, believe feedback only once confirmed (`arm.feedback_guard`), latch faults
(`arm.faults`), enable and stop, and say what the diagnostics show. Pure Python over a
`PiperArm` (or a fake with its methods); times are passed in and log lines go to `log` (a
`logging.Logger` or an rclpy logger), so tests need neither ROS nor a clock.
"""

import dataclasses
import functools
import logging
import time
from typing import Any, Optional

import numpy as np

from vla_nodes.arm import kinematics
from vla_nodes.arm.faults import (ArrivalClock, driver_state, FaultMonitor, feedback_stamps,
                                  status_values, warnings_of)
from vla_nodes.arm.feedback_guard import FeedbackGuard, reason_kind, Verdict
from vla_nodes.arm.piper import PiperConnectionError
from vla_nodes.arm.piper_protocol import ARM_ESTOP
from vla_nodes.arm.safety import SafetyFilter
from vla_nodes.arm.trajectory import Chunk, TrajectoryFollower

REJECTION_SHOWN_S = 5.0  # a rejected command keeps the diagnostics at WARN this long


@dataclasses.dataclass(frozen=True)
class ControlConfig:
    """The driver parameters the control decisions depend on (arm_driver_node's names)."""

    dt: float                         # control period (s)
    command_timeout_s: float = 0.5    # no fresh chunk or target this long: hold
    enable_timeout_s: float = 2.0
    can_timeout_s: float = 0.5        # no CAN feedback this long: latch a fault
    blend_s: float = 0.2              # cross-fade between chunks
    max_future_stamp_s: float = 0.5   # chunks stamped further ahead are refused
    dry_run: bool = True              # compute commands, send nothing
    dh_is_offset: int = 1
    sim_time: bool = False            # judge silence on the node's clock (ArrivalClock)


@dataclasses.dataclass(frozen=True)
class Reading:
    """One tick's view of the arm, as `ArmController.sense` leaves it for publishing.

    Attributes:
        feedback: the follower's joint feedback (`PiperArm.read()`), re-stamped.
        verdict: the feedback guard's verdict; publish the joints only when `verdict.ok`.
        leader: the leader arm's control frames, or None when there are none.
        pose: the firmware's end pose when it is new this tick, else None.
        fault: a fault latched on this tick ('' = none): motion is disabled.
    """

    feedback: Any
    verdict: Verdict
    leader: Any
    pose: Any
    fault: str


class ArmController:
    """Chunk following, hold and watchdog decisions of one Piper, without ROS."""

    def __init__(self, arm, safety: SafetyFilter, config: ControlConfig, log=None):
        """Start disabled, with no trajectory and feedback not yet believed.

        Args:
            arm: a connected `PiperArm` (read, status, send, enable, ...).
            safety: the filter every command passes (limits, per-step and velocity limits).
            config: the timing and safety parameters.
            log: where log lines go (info / warning / error); default this module's logger.
        """
        self.arm, self.safety, self.config = arm, safety, config
        self.follower = TrajectoryFollower(blend_s=config.blend_s)
        self.faults = FaultMonitor(config.can_timeout_s)
        self.guard = FeedbackGuard(functools.partial(kinematics.forward_kinematics,
                                                     dh_is_offset=config.dh_is_offset))
        self.enabled = self.estopped = False
        self.counts = dict.fromkeys(
            ('chunks', 'targets', 'rejected', 'sent', 'held', 'limited'), 0)
        self._log = log or logging.getLogger(__name__)
        # Under simulated time, silence and speed are judged on the node's clock.
        self._arrivals = ArrivalClock() if config.sim_time else None
        self._believed = None     # (7,) the last joint sample the guard accepted
        self._feedback_wait = ''  # why feedback is not believed yet ('' = it is)
        self._last_sent = None
        self._hold_next_tick = False  # a new episode: the next command holds the measured pose
        self._end_pose_stamp = 0.0
        self._rejection = (-REJECTION_SHOWN_S, '')  # (monotonic s, reason)

    # --- inputs ---------------------------------------------------------------------------------
    def follow_chunk(self, stamp_ns: int, times, positions, now_ns: int) -> None:
        """Follow a chunk of `positions` (N, 7) at `times` (s) after `stamp_ns` (0: now).

        Raises:
            ValueError: stamped too far in the future, malformed, or nothing to start from.
        """
        # The policy stamps chunks with the observation time; an unstamped one starts now.
        start = stamp_ns or now_ns
        max_future_ns = int(self.config.max_future_stamp_s * 1e9)
        if start - now_ns > max_future_ns:
            raise ValueError(
                f'stamped {(start - now_ns) / 1e9:.3f} s in the future (max_future_stamp_s '
                f'{max_future_ns / 1e9:g}): the publisher clock runs ahead of this one; '
                'synchronise the hosts (chrony/NTP) or, for a known skew, raise '
                'max_future_stamp_s')
        chunk = Chunk(start, np.asarray(times, float), np.asarray(positions, float))
        self.follower.set_chunk(chunk, self._current(), now_ns=now_ns)
        self._hold_next_tick = False  # the chunk starts from the measured position already
        self.counts['chunks'] += 1

    def follow_target(self, q, now_ns: int) -> None:
        """Move to the single target `q` (7,); raises ValueError as the follower does."""
        self.follower.set_target(q, now_ns)
        self.counts['targets'] += 1

    def start_episode(self, start_ns: int) -> None:
        """Forget the previous episode and hold the position measured at the next tick."""
        # Nothing of the previous episode may move the arm: not the chunk, not the blend from
        # the last command, not the safety filter's memory of it.
        self.follower.start_episode(start_ns)
        self._last_sent = None
        self.safety.reset()
        self._hold_next_tick = True

    def reject(self, reason: str) -> None:
        """Count and log a refused command; diagnostics show it for REJECTION_SHOWN_S."""
        self.counts['rejected'] += 1
        self._rejection = (time.monotonic(), reason)
        self._log.error(reason)

    def _current(self) -> np.ndarray:
        """The last command, else the measured position: where a new trajectory starts."""
        if self._last_sent is not None:
            return self._last_sent
        if self._believed is None:
            raise ValueError(self._feedback_wait or 'no joint feedback from the arm yet')
        return self._believed

    # --- enable and stop ------------------------------------------------------------------------
    def set_enabled(self, enable: bool) -> bool:
        """Enable or disable motion; False (and a latched fault) when the arm did not answer."""
        try:
            if self.config.dry_run:
                pass  # dry_run sends nothing, not even the enable frame
            elif not enable:
                self.arm.disable()
            elif self.estopped or self.arm.status()['arm_status'] == ARM_ESTOP:
                # resume() clears the firmware's e-stop and enables; enable() is enough otherwise.
                self.arm.resume(self.config.enable_timeout_s, self._believed_gripper())
            else:
                self.arm.enable(self.config.enable_timeout_s, self._believed_gripper())
        except PiperConnectionError as err:  # a dead bus must not take the node down: report it
            self.faults.reset()
            self.faults.latch(f'enable failed: {err}')
            self._log.error(self.faults.fault)
            return False
        if enable:
            self.faults.reset()
            self.estopped, self._last_sent = False, None
            self.safety.reset()
        self.enabled = enable
        self.follower.clear()
        self._log.info(f"arm {'enabled' if enable else 'disabled'}"
                       f"{' (dry run)' if self.config.dry_run else ''}")
        return True

    def emergency_stop(self) -> None:
        """Stop the arm now and refuse motion until `set_enabled(True)`."""
        self.arm.emergency_stop()  # even in dry_run: stopping is never the unsafe choice
        self.estopped, self.enabled = True, False
        self.follower.clear()
        self._log.error('EMERGENCY STOP: motion halted; call ~/enable true to resume')

    def _believed_gripper(self):
        """The gripper opening to enable at: only a believed one (else the first command's)."""
        return None if self._believed is None else float(self._believed[6])

    # --- control tick ---------------------------------------------------------------------------
    def sense(self, now_ns: int) -> Reading:
        """Read the arm, watch for faults and judge the feedback (first half of a tick)."""
        feedback, status = self.arm.read(), self.arm.status(drivers=False)
        pose = self.arm.read_end_pose()
        now_s = time.time() if self._arrivals is None else now_ns / 1e9
        feedback, pose, stamps = feedback_stamps(feedback, pose, status, now_s, self._arrivals)
        leader = self.arm.read_leader()
        if self._arrivals is not None:
            if leader is not None:
                leader = dataclasses.replace(
                    leader, stamp=self._arrivals.restamp('leader', leader.stamp, now_s))
            feedback, pose, leader = (self._alive_on_node_clock(sample, now_s)
                                      for sample in (feedback, pose, leader))
        fault = self.faults.update(now_s, stamps, status)
        verdict = self._judge(feedback, pose)
        if verdict.fault and not self.faults.fault:
            self.faults.latch(f'{verdict.reason}; motion refused: look for another sender on '
                              'the CAN bus or a failing adapter, then call ~/enable true')
            fault = self.faults.fault
        if fault:
            self.enabled = False
            self.follower.clear()
            self._log.error(fault)
        new_pose = pose.valid and pose.stamp != self._end_pose_stamp
        if new_pose:
            self._end_pose_stamp = pose.stamp
        return Reading(feedback, verdict, leader if leader is not None and leader.valid else None,
                       pose if new_pose else None, fault)

    def _alive_on_node_clock(self, sample, now_s: float):
        """Under simulated time: `sample` valid while new frames come on the node's clock.

        Not by the SDK's rate (`valid`), which a thread of piper_sdk counts per 0.1 s of wall
        time: when the first lock-step episode's feedback and leader frames counted then
        depended on the machine's load. `sample.stamp` is already re-read on the node's clock.
        """
        return sample if sample is None else dataclasses.replace(
            sample, valid=sample.seen and now_s - sample.stamp <= self.config.can_timeout_s)

    def act(self, now_ns: int, reading: Reading) -> Optional[np.ndarray]:
        """The command sent this tick (second half), or None when nothing is sent."""
        if not (self.enabled and reading.verdict.ok and not self.faults.fault):
            return None
        measured = reading.feedback.positions
        if self._hold_next_tick:
            self.follower.set_target(measured, now_ns)
            self._hold_next_tick = False
        if self.follower.seconds_past_end(now_ns) > self.config.command_timeout_s:
            # Stale: the firmware keeps the last command, the arm holds position. The next
            # chunk starts from that command, not from where the stale one would have gone.
            self.follower.clear()
            self.counts['held'] += 1
            return None
        target = self.follower.target(now_ns)
        safe, reasons = self.safety.filter(target, np.asarray(measured), self.config.dt)
        self.counts['limited'] += bool(reasons)
        self._last_sent = (safe if self.config.dry_run
                           else np.asarray(self.arm.send(safe), float))
        self.counts['sent'] += 1
        return self._last_sent

    def _judge(self, feedback, pose) -> Verdict:
        """The guard's verdict on this tick's sample; says (once per kind) why it waits."""
        if not feedback.valid:  # the SDK's initial zeros, or frames stopped: nothing to judge
            self.guard.reset()  # after a silence, feedback is confirmed afresh
            self._believed, self._feedback_wait = None, ''
            return Verdict(False, 'no joint feedback')
        end_pose = (pose.position, pose.quaternion, pose.stamp) if pose.valid else None
        verdict = self.guard.check(feedback.positions, feedback.stamp, end_pose)
        if verdict.moved:  # the old trajectory and last command refer to where the arm was
            self.follower.clear()
            self._last_sent = None
            self.safety.reset()
        wait = '' if verdict.ok or verdict.fault else verdict.reason
        new_kind = reason_kind(wait) != reason_kind(self._feedback_wait)
        if wait and not verdict.confirming and new_kind:
            self._log.warning(f'{wait}; nothing is sent or published until it is')
        elif not wait and self._feedback_wait:
            self._log.info('joint feedback confirmed')
        self._feedback_wait = wait
        self._believed = np.asarray(feedback.positions, float) if verdict.ok else None
        return verdict

    # --- diagnostics ----------------------------------------------------------------------------
    def diagnostics(self, timing: dict, feedback=None) -> tuple:
        """('ERROR' | 'WARN' | 'OK', message, values) for /diagnostics.

        Args:
            timing: the control loop's timing figures (`LoopTiming.summary()`).
            feedback: this tick's feedback, else the arm is read.
        """
        status = self.arm.status()
        feedback = feedback or self.arm.read()
        values = dict(self.counts, **timing)
        values.update(status_values(status), feedback_trusted=self.guard.trusted,
                      enabled=self.enabled, dry_run=self.config.dry_run,
                      last_rejection=self._rejection[1])
        recent = time.monotonic() - self._rejection[0] < REJECTION_SHOWN_S
        level, message = driver_state(
            fault=self.faults.fault, estopped=self.estopped, feedback_valid=feedback.valid,
            feedback_wait=self._feedback_wait,
            rejection=self._rejection[1] if recent else '', enabled=self.enabled,
            warnings=warnings_of(status), dry_run=self.config.dry_run)
        return level, message, values
