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

"""PiperArm through the real piper_sdk against the simulated firmware on python-can buses.

No mocks: every command is a CAN frame encoded by piper_sdk, sent over a python-can `virtual`
(or `udp_multicast`) bus and decoded by `PiperFirmware`; every reading is a feedback frame the
SDK decodes. Each test uses its own channel and can_name, because the SDK keeps one object per
can_name for the life of the process.
"""

import dataclasses
import itertools
import json
import random
import struct
import threading
import time

import can
import numpy as np
import pytest

from vla_nodes import contract
from vla_nodes.arm.piper import PiperArm, PiperConfig, PiperConnectionError, wait_for
from vla_nodes.arm.piper_protocol import MICROMETRE_PER_M, MILLIDEG_PER_RAD
from vla_nodes.sim.kinematic_plant import KinematicPlant
from vla_nodes.sim.leader import LeaderArm
from vla_nodes.sim.piper_can import PiperFirmware
from vla_nodes.sim.virtual_can import FastVirtualBus

_IDS = itertools.count()
HOME = np.array(contract.READY_POSITIONS)           # (0, 1.2, -1, 0, 0.6, 0, 0.05)
TARGET = np.array([0.5, 1.2, -1.0, 0.0, 0.6, 0.0, 0.05])
ONE_UNIT = 1.0 / MILLIDEG_PER_RAD                   # feedback resolution, 0.001 deg in rad
# Names of the threads the SDK and the firmware start; all must be gone after the tests.
THREAD_TAGS = ('(ReadCan)', '(CanMonitor)', '(_calculate_fps)', 'PiperFirmware')
# piper_sdk 0.6.2 still passes python-can's deprecated `bustype`.
pytestmark = pytest.mark.filterwarnings('ignore:.*bustype.*:DeprecationWarning')


@pytest.fixture
def channel():
    return f'vpiper-{next(_IDS)}-{random.randrange(1 << 30)}'


@pytest.fixture
def bus(channel):
    bus = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
    yield bus
    bus.shutdown()


@pytest.fixture
def plant():
    return KinematicPlant(HOME)


@pytest.fixture
def firmware(bus, plant):
    with PiperFirmware(bus, plant.read_state, plant.set_targets) as fw:
        yield fw


@pytest.fixture
def arm(channel, firmware):
    arm = PiperArm(PiperConfig(can_name=channel, interface='virtual', connect_timeout=1.0))
    arm.connect()
    yield arm
    arm.close()


@pytest.fixture(scope='module', autouse=True)
def no_threads_left():
    """All SDK and firmware threads end (the SDK reader within its 1 s receive timeout)."""
    yield
    assert wait_for(lambda: not _live_threads(), 2.0), _live_threads()


def _live_threads() -> list:
    return [t.name for t in threading.enumerate() if any(tag in t.name for tag in THREAD_TAGS)]


def _wait_frame(fw, can_id, predicate=lambda data: True, timeout=1.0) -> bytes:
    assert wait_for(lambda: fw.last_frame(can_id) is not None
                    and predicate(fw.last_frame(can_id)), timeout), hex(can_id)
    return fw.last_frame(can_id)


def _converged(arm, q, atol=ONE_UNIT) -> bool:
    fb = arm.read()
    return fb.valid and np.allclose(fb.positions, q, rtol=0.0, atol=atol)


def test_connect_and_enable(arm, firmware):
    assert arm.read().positions.shape == (7,)
    arm.enable(timeout=1.0)
    assert wait_for(lambda: arm.status()['ctrl_mode'] == 0x01, 1.0)
    status = arm.status()
    assert status['mode_feed'] == 0x01                      # MOVE J
    assert status['motors_enabled'] == (True,) * 6
    assert status['arm_status'] == 0x00 and status['err_code'] == 0
    assert status['is_ok'] is True and status['can_fps'] > 0
    assert firmware.targets().enabled is True


