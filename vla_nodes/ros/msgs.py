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

"""Message classes for the façade: rclpy's own with ROS 2, generated ones without it.

Where it fits: node code writes `from vla_nodes.ros.msgs import sensor_msgs` and then
`sensor_msgs.Image(height=2, encoding='rgb8')`, as with rclpy. With real ROS 2 (rclpy importable
and `VLA_ROS_BACKEND` not `local`/`zenoh`) every name here is rclpy's: `msgs.sensor_msgs.Image` is
`sensor_msgs.msg.Image` and `serialize` is `rclpy.serialization.serialize_message`. Without ROS,
classes are generated from the ROS 2 Humble definitions shipped with `rosbags`, plus the interface
texts in the package's `msg/` folder (`vla_nodes.paths.package_share() / 'msg'`):

    msg/<package>/msg/<Type>.msg    e.g. msg/vision_msgs/msg/Detection3DArray.msg
    msg/<package>/srv/<Type>.srv    e.g. msg/std_srvs/srv/Trigger.srv

The generated classes behave like rclpy's: keyword constructor with nested defaults, `__slots__`
(a typo such as `msg.heigth = 1` raises AttributeError), `==`, a readable repr, constants as class
attributes (`byte` constants and fields are 1-byte `bytes`, as in rclpy), fixed-size numeric arrays
as numpy arrays, `uint8[]`/`byte[]`/`char[]` sequences as `bytes` (rclpy: `array('B')`), other
numeric sequences as `array.array` (assigning a list or a numpy array works too). Services are
classes with `.Request` and `.Response`. CDR bytes are rosbags' own, byte-identical to
`typestore().serialize_cdr(...)` of the equivalent rosbags object (camera frames,
`sensor_msgs/Image`, take `cdr_image`'s struct codec to the same bytes); RIHS01 hashes of the
`msg/` types equal those rosidl generates.
"""

import importlib
import importlib.util
import os
from typing import Any

from vla_nodes.ros import cdr_image
from vla_nodes.ros.msg_classes import local_class, local_service, Message, Service
from vla_nodes.ros.type_store import normalize, typestore


def _use_rclpy() -> bool:
    if os.environ.get('VLA_ROS_BACKEND', '').strip().lower() in ('local', 'zenoh'):
        return False
    try:
        import rclpy  # noqa: F401
    except ImportError:
        return False
    return True


USE_RCLPY = _use_rclpy()
BACKEND = 'rclpy' if USE_RCLPY else 'local'


# --- public API ---------------------------------------------------------------------------------
def get_message(type_name: str) -> type:
    """Return the message class for 'sensor_msgs/msg/Image' (or 'sensor_msgs/Image').

    Raises:
        LookupError: unknown type (local backend); ImportError/AttributeError with rclpy.
    """
    type_name = normalize(type_name)
    if USE_RCLPY:  # pragma: no cover - needs ROS 2
        return _rclpy_lookup(type_name)
    return local_class(type_name)


def get_service(type_name: str) -> type:
    """Return the service class for 'std_srvs/srv/Trigger' (it has `.Request`, `.Response`)."""
    type_name = normalize(type_name)
    if USE_RCLPY:  # pragma: no cover - needs ROS 2
        return _rclpy_lookup(type_name)
    return local_service(type_name)


def type_name(msg_or_cls: Any) -> str:
    """Return 'sensor_msgs/msg/Image' for an Image message or class (ours, rclpy's, rosbags')."""
    cls = msg_or_cls if isinstance(msg_or_cls, type) else type(msg_or_cls)
    if issubclass(cls, (Message, Service)):
        return cls._type
    if isinstance(getattr(cls, '__msgtype__', None), str):  # a rosbags dataclass
        return cls.__msgtype__
    parts = cls.__module__.split('.')  # rclpy: sensor_msgs.msg._image.Image
    if len(parts) >= 2 and parts[1] in ('msg', 'srv', 'action'):
        return f'{parts[0]}/{parts[1]}/{cls.__name__}'
    raise TypeError(f'{cls!r} is not a ROS message or service class')


def serialize(msg: Any) -> bytes:
    """Serialize a message to CDR bytes (with the 4-byte encapsulation header)."""
    return bytes(serialize_buffer(msg))


def serialize_buffer(msg: Any) -> bytes | bytearray:
    """`serialize` without the final copy into `bytes`, for a caller that copies it anyway."""
    if USE_RCLPY:  # pragma: no cover - needs ROS 2
        from rclpy.serialization import serialize_message
        return serialize_message(msg)
    return typestore().serialize_cdr(msg._to_rosbags(msg), msg._type).obj


