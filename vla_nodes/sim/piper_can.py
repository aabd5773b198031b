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

"""Simulated Piper firmware: answers the Piper CAN protocol on a python-can bus.

Where it fits: `sim_node` hosts one `PiperFirmware` per simulated arm, so `PiperArm`
(`vla_nodes/arm/piper.py`) drives the simulator through the real piper_sdk, unchanged. Frame
layouts follow piper_sdk 0.6.2 (`protocol/protocol_v2/piper_protocol_v2.py`): big-endian,
joints in 0.001 deg, gripper in 0.001 mm, end pose in 0.001 mm / 0.001 deg.

Like the real controller, the firmware owns the *planner* but not the physics. It reads the
measured state through `read_state()` and moves a setpoint toward the commanded goal at the
maximum joint speed times the 0x151 speed rate. The setpoint is what a physics engine should
track: pull it with `targets()`, or let the firmware push it to `apply_targets(q7)` every tick.
`sim.kinematic_plant.KinematicPlant` is a first-order stand-in body, so tests need no MuJoCo:

    plant = KinematicPlant()
    firmware = PiperFirmware(bus, plant.read_state, plant.set_targets)

The arm moves only in CAN control mode (0x151), in MOVE J, with enabled motors (0x471), and
not while e-stopped (0x150). Otherwise the goal follows the measured position, so nothing
moves, and enabling never jumps to an old target.

Frames it cannot use (an unknown id, a command it does not simulate, a wrong DLC, an extended
id) are ignored like a real controller ignores them: logged once per id and reason (logger
`vla_nodes.sim.piper_can`), counted in `ignored_frames`, and the firmware keeps running. Frames
that an arm itself sends (feedback, replies) are dropped silently: on a shared bus they come from
other arms.
"""

import collections
import logging
import struct
import threading
import time
from typing import Callable, NamedTuple, Optional

import can
import numpy as np

from vla_nodes import contract
from vla_nodes.arm import kinematics
from vla_nodes.arm.piper_protocol import (
    ACC_LIMIT_REPLY, ALL_MOTORS, ANGLE_LIMIT_REPLY, ARM_ESTOP, ARM_NORMAL, ARM_SENT_IDS,
    ARM_TARGET_OVER_LIMIT, CTRL_CAN, CTRL_STANDBY, DECIDEG_PER_RAD, DRIVER_ENABLED_BIT, END_POSE,
    ESTOP, FIRMWARE_QUERY, GRIPPER_CTRL, GRIPPER_ENABLE_CODES, GRIPPER_FEEDBACK, GRIPPER_HOMED_BIT,
    gripper_to_sdk, JOINT_CTRL, JOINT_FEEDBACK, JOINT_MOVE_MODES, joints_to_sdk, LIMIT_QUERY,
    LOW_SPEED, MICROMETRE_PER_M, MILLIDEG_PER_RAD, MILLIRAD_PER_RAD, MOTION_CTRL_1, MOTION_CTRL_2,
    MOTION_MOVING, MOTION_REACHED, MOTOR_DISABLE, MOTOR_ENABLE, MOTOR_ENABLE_FLAG, RESUME, STATUS)

# --- firmware -----------------------------------------------------------------------------------
FIRMWARE_VERSION = b'S-V1.8-1'      # GetPiperFirmwareVersion() looks for 'S-V' + 8 bytes

# --- physical defaults --------------------------------------------------------------------------
# 3 rad/s: the firmware's default max joint speed (MotorMaxSpdSet, 3000 x 0.001 rad/s) at 100 %.
MAX_JOINT_VELOCITY = 3.0
MAX_GRIPPER_VELOCITY = 0.1          # m/s, not scaled by the speed rate
ARRIVED_TOLERANCE = 1e-3            # rad / m: motion_status says "reached" below this
DRIVER_VOLTAGE_DV, DRIVER_TEMP_C, DRIVER_CURRENT_MA = 240, 30, 100

_log = logging.getLogger(__name__)


class Targets(NamedTuple):
    """What the firmware asks the physics to track.

    Attributes:
        positions: (7,) setpoint, joints 1-6 in rad then gripper opening in m.
        enabled: all six joint motors are enabled.
        estopped: the arm is in emergency stop.
    """

    positions: np.ndarray
    enabled: bool
    estopped: bool


