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

"""The real-robot launch and parameter files resolve, and every value is one a node declares.

With that type, too. (They cannot run here: no arm, no camera.)

Each parameter file section is loaded into the real node class, the hardware swapped for what a
test has: the arm driver talks to the simulated Piper on a virtual CAN bus, the camera replays a
synthetic recording. A typo in a key or a `30` where `30.0` is due fails here, not on the robot.
"""

import itertools
from pathlib import Path
import re

import can
import pytest
import yaml

from vla_nodes import ros
from vla_nodes.nodes.arm_driver_node import ArmDriverNode
from vla_nodes.nodes.depth_node import DepthNode
from vla_nodes.nodes.pose_node import PoseNode
from vla_nodes.ros.launch import main as vla_launch
from vla_nodes.ros.params import load_params_file, node_key_matches
from vla_nodes.sim.kinematic_plant import KinematicPlant
from vla_nodes.sim.piper_can import PiperFirmware

ROOT = Path(__file__).resolve().parents[1]
SINGLE, BIMANUAL = ROOT / 'config' / 'piper_single.yaml', ROOT / 'config' / 'piper_bimanual.yaml'
_channels = itertools.count()
pytestmark = [
    pytest.mark.skipif(ros.BACKEND != 'local', reason='builds nodes on the local backend'),
    pytest.mark.filterwarnings('ignore:.*bustype.*:DeprecationWarning'),
]


def test_single_arm_launch_resolves_dry_run_by_default(capsys):
    assert vla_launch(['vla_nodes', 'piper_single.launch.yaml', '--print']) == 0
    out = capsys.readouterr().out
    nodes = [line.split()[0] for line in out.splitlines() if not line.startswith(' ')]
    assert nodes == ['/camera', '/arm_driver_node', '/depth_node', '/pose_node', '/policy_node',
                     '/robot_state_publisher']
    assert f'params-file  {SINGLE}' in out
    assert "param  can_interface = 'socketcan'\n    param  can_name = 'can0'" in out
    assert 'param  dry_run = True' in out
    assert vla_launch(['vla_nodes', 'piper_single.launch.yaml', 'dry_run:=false',
                       'can_port:=can_piper', '--print']) == 0
    out = capsys.readouterr().out
    assert 'param  dry_run = False' in out and "param  can_name = 'can_piper'" in out


def test_bimanual_launch_resolves_two_prefixed_drivers_on_two_ports(capsys):
    assert vla_launch(['vla_nodes', 'piper_bimanual.launch.yaml', '--print']) == 0
    out = capsys.readouterr().out
    assert '/left/arm_driver_node  [vla_nodes arm_driver_node]' in out
    assert '/right/arm_driver_node  [vla_nodes arm_driver_node]' in out
    assert "param  can_name = 'can_left'\n    param  joint_prefix = 'left_'" in out
    assert "param  can_name = 'can_right'\n    param  joint_prefix = 'right_'" in out
    assert out.count('param  dry_run = True') == 2


def section(path: Path, *keys: str) -> dict:
    """The ros__parameters of the given node keys, merged in order (later keys win)."""
    doc = yaml.safe_load(path.read_text())
    merged = {}
    for key in keys:
        merged.update(doc[key]['ros__parameters'])
    return merged


def assert_declared(node, params: dict, overridden=()):
    for name, value in params.items():
        assert node.has_parameter(name), f'{node.get_name()} does not declare {name!r}'
        if name not in overridden:
            assert node.get_parameter(name).value == value, name


@pytest.fixture
def simulated_arm():
    """A simulated Piper on a fresh virtual channel; yields the channel name."""
    channel = f'bringup_{next(_channels)}'
    bus = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
    plant = KinematicPlant()
    with PiperFirmware(bus, plant.read_state, plant.set_targets):
        yield channel
    bus.shutdown()


@pytest.mark.parametrize('path, namespace, keys', [
    (SINGLE, None, ['arm_driver_node']),
    (BIMANUAL, '/left', ['/**/arm_driver_node', '/left/arm_driver_node']),
    (BIMANUAL, '/right', ['/**/arm_driver_node', '/right/arm_driver_node']),
])
def test_arm_driver_accepts_its_robot_parameters(ctx, simulated_arm, path, namespace, keys):
    # The file's own values, but the simulated arm's bus: socketcan can0 does not exist here.
    swapped = {'can_interface': 'virtual', 'can_name': simulated_arm, 'judge_flag': False}
    driver = ArmDriverNode(
        context=ctx, namespace=namespace, cli_args=['--ros-args', '--params-file', str(path)],
        parameter_overrides=[ros.Parameter(k, value=v) for k, v in swapped.items()])
    try:
        params = section(path, *keys)
        assert_declared(driver, params, overridden=swapped)
        assert params['dry_run'] is True and params['enable_on_start'] is False
        if namespace:
            assert driver.get_parameter('joint_prefix').value == namespace[1:] + '_'
    finally:
        driver.destroy_node()


