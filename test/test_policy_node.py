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

"""policy_node deployed like on a robot: chunk timing, contract check, dry run, stale camera.

The arm is the real driver (piper_sdk) on a python-can virtual bus against the simulated firmware
with a first-order plant (no MuJoCo); the camera is a test node publishing frames, so stopping it
is exact. The model is the tiny random-weight one, or a checkpoint saved from it.
"""

import itertools
import json

import can
import numpy as np
import pytest

from graph import joint_state, spin  # test/graph.py
from vla_nodes import contract, ros
from vla_nodes.arm import kinematics
from vla_nodes.nodes.arm_driver_node import ArmDriverNode
from vla_nodes.nodes.policy_node import PolicyNode
from vla_nodes.policy.checkpoint import ContractMismatchError, make_contract, save_checkpoint
from vla_nodes.policy.policy import demo_stats, VLAPolicy
from vla_nodes.policy.runner import ChunkScheduler
from vla_nodes.ros import image, local
from vla_nodes.ros.msgs import sensor_msgs, stamp_to_ns, std_msgs, trajectory_msgs
from vla_nodes.sim.kinematic_plant import KinematicPlant
from vla_nodes.sim.piper_can import PiperFirmware

pytestmark = [
    pytest.mark.skipif(ros.BACKEND != 'local', reason='drives the local backend'),
    pytest.mark.filterwarnings('ignore:.*bustype.*:DeprecationWarning'),
]
_channels = itertools.count()


# --- the execution horizon (pure logic) ------------------------------------------------------

def test_scheduler_requests_before_the_chunk_runs_out_by_the_measured_delay():
    s = ChunkScheduler(margin_s=0.1, initial_delay_s=0.3, min_period_s=0.05)
    assert s.should_request(10.0) and s.last_reason == 'no_chunk'
    s.on_request(10.0)
    assert not s.should_request(10.02) and s.last_reason == 'min_period'
    s.on_chunk(obs_time_s=10.0, duration_s=1.6)  # runs until 11.6 s
    s.record_delay(0.2)
    assert s.expected_delay_s == pytest.approx(0.2)
    assert not s.should_request(11.2) and s.last_reason == 'chunk_left'  # 0.4 s > 0.3 s left
    assert s.should_request(11.31) and s.last_reason == 'horizon'  # 0.29 s < 0.2 + 0.1
    # A slower model is planned for: the next request comes earlier.
    for _ in range(10):
        s.record_delay(0.8)
    assert not s.should_request(10.6)  # 1.0 s left > 0.8 + 0.1
    assert s.should_request(10.8) and s.last_reason == 'horizon'
    assert s.remaining_s(12.0) == 0.0


def test_scheduler_max_period_is_a_floor_on_the_request_rate():
    s = ChunkScheduler(margin_s=0.0, initial_delay_s=0.1, min_period_s=0.0, max_period_s=0.5)
    s.on_request(0.0)
    s.on_chunk(0.0, 10.0)
    assert not s.should_request(0.4)
    assert s.should_request(0.5) and s.last_reason == 'max_period'
    with pytest.raises(ValueError, match='must be >= 0'):
        ChunkScheduler(margin_s=-1.0)


# --- contract --------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def checkpoint_dirs(tmp_path_factory, one_thread):
    """Tiny random-weight checkpoints: one matching this robot (10 Hz), one at 30 Hz."""
    policy = VLAPolicy.random_init(seed=0)
    config = policy.model.config
    dirs = {}
    for rate in (10.0, 30.0):
        path = tmp_path_factory.mktemp(f'ckpt_{int(rate)}hz')
        save_checkpoint(path, policy.model, demo_stats(),
                        make_contract(config.horizon, (config.image_size,) * 2, rate))
        dirs[rate] = str(path)
    return dirs


def policy_node(ctx, **params):
    return PolicyNode(context=ctx, parameter_overrides=[
        ros.Parameter(k, value=v) for k, v in params.items()])