def _piper_end_pose(q6) -> np.ndarray:
    """(6,) x, y, z (m), roll, pitch, yaw (rad) of the flange, as the Piper firmware sends."""
    return kinematics.pose_to_xyz_rpy(kinematics.forward_kinematics(q6))


def _limit_arrays(limits: dict) -> tuple:
    """(lower, upper) (7,) arrays in contract.JOINT_NAMES order."""
    lower = np.array([limits[n].lower for n in contract.JOINT_NAMES])
    upper = np.array([limits[n].upper for n in contract.JOINT_NAMES])
    return lower, upper


class PiperFirmware:
    """The simulated arm's controller: decodes command frames, plans, sends feedback frames.

    Runs one thread that receives commands and, at `rate_hz`, steps the planner and sends
    0x2A1-0x2A8; the driver info 0x261-0x266 goes out at `low_speed_rate_hz`. Keep both rates
    at 10 Hz or more: the SDK measures rates over 0.1 s windows and reports 0 Hz otherwise.
    """

    def __init__(self, bus: can.BusABC,
                 read_state: Callable[[], np.ndarray],
                 apply_targets: Optional[Callable[[np.ndarray], None]] = None,
                 fk: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                 rate_hz: float = 200.0, low_speed_rate_hz: float = 20.0,
                 max_joint_velocity: float = MAX_JOINT_VELOCITY,
                 max_gripper_velocity: float = MAX_GRIPPER_VELOCITY,
                 limits: dict = contract.PIPER_SDK_LIMITS):
        """Wire the firmware to a bus and a body; call `start()` to run it.

        Args:
            bus: python-can bus owned by the caller (e.g. `can.Bus(interface='virtual',
                channel='piper', receive_own_messages=False)`); the firmware never shuts it down.
            read_state: returns the measured (7,) joints (rad) and gripper opening (m).
            apply_targets: optional; receives the (7,) setpoint every tick.
            fk: optional; (6,) joints (rad) -> (6,) x, y, z (m), roll, pitch, yaw (rad) of the
                flange, sent as end pose. Default: the Piper's own FK (`arm.kinematics`, as
                the real firmware computes it; the driver cross-checks joints against it).
            rate_hz: feedback and planner rate (Hz); the real arm sends at 200 Hz.
            low_speed_rate_hz: driver info rate (Hz).
            max_joint_velocity: joint speed at speed rate 100 % (rad/s).
            max_gripper_velocity: gripper speed (m/s).
            limits: joint limits the firmware enforces (contract.JointLimit per joint name).
        """
        self._bus = bus
        self._read_state = read_state
        self._apply_targets = apply_targets
        self._fk = fk or _piper_end_pose
        self._period = 1.0 / rate_hz
        self._low_speed_every = max(1, round(rate_hz / low_speed_rate_hz))
        self._max_velocity = np.array([max_joint_velocity] * 6 + [max_gripper_velocity])
        self._lower, self._upper = _limit_arrays(limits)
        self.joint_feedback = True  # False mimics a leader-mode arm: no 0x2A5-0x2A8 frames
        self.ignored_frames = collections.Counter()  # CAN id -> frames ignored as unusable
        self._reported = set()  # (CAN id, reason) already logged
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._last_frames = {}
        self._last_feedback = []
        self.feedback_sent_at = 0.0  # time.monotonic() of the last step()/resend() feedback
        self._reset_state()
        self._hold(read_state())
        self._handlers = {
            MOTION_CTRL_1: self._on_motion_ctrl_1,
            MOTION_CTRL_2: self._on_motion_ctrl_2,
            JOINT_CTRL[0]: lambda data: self._on_joint_ctrl(0, data),
            JOINT_CTRL[1]: lambda data: self._on_joint_ctrl(2, data),
            JOINT_CTRL[2]: lambda data: self._on_joint_ctrl(4, data),
            GRIPPER_CTRL: self._on_gripper_ctrl,
            MOTOR_ENABLE: self._on_motor_enable,
            LIMIT_QUERY: self._on_limit_query,
            FIRMWARE_QUERY: self._on_firmware_query,
        }

    # --- public API ---------------------------------------------------------------------------
    def start(self) -> 'PiperFirmware':
        """Read the initial state and start the firmware thread. Returns self."""
        self.hold(self._read_state())
        self._stop.clear()
        name = f'PiperFirmware({self._bus.channel_info})'
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread and wait for it (at most `timeout` s). The bus stays open."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> 'PiperFirmware':
        """Start on entering a `with` block."""
        return self.start()

    def __exit__(self, *exc) -> None:
        """Stop on leaving a `with` block."""
        self.stop()

    def targets(self) -> Targets:
        """Return the current setpoint for the physics, plus enable and e-stop flags."""
        with self._lock:
            return Targets(self._setpoint.copy(), all(self._joint_enabled), self._estopped)

    def hold(self, q7) -> None:
        """Make goal and setpoint the (7,) state q7 (rad, m): the arm stays where it is.

        For a simulator that moved the body itself (an episode reset): without this, the
        planner would drive the body back to the goal it had before.
        """
        with self._lock:
            self._hold(q7)

    def step(self, dt: float, advance: Optional[Callable[[np.ndarray], None]] = None,
             low_speed: bool = False) -> None:
        """One period driven by the caller instead of the thread (lock-step simulation).

        Handles every command frame received so far, plans `dt` seconds, lets `advance(setpoint)`
        move the body (the simulator's physics step), then sends feedback of the new state. The
        thread must not run (`start()` not called, or `stop()`ped).
        """
        while True:
            msg = self._bus.recv(timeout=0.0)
            if msg is None:
                break
            self._handle(msg)
        with self._lock:
            setpoint = self._plan(np.asarray(self._read_state(), dtype=np.float64), dt)
        if advance is not None:
            advance(setpoint)
        self.send_feedback(low_speed)

    def send_feedback(self, low_speed: bool = False) -> None:
        """Send feedback frames of the state now (e.g. right after the body was reset)."""
        measured = np.asarray(self._read_state(), dtype=np.float64)
        with self._lock:  # held while sending: a resend() never overtakes newer frames
            frames = self._feedback_frames(measured, low_speed)
            self._last_feedback = frames
            self._send_all(frames)
            self.feedback_sent_at = time.monotonic()

    def resend(self) -> None:
        """Send the last feedback frames again: a paused simulation stays alive on the bus.

        Without anything changing (the SDK reports 0 Hz, the driver a CAN fault, after 0.1 /
        0.5 s of silence).
        """
        with self._lock:
            self._send_all(self._last_feedback)
            self.feedback_sent_at = time.monotonic()

    def last_frame(self, can_id: int) -> Optional[bytes]:
        """Raw data of the last received frame with `can_id`, or None (for tests and debugging)."""
        with self._lock:
            return self._last_frames.get(can_id)

    # --- command handlers (called on the firmware thread) -------------------------------------
    def _on_motion_ctrl_1(self, data: bytes) -> None:
        """0x150 byte 0: 0x01 e-stop; 0x02 resume, which is also ResetPiper: standby, disabled."""
        if data[0] == ESTOP:
            self._estopped, self._arm_status = True, ARM_ESTOP
        elif data[0] == RESUME:
            self._reset_state()

    def _on_motion_ctrl_2(self, data: bytes) -> None:
        """0x151: ctrl_mode, move_mode, move_spd_rate_ctrl (0-100 %)."""
        self._ctrl_mode, self._move_mode = data[0], data[1]
        self._speed_rate = min(int(data[2]), 100)

    def _on_joint_ctrl(self, first: int, data: bytes) -> None:
        """0x155-0x157: two int32 joint targets in 0.001 deg, clamped to the firmware limits."""
        pair = np.array(struct.unpack_from('>ii', data), dtype=np.float64) / MILLIDEG_PER_RAD
        idx = slice(first, first + 2)
        if not self._movable()[idx].all():
            return
        clamped = np.clip(pair, self._lower[idx], self._upper[idx])
        self._arm_status = ARM_TARGET_OVER_LIMIT if np.any(clamped != pair) else ARM_NORMAL
        self._goal[idx] = clamped

    def _on_gripper_ctrl(self, data: bytes) -> None:
        """0x159: int32 stroke (0.001 mm), uint16 effort (0.001 N/m), code, set_zero."""
        stroke, effort, code, _ = struct.unpack_from('>iHBB', data)
        self._gripper_enabled = code in GRIPPER_ENABLE_CODES
        self._gripper_effort = effort
        if self._movable()[6]:
            self._goal[6] = np.clip(stroke / MICROMETRE_PER_M, self._lower[6], self._upper[6])

    def _on_motor_enable(self, data: bytes) -> None:
        """0x471: motor number (1-6, 7 = all incl. gripper), flag 0x02 enable / 0x01 disable."""
        motor, flag = data[0], data[1]
        if flag not in (MOTOR_ENABLE_FLAG, MOTOR_DISABLE):
            return
        on = flag == MOTOR_ENABLE_FLAG
        if motor in ALL_MOTORS:
            self._joint_enabled = [on] * 6
            self._gripper_enabled = on
        elif 1 <= motor <= 6:
            self._joint_enabled[motor - 1] = on

    def _on_limit_query(self, data: bytes) -> None:
        """0x472: motor number, 0x01 angle/speed limits -> 0x473, 0x02 max acc -> 0x47C."""
        motor, content = data[0], data[1]
        if not 1 <= motor <= 6:
            return
        if content == 0x01:
            hi = int(round(self._upper[motor - 1] * DECIDEG_PER_RAD))
            lo = int(round(self._lower[motor - 1] * DECIDEG_PER_RAD))
            spd = int(round(self._max_velocity[motor - 1] * MILLIRAD_PER_RAD))
            self._send(ANGLE_LIMIT_REPLY, struct.pack('>BhhHx', motor, hi, lo, spd))
        elif content == 0x02:
            self._send(ACC_LIMIT_REPLY, struct.pack('>BH5x', motor, 500))  # 0.01 rad/s^2

    def _on_firmware_query(self, data: bytes) -> None:
        """0x4AF with byte 0 = 0x01 asks for the version string; reply on the same id."""
        if data[0] == 0x01 and not any(data[1:]):
            self._send(FIRMWARE_QUERY, FIRMWARE_VERSION)

    # --- planner and feedback -----------------------------------------------------------------
    def _reset_state(self) -> None:
        """Power-on (and reset) state: standby, motors disabled, no e-stop, no error."""
        self._ctrl_mode, self._move_mode, self._speed_rate = CTRL_STANDBY, 0x00, 0
        self._estopped, self._arm_status = False, ARM_NORMAL
        self._joint_enabled = [False] * 6
        self._gripper_enabled = False
        self._gripper_effort = 0

    def _hold(self, q) -> None:
        """Make the goal and the setpoint the measured (7,) state q: no motion."""
        self._goal = np.array(q, dtype=np.float64)
        self._setpoint = self._goal.copy()

    def _movable(self) -> np.ndarray:
        """(7,) bool: which axes accept targets and may move right now."""
        can_move = self._ctrl_mode == CTRL_CAN and not self._estopped
        joints = can_move and self._move_mode in JOINT_MOVE_MODES
        return np.array([joints and on for on in self._joint_enabled]
                        + [can_move and self._gripper_enabled])

    def _plan(self, measured: np.ndarray, dt: float) -> np.ndarray:
        """Step the setpoint toward the goal; axes that may not move hold the measured state."""
        still = ~self._movable()
        self._goal[still] = measured[still]
        self._setpoint[still] = measured[still]
        rate = np.array([self._speed_rate / 100.0] * 6 + [1.0])
        max_step = self._max_velocity * rate * dt
        self._setpoint += np.clip(self._goal - self._setpoint, -max_step, max_step)
        return self._setpoint.copy()

    def _tick(self, dt: float, low_speed: bool) -> None:
        """One control period: read the body, plan, push the setpoint, send feedback."""
        measured = np.asarray(self._read_state(), dtype=np.float64)
        with self._lock:
            setpoint = self._plan(measured, dt)
            frames = self._feedback_frames(measured, low_speed)
        if self._apply_targets is not None:
            self._apply_targets(setpoint)
        for can_id, data in frames:
            self._send(can_id, data)

    def _feedback_frames(self, q: np.ndarray, low_speed: bool) -> list:
        """(can_id, 8 bytes) feedback for measured state q (7,) rad / m."""
        reached = np.all(np.abs(self._goal - q) < ARRIVED_TOLERANCE)
        motion = MOTION_REACHED if reached else MOTION_MOVING
        frames = [(STATUS, struct.pack('>6BH', self._ctrl_mode, self._arm_status,
                                       self._move_mode, 0, motion, 0, 0))]
        frames += self._end_pose_frames(q[:6])
        if self.joint_feedback:
            mdeg = joints_to_sdk(q[:6])
            frames += [(JOINT_FEEDBACK[k], struct.pack('>ii', *mdeg[2 * k:2 * k + 2]))
                       for k in range(3)]
            # Effort feedback is 0: the planner does not know the grasp force.
            grip_status = GRIPPER_HOMED_BIT | (DRIVER_ENABLED_BIT * self._gripper_enabled)
            stroke = gripper_to_sdk(q[6])
            frames.append((GRIPPER_FEEDBACK, struct.pack('>ihBx', stroke, 0, grip_status)))
        if low_speed:
            frames += [(LOW_SPEED[i], struct.pack(
                '>HhbBH', DRIVER_VOLTAGE_DV, DRIVER_TEMP_C, DRIVER_TEMP_C,
                DRIVER_ENABLED_BIT * self._joint_enabled[i], DRIVER_CURRENT_MA)) for i in range(6)]
        return frames

    def _end_pose_frames(self, q6: np.ndarray) -> list:
        """0x2A2-0x2A4: x, y, z in 0.001 mm and roll, pitch, yaw in 0.001 deg."""
        pose = np.asarray(self._fk(q6), dtype=np.float64)
        units = np.concatenate([pose[:3] * MICROMETRE_PER_M, pose[3:] * MILLIDEG_PER_RAD])
        ints = [int(round(v)) for v in units]
        return [(END_POSE[k], struct.pack('>ii', *ints[2 * k:2 * k + 2])) for k in range(3)]

    # --- bus I/O ------------------------------------------------------------------------------
    def _send(self, can_id: int, data: bytes) -> None:
        self._bus.send(can.Message(arbitration_id=can_id, data=data, is_extended_id=False))

    def _send_all(self, frames: list) -> None:
        """One tick's frames as one burst where the bus can (FastVirtualBus: one wake-up)."""
        send_burst = getattr(self._bus, 'send_burst', None)
        if send_burst is None:
            for can_id, data in frames:
                self._send(can_id, data)
            return
        send_burst(frames)

    def _handle(self, msg: can.Message) -> None:
        """Dispatch one received frame by id; unusable frames are logged, counted and dropped."""
        can_id = msg.arbitration_id
        if can_id in ARM_SENT_IDS and not msg.is_extended_id:
            return
        handler = self._handlers.get(can_id)
        if msg.is_extended_id:
            reason = 'extended 29-bit id; the Piper protocol uses 11-bit ids'
        elif handler is None:
            reason = 'not a Piper command this simulated firmware answers'
        elif len(msg.data) != 8:
            reason = f'{len(msg.data)} data bytes; Piper commands carry 8'
        else:
            data = bytes(msg.data)
            with self._lock:
                self._last_frames[can_id] = data
                handler(data)
            return
        with self._lock:
            self.ignored_frames[can_id] += 1
            first = (can_id, reason) not in self._reported
            self._reported.add((can_id, reason))
        if first:
            _log.warning('simulated Piper ignored CAN frame 0x%03X (%s) and keeps running; '
                         'later frames like it are only counted', can_id, reason)

    def _run(self) -> None:
        """Receive until the next tick is due; tick; repeat until stopped."""
        next_tick = last_tick = time.monotonic()
        count = 0
        while not self._stop.is_set():
            try:
                msg = self._bus.recv(timeout=max(0.0, next_tick - time.monotonic()))
            except (can.CanError, OSError):
                # A garbled datagram (udp_multicast), or a bus closed before stop(): go on.
                msg = None
                self._stop.wait(self._period)
            if msg is not None:
                self._handle(msg)
            now = time.monotonic()
            if now >= next_tick:
                # dt is measured (capped after a stall) so the planner speed stays right.
                dt = min(now - last_tick, 5 * self._period)
                self._tick(dt, count % self._low_speed_every == 0)
                count, last_tick = count + 1, now
                next_tick = max(next_tick + self._period, now)
