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

"""Piper fault detection: CAN silence, an unhealthy SDK reader and arm error codes, latched.

Where it fits: `arm_driver_node` feeds `FaultMonitor.update()` every control tick with what
`PiperArm.read()` and `PiperArm.status()` report; once a fault latches the node sends nothing
until a person calls `~/enable true` (DESIGN.md section 7: CAN faults are latched and reported,
never silent). The peers' arms fail silently here: a bus-off with no recovery (piper_sdk #109),
an adapter whose RX goes quiet (#112), feedback that stays all zeros (#101). Pure Python, no ROS;
times are passed in, so tests need no clock.
"""

import dataclasses
from typing import Optional

# 0x2A1 byte 1, arm_status (piper_sdk ArmMsgFeedbackStatusEnum.ArmStatus).
ARM_STATUS_NAMES = {
    0x00: 'normal', 0x01: 'emergency stop', 0x02: 'no IK solution', 0x03: 'singularity',
    0x04: 'target beyond a joint limit', 0x05: 'joint communication error',
    0x06: 'joint brake not released', 0x07: 'collision', 0x08: 'overspeed during drag teach',
    0x09: 'joint status error', 0x0A: 'other error', 0x0B: 'teach recording',
    0x0C: 'teach replay', 0x0D: 'teach paused', 0x0E: 'main controller over temperature',
    0x0F: 'discharge resistor over temperature',
}
# Statuses after which the arm must not be driven until someone looked at it.
FAULT_STATUSES = frozenset({0x01, 0x05, 0x06, 0x07, 0x09, 0x0A, 0x0E, 0x0F})
# 0x2A1 bytes 6-7, err_code: bits 0-5 joint 1-6 communication error, bits 8-13 angle limit.
COMM_ERROR_BITS = 0x003F
ANGLE_LIMIT_BITS = 0x3F00
# python-can BusState names; ERROR is bus-off (the adapter stopped sending and receiving).
BUS_ERROR_STATE = 'ERROR'


def status_name(code: int) -> str:
    """Readable name of an arm_status code."""
    return ARM_STATUS_NAMES.get(code, f'unknown status 0x{code:02X}')


def joints_in(bits: int, mask: int) -> list:
    """Joint numbers (1-6) whose bit is set in err_code `bits` under `mask` (one of the above)."""
    shift = 0 if mask == COMM_ERROR_BITS else 8
    return [j + 1 for j in range(6) if bits & (1 << (j + shift))]


# The feedback streams whose silence latches a fault (FaultMonitor.update's `stamps` keys).
JOINT_STREAM, STATUS_STREAM = 'joint frames (0x2A5-0x2A7)', 'status frames (0x2A1)'


def feedback_stamps(feedback, pose, status, now_s: float, arrivals=None):
    """This tick's feedback, end pose and stream stamps on the clock faults are judged on.

    Wall time (piper_sdk's frame stamps as they are, so a gap is measured exactly), or, under
    simulated time (`arrivals`, an ArrivalClock), the node's clock when each frame was first seen.

    Returns:
        (feedback, pose, stamps): feedback and pose re-stamped, stamps by stream name.
    """
    if arrivals is None:
        return feedback, pose, {JOINT_STREAM: feedback.stamp, STATUS_STREAM: status['stamp']}
    feedback = dataclasses.replace(
        feedback, stamp=arrivals.restamp(JOINT_STREAM, feedback.stamp, now_s))
    pose = dataclasses.replace(pose, stamp=arrivals.restamp('pose', pose.stamp, now_s))
    stamps = {JOINT_STREAM: feedback.stamp,
              STATUS_STREAM: arrivals.restamp(STATUS_STREAM, status['stamp'], now_s)}
    return feedback, pose, stamps


class ArrivalClock:
    """Re-stamps feedback streams on another clock: the time on it each new stamp was first seen.

    Frame stamps are wall-clock receive times. Under simulated time (lock-step simulation) the
    wall clock keeps running while the simulator waits for the graph, so wall gaps say nothing
    about the arm; stamps re-read on the node's clock make silence and speed checks measure
    simulated time, and the same episode the same on every run.
    """

    def __init__(self):
        """Start with no stream seen."""
        self._seen = {}  # stream -> (its last stamp, when that stamp was first seen)

    def restamp(self, name: str, stamp: float, now_s: float) -> float:
        """`now_s` if `stamp` is new for stream `name`, else when it was first seen; 0 stays 0."""
        if not stamp:
            return 0.0
        seen = self._seen.get(name)
        if seen is None or seen[0] != stamp:
            self._seen[name] = seen = (stamp, now_s)
        return seen[1]


