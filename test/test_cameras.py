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

"""Several named cameras: the contract's names, the sim's wrist camera, sim_node publishing them.

Real parts: MuJoCo rendering, the generated description (URDF FK), the local-backend graph.
"""

import itertools
import os
from pathlib import Path

os.environ.setdefault('MUJOCO_GL', 'egl')  # mujoco picks its GL backend when first imported

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import graph  # noqa: E402  test/graph.py
from vla_nodes import contract  # noqa: E402
from vla_nodes.description import generate  # noqa: E402
from vla_nodes.description.tree import UrdfTree  # noqa: E402
from vla_nodes.nodes.sim_node import SimNode  # noqa: E402
from vla_nodes.ros import image, local  # noqa: E402
from vla_nodes.ros.msgs import sensor_msgs, stamp_to_ns  # noqa: E402
from vla_nodes.sim.robot_model import WRIST_CAMERA_NAME  # noqa: E402

_channels = itertools.count()
DESCRIPTION = Path(__file__).resolve().parents[1] / 'description'
pytestmark = pytest.mark.filterwarnings('ignore:.*bustype.*:DeprecationWarning')


def test_scene_camera_keeps_the_single_camera_names_and_others_follow_realsense_ros():
    scene, wrist = contract.SCENE_CAMERA, contract.WRIST_CAMERA
    assert (scene.color_topic, scene.color_info_topic, scene.depth_topic,
            scene.depth_info_topic, scene.frame) == (
        contract.COLOR_TOPIC, contract.COLOR_INFO_TOPIC, contract.DEPTH_TOPIC,
        contract.DEPTH_INFO_TOPIC, contract.CAMERA_FRAME)
    assert (scene.image_key, scene.depth_key) == (contract.OBS_IMAGE, contract.OBS_DEPTH)
    # realsense-ros: /<camera_namespace>/<camera_name>/..., frames <camera_name>_...
    assert wrist.color_topic == '/camera/wrist_camera/color/image_raw'
    assert wrist.depth_topic == '/camera/wrist_camera/aligned_depth_to_color/image_raw'
    assert wrist.frame == 'wrist_camera_color_optical_frame'
    assert wrist.image_key == 'observation.images.wrist'
    assert contract.camera('left').color_topic == '/camera/left_camera/color/image_raw'
    assert [c.name for c in contract.cameras('scene,wrist')] == ['scene', 'wrist']
    with pytest.raises(ValueError, match='distinct'):
        contract.cameras(['wrist', 'wrist'])
    with pytest.raises(ValueError, match='camera name'):
        contract.camera('../x')


def _set_arm(world, q6):
    world.data.qpos[world.arm.arm_qpos] = q6
    mujoco.mj_forward(world.model, world.data)


def test_wrist_camera_rides_on_the_flange_as_the_description_says(world):
    """Its pose is the description's wrist_camera frame (FK through the URDF) at any joints.

    So the /tf that robot_state_node computes from /joint_states places it where the sim renders.
    """
    tree = UrdfTree(generate.read_rsp_params(DESCRIPTION / 'piper_wrist_camera.yaml'))
    rng = np.random.default_rng(0)
    for q in ([0.0, 1.2, -1.0, 0.0, 0.6, 0.0], rng.uniform(-0.5, 0.5, 6) + [0, 1.2, -1, 0, 0, 0]):
        _set_arm(world, q)
        urdf = tree.pose(contract.WRIST_CAMERA.frame, dict(zip(contract.ARM_JOINTS, q)))
        np.testing.assert_allclose(world.camera_pose(WRIST_CAMERA_NAME), urdf, atol=1e-9)


