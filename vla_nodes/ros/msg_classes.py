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


"""The local backend's message and service classes, generated from the type store (see msgs)."""

import array
import threading
from typing import Any, Callable, NamedTuple

import numpy as np
from rosbags.interfaces import Nodetype

from vla_nodes.ros.type_store import EMPTY_FIELD, msg_dirs, typestore

_lock = threading.RLock()
# Where the classes are reachable by name (msgs.sensor_msgs.Image): pickle finds them there.
HOME = 'vla_nodes.ros.msgs'


_NUMPY = {'bool': np.bool_, 'byte': np.uint8, 'char': np.uint8, 'int8': np.int8,
          'uint8': np.uint8, 'int16': np.int16, 'uint16': np.uint16, 'int32': np.int32,
          'uint32': np.uint32, 'int64': np.int64, 'uint64': np.uint64, 'float32': np.float32,
          'float64': np.float64}
_TYPECODE = {'int8': 'b', 'int16': 'h', 'uint16': 'H', 'int32': 'i', 'uint32': 'I',
             'int64': 'q', 'uint64': 'Q', 'float32': 'f', 'float64': 'd'}
_BYTES = ('byte', 'char', 'uint8')  # sequences of these are `bytes`
# Non-zero defaults written in .msg files (`float64 w 1`): rosbags drops them, rclpy keeps them.
# Quaternion is the only such field among the Humble types the suite uses.
_MSG_DEFAULTS = {'geometry_msgs/msg/Quaternion': {'w': 1.0}}
_RCLPY_NAME = {'float64': 'double', 'float32': 'float', 'bool': 'boolean', 'byte': 'octet',
               'char': 'uint8'}


class _Field(NamedTuple):
    """One field: kind is base | msg | array | msg_array | seq | msg_seq."""

    name: str
    kind: str
    typ: str    # base type ('float64', 'string') or message type ('std_msgs/msg/Header')
    size: int   # array length, sequence or string bound; 0 = unbounded


def _field(name: str, desc: tuple) -> _Field:
    node, arg = desc
    if node == Nodetype.BASE:
        return _Field(name, 'base', arg[0], arg[1])
    if node == Nodetype.NAME:
        return _Field(name, 'msg', arg, 0)
    (subnode, sub), size = arg
    prefix = 'msg_' if subnode == Nodetype.NAME else ''
    kind = 'array' if node == Nodetype.ARRAY else 'seq'
    return _Field(name, prefix + kind, sub if prefix else sub[0], size)


def _base_default(typ: str) -> Any:
    return {'bool': False, 'string': '', 'byte': b'\x00', 'float32': 0.0,
            'float64': 0.0}.get(typ, 0)


def _default(f: _Field) -> Callable[[], Any]:
    """A factory for the field's default, as rclpy's constructor fills it."""
    if f.kind == 'base':
        value = _base_default(f.typ)
        return lambda: value
    if f.kind in ('msg', 'msg_array'):
        cls = local_class(f.typ)
        return cls if f.kind == 'msg' else lambda: [cls() for _ in range(f.size)]
    if f.kind == 'array':
        if f.typ == 'string':
            return lambda: [''] * f.size
        return lambda: np.zeros(f.size, _NUMPY[f.typ])
    if f.kind == 'seq' and f.typ in _TYPECODE:
        return lambda: array.array(_TYPECODE[f.typ])
    return bytes if f.kind == 'seq' and f.typ in _BYTES else list


def _as_array(value: Any, typ: str) -> np.ndarray:
    """A flat numpy array of the field's dtype, from list / tuple / numpy / bytes / array."""
    dtype = np.dtype(_NUMPY[typ])
    if isinstance(value, (bytes, bytearray, memoryview)) and dtype.itemsize == 1:
        value = np.frombuffer(value, dtype)
    return np.ascontiguousarray(value, dtype=dtype).reshape(-1)


def _byte_to_int(value: Any) -> int:
    r"""rclpy's byte (b'\x02') or an int -> the signed int rosbags packs."""
    if isinstance(value, (bytes, bytearray)):
        return int.from_bytes(value, 'little', signed=True)
    value = int(value) & 0xFF
    return value - 256 if value > 127 else value


