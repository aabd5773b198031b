"""Nodes on the local backend with real parts: bad input is rejected and the graph keeps running.

The arm driver talks through the real piper_sdk to the simulated firmware on a python-can virtual
bus (a first-order plant stands in for the arm's body, no MuJoCo needed).
"""

import itertools
import time

import can
import numpy as np
import pytest

from vla_nodes import contract
from vla_nodes.nodes.arm_driver_node import ArmDriverNode
from vla_nodes.nodes.depth_node import DepthNode
from vla_nodes.nodes.diagnostics import ERROR
from vla_nodes.ros import image, local
from vla_nodes.ros.msgs import diagnostic_msgs, sensor_msgs, std_srvs, trajectory_msgs
from vla_nodes.sim.piper_can import KinematicPlant, PiperFirmware

_channels = itertools.count()


def spin(ctx, nodes, seconds):
    executor = local.MultiThreadedExecutor(context=ctx)
    for node in nodes:
        executor.add_node(node)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    executor.shutdown()


class Probe:
    """Collects what a topic carries."""

    def __init__(self, node, msg_type, topic):
        self.msgs = []
        node.create_subscription(msg_type, topic, self.msgs.append, 100)


# --- depth_node ----------------------------------------------------------------------------------

def test_depth_node_rejects_bad_frames_and_keeps_going(ctx):
    depth = DepthNode(context=ctx)
    test = local.Node('test', context=ctx)
    out = Probe(test, sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC)
    diags = Probe(test, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    depth_pub = test.create_publisher(sensor_msgs.Image, contract.DEPTH_TOPIC, 10)
    info_pub = test.create_publisher(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC, 10)

    depth_pub.publish(image.to_msg(np.ones((3, 4), np.uint16), '16UC1'))  # no camera_info yet
    spin(ctx, [depth, test], 0.1)
    info_pub.publish(sensor_msgs.CameraInfo(width=4, height=3))
    spin(ctx, [depth, test], 0.1)
    depth_pub.publish(image.to_msg(np.zeros((3, 4, 3), np.uint8), 'bgr8'))   # wrong encoding
    depth_pub.publish(image.to_msg(np.ones((6, 8), np.uint16), '16UC1'))    # wrong size
    spin(ctx, [depth, test], 0.1)
    assert out.msgs == []
    good = np.array([[0, 500, 1000, 1500]] * 3, np.uint16)
    depth_pub.publish(image.to_msg(good, '16UC1', stamp_ns=5, frame_id='cam'))
    spin(ctx, [depth, test], 1.2)

    assert len(out.msgs) == 1
    metres = image.from_msg(out.msgs[0])
    assert out.msgs[0].encoding == '32FC1' and out.msgs[0].header.frame_id == 'cam'
    assert np.isnan(metres[:, 0]).all()
    np.testing.assert_array_equal(metres[:, 1:], [[0.5, 1.0, 1.5]] * 3)
    statuses = [s for d in diags.msgs for s in d.status if s.name == '/depth_node']
    assert statuses, 'depth_node published no diagnostics'
    depth.destroy_node()


def test_depth_node_reports_errors_in_diagnostics(ctx):
    depth = DepthNode(context=ctx)
    test = local.Node('test', context=ctx)
    diags = Probe(test, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    test.create_publisher(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC, 10).publish(
        sensor_msgs.CameraInfo(width=4, height=3))
    spin(ctx, [depth, test], 0.1)
    test.create_publisher(sensor_msgs.Image, contract.DEPTH_TOPIC, 10).publish(
        image.to_msg(np.zeros((3, 4), np.float32), '32FC1'))
    spin(ctx, [depth, test], 1.2)
    last = [s for d in diags.msgs for s in d.status][-1]
    assert last.level == ERROR and '16UC1' in last.message
    depth.destroy_node()


# --- arm_driver_node -----------------------------------------------------------------------------

@pytest.fixture
def arm(ctx):
    """A simulated Piper on a fresh virtual CAN channel and the driver connected to it."""
    channel = f'test_driver_{next(_channels)}'
    bus = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
    plant = KinematicPlant()
    firmware = PiperFirmware(bus, plant.read_state, plant.set_targets).start()
    driver = ArmDriverNode(context=ctx, cli_args=[
        '--ros-args', '-p', f'can_name:={channel}', '-p', 'can_interface:=virtual',
        '-p', 'judge_flag:=false', '-p', 'dry_run:=false', '-p', 'enable_on_start:=true'])
    test = local.Node('test', context=ctx)
    yield driver, test, plant
    driver.destroy_node()
    firmware.stop()
    bus.shutdown()


def chunk_msg(driver, positions, dt=0.1, names=contract.JOINT_NAMES):
    msg = trajectory_msgs.JointTrajectory(joint_names=list(names))
    msg.header.stamp = driver.get_clock().now().to_msg()
    for k, q in enumerate(positions):
        point = trajectory_msgs.JointTrajectoryPoint(positions=list(q))
        point.time_from_start.sec, point.time_from_start.nanosec = divmod(
            int((k + 1) * dt * 1e9), 10**9)
        msg.points.append(point)
    return msg


def test_driver_follows_a_chunk_and_publishes_joint_states(ctx, arm):
    driver, test, plant = arm
    states = Probe(test, sensor_msgs.JointState, contract.JOINT_STATES_TOPIC)
    pub = test.create_publisher(trajectory_msgs.JointTrajectory, contract.ACTION_CHUNK_TOPIC, 10)
    target = np.array(contract.READY_POSITIONS) + [0.2, 0.1, -0.1, 0.0, 0.0, 0.0, -0.02]
    spin(ctx, [driver, test], 0.2)
    pub.publish(chunk_msg(driver, np.linspace(contract.READY_POSITIONS, target, 5)))
    spin(ctx, [driver, test], 1.5)
    np.testing.assert_allclose(plant.read_state(), target, atol=2e-3)
    assert len(states.msgs) > 50
    np.testing.assert_allclose(states.msgs[-1].position, target, atol=2e-3)


@pytest.mark.parametrize('bad', ['nan', 'missing_joint', 'out_of_limits'])
def test_driver_never_sends_bad_chunks(ctx, arm, bad):
    driver, test, plant = arm
    pub = test.create_publisher(trajectory_msgs.JointTrajectory, contract.ACTION_CHUNK_TOPIC, 10)
    spin(ctx, [driver, test], 0.2)
    start = plant.read_state()
    q = np.tile(start, (3, 1))
    if bad == 'nan':
        q[1, 0] = np.nan
        msg = chunk_msg(driver, q)
    elif bad == 'missing_joint':
        msg = chunk_msg(driver, q[:, :6], names=contract.ARM_JOINTS)
    else:
        q[:, 0] = 3.0  # joint1 beyond +150 deg; slow enough to arrive before the chunk ends
        msg = chunk_msg(driver, q, dt=1.0)
    pub.publish(msg)
    spin(ctx, [driver, test], 2.5)  # 2.6 rad at the 1.5 rad/s velocity limit
    now = plant.read_state()
    if bad == 'out_of_limits':
        assert now[0] == pytest.approx(contract.PIPER_LIMITS['joint1'].upper, abs=2e-3)
        np.testing.assert_allclose(now[1:], start[1:], atol=1e-3)
    else:
        np.testing.assert_allclose(now, start, atol=1e-4)
    # The graph keeps running: a good chunk afterwards is executed.
    target = now - [0.1, 0, 0, 0, 0, 0, 0]
    pub.publish(chunk_msg(driver, [target]))
    spin(ctx, [driver, test], 1.0)
    assert plant.read_state()[0] == pytest.approx(target[0], abs=2e-3)


def test_driver_holds_when_commands_go_stale_and_stops_on_emergency(ctx, arm):
    driver, test, plant = arm
    pub = test.create_publisher(trajectory_msgs.JointTrajectory, contract.ACTION_CHUNK_TOPIC, 10)
    spin(ctx, [driver, test], 0.2)
    start = plant.read_state()
    far = start + [1.0, 0, 0, 0, 0, 0, 0]
    # A slow chunk: 5 s to travel 1 rad; the e-stop comes after 0.5 s.
    pub.publish(chunk_msg(driver, [far], dt=5.0))
    spin(ctx, [driver, test], 0.5)
    moving = plant.read_state()[0]
    assert moving > start[0] + 0.02
    client = test.create_client(std_srvs.Trigger, '/arm_driver_node/emergency_stop')
    future = client.call_async(std_srvs.Trigger.Request())
    spin(ctx, [driver, test], 0.3)
    assert future.result().success
    stopped = plant.read_state()[0]
    spin(ctx, [driver, test], 0.7)
    assert plant.read_state()[0] == pytest.approx(stopped, abs=1e-3)
    assert stopped < far[0] - 0.3
