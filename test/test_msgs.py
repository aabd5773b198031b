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

"""Local message classes: CDR equal to rosbags', rclpy-like behaviour, services, type hashes."""

import array
import copy
import pickle
import time

import numpy as np
import pytest
from rosbags.typesys import get_typestore, Stores

from vla_nodes.ros import msgs, type_store
from vla_nodes.ros.msgs import (
    builtin_interfaces, diagnostic_msgs, geometry_msgs, sensor_msgs, std_msgs, std_srvs,
    trajectory_msgs, vision_msgs)

pytestmark = pytest.mark.skipif(msgs.USE_RCLPY, reason='tests the local (ROS-free) classes')

HUMBLE = get_typestore(Stores.ROS2_HUMBLE)  # an independent store for the std types


def rb(type_name, **fields):
    """A rosbags dataclass, built by hand (not by our converter)."""
    store = HUMBLE if type_name in HUMBLE.types else type_store.typestore()
    return store.types[type_name](**fields)


def rb_cdr(obj, type_name):
    store = HUMBLE if type_name in HUMBLE.types else type_store.typestore()
    return bytes(store.serialize_cdr(obj, type_name))


def rb_header(sec, nanosec, frame_id):
    stamp = rb('builtin_interfaces/msg/Time', sec=sec, nanosec=nanosec)
    return rb('std_msgs/msg/Header', stamp=stamp, frame_id=frame_id)


def header(sec, nanosec, frame_id):
    return std_msgs.Header(stamp=builtin_interfaces.Time(sec=sec, nanosec=nanosec),
                           frame_id=frame_id)


def rb_pose(x, y, z, qx, qy, qz, qw):
    return rb('geometry_msgs/msg/Pose', position=rb('geometry_msgs/msg/Point', x=x, y=y, z=z),
              orientation=rb('geometry_msgs/msg/Quaternion', x=qx, y=qy, z=qz, w=qw))


def pose(x, y, z, qx, qy, qz, qw):
    return geometry_msgs.Pose(position=geometry_msgs.Point(x=x, y=y, z=z),
                              orientation=geometry_msgs.Quaternion(x=qx, y=qy, z=qz, w=qw))


def image_pair():
    data = bytes(range(18))
    ours = sensor_msgs.Image(header=header(12, 345, 'camera_color_optical_frame'), height=2,
                             width=3, encoding='rgb8', is_bigendian=0, step=9, data=data)
    ref = rb('sensor_msgs/msg/Image', header=rb_header(12, 345, 'camera_color_optical_frame'),
             height=2, width=3, encoding='rgb8', is_bigendian=0, step=9,
             data=np.frombuffer(data, np.uint8))
    return ours, ref


