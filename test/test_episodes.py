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

"""Episode boundaries and lock-step simulation.

Real parts: MuJoCo, the simulated Piper firmware, arm_driver_node through piper_sdk on a
python-can virtual bus, and a CAN listener on that bus: what the arm receives is read off the
wire, not from the driver's own report.
"""

import itertools
import os
import struct
import threading
import time

os.environ.setdefault('MUJOCO_GL', 'egl')  # mujoco picks its GL backend when first imported

import can  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import graph  # noqa: E402  (test/graph.py)
from vla_nodes import contract, ros  # noqa: E402
from vla_nodes.arm.piper_protocol import JOINT_CTRL, JOINT_FEEDBACK, MILLIDEG_PER_RAD  # noqa: E402
from vla_nodes.arm.trajectory import Chunk, TrajectoryFollower  # noqa: E402
from vla_nodes.nodes.policy_inputs import ObservationBuffer  # noqa: E402
from vla_nodes.ros import local, qos_profile_latched  # noqa: E402
from vla_nodes.ros.msgs import (ns_to_stamp, sensor_msgs, stamp_to_ns, std_msgs,  # noqa: E402
                                std_srvs, trajectory_msgs)

pytestmark = [
    pytest.mark.skipif(ros.BACKEND != 'local', reason='lock-step runs on the local backend'),
    pytest.mark.filterwarnings('ignore:.*bustype.*:DeprecationWarning'),
]
_channels = itertools.count()


# --- pure logic ----------------------------------------------------------------------------------

def test_follower_forgets_the_old_episode_and_refuses_its_chunks():
    follower = TrajectoryFollower(blend_s=0.2)
    q0 = np.zeros(7)
    follower.set_chunk(Chunk(1_000_000_000, np.array([0.1, 1.0]), np.full((2, 7), 0.5)), q0,
                       now_ns=1_200_000_000)
    assert follower.active
    follower.start_episode(2_000_000_000)
    assert not follower.active and follower.target(2_000_000_000) is None
    with pytest.raises(ValueError, match='before the episode started'):
        follower.set_chunk(Chunk(1_900_000_000, np.array([0.1]), np.ones((1, 7))), q0)
    # A chunk of the new episode starts from the given position, with no blend from the old one.
    follower.set_chunk(Chunk(2_000_000_000, np.array([0.1]), np.ones((1, 7))), q0,
                       now_ns=2_000_000_000)
    assert np.allclose(follower.target(2_000_000_000), q0)


def test_observations_of_the_previous_episode_are_dropped():
    def image(stamp_ns):
        msg = sensor_msgs.Image()
        msg.header.stamp = ns_to_stamp(stamp_ns)
        return msg
    buffer = ObservationBuffer()
    buffer.add_color(image(100))
    buffer.add_depth(image(100))
    buffer.add_state(100, np.zeros(7, np.float32))
    assert buffer.assemble() is not None
    buffer.start_episode(200)
    assert buffer.assemble() is None
    buffer.add_color(image(150))  # late, from the old episode
    buffer.add_depth(image(150))
    buffer.add_state(150, np.zeros(7, np.float32))
    assert buffer.assemble() is None and buffer.color is None
    buffer.add_color(image(250))
    buffer.add_depth(image(250))
    buffer.add_state(240, np.ones(7, np.float32))
    buffer.add_state(260, np.ones(7, np.float32))
    assert buffer.assemble()[3] == 240


def test_a_further_cameras_frame_of_the_same_instant_is_awaited_in_lock_step():
    """In a lock-step step the wrist frame of instant T may come after the scene frame of T.

    The previous wrist frame (within the skew) was taken then, so the observation depended on
    the order of arrival. It is final only once the clock passed T or a later frame came.
    """
    def image(stamp_ns):
        msg = sensor_msgs.Image()
        msg.header.stamp = ns_to_stamp(stamp_ns)
        return msg
    buffer = ObservationBuffer()
    t = 2 * 10**9
    buffer.add_extra('wrist', image(t - 33 * 10**6))
    assert buffer.extra_as_of(['wrist'], t, 10**8, now_ns=t) == ({}, ['wrist'])
    assert buffer.extra_as_of(['wrist'], t, 10**8, now_ns=t + 1)[0]['wrist'].header.stamp == \
        ns_to_stamp(t - 33 * 10**6)  # the clock moved on: nothing newer can be at or before T
    buffer.add_extra('wrist', image(t))
    found, missing = buffer.extra_as_of(['wrist'], t, 10**8, now_ns=t)
    assert not missing and found['wrist'].header.stamp == ns_to_stamp(t)
    buffer.add_extra('wrist', image(t + 33 * 10**6))  # a later frame settles an earlier instant
    assert buffer.extra_as_of(['wrist'], t - 10**6, 10**8, now_ns=t - 10**6)[0]['wrist'] \
        .header.stamp == ns_to_stamp(t - 33 * 10**6)


