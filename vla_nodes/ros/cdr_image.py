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

"""sensor_msgs/msg/Image in little-endian CDR with `struct`: camera frames' hot path.

Why: a frame crossing processes is serialised and parsed once each way. Through rosbags' generic
code that is 12 us and 35 us in a tight loop, but 150-200 us each for a frame every 50 ms on a
busy 2-core machine (cold caches), a fifth of the 1 ms a frame may take across processes. This
codec does the same with a few `struct` calls. The bytes are rosbags' own (test_cdr_image.py
checks them against `typestore().serialize_cdr` field by field, alignments included), and
anything it does not handle plainly (big-endian CDR, a non-bytes `data`, a malformed buffer)
returns None so that the caller takes the generic path, which reports errors its usual way.

Layout after the 4-byte encapsulation header (offsets align from there): header.stamp.sec
int32, header.stamp.nanosec uint32, header.frame_id string (uint32 length with the NUL, bytes,
NUL), height, width (uint32, 4-aligned), encoding string, is_bigendian uint8, step uint32
(4-aligned), data: uint32 length (4-aligned) and the bytes.
"""

import struct
from typing import Any

from vla_nodes.ros.msg_classes import local_class

TYPE = 'sensor_msgs/msg/Image'
_CDR_LE = b'\x00\x01\x00\x00'
_U32 = struct.Struct('<I')
_STAMP = struct.Struct('<iII')     # sec, nanosec, frame_id length
_SIZE = struct.Struct('<III')      # height, width, encoding length


def _string(text: Any, at: int) -> tuple:
    """(CDR bytes of string `text` for a payload offset `at`, new offset); 4-aligned length."""
    raw = text.encode() + b'\x00'
    pad = b'\x00' * (-at % 4)
    return pad + _U32.pack(len(raw)) + raw, at + len(pad) + 4 + len(raw)


def encode_head(msg: Any) -> bytearray | None:
    """The CDR bytes of Image `msg` up to its data (the data's length last); None: generic path.

    The message is `head + msg.data`.
    """
    data = msg.data
    if not isinstance(data, (bytes, bytearray)):
        return None
    try:
        stamp = msg.header.stamp
        out = bytearray(_CDR_LE)
        out += struct.pack('<iI', int(stamp.sec), int(stamp.nanosec))
        frame, at = _string(msg.header.frame_id, 8)
        out += frame
        pad = b'\x00' * (-at % 4)
        out += pad + struct.pack('<II', int(msg.height), int(msg.width))
        encoding, at = _string(msg.encoding, at + len(pad) + 8)
        out += encoding
        out += struct.pack('<B', int(msg.is_bigendian))
        at += 1
        pad = b'\x00' * (-at % 4)
        out += pad + struct.pack('<II', int(msg.step), len(data))
        return out
    except (AttributeError, TypeError, ValueError, struct.error, UnicodeError):
        return None


def decode(data: bytes | bytearray | memoryview) -> Any:
    """An Image from its CDR bytes; None where the generic path must decide (see the docstring)."""
    try:
        if bytes(data[:2]) != _CDR_LE[:2]:
            return None
        sec, nanosec, length = _STAMP.unpack_from(data, 4)
        at = 4 + 12
        frame_id, at = _read_string(data, at, length)
        at += -(at - 4) % 4
        height, width, length = _SIZE.unpack_from(data, at)
        encoding, at = _read_string(data, at + 12, length)
        is_bigendian = data[at]
        at += 1
        at += -(at - 4) % 4
        step, size = struct.unpack_from('<II', data, at)
        at += 8
        if at + size != len(data):
            return None
        pixels = bytes(data[at:])
    except (struct.error, IndexError, UnicodeError, ValueError):
        return None
    header, stamp, msg = (_bare(name) for name in (
        'std_msgs/msg/Header', 'builtin_interfaces/msg/Time', TYPE))
    stamp.sec, stamp.nanosec = sec, nanosec
    header.stamp, header.frame_id = stamp, frame_id
    msg.header, msg.height, msg.width, msg.encoding = header, height, width, encoding
    msg.is_bigendian, msg.step, msg.data = is_bigendian, step, pixels
    return msg


def _bare(type_name: str) -> Any:
    """A message of `type_name` with no field set yet (the caller sets every one)."""
    cls = local_class(type_name)
    return cls.__new__(cls)


def _read_string(data: Any, at: int, length: int) -> tuple:
    """(the string of `length` bytes with its NUL at `at`, the offset after it)."""
    end = at + length
    if length < 1 or end > len(data) or data[end - 1] != 0:
        raise ValueError('not a CDR string')
    return bytes(data[at:end - 1]).decode(), end