def test_send_puts_sdk_units_on_the_wire(arm, firmware):
    arm.enable(timeout=1.0)
    sent = arm.send(TARGET)
    joints = _wait_frame(firmware, 0x155)
    assert struct.unpack('>ii', joints) == (28648, 68755)   # 0.5 rad, 1.2 rad in 0.001 deg
    assert struct.unpack('>ii', _wait_frame(firmware, 0x156)) == (-57296, 0)
    assert struct.unpack('>ii', _wait_frame(firmware, 0x157)) == (34377, 0)
    gripper = _wait_frame(firmware, 0x159, lambda d: struct.unpack('>i', d[:4])[0] == 50000)
    assert struct.unpack('>iHBB', gripper) == (50000, 1000, 0x01, 0x00)  # 0.001 mm, 0.001 N/m
    # send() returns what the units can express, not what was asked.
    assert sent[0] == 28648 / MILLIDEG_PER_RAD
    assert sent[6] == 50000 / MICROMETRE_PER_M == 0.05


def test_send_rejects_non_finite_or_misshaped_commands(arm):
    with pytest.raises(ValueError):
        arm.send([float('nan')] * 7)
    with pytest.raises(ValueError):
        arm.send([0.0] * 6)


def test_feedback_converges_to_the_command(arm):
    arm.enable(timeout=1.0)
    sent = arm.send(TARGET)
    # 0.5 rad at 50 % of 3 rad/s takes 0.33 s.
    assert wait_for(lambda: _converged(arm, sent), 2.0), arm.read()
    assert wait_for(lambda: arm.status()['motion_status'] == 0x00, 1.0)


def test_first_frames_are_invalid_until_joint_feedback_arrives(channel, bus, plant):
    with PiperFirmware(bus, plant.read_state, plant.set_targets) as fw:
        fw.joint_feedback = False    # status frames only, like an arm in leader mode
        arm = PiperArm(PiperConfig(can_name=channel, interface='virtual', connect_timeout=1.0))
        arm.connect()
        try:
            time.sleep(0.25)         # two of the SDK's 0.1 s rate windows
            fb = arm.read()
            assert fb.valid is False and fb.stamp == 0.0
            np.testing.assert_array_equal(fb.positions, np.zeros(7))
            fw.joint_feedback = True
            assert wait_for(lambda: _converged(arm, HOME), 1.0), arm.read()
            fw.stop()                # the arm falls silent: feedback turns stale
            assert wait_for(lambda: not arm.read().valid, 1.0)
        finally:
            arm.close()


def test_emergency_stop_halts_motion_while_commands_keep_coming(arm, firmware):
    arm.enable(timeout=1.0)
    far = HOME + np.array([1.5, 0, 0, 0, 0, 0, 0])
    arm.send(far)
    assert wait_for(lambda: arm.read().positions[0] > 0.1, 1.0)
    arm.emergency_stop()
    assert wait_for(lambda: arm.status()['arm_status'] == 0x01, 1.0)
    time.sleep(0.05)
    held = arm.read().positions
    assert held[0] < 1.0
    for _ in range(30):
        arm.send(far)
        time.sleep(0.01)
    np.testing.assert_allclose(arm.read().positions, held, rtol=0.0, atol=ONE_UNIT)
    assert firmware.targets().estopped is True
    arm.resume(timeout=1.0)
    assert arm.status()['arm_status'] == 0x00
    sent = arm.send(HOME)
    assert wait_for(lambda: _converged(arm, sent), 2.0), arm.read()


def test_disabled_arm_does_not_move(arm, firmware):
    for _ in range(20):                                # never enabled
        arm.send(TARGET)
        time.sleep(0.01)
    arm.enable(timeout=1.0)
    arm.disable()
    assert wait_for(lambda: arm.status()['motors_enabled'] == (False,) * 6, 1.0)
    for _ in range(20):
        arm.send(TARGET)
        time.sleep(0.01)
    np.testing.assert_allclose(arm.read().positions, HOME, rtol=0.0, atol=ONE_UNIT)
    assert firmware.targets().enabled is False


