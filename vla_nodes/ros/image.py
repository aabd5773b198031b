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

"""numpy <-> sensor_msgs/Image, equal to cv_bridge for the encodings the suite uses.

Where it fits: part of the `vla_nodes.ros` façade. `camera_node` and `sim_node` publish with
`to_msg`; `depth_node`, `policy_node` and the recorder export read with `from_msg`. It needs numpy
only, so it works with and without ROS (with rclpy the message is rclpy's own `Image`).

Encodings (DESIGN.md section 2): `rgb8` / `bgr8` (H, W, 3) uint8, `mono8` (H, W) uint8,
`16UC1` (H, W) uint16 (camera depth, millimetres, 0 = invalid), `32FC1` (H, W) float32 (metric
depth, metres, NaN = invalid). Messages are written little-endian (`is_bigendian=0`) with
`step = width * channels * bytes per channel`; big-endian messages and padded rows are read.
"""

import numpy as np

from vla_nodes.ros import msgs

# encoding -> (dtype, channels)
ENCODINGS = {
    'rgb8': (np.dtype(np.uint8), 3),
    'bgr8': (np.dtype(np.uint8), 3),
    'mono8': (np.dtype(np.uint8), 1),
    '16UC1': (np.dtype(np.uint16), 1),
    '32FC1': (np.dtype(np.float32), 1),
}
# (from, to) pairs from_msg converts besides the identity: the channel order swap.
_SWAPS = {('rgb8', 'bgr8'), ('bgr8', 'rgb8')}


class ImageEncodingError(ValueError):
    """An encoding, array or Image message that cannot be converted; the message says why."""


def _spec(encoding: str) -> tuple[np.dtype, int]:
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise ImageEncodingError(
            f'image encoding {encoding!r} is not supported; expected one of '
            f'{", ".join(ENCODINGS)}. Convert the image to one of these before publishing '
            f'(color: rgb8, depth: 16UC1 millimetres or 32FC1 metres).') from None


def _expected_shape(channels: int) -> str:
    return '(H, W)' if channels == 1 else f'(H, W, {channels})'


def _check_array(array: np.ndarray, encoding: str) -> np.ndarray:
    """Return the array as (H, W, C) of the encoding's dtype (little-endian) or raise."""
    dtype, channels = _spec(encoding)
    shape_ok = (array.ndim == 3 and array.shape[2] == channels) or (
        array.ndim == 2 and channels == 1)
    dtype_ok = array.dtype.newbyteorder('<') == dtype.newbyteorder('<')
    if not (shape_ok and dtype_ok):
        raise ImageEncodingError(
            f'encoding {encoding!r} expects a {dtype} array of shape '
            f'{_expected_shape(channels)}; got {array.dtype} {array.shape}. Convert it first '
            f'(e.g. array.astype(np.{dtype}); depth in metres is 32FC1, millimetres 16UC1) '
            f'or pass the encoding that matches the array.')
    return array.reshape(array.shape[0], array.shape[1], channels)


def to_msg(array: np.ndarray, encoding: str, stamp_ns: int = 0, frame_id: str = '') -> object:
    """Make a sensor_msgs/Image from an array, like cv_bridge's cv2_to_imgmsg.

    Args:
        array: (H, W, 3) uint8 for rgb8/bgr8; (H, W) or (H, W, 1) uint8 / uint16 / float32
            for mono8 / 16UC1 / 32FC1.
        encoding: one of ENCODINGS; it must match the array's dtype and channels.
        stamp_ns: header stamp, integer nanoseconds.
        frame_id: header frame, e.g. contract.CAMERA_FRAME.

    Returns:
        An Image with step = W * channels * itemsize, is_bigendian = 0 and `data` as bytes.

    Raises:
        ImageEncodingError: unknown encoding, or an array whose dtype / shape does not match.
    """
    image = _check_array(np.asarray(array), encoding)
    height, width, channels = image.shape
    dtype = ENCODINGS[encoding][0]
    data = np.ascontiguousarray(image, dtype=dtype.newbyteorder('<')).tobytes()
    msg = msgs.sensor_msgs.Image(height=height, width=width, encoding=encoding, is_bigendian=0,
                                 step=width * channels * dtype.itemsize)
    msg.header.stamp = msgs.ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    if hasattr(msg.data, 'frombytes'):  # rclpy's array('B'): assigning bytes checks each byte
        msg.data.frombytes(data)
    else:
        msg.data = data
    return msg


def _check_msg(msg: object) -> tuple[np.dtype, int]:
    dtype, channels = _spec(msg.encoding)
    row = msg.width * channels * dtype.itemsize
    if msg.step < row:
        raise ImageEncodingError(
            f'Image step {msg.step} is smaller than width * channels * bytes = {msg.width} * '
            f'{channels} * {dtype.itemsize} = {row} for {msg.encoding!r}; the publisher filled '
            f'step or encoding wrongly. Fix the publisher (step is bytes per row).')
    if len(msg.data) != msg.step * msg.height:
        raise ImageEncodingError(
            f'Image data has {len(msg.data)} bytes but step * height = {msg.step} * '
            f'{msg.height} = {msg.step * msg.height}; the message is truncated or its '
            f'step/height are wrong. Check the publisher (or the recording).')
    return dtype, channels


def from_msg(msg: object, desired_encoding: str = 'passthrough') -> np.ndarray:
    """Read a sensor_msgs/Image into a new array, like cv_bridge's imgmsg_to_cv2.

    Args:
        msg: an Image in one of ENCODINGS (either endianness, rows may be padded).
        desired_encoding: 'passthrough' (or the message's own encoding) keeps the pixels;
            'rgb8' <-> 'bgr8' swaps the channel order.

    Returns:
        A writable array owning its memory, native byte order: (H, W, 3) for rgb8/bgr8,
        (H, W) for mono8 / 16UC1 / 32FC1.

    Raises:
        ImageEncodingError: unknown encoding, a conversion other than rgb8 <-> bgr8, or data
            whose size does not match step * height (or step < width * channels * bytes).
    """
    dtype, channels = _check_msg(msg)
    target = msg.encoding if desired_encoding == 'passthrough' else desired_encoding
    _spec(target)
    if target != msg.encoding and (msg.encoding, target) not in _SWAPS:
        raise ImageEncodingError(
            f'cannot convert {msg.encoding!r} to {target!r}; only rgb8 <-> bgr8 is converted. '
            f'Use desired_encoding="passthrough" and convert the array yourself.')
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    rows = rows[:, :msg.width * channels * dtype.itemsize]
    wire = dtype.newbyteorder('>' if msg.is_bigendian else '<')
    pixels = np.ascontiguousarray(rows).view(wire).reshape(msg.height, msg.width, channels)
    if target != msg.encoding:
        pixels = pixels[..., ::-1]
    image = pixels.astype(dtype.newbyteorder('='), copy=True)  # native order, owned, writable
    return image[..., 0] if channels == 1 else image