def serialize_parts(msg: Any, min_tail: int = 4096) -> tuple:
    """`serialize` as `(head, tail)` with the CDR bytes `head + tail`; the tail is not copied.

    `tail` is the message's trailing byte sequence (an Image's or CompressedImage's `data`, at
    least `min_tail` bytes, held as bytes or bytearray) as it is, for a caller that copies the
    parts into one buffer anyway (the zenoh backend's shared memory); otherwise `tail` is b''
    and `head` the whole message. CDR ends a message whose last field is a byte sequence with
    its uint32 length and the bytes (no padding): the head is the message serialised with that
    field empty and the length set.
    """
    if USE_RCLPY:  # pragma: no cover - needs ROS 2
        return serialize_buffer(msg), b''
    tail = getattr(msg, msg._tail) if msg._tail else None
    if not isinstance(tail, (bytes, bytearray)) or len(tail) < min_tail:
        return serialize_buffer(msg), b''
    head = cdr_image.encode_head(msg) if msg._type == cdr_image.TYPE else None
    if head is None:
        head = typestore().serialize_cdr(msg._to_rosbags(msg, **{msg._tail: b''}),
                                         msg._type).obj
        head[-4:] = len(tail).to_bytes(4, 'little' if head[1] else 'big')
    return head, tail


def deserialize(data: bytes | memoryview, type_name: str) -> Any:
    """Deserialize CDR bytes into a message of `type_name` ('sensor_msgs/msg/Image')."""
    type_name = normalize(type_name)
    if USE_RCLPY:  # pragma: no cover - needs ROS 2
        from rclpy.serialization import deserialize_message
        return deserialize_message(bytes(data), get_message(type_name))
    if type_name == cdr_image.TYPE:  # camera frames: the struct codec, where it applies
        msg = cdr_image.decode(data)
        if msg is not None:
            return msg
    obj = typestore().deserialize_cdr(memoryview(data), type_name)
    return local_class(type_name)._from_rosbags(obj)


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (or a Header, whose .stamp is used) -> integer nanoseconds."""
    stamp = getattr(stamp, 'stamp', stamp)
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Any:
    """Integer nanoseconds -> builtin_interfaces/Time (nanosec always in [0, 1e9))."""
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    return get_message('builtin_interfaces/msg/Time')(sec=sec, nanosec=nanosec)


# --- with rclpy: the real generated modules (kept apart; untestable without ROS) ----------------
def _rclpy_lookup(type_name: str) -> type:  # pragma: no cover - needs ROS 2
    pkg, kind, name = type_name.split('/')
    module = importlib.import_module(f'{pkg}.{kind}')
    if hasattr(module, name):
        return getattr(module, name)
    service, _, part = name.rpartition('_')  # Trigger_Request -> Trigger.Request
    return getattr(getattr(module, service), part)


# --- namespaces: msgs.sensor_msgs.Image ---------------------------------------------------------
class _Package:
    """`msgs.sensor_msgs`: the messages and services of one ROS package, resolved on use."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> type:
        if attr.startswith('__'):
            raise AttributeError(attr)
        if USE_RCLPY:  # pragma: no cover - needs ROS 2
            for kind in ('msg', 'srv'):
                try:
                    return getattr(importlib.import_module(f'{self._name}.{kind}'), attr)
                except (ImportError, AttributeError):
                    pass
        elif f'{self._name}/msg/{attr}' in typestore().fielddefs:
            return local_class(f'{self._name}/msg/{attr}')
        elif f'{self._name}/srv/{attr}_Request' in typestore().fielddefs:
            return local_service(f'{self._name}/srv/{attr}')
        raise AttributeError(f'{self._name} has no message or service {attr!r} ({BACKEND} '
                             f'backend); local types come from ROS 2 Humble and msg/.')

    def __dir__(self) -> list[str]:
        names = set()
        for typ in typestore().fielddefs:
            pkg, kind, name = typ.split('/')
            if pkg == self._name:
                names.add(name.rsplit('_', 1)[0] if kind == 'srv' else name)
        return sorted(names)

    def __repr__(self) -> str:
        return f'<ROS package {self._name} ({BACKEND} backend)>'


builtin_interfaces = _Package('builtin_interfaces')
diagnostic_msgs = _Package('diagnostic_msgs')
geometry_msgs = _Package('geometry_msgs')
rosgraph_msgs = _Package('rosgraph_msgs')
sensor_msgs = _Package('sensor_msgs')
std_msgs = _Package('std_msgs')
std_srvs = _Package('std_srvs')
tf2_msgs = _Package('tf2_msgs')
trajectory_msgs = _Package('trajectory_msgs')
vision_msgs = _Package('vision_msgs')


def __getattr__(name: str) -> _Package:
    """Any other package in the store, e.g. `msgs.nav_msgs` (PEP 562)."""
    if not name.startswith('_') and (
            any(t.startswith(f'{name}/') for t in typestore().fielddefs)
            or (USE_RCLPY and importlib.util.find_spec(name) is not None)):
        return _Package(name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
