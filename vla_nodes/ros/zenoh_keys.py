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

"""rmw_zenoh's wire names, in one place: key expressions, liveliness tokens, GIDs, attachments.

Everything here is pure (no Zenoh session) and follows `rmw_zenoh_cpp` (ros2/rmw_zenoh, the
zenoh 1.x line that Jazzy and later ship), so a ROS 2 node on `rmw_zenoh_cpp` and a node of this
suite on the `zenoh` backend find each other's data and graph entries:

- data key expression (liveliness_utils.cpp, `TopicInfo::TopicInfo`):
  `<domain>/<topic name without leading/trailing '/'>/<DDS type name>/<RIHS01 type hash>`;
- liveliness token (liveliness_utils.cpp, `Entity::Entity`):
  `@ros2_lv/<domain>/<zid>/<node id>/<entity id>/<NN|MP|MS|SS|SC>/<enclave>/<namespace>/<node>`
  and, for everything but a node, `/<topic>/<DDS type name>/<type hash>/<qos>`, with '/' in a
  name replaced by '%';
- GID: XXH3-128 of the liveliness token (low 64 bits, then high 64 bits, little-endian);
- attachment (attachment_helpers.cpp, `AttachmentData::serialize_to_zbytes`): zenoh-ext
  serialisation of int64 sequence number, int64 source timestamp (ns), std::array<uint8, 16> GID.
"""

import functools
import struct
from typing import NamedTuple

import xxhash

ADMIN_SPACE = '@ros2_lv'
ENTITY = {'node': 'NN', 'publisher': 'MP', 'subscription': 'MS', 'service': 'SS',
          'client': 'SC'}
GID_SIZE = 16  # RMW_GID_STORAGE_SIZE

# qos.cpp: RMW_ZENOH_DEFAULT_* (a token leaves a field empty when it equals these).
DEFAULT_QOS = {'reliability': 1, 'durability': 2, 'history': 1, 'depth': 42}


def mangle(name: str) -> str:
    """liveliness_utils.cpp `mangle_name`: '/' -> '%' (so '/' is '%' and '/a/b' is '%a%b')."""
    return name.replace('/', '%')


def demangle(name: str) -> str:
    return name.replace('%', '/')


def dds_type_name(type_name: str) -> str:
    """type_support_common.cpp `_create_type_name`: 'pkg/msg/T' -> 'pkg::msg::dds_::T_'.

    Services use the response type with 'Response_' cut off (rmw_service_data.cpp), which is
    'pkg::srv::dds_::T_' for 'pkg/srv/T'.
    """
    pkg, kind, name = type_name.strip('/').split('/')
    return f'{pkg}::{kind}::dds_::{name}_'


def ros_type_name(dds_name: str) -> str:
    """'pkg::msg::dds_::T_' -> 'pkg/msg/T' (the inverse of `dds_type_name`)."""
    pkg, kind, _, name = dds_name.split('::')
    return f'{pkg}/{kind}/{name[:-1]}'


def qos_keyexpr(reliability: int, durability: int, history: int, depth: int) -> str:
    """liveliness_utils.cpp `qos_to_keyexpr`, for the QoS the suite has.

    `<reliability>:<durability>:<history>,<depth>:<deadline s>,<ns>:<lifespan s>,<ns>:
    <liveliness>,<lease s>,<ns>`, each field empty when it equals rmw_zenoh's default. Deadline,
    lifespan and liveliness are always the defaults here (infinite, automatic).
    The values are rmw's enum numbers, which `vla_nodes.ros.qos` uses too.
    """
    depth = depth or DEFAULT_QOS['depth']  # qos.cpp best_available_qos: depth 0 -> default

    def field(key, value):  # SYSTEM_DEFAULT (0) is adapted to the default too
        return '' if value in (0, DEFAULT_QOS[key]) else str(value)
    return (f"{field('reliability', reliability)}:{field('durability', durability)}:"
            f"{field('history', history)},{field('depth', depth)}:,:,:,,")


def topic_keyexpr(domain_id: int, name: str, type_name: str, type_hash: str) -> str:
    """liveliness_utils.cpp `TopicInfo`: '<domain>/<name stripped of slashes>/<type>/<hash>'."""
    return f"{domain_id}/{name.strip('/')}/{dds_type_name(type_name)}/{type_hash}"


