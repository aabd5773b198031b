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

"""numpy <-> sensor_msgs/Image for rgb8, bgr8, mono8, 16UC1, 32FC1, and the errors."""

import numpy as np
import pytest

from vla_nodes.ros import image, msgs
from vla_nodes.ros.image import ImageEncodingError

RNG = np.random.default_rng(0)
ARRAYS = {
    'rgb8': RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8),
    'bgr8': RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8),
    'mono8': RNG.integers(0, 256, (4, 5), dtype=np.uint8),
    '16UC1': RNG.integers(0, 65536, (4, 5), dtype=np.uint16),
    '32FC1': RNG.random((4, 5), dtype=np.float32) * 3,
}
BYTES_PER_PIXEL = {'rgb8': 3, 'bgr8': 3, 'mono8': 1, '16UC1': 2, '32FC1': 4}


@pytest.mark.parametrize('encoding', sorted(ARRAYS))
def test_round_trip_every_encoding(encoding):
    array = ARRAYS[encoding]
    msg = image.to_msg(array, encoding, stamp_ns=1_500_000_123, frame_id='cam')
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (4, 5, encoding, 0)
    assert msg.step == 5 * BYTES_PER_PIXEL[encoding]
    assert len(msg.data) == msg.step * msg.height
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1, 500_000_123)
    assert msg.header.frame_id == 'cam'
    out = image.from_msg(msg)
    assert out.dtype == array.dtype and out.shape == array.shape
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize('encoding', sorted(ARRAYS))
def test_round_trip_through_cdr(encoding):
    msg = image.to_msg(ARRAYS[encoding], encoding)
    back = msgs.deserialize(msgs.serialize(msg), 'sensor_msgs/msg/Image')
    np.testing.assert_array_equal(image.from_msg(back), ARRAYS[encoding])


def test_data_is_little_endian_bytes():
    msg = image.to_msg(np.array([[1, 258]], np.uint16), '16UC1')
    assert bytes(msg.data) == b'\x01\x00\x02\x01'
    msg = image.to_msg(np.array([[[1, 2, 3]]], np.uint8), 'rgb8')
    assert bytes(msg.data) == b'\x01\x02\x03'


def test_rgb_bgr_conversion():
    rgb = np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8)
    as_bgr = image.from_msg(image.to_msg(rgb, 'rgb8'), desired_encoding='bgr8')
    np.testing.assert_array_equal(as_bgr, [[[3, 2, 1], [6, 5, 4]]])
    as_rgb = image.from_msg(image.to_msg(rgb, 'bgr8'), desired_encoding='rgb8')
    np.testing.assert_array_equal(as_rgb, [[[3, 2, 1], [6, 5, 4]]])
    same = image.from_msg(image.to_msg(rgb, 'rgb8'), desired_encoding='rgb8')
    np.testing.assert_array_equal(same, rgb)


def test_32fc1_keeps_nan_and_inf():
    depth = np.array([[0.5, np.nan], [np.inf, 1.25]], np.float32)
    out = image.from_msg(image.to_msg(depth, '32FC1'))
    np.testing.assert_array_equal(out, depth)  # NaN positions equal too
    assert np.isnan(out[0, 1]) and not np.isnan(out[0, 0])


def test_single_channel_accepts_trailing_axis():
    mono = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)
    out = image.from_msg(image.to_msg(mono, 'mono8'))
    np.testing.assert_array_equal(out, mono[..., 0])


def test_non_contiguous_input():
    rgb = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)[:, ::2]  # strided view
    np.testing.assert_array_equal(image.from_msg(image.to_msg(rgb, 'rgb8')), rgb)


def test_big_endian_message_is_byteswapped():
    depth = np.array([[1, 258], [1000, 65535]], np.uint16)
    msg = msgs.sensor_msgs.Image(height=2, width=2, encoding='16UC1', is_bigendian=1, step=4,
                                 data=depth.astype('>u2').tobytes())
    out = image.from_msg(msg)
    assert out.dtype == np.dtype(np.uint16)  # native order
    np.testing.assert_array_equal(out, depth)


def test_padded_rows_are_cropped():
    rgb = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    rows = [rgb[0].tobytes() + b'\xee\xee', rgb[1].tobytes() + b'\xee\xee']
    msg = msgs.sensor_msgs.Image(height=2, width=2, encoding='rgb8', step=8,
                                 data=b''.join(rows))
    np.testing.assert_array_equal(image.from_msg(msg), rgb)


def test_result_owns_its_memory():
    msg = image.to_msg(np.zeros((2, 2), np.uint16), '16UC1')
    out = image.from_msg(msg)
    out[0, 0] = 7
    assert bytes(msg.data) == bytes(8)


def test_unknown_encoding():
    with pytest.raises(ImageEncodingError, match="'rgba8' is not supported; expected one of"):
        image.to_msg(np.zeros((2, 2, 4), np.uint8), 'rgba8')
    msg = msgs.sensor_msgs.Image(height=1, width=1, encoding='yuv422', step=2, data=b'\0\0')
    with pytest.raises(ImageEncodingError, match='yuv422'):
        image.from_msg(msg)
    with pytest.raises(ValueError):  # ImageEncodingError is a ValueError
        image.from_msg(image.to_msg(ARRAYS['rgb8'], 'rgb8'), desired_encoding='rgba8')


@pytest.mark.parametrize('array, encoding, expected', [
    (np.zeros((2, 2), np.float64), '32FC1', 'expects a float32 array of shape (H, W)'),
    (np.zeros((2, 2), np.uint8), 'rgb8', 'expects a uint8 array of shape (H, W, 3)'),
    (np.zeros((2, 2, 3), np.uint8), 'mono8', 'expects a uint8 array of shape (H, W)'),
    (np.zeros((2, 2), np.int32), '16UC1', 'expects a uint16 array'),
    (np.zeros((2, 2, 3), np.uint16), 'bgr8', 'got uint16 (2, 2, 3)'),
])
def test_array_not_matching_encoding(array, encoding, expected):
    with pytest.raises(ImageEncodingError) as err:
        image.to_msg(array, encoding)
    assert expected in str(err.value)
    assert 'astype' in str(err.value)  # says what to do


def test_data_length_mismatch():
    msg = image.to_msg(np.zeros((4, 5, 3), np.uint8), 'rgb8')
    msg.data = bytes(msg.data)[:-1]
    with pytest.raises(ImageEncodingError, match=r'has 59 bytes but step \* height = 15 \* 4'):
        image.from_msg(msg)


def test_step_smaller_than_row():
    msg = msgs.sensor_msgs.Image(height=2, width=4, encoding='16UC1', step=4, data=bytes(8))
    with pytest.raises(ImageEncodingError, match=r'step 4 is smaller than .* = 8'):
        image.from_msg(msg)


def test_unsupported_conversion():
    msg = image.to_msg(ARRAYS['16UC1'], '16UC1')
    with pytest.raises(ImageEncodingError, match="cannot convert '16UC1' to 'rgb8'"):
        image.from_msg(msg, desired_encoding='rgb8')
