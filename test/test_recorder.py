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

"""The recorder: episodes, audit, services, crash safety (SIGKILL, full disk) and `vla-record`.

Everything runs for real: the node on the local backend fed by a synthetic robot (timers that
publish the contract topics), bags written by rosbags and read back by rosbags and `mcap`, a
recorder process killed with SIGKILL, a disk made full by RLIMIT_FSIZE in a child process.
"""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap
import threading
import time

from mcap.reader import make_reader
import numpy as np
import pytest
import yaml

from graph import joint_state, Spinning
from vla_nodes import contract, ros
from vla_nodes.nodes.diagnostics import ERROR
from vla_nodes.nodes.teleop_recorder_node import TeleopRecorderNode
from vla_nodes.orchestration import record as cli
from vla_nodes.record import bag_meta, bag_read, repair
from vla_nodes.record.bag import UNFINISHED_MARKER
from vla_nodes.record.bag_meta import BagError
from vla_nodes.record.episode import (
    audit_episode, EpisodeRecorder, format_audit, next_episode_index, RecorderConfig, TopicStats)
from vla_nodes.record.session import RecordingSession, saved_status
from vla_nodes.record.topics import expected_rates, record_topics
from vla_nodes.ros import image, local, type_store
from vla_nodes.ros.msgs import (
    diagnostic_msgs, geometry_msgs, sensor_msgs, std_msgs, std_srvs, tf2_msgs)

REPO = Path(__file__).resolve().parents[1]
S = 1_000_000_000  # ns per second
T0 = 1_700_000_000 * S


# --- the core: EpisodeRecorder and its audit -----------------------------------------------------

def stream(recorder, topic, make, hz, start_s, end_s, skip=()):
    """Feed `topic` at `hz` from start_s to end_s (s after T0), leaving out indices `skip`."""
    n = int(round((end_s - start_s) * hz))
    for i in range(n):
        if i not in skip:
            recorder.on_message(topic, make(i), T0 + int((start_s + i / hz) * S))


def test_audit_flags_a_stopped_camera_a_gap_and_a_missing_stream(tmp_path):
    config = RecorderConfig(tmp_path, {contract.JOINT_STATES_TOPIC: 200.0,
                                       contract.COLOR_TOPIC: 30.0, contract.EE_POSE_TOPIC: 200.0})
    recorder = EpisodeRecorder(config, {'robot': 'piper'})
    recorder.on_message(contract.INSTRUCTION_TOPIC, std_msgs.String(data='pick'), T0 - S)
    path = recorder.start(T0, {'task': 'pick'})
    rgb = image.to_msg(np.zeros((4, 6, 3), np.uint8), 'rgb8')
    # joint states: 2 s at 200 Hz with 60 messages (0.3 s) missing in the middle
    stream(recorder, contract.JOINT_STATES_TOPIC, lambda i: joint_state([0.001 * i] * 7), 200.0,
           0.0, 2.0,
           skip=range(200, 260))
    stream(recorder, contract.COLOR_TOPIC, lambda i: rgb, 30.0, 0.0, 0.5)  # camera dies at 0.5 s
    episode = recorder.stop(T0 + 2 * S, {'outcome': 'success'})

    audit = episode.audit
    assert audit['level'] == 'error' and audit['duration_s'] == 2.0
    joints = audit['topics'][contract.JOINT_STATES_TOPIC]
    assert (joints['count'], joints['gaps'], joints['level']) == (340, 1, 'warn')
    assert joints['max_gap_s'] == pytest.approx(0.305)
    assert joints['rate_hz'] == 170.0  # above 0.8 x 200 Hz: not flagged
    assert joints['problems'] == ['1 gaps longer than 0.100 s, the longest 0.305 s (expected '
                                  'period 0.005 s)']
    camera = audit['topics'][contract.COLOR_TOPIC]
    assert camera['count'] == 15 and camera['level'] == 'error'
    assert camera['problems'][0] == 'stopped 1.53 s before the end of the episode'
    assert audit['topics'][contract.EE_POSE_TOPIC]['problems'] == [
        'no messages (expected 200 Hz)']
    instruction = audit['topics'][contract.INSTRUCTION_TOPIC]  # latched: re-written at start
    assert (instruction['count'], instruction['first_s'], instruction['level']) == (1, 0.0, 'ok')
    assert f'{contract.COLOR_TOPIC}: stopped 1.53 s' in format_audit(audit)

    metadata = bag_meta.read_metadata(path)
    assert metadata['audit'] == json.loads(json.dumps(audit))
    assert (metadata['task'], metadata['robot'], metadata['outcome']) == ('pick', 'piper',
                                                                          'success')
    assert metadata['episode_index'] == 0 and metadata['expected_rates_hz'][
        contract.COLOR_TOPIC] == 30.0
    counts = {t: s['count'] for t, s in bag_read.summarize(path).items()}
    assert counts == {contract.JOINT_STATES_TOPIC: 340, contract.COLOR_TOPIC: 15,
                      contract.INSTRUCTION_TOPIC: 1}
    assert not (path / UNFINISHED_MARKER).exists()


