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

"""arm_driver_node on the local backend, checked down to the CAN frames the arm receives.

The driver talks through the real piper_sdk to the simulated firmware (`sim/piper_can.py`) on a
python-can virtual bus; a first-order plant stands in for the arm's body (no MuJoCo). Frame
checks read `PiperFirmware.last_frame()`: what the arm would have received, in SDK units.
"""

import itertools
import struct

import can
import numpy as np
import pytest

from graph import Probe, spin  # test/graph.py
from vla_nodes import contract, ros
from vla_nodes.arm import kinematics
from vla_nodes.arm.piper_protocol import GRIPPER_CTRL, JOINT_CTRL, MILLIDEG_PER_RAD, MOTOR_ENABLE
from vla_nodes.nodes.arm_driver_node import ArmDriverNode, JOINT_COMMAND_TOPIC
from vla_nodes.nodes.diagnostics import ERROR, OK, WARN
from vla_nodes.ros.msgs import (diagnostic_msgs, geometry_msgs, rosgraph_msgs, sensor_msgs,
                                std_srvs, trajectory_msgs)
from vla_nodes.sim.kinematic_plant import KinematicPlant
from vla_nodes.sim.piper_can import PiperFirmware

pytestmark = [
    pytest.mark.skipif(ros.BACKEND != 'local', reason='drives the local backend'),
    pytest.mark.filterwarnings('ignore:.*bustype.*:DeprecationWarning'),
]
_channels = itertools.count()
READY = np.array(contract.READY_POSITIONS)          # joint1 0.0 ... gripper 0.05 m
JOINT_CTRL_12 = JOINT_CTRL[0]


def fk(q6):
    return kinematics.pose_to_xyz_rpy(kinematics.forward_kinematics(q6))


class Rig:
    """A simulated Piper on its own virtual CAN channel, and the driver connected to it."""

    def __init__(self, ctx, start=READY, joint_feedback=True, namespace=None, **params):
        self.ctx = ctx
        self.channel = f'test_arm_driver_{next(_channels)}'
        self.bus = can.Bus(interface='virtual', channel=self.channel,
                           receive_own_messages=False)
        self.plant = KinematicPlant(start)
        self.firmware = PiperFirmware(self.bus, self.plant.read_state, self.plant.set_targets,
                                      fk=fk)
        self.firmware.joint_feedback = joint_feedback
        self.firmware.start()
        params = {'can_name': self.channel, 'can_interface': 'virtual', 'judge_flag': False,
                  'dry_run': False, 'enable_on_start': True, **params}
        self.driver = ArmDriverNode(
            context=ctx, namespace=namespace,
            parameter_overrides=[ros.Parameter(k, value=v) for k, v in params.items()])

    def close(self):
        self.driver.destroy_node()
        self.firmware.stop()
        self.bus.shutdown()

    def frame(self, can_id):
        data = self.firmware.last_frame(can_id)
        return None if data is None else struct.unpack('>ii', data)


@pytest.fixture
def rigs(ctx):
    made = []

    def make(**kwargs):
        made.append(Rig(ctx, **kwargs))
        if kwargs.get('joint_feedback', True):  # chunks need believed feedback (~50 ms)
            spin(ctx, [made[-1].driver], 5.0, until=lambda: made[-1].driver._control.guard.trusted)
        return made[-1]

    yield make
    for rig in made:
        rig.close()


def chunk_msg(driver, positions, dt=0.1, names=contract.JOINT_NAMES):
    msg = trajectory_msgs.JointTrajectory(joint_names=list(names))
    msg.header.stamp = driver.get_clock().now().to_msg()
    for k, q in enumerate(positions):
        point = trajectory_msgs.JointTrajectoryPoint(positions=[float(v) for v in q])
        point.time_from_start.sec, point.time_from_start.nanosec = divmod(
            int((k + 1) * dt * 1e9), 10**9)
        msg.points.append(point)
    return msg


