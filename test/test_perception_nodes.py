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

"""The depth_node and pose_node on the local backend with real parts.

Real parts: MuJoCo frames, a tiny random Depth Anything model saved with save_pretrained and
loaded from a folder, sim ground truth.

Waits are "until the message arrives or a generous timeout", never a tight wall-clock figure.
"""

import math
import os

os.environ.setdefault('MUJOCO_GL', 'egl')  # mujoco picks its GL backend when first imported

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from graph import joint_state, Probe, spin  # noqa: E402
from vla_nodes import contract, paths, ros  # noqa: E402
from vla_nodes.arm import kinematics  # noqa: E402
from vla_nodes.nodes.camera_topics import camera_info  # noqa: E402
from vla_nodes.nodes.depth_node import DepthNode  # noqa: E402
from vla_nodes.nodes.diagnostics import ERROR, WARN  # noqa: E402
from vla_nodes.nodes.pose_node import PoseNode  # noqa: E402
from vla_nodes.perception.depth import metres_to_mm  # noqa: E402
from vla_nodes.perception.mono import save_random_model  # noqa: E402
from vla_nodes.perception.objects import DEFAULT_CLASSES, reduce_yaw  # noqa: E402
from vla_nodes.ros import image, local  # noqa: E402
from vla_nodes.ros.msgs import (diagnostic_msgs, geometry_msgs, sensor_msgs,  # noqa: E402
                                stamp_to_ns, tf2_msgs, vision_msgs)
from vla_nodes.sim.tasks import TASKS  # noqa: E402

CALIBRATION = str(paths.package_share() / 'config' / 'calibration.yaml')
DEPTH_INFO_TOPIC = contract.METRIC_DEPTH_TOPIC.rsplit('/', 1)[0] + '/camera_info'


@pytest.fixture(scope='module')
def tiny_depth_model(tmp_path_factory):
    """A random-weight DepthAnythingForDepthEstimation (0.14 M parameters) in a folder."""
    return save_random_model(tmp_path_factory.mktemp('depth_anything_tiny'), 'tiny')


def statuses(probe, name):
    return [s for d in probe.msgs for s in d.status if s.name == name]


def has_status(probe, name, level, text):
    return lambda: any(s.level == level and text in s.message for s in statuses(probe, name))


def sim_frame(world):
    """(rgb, depth 16UC1 mm, CameraInfo) as sim_node publishes them, stamped with sim time."""
    rgb, depth = world.render()
    k, width, height = world.intrinsics()
    stamp_ns = int(round(world.time * 1e9)) + 1
    info = camera_info(k, [0.0] * 5, width, height, 'plumb_bob', stamp_ns,
                       contract.CAMERA_FRAME)
    return rgb, metres_to_mm(np.where(depth < 10.0, depth, np.nan)), info, stamp_ns


# --- depth_node: sensor --------------------------------------------------------------------------
def test_depth_node_filters_on_request_and_passes_camera_info_through(ctx):
    depth = DepthNode(context=ctx, cli_args=['--ros-args', '-p', 'hole_filling:=true',
                                             '-p', 'max_depth_m:=2.0'])
    test = local.Node('test', context=ctx)
    out = Probe(test, sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC)
    infos = Probe(test, sensor_msgs.CameraInfo, DEPTH_INFO_TOPIC)
    k = np.array([[100.0, 0, 1.5], [0, 100.0, 1.0], [0, 0, 1]])
    test.create_publisher(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC, 10).publish(
        camera_info(k, [0.0] * 5, 4, 3, 'plumb_bob', 1, 'cam'))
    assert spin(ctx, [depth, test], 10.0, lambda: depth._info is not None)
    mm = np.array([[1000, 0, 1200, 3000]] * 3, np.uint16)  # a hole and one beyond 2 m
    test.create_publisher(sensor_msgs.Image, contract.DEPTH_TOPIC, 10).publish(
        image.to_msg(mm, '16UC1', stamp_ns=7, frame_id='cam'))
    assert spin(ctx, [depth, test], 10.0, lambda: out.msgs and infos.msgs)
    np.testing.assert_array_equal(image.from_msg(out.msgs[0]),
                                  np.float32([[1.0, 1.2, 1.2, 1.2]] * 3))
    assert out.msgs[0].header == infos.msgs[0].header
    assert infos.msgs[0].header.frame_id == 'cam' and infos.msgs[0].header.stamp.nanosec == 7
    np.testing.assert_array_equal(np.reshape(infos.msgs[0].k, (3, 3)), k)
    depth.destroy_node()