def test_audit_of_a_clean_episode_is_ok(tmp_path):
    config = RecorderConfig(tmp_path, {contract.JOINT_STATES_TOPIC: 200.0})
    stats = TopicStats()
    for i in range(400):
        stats.add(T0 + i * 5_000_000, 15_000_000)
    audit = audit_episode({contract.JOINT_STATES_TOPIC: stats}, T0, T0 + 2 * S, config,
                          dropped={contract.COLOR_TOPIC: 3})
    assert audit['topics'][contract.JOINT_STATES_TOPIC]['level'] == 'ok'
    assert audit['topics'][contract.JOINT_STATES_TOPIC]['rate_hz'] == 200.0
    assert audit['problems'] == [f'{contract.COLOR_TOPIC}: 3 messages dropped: the writer queue '
                                 f'was full (disk slower than the recording)']


def test_episodes_numbered_discarded_and_never_two_at_once(tmp_path):
    recorder = EpisodeRecorder(RecorderConfig(tmp_path / 'out'))
    first = recorder.start(T0)
    with pytest.raises(RuntimeError, match='already recording'):
        recorder.start(T0)
    recorder.on_message('/joint_states', joint_state([0.0] * 7), T0 + 1)
    assert recorder.stop(T0 + S).path == first
    second = recorder.start(T0 + 2 * S)
    assert recorder.discard() == second and not second.exists()
    assert recorder.stop(T0) is None and recorder.discard() is None
    third = recorder.start(T0 + 3 * S)
    recorder.stop(T0 + 4 * S)
    assert first.name.startswith('episode_0000_') and third.name.startswith('episode_0001_')
    assert recorder.episodes == 2
    # a new recorder (a restarted node) continues the numbering
    assert next_episode_index(tmp_path / 'out') == 2


def test_live_rates_and_silent_streams(tmp_path):
    rates = {contract.COLOR_TOPIC: 30.0, contract.DEPTH_TOPIC: 30.0}
    recorder = EpisodeRecorder(RecorderConfig(tmp_path, rates))
    rgb = image.to_msg(np.zeros((4, 6, 3), np.uint8), 'rgb8')
    recorder.live(T0)
    recorder.start(T0)
    stream(recorder, contract.COLOR_TOPIC, lambda i: rgb, 30.0, 0.0, 1.0)
    live = recorder.live(T0 + 2 * S)
    assert live['recording'] and live['rates'][contract.COLOR_TOPIC] == 15.0
    # colour: last frame at 0.967 s; depth never came: silent since the start
    assert live['silent'] == {contract.COLOR_TOPIC: pytest.approx(1.033),
                              contract.DEPTH_TOPIC: 2.0}
    recorder.stop(T0 + 2 * S)


def test_session_tasks_outcomes_and_only_this_episodes_losses(tmp_path):
    session = RecordingSession(EpisodeRecorder(RecorderConfig(tmp_path)))
    session.on_message(contract.INSTRUCTION_TOPIC, std_msgs.String(data='stack'), T0 - S)
    session.outcome = 'success'
    # 5 messages were lost before this episode: only the 2 lost during it are its own
    path = session.start(T0, {contract.JOINT_STATES_TOPIC: 5}, {'operator': 'alice'})
    episode = session.stop(T0 + S, {contract.JOINT_STATES_TOPIC: 7})
    assert episode.audit['topics'][contract.JOINT_STATES_TOPIC]['lost'] == 2
    metadata = bag_meta.read_metadata(path)
    assert (metadata['task'], metadata['operator'], metadata['outcome']) == (
        'stack', 'alice', 'success')
    level, message, values = saved_status(episode)
    assert level == 'error' and message.startswith(f'saved {path.name}: ')
    assert values[f'audit:{contract.JOINT_STATES_TOPIC}'].startswith('error 0 msgs')
    level, _, values = session.live_status(T0 + 2 * S, {'audit:x': 'kept', 'other': 1})
    assert level is None and values['state'] == 'idle' and values['audit:x'] == 'kept'
    assert 'other' not in values
    with pytest.raises(RuntimeError, match='no episode is recording'):
        session.stop(T0 + 3 * S, {})


