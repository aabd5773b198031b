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
`typestore().serialize_cdr(...)` of the equivalent rosbags object; RIHS01 hashes of the `msg/`
types equal those rosidl generates.
"""

import array
import importlib
import importlib.util
import os
from pathlib import Path
import re
import threading
from typing import Any, Callable, NamedTuple

import numpy as np
from rosbags.interfaces import Nodetype
from rosbags.typesys import get_types_from_msg, get_typestore, Stores
from rosbags.typesys.store import Typestore

from vla_nodes.paths import package_share

STORE = Stores.ROS2_HUMBLE  # Humble's definitions are also Jazzy's for every type we use
MSGDEF_ENCODING = 'ros2msg'
_EMPTY_FIELD = 'structure_needs_at_least_one_member'  # what rosidl puts in an empty struct


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

# --- the type store -----------------------------------------------------------------------------
_lock = threading.RLock()
_store: Typestore | None = None


def msg_dirs() -> list[Path]:
    """Folders holding interface texts: the package share's `msg/`, then the checkout's."""
    dirs = []
    try:
        dirs.append(package_share() / 'msg')
    except FileNotFoundError:
        pass
    dirs.append(Path(__file__).resolve().parents[2] / 'msg')
    unique: list[Path] = []
    for folder in dirs:
        if folder.is_dir() and all(folder.resolve() != u.resolve() for u in unique):
            unique.append(folder)
    return unique


def _parse_interface(path: Path) -> dict:
    """Parse `<pkg>/msg/<T>.msg` or `<pkg>/srv/<T>.srv` into rosbags' {type name: definition}."""
    pkg, kind, name = path.parts[-3], path.parts[-2], path.stem
    if (kind, path.suffix) not in (('msg', '.msg'), ('srv', '.srv')):
        raise ValueError(f'{path}: interface texts must be msg/<package>/msg/<Type>.msg or '
                         f'msg/<package>/srv/<Type>.srv')
    text = path.read_text(encoding='utf-8')
    if kind == 'msg':
        bodies = {name: text}
    else:
        halves = re.split(r'^---[ \t]*$', text, maxsplit=1, flags=re.MULTILINE)
        if len(halves) != 2:
            raise ValueError(f'{path}: a .srv needs a "---" line between request and response')
        bodies = {f'{name}_Request': halves[0], f'{name}_Response': halves[1]}
    types = {}
    for typ, body in bodies.items():
        # The .msg parser names types <pkg>/msg/<T>; services are renamed to <pkg>/srv/<T>.
        consts, fields = get_types_from_msg(body, f'{pkg}/msg/{typ}')[f'{pkg}/msg/{typ}']
        types[f'{pkg}/{kind}/{typ}'] = (
            consts, fields or [(_EMPTY_FIELD, (Nodetype.BASE, ('uint8', 0)))])
    return types


def typestore() -> Typestore:
    """The rosbags type store: ROS 2 Humble definitions plus this package's `msg/` texts."""
    global _store
    with _lock:
        if _store is None:
            store = get_typestore(STORE)
            types: dict = {}
            for folder in msg_dirs():
                for path in sorted([*folder.glob('*/msg/*.msg'), *folder.glob('*/srv/*.srv')]):
                    for typ, definition in _parse_interface(path).items():
                        types.setdefault(typ, definition)
            store.register(types)
            _store = store
        return _store


def _normalize(type_name: str) -> str:
    """'pkg/Type' -> 'pkg/msg/Type'; 'pkg/msg/Type' and 'pkg/srv/Type_Request' unchanged."""
    parts = type_name.strip('/').split('/')
    if len(parts) == 2:
        parts.insert(1, 'msg')
    if len(parts) != 3 or parts[1] not in ('msg', 'srv'):
        raise ValueError(f'{type_name!r} is not a ROS interface name; expected e.g. '
                         f'sensor_msgs/msg/Image or std_srvs/srv/Trigger')
    return '/'.join(parts)


def msgdef(type_name: str) -> tuple[str, str]:
    """Return the concatenated definition bag writers store: (text, 'ros2msg')."""
    text, _ = typestore().generate_msgdef(_normalize(type_name), ros_version=2)
    return text, MSGDEF_ENCODING


def type_hash(type_name: str) -> str:
    """Return the RIHS01 type hash, e.g. 'RIHS01_d31d41a9...' for sensor_msgs/msg/Image."""
    return typestore().hash_rihs01(_normalize(type_name))


# --- local message classes ----------------------------------------------------------------------
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
        cls = _local_class(f.typ)
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
        return _local_class(f.typ)._to_rosbags
    if f.kind in ('msg_array', 'msg_seq'):
        conv = _local_class(f.typ)._to_rosbags
        return lambda items: [conv(x) for x in _checked_len(items, f)]
    if f.typ == 'string':
        return lambda items: list(_checked_len(items, f))
    return lambda items: _checked_len(_as_array(items, f.typ), f)


