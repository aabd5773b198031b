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


"""The rosbags type store: ROS 2 Humble's definitions plus the package's `msg/` texts."""

from pathlib import Path
import re
import threading

from rosbags.interfaces import Nodetype
from rosbags.typesys import get_types_from_msg, get_typestore, Stores
from rosbags.typesys.store import Typestore

from vla_nodes.paths import package_share


STORE = Stores.ROS2_HUMBLE  # Humble's definitions are also Jazzy's for every type we use
MSGDEF_ENCODING = 'ros2msg'
EMPTY_FIELD = 'structure_needs_at_least_one_member'  # what rosidl puts in an empty struct
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


def parse_interface(path: Path) -> dict:
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
            consts, fields or [(EMPTY_FIELD, (Nodetype.BASE, ('uint8', 0)))])
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
                    for typ, definition in parse_interface(path).items():
                        types.setdefault(typ, definition)
            store.register(types)
            _store = store
        return _store


def normalize(type_name: str) -> str:
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
    text, _ = typestore().generate_msgdef(normalize(type_name), ros_version=2)
    return text, MSGDEF_ENCODING


def type_hash(type_name: str) -> str:
    """Return the RIHS01 type hash, e.g. 'RIHS01_d31d41a9...' for sensor_msgs/msg/Image."""
    return typestore().hash_rihs01(normalize(type_name))