# --- the node on the local backend ---------------------------------------------------------------

class Robot:
    """A synthetic robot: publishes the contract topics from timers, like the real graph."""

    def __init__(self, ctx, size=(48, 64), camera='/camera/camera', camera_qos=10):
        self.node = local.Node('robot', context=ctx)
        self.camera_on = True
        self.i = 0
        n = self.node
        self.color = n.create_publisher(sensor_msgs.Image, f'{camera}/color/image_raw',
                                        camera_qos)
        self.depth = n.create_publisher(sensor_msgs.Image,
                                        f'{camera}/aligned_depth_to_color/image_raw', camera_qos)
        self.info = n.create_publisher(sensor_msgs.CameraInfo, f'{camera}/color/camera_info',
                                       camera_qos)
        self.depth_info = n.create_publisher(
            sensor_msgs.CameraInfo, f'{camera}/aligned_depth_to_color/camera_info', camera_qos)
        self.joints = n.create_publisher(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC, 10)
        self.leader = n.create_publisher(sensor_msgs.JointState,
                                         contract.LEADER_JOINT_STATES_TOPIC, 10)
        self.pose = n.create_publisher(geometry_msgs.PoseStamped, contract.EE_POSE_TOPIC, 10)
        n.create_publisher(std_msgs.String, contract.INSTRUCTION_TOPIC,
                           ros.qos_profile_latched).publish(std_msgs.String(data='pick it'))
        n.create_publisher(tf2_msgs.TFMessage, contract.TF_STATIC_TOPIC,
                           ros.qos_profile_latched).publish(tf2_msgs.TFMessage())
        self.rgb = np.full(size + (3,), 7, np.uint8)
        self.mm = np.full(size, 500, np.uint16)
        n.create_timer(0.01, self._joints)
        n.create_timer(1 / 30, self._camera)

    def _joints(self):
        self.i += 1
        self.joints.publish(joint_state([0.001 * self.i] * 7))
        self.leader.publish(joint_state([0.001 * (self.i + 1000)] * 7))
        self.pose.publish(geometry_msgs.PoseStamped())

    def _camera(self):
        if self.camera_on:
            self.color.publish(image.to_msg(self.rgb, 'rgb8'))
            self.depth.publish(image.to_msg(self.mm, '16UC1'))
            self.info.publish(sensor_msgs.CameraInfo(width=64, height=48))
            self.depth_info.publish(sensor_msgs.CameraInfo(width=64, height=48))


class Graph:
    """Spins nodes on a MultiThreadedExecutor in a background thread, as a launch would."""

    def __init__(self, ctx, *nodes):
        self.ctx = ctx
        self.executor = local.MultiThreadedExecutor(context=ctx)
        for node in nodes:
            self.executor.add_node(node)
        self.test = local.Node('test', context=ctx)
        self.executor.add_node(self.test)
        self.diagnostics = []
        self.test.create_subscription(diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC,
                                      self.diagnostics.append, 100)
        self._spinning = Spinning(self.executor)

    def call(self, service, timeout=20.0):
        client = self.test.create_client(std_srvs.Trigger, service)
        return client.call(std_srvs.Trigger.Request(), timeout_sec=timeout)

    def recorder_status(self, node='/teleop_recorder_node'):
        statuses = [s for d in list(self.diagnostics) for s in d.status if s.name == node]
        return statuses[-1] if statuses else None

    def wait_for(self, predicate, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.05)
        return False

    def close(self):
        self._spinning.close()


@pytest.fixture
def calibration(tmp_path):
    path = tmp_path / 'calibration.yaml'
    data = {'camera_to_base': {'parent_frame': 'base_link', 'translation': [0.8, 0.45, 0.6],
                               'rotation_xyzw': [0.0, 0.0, 0.0, 1.0], 'method': 'sim'}}
    path.write_text(yaml.safe_dump(data))
    return path, data


def make_recorder(ctx, out, *params):
    return TeleopRecorderNode(context=ctx, cli_args=[
        '--ros-args', '-p', f'output_dir:={out}', '-p', 'flush_period_s:=0.2',
        *[a for p in params for a in ('-p', p)]])