def camera_info_pair():
    k = [600.0, 0.0, 320.0, 0.0, 601.0, 240.0, 0.0, 0.0, 1.0]
    p = [600.0, 0.0, 320.0, 0.0, 0.0, 601.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    d = [0.1, -0.2, 0.0, 0.0, 0.05]
    ours = sensor_msgs.CameraInfo(header=header(1, 2, 'cam'), height=480, width=640,
                                  distortion_model='plumb_bob', d=d, k=np.array(k),
                                  r=np.eye(3).ravel(), p=np.array(p), binning_x=1)
    ours.roi.width = 10
    ref = rb('sensor_msgs/msg/CameraInfo', header=rb_header(1, 2, 'cam'), height=480, width=640,
             distortion_model='plumb_bob', d=np.array(d), k=np.array(k), r=np.eye(3).ravel(),
             p=np.array(p), binning_x=1, binning_y=0,
             roi=rb('sensor_msgs/msg/RegionOfInterest', x_offset=0, y_offset=0, height=0,
                    width=10, do_rectify=False))
    return ours, ref


def joint_state_pair():
    names = ['joint1', 'joint2', 'gripper']
    ours = sensor_msgs.JointState(header=header(5, 0, ''), name=names,
                                  position=[0.1, -0.2, 0.035], velocity=np.zeros(3))
    ref = rb('sensor_msgs/msg/JointState', header=rb_header(5, 0, ''), name=names,
             position=np.array([0.1, -0.2, 0.035]), velocity=np.zeros(3),
             effort=np.array([], np.float64))
    return ours, ref


def trajectory_pair():
    names = ['joint1', 'gripper']
    ours = trajectory_msgs.JointTrajectory(header=header(7, 8, 'base_link'), joint_names=names)
    refs = []
    for i in range(3):
        ours.points.append(trajectory_msgs.JointTrajectoryPoint(
            positions=[0.1 * i, 0.02], velocities=array.array('d', [0.5, 0.0]),
            time_from_start=builtin_interfaces.Duration(sec=0, nanosec=100_000_000 * (i + 1))))
        refs.append(rb('trajectory_msgs/msg/JointTrajectoryPoint',
                       positions=np.array([0.1 * i, 0.02]), velocities=np.array([0.5, 0.0]),
                       accelerations=np.array([]), effort=np.array([]),
                       time_from_start=rb('builtin_interfaces/msg/Duration', sec=0,
                                          nanosec=100_000_000 * (i + 1))))
    ref = rb('trajectory_msgs/msg/JointTrajectory', header=rb_header(7, 8, 'base_link'),
             joint_names=names, points=refs)
    return ours, ref


def pose_stamped_pair():
    ours = geometry_msgs.PoseStamped(header=header(3, 4, 'base_link'),
                                     pose=pose(0.3, -0.1, 0.25, 0.0, 0.7071, 0.0, 0.7071))
    ref = rb('geometry_msgs/msg/PoseStamped', header=rb_header(3, 4, 'base_link'),
             pose=rb_pose(0.3, -0.1, 0.25, 0.0, 0.7071, 0.0, 0.7071))
    return ours, ref


def diagnostics_pair():
    status = diagnostic_msgs.DiagnosticStatus(
        level=diagnostic_msgs.DiagnosticStatus.ERROR, name='arm_driver', message='CAN fault',
        hardware_id='piper', values=[diagnostic_msgs.KeyValue(key='rate_hz', value='199.5')])
    ours = diagnostic_msgs.DiagnosticArray(header=header(9, 10, ''),
                                           status=[status, diagnostic_msgs.DiagnosticStatus()])
    ref_status = [
        rb('diagnostic_msgs/msg/DiagnosticStatus', level=2, name='arm_driver',
           message='CAN fault', hardware_id='piper',
           values=[rb('diagnostic_msgs/msg/KeyValue', key='rate_hz', value='199.5')]),
        rb('diagnostic_msgs/msg/DiagnosticStatus', level=0, name='', message='',
           hardware_id='', values=[])]
    ref = rb('diagnostic_msgs/msg/DiagnosticArray', header=rb_header(9, 10, ''),
             status=ref_status)
    return ours, ref


def detections_pair():
    cov = np.arange(36, dtype=np.float64) / 100
    hypothesis = vision_msgs.ObjectHypothesisWithPose(
        hypothesis=vision_msgs.ObjectHypothesis(class_id='red_cube', score=0.9),
        pose=geometry_msgs.PoseWithCovariance(pose=pose(0.1, 0.2, 0.5, 0, 0, 0, 1),
                                              covariance=cov))
    detection = vision_msgs.Detection3D(
        header=header(11, 12, 'camera_color_optical_frame'), results=[hypothesis],
        bbox=vision_msgs.BoundingBox3D(center=pose(0.1, 0.2, 0.5, 0, 0, 0, 1),
                                       size=geometry_msgs.Vector3(x=0.04, y=0.04, z=0.04)),
        id='7')
    ours = vision_msgs.Detection3DArray(header=header(11, 12, 'camera_color_optical_frame'),
                                        detections=[detection])
    ref_hyp = rb('vision_msgs/msg/ObjectHypothesisWithPose',
                 hypothesis=rb('vision_msgs/msg/ObjectHypothesis', class_id='red_cube',
                               score=0.9),
                 pose=rb('geometry_msgs/msg/PoseWithCovariance',
                         pose=rb_pose(0.1, 0.2, 0.5, 0, 0, 0, 1), covariance=cov))
    ref_det = rb('vision_msgs/msg/Detection3D',
                 header=rb_header(11, 12, 'camera_color_optical_frame'), results=[ref_hyp],
                 bbox=rb('vision_msgs/msg/BoundingBox3D',
                         center=rb_pose(0.1, 0.2, 0.5, 0, 0, 0, 1),
                         size=rb('geometry_msgs/msg/Vector3', x=0.04, y=0.04, z=0.04)),
                 id='7')
    ref = rb('vision_msgs/msg/Detection3DArray',
             header=rb_header(11, 12, 'camera_color_optical_frame'), detections=[ref_det])
    return ours, ref


PAIRS = {
    'sensor_msgs/msg/Image': image_pair,
    'sensor_msgs/msg/CameraInfo': camera_info_pair,
    'sensor_msgs/msg/JointState': joint_state_pair,
    'trajectory_msgs/msg/JointTrajectory': trajectory_pair,
    'geometry_msgs/msg/PoseStamped': pose_stamped_pair,
    'diagnostic_msgs/msg/DiagnosticArray': diagnostics_pair,
    'vision_msgs/msg/Detection3DArray': detections_pair,
}


@pytest.mark.parametrize('type_name', sorted(PAIRS))
def test_cdr_equals_rosbags_serialization(type_name):
    ours, ref = PAIRS[type_name]()
    assert msgs.type_name(ours) == type_name
    assert msgs.serialize(ours) == rb_cdr(ref, type_name)


@pytest.mark.parametrize('type_name', sorted(PAIRS))
def test_deserialize_round_trip(type_name):
    ours, _ = PAIRS[type_name]()
    back = msgs.deserialize(msgs.serialize(ours), type_name)
    assert type(back) is type(ours)
    assert back == ours
    assert msgs.serialize(back) == msgs.serialize(ours)


def test_cdr_golden_bytes():
    # encapsulation (CDR little-endian), length 3 incl. NUL, 'hi\0'
    assert msgs.serialize(std_msgs.String(data='hi')) == b'\x00\x01\x00\x00\x03\x00\x00\x00hi\x00'
    # rosidl puts one placeholder byte in an empty struct
    assert msgs.serialize(std_srvs.Trigger.Request()) == b'\x00\x01\x00\x00\x00'


def test_deserialized_field_types_are_rclpy_like():
    back = msgs.deserialize(msgs.serialize(camera_info_pair()[0]), 'sensor_msgs/msg/CameraInfo')
    assert isinstance(back.k, np.ndarray) and back.k.dtype == np.float64 and back.k.shape == (9,)
    back.k[0] = 1.0  # owns its memory, writable
    assert isinstance(back.d, array.array) and back.d.typecode == 'd'
    assert list(back.d) == [0.1, -0.2, 0.0, 0.0, 0.05]
    image = msgs.deserialize(msgs.serialize(image_pair()[0]), 'sensor_msgs/msg/Image')
    assert image.data == bytes(range(18))
    status = msgs.deserialize(msgs.serialize(diagnostics_pair()[0]),
                              'diagnostic_msgs/msg/DiagnosticArray').status[0]
    assert status.level == b'\x02' == diagnostic_msgs.DiagnosticStatus.ERROR


def test_defaults_are_nested_and_rclpy_like():
    image = sensor_msgs.Image()
    assert image.header.stamp.sec == 0 and image.header.frame_id == ''
    assert image.data == b'' and image.encoding == '' and image.height == 0
    info = sensor_msgs.CameraInfo()
    assert info.k.dtype == np.float64 and info.k.shape == (9,) and not info.k.any()
    assert info.p.shape == (12,)
    assert len(info.d) == 0
    assert len(sensor_msgs.JointState().position) == 0
    assert sensor_msgs.JointState().name == []
    assert geometry_msgs.Quaternion().w == 1.0  # `float64 w 1` in the .msg, as rclpy
    assert diagnostic_msgs.DiagnosticStatus().level == b'\x00'
    assert diagnostic_msgs.DiagnosticStatus.STALE == b'\x03'
    assert std_srvs.SetBool.Request().data is False
    # defaults are not shared between instances
    a, b = sensor_msgs.CameraInfo(), sensor_msgs.CameraInfo()
    a.k[0] = 5.0
    a.header.frame_id = 'x'
    assert b.k[0] == 0.0 and b.header.frame_id == ''


def test_keyword_constructor_and_typos():
    image = sensor_msgs.Image(height=2, encoding='rgb8')
    assert (image.height, image.encoding, image.width) == (2, 'rgb8', 0)
    with pytest.raises(AttributeError):
        image.heigth = 1
    with pytest.raises(TypeError, match='no field heigth'):
        sensor_msgs.Image(heigth=2)
    image.width = 4  # attribute-assignable
    assert image.width == 4


def test_equality_and_repr():
    a = sensor_msgs.JointState(name=['joint1'], position=[0.5])
    b = sensor_msgs.JointState(name=['joint1'], position=np.array([0.5]))
    assert a == b
    b.position = [0.6]
    assert a != b
    assert sensor_msgs.Image(data=b'\x01\x02') == sensor_msgs.Image(data=[1, 2])
    assert std_msgs.String(data='x') != std_msgs.Header()
    text = repr(std_msgs.String(data='hi'))
    assert text == "std_msgs.msg.String(data='hi')"
    big = repr(sensor_msgs.Image(data=bytes(1000)))
    assert '<1000 bytes>' in big and len(big) < 300


def test_fixed_array_length_is_checked():
    info = sensor_msgs.CameraInfo(k=[1.0, 2.0])
    with pytest.raises(ValueError, match="'k' is a fixed array of 9"):
        msgs.serialize(info)


def test_services():
    assert msgs.get_service('std_srvs/srv/Trigger') is std_srvs.Trigger
    response = std_srvs.Trigger.Response(success=True, message='started')
    assert msgs.type_name(std_srvs.Trigger.Request) == 'std_srvs/srv/Trigger_Request'
    assert msgs.type_name(response) == 'std_srvs/srv/Trigger_Response'
    assert msgs.type_name(std_srvs.Trigger) == 'std_srvs/srv/Trigger'
    back = msgs.deserialize(msgs.serialize(response), 'std_srvs/srv/Trigger_Response')
    assert back == response and back.message == 'started'
    request = std_srvs.SetBool.Request(data=True)
    assert msgs.deserialize(msgs.serialize(request), 'std_srvs/srv/SetBool_Request').data is True
    assert std_srvs.Empty.Request() == std_srvs.Empty.Request()
    with pytest.raises(TypeError):
        std_srvs.Empty.Request(data=1)


def test_type_hashes_equal_rosidl():
    # RIHS01 hashes from rosidl_generator_c output of vision_msgs 4.1 / std_srvs (public
    # generated code): our msg/ texts define exactly the real interfaces.
    expected = {
        'vision_msgs/msg/Detection3DArray':
            '793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018',
        'vision_msgs/msg/Detection3D':
            'ddd703be132ab0b69d33121f1bb034132bfbb3b0ac5f9fb1516005ba1c8a265b',
        'vision_msgs/msg/BoundingBox3D':
            'bbb73a65c163d7f9bb29009c7bde9f7faa576bd2d23299c4511d19230dab4698',
        'vision_msgs/msg/ObjectHypothesis':
            '51da43cec11c01957a64d1e05a24acd18aae7745ec30b74348ad5f6d634f7f90',
        'vision_msgs/msg/ObjectHypothesisWithPose':
            '41c12344c0396c48b81df12467c192d99b2a0eb1463c5c37194e4223251c80bc',
        'std_srvs/srv/SetBool_Request':
            'c62fbb99d94e1b25e8ef9e109f9581956bb1b3361a45a4e5810c36a90d29932e',
        'std_srvs/srv/SetBool_Response':
            'd0814e7f7b4880ab77e9c57426c7aa1562ab69f11eef8e2e968812f9cbd0b059',
        'sensor_msgs/msg/Image':
            'd31d41a9a4c4bc8eae9be757b0beed306564f7526c88ea6a4588fb9582527d47',
    }
    for type_name, digest in expected.items():
        assert type_store.type_hash(type_name) == f'RIHS01_{digest}', type_name


def test_lookup_helpers():
    assert msgs.get_message('sensor_msgs/msg/Image') is sensor_msgs.Image
    assert msgs.get_message('sensor_msgs/Image') is sensor_msgs.Image  # one class per type
    assert msgs.type_name(sensor_msgs.Image) == 'sensor_msgs/msg/Image'
    assert msgs.type_name(rb('std_msgs/msg/String', data='')) == 'std_msgs/msg/String'
    assert msgs.nav_msgs.Odometry().pose.pose.orientation.w == 1.0  # any Humble package
    with pytest.raises(LookupError, match='msg/<package>/msg/<Type>.msg'):
        msgs.get_message('vla_msgs/msg/Nope')
    with pytest.raises(AttributeError):
        sensor_msgs.Nope
    with pytest.raises(ValueError):
        msgs.get_message('Image')
    text, encoding = type_store.msgdef('vision_msgs/msg/Detection3DArray')
    assert encoding == 'ros2msg'
    assert text.startswith('std_msgs/Header header\nvision_msgs/Detection3D[] detections\n')
    assert 'MSG: vision_msgs/ObjectHypothesisWithPose\n' in text


def test_stamp_conversions():
    stamp = msgs.ns_to_stamp(1_500_000_123)
    assert type(stamp) is builtin_interfaces.Time
    assert (stamp.sec, stamp.nanosec) == (1, 500_000_123)
    assert msgs.stamp_to_ns(stamp) == 1_500_000_123
    assert msgs.stamp_to_ns(std_msgs.Header(stamp=stamp)) == 1_500_000_123
    negative = msgs.ns_to_stamp(-1)
    assert (negative.sec, negative.nanosec) == (-1, 999_999_999)
    assert msgs.stamp_to_ns(negative) == -1


def test_pickle_and_copy():
    ours, _ = detections_pair()
    assert pickle.loads(pickle.dumps(ours)) == ours
    clone = copy.deepcopy(ours)
    clone.detections[0].id = 'other'
    assert ours.detections[0].id == '7'
    assert pickle.loads(pickle.dumps(sensor_msgs.Image)) is sensor_msgs.Image
    assert pickle.loads(pickle.dumps(std_srvs.Trigger.Request)) is std_srvs.Trigger.Request


def test_image_serialization_is_fast():
    image = sensor_msgs.Image(height=480, width=640, encoding='rgb8', step=1920,
                              data=bytes(640 * 480 * 3))
    start = time.perf_counter()
    for _ in range(20):
        data = msgs.serialize(image)
    per_message = (time.perf_counter() - start) / 20
    assert len(data) == 4 + 44 + 921_600  # CDR header, Image fields (aligned), pixels
    assert per_message < 0.01  # ~0.2 ms measured; a per-byte Python loop would take ~100 ms


def test_serialize_parts_leaves_the_pixels_where_they_are():
    # A trailing byte sequence comes back as the message's own object (the zenoh backend copies
    # it once, into shared memory); head + tail is the CDR serialize() writes.
    pixels = bytes(range(256)) * 18
    image = sensor_msgs.Image(height=3, width=512, encoding='rgb8', step=1536, data=pixels)
    head, tail = msgs.serialize_parts(image)
    assert tail is pixels and bytes(head) + tail == msgs.serialize(image)
    assert len(head) == 4 + 44  # CDR header, Image fields (aligned) and the data's length
    odd = sensor_msgs.CompressedImage(format='jpeg', data=bytearray(b'\xff') * 5000)  # unaligned
    head, tail = msgs.serialize_parts(odd)
    assert tail is odd.data and bytes(head) + tail == msgs.serialize(odd)
    # Small, or not bytes, or not last: one buffer, as serialize.
    for msg in (sensor_msgs.Image(data=b'abc'), sensor_msgs.Image(data=[7] * 5000),
                camera_info_pair()[0]):
        head, tail = msgs.serialize_parts(msg)
        assert tail == b'' and bytes(head) == msgs.serialize(msg)