def test_a_synchronous_worker_is_done_when_submit_returns():
    from vla_nodes.perception.worker import LatestWorker
    seen = []
    worker = LatestWorker(seen.append, synchronous=True)
    assert worker.submit(1) and worker.submit(2)
    assert seen == [1, 2] and worker.idle() and worker.dropped == 0
    worker.close()


def _chunk(sec: int):
    msg = trajectory_msgs.JointTrajectory(joint_names=list(contract.JOINT_NAMES))
    msg.header.stamp = ns_to_stamp(sec * 1_000_000_000)
    point = trajectory_msgs.JointTrajectoryPoint(positions=[0.1] * 7)
    point.time_from_start = ros.Duration(seconds=0.1).to_msg()
    msg.points.append(point)
    return msg


def test_the_trajectory_relay_drops_chunks_observed_before_the_episode_start(ctx):
    from vla_nodes.nodes.trajectory_relay_node import TrajectoryRelayNode
    relay = TrajectoryRelayNode(context=ctx)
    probe = local.Node('probe', context=ctx)
    relayed = []
    probe.create_subscription(trajectory_msgs.JointTrajectory, '/arm_controller/joint_trajectory',
                              lambda m: relayed.append(stamp_to_ns(m.header.stamp)), 10)
    start = std_msgs.Header(frame_id='seed 1')
    start.stamp = ns_to_stamp(10_000_000_000)
    probe.create_publisher(std_msgs.Header, contract.EPISODE_START_TOPIC,
                           qos_profile_latched).publish(start)
    chunks = probe.create_publisher(trajectory_msgs.JointTrajectory,
                                    contract.ACTION_CHUNK_TOPIC, 10)
    try:
        assert graph.spin(ctx, [relay, probe], 10.0, lambda: relay._episode_start_ns > 0,
                          local.SingleThreadedExecutor)
        chunks.publish(_chunk(7))   # observed in the previous episode
        chunks.publish(_chunk(11))
        assert graph.spin(ctx, [relay, probe], 10.0, lambda: relayed, local.SingleThreadedExecutor)
    finally:
        relay.destroy_node()
        probe.destroy_node()
    assert relayed == [11_000_000_000] and relay.refused == 1


def test_the_recorder_announces_each_episode_it_starts(ctx, tmp_path):
    from vla_nodes.nodes.teleop_recorder_node import TeleopRecorderNode
    recorder = TeleopRecorderNode(context=ctx, cli_args=[
        '--ros-args', '-p', f'output_dir:={tmp_path}', '-p', 'flush_period_s:=0.2'])
    probe = local.Node('probe', context=ctx)
    starts = []
    probe.create_subscription(std_msgs.Header, contract.EPISODE_START_TOPIC, starts.append,
                              qos_profile_latched)
    try:
        before = recorder.get_clock().now().nanoseconds
        path = recorder.start_episode()
        assert graph.spin(ctx, [recorder, probe], 10.0, lambda: starts,
                          local.SingleThreadedExecutor)
        recorder.discard_episode()
    finally:
        recorder.destroy_node()
        probe.destroy_node()
    assert starts[-1].frame_id == path.name and stamp_to_ns(starts[-1].stamp) >= before


def test_an_executor_out_of_work_makes_idle_cheap_and_exact(ctx):
    node = local.Node('idle_probe', context=ctx)
    got = []
    node.create_subscription(std_msgs.String, '/idle_probe', got.append, 10)
    executor = local.SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    assert not ctx.idle(scan=False)  # nobody has looked yet: unsure, so not idle
    executor.spin_once(timeout_sec=0.0)
    assert ctx.idle(scan=False) and ctx.idle()
    node.create_publisher(std_msgs.String, '/idle_probe', 10).publish(std_msgs.String(data='x'))
    assert not ctx.idle(scan=False) and not ctx.idle()  # a message waits
    executor.spin_once(timeout_sec=0.0)  # runs it
    assert got and not ctx.idle(scan=False) and ctx.idle()  # finished: a scan says idle
    executor.spin_once(timeout_sec=0.0)  # finds nothing
    assert ctx.idle(scan=False)
    executor.shutdown()
    node.destroy_node()