def test_depth_node_publishes_nothing_for_frames_without_valid_depth(ctx):
    depth = DepthNode(context=ctx)
    test = local.Node('test', context=ctx)
    out = Probe(test, sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC)
    diags = Probe(test, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    test.create_publisher(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC, 10).publish(
        sensor_msgs.CameraInfo(width=4, height=3))
    assert spin(ctx, [depth, test], 10.0, lambda: depth._info is not None)
    test.create_publisher(sensor_msgs.Image, contract.DEPTH_TOPIC, 10).publish(
        image.to_msg(np.zeros((3, 4), np.uint16), '16UC1'))
    assert spin(ctx, [depth, test], 10.0, has_status(diags, '/depth_node', WARN, 'valid'))
    assert out.msgs == []
    depth.destroy_node()


# --- depth_node: mono ----------------------------------------------------------------------------
def mono_node(ctx, model_dir, *extra):
    return DepthNode(context=ctx, cli_args=[
        '--ros-args', '-p', 'mode:=mono', '-p', f'mono_model_dir:={model_dir}',
        '-p', 'mono_input_size:=42', '-p', f'calibration_file:={CALIBRATION}', *extra])


@pytest.mark.parametrize('alignment', ['table', 'sensor'])
def test_mono_depth_runs_end_to_end_from_a_local_model_folder(ctx, world, tiny_depth_model,
                                                              alignment):
    # Random weights predict nothing sensible, so the fit is a scale only (a shift could make
    # random output negative); the path is what this test pins: colour in, metric depth out.
    depth = mono_node(ctx, tiny_depth_model, '-p', 'mono_fit_shift:=false', '-p',
                      'max_depth_m:=100.0', '-p', f'mono_alignment:={alignment}')
    test = local.Node('test', context=ctx)
    out = Probe(test, sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC)
    infos = Probe(test, sensor_msgs.CameraInfo, DEPTH_INFO_TOPIC)
    diags = Probe(test, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    color = test.create_publisher(sensor_msgs.Image, contract.COLOR_TOPIC, 10)
    TASKS['pick_red_cube'].reset(world, 0)
    rgb, mm, info, stamp_ns = sim_frame(world)
    color.publish(image.to_msg(rgb, 'rgb8', stamp_ns, contract.CAMERA_FRAME))  # before info
    assert spin(ctx, [depth, test], 10.0, has_status(diags, '/depth_node', WARN, 'camera_info'))
    test.create_publisher(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC, 10).publish(info)
    if alignment == 'sensor':  # sparse metric depth: one pixel in 64 (a LiDAR, a bad sensor)
        sparse = np.zeros_like(mm)
        sparse[::8, ::8] = mm[::8, ::8]
        test.create_publisher(sensor_msgs.Image, contract.DEPTH_TOPIC, 10).publish(
            image.to_msg(sparse, '16UC1', stamp_ns, contract.CAMERA_FRAME))
    assert spin(ctx, [depth, test], 10.0, lambda: depth._info is not None and (
        alignment == 'table' or depth._sensor is not None))
    color.publish(image.to_msg(rgb, 'rgb8', stamp_ns, contract.CAMERA_FRAME))
    assert spin(ctx, [depth, test], 30.0, lambda: out.msgs and infos.msgs)
    msg = out.msgs[0]
    assert msg.encoding == '32FC1' and (msg.width, msg.height) == (320, 240)
    assert msg.header.frame_id == contract.CAMERA_FRAME and msg.header == infos.msgs[0].header
    assert stamp_to_ns(msg.header.stamp) == stamp_ns
    metres = image.from_msg(msg)
    finite = metres[np.isfinite(metres)]
    assert finite.size > 0.5 * metres.size and finite.min() >= 0.05 and finite.max() <= 100.0
    assert spin(ctx, [depth, test], 10.0, lambda: any(
        v.key == 'scale' for s in statuses(diags, '/depth_node') for v in s.values))
    depth.destroy_node()


def test_mono_depth_without_references_publishes_nothing(ctx, world, tiny_depth_model):
    depth = mono_node(ctx, tiny_depth_model, '-p', 'mono_alignment:=sensor')
    test = local.Node('test', context=ctx)
    out = Probe(test, sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC)
    diags = Probe(test, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    rgb, _, info, stamp_ns = sim_frame(world)
    test.create_publisher(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC, 10).publish(info)
    assert spin(ctx, [depth, test], 10.0, lambda: depth._info is not None)
    color = test.create_publisher(sensor_msgs.Image, contract.COLOR_TOPIC, 10)
    color.publish(image.to_msg(rgb[:-2], 'rgb8', stamp_ns))  # wrong size
    assert spin(ctx, [depth, test], 10.0, has_status(diags, '/depth_node', ERROR,
                                                     'does not match camera_info'))
    color.publish(image.to_msg(rgb, 'rgb8', stamp_ns))  # no sparse sensor depth to align to
    assert spin(ctx, [depth, test], 30.0, has_status(diags, '/depth_node', WARN,
                                                     'not aligned'))
    assert out.msgs == []
    depth.destroy_node()


def test_mono_mode_refuses_bad_configurations(ctx, tmp_path, tiny_depth_model):
    with pytest.raises(ValueError, match='mono_model_dir'):
        DepthNode(context=ctx, cli_args=['--ros-args', '-p', 'mode:=mono'])
    with pytest.raises(FileNotFoundError, match='config.json'):
        mono_node(ctx, tmp_path / 'nothing_here')
    with pytest.raises(ValueError, match='needs metric references'):
        mono_node(ctx, tiny_depth_model, '-p', 'mono_alignment:=none')
    with pytest.raises(ValueError, match="'sensor' or 'mono'"):
        DepthNode(context=ctx, cli_args=['--ros-args', '-p', 'mode:=lidar'])


# --- pose_node: end effector ---------------------------------------------------------------------
def pose_matrix(pose) -> np.ndarray:
    p, o = pose.position, pose.orientation
    return kinematics.xyz_quat_to_pose([p.x, p.y, p.z, o.x, o.y, o.z, o.w])


@pytest.mark.parametrize('tcp_offset_m', [0.0, kinematics.TCP_OFFSET_M])
def test_ee_pose_matches_the_simulated_arm_within_1mm(ctx, world, tcp_offset_m):
    """pose_node reports the flange (SimWorld.ee_pose), or the TCP with tcp_offset_m."""
    node = PoseNode(context=ctx, cli_args=['--ros-args', '-p', 'detect_objects:=false',
                                           '-p', f'tcp_offset_m:={tcp_offset_m}'])
    test = local.Node('test', context=ctx)
    poses = Probe(test, geometry_msgs.PoseStamped, contract.EE_POSE_TOPIC)
    pub = test.create_publisher(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC, 100)
    lower, upper = kinematics.limit_arrays()
    configurations = np.random.default_rng(3).uniform(lower, upper, (20, 6))
    truths = []
    for i, q in enumerate(configurations):
        for name, value in zip(contract.ARM_JOINTS, q):
            world.data.qpos[world.model.joint(name).qposadr[0]] = value
        mujoco.mj_kinematics(world.model, world.data)
        q_sim = world.joint_positions()[:6]  # what the driver would report
        truths.append(world.tcp_pose() if tcp_offset_m else world.ee_pose())
        pub.publish(joint_state(list(q_sim) + [0.05], 1000 + i))
        if i % 10 == 9:  # the node keeps the last 10 joint states, as at 200 Hz
            assert spin(ctx, [node, test], 10.0, lambda: len(poses.msgs) == i + 1)
    for i, (msg, truth) in enumerate(zip(poses.msgs, truths)):
        assert msg.header.frame_id == 'base_link' and msg.header.stamp.nanosec == 1000 + i
        found = pose_matrix(msg.pose)
        assert np.linalg.norm(found[:3, 3] - truth[:3, 3]) <= 0.001
        assert np.linalg.norm(kinematics.rotation_log(found[:3, :3].T @ truth[:3, :3])) < 1e-3
    node.destroy_node()


# --- pose_node: objects --------------------------------------------------------------------------
def publish_tf_static(test, camera_to_base):
    tf = geometry_msgs.TransformStamped(child_frame_id=contract.CAMERA_FRAME)
    tf.header.frame_id = contract.BASE_FRAME
    x, y, z, qx, qy, qz, qw = (float(v) for v in kinematics.pose_to_xyz_quat(camera_to_base))
    t, r = tf.transform.translation, tf.transform.rotation
    t.x, t.y, t.z, r.x, r.y, r.z, r.w = x, y, z, qx, qy, qz, qw
    test.create_publisher(tf2_msgs.TFMessage, contract.TF_STATIC_TOPIC,
                          ros.qos_profile_latched).publish(tf2_msgs.TFMessage(transforms=[tf]))


def test_object_poses_through_depth_node_and_pose_node_match_ground_truth(ctx, world):
    """Camera topics -> depth_node -> pose_node -> /vla/objects, transform from /tf_static."""
    depth = DepthNode(context=ctx)
    node = PoseNode(context=ctx)
    test = local.Node('test', context=ctx)
    found = Probe(test, vision_msgs.Detection3DArray, contract.OBJECTS_TOPIC)
    ee = Probe(test, geometry_msgs.PoseStamped, contract.EE_POSE_TOPIC)
    publish_tf_static(test, world.camera_pose())
    color = test.create_publisher(sensor_msgs.Image, contract.COLOR_TOPIC, 10)
    depth_pub = test.create_publisher(sensor_msgs.Image, contract.DEPTH_TOPIC, 10)
    info_pub = test.create_publisher(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC, 10)
    joints = test.create_publisher(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC, 100)
    truths = []
    for seed, task in enumerate(sorted(TASKS)):
        TASKS[task].reset(world, seed)
        rgb, mm, info, stamp_ns = sim_frame(world)
        info_pub.publish(info)
        assert spin(ctx, [depth, node, test], 10.0, lambda: depth._info is not None
                    and node._info is not None and node._camera_to_base is not None)
        color.publish(image.to_msg(rgb, 'rgb8', stamp_ns, contract.CAMERA_FRAME))
        depth_pub.publish(image.to_msg(mm, '16UC1', stamp_ns, contract.CAMERA_FRAME))
        for i in range(10):  # joint states keep flowing while objects are detected
            joints.publish(joint_state(list(contract.READY_POSITIONS[:6]) + [0.05], stamp_ns + i))
        truths.append({n: np.linalg.inv(world.camera_pose()) @ world.object_pose(n)
                       for n in DEFAULT_CLASSES})
        assert spin(ctx, [depth, node, test], 20.0, lambda: len(found.msgs) == seed + 1
                    and len(ee.msgs) == 10 * (seed + 1))
    for msg, truth in zip(found.msgs, truths):
        assert msg.header.frame_id == contract.CAMERA_FRAME
        assert 2 <= len(msg.detections) <= 3
        for det in msg.detections:
            (hypothesis,) = det.results
            name = hypothesis.hypothesis.class_id
            pose = pose_matrix(hypothesis.pose.pose)
            np.testing.assert_allclose(pose_matrix(det.bbox.center), pose)
            assert np.linalg.norm(pose[:3, 3] - truth[name][:3, 3]) <= 0.01
            # Both poses' z axes are base_link's up, so yaw is the angle between x axes.
            relative = np.linalg.inv(truth[name]) @ pose
            assert relative[2, 2] == pytest.approx(1.0, abs=1e-6)
            yaw_error = reduce_yaw(math.atan2(relative[1, 0], relative[0, 0]),
                                   DEFAULT_CLASSES[name].symmetry_deg)
            assert abs(math.degrees(yaw_error)) <= 10.0
            assert 0.005 < det.bbox.size.z < 0.05 and 0.0 < hypothesis.hypothesis.score <= 1.0
    node.destroy_node()
    depth.destroy_node()


def test_pose_node_publishes_no_objects_from_bad_frames(ctx, world):
    node = PoseNode(context=ctx, cli_args=['--ros-args', '-p',
                                           f'calibration_file:={CALIBRATION}'])
    test = local.Node('test', context=ctx)
    found = Probe(test, vision_msgs.Detection3DArray, contract.OBJECTS_TOPIC)
    diags = Probe(test, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    color = test.create_publisher(sensor_msgs.Image, contract.COLOR_TOPIC, 10)
    metric = test.create_publisher(sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC, 10)
    rgb, _, info, stamp_ns = sim_frame(world)
    nan_depth = np.full(rgb.shape[:2], np.nan, np.float32)

    def pair(stamp, rgb_image, depth_image, encoding='32FC1'):
        color.publish(image.to_msg(rgb_image, 'rgb8', stamp, contract.CAMERA_FRAME))
        metric.publish(image.to_msg(depth_image, encoding, stamp, contract.CAMERA_FRAME))

    pair(stamp_ns, rgb, nan_depth)  # no camera_info yet
    assert spin(ctx, [node, test], 10.0, has_status(diags, '/pose_node', WARN, 'camera_info'))
    test.create_publisher(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC, 10).publish(info)
    assert spin(ctx, [node, test], 10.0, lambda: node._info is not None)
    pair(stamp_ns + 1, rgb, nan_depth)  # NaN-only depth
    assert spin(ctx, [node, test], 10.0, has_status(diags, '/pose_node', WARN, 'valid pixel'))
    pair(stamp_ns + 2, rgb[:-1], nan_depth[:-1])  # not the camera_info size
    assert spin(ctx, [node, test], 10.0, has_status(diags, '/pose_node', ERROR, 'sizes differ'))
    pair(stamp_ns + 3, rgb, np.zeros(rgb.shape[:2], np.uint16), '16UC1')  # camera depth
    assert spin(ctx, [node, test], 10.0, has_status(diags, '/pose_node', ERROR, '32FC1'))
    assert found.msgs == []
    node.destroy_node()


def test_depth_tokenizer_reconstruction_is_published_for_inspection(ctx, tmp_path):
    import torch
    from vla_nodes.models.qdepth import DepthVQVAE, TINY_VQVAE
    from vla_nodes.perception.depth_tokens import DepthTokenPreview
    torch.manual_seed(0)
    DepthVQVAE(TINY_VQVAE).save_pretrained(tmp_path / 'tokenizer')
    depth = DepthNode(context=ctx, cli_args=[
        '--ros-args', '-p', f"depth_tokenizer:={tmp_path / 'tokenizer'}"])
    test = local.Node('test', context=ctx)
    out = Probe(test, sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC)
    tokens = Probe(test, sensor_msgs.Image, contract.DEPTH_TOKENS_TOPIC)
    k = np.array([[50.0, 0, 15.5], [0, 50.0, 11.5], [0, 0, 1]])
    test.create_publisher(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC, 10).publish(
        camera_info(k, [0.0] * 5, 32, 24, 'plumb_bob', 1, 'cam'))
    assert spin(ctx, [depth, test], 10.0, lambda: depth._info is not None)
    mm = np.tile(np.linspace(800, 1600, 32, dtype=np.uint16), (24, 1))
    mm[:, :4] = 0  # invalid band
    test.create_publisher(sensor_msgs.Image, contract.DEPTH_TOPIC, 10).publish(
        image.to_msg(mm, '16UC1', stamp_ns=9, frame_id='cam'))
    assert spin(ctx, [depth, test], 10.0, lambda: tokens.msgs)
    depth.destroy_node()
    shown = image.from_msg(tokens.msgs[0])
    assert tokens.msgs[0].header == out.msgs[0].header and shown.shape == (24, 32)
    assert np.isnan(shown[:, :4]).all() and np.isfinite(shown[:, 4:]).all()
    assert shown[:, 4:].min() >= 0.8 - 1e-6 and shown[:, 4:].max() <= 1.6 + 1e-6
    # It is exactly the tokenizer's decode of its own codes, mapped to the frame's range.
    expected, codes = DepthTokenPreview(tmp_path / 'tokenizer').reconstruct(
        image.from_msg(out.msgs[0]))
    np.testing.assert_allclose(shown, expected, atol=1e-6)
    assert codes.shape == (TINY_VQVAE.grid ** 2,)
