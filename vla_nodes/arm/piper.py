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

"""PiperArm: the only code that talks to an AgileX Piper through piper_sdk's C_PiperInterface_V2.

Where it fits: `arm_driver_node` calls `send()` at 200 Hz and `read()` for /joint_states;
`teleop_recorder_node` calls `read_leader()` for the leader arm's commands. Everything here is in
SI units (joints in rad, gripper opening in m); the SDK's fixed-point units (0.001 deg, 0.001 mm)
are converted here, with the table in `piper_protocol.py` that the simulated firmware shares.
The CAN bus is configuration: `socketcan` on a robot, python-can `virtual` (one process) or
`udp_multicast` (several processes) against the simulated firmware in `vla_nodes/sim/piper_can.py`.

piper_sdk 0.6.2 facts this wrapper works around:
- the SDK object is a singleton per `can_name` (later constructor arguments are ignored);
- `ConnectPort()` never fails, so `connect()` waits for the first status frame;
- cached feedback is all zeros until frames arrive, so `read()` says `valid=False` until the SDK
  reports a non-zero rate;
- on Linux a second, never-read bus is opened for sending, which on a virtual channel grows
  without bound, so non-socketcan buses send and receive through one bus;
- `DisconnectPort()` leaves two helper threads running, which `close()` stops;
- frames are decoded by id alone, so error and remote frames on feedback ids became joint
  positions: the SDK reads through `can_bus.FrameFilter`, which drops them.
"""

from dataclasses import dataclass
import math
import time
from typing import Callable, Optional

import numpy as np

from vla_nodes.arm.can_bus import bind_udp_multicast, FrameFilter, LOOPBACK
from vla_nodes.arm.piper_protocol import (
    ARM_ESTOP, CTRL_CAN, ESTOP, GRIPPER_DISABLE, GRIPPER_ENABLE, gripper_to_sdk, joints_to_sdk,
    MICROMETRE_PER_M, MILLIDEG_PER_RAD, MOVE_J, POSITION_VELOCITY_MODE, RESUME, sdk_to_positions)

# The SDK's own CAN helpers poll at 10 ms in its demos; 5 ms keeps waits short in tests.
POLL_PERIOD_S = 0.005

CONNECT_HINT = (
    'Check that the arm is powered and the USB-CAN adapter is plugged in; that the interface is '
    'up at 1 Mbit/s (`ip -details link show {can}` should say "bitrate 1000000"; bring it up '
    "with piper_sdk's `bash can_activate.sh {can} 1000000`); and, for the simulated arm, that "
    'sim_node runs on the same interface and channel ({interface}:{channel}).'
)


class PiperConnectionError(RuntimeError):
    """The arm did not answer on the CAN bus, or the bus could not be opened."""


@dataclass(frozen=True)
class PiperConfig:
    """How to reach one Piper arm.

    Attributes:
        can_name: SDK port name, also the key of the SDK's per-port singleton; for socketcan the
            network interface (e.g. 'can0').
        interface: python-can interface: 'socketcan', 'virtual' or 'udp_multicast'.
        channel: python-can channel for non-socketcan interfaces (a virtual channel name, or a
            multicast group such as '239.74.163.2'); None uses `can_name`.
        judge_flag: socketcan only: let the SDK check that the port exists, is up and runs at
            1 Mbit/s before opening it.
        dh_is_offset: the SDK's DH variant (1 for firmware S-V1.6-3 and later); FK only.
        speed_rate: firmware planner speed in percent of the maximum joint speed (0-100).
        gripper_effort: gripper force limit in 0.001 N/m (0-5000; 1000 = 1 N/m).
        connect_timeout: seconds to wait for the first status frame in `connect()`.
        bind_address: udp_multicast only: IPv4 address of the interface the group is joined
            on; 127.0.0.1 (default) keeps the bus on this host, 0.0.0.0 opens it to the network.
    """

    can_name: str = 'can0'
    interface: str = 'socketcan'
    channel: Optional[str] = None
    judge_flag: bool = True
    dh_is_offset: int = 1
    speed_rate: int = 50
    gripper_effort: int = 1000
    connect_timeout: float = 2.0
    bind_address: str = LOOPBACK

    def __post_init__(self):
        """Reject values the SDK would silently truncate into its 8- and 16-bit fields."""
        if not 0 <= self.speed_rate <= 100:
            raise ValueError(f'speed_rate must be 0-100 %, got {self.speed_rate}')
        if not 0 <= self.gripper_effort <= 5000:
            raise ValueError(f'gripper_effort must be 0-5000 (0.001 N/m), got '
                             f'{self.gripper_effort}')