def test_leader_frames_are_readable(channel, arm):
    """Regressions pinned: the SDK's own commands must not read back as leader frames."""
    arm.enable(timeout=1.0)
    arm.send(HOME)
    time.sleep(0.05)
    assert arm.read_leader() is None
    leader = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
    mdeg, stroke = (10000, 20000, -30000, 0, 15000, 5000), 30000
    frames = [(0x155, struct.pack('>ii', *mdeg[:2])), (0x156, struct.pack('>ii', *mdeg[2:4])),
              (0x157, struct.pack('>ii', *mdeg[4:])),
              (0x159, struct.pack('>iHBB', stroke, 1000, 0x01, 0x00))]
    try:
        for _ in range(30):                            # a leader streams at ~100 Hz
            for can_id, data in frames:
                leader.send(can.Message(arbitration_id=can_id, data=data, is_extended_id=False))
            time.sleep(0.01)
        fb = arm.read_leader()
    finally:
        leader.shutdown()
    assert fb.valid is True
    expected = np.append(np.array(mdeg) / MILLIDEG_PER_RAD, 0.03)
    np.testing.assert_allclose(fb.positions, expected, rtol=0.0, atol=1e-12)


def test_feedback_frame_layout(channel, bus, plant):
    pose = np.array([0.1, -0.2, 0.3, 0.5, -0.25, 1.0])  # m, rad
    listener = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
    seen = {}
    try:
        with PiperFirmware(bus, plant.read_state, fk=lambda q6: pose):
            deadline = time.monotonic() + 1.0
            while len(seen) < 14 and time.monotonic() < deadline:
                msg = listener.recv(0.1)
                if msg is not None:
                    seen[msg.arbitration_id] = bytes(msg.data)
    finally:
        listener.shutdown()
    assert struct.unpack('>ii', seen[0x2A2]) == (100000, -200000)   # 0.001 mm
    assert struct.unpack('>ii', seen[0x2A3]) == (300000, 28648)     # 0.001 mm, 0.001 deg
    assert struct.unpack('>ii', seen[0x2A4]) == (-14324, 57296)     # 0.001 deg
    assert struct.unpack('>ii', seen[0x2A5]) == (0, 68755)
    assert struct.unpack('>ihBx', seen[0x2A8]) == (50000, 0, 0x80)  # homed, not enabled
    assert struct.unpack('>6BH', seen[0x2A1]) == (0, 0, 0, 0, 0, 0, 0)  # standby, reached
    assert struct.unpack('>HhbBH', seen[0x261]) == (240, 30, 30, 0x00, 100)


def test_connect_without_firmware_times_out_with_a_clear_error(channel):
    arm = PiperArm(PiperConfig(can_name=channel, interface='virtual', connect_timeout=0.3))
    start = time.monotonic()
    with pytest.raises(PiperConnectionError, match='no status frame') as err:
        arm.connect()
    assert time.monotonic() - start < 1.0
    assert 'can_activate.sh' in str(err.value) and 'bitrate' in str(err.value)
    with pytest.raises(PiperConnectionError, match='connect'):
        arm.enable(timeout=0.1)


def test_enable_times_out_when_the_arm_is_silent(arm, firmware):
    firmware.stop()
    start = time.monotonic()
    with pytest.raises(PiperConnectionError, match='motors not enabled'):
        arm.enable(timeout=0.3)
    assert time.monotonic() - start < 1.0


def test_reconnect_reuses_the_sdk_singleton_without_trusting_old_frames(channel, arm, firmware):
    """Regressions pinned: the singleton's cached status must not satisfy a later connect()."""
    arm.close()
    # Generous timeout: the SDK's old reader thread can hold the bus for up to 1 s after close.
    again = PiperArm(dataclasses.replace(arm.config, connect_timeout=5.0))
    again.connect()                                    # the firmware still answers
    assert again.read().positions.shape == (7,)
    again.close()
    firmware.stop()
    silent = PiperArm(PiperConfig(can_name=channel, interface='virtual', connect_timeout=0.3))
    with pytest.raises(PiperConnectionError, match='no status frame'):
        silent.connect()


