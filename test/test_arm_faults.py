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

"""Issue 12, arm safety: what reaches the CAN bus when limits, feedback, stamps, parameters fail.

The driver (real piper_sdk) runs against the simulated firmware on a python-can virtual bus, a
first-order plant as the arm's body. Every verdict comes from a separate python-can listener
on the same channel (`Listener`): the frames that really crossed the bus, not the driver's own
report. Faults are injected the way they happen: frames from another sender on the bus, a
firmware whose joint frames read zeros, a clock ahead of the driver's, a bad parameter file.
"""

import itertools
import json
import math
import random
import re
import socket
import struct
import threading
import time

import can
from can.interfaces.udp_multicast.utils import pack_message
import numpy as np
from piper_sdk.piper_param.piper_param_manager import C_PiperParamManager
import pytest

from graph import Probe, spin  # test/graph.py
from vla_nodes import contract, ros
from vla_nodes.arm import kinematics
from vla_nodes.arm.can_bus import open_bus
from vla_nodes.arm.piper import PiperArm, PiperConfig, wait_for
from vla_nodes.arm.piper_protocol import (
    ARM_SENT_IDS, GRIPPER_CTRL, GRIPPER_FEEDBACK, JOINT_CTRL, JOINT_FEEDBACK, MICROMETRE_PER_M,
    MILLIDEG_PER_RAD)
from vla_nodes.nodes import run, StartupError
from vla_nodes.nodes.arm_driver_node import ArmDriverNode, JOINT_COMMAND_TOPIC
from vla_nodes.nodes.diagnostics import ERROR, WARN
from vla_nodes.ros import launch
from vla_nodes.ros.msgs import diagnostic_msgs, sensor_msgs, trajectory_msgs
from vla_nodes.sim.kinematic_plant import KinematicPlant
from vla_nodes.sim.piper_can import PiperFirmware
from vla_nodes.sim.piper_mjcf import robot_mjcf

pytestmark = [
    pytest.mark.skipif(ros.BACKEND != 'local', reason='drives the local backend'),
    pytest.mark.filterwarnings('ignore:.*bustype.*:DeprecationWarning'),
]
_channels = itertools.count()
READY = np.array(contract.READY_POSITIONS)          # joint1 0.0, joint2 1.2, ... gripper 0.05 m
JOINT_FEEDBACK_12, JOINT_FEEDBACK_34 = JOINT_FEEDBACK[:2]
ZEROED_FEEDBACK = (*JOINT_FEEDBACK, GRIPPER_FEEDBACK)


def fk(q6):
    return kinematics.pose_to_xyz_rpy(kinematics.forward_kinematics(q6))


def mdeg(rad: float) -> int:
    return int(round(rad * MILLIDEG_PER_RAD))


