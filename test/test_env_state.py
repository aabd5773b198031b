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

"""Object poses as an observation: pose_node's detections -> export -> training -> policy_node.

Real parts: MuJoCo renders the scene, pose_node detects the cube (perception/objects.py), the
recorder writes real MCAP bags, vla-export turns /vla/objects + /tf_static into
observation.environment_state, vla-train trains a real tiny model on it, and policy_node builds the
same vector from a Detection3DArray on the local-backend graph.
"""

import json
import math
import os

os.environ.setdefault('MUJOCO_GL', 'egl')  # mujoco picks its GL backend when first imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from graph import spin, tiny_checkpoint  # noqa: E402  test/graph.py
from vla_nodes import contract, ros  # noqa: E402
from vla_nodes.nodes.policy_node import PolicyNode  # noqa: E402
from vla_nodes.nodes.pose_node import detections_msg  # noqa: E402
from vla_nodes.orchestration.pipeline import WORKSPACE_CROP  # noqa: E402
from vla_nodes.orchestration.record import record_sim  # noqa: E402
from vla_nodes.perception import env_state  # noqa: E402
from vla_nodes.perception.objects import DetectedObject  # noqa: E402
from vla_nodes.policy.checkpoint import ContractMismatchError, read_policy_json  # noqa: E402
from vla_nodes.policy.policy import make_piper_example, VLAPolicy  # noqa: E402
from vla_nodes.record import bag_read, export, export_config, snapshots  # noqa: E402
from vla_nodes.ros import image, local  # noqa: E402
from vla_nodes.ros.msgs import geometry_msgs, sensor_msgs, tf2_msgs  # noqa: E402
from vla_nodes.ros.msgs import trajectory_msgs  # noqa: E402
from vla_nodes.sim import tasks  # noqa: E402
from vla_nodes.sim.world import SimConfig, SimWorld  # noqa: E402
from vla_nodes.train.data import LeRobotDataset  # noqa: E402

pytestmark = pytest.mark.filterwarnings('ignore:.*bustype.*:DeprecationWarning')
NAMES = env_state.feature_names(('cube',))


def yawed(yaw, xyz=(0.3, 0.05, 0.02)):
    pose = np.eye(4)
    pose[:2, :2] = [[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]]
    pose[:3, 3] = xyz
    return pose


def test_an_observation_waits_for_the_poses_of_its_own_frame():
    """The previous frame's poses were taken when they came before this frame's.

    In a lock-step step pose_node's answer for frame T and policy_node's inputs of frame T
    arrive in either order: the observation then depended on which came first, and two
    evaluations of one seed differed. Like the joint state, the poses as of T are final only
    once pose_node answered for T (or a later frame).
    """
    from vla_nodes.nodes.policy_inputs import ObservationBuffer
    from vla_nodes.ros.msgs import std_msgs
    buffer = ObservationBuffer(max_object_age_ns=int(0.5e9))

    def detections(stamp_ns, x):
        header = std_msgs.Header(stamp=ros.Time(nanoseconds=stamp_ns).to_msg(),
                                 frame_id=contract.CAMERA_FRAME)
        pose = yawed(0.0, (x, 0.0, 0.5))
        return detections_msg([DetectedObject('cube', pose, np.full(3, 0.04), 1.0, 100)], header)

    frame_ns = 2 * 10**9
    buffer.add_objects(detections(frame_ns - 10**8, 0.1))  # the previous frame's
    assert buffer.objects_as_of(['cube'], frame_ns) == ({}, ['cube'])
    buffer.add_objects(detections(frame_ns, 0.2))
    found, missing = buffer.objects_as_of(['cube'], frame_ns)
    assert not missing and found['cube'][1][0, 3] == pytest.approx(0.2)
    # A skipped frame: pose_node's next answer settles it with the newest pose before it.
    assert buffer.objects_as_of(['cube'], frame_ns - 5 * 10**7)[0]['cube'][1][0, 3] == \
        pytest.approx(0.1)