class FaultMonitor:
    """Latches the first fault it sees; `reset()` (on `~/enable true`) re-arms it."""

    def __init__(self, can_timeout_s: float = 0.5):
        """Start with no fault.

        Args:
            can_timeout_s: a feedback stream with no frame for this long (s) is silent. The
                arm sends status and joints at 200 Hz, so 0.5 s is 100 lost frames. This is
                the only silence threshold: piper_sdk's own `isOk` (false after ~0.35 s, its
                fixed window) is reported in diagnostics but does not latch.
        """
        self.can_timeout_s = can_timeout_s
        self.fault = ''
        self._since = None  # when watching (re)started; silence counts from here at the most

    def reset(self) -> None:
        """Clear the fault; silence is counted afresh from the next update."""
        self.fault = ''
        self._since = None

    def latch(self, message: str) -> None:
        """Latch a fault found elsewhere (e.g. a failed enable), unless one is latched."""
        self.fault = self.fault or message

    def update(self, now_s: float, stamps: dict, status: Optional[dict] = None) -> str:
        """Check one tick's readings; latch and return a new fault, else return ''.

        Args:
            now_s: the time (s) on the stamps' clock: `time.time()` for piper_sdk's stamps,
                which are python-can receive times of the newest frame of each stream (wall
                clock on socketcan, virtual and udp_multicast, the buses PiperArm supports).
            stamps: {stream name: stamp} of each feedback stream (e.g. 'status frames (0x2A1)':
                `status['stamp']`); a stream with stamp 0 (no frame ever) is not watched, so an
                arm that never sent joint frames is not "silent" (see `PiperArm.read().valid`).
            status: `PiperArm.status()`, or None when it could not be read.

        Returns:
            The fault message if one latched on this call (what happened and what to do).
        """
        if self.fault:
            return ''
        problem = self._silence(now_s, stamps) or self._status_problem(status)
        if problem:
            self.fault = f'{problem}; motion refused: fix it, then call ~/enable true'
            return self.fault
        return ''

    def _silence(self, now_s: float, stamps: dict) -> str:
        if self._since is None:
            self._since = now_s
        for name, stamp in stamps.items():
            if not stamp:
                continue
            # The measured gap since the last frame (or since watching began, if later).
            gap = now_s - max(stamp, self._since)
            if gap > self.can_timeout_s:
                return (f'no CAN {name} for {gap:.3f} s (can_timeout_s {self.can_timeout_s:g} '
                        's): check the arm power, the CAN cable and adapter '
                        '(`ip -details link show`, can_activate.sh)')
        return ''

    @staticmethod
    def _status_problem(status: Optional[dict]) -> str:
        if status is None:
            return ''
        if status.get('bus_state') == BUS_ERROR_STATE:
            return ('the CAN adapter is bus-off (python-can state ERROR): check termination and '
                    'bitrate, then bring the interface down and up again')
        code = status.get('arm_status', 0)
        if code in FAULT_STATUSES:
            return f'the arm reports {status_name(code)} (arm_status 0x{code:02X})'
        comm = joints_in(status.get('err_code', 0), COMM_ERROR_BITS)
        if comm:
            return f'the arm reports a communication error on joints {comm}'
        return ''


def driver_state(*, fault: str, estopped: bool, feedback_valid: bool, rejection: str,
                 enabled: bool, warnings: list, dry_run: bool, feedback_wait: str = '') -> tuple:
    """What the driver reports, most serious first: ('ERROR' | 'WARN' | 'OK', message).

    Args:
        fault: the latched fault ('' = none).
        estopped: the emergency stop is engaged.
        feedback_valid: real joint feedback arrives (not the SDK's initial zeros).
        feedback_wait: why the joint feedback is not believed yet ('' = it is).
        rejection: the reason a command was recently rejected ('' = none lately).
        enabled: motion is enabled.
        warnings: `warnings_of(status)`.
        dry_run: commands are computed but not sent.
    """
    if fault:
        return 'ERROR', fault
    if estopped:
        return 'ERROR', 'emergency stop engaged: call ~/enable true to resume'
    if not feedback_valid:
        return 'WARN', ('no joint feedback yet: is the arm in leader (teach-input) mode? A '
                        'follower arm (MasterSlaveConfig 0xFC) sends it')
    if feedback_wait:
        return 'WARN', f'{feedback_wait}; nothing is sent until it is'
    if rejection:
        return 'WARN', rejection
    if not enabled:
        return 'WARN', 'disabled: call ~/enable true to move'
    if warnings:
        return 'WARN', '; '.join(warnings)
    if dry_run:
        return 'WARN', 'dry run: commands published on ~/command, not sent'
    return 'OK', 'enabled, following commands'


def warnings_of(status: dict) -> list:
    """Non-latching conditions worth showing in diagnostics (limits hit, no IK, teach mode)."""
    found = []
    code = status.get('arm_status', 0)
    if code not in FAULT_STATUSES and code != 0:
        found.append(f'arm_status: {status_name(code)}')
    limited = joints_in(status.get('err_code', 0), ANGLE_LIMIT_BITS)
    if limited:
        found.append(f'joints {limited} at their angle limit')
    if status.get('ctrl_mode', 1) not in (0x00, 0x01):
        found.append(f"control mode {status['ctrl_mode']} is not CAN control: is the teach "
                     'pendant or a leader arm in charge?')
    return found


def status_values(status: dict) -> dict:
    """The arm status (PiperArm.status()) as diagnostics key-values, codes named."""
    return dict(
        can_fps=float(status['can_fps']), is_ok=status['is_ok'],
        bus_state=status['bus_state'], ctrl_mode=status['ctrl_mode'],
        arm_status=f"0x{status['arm_status']:02X} {status_name(status['arm_status'])}",
        err_code=f"0x{status['err_code']:04X}", motion_status=status['motion_status'],
        motors_enabled=''.join('1' if e else '0' for e in status['motors_enabled']),
        frames_dropped=status['frames_dropped'])
