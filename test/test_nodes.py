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

"""Nodes on the local backend with real parts: bad input is rejected and the graph keeps running.

The arm driver's tests are in test_arm_driver.py, the camera's in test_camera.py.
"""


import numpy as np

from graph import Probe, spin
from vla_nodes import contract
from vla_nodes.nodes.depth_node import DepthNode
from vla_nodes.nodes.diagnostics import ERROR
from vla_nodes.nodes.pose_node import PoseNode
from vla_nodes.ros import image, local
from vla_nodes.ros.msgs import diagnostic_msgs, sensor_msgs, vision_msgs


# --- depth_node ----------------------------------------------------------------------------------

def test_depth_node_rejects_bad_frames_and_keeps_going(ctx):
    depth = DepthNode(context=ctx)
    test = local.Node('test', context=ctx)
    out = Probe(test, sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC)
    diags = Probe(test, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    depth_pub = test.create_publisher(sensor_msgs.Image, contract.DEPTH_TOPIC, 10)
    info_pub = test.create_publisher(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC, 10)

    depth_pub.publish(image.to_msg(np.ones((3, 4), np.uint16), '16UC1'))  # no camera_info yet
    spin(ctx, [depth, test], 0.1)
    info_pub.publish(sensor_msgs.CameraInfo(width=4, height=3))
    spin(ctx, [depth, test], 0.1)
    depth_pub.publish(image.to_msg(np.zeros((3, 4, 3), np.uint8), 'bgr8'))   # wrong encoding
    depth_pub.publish(image.to_msg(np.ones((6, 8), np.uint16), '16UC1'))    # wrong size
    spin(ctx, [depth, test], 0.1)
    assert out.msgs == []
    good = np.array([[0, 500, 1000, 1500]] * 3, np.uint16)
    depth_pub.publish(image.to_msg(good, '16UC1', stamp_ns=5, frame_id='cam'))
    spin(ctx, [depth, test], 1.2)

    assert len(out.msgs) == 1
    metres = image.from_msg(out.msgs[0])
    assert out.msgs[0].encoding == '32FC1' and out.msgs[0].header.frame_id == 'cam'
    assert np.isnan(metres[:, 0]).all()
    np.testing.assert_array_equal(metres[:, 1:], [[0.5, 1.0, 1.5]] * 3)
    statuses = [s for d in diags.msgs for s in d.status if s.name == '/depth_node']
    assert statuses, 'depth_node published no diagnostics'
    depth.destroy_node()


def test_depth_node_reports_errors_in_diagnostics(ctx):
    depth = DepthNode(context=ctx)
    test = local.Node('test', context=ctx)
    diags = Probe(test, diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC)
    test.create_publisher(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC, 10).publish(
        sensor_msgs.CameraInfo(width=4, height=3))
    spin(ctx, [depth, test], 0.1)
    test.create_publisher(sensor_msgs.Image, contract.DEPTH_TOPIC, 10).publish(
        image.to_msg(np.zeros((3, 4), np.float32), '32FC1'))
    spin(ctx, [depth, test], 1.2)
    last = [s for d in diags.msgs for s in d.status][-1]
    assert last.level == ERROR and '16UC1' in last.message
    depth.destroy_node()


def test_depth_node_converts_nothing_while_nobody_reads_metric_depth(ctx):
    # A lazy publisher (image_pipeline's nodes are): vla-eval of a policy without depth.
    depth = DepthNode(context=ctx)
    test = local.Node('test', context=ctx)
    depth_pub = test.create_publisher(sensor_msgs.Image, contract.DEPTH_TOPIC, 10)
    test.create_publisher(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC, 10).publish(
        sensor_msgs.CameraInfo(width=4, height=3))
    spin(ctx, [depth, test], 0.1)
    good = np.full((3, 4), 800, np.uint16)
    depth_pub.publish(image.to_msg(good, '16UC1', stamp_ns=5, frame_id='cam'))
    spin(ctx, [depth, test], 0.1)
    assert depth._published == 0
    out = Probe(test, sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC)
    depth_pub.publish(image.to_msg(good, '16UC1', stamp_ns=6, frame_id='cam'))
    spin(ctx, [depth, test], 0.1)
    assert len(out.msgs) == 1 and depth._published == 1
    depth.destroy_node()


def test_pose_node_reads_metric_depth_only_while_someone_reads_the_object_poses(ctx):
    pose = PoseNode(context=ctx)
    test = local.Node('test', context=ctx)
    color_pub = test.create_publisher(sensor_msgs.Image, contract.COLOR_TOPIC, 10)
    frame = image.to_msg(np.zeros((3, 4, 3), np.uint8), 'rgb8', stamp_ns=5)
    color_pub.publish(frame)
    spin(ctx, [pose, test], 0.1)
    assert test.count_subscribers(contract.METRIC_DEPTH_TOPIC) == 0  # so depth_node idles
    Probe(test, vision_msgs.Detection3DArray, contract.OBJECTS_TOPIC)
    color_pub.publish(frame)
    spin(ctx, [pose, test], 0.1)
    assert test.count_subscribers(contract.METRIC_DEPTH_TOPIC) == 1
    pose.destroy_node()