class Listener:
    """A python-can bus of its own on the channel: every frame that crossed it, in order."""

    def __init__(self, channel):
        self.bus = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
        self.frames = []
        self._notifier = can.Notifier(self.bus, [self.frames.append], timeout=0.02)

    def close(self):
        self._notifier.stop()
        self.bus.shutdown()

    def joint_commands(self, joint: int, since: float = 0.0) -> list:
        """Joint `joint` (0-5) targets in rad of every JointCtrl frame sent after `since`."""
        can_id = JOINT_CTRL[joint // 2]
        return [struct.unpack('>ii', bytes(m.data))[joint % 2] / MILLIDEG_PER_RAD
                for m in list(self.frames) if m.arbitration_id == can_id
                and m.timestamp >= since and not m.is_error_frame]

    def gripper_commands(self, since: float = 0.0) -> list:
        """Gripper stroke targets in m of every GripperCtrl frame sent after `since`."""
        return [struct.unpack('>i', bytes(m.data[:4]))[0] / MICROMETRE_PER_M
                for m in list(self.frames) if m.arbitration_id == GRIPPER_CTRL
                and m.timestamp >= since]

    def from_driver(self) -> list:
        """Ids of frames the driver (not the arm) sent."""
        return [m.arbitration_id for m in list(self.frames)
                if m.arbitration_id not in ARM_SENT_IDS]


class ZeroFeedbackFirmware(PiperFirmware):
    """The real firmware, but its joint and gripper frames (0x2A5-0x2A8) carry zeros for a while.

    Zeros until `zeros_until` (time.monotonic()): the start-up fault of issue 12. End pose stays
    right.
    """

    zeros_until = 0.0

    def _feedback_frames(self, q, low_speed):
        frames = super()._feedback_frames(q, low_speed)
        if time.monotonic() < self.zeros_until:
            frames = [(i, bytes(8) if i in ZEROED_FEEDBACK else d) for i, d in frames]
        return frames


class Rig:
    """Simulated Piper, a listener and the driver, all on one fresh virtual channel."""

    def __init__(self, ctx, zero_feedback_s=0.0, **params):
        self.channel = f'test_arm_faults_{next(_channels)}'
        self.bus = can.Bus(interface='virtual', channel=self.channel, receive_own_messages=False)
        self.listener = Listener(self.channel)
        self.plant = KinematicPlant(READY)
        self.firmware = ZeroFeedbackFirmware(self.bus, self.plant.read_state,
                                             self.plant.set_targets, fk=fk)
        self.firmware.zeros_until = time.monotonic() + zero_feedback_s
        self.firmware.start()
        self.driver = None
        params = {'can_name': self.channel, 'can_interface': 'virtual', 'judge_flag': False,
                  'dry_run': False, 'enable_on_start': True, **params}
        self.driver = ArmDriverNode(
            context=ctx,
            parameter_overrides=[ros.Parameter(k, value=v) for k, v in params.items()])

    def close(self):
        if self.driver is not None:
            self.driver.destroy_node()
        self.firmware.stop()
        self.listener.close()
        self.bus.shutdown()


@pytest.fixture
def rigs(ctx):
    made = []

    def make(**kwargs):
        rig = Rig.__new__(Rig)
        made.append(rig)
        rig.__init__(ctx, **kwargs)
        if not kwargs.get('zero_feedback_s'):  # chunks need believed feedback (~50 ms)
            spin(ctx, [rig.driver], 5.0, until=lambda: rig.driver._control.guard.trusted)
        return rig

    make.made = made  # a rig whose driver refused to start is still closed here
    yield make
    for rig in made:
        rig.close()


def statuses(probe):
    return [s for array in list(probe.msgs) for s in array.status
            if s.name == '/arm_driver_node']


def chunk_msg(stamp_ns, positions, dt=0.5):
    msg = trajectory_msgs.JointTrajectory(joint_names=list(contract.JOINT_NAMES))
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 10**9)
    for k, q in enumerate(positions):
        point = trajectory_msgs.JointTrajectoryPoint(positions=[float(v) for v in q])
        point.time_from_start.sec, point.time_from_start.nanosec = divmod(
            int((k + 1) * dt * 1e9), 10**9)
        msg.points.append(point)
    return msg


class Injector:
    """Another sender on the channel: sends `messages` in turn every `period` s on a thread."""

    def __init__(self, channel, messages, period=0.002):
        self.bus = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
        self._messages, self._period = messages, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.bus.shutdown()

    def _run(self):
        for msg in itertools.cycle(self._messages):
            if self._stop.wait(self._period):
                return
            self.bus.send(msg)


def hold_ready(tester):
    """Teleop at 20 Hz holding the ready pose: the driver commands every tick."""
    pub = tester.create_publisher(sensor_msgs.JointState, JOINT_COMMAND_TOPIC, 10)
    return tester.create_timer(0.05, lambda: pub.publish(
        sensor_msgs.JointState(name=list(contract.JOINT_NAMES), position=list(READY))))


# --- item 1: joint 3's range ------------------------------------------------------------------

def test_joint3_reaches_minus_170_degrees_as_piper_sdk_and_the_urdf_allow(ctx, rigs, tester):
    sdk_lower = C_PiperParamManager().GetJointLimitParam('j3')[0]          # -2.967
    assert contract.PIPER_LIMITS['joint3'].lower == pytest.approx(sdk_lower, abs=1e-9)
    assert contract.PIPER_LIMITS['joint3'].lower == pytest.approx(math.radians(-170), abs=1e-4)
    # The simulated arm's MuJoCo joint has the same range.
    joint3 = re.search(r'<joint name="joint3" range="(\S+) (\S+)"', robot_mjcf())
    assert float(joint3.group(1)) == pytest.approx(sdk_lower, abs=1e-9)
    rig = rigs()
    pub = tester.create_publisher(trajectory_msgs.JointTrajectory,
                                  contract.ACTION_CHUNK_TOPIC, 10)
    far = READY.copy()
    far[2] = -2.9                                        # 166 deg: beyond menagerie's -2.697
    spin(ctx, [rig.driver, tester], 0.1)
    now = rig.driver.get_clock().now().nanoseconds
    pub.publish(chunk_msg(now, [far, far], dt=3.0))     # slow: a loaded machine keeps up
    assert spin(ctx, [rig.driver, tester], 12.0, until=lambda: any(
        round(q * MILLIDEG_PER_RAD) == mdeg(-2.9) for q in rig.listener.joint_commands(2)))
    assert spin(ctx, [rig.driver, tester], 6.0,
                until=lambda: abs(rig.plant.read_state()[2] + 2.9) < 2e-3)
    assert min(rig.listener.joint_commands(2)) == pytest.approx(-2.9, abs=1e-4)