@pytest.mark.parametrize('path', [SINGLE, BIMANUAL])
def test_perception_nodes_accept_their_robot_parameters(ctx, path):
    doc = yaml.safe_load(path.read_text())
    for node_class, name in ((DepthNode, 'depth_node'), (PoseNode, 'pose_node')):
        if name not in doc:
            continue
        node = node_class(context=ctx, cli_args=['--ros-args', '--params-file', str(path)])
        try:
            assert_declared(node, section(path, name))
        finally:
            node.destroy_node()


@pytest.mark.parametrize('path', [SINGLE, BIMANUAL])
def test_camera_accepts_its_robot_parameters(ctx, tmp_path, path):
    test_camera = pytest.importorskip('test_camera')   # its synthetic recording, no camera
    from vla_nodes.nodes.camera_node import CameraNode
    recording = test_camera.record(tmp_path / 'bringup.db3', n=2)
    camera = CameraNode(context=ctx, cli_args=['--ros-args', '--params-file', str(path)],
                        parameter_overrides=[ros.Parameter('playback_file',
                                                           value=str(recording))])
    try:
        assert_declared(camera, section(path, 'camera'))
    finally:
        camera.destroy_node()


# rclpy (`_populate_node_parameters_from_rcl_params`, node.cpp) prefixes a bare key with '/',
# turns '/*' into the regex '(/\\w+)' and matches the node's whole fully qualified name.
RCL_KEY_RULES = [
    ('/**', '/camera', True),
    ('/**', '/left/arm_driver_node', True),
    ('arm_driver_node', '/arm_driver_node', True),
    ('arm_driver_node', '/left/arm_driver_node', False),      # bare key, namespaced node
    ('/arm_driver_node', '/left/arm_driver_node', False),
    ('/**/arm_driver_node', '/arm_driver_node', True),        # '/**': any number of tokens
    ('/**/arm_driver_node', '/left/arm_driver_node', True),
    ('/**/arm_driver_node', '/a/b/arm_driver_node', True),
    ('/**/arm_driver_node', '/left/arm_driver_node2', False),
    ('/*/arm_driver_node', '/left/arm_driver_node', True),    # '/*': exactly one token
    ('/*/arm_driver_node', '/arm_driver_node', False),
    ('/*/arm_driver_node', '/a/b/arm_driver_node', False),
    ('/*', '/camera', True),
    ('/*', '/left/camera', False),
    ('*', '/camera', True),
    ('/left/*', '/left/arm_driver_node', True),
    ('/left/*', '/right/arm_driver_node', False),
    ('/left/**', '/left/a/b', True),
    ('left/arm_driver_node', '/left/arm_driver_node', True),
    ('/left/arm_driver_node', '/right/arm_driver_node', False),
    ('arm_*', '/arm_driver_node', False),                     # not a name: rcl refuses it
]


@pytest.mark.parametrize('key, fqn, matches', RCL_KEY_RULES)
def test_parameter_file_keys_follow_rcl(key, fqn, matches):
    assert node_key_matches(key, fqn) is matches


def test_bimanual_shared_driver_section_reaches_both_namespaces():
    for ns in ('left', 'right'):
        params = load_params_file(BIMANUAL, f'/{ns}/arm_driver_node')
        # The first-days limits, not the driver's defaults (1.5 rad/s, 0.1 m/s).
        assert params['max_velocity_rad_s'] == 1.0 and params['max_gripper_velocity_m_s'] == 0.05
        assert params['joint_prefix'] == f'{ns}_' and params['dry_run'] is True


def test_bare_key_does_not_reach_a_namespaced_node(ctx, tmp_path):
    path = tmp_path / 'params.yaml'
    path.write_text(yaml.safe_dump({
        'driver': {'ros__parameters': {'bare': 1}},
        '/**/driver': {'ros__parameters': {'any': 2}},
        'left': {'driver': {'ros__parameters': {'nested': 3}}},   # rcl joins: left/driver
    }))
    for ns, expected in (('/', {'bare': 1, 'any': 2}), ('/left', {'any': 2, 'nested': 3})):
        node = ros.Node('driver', namespace=ns, context=ctx,
                        cli_args=['--ros-args', '--params-file', str(path),
                                  '-p', 'driver:rule:=4'],
                        automatically_declare_parameters_from_overrides=True)
        try:
            got = {name: node.get_parameter(name).value
                   for name in ('bare', 'any', 'nested', 'rule') if node.has_parameter(name)}
            # '-p driver:rule:=4' is keyed '/driver' by rcl too: root namespace only.
            assert got == ({**expected, 'rule': 4} if ns == '/' else expected)
        finally:
            node.destroy_node()


@pytest.mark.parametrize('key', ['arm_*', '/left//driver', '/left/', '/1left/driver'])
def test_invalid_node_key_is_refused_with_the_file(tmp_path, key):
    path = tmp_path / 'params.yaml'
    path.write_text(yaml.safe_dump({key: {'ros__parameters': {'a': 1}}}))
    with pytest.raises(ValueError, match=f"{path}: node key '{re.escape(key)}'"):
        load_params_file(path, '/driver')
