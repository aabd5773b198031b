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

"""The zenoh backend: rmw_zenoh's formats, and real sessions in separate processes on loopback.

The expected strings are written from reading ros2/rmw_zenoh (rmw_zenoh_cpp/src/detail, the
zenoh 1.x line); the source lines are quoted next to each assertion.
"""

import os
from pathlib import Path
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from zenoh_peer import frames, INSTRUCTION

from graph import spin
from vla_nodes.ros import local, msgs, type_store
from vla_nodes.ros import zenoh_keys as K
from vla_nodes.ros.launch_procs import stop_launcher
from vla_nodes.ros.qos import qos_profile_latched, qos_profile_sensor_data
from vla_nodes.ros.zenoh_bus import session_config, ZenohBus

zenoh = pytest.importorskip('zenoh')  # the `zenoh` extra; the `test` extra installs it
ROOT = Path(__file__).resolve().parents[1]
JOINT_STATE_HASH = 'RIHS01_a13ee3a330e346c9d87b5aa18d24e11690752bd33a0350f11c5882bc9179260e'
# std_srvs/srv/Trigger and SetBool as rosidl hashes them; the same values are hard-coded by
# independent rmw_zenoh clients (e.g. hiroz, zenoh-ros2 bridges' test tables).
TRIGGER_HASH = 'RIHS01_eeff2cd6fa5ad9d27cdf4dec64818317839b62f212a91e6b5304b634b2062c5f'
SETBOOL_HASH = 'RIHS01_abe9e4bb6b41b40e6789712c00ec8871923e089af3f667a79992a428cff2da0a'


# --- formats ------------------------------------------------------------------------------------

def test_data_key_expression_is_rmw_zenohs():
    # liveliness_utils.cpp TopicInfo::TopicInfo:
    #   topic_keyexpr_ = std::to_string(domain_id); += "/"; += strip_slashes(name_); += "/";
    #   += type_;  += "/"; += type_hash_;
    # type_support_common.cpp _create_type_name: ss << message_namespace << "::";
    #   ss << "dds_::" << message_name << "_";
    assert K.topic_keyexpr(0, '/joint_states', 'sensor_msgs/msg/JointState', JOINT_STATE_HASH) \
        == f'0/joint_states/sensor_msgs::msg::dds_::JointState_/{JOINT_STATE_HASH}'
    assert K.type_hash('sensor_msgs/msg/JointState') == JOINT_STATE_HASH
    # rmw_service_data.cpp: service_type = response type name with "Response_" cut off.
    assert K.topic_keyexpr(3, '/arm_driver_node/enable/', 'std_srvs/srv/SetBool', SETBOOL_HASH) \
        == f'3/arm_driver_node/enable/std_srvs::srv::dds_::SetBool_/{SETBOOL_HASH}'
    assert K.type_hash('std_srvs/srv/Trigger') == TRIGGER_HASH
    assert K.type_hash('std_srvs/srv/SetBool') == SETBOOL_HASH


def test_liveliness_tokens_are_rmw_zenohs():
    # liveliness_utils.cpp: enum KeyexprIndex { AdminSpace, DomainId, Zid, Nid, Id, EntityStr,
    #   Enclave, Namespace, NodeName, TopicName, TopicType, TopicTypeHash, TopicQoS };
    #   ADMIN_SPACE[] = "@ros2_lv"; NODE_STR "NN", PUB_STR "MP", SUB_STR "MS", SRV_STR "SS",
    #   CLI_STR "SC"; SLASH_REPLACEMENT = '%'; parts joined with '/'.
    # rmw_node_data.cpp: Entity::make(zid, std::to_string(id), std::to_string(id), Node, ...)
    zid = '1f2e3d4c5b6a79881f2e3d4c5b6a7988'
    node = K.Entity(0, zid, '4', '4', 'NN', '/', '/', 'pose_node')
    assert node.keyexpr == f'@ros2_lv/0/{zid}/4/4/NN/%/%/pose_node'
    # qos.cpp defaults: KEEP_LAST, depth 42, RELIABLE, VOLATILE, infinite durations, AUTOMATIC;
    # qos_to_keyexpr writes a field only when it differs: "rel:dur:hist,depth:dl,dl:ls,ls:lv,s,ns"
    assert K.qos_keyexpr(1, 2, 1, 10) == '::,10:,:,:,,'           # depth 10
    assert K.qos_keyexpr(2, 2, 1, 5) == '2::,5:,:,:,,'            # qos_profile_sensor_data
    assert K.qos_keyexpr(1, 1, 1, 1) == ':1:,1:,:,:,,'            # latched (transient local)
    assert K.qos_keyexpr(0, 0, 2, 0) == '::2,:,:,:,,'             # system default, KEEP_ALL
    pub = K.Entity(0, zid, '4', '7', 'MP', '/', '/vla', 'pose_node', '/vla/ee_pose',
                   'geometry_msgs/msg/PoseStamped', 'RIHS01_x', '::,10:,:,:,,')
    assert pub.keyexpr == (f'@ros2_lv/0/{zid}/4/7/MP/%/%vla/pose_node/%vla%ee_pose/'
                           'geometry_msgs::msg::dds_::PoseStamped_/RIHS01_x/::,10:,:,:,,')
    assert K.Entity.parse(pub.keyexpr) == pub and K.Entity.parse(node.keyexpr) == node
    assert K.Entity.parse('@ros2_lv/0/zid/1/2/XX/%/%/n') is None