def test_a_matching_checkpoint_loads_and_a_mismatched_contract_is_refused(ctx, checkpoint_dirs):
    node = policy_node(ctx, checkpoint=checkpoint_dirs[10.0], action_rate_hz=10.0,
                       expected_image_size=[56, 56])
    assert node.expected_contract()['image_size'] == [56, 56]
    node.destroy_node()
    with pytest.raises(ContractMismatchError, match='action_rate_hz: checkpoint has 30.0'):
        policy_node(ctx, checkpoint=checkpoint_dirs[30.0], action_rate_hz=10.0)
    # By default the rate is the checkpoint's (its dataset fps): a 30 fps robot export ran into
    # the old default of 10 Hz and was refused.
    node = policy_node(ctx, checkpoint=checkpoint_dirs[30.0])
    assert node._rate_hz == 30.0 and 'action_rate_hz' not in node.expected_contract()
    node.destroy_node()
    with pytest.raises(ValueError, match='action_rate_hz must be >= 0'):
        policy_node(ctx, checkpoint=checkpoint_dirs[10.0], action_rate_hz=-1.0)
    with pytest.raises(ContractMismatchError, match='joint_names'):
        policy_node(ctx, checkpoint=checkpoint_dirs[10.0], joint_prefix='left_')
    with pytest.raises(ContractMismatchError, match='image_size'):
        policy_node(ctx, checkpoint=checkpoint_dirs[10.0], expected_image_size=[224, 224])


# --- the loop with a camera that we control --------------------------------------------------

class Camera:
    """Publishes small colour + metric depth frames with the same stamp, on the node's clock."""

    def __init__(self, node, with_depth=True):
        self.node = node
        self.with_depth = with_depth
        self.color = node.create_publisher(sensor_msgs.Image, contract.COLOR_TOPIC, 2)
        self.depth = node.create_publisher(sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC, 2)
        rng = np.random.default_rng(0)
        self.rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        self.metres = rng.uniform(0.3, 1.0, (48, 64)).astype(np.float32)
        self.on = True
        node.create_timer(0.1, self.publish)

    def publish(self):
        if not self.on:
            return
        stamp = self.node.get_clock().now().nanoseconds
        self.color.publish(image.to_msg(self.rgb, 'rgb8', stamp, contract.CAMERA_FRAME))
        if self.with_depth:
            self.depth.publish(image.to_msg(self.metres, '32FC1', stamp, contract.CAMERA_FRAME))


def test_a_stale_camera_stops_new_chunks_and_the_driver_holds_the_arm(ctx, one_thread):
    channel = f'test_policy_node_{next(_channels)}'
    bus = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
    plant = KinematicPlant(contract.READY_POSITIONS)
    firmware = PiperFirmware(bus, plant.read_state, plant.set_targets,
                             fk=lambda q: kinematics.pose_to_xyz_rpy(
                                 kinematics.forward_kinematics(q)))
    firmware.start()
    driver_params = {'can_name': channel, 'can_interface': 'virtual', 'judge_flag': False,
                     'dry_run': False, 'enable_on_start': True}
    driver = ArmDriverNode(context=ctx, parameter_overrides=[
        ros.Parameter(k, value=v) for k, v in driver_params.items()])
    # 20 Hz steps: a chunk spans 0.8 s, so the arm's last chunk ends soon after the camera.
    policy = policy_node(ctx, action_rate_hz=20.0, max_observation_age_s=0.3)
    tester = local.Node('camera_tester', context=ctx)
    camera = Camera(tester)
    chunks = []
    tester.create_subscription(trajectory_msgs.JointTrajectory, contract.ACTION_CHUNK_TOPIC,
                               chunks.append, 10)
    timings = []  # what vla-eval counts: one message per chunk
    tester.create_subscription(std_msgs.String, contract.CHUNK_TIMING_TOPIC,
                               lambda m: timings.append(json.loads(m.data)), 50)
    nodes = [driver, policy, tester]
    try:
        start = plant.read_state()
        assert spin(ctx, nodes, 20.0, until=lambda: len(chunks) >= 3), 'no chunks published'
        # Step k is for observation time + k / rate: step 0 is the command for the frame's
        # instant, as training's targets a[t + k] (contract.CHUNK_FIRST_STEP).
        times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9
                 for p in chunks[0].points]
        np.testing.assert_allclose(times, np.arange(len(times)) / 20.0, atol=1e-9)
        assert spin(ctx, nodes, 5.0, until=lambda: np.abs(plant.read_state() - start)[:6].max()
                    > 1e-3), 'the chunks never moved the arm'
        camera.on = False
        # The last chunk (0.8 s) and the driver's command timeout (0.5 s) run out.
        spin(ctx, nodes, 2.5)
        count, held = len(chunks), plant.read_state()
        spin(ctx, nodes, 1.5)
        assert len(chunks) == count, 'chunks kept coming without camera frames'
        np.testing.assert_allclose(plant.read_state(), held, atol=1e-4)
        assert policy.stats['chunks'] == count
        assert policy.delays_s and policy.infer_ms and min(policy.delays_s) >= 0
        assert [t['stamp_ns'] for t in timings] == [stamp_to_ns(c.header) for c in chunks]
        assert all(t['published'] and t['infer_ms'] > 0 and t['delay_s'] >= 0 for t in timings)
        assert all(0 <= t['input_wait_s'] <= t['delay_s'] for t in timings)
        assert [t['delay_s'] for t in timings] == list(policy.delays_s)
    finally:
        for node in (policy, driver, tester):
            node.destroy_node()
        firmware.stop()
        bus.shutdown()