@pytest.mark.parametrize('judge_flag', [True, False])
def test_missing_socketcan_port_gives_a_clear_error(judge_flag):
    name = f'vlamiss{next(_IDS)}'
    arm = PiperArm(PiperConfig(can_name=name, judge_flag=judge_flag, connect_timeout=0.3))
    with pytest.raises(PiperConnectionError, match='can_activate.sh'):
        arm.connect()


def test_udp_multicast_bus(monkeypatch):
    # A private port (python-can reads CAN_CONFIG): on Linux, every udp_multicast group on one
    # port hears every other, so a fixed port would mix with other simulators on this host.
    monkeypatch.setenv('CAN_CONFIG', json.dumps({'port': random.randrange(40000, 60000)}))
    group = f'239.74.{random.randrange(256)}.{random.randrange(1, 255)}'
    bus = can.Bus(interface='udp_multicast', channel=group, receive_own_messages=False)
    plant = KinematicPlant(HOME)
    arm = PiperArm(PiperConfig(can_name=f'udp{next(_IDS)}', interface='udp_multicast',
                               channel=group, connect_timeout=1.0))
    try:
        with PiperFirmware(bus, plant.read_state, plant.set_targets):
            arm.connect()
            arm.enable(timeout=1.0)
            sent = arm.send(TARGET)
            assert wait_for(lambda: _converged(arm, sent), 2.0), arm.read()
    finally:
        arm.close()
        bus.shutdown()


def test_config_rejects_values_the_sdk_would_truncate():
    with pytest.raises(ValueError, match='speed_rate'):
        PiperConfig(speed_rate=101)
    with pytest.raises(ValueError, match='gripper_effort'):
        PiperConfig(gripper_effort=-1)


# --- bad frames ----------------------------------------------------------------------------------

def test_malformed_frames_are_logged_ignored_and_the_firmware_keeps_running(channel, arm,
                                                                            firmware, caplog):
    raw = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
    try:
        with caplog.at_level('WARNING', logger='vla_nodes.sim.piper_can'):
            for _ in range(3):  # a short JointCtrl that would set joint 1 to 90 deg if padded
                raw.send(can.Message(arbitration_id=0x155, data=b'\x00\x01\x5f\x90',
                                     is_extended_id=False))
            raw.send(can.Message(arbitration_id=0x123, data=bytes(8), is_extended_id=False))
            raw.send(can.Message(arbitration_id=0x155, data=bytes(8), is_extended_id=True))
            assert wait_for(lambda: sum(firmware.ignored_frames.values()) == 5, 1.0)
    finally:
        raw.shutdown()
    assert firmware.ignored_frames == {0x155: 4, 0x123: 1}
    text = caplog.text
    assert 'ignored CAN frame 0x155 (4 data bytes; Piper commands carry 8)' in text
    assert text.count('4 data bytes') == 1  # logged once, then counted
    assert '0x123 (not a Piper command' in text and 'extended 29-bit id' in text
    assert firmware.last_frame(0x155) is None
    # Still running: it answers, enables and moves.
    arm.enable(timeout=1.0)
    sent = arm.send(TARGET)
    assert wait_for(lambda: _converged(arm, sent), 2.0), arm.read()


# --- the leader arm ------------------------------------------------------------------------------