def test_node_records_episodes_through_its_services(ctx, tmp_path, calibration):
    cal_path, cal = calibration
    recorder = make_recorder(ctx, tmp_path / 'out', f'calibration_file:={cal_path}',
                             'robot:=piper_test', 'task_name:=pick_red_cube')
    robot = Robot(ctx)
    graph = Graph(ctx, recorder, robot.node)
    try:
        assert graph.wait_for(lambda: robot.i > 5)
        started = graph.call('/teleop_recorder_node/start_episode')
        assert started.success, started.message
        assert not graph.call('/teleop_recorder_node/start_episode').success  # one at a time
        time.sleep(1.0)
        stopped = graph.call('/teleop_recorder_node/stop_episode')
        assert stopped.success and stopped.message == started.message
        assert graph.wait_for(lambda: 'saved' in getattr(graph.recorder_status(), 'message', ''))
        status = graph.recorder_status()
        keys = {v.key for v in status.values}
        assert f'audit:{contract.JOINT_STATES_TOPIC}' in keys and 'episodes' in keys
        # a second episode, discarded
        second = graph.call('/teleop_recorder_node/start_episode')
        assert second.success and graph.call('/teleop_recorder_node/discard_episode').success
        assert not Path(second.message).exists()
        again = graph.call('/teleop_recorder_node/stop_episode')
        assert not again.success and again.message == 'no episode is recording'
    finally:
        graph.close()
        recorder.destroy_node()

    path = Path(stopped.message)
    assert [p.name for p in (tmp_path / 'out').iterdir()] == [path.name]
    stats = bag_read.summarize(path)
    camera = [t for t in stats if t.startswith('/camera/camera/')]
    assert sorted(camera) == sorted([contract.COLOR_TOPIC, contract.COLOR_INFO_TOPIC,
                                     contract.DEPTH_TOPIC, contract.DEPTH_INFO_TOPIC])
    for topic in (contract.JOINT_STATES_TOPIC, contract.LEADER_JOINT_STATES_TOPIC,
                  contract.EE_POSE_TOPIC, *camera):
        assert stats[topic]['count'] > 3, topic
    assert stats[contract.INSTRUCTION_TOPIC]['count'] == 1
    assert stats[contract.TF_STATIC_TOPIC]['count'] == 1
    leader = [m.position[0] for _, _, _, m in bag_read.read_bag(
        path, [contract.LEADER_JOINT_STATES_TOPIC])]
    follower = [m.position[0] for _, _, _, m in bag_read.read_bag(
        path, [contract.JOINT_STATES_TOPIC])]
    assert min(leader) > 1.0 > max(follower)  # the action and the state, kept apart
    metadata = bag_meta.read_metadata(path)
    assert (metadata['task'], metadata['task_name'], metadata['robot']) == (
        'pick it', 'pick_red_cube', 'piper_test')
    assert metadata['calibration'] == cal
    assert metadata['calibration_file'] == str(cal_path.resolve())
    assert {contract.JOINT_STATES_TOPIC, contract.COLOR_TOPIC} <= set(metadata['audit']['topics'])
    assert metadata['audit']['topics'][contract.COLOR_TOPIC]['expected_hz'] == 30.0
    with next(path.glob('*.mcap')).open('rb') as file:  # the independent reader agrees
        summary = make_reader(file).get_summary()
    assert summary.statistics.message_count == sum(s['count'] for s in stats.values())


def test_node_records_a_best_effort_camera(ctx, tmp_path):
    """A camera publishing with the sensor-data QoS (best effort) is recorded, not ignored."""
    recorder = make_recorder(ctx, tmp_path / 'out')
    robot = Robot(ctx, camera_qos=ros.qos_profile_sensor_data)
    graph = Graph(ctx, recorder, robot.node)
    try:
        assert graph.wait_for(lambda: robot.i > 5)
        started = graph.call('/teleop_recorder_node/start_episode')
        assert started.success, started.message
        time.sleep(1.0)
        assert graph.call('/teleop_recorder_node/stop_episode').success
    finally:
        graph.close()
        recorder.destroy_node()
    stats = bag_read.summarize(Path(started.message))
    for topic in (contract.COLOR_TOPIC, contract.DEPTH_TOPIC, contract.COLOR_INFO_TOPIC,
                  contract.DEPTH_INFO_TOPIC, contract.JOINT_STATES_TOPIC):
        assert stats[topic]['count'] > 10, topic