def test_the_vector_is_the_same_for_a_cubes_equivalent_yaws_and_nan_when_missing():
    camera_to_base = yawed(0.4, (0.8, 0.4, 0.6))
    base = [env_state.vector({'cube': np.linalg.inv(camera_to_base) @ yawed(y)}, camera_to_base)
            for y in (0.3, 0.3 + math.pi / 2, 0.3 - math.pi)]
    np.testing.assert_allclose(base[0], base[1], atol=1e-6)
    np.testing.assert_allclose(base[0], base[2], atol=1e-6)
    np.testing.assert_allclose(base[0], [0.3, 0.05, 0.02, math.cos(1.2), math.sin(1.2)],
                               atol=1e-6)
    assert np.isnan(env_state.vector({}, camera_to_base)).all()
    assert env_state.objects_of(env_state.feature_names(('cube', 'plate'))) == ('cube', 'plate')
    held = env_state.hold_last(np.array([[np.nan], [1.0], [np.nan], [2.0]]))
    np.testing.assert_array_equal(held[1:, 0], [1.0, 1.0, 2.0])
    assert np.isnan(held[0, 0])


@pytest.fixture(scope='module')
def recorded(tmp_path_factory):
    """Two short expert episodes recorded in lock-step, pose_node publishing /vla/objects."""
    out = tmp_path_factory.mktemp('bags')
    results = record_sim('pick_red_cube', 2, str(out), seed=5, progress=False,
                         launch_args={'max_episode_s': '2.0', 'can_name': 'test_env_state'})
    return results


@pytest.fixture(scope='module')
def dataset(recorded, tmp_path_factory):
    out = tmp_path_factory.mktemp('data') / 'ds'
    export.export([r['path'] for r in recorded], out, export_config.ExportConfig(progress=False))
    return out