@dataclass(frozen=True, eq=False)
class ArmFeedback:
    """One joint-space sample of an arm.

    Attributes:
        positions: (7,) joints 1-6 in rad, then the gripper opening in m.
        stamp: receive time of the newest joint frame (s, `time.time()` clock; the SDK's
            `time_stamp`); 0.0 before any frame arrived.
        valid: False until the SDK has decoded real frames at a non-zero rate; before that the
            positions are the SDK's initial zeros. It turns False again when frames stop.
        seen: frames of every kind arrived at least once (`valid` without the SDK's rate, which
            a piper_sdk thread counts per 0.1 s of wall time: under simulated time the caller
            judges liveness on its own clock instead).
    """

    positions: np.ndarray
    stamp: float
    valid: bool
    seen: bool = True


@dataclass(frozen=True, eq=False)
class EndPose:
    """The flange pose the firmware computes from its joint feedback (0x2A2-0x2A4).

    Attributes:
        position: (3,) x, y, z in m, in the arm's base frame.
        quaternion: (4,) qx, qy, qz, qw of R = Rz(yaw) Ry(pitch) Rx(roll), the SDK's Euler
            convention.
        stamp: receive time of the newest end-pose frame (s, `time.time()` clock).
        valid: False until all three frames arrive at a non-zero rate.
        seen: the frames arrived at least once (`valid` without the SDK's wall-clock rate).
    """

    position: np.ndarray
    quaternion: np.ndarray
    stamp: float
    valid: bool
    seen: bool = True