def statuses(probe, name='/arm_driver_node'):
    return [s for array in probe.msgs for s in array.status if s.name == name]


def value(status, key):
    return next((kv.value for kv in status.values if kv.key == key), None)


def call(ctx, nodes, client, request, timeout=6.0):
    future = client.call_async(request)
    assert spin(ctx, nodes, timeout, until=future.done), 'service did not answer'
    return future.result()


# --- following commands ----------------------------------------------------------------------

def test_follows_a_chunk_publishing_state_command_end_pose_and_diagnostics(ctx, rigs, tester):
    rig = rigs()
    states = Probe(tester, sensor_msgs.JointState, contract.JOINT_STATES_TOPIC)
    commands = Probe(tester, sensor_msgs.JointState, '/arm_driver_node/command')
    poses = Probe(tester, geometry_msgs.PoseStamped, '/arm_driver_node/end_pose')
    diags = Probe(tester, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    pub = tester.create_publisher(trajectory_msgs.JointTrajectory,
                                  contract.ACTION_CHUNK_TOPIC, 10)
    target = READY + [0.2, 0.1, -0.1, 0.0, 0.0, 0.0, -0.02]
    spin(ctx, [rig.driver, tester], 0.1)
    pub.publish(chunk_msg(rig.driver, np.linspace(READY, target, 5)))
    one_unit = 1.0 / MILLIDEG_PER_RAD

    def arrived():  # what the probes received may lag behind the arm on a busy machine
        return (np.allclose(rig.plant.read_state(), target, atol=2e-3)
                and bool(states.msgs) and bool(commands.msgs)
                and np.allclose(states.msgs[-1].position, target, atol=2e-3)
                and np.allclose(commands.msgs[-1].position, target, atol=one_unit))
    assert spin(ctx, [rig.driver, tester], 6.0, until=arrived), rig.plant.read_state()
    assert len(states.msgs) > 50 and states.msgs[-1].name == list(contract.JOINT_NAMES)

    def pose_error():
        """End pose (0x2A2-0x2A4 -> m, quaternion) against FK of where the arm is now."""
        expected = kinematics.pose_to_xyz_quat(kinematics.forward_kinematics(
            rig.plant.read_state()[:6]))
        p, o = poses.msgs[-1].pose.position, poses.msgs[-1].pose.orientation
        return (np.abs(np.subtract([p.x, p.y, p.z], expected[:3])).max(),
                1.0 - abs(np.dot([o.x, o.y, o.z, o.w], expected[3:])))
    assert spin(ctx, [rig.driver, tester], 6.0, until=lambda: any(
        value(s, 'chunks') == '1' for s in statuses(diags)) and poses.msgs and (
        pose_error()[0] < 1e-4 and pose_error()[1] < 1e-9)), pose_error()
    assert poses.msgs[-1].header.frame_id == 'base_link'
    last = statuses(diags)[-1]
    assert last.level == OK and last.hardware_id == rig.channel
    assert float(value(last, 'can_fps')) > 0             # ~1700 frames/s from the firmware
    assert value(last, 'is_ok') == 'True' and value(last, 'bus_state') == 'ACTIVE'
    assert value(last, 'arm_status') == '0x00 normal' and value(last, 'err_code') == '0x0000'
    assert value(last, 'motors_enabled') == '111111' and int(value(last, 'chunks')) == 1
    assert float(value(last, 'period_p50_ms')) > 0.0    # timing figures: bench_driver.py


@pytest.mark.parametrize('bad', ['nan', 'missing_joint'])
def test_bad_chunks_never_move_the_arm_and_the_next_good_one_runs(ctx, rigs, tester, bad):
    rig = rigs()
    diags = Probe(tester, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    pub = tester.create_publisher(trajectory_msgs.JointTrajectory,
                                  contract.ACTION_CHUNK_TOPIC, 10)
    spin(ctx, [rig.driver, tester], 0.1)
    q = np.tile(READY + [0.3, 0, 0, 0, 0, 0, 0], (3, 1))
    if bad == 'nan':
        q[1, 0] = np.nan
        pub.publish(chunk_msg(rig.driver, q))
    else:
        pub.publish(chunk_msg(rig.driver, q[:, :6], names=contract.ARM_JOINTS))
    assert spin(ctx, [rig.driver, tester], 6.0, until=lambda: any(
        s.level == WARN and 'rejected' in s.message for s in statuses(diags)))
    np.testing.assert_allclose(rig.plant.read_state(), READY, atol=1e-4)
    assert rig.frame(JOINT_CTRL_12) is None                 # nothing was ever sent
    good = READY - [0.1, 0, 0, 0, 0, 0, 0]
    pub.publish(chunk_msg(rig.driver, [good]))
    assert spin(ctx, [rig.driver, tester], 6.0,
                until=lambda: abs(rig.plant.read_state()[0] - good[0]) < 2e-3)


def test_command_and_end_pose_are_built_only_while_someone_subscribes(ctx, rigs, tester,
                                                                      monkeypatch):
    # Lazy publishers, as pose_node's: vla-eval's graph reads neither topic, at 100 Hz.
    rig = rigs()
    published = []
    publish = ctx.bus.publish
    monkeypatch.setattr(ctx.bus, 'publish', lambda pub, msg: (published.append(pub.topic),
                                                              publish(pub, msg)))
    pub = tester.create_publisher(sensor_msgs.JointState, JOINT_COMMAND_TOPIC, 10)
    tester.create_timer(0.05, lambda: pub.publish(
        sensor_msgs.JointState(name=list(contract.JOINT_NAMES), position=list(READY))))
    spin(ctx, [rig.driver, tester], 0.5)
    lazy = ('/arm_driver_node/command', '/arm_driver_node/end_pose')
    assert published.count(contract.JOINT_STATES_TOPIC) > 10  # ticks ran and sent commands
    assert rig.driver._control.counts['sent'] > 10
    assert not [t for t in published if t in lazy]
    commands = Probe(tester, sensor_msgs.JointState, lazy[0])
    poses = Probe(tester, geometry_msgs.PoseStamped, lazy[1])
    assert spin(ctx, [rig.driver, tester], 5.0, until=lambda: commands.msgs and poses.msgs)
    np.testing.assert_allclose(commands.msgs[-1].position, READY, atol=1e-3)


def test_a_single_joint_state_target_takes_the_same_safe_path(ctx, rigs, tester):
    rig = rigs()
    diags = Probe(tester, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    pub = tester.create_publisher(sensor_msgs.JointState, JOINT_COMMAND_TOPIC, 10)
    target = READY + [-0.2, 0, 0, 0, 0.1, 0, 0]
    # A teleop stream at 20 Hz (the watchdog holds the arm 0.5 s after the last target).
    stream = tester.create_timer(0.05, lambda: pub.publish(
        sensor_msgs.JointState(name=list(contract.JOINT_NAMES), position=list(target))))
    assert spin(ctx, [rig.driver, tester], 6.0,
                until=lambda: np.allclose(rig.plant.read_state(), target, atol=2e-3))
    stream.cancel()
    pub.publish(sensor_msgs.JointState(name=list(contract.JOINT_NAMES),
                                       position=[float('nan')] * 7))
    assert spin(ctx, [rig.driver, tester], 6.0, until=lambda: any(
        'joint command rejected' in s.message for s in statuses(diags)))
    np.testing.assert_allclose(rig.plant.read_state(), target, atol=2e-3)
    assert value(statuses(diags)[-1], 'rejected') == '1'


# --- units and limits at the CAN frame level ----------------------------------------------------

def test_radians_and_metres_become_sdk_units_in_the_frames(ctx, rigs, tester):
    rig = rigs(start=READY + [0, 0, 0, 0, 0, 0, -0.02])     # gripper at 0.03 m
    pub = tester.create_publisher(trajectory_msgs.JointTrajectory,
                                  contract.ACTION_CHUNK_TOPIC, 10)
    target = READY + [0.5, 0, 0, 0, 0, 0, 0]                # joint1 0.5 rad, gripper 0.05 m
    spin(ctx, [rig.driver, tester], 0.1)
    pub.publish(chunk_msg(rig.driver, [target, target], dt=0.5))
    assert spin(ctx, [rig.driver, tester], 6.0,
                until=lambda: rig.frame(JOINT_CTRL_12) == (28648, 68755))   # 0.001 deg
    stroke, effort, code, _ = struct.unpack('>iHBB', rig.firmware.last_frame(GRIPPER_CTRL))
    assert (stroke, effort, code) == (50000, 1000, 0x01)                     # 0.001 mm
    assert spin(ctx, [rig.driver, tester], 6.0,
                until=lambda: np.allclose(rig.plant.read_state(), target, atol=2e-3))


def test_limits_clamp_in_the_frames_and_can_only_be_narrowed(ctx, rigs, tester):
    upper = [getattr(contract.PIPER_LIMITS[n], 'upper') for n in contract.JOINT_NAMES]
    upper[0] = 0.3            # narrowed: joint1 stays below 0.3 rad
    upper[1] = 4.0            # wider than the contract's 3.14: ignored
    rig = rigs(upper_limits=upper)
    pub = tester.create_publisher(trajectory_msgs.JointTrajectory,
                                  contract.ACTION_CHUNK_TOPIC, 10)
    beyond = READY.copy()
    beyond[0], beyond[6] = 3.0, 0.09                        # past both limits
    spin(ctx, [rig.driver, tester], 0.1)
    pub.publish(chunk_msg(rig.driver, [beyond, beyond], dt=1.0))
    assert spin(ctx, [rig.driver, tester], 6.0,
                until=lambda: rig.frame(JOINT_CTRL_12) == (17189, 68755))   # 0.3 rad
    spin(ctx, [rig.driver, tester], 0.4)
    assert rig.frame(JOINT_CTRL_12)[0] == 17189
    assert struct.unpack('>iHBB', rig.firmware.last_frame(GRIPPER_CTRL))[0] == 70000  # 70 mm
    assert rig.driver._control.safety.limits.upper[1] == contract.PIPER_LIMITS['joint2'].upper


def test_dry_run_sends_no_motion_or_enable_frame_but_publishes_the_command(ctx, rigs, tester):
    rig = rigs(dry_run=True)
    commands = Probe(tester, sensor_msgs.JointState, '/arm_driver_node/command')
    pub = tester.create_publisher(trajectory_msgs.JointTrajectory,
                                  contract.ACTION_CHUNK_TOPIC, 10)
    target = READY + [0.5, 0, 0, 0, 0, 0, 0]
    spin(ctx, [rig.driver, tester], 0.1)
    pub.publish(chunk_msg(rig.driver, [target, target], dt=0.5))
    # The arm does not move, so the step limit keeps the command 0.05 rad from it.
    stepped = READY + [0.05, 0, 0, 0, 0, 0, 0]
    assert spin(ctx, [rig.driver, tester], 6.0, until=lambda: bool(commands.msgs) and np.allclose(
        commands.msgs[-1].position, stepped))
    for can_id in (JOINT_CTRL_12, GRIPPER_CTRL, MOTOR_ENABLE):
        assert rig.firmware.last_frame(can_id) is None, hex(can_id)
    np.testing.assert_allclose(rig.plant.read_state(), READY, atol=1e-6)


# --- feedback and faults ---------------------------------------------------------------------

def test_no_joint_states_until_the_arm_sends_real_joint_frames(ctx, rigs, tester):
    rig = rigs(joint_feedback=False)   # status frames only, like an arm in leader mode
    states = Probe(tester, sensor_msgs.JointState, contract.JOINT_STATES_TOPIC)
    diags = Probe(tester, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    assert spin(ctx, [rig.driver, tester], 6.0, until=lambda: bool(statuses(diags)))
    assert states.msgs == []           # the SDK's cached zeros are never published
    assert statuses(diags)[-1].level == WARN
    assert 'no joint feedback yet' in statuses(diags)[-1].message
    rig.firmware.joint_feedback = True
    assert spin(ctx, [rig.driver, tester], 6.0, until=lambda: bool(states.msgs))
    np.testing.assert_allclose(states.msgs[0].position, READY, atol=1e-5)


def test_under_simulated_time_frames_go_out_before_the_sdks_rate_thread_has_run(
        ctx, tester, monkeypatch):
    # piper_sdk's Hz comes from a thread that counts frames per 0.1 s of wall time. On a loaded
    # machine a lock-step episode began before it had run: the driver, trusting only the SDK's
    # `valid`, sent no motion until then, and two evaluations of one seed differed. Here the
    # rate stays 0: the motion frames on the bus must follow the simulated clock alone.
    from piper_sdk.utils.fps import C_FPSCounter
    get_fps = C_FPSCounter.get_fps
    monkeypatch.setattr(C_FPSCounter, 'get_fps', lambda self, name: 0.0 if name.startswith(
        ('ArmJoint', 'ArmGripper', 'ArmEndPose')) else get_fps(self, name))
    rig = Rig(ctx, use_sim_time=True)
    clock = tester.create_publisher(rosgraph_msgs.Clock, contract.CLOCK_TOPIC, 10)
    sim_ns = [10**9]

    def advance():  # 10 ms of simulated time per turn of the executor
        sim_ns[0] += 10**7
        msg = rosgraph_msgs.Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(sim_ns[0], 10**9)
        clock.publish(msg)
        return False
    try:
        nodes = [rig.driver, tester]
        assert spin(ctx, nodes, 6.0, until=lambda: advance() or rig.driver._control.guard.trusted)
        target = READY + [0.2, 0, 0, 0, 0, 0, 0]
        pub = tester.create_publisher(trajectory_msgs.JointTrajectory,
                                      contract.ACTION_CHUNK_TOPIC, 10)
        pub.publish(chunk_msg(rig.driver, [target, target], dt=0.2))
        # Joint 1 commanded on its way from 0 to 0.2 rad, in the SDK's 0.001 deg.
        assert spin(ctx, nodes, 6.0, until=lambda: advance() or (
            rig.frame(JOINT_CTRL_12) is not None
            and rig.frame(JOINT_CTRL_12)[0] >= round(0.05 * MILLIDEG_PER_RAD))), \
            rig.frame(JOINT_CTRL_12)
        assert rig.frame(JOINT_CTRL_12)[0] <= round(0.2 * MILLIDEG_PER_RAD)
    finally:
        rig.close()


def test_can_silence_latches_a_fault_until_enable(ctx, rigs, tester):
    rig = rigs()
    diags = Probe(tester, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    pub = tester.create_publisher(trajectory_msgs.JointTrajectory,
                                  contract.ACTION_CHUNK_TOPIC, 10)
    nodes = [rig.driver, tester]
    spin(ctx, nodes, 0.2)
    rig.firmware.stop()                                  # the arm falls silent
    assert spin(ctx, nodes, 6.0, until=lambda: any(
        s.level == ERROR and 'no CAN' in s.message for s in statuses(diags)))
    fault = next(s for s in statuses(diags) if s.level == ERROR)
    assert '~/enable true' in fault.message and value(fault, 'enabled') == 'False'
    rig.firmware.start()                                 # back, but the fault stays latched
    moved = READY + [0.3, 0, 0, 0, 0, 0, 0]
    pub.publish(chunk_msg(rig.driver, [moved, moved], dt=0.5))
    spin(ctx, nodes, 0.6)
    np.testing.assert_allclose(rig.plant.read_state(), READY, atol=1e-4)
    assert rig.driver._control.faults.fault
    client = tester.create_client(std_srvs.SetBool, '/arm_driver_node/enable')
    assert call(ctx, nodes, client, std_srvs.SetBool.Request(data=True)).success
    pub.publish(chunk_msg(rig.driver, [moved, moved], dt=0.5))
    assert spin(ctx, nodes, 6.0,
                until=lambda: abs(rig.plant.read_state()[0] - moved[0]) < 2e-3)


def test_holds_when_commands_go_stale_and_stops_on_emergency(ctx, rigs, tester):
    rig = rigs()
    nodes = [rig.driver, tester]
    pub = tester.create_publisher(trajectory_msgs.JointTrajectory,
                                  contract.ACTION_CHUNK_TOPIC, 10)
    spin(ctx, nodes, 0.1)
    # A chunk that ends at 0.1 s, 2 rad away: 0.5 s after its end the watchdog holds the arm,
    # which by then has covered at most 0.9 rad at the 1.5 rad/s velocity limit.
    pub.publish(chunk_msg(rig.driver, [READY + [2.0, 0, 0, 0, 0, 0, 0]]))
    spin(ctx, nodes, 1.5)
    held = rig.plant.read_state()[0]
    assert 0.0 < held < 1.0
    spin(ctx, nodes, 0.3)
    assert rig.plant.read_state()[0] == pytest.approx(held, abs=1e-3)
    # A slow chunk, 1 rad in 5 s; the e-stop comes once the arm is on its way.
    far = rig.plant.read_state() + [-1.0, 0, 0, 0, 0, 0, 0]
    pub.publish(chunk_msg(rig.driver, [far], dt=5.0))
    assert spin(ctx, nodes, 6.0, until=lambda: rig.plant.read_state()[0] < held - 0.02)
    client = tester.create_client(std_srvs.Trigger, '/arm_driver_node/emergency_stop')
    assert call(ctx, nodes, client, std_srvs.Trigger.Request()).success
    stopped = rig.plant.read_state()[0]
    spin(ctx, nodes, 0.5)
    assert rig.plant.read_state()[0] == pytest.approx(stopped, abs=1e-3)
    assert stopped > far[0] + 0.5 and rig.firmware.targets().estopped


def test_bimanual_drivers_take_their_own_joints_from_one_chunk(ctx, rigs, tester):
    left = rigs(namespace='/left', joint_prefix='left_')
    right = rigs(namespace='/right', joint_prefix='right_')
    states = Probe(tester, sensor_msgs.JointState, contract.JOINT_STATES_TOPIC)
    pub = tester.create_publisher(trajectory_msgs.JointTrajectory,
                                  contract.ACTION_CHUNK_TOPIC, 10)
    nodes = [left.driver, right.driver, tester]
    spin(ctx, nodes, 0.1)
    goal_left, goal_right = READY + [0.2, 0, 0, 0, 0, 0, 0], READY + [-0.2, 0, 0, 0, 0, 0, 0]
    names = [f'left_{n}' for n in contract.JOINT_NAMES] + [f'right_{n}'
                                                           for n in contract.JOINT_NAMES]
    both = np.concatenate([goal_left, goal_right])
    pub.publish(chunk_msg(left.driver, [both, both], dt=0.5, names=names))
    assert spin(ctx, nodes, 6.0, until=lambda: np.allclose(
        left.plant.read_state(), goal_left, atol=2e-3) and np.allclose(
        right.plant.read_state(), goal_right, atol=2e-3))
    assert {tuple(m.name)[0] for m in states.msgs} == {'left_joint1', 'right_joint1'}
    client = tester.create_client(std_srvs.Trigger, '/right/arm_driver_node/emergency_stop')
    assert call(ctx, nodes, client, std_srvs.Trigger.Request()).success
    assert right.firmware.targets().estopped and not left.firmware.targets().estopped