def test_leader_frames_drive_the_follower_and_read_back_through_the_sdk(channel, arm, firmware):
    leader_bus = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
    leader = LeaderArm(leader_bus)
    try:
        leader.enable()  # the follower needs no enable() from its driver
        assert wait_for(lambda: firmware.targets().enabled, 1.0)
        for _ in range(40):  # a leader streams at 50 Hz; this one holds still
            sent = leader.send(TARGET + [0, 0, 0, 0, 0, 0, -0.02])
            time.sleep(0.02)
        assert leader.drain() < 50  # send() drains what the bus queued meanwhile
        assert wait_for(lambda: _converged(arm, sent), 2.0), arm.read()
        lead = arm.read_leader()
    finally:
        leader_bus.shutdown()
    assert lead.valid
    np.testing.assert_array_equal(lead.positions, sent)  # bit for bit what went on the wire
    assert sent[6] == 0.03
    assert struct.unpack('>3B5x', firmware.last_frame(0x151)) == (0x01, 0x01, 100)  # CAN, MOVE J
    with pytest.raises(ValueError, match='7 finite values'):
        leader.send([0.0] * 6)


# --- the MuJoCo arm behind the firmware, through the SDK -----------------------------------------

class _Stepper:
    """Steps a SimWorld in real time toward the firmware's setpoint, as sim_node does."""

    def __init__(self, world):
        self.world = world
        self.firmware = None
        self.lock = threading.Lock()
        self.paused = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def read_state(self):
        with self.lock:
            return self.world.joint_positions()

    def start(self, firmware):
        self.firmware = firmware
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.wait(0.005):
            if not self.paused.is_set():
                with self.lock:
                    self.world.set_targets(self.firmware.targets().positions)
                    self.world.step(0.005)


@pytest.fixture
def mujoco_arm(channel, bus):
    from vla_nodes.arm import kinematics
    from vla_nodes.sim.world import SimWorld
    stepper = _Stepper(SimWorld())
    fk = lambda q6: kinematics.pose_to_xyz_rpy(kinematics.forward_kinematics(q6))  # noqa: E731
    firmware = PiperFirmware(bus, stepper.read_state, fk=fk).start()
    stepper.start(firmware)
    arm = PiperArm(PiperConfig(can_name=channel, interface='virtual', connect_timeout=1.0))
    arm.connect()
    yield arm, stepper, firmware
    arm.close()
    stepper.stop()
    firmware.stop()


def _end_pose_frames(channel) -> dict:
    """The next 0x2A2-0x2A4 frames decoded by piper_sdk's own parser: {field: SDK units}."""
    from piper_sdk.piper_msgs.msg_v2 import PiperMessage
    from piper_sdk.protocol.protocol_v2 import C_PiperParserV2
    parser, message = C_PiperParserV2(), PiperMessage()
    listener = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
    seen = set()
    try:
        while seen != {0x2A2, 0x2A3, 0x2A4}:
            frame = listener.recv(1.0)
            if frame.arbitration_id in (0x2A2, 0x2A3, 0x2A4):
                parser.DecodeMessage(frame, message)
                seen.add(frame.arbitration_id)
    finally:
        listener.shutdown()
    pose = message.arm_end_pose
    return np.array([pose.X_axis, pose.Y_axis, pose.Z_axis, pose.RX_axis, pose.RY_axis,
                     pose.RZ_axis], dtype=np.float64)


def test_sdk_feedback_equals_the_mujoco_arm_state_and_its_fk(channel, mujoco_arm):
    from vla_nodes.arm import kinematics
    arm, stepper, _ = mujoco_arm
    arm.enable(timeout=1.0)
    sent = arm.send(TARGET + [0, 0.1, -0.2, 0.3, -0.2, 0.4, -0.02])
    assert wait_for(lambda: _converged(arm, sent, atol=2e-3), 3.0), arm.read()
    stepper.paused.set()  # freeze the body, then let fresh feedback frames arrive
    time.sleep(0.05)
    stamp = arm.read().stamp
    assert wait_for(lambda: arm.read().stamp > stamp, 1.0)
    state = stepper.world.joint_positions()
    # Within half a unit of the SDK's fixed point (0.001 deg, 0.001 mm), plus float noise.
    quantum = np.array([0.5 / MILLIDEG_PER_RAD] * 6 + [0.5 / MICROMETRE_PER_M]) + 1e-12
    assert np.all(np.abs(arm.read().positions - state) <= quantum), arm.read().positions - state
    expected = kinematics.pose_to_xyz_rpy(stepper.world.ee_pose())  # the MuJoCo flange site
    decoded = _end_pose_frames(channel)
    np.testing.assert_allclose(decoded[:3] / 1e6, expected[:3], rtol=0.0, atol=1e-6)  # 0.001 mm
    np.testing.assert_allclose(np.radians(decoded[3:] / 1000.0), expected[3:], rtol=0.0,
                               atol=np.radians(0.001))