def rpy_to_quaternion(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """(4,) qx, qy, qz, qw of R = Rz(yaw) Ry(pitch) Rx(roll); angles in rad."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                     cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy])


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll `predicate` every POLL_PERIOD_S until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_PERIOD_S)


def _sdk_class():
    """Return the SDK interface class; imported here so that PiperConfig needs no piper_sdk."""
    from piper_sdk import C_PiperInterface_V2
    return C_PiperInterface_V2


def _stop_sdk_helper_threads(sdk) -> None:
    """Stop the CanMonitor and FPS threads that DisconnectPort() leaves running (SDK 0.6.2).

    ConnectPort() restarts both, so a later connect() on the same singleton still works.
    """
    monitor_stop = getattr(sdk, '_C_PiperInterface_V2__can_monitor_stop_event', None)
    if monitor_stop is not None:
        monitor_stop.set()
    fps_counter = getattr(sdk, '_C_PiperInterface_V2__fps_counter', None)
    if fps_counter is not None:
        fps_counter.stop()


def _share_one_bus(sdk) -> None:
    """Send and receive through one python-can bus, as the SDK itself does on Windows and macOS.

    On Linux the SDK opens a second bus just for sending. On a virtual channel that bus queues
    every frame of the channel and nobody reads it (unbounded memory, ~1700 frames/s against the
    simulated arm), and the receiving bus hears this process's own commands. SocketCAN keeps the
    SDK's two sockets.
    """
    port = sdk.GetCanBus()
    if port is not None and port.recv_bus is not None and port.send_bus is not port.recv_bus:
        port.send_bus.shutdown()
        port.send_bus = port.recv_bus


def _filter_frames(port) -> None:
    """Make the SDK read through a FrameFilter (once: the SDK object is a singleton)."""
    if not isinstance(port.recv_bus, FrameFilter):
        shared = port.send_bus is port.recv_bus
        port.recv_bus = FrameFilter(port.recv_bus)
        if shared:
            port.send_bus = port.recv_bus


class PiperArm:
    """One Piper arm over CAN, in SI units.

    Typical use: `arm = PiperArm(config); arm.connect(); arm.enable(); arm.send(q); arm.read()`.
    Callers clamp commands first (`vla_nodes.arm.safety`); this class only converts units.
    """

    def __init__(self, config: PiperConfig = PiperConfig()):
        """Store the configuration; nothing touches the bus until `connect()`.

        Args:
            config: how to reach the arm.
        """
        self.config = config
        self._sdk = None
        self._enabled = False

    @property
    def channel(self) -> str:
        """The python-can channel in use (the interface name for socketcan)."""
        return self.config.channel or self.config.can_name

    def connect(self) -> None:
        """Open the CAN bus, start the SDK's reader and wait for the arm's first status frame.

        Raises:
            PiperConnectionError: the bus could not be opened, or no status frame arrived
                within `config.connect_timeout` seconds.
        """
        if self._sdk is not None:
            return
        self._sdk = self._create_sdk()
        # The singleton keeps the last session's frames: wait for a status frame newer than those.
        before = self._sdk.GetArmStatus().time_stamp
        self._sdk.ConnectPort()
        if self._sdk.GetCanBus() is None or self._sdk.GetCanBus().recv_bus is None:
            self.close()
            raise PiperConnectionError(self._hint('could not open the CAN bus'))
        _filter_frames(self._sdk.GetCanBus())  # again: ConnectPort may have opened a new bus
        if not wait_for(lambda: self._sdk.GetArmStatus().time_stamp != before,
                        self.config.connect_timeout):
            self.close()
            raise PiperConnectionError(self._hint(
                f'no status frame (0x2A1) within {self.config.connect_timeout:.1f} s'))

    def enable(self, timeout: float = 2.0, gripper_opening: Optional[float] = None) -> None:
        """Enable all six joint motors, select CAN control / MOVE J, enable the gripper.

        The gripper is enabled at `gripper_opening`, so enabling never moves it; without one it
        is left for the first `send()` to enable. The SDK's reported opening is not used: it
        reads 0 (closed) from all-zero or missing feedback, and closing is a motion.

        Args:
            timeout: seconds to wait for all six drivers to report enabled.
            gripper_opening: the gripper's believed opening (m), e.g. from trusted feedback.

        Raises:
            PiperConnectionError: not connected, or the drivers did not report enabled in time.
        """
        sdk = self._require_sdk()
        if not wait_for(lambda: self._motors_report_enabled(sdk), timeout):
            raise PiperConnectionError(self._hint(
                f'motors not enabled within {timeout:.1f} s (driver enable flags '
                f'{sdk.GetArmEnableStatus()}); is the arm e-stopped or unpowered?'))
        cfg = self.config
        sdk.MotionCtrl_2(CTRL_CAN, MOVE_J, cfg.speed_rate, POSITION_VELOCITY_MODE)
        if gripper_opening is not None:
            sdk.GripperCtrl(gripper_to_sdk(gripper_opening), cfg.gripper_effort,
                            GRIPPER_ENABLE, 0)
        self._enabled = True

    def disable(self) -> None:
        """Disable all joint motors and the gripper. A real arm loses torque and drops."""
        sdk = self._require_sdk()
        sdk.DisableArm(7)
        opening = sdk.GetArmGripperMsgs().gripper_state.grippers_angle
        sdk.GripperCtrl(opening, self.config.gripper_effort, GRIPPER_DISABLE, 0)
        self._enabled = False

    def send(self, q) -> np.ndarray:
        """Command joint and gripper targets; the firmware planner moves there at `speed_rate`.

        Re-sends the mode frame (CAN control, MOVE J) with every command, as piper_ros and the
        SDK demos do, so the arm returns to CAN control after a teach-pendant switch.

        Args:
            q: (7,) joints 1-6 in rad, gripper opening in m; already clamped by the caller.

        Returns:
            (7,) the values actually sent, in rad / m, after rounding to the SDK units.

        Raises:
            ValueError: q has the wrong size or a non-finite value.
            PiperConnectionError: not connected.
        """
        q = np.asarray(q, dtype=np.float64).reshape(-1)
        if q.shape != (7,) or not np.all(np.isfinite(q)):
            raise ValueError(f'expected 7 finite values (rad x6, m), got {q!r}')
        sdk = self._require_sdk()
        joints, gripper = joints_to_sdk(q[:6]), gripper_to_sdk(q[6])
        cfg = self.config
        code = GRIPPER_ENABLE if self._enabled else GRIPPER_DISABLE
        sdk.MotionCtrl_2(CTRL_CAN, MOVE_J, cfg.speed_rate, POSITION_VELOCITY_MODE)
        sdk.JointCtrl(*joints)
        sdk.GripperCtrl(gripper, cfg.gripper_effort, code, 0)
        return sdk_to_positions(joints, gripper)

    def read(self) -> ArmFeedback:
        """Return the latest joint and gripper feedback (0x2A5-0x2A8) decoded by the SDK.

        Returns:
            ArmFeedback with positions (7,) in rad / m.
        """
        sdk = self._require_sdk()
        joints, gripper = sdk.GetArmJointMsgs(), sdk.GetArmGripperMsgs()
        js = joints.joint_state
        positions = sdk_to_positions(
            [js.joint_1, js.joint_2, js.joint_3, js.joint_4, js.joint_5, js.joint_6],
            gripper.gripper_state.grippers_angle)
        seen = min(joints.time_stamp, gripper.time_stamp) > 0
        valid = seen and min(joints.Hz, gripper.Hz) > 0
        return ArmFeedback(positions, float(joints.time_stamp), bool(valid), bool(seen))

    def read_leader(self) -> Optional[ArmFeedback]:
        """Return the latest joint and gripper *command* frames (0x155-0x157, 0x159) seen.

        On a bus shared with a leader (teach-input) arm these are the leader's commands: the
        action a teleop recorder stores. On udp_multicast every socket hears its own frames, so
        there the SDK also sees this process's own `send()` commands.

        Returns:
            ArmFeedback in rad / m, or None if no command frame was ever seen.
        """
        sdk = self._require_sdk()
        joints, gripper = sdk.GetArmJointCtrl(), sdk.GetArmGripperCtrl()
        if joints.time_stamp == 0 and gripper.time_stamp == 0:
            return None
        jc = joints.joint_ctrl
        positions = sdk_to_positions(
            [jc.joint_1, jc.joint_2, jc.joint_3, jc.joint_4, jc.joint_5, jc.joint_6],
            gripper.gripper_ctrl.grippers_angle)
        seen = min(joints.time_stamp, gripper.time_stamp) > 0
        valid = seen and min(joints.Hz, gripper.Hz) > 0
        return ArmFeedback(positions, float(max(joints.time_stamp, gripper.time_stamp)),
                           bool(valid), bool(seen))

    def read_end_pose(self) -> EndPose:
        """Return the firmware's end pose (0x2A2-0x2A4), converted from 0.001 mm / 0.001 deg."""
        msg = self._require_sdk().GetArmEndPoseMsgs()
        ep = msg.end_pose
        rpy = np.array([ep.RX_axis, ep.RY_axis, ep.RZ_axis], dtype=np.float64) / MILLIDEG_PER_RAD
        return EndPose(np.array([ep.X_axis, ep.Y_axis, ep.Z_axis]) / MICROMETRE_PER_M,
                       rpy_to_quaternion(*rpy), float(msg.time_stamp),
                       bool(min(msg.time_stamp, msg.Hz) > 0), bool(msg.time_stamp > 0))

    def status(self, drivers: bool = True) -> dict:
        """Return the arm state (0x2A1), driver enable flags and bus health as plain values.

        Args:
            drivers: also read the six drivers' enable flags and the frame rate; False keeps
                a per-tick health check cheap (those keys are then missing).

        Returns:
            dict with ctrl_mode (0 standby, 1 CAN), arm_status (0 normal, 1 e-stop, ...),
            mode_feed (0 MOVE P, 1 MOVE J, ...), motion_status (0 target reached), err_code
            (bits 0-5 joint comm error, bits 8-13 joint angle limit), motors_enabled (6 bools),
            can_fps (decoded frames/s), is_ok (the SDK reader sees frames), bus_state
            (python-can's 'ACTIVE', 'PASSIVE' or 'ERROR' = bus-off), stamp (s) and
            frames_dropped (error/remote/extended/short frames kept from the SDK).
        """
        sdk = self._require_sdk()
        msg = sdk.GetArmStatus()
        st = msg.arm_status
        port = sdk.GetCanBus()
        bus = None if port is None else port.recv_bus
        status = {
            'ctrl_mode': int(st.ctrl_mode),
            'arm_status': int(st.arm_status),
            'mode_feed': int(st.mode_feed),
            'motion_status': int(st.motion_status),
            'err_code': int(st.err_code),
            'is_ok': bool(sdk.isOk()),
            'bus_state': 'ERROR' if bus is None else bus.state.name,
            'stamp': float(msg.time_stamp),
            'frames_dropped': sum(getattr(bus, 'dropped', {}).values()),
        }
        if drivers:
            status['motors_enabled'] = tuple(bool(e) for e in sdk.GetArmEnableStatus())
            status['can_fps'] = float(sdk.GetCanFps())
        return status

    def emergency_stop(self) -> None:
        """Fast stop (0x150, 0x01): the firmware halts and ignores motion commands."""
        self._require_sdk().EmergencyStop(ESTOP)

    def resume(self, timeout: float = 2.0, gripper_opening: Optional[float] = None) -> None:
        """Leave the e-stop (0x150, 0x02), then `enable()` again.

        On the wire this is the same frame as the SDK's ResetPiper(): a real arm drops to
        standby with its motors unpowered before it is re-enabled, so support or park it first.

        Args:
            timeout: seconds for the e-stop to clear and for the motors to re-enable.
            gripper_opening: passed on to `enable()`.

        Raises:
            PiperConnectionError: the arm still reports e-stop, or did not re-enable in time.
        """
        sdk = self._require_sdk()
        sdk.EmergencyStop(RESUME)
        self._enabled = False
        if not wait_for(lambda: int(sdk.GetArmStatus().arm_status.arm_status)
                        != ARM_ESTOP, timeout):
            raise PiperConnectionError(self._hint(f'e-stop not cleared within {timeout:.1f} s'))
        self.enable(timeout, gripper_opening)

    def close(self) -> None:
        """Stop the SDK threads and close the bus. Does not disable the motors."""
        if self._sdk is None:
            return
        sdk, self._sdk = self._sdk, None
        self._enabled = False
        _stop_sdk_helper_threads(sdk)
        sdk.DisconnectPort()

    def _create_sdk(self):
        """Create (or reuse: the SDK keeps one per can_name) the SDK object and its CAN bus."""
        cfg = self.config
        sdk_class = _sdk_class()
        try:
            if cfg.interface == 'socketcan':
                sdk = sdk_class(cfg.can_name, judge_flag=cfg.judge_flag, can_auto_init=True,
                                dh_is_offset=cfg.dh_is_offset)
            else:
                # can_auto_init=True would hard-code socketcan; judge_flag inspects /sys/class/net.
                sdk = sdk_class(cfg.can_name, judge_flag=False, can_auto_init=False,
                                dh_is_offset=cfg.dh_is_offset)
                sdk.CreateCanBus(self.channel, bustype=cfg.interface, judge_flag=False)
                if cfg.interface == 'udp_multicast':
                    bind_udp_multicast(sdk.GetCanBus().recv_bus, cfg.bind_address)
                _share_one_bus(sdk)
        except (ConnectionError, ValueError, OSError) as exc:
            raise PiperConnectionError(self._hint(f'could not open the CAN bus: {exc}')) from exc
        return sdk

    def _motors_report_enabled(self, sdk) -> bool:
        """Send the enable frame; True once fresh driver feedback says all six are enabled."""
        return sdk.EnablePiper() and sdk.GetArmLowSpdInfoMsgs().Hz > 0

    def _require_sdk(self):
        """Return the connected SDK object, or raise PiperConnectionError."""
        if self._sdk is None:
            raise PiperConnectionError('PiperArm is not connected: call connect() first')
        return self._sdk

    def _hint(self, problem: str) -> str:
        """`problem` followed by what to check, for this arm's interface and channel."""
        cfg = self.config
        return f'Piper on {cfg.interface}:{self.channel}: {problem}. ' + CONNECT_HINT.format(
            can=cfg.can_name, interface=cfg.interface, channel=self.channel)