def test_wrist_camera_projects_a_known_point_with_its_intrinsics_and_moves_with_the_arm(world):
    ready = np.asarray(contract.READY_POSITIONS[:6])
    _set_arm(world, ready)
    pose = world.camera_pose(WRIST_CAMERA_NAME)
    k, width, height = world.intrinsics(WRIST_CAMERA_NAME)
    # Put the cube off the optical axis, in view: where a ray through pixel (0.65 W, 0.35 H)
    # meets the cube's top face (4 cm above the table).
    ray = pose[:3, :3] @ np.linalg.solve(k, [0.65 * width, 0.35 * height, 1.0])
    t = (0.04 - pose[2, 3]) / ray[2]
    top = pose[:3, 3] + t * ray
    world.place_object('cube', top[:2], yaw=0.0)
    before, depth = world.render(WRIST_CAMERA_NAME)
    in_camera = np.linalg.inv(pose) @ np.append(top, 1.0)
    u, v, _ = k @ (in_camera[:3] / in_camera[2])
    u, v = int(round(u)), int(round(v))
    r, g, b = before[v, u].astype(int)
    assert r > 150 and g < 80 and b < 80, f'pixel ({u}, {v}) is {before[v, u]}, not the red cube'
    assert depth[v, u] == pytest.approx(in_camera[2], abs=2e-3)  # z-depth along the axis
    assert abs(u - 0.65 * width) < 1 and abs(v - 0.35 * height) < 1
    # The wrist view follows the arm; the scene camera's pose does not.
    scene_pose = world.camera_pose()
    _set_arm(world, ready + [0.4, 0, 0, 0, 0, 0])
    after, _ = world.render(WRIST_CAMERA_NAME)
    red_before, red_after = _red(before), _red(after)
    assert red_before.sum() > 100
    assert (red_before & red_after).sum() < 0.2 * red_before.sum()  # the cube moved in view
    np.testing.assert_allclose(world.camera_pose(), scene_pose)
    # The gripper is in the wrist view whatever the pose: its dark housing along the bottom.
    for rgb in (before, after):
        assert (rgb[-10:].max(axis=2) < 80).mean() > 0.9


def _red(rgb):
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return (r > 150) & (g < 80) & (b < 80)


def test_sim_node_publishes_every_named_camera_at_one_instant(ctx):
    sim = SimNode(context=ctx, cli_args=['--ros-args', '-p', 'cameras:=[scene, wrist]',
                                         '-p', f'can_name:=test_cameras_{next(_channels)}',
                                         '-p', 'camera_rate_hz:=5.0'])
    probe = local.Node('probe', context=ctx)
    got = {}
    for cam in contract.CAMERAS.values():
        for topic, kind in ((cam.color_topic, sensor_msgs.Image),
                            (cam.depth_topic, sensor_msgs.Image),
                            (cam.color_info_topic, sensor_msgs.CameraInfo)):
            probe.create_subscription(kind, topic, lambda m, t=topic: got.setdefault(t, m), 10)
    try:
        assert graph.spin(ctx, [sim, probe], 30.0, until=lambda: len(got) == 6), sorted(got)
    finally:
        sim.destroy_node()
    scene, wrist = contract.SCENE_CAMERA, contract.WRIST_CAMERA
    for cam in (scene, wrist):
        color, depth = got[cam.color_topic], got[cam.depth_topic]
        assert color.header.frame_id == depth.header.frame_id == cam.frame
        assert got[cam.color_info_topic].header.frame_id == cam.frame
        assert (color.encoding, depth.encoding) == ('rgb8', '16UC1')
    # The first frame of each: rendered at the same instant, so one stamp.
    assert stamp_to_ns(got[scene.color_topic].header.stamp) == stamp_to_ns(
        got[wrist.color_topic].header.stamp)
    assert not np.array_equal(image.from_msg(got[wrist.color_topic]),
                              image.from_msg(got[scene.color_topic]))


def test_sim_node_refuses_a_camera_it_does_not_have(ctx):
    with pytest.raises(ValueError, match="cameras \\['left'\\]"):
        SimNode(context=ctx, cli_args=['--ros-args', '-p', 'cameras:=[scene, left]',
                                       '-p', f'can_name:=test_cameras_{next(_channels)}'])


def test_real_robot_launch_with_a_wrist_camera_runs_a_second_camera_node(capsys):
    from vla_nodes.ros.launch import main as vla_launch
    import yaml
    assert vla_launch(['vla_nodes', 'piper_single_wrist.launch.yaml', 'wrist_serial_number:=_21',
                       '--print']) == 0
    out = capsys.readouterr().out
    nodes = [line.split()[0] for line in out.splitlines() if not line.startswith(' ')]
    assert nodes[:2] == ['/wrist_camera', '/camera']
    assert "param  serial_number = '_21'" in out and "cameras = ['scene', 'wrist']" in out
    assert 'piper_wrist_camera.yaml' in out
    config = yaml.safe_load((DESCRIPTION.parent / 'config' / 'piper_single.yaml').read_text())
    wrist = config['wrist_camera']['ros__parameters']
    assert contract.Camera('wrist', wrist['camera_name'], wrist['camera_namespace']
                           ).color_topic == contract.WRIST_CAMERA.color_topic