def _to_rosbags_conv(f: _Field) -> Callable[[Any], Any]:
    """Converter from our field value to the value rosbags serializes."""
    if f.kind == 'base':
        return {'bool': bool, 'byte': _byte_to_int}.get(f.typ, _identity)
    if f.kind == 'msg':
        return local_class(f.typ)._to_rosbags
    if f.kind in ('msg_array', 'msg_seq'):
        conv = local_class(f.typ)._to_rosbags
        return lambda items: [conv(x) for x in _checked_len(items, f)]
    if f.typ == 'string':
        return lambda items: list(_checked_len(items, f))
    return lambda items: _checked_len(_as_array(items, f.typ), f)


def _from_rosbags_conv(f: _Field) -> Callable[[Any], Any]:
    """Converter from a rosbags field value to ours (owning its memory, writable)."""
    if f.kind == 'base':
        return (lambda v: bytes([v & 0xFF])) if f.typ == 'byte' else _identity
    if f.kind == 'msg':
        return local_class(f.typ)._from_rosbags
    if f.kind in ('msg_array', 'msg_seq'):
        conv = local_class(f.typ)._from_rosbags
        return lambda items: [conv(x) for x in items]
    if f.typ == 'string':
        return list
    if f.kind == 'seq' and f.typ == 'bool':
        return lambda v: [bool(x) for x in v]
    if f.kind == 'array':
        return lambda v: np.array(v, dtype=_NUMPY[f.typ])
    if f.typ in _BYTES:
        return lambda v: v.tobytes()
    return lambda v: array.array(_TYPECODE[f.typ], v.tobytes())


def _identity(value: Any) -> Any:
    return value


def _checked_len(items: Any, f: _Field) -> Any:
    if f.kind.endswith('array') and len(items) != f.size:
        raise ValueError(f'field {f.name!r} is a fixed array of {f.size} elements; '
                         f'got {len(items)}')
    return items


def _same(a: Any, b: Any) -> bool:
    """Field equality that treats bytes / array / list / numpy of equal values as equal."""
    kinds = (np.ndarray, array.array, bytes, bytearray, memoryview)
    if not (isinstance(a, kinds) or isinstance(b, kinds)):
        return a == b
    flat = [(np.frombuffer(v, np.uint8) if isinstance(v, (bytes, bytearray, memoryview))
             else np.asarray(v)).reshape(-1) for v in (a, b)]
    return bool(np.array_equal(flat[0], flat[1]))


def _short(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)) and len(value) > 32:
        return f'<{len(value)} bytes>'
    if isinstance(value, (np.ndarray, array.array)) and len(value) > 16:
        return f'<{len(value)} x {np.asarray(value).dtype}>'
    return repr(value)


def _rclpy_type(f: _Field) -> str:
    """The type string rclpy's get_fields_and_field_types() reports for a field."""
    if f.kind.startswith('msg'):
        pkg, _, name = f.typ.split('/')
        elem = f'{pkg}/{name}'
    else:
        elem = _RCLPY_NAME.get(f.typ, f.typ)
        if f.typ == 'string' and f.kind == 'base' and f.size:
            elem = f'string<{f.size}>'
    if f.kind.endswith('array'):
        return f'{elem}[{f.size}]'
    if f.kind.endswith('seq'):
        return f'sequence<{elem}, {f.size}>' if f.size else f'sequence<{elem}>'
    return elem