def _from_rosbags_conv(f: _Field) -> Callable[[Any], Any]:
    """Converter from a rosbags field value to ours (owning its memory, writable)."""
    if f.kind == 'base':
        return (lambda v: bytes([v & 0xFF])) if f.typ == 'byte' else _identity
    if f.kind == 'msg':
        return _local_class(f.typ)._from_rosbags
    if f.kind in ('msg_array', 'msg_seq'):
        conv = _local_class(f.typ)._from_rosbags
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
    def _to_rosbags(cls, msg: 'Message') -> Any:
        values = {f.name: conv(getattr(msg, f.name)) for f, conv in cls._to_convs}
        if cls._empty:
            values[_EMPTY_FIELD] = 0
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
    cls = _local_class(type_name)
    msg = cls.__new__(cls)
    for name, value in values.items():
        setattr(msg, name, value)
    return msg


_classes: dict[str, type] = {}


def _make_class(type_name: str) -> type[Message]:
    pkg, _, name = type_name.split('/')
    store = typestore()
    fields = [_field(n, d) for n, d in store.get_msgdef(type_name).fields]
    public = tuple(f for f in fields if f.name != _EMPTY_FIELD)
    consts = {c: bytes([v & 0xFF]) if t == 'byte' else v
              for c, t, v in store.fielddefs[type_name][0]}
    cls = type(name, (Message,), {
        '__slots__': tuple(f.name for f in public), '__module__': __name__,
        '__qualname__': f'{pkg}.{name}', '__doc__': f'{type_name} (local, rclpy-like).',
        '_type': type_name, '_fields': public, '_empty': len(public) < len(fields),
        '_rosbags_cls': store.types[type_name], **consts})
    # Nested classes are made first (the converters and defaults below ask for them).
    given = _MSG_DEFAULTS.get(type_name, {})
    cls._defaults = tuple((lambda v=given[f.name]: v) if f.name in given else _default(f)
                          for f in public)
    cls._to_convs = tuple((f, _to_rosbags_conv(f)) for f in public)
    cls._from_convs = tuple((f, _from_rosbags_conv(f)) for f in public)
    return cls


def _local_class(type_name: str) -> type:
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


def _local_service(type_name: str) -> type[Service]:
    with _lock:
        cls = _classes.get(type_name)
        if cls is None:
            pkg, _, name = type_name.split('/')
            request = _local_class(f'{type_name}_Request')
            response = _local_class(f'{type_name}_Response')
            request.__qualname__ = f'{pkg}.{name}.Request'
            response.__qualname__ = f'{pkg}.{name}.Response'
            cls = _classes[type_name] = type(name, (Service,), {
                '__module__': __name__, '__qualname__': f'{pkg}.{name}',
                '__doc__': f'{type_name} (local, rclpy-like).', '_type': type_name,
                'Request': request, 'Response': response})
        return cls


# --- public API ---------------------------------------------------------------------------------
def get_message(type_name: str) -> type:
    """Return the message class for 'sensor_msgs/msg/Image' (or 'sensor_msgs/Image').

    Raises:
        LookupError: unknown type (local backend); ImportError/AttributeError with rclpy.
    """
    type_name = _normalize(type_name)
    if USE_RCLPY:  # pragma: no cover - needs ROS 2
        return _rclpy_lookup(type_name)
    return _local_class(type_name)


def get_service(type_name: str) -> type:
    """Return the service class for 'std_srvs/srv/Trigger' (it has `.Request`, `.Response`)."""
    type_name = _normalize(type_name)
    if USE_RCLPY:  # pragma: no cover - needs ROS 2
        return _rclpy_lookup(type_name)
    return _local_service(type_name)


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
    if USE_RCLPY:  # pragma: no cover - needs ROS 2
        from rclpy.serialization import serialize_message
        return serialize_message(msg)
    return bytes(typestore().serialize_cdr(msg._to_rosbags(msg), msg._type))


def deserialize(data: bytes | memoryview, type_name: str) -> Any:
    """Deserialize CDR bytes into a message of `type_name` ('sensor_msgs/msg/Image')."""
    type_name = _normalize(type_name)
    if USE_RCLPY:  # pragma: no cover - needs ROS 2
        from rclpy.serialization import deserialize_message
        return deserialize_message(bytes(data), get_message(type_name))
    obj = typestore().deserialize_cdr(memoryview(data), type_name)
    return _local_class(type_name)._from_rosbags(obj)


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
            return _local_class(f'{self._name}/msg/{attr}')
        elif f'{self._name}/srv/{attr}_Request' in typestore().fielddefs:
            return _local_service(f'{self._name}/srv/{attr}')
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