class Entity(NamedTuple):
    """One graph entry, as a liveliness token carries it."""

    domain_id: int
    zid: str
    node_id: str
    entity_id: str
    kind: str          # NN, MP, MS, SS, SC
    enclave: str
    namespace: str
    node_name: str
    topic: str = ''    # ROS name ('/joint_states'), '' for a node
    type_name: str = ''  # ROS type name ('sensor_msgs/msg/JointState')
    type_hash: str = ''
    qos: str = ''

    @property
    def keyexpr(self) -> str:
        parts = [ADMIN_SPACE, str(self.domain_id), self.zid, self.node_id, self.entity_id,
                 self.kind, mangle(self.enclave), mangle(self.namespace), mangle(self.node_name)]
        if self.kind != ENTITY['node']:
            parts += [mangle(self.topic), dds_type_name(self.type_name), self.type_hash,
                      self.qos]
        return '/'.join(parts)

    @property
    def gid(self) -> bytes:
        return gid(self.keyexpr)

    @classmethod
    def parse(cls, keyexpr: str) -> 'Entity | None':
        """liveliness_utils.cpp `Entity::make(keyexpr)`; None for a token that is not one."""
        parts = str(keyexpr).split('/')
        if len(parts) < 9 or parts[0] != ADMIN_SPACE or parts[5] not in ENTITY.values():
            return None
        head = (int(parts[1]), parts[2], parts[3], parts[4], parts[5], demangle(parts[6]),
                demangle(parts[7]), demangle(parts[8]))
        if parts[5] == ENTITY['node']:
            return cls(*head)
        if len(parts) < 13:
            return None
        return cls(*head, demangle(parts[9]), ros_type_name(parts[10]), parts[11], parts[12])


def gid(liveliness_keyexpr: str) -> bytes:
    """liveliness_utils.cpp: XXH3-128 of the token, memcpy'd low64 then high64 (little-endian)."""
    return xxhash.xxh3_128_intdigest(liveliness_keyexpr.encode()).to_bytes(16, 'little')


def attachment(sequence_number: int, source_timestamp_ns: int, source_gid: bytes) -> bytes:
    """attachment_helpers.cpp: zenoh-ext serialisation of (int64, int64, std::array<uint8, 16>).

    zenoh-ext writes integers little-endian and a std::array as a sequence (LEB128 length, 16 fits
    in one byte) of its elements.
    """
    if len(source_gid) != GID_SIZE:
        raise ValueError(f'a GID has {GID_SIZE} bytes, got {len(source_gid)}')
    return struct.pack('<qqB', sequence_number, source_timestamp_ns, GID_SIZE) + bytes(source_gid)


def parse_attachment(data: bytes) -> tuple[int, int, bytes]:
    """(sequence number, source timestamp ns, GID) from `attachment` bytes."""
    if len(data) != 17 + GID_SIZE or data[16] != GID_SIZE:
        raise ValueError(f'not an rmw_zenoh attachment ({len(data)} bytes)')
    seq, stamp = struct.unpack_from('<qq', data)
    return seq, stamp, bytes(data[17:])


# --- type hashes ---------------------------------------------------------------------------------

def type_hash(type_name: str) -> str:
    """RIHS01 hash of a message ('pkg/msg/T') or service ('pkg/srv/T') type, as rosidl makes it."""
    from vla_nodes.ros import type_store
    if type_name.split('/')[1] == 'srv':
        return _service_hash(type_name)
    return type_store.type_hash(type_name)


# rosidl's type description of a service `pkg/srv/T` is a struct of its request, response and
# event messages; the event is `service_msgs/ServiceEventInfo info`, then at most one request and
# one response (rosidl_generator_type_description). Constants do not enter the hash, and the
# .msg `char[16] client_gid` is uint8 in the IDL that rosidl hashes (rosidl_adapter maps char).
_SERVICE_EVENT_INFO = 'uint8 event_type\nbuiltin_interfaces/Time stamp\nuint8[16] client_gid\n' \
                      'int64 sequence_number\n'


@functools.lru_cache(maxsize=None)
def _service_hash(type_name: str) -> str:
    from rosbags.interfaces import Nodetype
    from rosbags.typesys import get_types_from_msg, get_typestore

    from vla_nodes.ros import type_store
    store = get_typestore(type_store.STORE)
    store.register({k: v for k, v in type_store.typestore().fielddefs.items()
                    if k not in store.fielddefs})
    types = get_types_from_msg(_SERVICE_EVENT_INFO, 'service_msgs/msg/ServiceEventInfo')

    def name(typ):
        return (Nodetype.NAME, typ)

    def at_most_one(typ):
        return (Nodetype.SEQUENCE, (name(typ), 1))
    # Written as field definitions: the .msg parser would rename 'pkg/srv/T' to 'pkg/srv/msg/T'.
    types[f'{type_name}_Event'] = ([], [
        ('info', name('service_msgs/msg/ServiceEventInfo')),
        ('request', at_most_one(f'{type_name}_Request')),
        ('response', at_most_one(f'{type_name}_Response'))])
    types[type_name] = ([], [
        ('request_message', name(f'{type_name}_Request')),
        ('response_message', name(f'{type_name}_Response')),
        ('event_message', name(f'{type_name}_Event'))])
    store.register(types)
    return store.hash_rihs01(type_name)