# --- item 3: CAN silence ----------------------------------------------------------------------

def test_can_silence_faults_after_can_timeout_s_and_says_the_measured_gap(ctx, rigs, tester):
    rig = rigs(can_timeout_s=1.0)
    diags = Probe(tester, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    nodes = [rig.driver, tester]
    stream = hold_ready(tester)
    assert spin(ctx, nodes, 6.0, until=lambda: len(rig.listener.joint_commands(0)) > 10)
    rig.firmware.stop()                                  # the arm falls silent
    spin(ctx, nodes, 0.05)
    # Silence counts from the arm's last frame on the bus (stop() may return later on a
    # loaded machine). piper_sdk's isOk turns false after ~0.35 s: not the threshold.
    silent_from = max(m.timestamp for m in list(rig.listener.frames)
                      if m.arbitration_id in ARM_SENT_IDS)
    spin(ctx, nodes, silent_from + 0.7 - time.time())
    fault = rig.driver._control.faults.fault
    assert not fault, (time.time() - silent_from, fault)
    assert not any(s.level == ERROR for s in statuses(diags)), statuses(diags)[-1].message
    assert spin(ctx, nodes, 6.0, until=lambda: any(
        s.level == ERROR and 'no CAN' in s.message for s in statuses(diags)))
    fault = next(s.message for s in statuses(diags) if s.level == ERROR)
    gap = float(re.search(r'for ([0-9.]+) s \(can_timeout_s 1 s\)', fault).group(1))
    assert 1.0 <= gap < 2.0, fault  # the message rounds to ms: a 1.0004 s gap reads 1.000
    # Back, but latched: the hold stream reaches nothing past this point.
    rig.firmware.start()
    latched_at = time.time()
    spin(ctx, nodes, 0.5)
    stream.cancel()
    assert rig.listener.joint_commands(0, since=latched_at) == [], rig.driver._control.faults.fault


def test_a_pause_shorter_than_can_timeout_s_is_not_a_fault(ctx, rigs, tester):
    rig = rigs(can_timeout_s=1.0)
    nodes = [rig.driver, tester]
    pub = tester.create_publisher(trajectory_msgs.JointTrajectory,
                                  contract.ACTION_CHUNK_TOPIC, 10)
    spin(ctx, nodes, 0.3)
    rig.firmware.stop()
    spin(ctx, nodes, 0.05)
    last = max(m.timestamp for m in list(rig.listener.frames) if m.arbitration_id in ARM_SENT_IDS)
    spin(ctx, nodes, last + 0.5 - time.time())           # 0.5 s < 1.0 s (the SDK's isOk trips)
    rig.firmware.start()
    spin(ctx, nodes, 0.3)
    assert not rig.driver._control.faults.fault
    moved = READY + [0.2, 0, 0, 0, 0, 0, 0]
    pub.publish(chunk_msg(rig.driver.get_clock().now().nanoseconds, [moved, moved]))
    assert spin(ctx, nodes, 6.0, until=lambda: any(
        abs(q - 0.2) < 1e-4 for q in rig.listener.joint_commands(0)))


# --- item 8: feedback that is not believable yet --------------------------------------------

def test_all_zero_feedback_at_start_up_is_not_trusted_published_or_commanded_from(
        ctx, rigs, tester):
    rig = rigs(zero_feedback_s=1.5)                      # enable_on_start: enabled at once
    states = Probe(tester, sensor_msgs.JointState, contract.JOINT_STATES_TOPIC)
    diags = Probe(tester, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    nodes = [rig.driver, tester]
    hold_ready(tester)
    zeros_end = time.time() + (rig.firmware.zeros_until - time.monotonic())
    spin(ctx, nodes, rig.firmware.zeros_until - time.monotonic() - 0.1)
    # While the joint frames read zeros: nothing commanded, nothing published, and why.
    assert rig.listener.joint_commands(1) == []
    assert rig.listener.gripper_commands() == []         # not "gripper to 0 mm" on enable
    assert states.msgs == []
    waits = [s for s in statuses(diags) if s.level == WARN and 'not trusted yet' in s.message]
    assert waits and 'end pose' in waits[-1].message, [s.message for s in statuses(diags)]
    # Real frames: confirmed, then the ready pose is held, not zero.
    assert spin(ctx, nodes, 6.0, until=lambda: len(rig.listener.joint_commands(1)) > 20)
    for joint in range(6):
        np.testing.assert_allclose(rig.listener.joint_commands(joint), READY[joint], atol=1e-4)
    np.testing.assert_allclose(rig.listener.gripper_commands(), READY[6], atol=1e-5)
    assert states.msgs and all(np.allclose(m.position, READY, atol=1e-4) for m in states.msgs)
    np.testing.assert_allclose(rig.plant.read_state(), READY, atol=1e-4)
    assert all(m.timestamp > zeros_end - 0.05 for m in rig.listener.frames
               if m.arbitration_id in JOINT_CTRL)


# --- item 9: frames that are not the arm's ----------------------------------------------------

def test_error_and_remote_frames_on_feedback_ids_never_become_positions(ctx, rigs, tester):
    rig = rigs()
    states = Probe(tester, sensor_msgs.JointState, contract.JOINT_STATES_TOPIC)
    nodes = [rig.driver, tester]
    hold_ready(tester)
    assert spin(ctx, nodes, 6.0, until=lambda: len(rig.listener.joint_commands(0)) > 10)
    data = struct.pack('>ii', mdeg(4.576), mdeg(READY[1]))   # joint1 4.576 rad (limit 2.618)
    injected_from = time.time()
    with Injector(rig.channel, [
            can.Message(arbitration_id=JOINT_FEEDBACK_12, data=data, is_extended_id=False,
                        is_error_frame=True),
            can.Message(arbitration_id=JOINT_FEEDBACK_12, data=data, is_extended_id=False,
                        is_remote_frame=True)]):
        spin(ctx, nodes, 0.5)                            # ~250 frames from another sender
    spin(ctx, nodes, 0.1)
    assert max(abs(m.position[0]) for m in states.msgs) < 1e-4     # never 4.576
    commands = rig.listener.joint_commands(0, since=injected_from)
    assert commands and max(abs(q) for q in commands) < 1e-4
    assert not rig.driver._control.faults.fault                  # dropped, not a fault
    assert rig.driver._control.arm.status()['frames_dropped'] >= 20
    np.testing.assert_allclose(rig.plant.read_state(), READY, atol=1e-4)


def test_a_rogue_data_frame_latches_a_fault_and_is_never_followed(ctx, rigs, tester):
    rig = rigs()
    states = Probe(tester, sensor_msgs.JointState, contract.JOINT_STATES_TOPIC)
    diags = Probe(tester, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    nodes = [rig.driver, tester]
    hold_ready(tester)
    assert spin(ctx, nodes, 6.0, until=lambda: len(rig.listener.joint_commands(0)) > 10)
    data = struct.pack('>ii', mdeg(READY[0] + 1.96), mdeg(READY[1]))   # in range, 1.96 away
    with Injector(rig.channel, [can.Message(arbitration_id=JOINT_FEEDBACK_12, data=data,
                                            is_extended_id=False)]):
        spin(ctx, nodes, 0.5, until=lambda: bool(rig.driver._control.faults.fault))
    spin(ctx, nodes, 0.3)
    assert max(abs(q - READY[0]) for q in rig.listener.joint_commands(0)) < 1e-4
    assert max(abs(m.position[0] - READY[0]) for m in states.msgs) < 1e-4
    np.testing.assert_allclose(rig.plant.read_state(), READY, atol=1e-4)
    assert spin(ctx, nodes, 3.0, until=lambda: any(
        s.level == ERROR and 'faster than the arm can move' in s.message
        for s in statuses(diags)))
    latched_at = time.time()
    spin(ctx, nodes, 0.3)
    assert rig.listener.joint_commands(0, since=latched_at) == []   # latched: nothing sent


def test_an_arm_moved_elsewhere_like_a_sim_reset_is_re_confirmed_not_a_fault(
        ctx, rigs, tester, caplog):
    rig = rigs()
    pub = tester.create_publisher(trajectory_msgs.JointTrajectory,
                                  contract.ACTION_CHUNK_TOPIC, 10)
    nodes = [rig.driver, tester]
    far = READY + [1.0, 0, 0, 0, 0, 0, 0]
    pub.publish(chunk_msg(rig.driver.get_clock().now().nanoseconds, [far, far], dt=3.0))
    assert spin(ctx, nodes, 6.0, until=lambda: rig.plant.read_state()[0] > 0.1)
    # The simulator's episode reset: the body is put elsewhere, the firmware holds it there.
    elsewhere = READY + [-0.4, 0.1, 0, 0, 0, 0, 0]
    with rig.plant._lock:
        rig.plant._q[:], rig.plant._target[:] = elsewhere, elsewhere
    rig.firmware.hold(elsewhere)
    assert spin(ctx, nodes, 3.0, until=lambda: 'moved outside the driver' in caplog.text)
    detected = time.time()
    spin(ctx, nodes, 0.5)
    assert not rig.driver._control.faults.fault
    # The old chunk is dropped: nothing more is sent until a new command comes.
    assert rig.listener.joint_commands(0, since=detected) == []
    nudged = elsewhere + [0.05, 0, 0, 0, 0, 0, 0]
    pub.publish(chunk_msg(rig.driver.get_clock().now().nanoseconds, [nudged]))
    assert spin(ctx, nodes, 6.0, until=lambda: abs(rig.plant.read_state()[0] + 0.35) < 2e-3)


# --- item 10: chunk stamps from the future ----------------------------------------------------

def test_a_future_stamp_is_refused_and_never_blocks_fresh_chunks(ctx, rigs, tester):
    rig = rigs()
    diags = Probe(tester, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    pub = tester.create_publisher(trajectory_msgs.JointTrajectory,
                                  contract.ACTION_CHUNK_TOPIC, 10)
    nodes = [rig.driver, tester]
    spin(ctx, nodes, 0.2)
    clock = rig.driver.get_clock()
    stale = READY + [0.3, 0, 0, 0, 0, 0, 0]
    pub.publish(chunk_msg(clock.now().nanoseconds + 2 * 10**9, [stale, stale]))   # 2 s ahead
    fresh = READY - [0.2, 0, 0, 0, 0, 0, 0]
    pub.publish(chunk_msg(clock.now().nanoseconds, [fresh, fresh]))
    assert spin(ctx, nodes, 6.0, until=lambda: any(
        abs(q - fresh[0]) < 1e-4 for q in rig.listener.joint_commands(0)))
    assert spin(ctx, nodes, 3.0, until=lambda: any(
        'in the future' in s.message for s in statuses(diags)))
    refused = next(s.message for s in statuses(diags) if 'in the future' in s.message)
    assert 'max_future_stamp_s 0.5' in refused and 'synchronise' in refused
    # Within the bound (0.3 s of skew): accepted, and a fresher chunk is not "out of order".
    skewed = READY - [0.1, 0, 0, 0, 0, 0, 0]
    pub.publish(chunk_msg(clock.now().nanoseconds + 3 * 10**8, [skewed, skewed]))
    spin(ctx, nodes, 0.05)
    back = READY.copy()
    pub.publish(chunk_msg(clock.now().nanoseconds, [back, back]))
    assert spin(ctx, nodes, 6.0, until=lambda: abs(rig.plant.read_state()[0]) < 1e-3
                and abs(rig.listener.joint_commands(0)[-1]) < 1e-4)
    spin(ctx, nodes, 2.5)                                # past the stale chunk's stamp
    assert max(rig.listener.joint_commands(0)) < 1e-4   # never toward the future chunk
    assert not any('out of order' in s.message for s in statuses(diags))


# --- item 12: parameter values ----------------------------------------------------------------

@pytest.mark.parametrize('name, bad', [
    ('control_rate_hz', 0.0),
    ('command_timeout_s', -1.0),
    ('max_velocity_rad_s', 1000.0),
    ('max_step_rad', 10.0),
    ('can_timeout_s', float('nan')),
    ('lower_limits', [float('nan')] + [-3.0] * 5 + [0.0]),
    ('control_rate_hz', 200),                            # an int for a float: says to write 200.0
])
def test_a_bad_parameter_stops_the_node_with_one_line_and_sends_nothing(ctx, rigs, name, bad):
    with pytest.raises(StartupError) as refused:
        rigs(**{name: bad})                              # enable_on_start, dry_run false
    message = str(refused.value)
    assert '\n' not in message and name in message and 'write' in message, message
    rig = rigs.made[-1]
    time.sleep(0.2)
    # Only the arm's own feedback crossed the bus: no enable, mode or motion frame.
    assert rig.listener.frames and rig.listener.from_driver() == []
    np.testing.assert_allclose(rig.plant.read_state(), READY, atol=1e-6)


def test_vla_launch_and_the_executable_refuse_a_bad_parameter_in_one_line(tmp_path, capsys):
    launch_file = tmp_path / 'driver.launch.yaml'
    launch_file.write_text(
        'launch:\n- node:\n    pkg: vla_nodes\n    exec: arm_driver_node\n    param:\n'
        '    - name: control_rate_hz\n      value: 0.0\n    - name: can_interface\n'
        '      value: virtual\n')
    assert launch.main([str(launch_file), '--duration', '1']) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'control_rate_hz = 0.0 refused' in err, err
    with pytest.raises(SystemExit) as stopped:
        run(ArmDriverNode, args=['arm_driver_node', '--ros-args', '-p', 'max_step_rad:=10.0'])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'max_step_rad = 10.0 refused' in err, err
    assert 'Traceback' not in err


# --- item 15: udp_multicast stays on this host ------------------------------------------------

def _network_address():
    """This host's address on its network (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(('198.51.100.1', 9))           # TEST-NET-2: only picks the route
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith('127.') else address


def _drain(bus) -> list:
    frames = []
    while (msg := bus.recv(0.3)) is not None:
        frames.append(bytes(msg.data))
    return frames


def test_udp_multicast_buses_hear_this_host_only(monkeypatch):
    port = random.randrange(40000, 60000)
    monkeypatch.setenv('CAN_CONFIG', json.dumps({'port': port}))
    group = f'239.74.{random.randrange(256)}.{random.randrange(1, 255)}'
    # This host's network address stands in for the network; without one (a container with
    # only lo), loopback unicast still shows what a 0.0.0.0 socket takes and a bound one not.
    address = _network_address() or '127.0.0.1'
    rogue = can.Message(arbitration_id=JOINT_FEEDBACK_12, is_extended_id=False,
                        data=struct.pack('>ii', mdeg(2.0), mdeg(READY[1])))

    def inject():  # another host sends joint feedback (joint1 = 2.0 rad) to this host's port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(5):
                sender.sendto(pack_message(rogue), (address, port))

    guarded, local_peer = open_bus('udp_multicast', group), open_bus('udp_multicast', group)
    try:
        assert guarded._multicast._socket.getsockname() == (group, port)   # not 0.0.0.0
        inject()
        assert _drain(guarded) + _drain(local_peer) == []    # the buses sim_node opens
        local_peer.send(can.Message(arbitration_id=0x151, is_extended_id=False, data=bytes(8)))
        assert _drain(guarded) == [bytes(8)]             # while this host's frames flow
    finally:
        guarded.shutdown()
        local_peer.shutdown()
    stock = can.Bus(interface='udp_multicast', channel=group, receive_own_messages=False)
    try:
        inject()
        assert bytes(rogue.data) in _drain(stock)        # python-can's own bus: a real attack
    finally:
        stock.shutdown()
    # The driver's side: PiperArm binds its bus the same way, and drives the simulated arm.
    bus = open_bus('udp_multicast', group)
    plant = KinematicPlant(READY)
    arm = PiperArm(PiperConfig(can_name=f'udp_faults{next(_channels)}',
                               interface='udp_multicast', channel=group, connect_timeout=1.0))
    try:
        with PiperFirmware(bus, plant.read_state, plant.set_targets):
            arm.connect()
            sdk_bus = arm._sdk.GetCanBus().recv_bus.bus
            assert sdk_bus._multicast._socket.getsockname() == (group, port)
            arm.enable(timeout=1.0)
            sent = arm.send(READY + [0.1, 0, 0, 0, 0, 0, 0])
            assert wait_for(lambda: np.allclose(arm.read().positions, sent, atol=2e-3), 2.0)
    finally:
        arm.close()
        bus.shutdown()