def test_emergency_stop_freezes_the_mujoco_arm(mujoco_arm):
    arm, stepper, firmware = mujoco_arm
    arm.enable(timeout=1.0)
    far = HOME + np.array([1.5, 0, 0, 0, 0, 0, 0])
    arm.send(far)
    assert wait_for(lambda: stepper.read_state()[0] > 0.15, 2.0)
    arm.emergency_stop()
    assert wait_for(lambda: firmware.targets().estopped, 1.0)
    time.sleep(0.2)  # the servos brake the arm's momentum
    held = stepper.read_state()
    for _ in range(30):  # commands keep coming; the arm stays put
        arm.send(far)
        time.sleep(0.01)
    now = stepper.read_state()
    np.testing.assert_allclose(now, held, rtol=0.0, atol=2e-3)
    assert now[0] < far[0] - 0.5


def test_a_burst_reaches_every_other_reader_in_order_as_single_sends_would():
    sender = FastVirtualBus(channel='burst_test', receive_own_messages=False)
    readers = [can.Bus(interface='virtual', channel='burst_test'),
               can.Bus(interface='virtual', channel='burst_test', rx_queue_size=8)]
    try:
        frames = [(0x2A1 + i, bytes([i] * 8)) for i in range(3)]
        sender.send_burst(frames)
        sender.send(can.Message(arbitration_id=0x2A1, data=bytes(8), is_extended_id=False))
        for reader in readers:
            got = [reader.recv(timeout=1.0) for _ in range(4)]
            assert [(m.arbitration_id, bytes(m.data), m.is_rx, m.dlc, m.is_extended_id)
                    for m in got] == [(can_id, data, True, 8, False)
                                      for can_id, data in frames + frames[:1]]
            assert reader.recv(timeout=0.0) is None
        assert sender.recv(timeout=0.0) is None  # not its own frames
    finally:
        for bus in [sender] + readers:
            bus.shutdown()


def test_the_driver_side_filter_sends_to_a_virtual_bus_what_python_can_would():
    # FrameFilter.send skips VirtualBus.send's deepcopy; the receiver must not see a difference.
    from vla_nodes.arm.can_bus import FrameFilter
    stock = can.Bus(interface='virtual', channel='filter_send_test', receive_own_messages=False)
    fast = FrameFilter(can.Bus(interface='virtual', channel='filter_send_test',
                               receive_own_messages=False))
    reader = can.Bus(interface='virtual', channel='filter_send_test')
    try:
        msg = can.Message(arbitration_id=0x155, data=bytes(range(8)), is_extended_id=False)
        stock.send(msg)
        fast.send(msg)
        a, b = reader.recv(timeout=1.0), reader.recv(timeout=1.0)
        slots = ('arbitration_id', 'is_extended_id', 'is_remote_frame', 'is_error_frame',
                 'channel', 'dlc', 'data', 'is_fd', 'is_rx', 'bitrate_switch',
                 'error_state_indicator')
        assert [getattr(b, k) for k in slots] == [getattr(a, k) for k in slots]
        assert b.data is not msg.data  # a copy, as the stock bus gives
        # Each sender hears the other's frame once, never its own.
        assert stock.recv(timeout=1.0).data == msg.data and stock.recv(timeout=0.0) is None
        assert fast.recv(timeout=1.0).data == msg.data and fast.recv(timeout=0.0) is None
    finally:
        for bus in (stock, fast, reader):
            bus.shutdown()