class Message:
    """Base of the generated message classes; instances behave like rclpy messages."""

    __slots__ = ()
    _type = ''                           # 'sensor_msgs/msg/Image'
    _fields: tuple[_Field, ...] = ()     # public fields, in definition order
    _defaults: tuple[Callable[[], Any], ...] = ()
    _empty = False                       # True: CDR carries rosidl's placeholder byte
    _rosbags_cls: type = object          # the rosbags dataclass serialize() converts to
    _to_convs: tuple = ()                # ((field, our value -> rosbags value), ...)
    _from_convs: tuple = ()              # ((field, rosbags value -> our value), ...)
    _tail: str | None = None             # last field when a byte sequence (Image.data)

    def __init__(self, **kwargs: Any) -> None:
        names = [f.name for f in self._fields]
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise TypeError(f'{self._type} has no field {", ".join(unknown)}; its fields: '
                            f'{", ".join(names) or "(none)"}')
        for name, make in zip(names, self._defaults):
            setattr(self, name, kwargs[name] if name in kwargs else make())

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in self._fields)

    __hash__ = None  # mutable, like rclpy's messages

    def __repr__(self) -> str:
        args = ', '.join(f'{f.name}={_short(getattr(self, f.name))}' for f in self._fields)
        return f'{self._type.replace("/", ".")}({args})'

    def __reduce__(self) -> tuple:
        return _rebuild, (self._type, {f.name: getattr(self, f.name) for f in self._fields})

    @classmethod
    def get_fields_and_field_types(cls) -> dict[str, str]:
        """Field name -> rclpy type string ('double', 'sequence<string>', 'std_msgs/Header')."""
        return {f.name: _rclpy_type(f) for f in cls._fields}

    @classmethod
    def _to_rosbags(cls, msg: 'Message', **override: Any) -> Any:
        values = {f.name: conv(override[f.name] if f.name in override else getattr(msg, f.name))
                  for f, conv in cls._to_convs}
        if cls._empty:
            values[EMPTY_FIELD] = 0
        return cls._rosbags_cls(**values)

    @classmethod
    def _from_rosbags(cls, obj: Any) -> 'Message':
        msg = cls.__new__(cls)
        for f, conv in cls._from_convs:
            setattr(msg, f.name, conv(getattr(obj, f.name)))
        return msg


class Service:
    """Base of the generated service classes: a namespace holding `Request` and `Response`."""

    _type = ''  # 'std_srvs/srv/Trigger'
    Request: type[Message]
    Response: type[Message]


def _rebuild(type_name: str, values: dict) -> Message:
    """Unpickle helper: a message of `type_name` with the given field values."""
    cls = local_class(type_name)
    msg = cls.__new__(cls)
    for name, value in values.items():
        setattr(msg, name, value)
    return msg


_classes: dict[str, type] = {}


def _make_class(type_name: str) -> type[Message]:
    pkg, _, name = type_name.split('/')
    store = typestore()
    fields = [_field(n, d) for n, d in store.get_msgdef(type_name).fields]
    public = tuple(f for f in fields if f.name != EMPTY_FIELD)
    consts = {c: bytes([v & 0xFF]) if t == 'byte' else v
              for c, t, v in store.fielddefs[type_name][0]}
    cls = type(name, (Message,), {
        '__slots__': tuple(f.name for f in public), '__module__': HOME,
        '__qualname__': f'{pkg}.{name}', '__doc__': f'{type_name} (local, rclpy-like).',
        '_type': type_name, '_fields': public, '_empty': len(public) < len(fields),
        '_rosbags_cls': store.types[type_name], **consts})
    # Nested classes are made first (the converters and defaults below ask for them).
    given = _MSG_DEFAULTS.get(type_name, {})
    cls._defaults = tuple((lambda v=given[f.name]: v) if f.name in given else _default(f)
                          for f in public)
    cls._to_convs = tuple((f, _to_rosbags_conv(f)) for f in public)
    cls._from_convs = tuple((f, _from_rosbags_conv(f)) for f in public)
    if public and not cls._empty and public[-1].kind == 'seq' and public[-1].typ in _BYTES:
        cls._tail = public[-1].name
    return cls


def local_class(type_name: str) -> type:
    with _lock:
        cls = _classes.get(type_name)
        if cls is None:
            if type_name not in typestore().fielddefs:
                dirs = ', '.join(str(d) for d in msg_dirs()) or '(no msg/ folder found)'
                raise LookupError(
                    f'unknown ROS type {type_name!r}: not in the ROS 2 Humble store nor in '
                    f'{dirs}. Add its text as msg/<package>/msg/<Type>.msg.')
            cls = _classes[type_name] = _make_class(type_name)
        return cls


def local_service(type_name: str) -> type[Service]:
    with _lock:
        cls = _classes.get(type_name)
        if cls is None:
            pkg, _, name = type_name.split('/')
            request = local_class(f'{type_name}_Request')
            response = local_class(f'{type_name}_Response')
            request.__qualname__ = f'{pkg}.{name}.Request'
            response.__qualname__ = f'{pkg}.{name}.Response'
            cls = _classes[type_name] = type(name, (Service,), {
                '__module__': HOME, '__qualname__': f'{pkg}.{name}',
                '__doc__': f'{type_name} (local, rclpy-like).', '_type': type_name,
                'Request': request, 'Response': response})
        return cls