def test_gid_and_attachment_are_rmw_zenohs():
    import xxhash
    import zenoh.ext as zx
    token = '@ros2_lv/0/abc/0/1/MP/%/%/talker/%chatter/std_msgs::msg::dds_::String_/H/::,7:,:,:,,'
    # liveliness_utils.cpp: memcpy(gid_, &keyexpr_gid.low64, 8); memcpy(gid_ + 8, &high64, 8)
    # on a little-endian host: the 128-bit value little-endian; xxhash's digest is big-endian.
    assert K.gid(token) == xxhash.xxh3_128_digest(token.encode())[::-1]
    # attachment_helpers.cpp serialize_to_zbytes: serializer.serialize(sequence_number_);
    #   serialize(source_timestamp_); serialize(source_gid_)  (int64, int64, std::array<u8, 16>)
    gid = K.gid(token)
    expected = zx.z_serialize((zx.Int64(42), zx.Int64(1_700_000_000_123_456_789),
                               [zx.UInt8(b) for b in gid])).to_bytes()
    assert K.attachment(42, 1_700_000_000_123_456_789, gid) == expected
    assert K.parse_attachment(expected) == (42, 1_700_000_000_123_456_789, gid)


@pytest.mark.parametrize('shm', [True, False])
def test_payload_is_the_cdr_of_the_message(shm):
    # The frame's pixels go into shared memory straight from the message (msgs.serialize_parts),
    # or into one buffer without it; either way the bytes are the CDR rmw_zenoh reads.
    img, joints = frames()
    bus = ZenohBus(session_config('listen/endpoints=[];connect/endpoints=[];'
                                  f'transport/shared_memory/enabled={str(shm).lower()}'))
    try:
        for msg in (img, joints):
            payload = zenoh.ZBytes(bus._payload(msg))
            assert payload.to_bytes() == msgs.serialize(msg)
            assert (payload.as_shm() is not None) == (shm and msg is img)
    finally:
        bus.close()


# --- real sessions in two processes ------------------------------------------------------------

def _free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return f'tcp/127.0.0.1:{s.getsockname()[1]}'


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), VLA_ROS_BACKEND='zenoh')


def _wait(condition, seconds: float, step: float = 0.05) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not condition():
        time.sleep(step)
    return condition()


