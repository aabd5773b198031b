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

"""The struct codec of sensor_msgs/Image gives rosbags' bytes and messages, or steps aside."""

import itertools

import numpy as np
import pytest

from vla_nodes.ros import cdr_image, msgs
from vla_nodes.ros.type_store import typestore

Image = msgs.get_message(cdr_image.TYPE)


def rosbags_bytes(msg):
    """The generic path: our message -> rosbags' object -> rosbags' CDR."""
    return bytes(typestore().serialize_cdr(msg._to_rosbags(msg), cdr_image.TYPE))


def rosbags_message(data):
    return Image._from_rosbags(typestore().deserialize_cdr(memoryview(data), cdr_image.TYPE))


def images():
    # Every alignment of both strings (lengths 0-4 and non-ASCII), both endianness flags,
    # empty and odd-sized data, negative seconds.
    for frame_id, encoding, flag in itertools.product(
            ('', 'c', 'ca', 'cam', 'cam0', 'kamera_ü'), ('', 'r', 'mono8', 'rgb8', '16UC1'),
            (0, 1)):
        yield Image(header=msgs.get_message('std_msgs/msg/Header')(
            stamp=msgs.ns_to_stamp(1_234_567_891_234), frame_id=frame_id), height=3, width=5,
            encoding=encoding, is_bigendian=flag, step=15, data=bytes(range(len(encoding) * 7)))
    msg = Image(height=480, width=640, encoding='rgb8', step=1920,
                data=np.random.default_rng(0).integers(0, 256, 921600, np.uint8).tobytes())
    msg.header.stamp.sec = -5
    yield msg


@pytest.mark.parametrize('msg', list(images()), ids=lambda m: f'{m.header.frame_id!r}'
                         f'-{m.encoding!r}-{m.is_bigendian}-{len(m.data)}')
def test_the_bytes_and_the_message_are_rosbags_own(msg):
    head = cdr_image.encode_head(msg)
    assert head is not None
    data = bytes(head) + msg.data
    assert data == rosbags_bytes(msg)
    assert msgs.serialize_parts(msg, min_tail=0) == (head, msg.data)
    decoded = cdr_image.decode(data)
    assert decoded == rosbags_message(data) == msg
    assert type(decoded.data) is bytes and type(decoded.header.frame_id) is str
    assert msgs.deserialize(data, cdr_image.TYPE) == msg


def test_what_it_does_not_handle_plainly_goes_the_generic_way():
    msg = next(images())
    msg.data = np.zeros(4, np.uint8)  # not bytes: the generic converter takes it
    assert cdr_image.encode_head(msg) is None
    assert msgs.serialize(msg) == rosbags_bytes(msg)
    msg.data, msg.height = b'', -1  # out of range: the generic path raises its own error
    assert cdr_image.encode_head(msg) is None
    with pytest.raises(Exception):
        msgs.serialize_parts(msg, min_tail=0)
    good = msgs.serialize(next(images()))
    for bad in (good[:-1], good + b'\x00', good[:10], b'\x00\x00' + good[2:], b''):
        assert cdr_image.decode(bad) is None
    big_endian = bytes(typestore().serialize_cdr(next(images())._to_rosbags(next(images())),
                                                 cdr_image.TYPE, little_endian=False))
    assert cdr_image.decode(big_endian) is None
    assert msgs.deserialize(big_endian, cdr_image.TYPE) == next(images())
    with pytest.raises(Exception):
        msgs.deserialize(good[:-1], cdr_image.TYPE)