# --- the graph -----------------------------------------------------------------------------------

class CanListener:
    """Every frame on a virtual CAN channel, with the wall time it was sent."""

    def __init__(self, channel: str):
        self.frames = []
        self._bus = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop.is_set():
            msg = self._bus.recv(timeout=0.1)
            if msg is not None:
                self.frames.append((msg.timestamp, msg.arbitration_id, bytes(msg.data)))

    def close(self):
        self._stop.set()
        self._thread.join()
        self._bus.shutdown()

    def joints(self, ids, after: float) -> list:
        """(time, q6) for each complete set of the three frames `ids`, sent after `after`."""
        out, pending = [], {}
        for stamp, can_id, data in list(self.frames):
            if stamp <= after or can_id not in ids:
                continue
            pending[ids.index(can_id)] = struct.unpack('>ii', data)
            if len(pending) == 3:
                mdeg = [v for k in range(3) for v in pending[k]]
                out.append((stamp, np.array(mdeg) / MILLIDEG_PER_RAD))
                pending = {}
        return out


def _args(**params) -> list:
    args = ['--ros-args']
    for name, value in params.items():
        args += ['-p', f'{name}:={value}']
    return args


class Graph:
    """sim_node in lock-step, arm_driver_node and a probe node, on one executor thread."""

    def __init__(self, ctx, channel: str):
        from vla_nodes.nodes.arm_driver_node import ArmDriverNode
        from vla_nodes.nodes.sim_node import SimNode
        self.sim = SimNode(context=ctx, cli_args=_args(
            lockstep='true', can_name=channel, camera_rate_hz=2.0, seed=5))
        self.driver = ArmDriverNode(context=ctx, cli_args=_args(
            use_sim_time='true', can_interface='virtual', can_name=channel, judge_flag='false',
            dry_run='false', enable_on_start='true', control_rate_hz=100.0))
        self.probe = local.Node('probe', context=ctx, cli_args=_args(use_sim_time='true'))
        self.starts, self.states = [], []
        self.probe.create_subscription(
            std_msgs.Header, contract.EPISODE_START_TOPIC,
            lambda m: self.starts.append((time.time(), stamp_to_ns(m.stamp))),
            qos_profile_latched)
        self.probe.create_subscription(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC,
                                       lambda m: self.states.append(np.array(m.position)), 10)
        self.chunks = self.probe.create_publisher(trajectory_msgs.JointTrajectory,
                                                  contract.ACTION_CHUNK_TOPIC, 10)
        self._reset = self.probe.create_client(std_srvs.Trigger, '/sim_node/reset')
        self.executor = local.SingleThreadedExecutor(context=ctx)
        for node in (self.sim, self.driver, self.probe):
            self.executor.add_node(node)
        self._spinning = graph.Spinning(self.executor)

    def now_ns(self) -> int:
        return self.probe.get_clock().now().nanoseconds

    def reset(self) -> None:
        future = self._reset.call_async(std_srvs.Trigger.Request())
        assert future.wait(30.0) and future.result().success

    def wait(self, predicate, timeout_s: float = 60.0) -> None:
        end = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < end, 'timed out'
            time.sleep(0.01)

    def send_chunk(self, stamp_ns: int, start, end, seconds: float) -> None:
        msg = trajectory_msgs.JointTrajectory(joint_names=list(contract.JOINT_NAMES))
        msg.header.stamp = ns_to_stamp(stamp_ns)
        for k, s in enumerate(np.linspace(0.1, seconds, 15)):
            point = trajectory_msgs.JointTrajectoryPoint(
                positions=[float(v) for v in start + (end - start) * (k + 1) / 15])
            point.time_from_start = ros.Duration(seconds=float(s)).to_msg()
            msg.points.append(point)
        self.chunks.publish(msg)

    def close(self):
        self._spinning.close()
        for node in (self.probe, self.driver, self.sim):
            node.destroy_node()