@pytest.fixture(scope='module')
def peer():
    """This process listens; test/zenoh_peer.py (another process) connects and serves."""
    endpoint = _free_endpoint()
    bus = ZenohBus(session_config(f'listen/endpoints=["{endpoint}"];connect/endpoints=[]'))
    context = local.Context()
    context.init(bus=bus)
    proc = subprocess.Popen([sys.executable, str(ROOT / 'test' / 'zenoh_peer.py'), endpoint],
                            env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'ready'
        yield context
    finally:
        proc.stdin.close()
        proc.wait(10)
        context.try_shutdown()


def test_image_and_joint_state_cross_processes_byte_exact(peer):
    node = local.Node('listener', context=peer)
    img, joints = frames()
    got = {'img': [], 'js': []}
    node.create_subscription(type(img), '/camera/camera/color/image_raw', got['img'].append,
                             qos_profile_sensor_data)
    node.create_subscription(type(joints), '/joint_states', got['js'].append, 10)
    # The raw Zenoh sample, as rmw_zenoh_cpp would receive it: key, payload, attachment.
    key = K.topic_keyexpr(0, '/joint_states', 'sensor_msgs/msg/JointState', JOINT_STATE_HASH)
    raw, raw_img = [], []
    sub = peer.bus.session.declare_subscriber(key, raw.append)
    img_key = K.topic_keyexpr(0, '/camera/camera/color/image_raw', 'sensor_msgs/msg/Image',
                              K.type_hash('sensor_msgs/msg/Image'))
    img_sub = peer.bus.session.declare_subscriber(img_key, raw_img.append)
    assert spin(peer, [node], 10, lambda: got['img'] and got['js'] and raw and raw_img,
                local.SingleThreadedExecutor)
    # Same machine: the frame came through shared memory, the small JointState did not.
    assert raw_img[0].payload.as_shm() is not None and raw[0].payload.as_shm() is None
    assert raw_img[0].payload.to_bytes() == msgs.serialize(img)
    assert msgs.serialize(got['img'][0]) == msgs.serialize(img)
    assert got['js'][0] == joints and msgs.serialize(got['js'][0]) == msgs.serialize(joints)
    assert raw[0].payload.to_bytes() == msgs.serialize(joints)
    seq, stamp, gid = K.parse_attachment(raw[0].attachment.to_bytes())
    publisher, = [e for e in peer.bus.entities('MP', '/joint_states') if e.node_name == 'peer']
    assert gid == publisher.gid and seq >= 1 and abs(stamp - time.time_ns()) < 60e9
    assert publisher.zid != peer.bus.zid and publisher.qos == '::,10:,:,:,,'
    sub.undeclare()
    img_sub.undeclare()
    node.destroy_node()


def test_service_call_across_processes(peer):
    node = local.Node('caller', context=peer)
    SetBool = msgs.get_service('std_srvs/srv/SetBool')
    client = node.create_client(SetBool, '/peer/enable')
    assert client.wait_for_service(timeout_sec=5)
    future = client.call_async(SetBool.Request(data=True))
    assert future.wait(5)
    assert future.result() == SetBool.Response(success=True, message='enable=True')
    server, = peer.bus.entities('SS', '/peer/enable')
    assert server.type_name == 'std_srvs/srv/SetBool' and server.type_hash == SETBOOL_HASH
    assert peer.bus.entities('SC', '/peer/enable')  # our client's token is in the graph too
    node.destroy_node()


def test_transient_local_late_joiner_gets_the_last_message(peer):
    node = local.Node('late', context=peer)
    String = msgs.get_message('std_msgs/msg/String')
    latched, volatile = [], []
    node.create_subscription(String, '/vla/instruction', volatile.append, 10)
    node.create_subscription(String, '/vla/instruction', latched.append, qos_profile_latched)
    assert spin(peer, [node], 5, lambda: latched, local.SingleThreadedExecutor)
    assert latched == [String(data=INSTRUCTION)]
    assert volatile == []  # published once, before we joined: only the cache delivers it
    node.destroy_node()


# --- vla-launch --processes ---------------------------------------------------------------------

def test_launch_processes_supervises(tmp_path):
    """Two nodes of the sim graph in two processes; one is killed, the other keeps working."""
    endpoint = _free_endpoint()
    log = tmp_path / 'launch.log'
    with open(log, 'w') as stream:
        launcher = subprocess.Popen(
            [sys.executable, '-m', 'vla_nodes.ros.launch', 'test/data/two_nodes.launch.yaml',
             '--processes', '--listen', endpoint], cwd=ROOT, env=_env(), stderr=stream)
    context = local.Context()
    context.init(bus=ZenohBus(session_config(
        f'connect/endpoints=["{endpoint}"];listen/endpoints=[]')))
    try:
        bus = context.bus
        names = lambda: {e.node_name for e in bus.entities('NN')}  # noqa: E731
        assert _wait(lambda: {'pose_node', 'depth_node'} <= names(), 60), names()
        pids = dict(re.findall(r'started /(\w+) .* pid (\d+)', log.read_text()))
        os.kill(int(pids['depth_node']), signal.SIGKILL)
        assert _wait(lambda: 'depth_node' not in names(), 10)
        assert _wait(lambda: 'node /depth_node exited (killed by SIGKILL); the other nodes '
                     'keep running' in log.read_text(), 5)
        # pose_node still answers: /clock and /joint_states in, /vla/ee_pose out.
        node = local.Node('probe', context=context)
        Clock = msgs.get_message('rosgraph_msgs/msg/Clock')
        clock = node.create_publisher(Clock, '/clock', 10)
        js = node.create_publisher(msgs.get_message('sensor_msgs/msg/JointState'),
                                   '/joint_states', 10)
        poses = []
        node.create_subscription(msgs.get_message('geometry_msgs/msg/PoseStamped'),
                                 '/vla/ee_pose', poses.append, 10)
        _, joints = frames()
        joints.position = [0.0] * 7

        def alive():
            clock.publish(Clock(clock=msgs.ns_to_stamp(2 * 10**9)))
            js.publish(joints)
            return bool(poses)
        assert spin(context, [node], 20, alive, local.SingleThreadedExecutor)
        assert names() >= {'pose_node'} and launcher.poll() is None
        node.destroy_node()
        # The killed node started again alone, joining the running graph as from another machine.
        alone = subprocess.Popen(
            [sys.executable, '-m', 'vla_nodes.ros.launch', 'test/data/two_nodes.launch.yaml',
             '--processes', '--connect', endpoint, '--only', 'depth_node'],
            cwd=ROOT, env=_env(), stderr=subprocess.PIPE, text=True)
        assert _wait(lambda: 'depth_node' in names(), 60), names()
        code, err = stop_launcher(alone, 20), alone.stderr.read()
        assert code == 0, f'exit code {code} (None: no exit 20 s after SIGINT): {err}'
        assert 'pose_node' not in err  # --only: depth_node and nothing else
    finally:
        context.try_shutdown()
        code = stop_launcher(launcher, 20)
    text = log.read_text()
    assert '/pose_node: exit code 0' in text and '/depth_node: killed by SIGKILL' in text
    assert code == 1  # a node died: the launch reports failure


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_a_launcher_started_with_sigint_ignored_stops_its_nodes_on_a_signal(tmp_path, signum):
    """bash starts `cmd &` of a script with SIGINT ignored; a service manager sends SIGTERM."""
    endpoint, log = _free_endpoint(), tmp_path / 'launch.log'
    with open(log, 'w') as stream:
        launcher = subprocess.Popen(
            [sys.executable, '-m', 'vla_nodes.ros.launch', 'test/data/two_nodes.launch.yaml',
             '--processes', '--listen', endpoint, '--only', 'pose_node'],
            cwd=ROOT, env=_env(), stderr=stream,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    context = local.Context()
    context.init(bus=ZenohBus(session_config(
        f'connect/endpoints=["{endpoint}"];listen/endpoints=[]')))
    try:  # the node is up (a SIGINT while its interpreter starts would kill it instead)
        assert _wait(lambda: any(e.node_name == 'pose_node'
                                 for e in context.bus.entities('NN')), 60), log.read_text()
    finally:
        context.try_shutdown()
        launcher.send_signal(signum)
        try:
            code = launcher.wait(20)
        except subprocess.TimeoutExpired:  # deaf to it: kill it and its node, and fail
            code = stop_launcher(launcher, 0.1) and None
    assert code == 0, log.read_text()
    assert '/pose_node: exit code 0' in log.read_text()  # stopped by the launcher, not orphaned


# --- interop with an independent rmw_zenoh implementation ---------------------------------------

JOINT_STATE_MSG = 'std_msgs/Header header\nstring[] name\nfloat64[] position\n' \
                  'float64[] velocity\nfloat64[] effort\n'


def test_interop_with_zenoh_ros2_sdk():
    """zenoh-ros2-sdk (PyPI, its own session) receives our JointState and we receive its."""
    sdk = pytest.importorskip('zenoh_ros2_sdk')
    from zenoh_ros2_sdk.session import ZenohSession
    endpoint = _free_endpoint()
    context = local.Context()
    context.init(bus=ZenohBus(session_config(
        f'listen/endpoints=["{endpoint}"];connect/endpoints=[]')))
    port = int(endpoint.rsplit(':', 1)[1])
    sdk_session = ZenohSession.get_instance('127.0.0.1', port)
    try:
        # Workarounds, in the test only: the SDK fetches message definitions from GitHub (give it
        # ours) and its hash of a type with nested types is not rosidl's (pass the right one).
        store = type_store.typestore()
        sdk_session.store.register({t: store.fielddefs[t] for t in (
            'builtin_interfaces/msg/Time', 'std_msgs/msg/Header')})
        common = dict(msg_type='sensor_msgs/msg/JointState', msg_definition=JOINT_STATE_MSG,
                      router_port=port, type_hash=JOINT_STATE_HASH)
        theirs = []
        sdk_sub = sdk.ROS2Subscriber(topic='/joint_states', callback=theirs.append,
                                     node_name='sdk_listener', **common)
        sdk_pub = sdk.ROS2Publisher(topic='/sdk/joint_states', node_name='sdk_talker', **common)
        node = local.Node('talker', context=context)
        pub = node.create_publisher(msgs.get_message('sensor_msgs/msg/JointState'),
                                    '/joint_states', 10)
        ours = []
        node.create_subscription(msgs.get_message('sensor_msgs/msg/JointState'),
                                 '/sdk/joint_states', ours.append, 10)
        _, joints = frames()
        T = sdk_session.store.types
        their_msg = dict(header=T['std_msgs/msg/Header'](
            stamp=T['builtin_interfaces/msg/Time'](sec=3, nanosec=4), frame_id='sdk'),
            name=['joint1'], position=np.array([0.5]), velocity=np.array([]),
            effort=np.array([]))

        def exchange():
            pub.publish(joints)
            sdk_pub.publish(**their_msg)
            return theirs and ours
        assert spin(context, [node], 10, exchange, local.SingleThreadedExecutor)
        assert sdk_session.store.serialize_cdr(theirs[0], 'sensor_msgs/msg/JointState') \
            == msgs.serialize(joints)
        assert ours[0].name == ['joint1'] and list(ours[0].position) == [0.5]
        assert ours[0].header.frame_id == 'sdk' and ours[0].header.stamp.nanosec == 4
        # Their graph entries parse as rmw_zenoh tokens in ours.
        their_sub, = [e for e in context.bus.entities('MS', '/joint_states')
                      if e.node_name == 'sdk_listener']
        assert their_sub.type_name == 'sensor_msgs/msg/JointState'
        assert their_sub.type_hash == JOINT_STATE_HASH
        sdk_sub.close()
        sdk_pub.close()
    finally:
        sdk_session.close()
        ZenohSession._instance = None
        context.try_shutdown()


# --- a policy process that dies, and one that comes back -----------------------------------------

def test_a_killed_policy_leaves_the_arm_holding_and_a_restarted_one_resumes():
    """The sim graph across processes: policy_node is SIGKILLed mid-motion, then started alone.

    The driver follows the last chunk to its end plus `command_timeout_s`, then holds (sends no
    more commands); the restarted policy process joins the running graph and motion resumes.
    """
    import importlib.util
    import yaml
    spec = importlib.util.spec_from_file_location(
        'bench_policy_restart', ROOT / 'bench' / 'bench_policy_restart.py')
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    config = yaml.safe_load((ROOT / 'config' / 'sim.yaml').read_text())
    timeout_s = config['arm_driver_node']['ros__parameters']['command_timeout_s']
    t = bench.run(kill_at=25.0, down=3.0, after=60.0, stop_when_resumed=True)
    assert t.enabled is not None, f'the driver never enabled: {t.log_dir}'
    assert any(t.killed - 1.0 < c < t.killed for c in t.commands), 'the arm was not moving'
    arrival, horizon = t.last_chunk_before_kill()
    last = t.last_command_before_restart()
    # The chunk's end is at most its arrival + horizon; 1 s for transport and a loaded CPU.
    assert last <= arrival + horizon + timeout_s + 1.0, (last - t.killed, horizon)
    assert t.first_after_restart(t.commands) is not None, f'no motion after restart: {t.log_dir}'
