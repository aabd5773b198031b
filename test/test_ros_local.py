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

"""Façade semantics of the local backend: QoS, latching, timers, executors, parameters."""

import threading
import time

import pytest

from graph import spin_executor
from vla_nodes.ros import local, params as P
from vla_nodes.ros.msgs import rosgraph_msgs, sensor_msgs, std_msgs, std_srvs
from vla_nodes.ros.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy


def drain(node):
    executor = local.SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    spin_executor(executor, 0.05)


def call_then_shut_down(ctx, server, client, request, executor_type):
    """Spin `server` on a thread, call `client` (blocking), then shut the context down."""
    executor = executor_type(context=ctx)
    executor.add_node(server)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    response = client.call(request, timeout_sec=2.0)
    ctx.shutdown()
    thread.join(2.0)
    executor.shutdown()
    return response


def test_keep_last_drops_the_oldest(ctx):
    node = local.Node('n', context=ctx)
    got = []
    sub = node.create_subscription(std_msgs.String, 'chatter', lambda m: got.append(m.data), 2)
    pub = node.create_publisher(std_msgs.String, 'chatter', 10)
    for i in range(5):
        pub.publish(std_msgs.String(data=str(i)))
    drain(node)
    assert got == ['3', '4']
    assert sub.dropped == 3


def test_transient_local_late_joiner_gets_the_last_message(ctx):
    node = local.Node('n', context=ctx)
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    pub = node.create_publisher(std_msgs.String, '/vla/instruction', latched)
    pub.publish(std_msgs.String(data='old'))
    pub.publish(std_msgs.String(data='pick up the red cube'))
    late, volatile = [], []
    node.create_subscription(std_msgs.String, '/vla/instruction',
                             lambda m: late.append(m.data), latched)
    node.create_subscription(std_msgs.String, '/vla/instruction',
                             lambda m: volatile.append(m.data), 10)
    drain(node)
    assert late == ['pick up the red cube']
    assert volatile == []