def test_a_lockstep_episode_runs_every_callback_on_the_stepping_thread(ctx):
    # No hand-off to the executor's thread and back at each physics step; between episodes
    # (~/reset) the executor runs them again.
    channel = f'test_episodes_{next(_channels)}'
    graph = Graph(ctx, channel)
    threads = []
    graph.probe.create_subscription(
        sensor_msgs.JointState, contract.JOINT_STATES_TOPIC,
        lambda m: threads.append(threading.current_thread().name), 10)
    try:
        graph.reset()
        graph.wait(lambda: graph.now_ns() > 300_000_000 and len(threads) > 10)
    finally:
        graph.close()
    assert set(threads) == {'sim_lockstep'}


@pytest.mark.slow
def test_a_reset_during_motion_holds_the_arm_and_refuses_the_old_episodes_chunks(ctx):
    channel = f'test_episodes_{next(_channels)}'
    listener = CanListener(channel)
    graph = Graph(ctx, channel)
    try:
        graph.reset()  # lock-step: time starts with the first episode
        graph.wait(lambda: graph.now_ns() > 200_000_000 and graph.states)
        home = graph.states[-1].copy()
        # A chunk that swings joint 1 by 0.8 rad over 2 s; reset while the arm follows it.
        away = home.copy()
        away[0] += 0.8
        observed_ns = graph.now_ns()
        graph.send_chunk(observed_ns, home, away, 2.0)
        graph.wait(lambda: graph.states[-1][0] > home[0] + 0.15)
        graph.reset()
        # This reset's episode start (the latched topic keeps one message: the start-up's and the
        # first reset's, 10 ms apart, may reach the probe as one under load).
        graph.wait(lambda: graph.starts and graph.starts[-1][1] > observed_ns)
        boundary_wall, boundary_ns = graph.starts[-1]
        assert boundary_ns > observed_ns
        # The policy's chunk from the old episode, arriving late: it must not run.
        graph.send_chunk(observed_ns + 100_000_000, home, away, 2.0)
        graph.wait(lambda: graph.now_ns() > boundary_ns + 600_000_000)
    finally:
        graph.close()
        listener.close()
    commands = listener.joints(JOINT_CTRL, after=boundary_wall)
    assert commands, 'the driver sent nothing in the new episode'
    first_t, first = commands[0]
    feedback = [q for t, q in listener.joints(JOINT_FEEDBACK, after=0.0) if t < first_t]
    measured = feedback[-1]  # what the arm reported just before that command
    assert np.allclose(first, measured, atol=1e-4), (first, measured)
    assert abs(first[0] - home[0]) < 0.02  # the arm is back home, and stays there
    for _, q in commands:
        assert np.allclose(q, first, atol=2e-3), 'a chunk of the old episode moved the arm'
    assert graph.driver._control.counts['rejected'] >= 1


@pytest.mark.slow
def test_two_lockstep_evaluations_of_the_same_policy_and_seeds_are_identical(
        one_thread, monkeypatch):
    from vla_nodes.orchestration.evaluate import evaluate, PolicySpec
    from vla_nodes.ros.launch import Graph

    def out_of_reach(self, name):
        raise AssertionError(f'evaluation reached into node {name}: use its topics')
    monkeypatch.setattr(Graph, 'node', out_of_reach)  # the figures come over the wire
    runs = [evaluate(PolicySpec('random-weight'), episodes=2, max_seconds=2.0,
                     can_name=f'test_episodes_eval_{next(_channels)}', progress=False)
            for _ in range(2)]
    first, second = runs
    assert first.seeds == second.seeds == [1001, 1002]
    assert first.chunks >= 4
    for field in ('outcomes', 'episode_s', 'final_distance_m', 'chunks'):
        assert getattr(first, field) == getattr(second, field), field
    assert first.final_distance_m[0] != first.final_distance_m[1]  # two different episodes
    # The charged delay, not the machine's speed, sets when a chunk lands.
    assert all(abs(d - 280.0) < 1e-6 for d in first.delay_ms)


def test_feedback_stamps_are_re_read_on_the_node_clock():
    from vla_nodes.arm.faults import ArrivalClock
    clock = ArrivalClock()
    assert clock.restamp('joints', 0.0, 5.0) == 0.0  # no frame ever: stays unwatched
    assert clock.restamp('joints', 1000.25, 5.0) == 5.0
    assert clock.restamp('joints', 1000.25, 9.0) == 5.0  # the same frame: seen at 5 s
    assert clock.restamp('joints', 1000.26, 9.01) == 9.01
    assert clock.restamp('status', 1000.26, 9.02) == 9.02  # streams are apart