def test_dry_run_publishes_no_chunk_but_computes_and_logs_them(ctx, one_thread):
    policy = policy_node(ctx, dry_run=True)
    tester = local.Node('dry_tester', context=ctx)
    Camera(tester)
    joints = tester.create_publisher(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC, 10)

    def publish_joints():
        msg = sensor_msgs.JointState(name=list(contract.JOINT_NAMES),
                                     position=list(contract.READY_POSITIONS))
        msg.header.stamp = tester.get_clock().now().to_msg()
        joints.publish(msg)

    tester.create_timer(0.02, publish_joints)
    chunks = []
    tester.create_subscription(trajectory_msgs.JointTrajectory, contract.ACTION_CHUNK_TOPIC,
                               chunks.append, 10)
    try:
        assert spin(ctx, [policy, tester], 20.0,
                    until=lambda: policy.stats['dry_run_chunks'] >= 2)
        assert chunks == [] and policy.stats['chunks'] == 0
        stamp_ns, actions = policy.last_chunk
        assert actions.shape == (policy._policy.model.config.horizon, 7)
    finally:
        policy.destroy_node()
        tester.destroy_node()


def test_the_model_starts_on_a_frame_as_soon_as_it_is_complete_not_on_the_tick(ctx, one_thread):
    """Requests waited for the 20 Hz tick and took the newest frame then: ~45 ms of obs -> chunk.

    With a tick every 5 s, a chunk comes within the first second and its observation is the
    frame that was just completed (its joint state arriving), not one a tick later.
    """
    policy = policy_node(ctx, dry_run=True, tick_rate_hz=0.2)
    tester = local.Node('arrival_tester', context=ctx)
    Camera(tester)
    joints = tester.create_publisher(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC, 10)
    tester.create_timer(0.02, lambda: joints.publish(joint_state(
        contract.READY_POSITIONS, tester.get_clock().now().nanoseconds)))
    try:
        assert spin(ctx, [policy, tester], 2.0,
                    until=lambda: policy.stats['dry_run_chunks'] >= 1), 'waited for the tick'
        assert policy.delays_s[0] < 0.1  # the frame's joint state is at most 20 ms behind it
    finally:
        policy.destroy_node()
        tester.destroy_node()


def test_a_policy_reading_no_depth_runs_on_a_robot_without_a_depth_camera(ctx, one_thread,
                                                                          tmp_path):
    """policy_node waited for depth frames even for a checkpoint that never reads them."""
    from vla_nodes.models import presets
    config = presets.get('tiny_pi0_baseline')
    assert not config.needs_depth
    baseline = VLAPolicy.random_init(config, seed=0)
    save_checkpoint(tmp_path, baseline.model, demo_stats(),
                    make_contract(config.horizon, (config.image_size,) * 2))
    needing = policy_node(ctx, dry_run=True)  # the demo preset reads depth
    policy = policy_node(ctx, dry_run=True, checkpoint=str(tmp_path))
    assert needing._policy.inputs.needs_depth and not policy._policy.inputs.needs_depth
    tester = local.Node('no_depth_tester', context=ctx)
    Camera(tester, with_depth=False)
    joints = tester.create_publisher(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC, 10)
    tester.create_timer(0.02, lambda: joints.publish(joint_state(
        contract.READY_POSITIONS, tester.get_clock().now().nanoseconds)))
    try:
        assert spin(ctx, [needing, policy, tester], 20.0,
                    until=lambda: policy.stats['dry_run_chunks'] >= 2)
        assert needing.stats['dry_run_chunks'] == 0  # no depth: it still waits, and says so
    finally:
        for node in (needing, policy, tester):
            node.destroy_node()