def test_incompatible_qos_does_not_deliver(ctx):
    node = local.Node('n', context=ctx)
    got = []
    node.create_subscription(std_msgs.String, 't', got.append, 10)  # RELIABLE
    pub = node.create_publisher(
        std_msgs.String, 't', QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
    pub.publish(std_msgs.String(data='x'))
    drain(node)
    assert got == []


def test_wrong_type_on_a_topic_is_dropped_and_the_graph_keeps_running(ctx, caplog):
    node = local.Node('n', context=ctx)
    states, texts = [], []
    node.create_subscription(sensor_msgs.JointState, '/joint_states', states.append, 10)
    node.create_subscription(std_msgs.String, '/joint_states', texts.append, 10)
    wrong = node.create_publisher(std_msgs.String, '/joint_states', 10)
    right = node.create_publisher(sensor_msgs.JointState, '/joint_states', 10)
    wrong.publish(std_msgs.String(data='not a joint state'))
    right.publish(sensor_msgs.JointState(name=['joint1'], position=[0.5]))
    drain(node)
    assert len(states) == 1 and list(states[0].position) == [0.5]
    assert [t.data for t in texts] == ['not a joint state']
    assert 'expects sensor_msgs/msg/JointState' in caplog.text
    with pytest.raises(TypeError, match='expected JointState'):
        right.publish(std_msgs.String(data='x'))


@pytest.mark.parametrize('executor_cls', [local.SingleThreadedExecutor,
                                          local.MultiThreadedExecutor])
def test_timer_fires_at_its_period(ctx, executor_cls):
    node = local.Node('n', context=ctx)
    stamps = []
    node.create_timer(0.02, lambda: stamps.append(time.monotonic()))
    executor = executor_cls(context=ctx)
    executor.add_node(node)
    spin_executor(executor, 0.5)
    executor.shutdown()
    assert 20 <= len(stamps) <= 26
    periods = [b - a for a, b in zip(stamps, stamps[1:])]
    assert abs(sorted(periods)[len(periods) // 2] - 0.02) < 0.004


@pytest.mark.parametrize('group_cls, expected', [(local.MutuallyExclusiveCallbackGroup, 1),
                                                 (local.ReentrantCallbackGroup, 2)])
def test_callback_groups_under_the_multi_threaded_executor(ctx, group_cls, expected):
    node = local.Node('n', context=ctx)
    group = group_cls()
    running, peak, lock = [0], [0], threading.Lock()

    def slow(_msg):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.1)
        with lock:
            running[0] -= 1

    for topic in ('a', 'b'):
        node.create_subscription(std_msgs.String, topic, slow, 10, callback_group=group)
    executor = local.MultiThreadedExecutor(num_threads=4, context=ctx)
    executor.add_node(node)
    for topic in ('a', 'b'):
        node.create_publisher(std_msgs.String, topic, 10).publish(std_msgs.String())
    spin_executor(executor, 0.3)
    executor.shutdown()
    assert peak[0] == expected


def test_parameters_from_yaml_and_command_line(ctx, tmp_path):
    params_file = tmp_path / 'p.yaml'
    params_file.write_text(
        '/**:\n  ros__parameters:\n    rate: 10.0\n    name: all\n'
        'camera:\n  ros__parameters:\n    rate: 30.0\n    size: {width: 640}\n'
        '/other/camera:\n  ros__parameters:\n    rate: 99.0\n')
    node = local.Node('camera', context=ctx, cli_args=[
        '--ros-args', '--params-file', str(params_file), '-p', 'serial:=abc',
        '-p', 'camera:exposure:=100'])
    assert node.declare_parameter('rate', 1.0).value == 30.0
    assert node.declare_parameter('name', '').value == 'all'
    assert node.declare_parameter('size.width', 0).value == 640
    assert node.declare_parameter('serial', '').value == 'abc'
    assert node.declare_parameter('exposure', 0).value == 100
    assert node.declare_parameter('unset', [1.0, 2.0]).value == [1.0, 2.0]
    with pytest.raises(P.ParameterNotDeclaredException):
        node.get_parameter('nope')


def test_parameter_types_are_strict_like_rclpy(ctx):
    node = local.Node('n', context=ctx, cli_args=['--ros-args', '-p', 'rate:=30'])
    with pytest.raises(P.InvalidParameterTypeException, match='expecting type DOUBLE'):
        node.declare_parameter('rate', 1.0)
    node.declare_parameter('gain', 1.0)
    result = node.set_parameters([P.Parameter('gain', value='high')])[0]
    assert not result.successful and 'expecting type DOUBLE' in result.reason
    assert node.set_parameters([P.Parameter('gain', value=2.5)])[0].successful
    assert node.get_parameter('gain').value == 2.5
    seen = []
    node.add_on_set_parameters_callback(
        lambda ps: seen.extend(ps) or P.SetParametersResult(successful=False, reason='no'))
    assert not node.set_parameters([P.Parameter('gain', value=3.0)])[0].successful
    assert node.get_parameter('gain').value == 2.5 and seen[0].value == 3.0


def test_parameter_ranges_are_enforced_like_rclpy(ctx):
    node = local.Node('n', context=ctx, cli_args=['--ros-args', '-p', 'rate:=0.0',
                                                  '-p', 'gain:=.nan', '-p', 'count:=7'])
    unit = P.ParameterDescriptor(floating_point_range=[P.FloatingPointRange(
        from_value=1.0, to_value=1000.0)])
    with pytest.raises(P.InvalidParameterValueException, match='Min: 1.0, Max: 1000.0'):
        node.declare_parameter('rate', 200.0, unit)
    with pytest.raises(P.InvalidParameterValueException):   # NaN lies in no range
        node.declare_parameter('gain', 200.0, unit)
    with pytest.raises(P.InvalidParameterValueException, match='Max: 5'):
        node.declare_parameter('count', 1, P.ParameterDescriptor(
            integer_range=[P.IntegerRange(from_value=0, to_value=5)]))
    assert node.declare_parameter('ok', 200.0, unit).value == 200.0
    result = node.set_parameters([P.Parameter('ok', value=2000.0)])[0]
    assert not result.successful and 'out of range' in result.reason
    assert node.get_parameter('ok').value == 200.0


def test_parameters_are_set_over_the_nodes_set_parameters_service(ctx):
    """As rclpy's (`ros2 param set`): each parameter on its own, refusals answered, not raised."""
    from vla_nodes.ros.msgs import rcl_interfaces
    node = local.Node('recorder', context=ctx, namespace='arm')
    node.declare_parameter('episode_metadata', [''])
    caller = local.Node('caller', context=ctx)
    quiet = local.Node('quiet', context=ctx, start_parameter_services=False)
    assert not caller.create_client(
        rcl_interfaces.SetParameters, f'{quiet.get_fully_qualified_name()}/set_parameters'
    ).wait_for_service(timeout_sec=0.05)
    client = caller.create_client(rcl_interfaces.SetParameters, '/arm/recorder/set_parameters')
    assert client.wait_for_service(timeout_sec=1.0)
    request = rcl_interfaces.SetParameters.Request(parameters=[
        P.Parameter(name, value=value).to_parameter_msg() for name, value in (
            ('episode_metadata', ['seed=3', 'task=x']), ('episode_metadata', 3),
            ('undeclared', 1.5))])
    response = call_then_shut_down(ctx, node, client, request, local.SingleThreadedExecutor)
    assert [r.successful for r in response.results] == [True, False, False]
    assert 'expecting type STRING_ARRAY' in response.results[1].reason
    assert 'not declared' in response.results[2].reason
    assert node.get_parameter('episode_metadata').value == ['seed=3', 'task=x']


@pytest.mark.parametrize('value', [True, 7, 2.5, 'text', b'\x01', [False], [1, 2], [0.5],
                                   ['a'], None])
def test_parameter_message_round_trip(value):
    param = P.Parameter('p', value=value)
    back = P.Parameter.from_parameter_msg(param.to_parameter_msg())
    assert (back.name, back.type_, back.value) == ('p', param.type_, value)


def test_names_namespaces_and_remaps(ctx):
    node = local.Node('driver', context=ctx, namespace='left', cli_args=[
        '--ros-args', '-r', '__node:=left_driver', '-r', 'cmd:=/vla/action_chunk'])
    assert node.get_fully_qualified_name() == '/left/left_driver'
    assert node.resolve_topic_name('~/enable') == '/left/left_driver/enable'
    assert node.resolve_topic_name('joint_states') == '/left/joint_states'
    assert node.resolve_topic_name('cmd') == '/vla/action_chunk'
    assert node.resolve_topic_name('/abs') == '/abs'


def test_service_round_trip(ctx):
    server = local.Node('server', context=ctx)
    calls = []

    def handle(request, response):
        calls.append(request.data)
        response.success, response.message = True, f'enabled={request.data}'
        return response

    server.create_service(std_srvs.SetBool, '~/enable', handle)
    client_node = local.Node('client', context=ctx)
    client = client_node.create_client(std_srvs.SetBool, '/server/enable')
    assert client.wait_for_service(timeout_sec=1.0)
    response = call_then_shut_down(ctx, server, client, std_srvs.SetBool.Request(data=True),
                                   local.MultiThreadedExecutor)
    assert calls == [True]
    assert response.success and response.message == 'enabled=True'
    missing = client_node.create_client(std_srvs.Trigger, '/nobody')
    assert not missing.wait_for_service(timeout_sec=0.05)


def test_sim_time_follows_clock_topic(ctx):
    node = local.Node('n', context=ctx, cli_args=['--ros-args', '-p', 'use_sim_time:=true'])
    assert node.get_clock().now().nanoseconds == 0
    pub = node.create_publisher(rosgraph_msgs.Clock, '/clock', 10)
    msg = rosgraph_msgs.Clock()
    msg.clock.sec, msg.clock.nanosec = 12, 500
    pub.publish(msg)
    drain(node)
    assert node.get_clock().now().nanoseconds == 12 * 10**9 + 500


def test_destroyed_node_receives_nothing(ctx):
    node = local.Node('n', context=ctx)
    got = []
    node.create_subscription(std_msgs.String, 't', got.append, 10)
    pub = local.Node('p', context=ctx).create_publisher(std_msgs.String, 't', 10)
    node.destroy_node()
    pub.publish(std_msgs.String())
    assert pub.get_subscription_count() == 0
    assert got == []


def test_an_executor_sees_entities_made_and_destroyed_after_it_started(ctx):
    # The executor keeps its nodes' entities between spins; a change must still reach it.
    node = local.Node('n', context=ctx)
    executor = local.SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    spin_executor(executor, 0.05)
    got = []
    sub = node.create_subscription(std_msgs.String, 't', got.append, 10)
    pub = node.create_publisher(std_msgs.String, 't', 10)
    pub.publish(std_msgs.String(data='a'))
    spin_executor(executor, 0.05)
    assert [m.data for m in got] == ['a']
    pub.publish(std_msgs.String(data='b'))  # queued, then its subscription goes
    node.destroy_subscription(sub)
    ticks = []
    timer = node.create_timer(0.01, lambda: ticks.append(1))
    assert spin_executor(executor, 2.0, until=lambda: len(ticks) >= 2)
    assert [m.data for m in got] == ['a']
    node.destroy_timer(timer)
    spin_executor(executor, 0.05)
    count = len(ticks)
    spin_executor(executor, 0.05)
    assert len(ticks) == count and not executor.has_work()


def test_a_thread_that_took_over_runs_every_callback_while_executors_wait(ctx):
    # A lock-step simulator takes the callbacks over for an episode: no executor thread to wake
    # and be woken by at each physics step.
    node = local.Node('n', context=ctx)
    got = []
    node.create_subscription(std_msgs.String, 't',
                             lambda m: got.append((m.data, threading.current_thread())), 10)
    pub = node.create_publisher(std_msgs.String, 't', 10)
    executor = local.SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    ctx.take_over()
    try:
        pub.publish(std_msgs.String(data='a'))
        pub.publish(std_msgs.String(data='b'))
        time.sleep(0.1)
        assert got == []  # the executor left them to the thread that took over
        assert ctx.run_ready() == 2
        assert got == [('a', threading.current_thread()), ('b', threading.current_thread())]
        assert ctx.run_ready() == 0
    finally:
        ctx.hand_back()
    pub.publish(std_msgs.String(data='c'))
    end = time.monotonic() + 5.0
    while len(got) < 3 and time.monotonic() < end:
        time.sleep(0.01)
    assert got[2] == ('c', thread)  # handed back: the executor runs them again
    executor.shutdown()
    thread.join(2.0)
    node.destroy_node()


def test_idle_waiters_hear_once_the_executor_ran_out_of_work_not_per_callback(ctx):
    # A lock-step simulator waits on idle_cond; a wake-up per callback only cost it a thread
    # switch (idle() cannot say yes before the executor looked again).
    node = local.Node('n', context=ctx)
    got = []
    node.create_subscription(std_msgs.String, 't', got.append, 10)
    pub = node.create_publisher(std_msgs.String, 't', 10)
    executor = local.SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    spin_executor(executor, 0.05)
    notices = []
    notify_all = ctx.idle_cond.notify_all
    ctx.idle_cond.notify_all = lambda: (notices.append(len(got)), notify_all())
    for text in 'abc':
        pub.publish(std_msgs.String(data=text))
    spin_executor(executor, 0.1)
    assert len(got) == 3 and notices == [3] and ctx.idle(scan=False)
