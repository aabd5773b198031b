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

"""The robot description (description/) against its sources.

Sources: piper_sdk's FK, the driver's limits, check_urdf, MuJoCo's URDF importer; also
robot_state_node's /tf, the chunk relay and gazebo.launch.yaml.
"""

import math
from pathlib import Path
import shutil
import subprocess
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
from piper_sdk.kinematics.piper_fk import C_PiperForwardKinematics
import pytest

import graph  # test/graph.py
from vla_nodes import contract, ros
from vla_nodes.arm import kinematics
from vla_nodes.arm.safety import SafetyLimits
from vla_nodes.description import generate
from vla_nodes.description.controllers import split_points, trajectory_controllers
from vla_nodes.description.tree import rpy_from_matrix, rpy_matrix, UrdfError, UrdfTree
from vla_nodes.nodes.pose_node import PoseNode
from vla_nodes.nodes.robot_state_node import RobotStateNode
from vla_nodes.nodes.trajectory_relay_node import TrajectoryRelayNode
from vla_nodes.ros import local
from vla_nodes.ros.launch import main as vla_launch
from vla_nodes.ros.msgs import builtin_interfaces, geometry_msgs, sensor_msgs, tf2_msgs
from vla_nodes.ros.msgs import trajectory_msgs

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTION = ROOT / 'description'
CONTROLLERS = ROOT / 'config' / 'controllers.yaml'


def urdf_of(variant: str) -> str:
    return generate.read_rsp_params(DESCRIPTION / f'{variant}.yaml')


@pytest.fixture(scope='module')
def gazebo_urdfs(tmp_path_factory) -> dict:
    """The Gazebo description of both Gazebo generations, as the CLI writes them for robots."""
    folder = tmp_path_factory.mktemp('gazebo')
    out = {}
    for gazebo in ('gz', 'ign'):
        path = folder / f'piper_{gazebo}.yaml'
        assert generate.main(['--gazebo', gazebo, '-o', str(path)]) == 0
        out[gazebo] = (path, generate.read_rsp_params(path))
    return out


def random_joints(count: int, seed: int) -> np.ndarray:
    lower, upper = kinematics.limit_arrays()
    return np.random.default_rng(seed).uniform(lower, upper, size=(count, 6))


# --- one source of the numbers ------------------------------------------------------------------

def _canonical(urdf: str) -> str:
    """The URDF without comments or layout: minidom's pretty printing may vary across Pythons."""
    return ET.canonicalize(urdf, strip_text=True)


def test_committed_description_files_are_regenerated_from_their_sources(tmp_path):
    stale = 'is stale: run `python -m vla_nodes.description`'
    fresh = generate.generated_files(DESCRIPTION)
    assert (DESCRIPTION / generate.MACROS_FILE).read_text() == fresh.pop(generate.MACROS_FILE), (
        f'description/{generate.MACROS_FILE} {stale}')
    assert sorted(fresh) == sorted(f'{v}.yaml' for v in generate.VARIANTS)
    for name, text in fresh.items():
        (tmp_path / name).write_text(text)
        assert _canonical(generate.read_rsp_params(DESCRIPTION / name)) == _canonical(
            generate.read_rsp_params(tmp_path / name)), f'description/{name} {stale}'


