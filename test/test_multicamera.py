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

"""Scene + wrist cameras end to end: sim recording -> export -> training -> policy_node.

Real parts: MuJoCo renders both cameras, the recorder writes real MCAP bags (read back with
rosbags), vla-export writes a LeRobot v3 dataset, vla-train trains a real tiny transformers
model on it, and policy_node runs the checkpoint on the local-backend graph.
"""

import json
import os

os.environ.setdefault('MUJOCO_GL', 'egl')  # mujoco picks its GL backend when first imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from graph import joint_state, spin, tiny_checkpoint  # noqa: E402  test/graph.py
from vla_nodes import contract, ros  # noqa: E402
from vla_nodes.nodes.policy_node import PolicyNode  # noqa: E402
from vla_nodes.orchestration.record import record_sim  # noqa: E402
from vla_nodes.policy.checkpoint import ContractMismatchError, read_policy_json  # noqa: E402
from vla_nodes.policy.policy import make_piper_example, VLAPolicy  # noqa: E402
from vla_nodes.record import bag_meta, bag_read, export, export_config  # noqa: E402
from vla_nodes.ros import image, local  # noqa: E402
from vla_nodes.ros.msgs import sensor_msgs, trajectory_msgs  # noqa: E402
from vla_nodes.train.data import LeRobotDataset  # noqa: E402

SCENE, WRIST = contract.SCENE_CAMERA, contract.WRIST_CAMERA
pytestmark = pytest.mark.filterwarnings('ignore:.*bustype.*:DeprecationWarning')


@pytest.fixture(scope='module')
def recorded(tmp_path_factory):
    """Two short expert episodes with both cameras, recorded in lock-step."""
    out = tmp_path_factory.mktemp('bags')
    results = record_sim('pick_red_cube', 2, str(out), seed=5, progress=False,
                         launch_args={'cameras': '[scene, wrist]', 'max_episode_s': '2.0',
                                      'can_name': 'test_multicamera'})
    return [r['path'] for r in results]


@pytest.fixture(scope='module')
def dataset(recorded, tmp_path_factory):
    out = tmp_path_factory.mktemp('data') / 'ds'
    export.export(recorded, out,
                  export_config.ExportConfig(cameras=(SCENE, WRIST), progress=False))
    return out


@pytest.fixture(scope='module')
def checkpoint(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp('run') / 'run'
    return tiny_checkpoint(dataset, out, '--cameras', 'scene,wrist')


def test_the_recorder_keeps_every_cameras_topics(recorded):
    for path in recorded:
        stats = bag_read.summarize(path)
        for cam in (SCENE, WRIST):
            for topic in (cam.color_topic, cam.color_info_topic, cam.depth_topic,
                          cam.depth_info_topic):
                assert stats[topic]['count'] > 5, (path, topic)
        frames = {m.header.frame_id for _, _, _, m in bag_read.read_bag(path, [WRIST.color_topic])}
        assert frames == {WRIST.frame}
        assert bag_meta.read_metadata(path)['audit']['level'] in ('ok', 'warn')


def test_export_writes_a_colour_and_a_depth_video_per_camera(dataset):
    info = json.loads((dataset / 'meta' / 'info.json').read_text())
    features = info['features']
    for key in (SCENE.image_key, SCENE.depth_key, WRIST.image_key, WRIST.depth_key):
        assert features[key]['dtype'] == 'video', key
    assert features[WRIST.image_key]['info']['intrinsics']['frame_id'] == WRIST.frame
    assert features[SCENE.image_key]['info']['intrinsics']['frame_id'] == SCENE.frame
    # The two views differ: the wrist camera is not a copy of the scene camera.
    data = LeRobotDataset(dataset, horizon=4, image_size=56, extra_images=(WRIST.image_key,))
    sample = data[0]
    assert sample[WRIST.image_key].shape == (56, 56, 3)
    assert not np.array_equal(sample[WRIST.image_key], sample[SCENE.image_key])


def test_training_lists_its_cameras_and_the_model_reads_the_wrist_view(checkpoint):
    policy_json = read_policy_json(checkpoint)
    assert policy_json['contract']['cameras'] == ['scene', 'wrist']
    policy = VLAPolicy.from_checkpoint(checkpoint)
    assert policy.model.config.extra_images == (WRIST.image_key,)
    obs = make_piper_example(seed=1)
    with pytest.raises(KeyError, match=WRIST.image_key):
        policy.infer(obs)
    rng = np.random.default_rng(2)
    a = policy.infer({**obs, WRIST.image_key: rng.integers(0, 256, (480, 640, 3), np.uint8)})
    b = policy.infer({**obs, WRIST.image_key: rng.integers(0, 256, (480, 640, 3), np.uint8)})
    assert not np.allclose(a['actions'], b['actions'])  # same seed: only the wrist view differs


def test_a_robot_without_the_wrist_camera_is_refused_with_what_to_do(ctx, checkpoint):
    with pytest.raises(ContractMismatchError) as err:
        PolicyNode(context=ctx, parameter_overrides=[
            ros.Parameter('checkpoint', value=str(checkpoint)),
            ros.Parameter('action_rate_hz', value=10.0)])
    text = str(err.value)
    assert '\n' not in text
    assert "lacks ['wrist']" in text and WRIST.color_topic in text and 'cameras' in text


def test_policy_node_waits_for_every_camera_then_publishes_chunks(ctx, checkpoint, one_thread):
    node = PolicyNode(context=ctx, parameter_overrides=[
        ros.Parameter('checkpoint', value=str(checkpoint)),
        ros.Parameter('action_rate_hz', value=10.0),
        ros.Parameter('cameras', value=['scene', 'wrist'])])
    tester = local.Node('cameras_tester', context=ctx)
    pubs = {topic: tester.create_publisher(sensor_msgs.Image, topic, 2)
            for topic in (SCENE.color_topic, WRIST.color_topic, contract.METRIC_DEPTH_TOPIC)}
    joints = tester.create_publisher(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC, 10)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    metres = rng.uniform(0.3, 1.0, (48, 64)).astype(np.float32)
    wrist_on = [False]

    def publish():
        stamp = tester.get_clock().now().nanoseconds
        if wrist_on[0]:  # the wrist frame first, as sim_node sends them
            pubs[WRIST.color_topic].publish(image.to_msg(rgb[::-1], 'rgb8', stamp, WRIST.frame))
        pubs[SCENE.color_topic].publish(image.to_msg(rgb, 'rgb8', stamp, SCENE.frame))
        pubs[contract.METRIC_DEPTH_TOPIC].publish(image.to_msg(metres, '32FC1', stamp,
                                                               SCENE.frame))
        joints.publish(joint_state(contract.READY_POSITIONS, tester.get_clock().now().nanoseconds))

    tester.create_timer(0.1, publish)
    chunks = []
    tester.create_subscription(trajectory_msgs.JointTrajectory, contract.ACTION_CHUNK_TOPIC,
                               chunks.append, 10)
    try:
        spin(ctx, [node, tester], 2.0)
        assert not chunks, 'a chunk without the wrist camera'
        wrist_on[0] = True
        assert spin(ctx, [node, tester], 30.0, until=lambda: len(chunks) >= 2)
        assert len(chunks[0].points) == 16
    finally:
        node.destroy_node()
        tester.destroy_node()