def test_node_reports_a_camera_that_stops(ctx, tmp_path):
    recorder = make_recorder(ctx, tmp_path, 'stall_timeout_s:=0.5')
    robot = Robot(ctx)
    graph = Graph(ctx, recorder, robot.node)
    try:
        assert graph.call('/teleop_recorder_node/start_episode').success
        time.sleep(0.3)
        robot.camera_on = False
        assert graph.wait_for(lambda: 'stopped streams' in getattr(
            graph.recorder_status(), 'message', ''))
        status = graph.recorder_status()
        assert status.level == ERROR and f'{contract.COLOR_TOPIC} silent for' in status.message
        stopped = graph.call('/teleop_recorder_node/stop_episode')
    finally:
        graph.close()
        recorder.destroy_node()
    audit = bag_meta.read_metadata(Path(stopped.message))['audit']
    assert audit['level'] == 'error'
    for topic in (contract.COLOR_TOPIC, contract.DEPTH_TOPIC, contract.DEPTH_INFO_TOPIC):
        assert audit['topics'][topic]['problems'][0].startswith('stopped '), topic


def test_node_parameters_are_checked(ctx, tmp_path):
    with pytest.raises(FileNotFoundError, match='calibration_file .* does not exist'):
        make_recorder(ctx, tmp_path, f'calibration_file:={tmp_path / "nope.yaml"}')
    with pytest.raises(ValueError, match='"key=Hz"'):
        make_recorder(ctx, tmp_path, 'expected_rates:=[/joint_states:200]')
    with pytest.raises(ValueError, match="no message type known for topic '/foo'"):
        make_recorder(ctx, tmp_path, 'topics:=[/foo]')


def test_rates_for_several_cameras_and_overrides():
    topics = record_topics([contract.JOINT_STATES_TOPIC], ['/wrist/camera'])
    assert topics['/wrist/camera/color/image_raw'] == 'sensor_msgs/msg/Image'
    assert topics['/wrist/camera/aligned_depth_to_color/camera_info'] == \
        'sensor_msgs/msg/CameraInfo'
    rates = expected_rates(topics, ['/wrist/camera'], [
        '/wrist/camera/color/image_raw=15.0', f'{contract.JOINT_STATES_TOPIC}=0'])
    assert rates == {'/wrist/camera/color/image_raw': 15.0,
                     '/wrist/camera/color/camera_info': 30.0,
                     '/wrist/camera/aligned_depth_to_color/image_raw': 30.0,
                     '/wrist/camera/aligned_depth_to_color/camera_info': 30.0}


# --- crash safety: SIGKILL and a full disk, in child processes -----------------------------------

def child(script, *args, **popen):
    env = dict(os.environ, PYTHONPATH=f'{REPO}{os.pathsep}{REPO / "test"}',
               VLA_ROS_BACKEND='local')
    return subprocess.Popen([sys.executable, '-c', textwrap.dedent(script), *map(str, args)],
                            cwd=REPO, env=env, text=True, **popen)


# A recorder and a robot (640x480 camera: ~1.5 MB per frame pair) in one process; prints the
# recorder's `flushed` count from /diagnostics, i.e. what it reports as safe on disk.
RECORD_UNTIL_KILLED = """
    import sys, time
    from test_recorder import Graph, make_recorder, Robot
    from vla_nodes.ros import local
    ctx = local.Context()
    ctx.init()
    recorder = make_recorder(ctx, sys.argv[1], 'task_name:=crash_test')
    robot = Robot(ctx, size=(480, 640))
    graph = Graph(ctx, recorder, robot.node)
    print('started', graph.call('/teleop_recorder_node/start_episode').message, flush=True)
    while True:
        status = graph.recorder_status()
        values = {v.key: v.value for v in status.values} if status else {}
        print('flushed', values.get('flushed', 0), flush=True)
        time.sleep(0.2)
"""


def test_sigkill_mid_episode_keeps_every_message_up_to_the_last_flush(tmp_path):
    proc = child(RECORD_UNTIL_KILLED, tmp_path, stdout=subprocess.PIPE)
    flushed, seen, path = 0, 0, None
    watchdog = threading.Timer(120.0, proc.kill)  # a child that hangs fails the test, not CI
    watchdog.start()
    try:
        for line in proc.stdout:
            word, value = line.split()
            if word == 'started':
                path = Path(value)
            elif int(value) > flushed:
                flushed, seen = int(value), seen + 1
                if seen == 3:  # three growing flushes: well into the episode
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        watchdog.cancel()
    assert proc.returncode == -signal.SIGKILL and seen == 3
    assert not (path / 'metadata.yaml').exists() and (path / UNFINISHED_MARKER).exists()
    with pytest.raises(BagError, match='vla-record --repair'):
        bag_read.summarize(path)

    assert repair.needs_repair(path)
    assert cli.main(['--repair', str(path)]) == 0
    assert not repair.needs_repair(path)
    messages = list(bag_read.read_bag(path))
    print(f'flushed {flushed}, recovered {len(messages)}')
    assert len(messages) >= flushed
    joints = [m.position[0] for t, _, _, m in messages if t == contract.JOINT_STATES_TOPIC]
    assert len(joints) > 10 and np.all(np.diff(joints) > 0)  # in order, as published
    images = [m for t, _, _, m in messages if t == contract.COLOR_TOPIC]
    assert images and image.from_msg(images[-1]).shape == (480, 640, 3)
    metadata = bag_meta.read_metadata(path)
    assert metadata['task_name'] == 'crash_test' and metadata['repair']['messages'] == len(
        messages)
    with next(path.glob('*.mcap')).open('rb') as file:
        assert sum(1 for _ in make_reader(file).iter_messages()) == len(messages)