def test_check_urdf_accepts_single_bimanual_and_gazebo_descriptions(tmp_path, gazebo_urdfs):
    check_urdf = shutil.which('check_urdf')
    assert check_urdf, 'check_urdf missing: apt-get install liburdfdom-tools (scripts/setup.sh)'
    urdfs = {v: urdf_of(v) for v in generate.VARIANTS}
    urdfs.update({f'gazebo_{g}': urdf for g, (_, urdf) in gazebo_urdfs.items()})
    roots = {'piper': 'base_link', 'piper_wrist_camera': 'base_link',
             'piper_bimanual': 'base_link', 'gazebo_gz': 'world', 'gazebo_ign': 'world'}
    for name, urdf in urdfs.items():
        path = tmp_path / f'{name}.urdf'
        path.write_text(urdf)
        result = subprocess.run([check_urdf, str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f'{name}: {result.stdout}{result.stderr}'
        assert 'Successfully Parsed XML' in result.stdout
        assert f'root Link: {roots[name]}' in result.stdout
    bimanual = subprocess.run([check_urdf, str(tmp_path / 'piper_bimanual.urdf')],
                              capture_output=True, text=True).stdout
    for prefix in ('left_', 'right_'):
        assert f'{prefix}tcp' in bimanual and f'{prefix}finger_left' in bimanual


def _mujoco_model(urdf: str):
    # Keep fixed-joint links (flange, tcp) as bodies: MuJoCo's URDF import fuses them by default.
    urdf = urdf.replace('<robot name="piper">', '<robot name="piper"><mujoco><compiler '
                        'fusestatic="false" discardvisual="true"/></mujoco>', 1)
    return mujoco.MjModel.from_xml_string(urdf)


def test_mujoco_loads_the_urdf_and_its_fk_equals_piper_sdk_at_200_configurations():
    model = _mujoco_model(urdf_of('piper'))
    data = mujoco.MjData(model)
    sdk = C_PiperForwardKinematics(generate.DH_IS_OFFSET)
    addresses = [model.jnt_qposadr[model.joint(n).id] for n in contract.ARM_JOINTS]
    worst_mm, worst_rot = 0.0, 0.0
    for q in random_joints(200, seed=18):
        data.qpos[:] = 0.0
        data.qpos[addresses] = q
        mujoco.mj_kinematics(model, data)
        x, y, z, rx, ry, rz = sdk.CalFK(list(q))[5]  # mm, deg
        worst_mm = max(worst_mm, np.linalg.norm(data.body('link6').xpos * 1000 - (x, y, z)))
        flange = kinematics.forward_kinematics(q)
        rot = data.body('link6').xmat.reshape(3, 3)
        worst_rot = max(worst_rot, np.abs(rot - flange[:3, :3]).max())
        sdk_rpy = np.radians([rx, ry, rz])
        ours_rpy = kinematics.pose_to_xyz_rpy(np.block([[rot, np.zeros((3, 1))],
                                                        [np.zeros((1, 3)), np.ones((1, 1))]]))[3:]
        assert np.allclose(np.angle(np.exp(1j * (ours_rpy - sdk_rpy))), 0.0, atol=1e-6)
        tcp = kinematics.forward_kinematics(q, tcp_offset_m=kinematics.TCP_OFFSET_M)
        np.testing.assert_allclose(data.body('tcp').xpos, tcp[:3, 3], atol=1e-9)
    print(f'MuJoCo(URDF) vs piper_sdk FK over 200 configurations: max {worst_mm:.2e} mm; '
          f'rotation matrix entries vs numpy FK: max {worst_rot:.2e}')
    assert worst_mm <= 0.01 and worst_rot < 1e-9


def test_joint_limits_equal_the_drivers_clamp_and_mujoco_reads_them():
    clamp = SafetyLimits()
    tree = UrdfTree(urdf_of('piper'))
    limits = {j.name: j.limit for j in tree.joints if j.limit is not None}
    for i, name in enumerate(contract.JOINT_NAMES):
        assert limits[name] == pytest.approx((clamp.lower[i], clamp.upper[i]), abs=1e-12), name
    model = _mujoco_model(urdf_of('piper'))
    for i, name in enumerate(contract.JOINT_NAMES):
        np.testing.assert_allclose(model.jnt_range[model.joint(name).id],
                                   (clamp.lower[i], clamp.upper[i]), atol=1e-12)


def test_tree_fk_of_every_variant_agrees_with_the_numpy_kinematics():
    tree = UrdfTree(urdf_of('piper'))
    for q in random_joints(50, seed=3):
        positions = dict(zip(contract.ARM_JOINTS, q), gripper=0.05)
        np.testing.assert_allclose(tree.pose('link6', positions), kinematics.forward_kinematics(q),
                                   atol=1e-12)
        np.testing.assert_allclose(
            tree.pose('tcp', positions),
            kinematics.forward_kinematics(q, tcp_offset_m=kinematics.TCP_OFFSET_M), atol=1e-12)
        # The fingers mimic the opening: half of it each, on either side of the flange's y.
        left, right = (tree.pose(f'finger_{s}', positions) for s in ('left', 'right'))
        flange = kinematics.forward_kinematics(q)
        np.testing.assert_allclose(np.linalg.inv(flange) @ left[:, 3], [0, 0.025, 0, 1],
                                   atol=1e-12)
        np.testing.assert_allclose(np.linalg.inv(flange) @ right[:, 3], [0, -0.025, 0, 1],
                                   atol=1e-12)
    camera = tree.pose(contract.CAMERA_FRAME, {})
    np.testing.assert_allclose(camera[:3, 3], [0.8, 0.45, 0.6])  # config/calibration.yaml
    wrist = UrdfTree(urdf_of('piper_wrist_camera'))
    assert 'wrist_camera_color_optical_frame' in wrist.links
    assert 'wrist_camera_color_optical_frame' not in tree.links
    bimanual = UrdfTree(urdf_of('piper_bimanual'))
    q = random_joints(1, seed=4)[0]
    for prefix, y in (('left_', 0.3), ('right_', -0.3)):
        pose = bimanual.pose(f'{prefix}tcp', {f'{prefix}{n}': v for n, v in
                                              zip(contract.ARM_JOINTS, q)})
        expected = kinematics.translation(0.0, y, 0.0) @ kinematics.forward_kinematics(
            q, tcp_offset_m=kinematics.TCP_OFFSET_M)
        np.testing.assert_allclose(pose, expected, atol=1e-12)


def test_joint_xyz_quat_equals_its_transform_for_every_joint_kind():
    tree = UrdfTree(urdf_of('piper_bimanual'))
    rng = np.random.default_rng(9)
    kinds = set()
    for joint in tree.joints:
        kinds.add(joint.kind)
        for position in rng.uniform(-3.0, 3.0, size=5):
            xyz_quat = joint.xyz_quat(position)
            np.testing.assert_allclose(kinematics.xyz_quat_to_pose(xyz_quat),
                                       joint.transform(position), atol=1e-12)
            assert np.linalg.norm(xyz_quat[3:]) == pytest.approx(1.0)
    assert kinds == {'fixed', 'revolute', 'prismatic'}


@pytest.mark.parametrize('rpy', [(0.1, -0.4, 2.0), (0.3, math.pi / 2, 0.0),
                                 (0.0, -math.pi / 2, 1.0), (math.pi, 0.2, -3.0)])
def test_rpy_from_matrix_round_trips_also_at_gimbal_lock(rpy):
    rot = rpy_matrix(*rpy)
    np.testing.assert_allclose(rpy_matrix(*rpy_from_matrix(rot)), rot, atol=1e-12)


def test_urdf_tree_names_what_is_wrong():
    with pytest.raises(UrdfError, match='two parent joints'):
        UrdfTree('<robot name="r"><link name="a"/><link name="b"/><link name="c"/>'
                 '<joint name="j1" type="fixed"><parent link="a"/><child link="c"/></joint>'
                 '<joint name="j2" type="fixed"><parent link="b"/><child link="c"/></joint>'
                 '</robot>')
    with pytest.raises(UrdfError, match="unknown link 'x'"):
        UrdfTree('<robot name="r"><link name="a"/><joint name="j" type="fixed">'
                 '<parent link="a"/><child link="x"/></joint></robot>')
    with pytest.raises(UrdfError, match='floating'):
        UrdfTree('<robot name="r"><link name="a"/><link name="b"/><joint name="j" '
                 'type="floating"><parent link="a"/><child link="b"/></joint></robot>')


# --- ros2_control ------------------------------------------------------------------------------

def test_controllers_and_ros2_control_name_exactly_the_contracts_joints(gazebo_urdfs):
    groups = trajectory_controllers(CONTROLLERS)
    assert groups == {'arm_controller': list(contract.ARM_JOINTS),
                      'gripper_controller': [contract.GRIPPER_JOINT]}
    for gazebo, (_, urdf) in gazebo_urdfs.items():
        control = ET.fromstring(urdf).find('ros2_control')
        commanded = [j.get('name') for j in control.findall('joint')
                     if j.find('command_interface') is not None]
        assert commanded == list(contract.JOINT_NAMES), gazebo
        plugin = control.find('hardware/plugin').text
        assert plugin == {'gz': 'gz_ros2_control/GazeboSimSystem',
                          'ign': 'ign_ros2_control/IgnitionSystem'}[gazebo]
        # gz_ros2_control refuses to start without an absolute controllers file.
        params = ET.fromstring(urdf).find('gazebo/plugin/parameters').text
        assert Path(params).is_absolute() and Path(params).samefile(CONTROLLERS)


def test_split_points_gives_each_controller_its_columns_and_skips_partial_ones():
    groups = {'arm': ['joint1', 'joint2'], 'grip': ['gripper'], 'other': ['joint9']}
    out = split_points(['joint2', 'gripper', 'joint1'], [([1.0, 0.05, 3.0], 'a'),
                                                         ([2.0, 0.04, 4.0], 'b')], groups)
    assert out == {'arm': (['joint1', 'joint2'], [([3.0, 1.0], 'a'), ([4.0, 2.0], 'b')]),
                   'grip': (['gripper'], [([0.05], 'a'), ([0.04], 'b')])}


# --- nodes on the local backend ----------------------------------------------------------------

def _pose(translation, rotation) -> np.ndarray:
    return kinematics.xyz_quat_to_pose([translation.x, translation.y, translation.z,
                                        rotation.x, rotation.y, rotation.z, rotation.w])


def test_robot_state_node_publishes_tf_per_joint_state_and_the_tcp_equals_ee_pose(ctx):
    state = RobotStateNode(context=ctx)
    pose = PoseNode(context=ctx, cli_args=['--ros-args', '-p', 'detect_objects:=false', '-p',
                                           f'tcp_offset_m:={kinematics.TCP_OFFSET_M}'])
    test = local.Node('test', context=ctx)
    tf, ee = [], []
    test.create_subscription(tf2_msgs.TFMessage, '/tf', tf.append, 100)
    test.create_subscription(geometry_msgs.PoseStamped, contract.EE_POSE_TOPIC, ee.append, 100)
    static = []
    test.create_subscription(tf2_msgs.TFMessage, contract.TF_STATIC_TOPIC, static.append,
                             ros.qos_profile_latched)
    pub = test.create_publisher(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC, 100)
    nodes = [state, pose, test]
    try:
        # One joint state at a time: the nodes subscribe with a depth of 10, as on a robot.
        for k, q in enumerate(random_joints(20, seed=5)):
            msg = sensor_msgs.JointState(name=list(contract.JOINT_NAMES),
                                         position=[float(v) for v in q] + [0.03])
            msg.header.stamp = builtin_interfaces.Time(sec=100 + k)
            pub.publish(msg)
            assert graph.spin(ctx, nodes, 10.0, lambda: len(tf) > k and len(ee) > k and static), (
                len(tf), len(ee), len(static))
        graph.spin(ctx, nodes, 0.2, lambda: False)
    finally:
        for node in nodes:
            node.destroy_node()
    assert len(tf) == len(ee) == 20, 'one /tf message per joint state'
    tree = UrdfTree(urdf_of('piper'))
    fixed = {(t.header.frame_id, t.child_frame_id): t.transform for t in static[0].transforms}
    links = set(tree.links) - {tree.root}
    for k, (msg, ee_msg) in enumerate(zip(tf, ee)):
        moving = {(t.header.frame_id, t.child_frame_id): t.transform for t in msg.transforms}
        assert {t.header.stamp.sec for t in msg.transforms} == {100 + k}
        edges = {**fixed, **moving}
        assert {child for _, child in edges} == links, 'every link has a transform'
        parents = {child: (parent, tr) for (parent, child), tr in edges.items()}
        link, chain = 'tcp', np.eye(4)
        while link != tree.root:  # compose tcp -> base_link from the published transforms
            parent, tr = parents[link]
            chain = _pose(tr.translation, tr.rotation) @ chain
            link = parent
        reported = _pose(ee_msg.pose.position, ee_msg.pose.orientation)
        assert ee_msg.header.stamp.sec == 100 + k
        np.testing.assert_allclose(chain, reported, atol=1e-9)


def test_trajectory_relay_sends_each_controller_its_joints_with_the_chunks_timing(ctx):
    relay = TrajectoryRelayNode(context=ctx, cli_args=['--ros-args', '-p',
                                                       f'controllers_file:={CONTROLLERS}'])
    test = local.Node('test', context=ctx)
    got = {'arm_controller': [], 'gripper_controller': []}
    for name, box in got.items():
        test.create_subscription(trajectory_msgs.JointTrajectory, f'/{name}/joint_trajectory',
                                 box.append, 10)
    chunk = trajectory_msgs.JointTrajectory(joint_names=list(contract.JOINT_NAMES))
    chunk.header.stamp = builtin_interfaces.Time(sec=7, nanosec=5)
    for k in range(3):
        point = trajectory_msgs.JointTrajectoryPoint(positions=[0.1 * k + i for i in range(7)])
        point.time_from_start = builtin_interfaces.Duration(sec=0, nanosec=(k + 1) * 100_000_000)
        chunk.points.append(point)
    test.create_publisher(trajectory_msgs.JointTrajectory, contract.ACTION_CHUNK_TOPIC,
                          10).publish(chunk)
    try:
        assert graph.spin(ctx, [relay, test], 10.0, lambda: all(got.values()))
    finally:
        relay.destroy_node()
        test.destroy_node()
    arm, grip = got['arm_controller'][0], got['gripper_controller'][0]
    assert list(arm.joint_names) == list(contract.ARM_JOINTS)
    assert list(grip.joint_names) == [contract.GRIPPER_JOINT]
    for msg in (arm, grip):
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (7, 5)
        assert [p.time_from_start.nanosec for p in msg.points] == [1e8, 2e8, 3e8]
    assert list(arm.points[2].positions) == pytest.approx([0.2 + i for i in range(6)])
    assert list(grip.points[2].positions) == pytest.approx([6.2])


# --- launch ------------------------------------------------------------------------------------

def test_gazebo_launch_prints_with_a_written_description_and_names_it_when_missing(
        capsys, gazebo_urdfs):
    assert vla_launch(['vla_nodes', 'gazebo.launch.yaml', '--print']) == 1
    assert "required argument 'description'" in capsys.readouterr().err
    path, _ = gazebo_urdfs['gz']
    assert vla_launch(['vla_nodes', 'gazebo.launch.yaml', f'description:={path}', '--print']) == 0
    out = capsys.readouterr().out
    nodes = [line.split()[0] for line in out.splitlines() if line.startswith('/')]
    assert nodes == ['/robot_state_publisher', '/spawn_piper', '/clock_bridge',
                     '/spawn_joint_state_broadcaster', '/spawn_arm_controller',
                     '/spawn_gripper_controller', '/trajectory_relay_node']
    for controller in ('joint_state_broadcaster', 'arm_controller', 'gripper_controller'):
        assert f'args  {controller} --controller-manager /controller_manager' in out
    assert '[ros_gz_sim create]' in out and 'args  -topic robot_description -name piper' in out


@pytest.mark.parametrize('launch_file, description', [
    ('piper_single.launch.yaml', 'piper.yaml'),
    ('piper_bimanual.launch.yaml', 'piper_bimanual.yaml'),
    ('sim.launch.yaml', 'piper.yaml')])
def test_launch_files_publish_the_robot_description(capsys, launch_file, description):
    assert vla_launch(['vla_nodes', launch_file, '--print']) == 0
    out = capsys.readouterr().out
    assert f'params-file  {DESCRIPTION / description}' in out
    publisher = ('[vla_nodes robot_state_node]' if launch_file == 'sim.launch.yaml' else
                 '[robot_state_publisher robot_state_publisher]')
    assert publisher in out


def test_rviz_and_foxglove_views_use_the_contracts_topics_and_frame():
    import json
    import re
    import yaml
    known = set(contract.TOPIC_TYPES) | {'/robot_description', '/tf'}
    rviz = yaml.safe_load((ROOT / 'config' / 'vla.rviz').read_text())
    topics = [d['Topic']['Value'] for d in rviz['Visualization Manager']['Displays']
              if 'Topic' in d] + ['/robot_description']
    assert rviz['Visualization Manager']['Global Options']['Fixed Frame'] == contract.BASE_FRAME
    layout = (ROOT / 'config' / 'foxglove_layout.json').read_text()
    json.loads(layout)
    topics += re.findall(r'"(/[a-z_/]+?)[".]', layout)
    assert contract.OBJECTS_TOPIC in topics and contract.EE_POSE_TOPIC in topics
    assert set(topics) <= known, set(topics) - known