@pytest.fixture(scope='module')
def checkpoint(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp('run') / 'run'
    return tiny_checkpoint(dataset, out, '--env-state')


def test_export_writes_the_cubes_pose_in_base_link(recorded, dataset):
    assert bag_read.summarize(recorded[0]['path'])[contract.OBJECTS_TOPIC]['count'] > 5
    data = LeRobotDataset(dataset, horizon=4, image_size=56, env_state=True)
    assert data.env_names == NAMES
    world = SimWorld(SimConfig())
    for e, result in zip(sorted(data.episodes), recorded):
        tasks.get_task('pick_red_cube').reset(world, result['seed'])
        truth = env_state.pose_features(world.object_pose('cube'), 'cube')
        first = data.env[data.episodes[e]['rows'][0]]  # the cube has not moved yet
        np.testing.assert_allclose(first[:3], truth[:3], atol=0.01)  # detector: ~1 mm
        np.testing.assert_allclose(first[3:], truth[3:], atol=0.1)
    assert data[0][contract.OBS_ENV_STATE].shape == (5,)
    assert contract.OBS_ENV_STATE not in LeRobotDataset(dataset, horizon=4, image_size=56)[0]


def test_training_reads_the_environment_state_and_saves_it_in_the_contract(checkpoint):
    policy_json = read_policy_json(checkpoint)
    assert policy_json['contract']['environment_state'] == NAMES
    assert policy_json['norm_stats'][contract.OBS_ENV_STATE].q01.shape == (5,)
    policy = VLAPolicy.from_checkpoint(checkpoint)
    assert policy.model.config.env_state_dim == 5
    obs = make_piper_example()
    with pytest.raises(KeyError, match='environment_state'):
        policy.infer(obs)
    a = policy.infer({**obs, contract.OBS_ENV_STATE: [0.3, 0.0, 0.02, 1.0, 0.0]})['actions']
    b = policy.infer({**obs, contract.OBS_ENV_STATE: [0.2, 0.1, 0.02, 0.0, 1.0]})['actions']
    assert a.shape == (16, 7) and not np.allclose(a, b)  # the poses reach the action expert


def test_a_policy_that_learns_the_poses_from_the_camera_runs_without_pose_node(
        dataset, tmp_path, ctx, capsys):
    # tiny_pi0_keypoints_pose: the dataset's poses are training targets, not an input.
    checkpoint = tiny_checkpoint(dataset, tmp_path / 'run', '--preset', 'tiny_pi0_keypoints_pose')
    metrics = [json.loads(line) for line in (tmp_path / 'run' / 'metrics.jsonl').open()]
    assert all(np.isfinite(m['env_pose']) for m in metrics)
    assert read_policy_json(checkpoint)['contract'].get('environment_state') is None
    policy = VLAPolicy.from_checkpoint(checkpoint)
    assert policy.model.config.env_state_dim == 5 and policy.model.config.env_state_from_image
    assert policy.infer(make_piper_example())['actions'].shape == (16, 7)
    node = PolicyNode(context=ctx, parameter_overrides=[  # a robot without pose_node
        ros.Parameter('checkpoint', value=str(checkpoint)),
        ros.Parameter('objects_topic', value='')])
    node.destroy_node()
    from vla_nodes.train.train import main as vla_train
    assert vla_train(['--data', str(dataset), '--out', str(tmp_path / 'bad'), '--steps', '1',
                      '--preset', 'tiny_pi0_keypoints_pose', '--env-state', '--no-progress']) != 0
    assert 'without --env-state' in capsys.readouterr().err


def test_pose_snapshots_label_as_pose_node_did_and_train_a_camera_only_policy(
        recorded, dataset, tmp_path, capsys):
    # vla-snapshots of a demo's seed label its first frame exactly as pose_node did in the
    # recording graph (the same detector, depth path and /tf_static transform).
    data = LeRobotDataset(dataset, horizon=4, image_size=84, env_state=True,
                          crop=WORKSPACE_CROP)
    firsts = {e: data[int(np.searchsorted(data.samples, data.episodes[e]['rows'][0]))][
        contract.OBS_IMAGE].astype(int) for e in data.episodes}
    snaps = {}
    for e, result in zip(sorted(data.episodes), recorded):
        folder = snapshots.record_snapshots(tmp_path / f'seed{e}', 1, result['seed'],
                                            progress=False)
        snaps[e] = snapshots.read_snapshots(folder, 84, WORKSPACE_CROP)
        row = data.episodes[e]['rows'][0]
        np.testing.assert_allclose(snaps[e]['env_state'][0], data.env[row], atol=1e-6)
    # The same scene as its demo's first frame. Compared where the seeds' scenes differ (the
    # snapshots' arms are alike), since the demo's arm may already have moved on a loaded machine.
    images = {e: snap['image'][0].astype(int) for e, snap in snaps.items()}
    scene = np.abs(images[0] - images[1]).max(axis=-1) > 40
    assert scene.sum() > 20
    for e in images:
        difference = {d: np.abs(firsts[e] - image)[scene].mean() for d, image in images.items()}
        assert difference[e] < 0.5 * difference[1 - e], difference
    snaps = snapshots.record_snapshots(tmp_path / 'snaps', 4, 100000, progress=False)
    run = tmp_path / 'run'
    checkpoint = tiny_checkpoint(dataset, run, '--preset', 'tiny_pi0_keypoints_pose',
                                 '--pose-snapshots', str(snaps), '--pose-snapshots-val',
                                 str(snaps), '--snapshot-batch', '2')
    last = [json.loads(line) for line in (run / 'metrics.jsonl').open()][-1]
    assert np.isfinite(last['snapshot_pose']) and last['snap_pose_x_cm'] > 0
    assert {'train_pose_y_cm', 'snap_pose_yaw_deg'} <= set(last)
    assert read_policy_json(checkpoint)['contract'].get('environment_state') is None
    assert VLAPolicy.from_checkpoint(checkpoint).infer(
        make_piper_example())['actions'].shape == (16, 7)  # the camera alone
    # Its estimator, frozen, serves a policy that sees a blank frame (--estimator-from).
    blind = VLAPolicy.from_checkpoint(tiny_checkpoint(
        dataset, tmp_path / 'blind', '--preset', 'tiny_pi0_pose_blind', '--estimator-from',
        str(checkpoint)))
    trained = VLAPolicy.from_checkpoint(checkpoint).model.env_readout.state_dict()
    assert all(torch.equal(v, trained[k])
               for k, v in blind.model.env_readout.state_dict().items())
    assert blind.infer(make_piper_example())['actions'].shape == (16, 7)
    from vla_nodes.train.train import main as vla_train
    assert vla_train(['--data', str(dataset), '--out', str(tmp_path / 'bad'), '--steps', '1',
                      '--preset', 'tiny_pi0_baseline', '--pose-snapshots', str(snaps),
                      '--no-progress']) != 0
    assert 'has none' in capsys.readouterr().err


def test_policy_node_builds_it_from_detections_and_refuses_a_robot_without_them(
        ctx, checkpoint, one_thread):
    with pytest.raises(ContractMismatchError, match='environment_state.*pose_node'):
        PolicyNode(context=ctx, parameter_overrides=[
            ros.Parameter('checkpoint', value=str(checkpoint)),
            ros.Parameter('objects_topic', value='')])
    node = PolicyNode(context=ctx, parameter_overrides=[
        ros.Parameter('checkpoint', value=str(checkpoint))])
    tester = local.Node('env_tester', context=ctx)
    pubs = {name: tester.create_publisher(kind, topic, 10) for name, kind, topic in (
        ('color', sensor_msgs.Image, contract.COLOR_TOPIC),
        ('depth', sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC),
        ('joints', sensor_msgs.JointState, contract.JOINT_STATES_TOPIC),
        ('objects', type(detections_msg([], None)), contract.OBJECTS_TOPIC))}
    tf_pub = tester.create_publisher(tf2_msgs.TFMessage, contract.TF_STATIC_TOPIC,
                                     ros.qos_profile_latched)
    camera_to_base = yawed(2.0, (0.8, 0.45, 0.6))
    cube_in_base = yawed(0.35, (0.28, -0.04, 0.02))
    send_objects = []
    chunks = []
    tester.create_subscription(trajectory_msgs.JointTrajectory, contract.ACTION_CHUNK_TOPIC,
                               chunks.append, 10)

    def publish():
        now = tester.get_clock().now()
        stamp = now.nanoseconds
        pubs['color'].publish(image.to_msg(np.zeros((48, 64, 3), np.uint8), 'rgb8', stamp,
                                           contract.CAMERA_FRAME))
        pubs['depth'].publish(image.to_msg(np.ones((48, 64), np.float32), '32FC1', stamp,
                                           contract.CAMERA_FRAME))
        joints = sensor_msgs.JointState(name=list(contract.JOINT_NAMES),
                                        position=list(contract.READY_POSITIONS))
        joints.header.stamp = now.to_msg()
        pubs['joints'].publish(joints)
        if send_objects:
            cube = DetectedObject('cube', np.linalg.inv(camera_to_base) @ cube_in_base,
                                  np.full(3, 0.04), 1.0, 100)
            header = joints.header.__class__(stamp=now.to_msg(), frame_id=contract.CAMERA_FRAME)
            pubs['objects'].publish(detections_msg([cube], header))

    tester.create_timer(0.1, publish)
    tf = geometry_msgs.TransformStamped()
    tf.header.frame_id, tf.child_frame_id = contract.BASE_FRAME, contract.CAMERA_FRAME
    from vla_nodes.arm.kinematics import pose_to_xyz_quat
    x, y, z, qx, qy, qz, qw = pose_to_xyz_quat(camera_to_base)
    tf.transform.translation = geometry_msgs.Vector3(x=x, y=y, z=z)
    tf.transform.rotation = geometry_msgs.Quaternion(x=qx, y=qy, z=qz, w=qw)
    tf_pub.publish(tf2_msgs.TFMessage(transforms=[tf]))
    nodes = [node, tester]
    try:
        spin(ctx, nodes, 1.5)
        assert not chunks, 'a chunk without object poses'
        send_objects.append(True)
        assert spin(ctx, nodes, 20.0, until=lambda: len(chunks) >= 2), 'no chunks'
        np.testing.assert_allclose(node.last_env_state,
                                   env_state.pose_features(cube_in_base, 'cube'), atol=1e-5)
        # pose_node stops: once its last pose is older than max_object_age_s (0.5 s) before
        # the frame, no chunk is computed from it (it was used forever before).
        send_objects.clear()
        spin(ctx, nodes, 1.0)
        count = len(chunks)
        spin(ctx, nodes, 1.5)
        assert len(chunks) == count, 'chunks from a stale object pose'
        assert 'at most 0.5 s old' in node._diag.message
    finally:
        node.destroy_node()
        tester.destroy_node()