# RLIMIT_FSIZE makes every file "full" at 3 MB (EFBIG), like a disk filling up.
DISK_FULL = """
    import resource, signal, sys, time
    from test_recorder import Graph, make_recorder, Robot
    from vla_nodes.ros import local
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (3_000_000, resource.RLIM_INFINITY))
    ctx = local.Context()
    ctx.init()
    recorder = make_recorder(ctx, sys.argv[1])
    robot = Robot(ctx, size=(240, 320))
    robot.camera_on = False
    graph = Graph(ctx, recorder, robot.node)
    first = graph.call('/teleop_recorder_node/start_episode')
    time.sleep(0.5)
    print('first', graph.call('/teleop_recorder_node/stop_episode').message, flush=True)
    robot.camera_on = True  # ~11 MB/s: the second episode fills the "disk"
    print('second', graph.call('/teleop_recorder_node/start_episode').message, flush=True)
    graph.wait_for(lambda: 'recording stopped' in getattr(graph.recorder_status(), 'message', ''))
    status = graph.recorder_status()
    print('diagnostics', status.level, status.message, flush=True)
    stop = graph.call('/teleop_recorder_node/stop_episode')
    print('stop', stop.success, stop.message, flush=True)
    graph.close()
    recorder.destroy_node()
"""


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='RLIMIT_FSIZE semantics')
def test_full_disk_stops_the_episode_clearly_and_keeps_the_earlier_ones(tmp_path):
    proc = child(DISK_FULL, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    lines = dict(line.split(' ', 1) for line in out.splitlines())
    first, second = Path(lines['first']), Path(lines['second'])
    assert lines['diagnostics'].startswith(f'{ERROR} recording stopped, episode {second}')
    assert 'Free disk space' in lines['diagnostics'] and '--repair' in lines['diagnostics']
    assert lines['stop'].startswith('False no episode is recording; the last one failed: ')
    assert 'File too large' in err or 'EFBIG' in err or 'OSError(27' in err  # logged
    # the first episode is intact and finished
    assert bag_read.summarize(first)[contract.JOINT_STATES_TOPIC]['count'] > 5
    assert 'audit' in bag_meta.read_metadata(first)
    # the second is unfinished: repair recovers what was flushed before the disk filled
    assert repair.needs_repair(second) and not repair.needs_repair(first)
    report = repair.repair_bag(second, keep_damaged=False)
    assert report['messages'] > 0 and report['discarded_bytes'] > 0  # a torn record at the end
    assert bag_read.summarize(second)[contract.JOINT_STATES_TOPIC]['count'] > 0
    assert sorted(p.name for p in second.iterdir()) == [f'{second.name}.mcap', 'metadata.yaml']


# --- SIGTERM: ros2 launch escalates to it, service managers send it first -----------------------

SIGTERM_LAUNCH = """\
launch:
- node:
    pkg: vla_nodes
    exec: teleop_recorder_node
    name: teleop_recorder_node
    param:
    - {name: output_dir, value: '%s'}
    - {name: autostart, value: true}
    - {name: topics, value: [/diagnostics]}
    - {name: cameras, value: ['']}
    - {name: flush_period_s, value: 0.2}
"""


def first_flushed_bag(out: Path, proc, timeout_s: float = 90.0) -> Path:
    """The recorder's bag once its MCAP file holds a flushed chunk (its own diagnostics)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and proc.poll() is None:
        for path in out.glob('episode_*'):
            files = list(path.glob('*.mcap'))
            if files and files[0].stat().st_size > 2000 and (path / UNFINISHED_MARKER).exists():
                return path
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f'no bag was flushed: {proc.communicate()}')


@pytest.mark.parametrize('how', ['vla-launch', 'teleop_recorder_node', 'vla-record'])
def test_sigterm_finishes_the_bag(tmp_path, how):
    out = tmp_path / 'out'
    launch_file = tmp_path / 'rec.launch.yaml'
    launch_file.write_text(SIGTERM_LAUNCH % out)
    command = {
        'vla-launch': ['-m', 'vla_nodes.ros.launch', launch_file],
        'teleop_recorder_node': [
            '-c', 'from vla_nodes.nodes.teleop_recorder_node import main; main()',
            '--ros-args', '-p', f'output_dir:={out}', '-p', 'autostart:=true',
            '-p', 'topics:=[/diagnostics]', '-p', "cameras:=['']", '-p', 'flush_period_s:=0.2'],
        'vla-record': ['-m', 'vla_nodes.orchestration.record', '--launch', launch_file]}[how]
    env = dict(os.environ, PYTHONPATH=str(REPO), VLA_ROS_BACKEND='local')
    proc = subprocess.Popen([sys.executable, *map(str, command)], cwd=REPO, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    path = first_flushed_bag(out, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130), err           # 130: vla-record's Ctrl-C exit code
    assert 'Traceback' not in err, err
    assert not (path / UNFINISHED_MARKER).exists() and not repair.needs_repair(path)
    # read back by rosbags itself, no repair
    from rosbags.highlevel import AnyReader
    with AnyReader([path], default_typestore=type_store.typestore()) as reader:
        topics = [c.topic for c, _, _ in reader.messages()]
    assert topics and set(topics) == {contract.DIAGNOSTICS_TOPIC}


def test_a_node_started_with_sigint_ignored_still_stops_on_sigint(tmp_path):
    """bash starts a script's `cmd &` with SIGINT ignored; a node takes SIGINT over anyway."""
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHONPATH=str(REPO), VLA_ROS_BACKEND='local')
    proc = subprocess.Popen(
        [sys.executable, '-c', 'from vla_nodes.nodes.teleop_recorder_node import main; main()',
         '--ros-args', '-p', f'output_dir:={out}', '-p', 'autostart:=true',
         '-p', 'topics:=[/diagnostics]', '-p', "cameras:=['']", '-p', 'flush_period_s:=0.2'],
        cwd=REPO, env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    path = first_flushed_bag(out, proc)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail('the node ignored SIGINT')
    assert proc.returncode == 0, err
    assert not (path / UNFINISHED_MARKER).exists() and not repair.needs_repair(path)


def test_a_second_sigterm_while_stopping_is_ignored():
    from vla_nodes.ros import signals
    local.init()
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs between bytecodes of this thread
        os.kill(os.getpid(), signal.SIGTERM)  # ros2 launch escalating: the bag still finishes
        time.sleep(0.05)
    finally:
        local.shutdown()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # given back at shutdown
    assert signals._state['installed'] is None


# --- vla-record ---------------------------------------------------------------------------------

def test_vla_record_interactive_session(ctx, tmp_path):
    recorder = make_recorder(ctx, tmp_path)
    robot = Robot(ctx)
    graph = Graph(ctx, recorder, robot.node)
    control = cli.RecorderControl(graph.test)
    assert control.wait(5.0)

    def typed():
        """What a user types; the first command once the recorder reports live rates."""
        graph.wait_for(lambda: control.status().get('rates', {}).get(contract.JOINT_STATES_TOPIC))
        yield from ['start\n', '']
        time.sleep(0.8)
        yield from ['n\n', 'bogus\n', 'd\n', 'stop\n', 's\n']
        time.sleep(0.5)
        # end of input: quits, saving the running episode

    screens = []
    try:
        assert cli.interactive(control, typed(), screens.append, refresh_s=0.2) == 0
    finally:
        graph.close()
        recorder.destroy_node()
    text = '\n'.join(screens)
    assert screens[0] == cli.HELP
    assert 'ok: start: ' in text and 'ok: discard: ' in text
    assert 'FAILED: stop: no episode is recording' in text
    assert 'unknown command' in text
    assert f'Hz  {contract.JOINT_STATES_TOPIC}' in text       # live per-topic rates on screen
    assert 'episodes saved: 0   state: recording' in text
    bags = sorted(p.name for p in tmp_path.iterdir())
    assert len(bags) == 2 and bags[0].startswith('episode_0000_')  # the discarded one is gone
    assert bags[1].startswith('episode_0001_') and screens[-1].startswith('ok: stop: ')


def test_vla_record_without_a_recorder_says_what_to_do(capsys):
    assert cli.main([]) == 1
    assert 'pass --launch FILE' in capsys.readouterr().err
    assert cli.main(['--sim', '--task', 'fly', '--episodes', '2']) == 1
    assert "unknown task 'fly'" in capsys.readouterr().err
    assert cli.main(['--repair', '/no/such/bag']) == 1
    assert 'is not a bag folder' in capsys.readouterr().err


def test_vla_record_repair_leaves_finished_bags_alone(tmp_path, capsys):
    recorder = EpisodeRecorder(RecorderConfig(tmp_path))
    path = recorder.start(T0)
    recorder.on_message(contract.JOINT_STATES_TOPIC, joint_state([0.001] * 7), T0 + 1)
    recorder.stop(T0 + 2)
    before = sorted(p.name for p in path.iterdir())
    assert cli.main(['--repair', str(path)]) == 0
    assert 'nothing to repair' in capsys.readouterr().out
    assert sorted(p.name for p in path.iterdir()) == before


@pytest.mark.slow
def test_vla_record_sim_records_five_expert_episodes(tmp_path, monkeypatch):
    monkeypatch.setenv('MUJOCO_GL', os.environ.get('MUJOCO_GL', 'egl'))
    assert cli.main(['--sim', '--task', 'pick_red_cube', '--episodes', '5',
                     '--output-dir', str(tmp_path), '--seed', '10']) == 0
    bags = sorted(tmp_path.glob('episode_*'))
    assert len(bags) == 5
    seeds = []
    for path in bags:
        stats = bag_read.summarize(path)
        for topic in (contract.COLOR_TOPIC, contract.COLOR_INFO_TOPIC, contract.DEPTH_TOPIC,
                      contract.DEPTH_INFO_TOPIC, contract.METRIC_DEPTH_TOPIC,
                      contract.EE_POSE_TOPIC, contract.JOINT_STATES_TOPIC,
                      contract.LEADER_JOINT_STATES_TOPIC):
            assert stats[topic]['count'] > 5, (path, topic)
        assert stats[contract.INSTRUCTION_TOPIC]['count'] == 1
        assert stats[contract.TF_STATIC_TOPIC]['count'] == 1
        metadata = bag_meta.read_metadata(path)
        assert (metadata['task'], metadata['task_name']) == ('pick up the red cube',
                                                             'pick_red_cube')
        assert metadata['outcome'] in ('success', 'failure')
        assert metadata['calibration']['camera_to_base']['parent_frame'] == 'base_link'
        assert metadata['audit']['topics'][contract.COLOR_TOPIC]['count'] == stats[
            contract.COLOR_TOPIC]['count']
        seeds.append(int(metadata['seed']))
        # the expert moved the leader arm and the follower followed
        leader = np.array([m.position for _, _, _, m in bag_read.read_bag(
            path, [contract.LEADER_JOINT_STATES_TOPIC])])
        follower = np.array([m.position for _, _, _, m in bag_read.read_bag(
            path, [contract.JOINT_STATES_TOPIC])])
        assert np.ptp(leader[:, :6], axis=0).max() > 0.1
        assert np.ptp(follower[:, :6], axis=0).max() > 0.1
        with next(path.glob('*.mcap')).open('rb') as file:
            assert make_reader(file).get_summary().statistics.message_count == sum(
                s['count'] for s in stats.values())
    assert seeds == [11, 12, 13, 14, 15]  # sim_node starts on --seed; each reset takes the next


@pytest.mark.slow
def test_two_lock_step_recordings_of_a_seed_hold_the_same_messages(tmp_path, monkeypatch):
    # The leader's frames counted from a wall-clock instant (piper_sdk's Hz): the second
    # recording's leader began 80 ms of simulated time later, and the exports differed by a row.
    monkeypatch.setenv('MUJOCO_GL', os.environ.get('MUJOCO_GL', 'egl'))
    runs = []
    for run in ('a', 'b'):
        [result] = cli.record_sim('pick_red_cube', 1, str(tmp_path / run), seed=5, progress=False,
                                  launch_args={'max_episode_s': '1.5', 'can_name': 'rec_' + run})
        runs.append({topic: [(stamp, list(m.position)) for _, _, stamp, m in bag_read.read_bag(
            result['path'], [topic])] for topic in (contract.LEADER_JOINT_STATES_TOPIC,
                                                    contract.JOINT_STATES_TOPIC)})
    assert len(runs[0][contract.LEADER_JOINT_STATES_TOPIC]) > 50
    assert runs[0] == runs[1]
