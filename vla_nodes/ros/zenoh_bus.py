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

"""`ZenohBus`: the `Bus` of `local.Node` across processes and machines, speaking rmw_zenoh.

One bus is one Zenoh session (one ROS context in rmw_zenoh). Every node, publisher,
subscription, service and client declares the liveliness token rmw_zenoh_cpp would declare, data
goes to the key expressions it would use, as the CDR bytes rosidl would produce, with its
attachment (sequence number, source timestamp, GID); services are queryables. The names are
built in `zenoh_keys`; this module only drives the session:

- publishers: a Zenoh publisher, or for TRANSIENT_LOCAL an advanced publisher with a cache of
  `depth` samples and publisher detection (rmw_publisher_data.cpp);
- subscriptions: a subscriber, or for TRANSIENT_LOCAL an advanced subscriber that queries the
  caches of late-joining publishers (rmw_subscription_data.cpp); keep-last depth is applied by
  the subscription's own queue, as on the in-process bus;
- services: a `complete` queryable; clients query with target ALL_COMPLETE and no consolidation
  (rmw_service_data.cpp, rmw_client_data.cpp);
- the graph (counts, names, `wait_for_service`) is read from the `@ros2_lv/<domain>/**` tokens.

Unlike the in-process bus, QoS never blocks a match (rmw_zenoh: "any publisher can match any
subscriber"), and a subscription of another type does not see the topic (the type is in the key).

Payloads of at least `ZENOH_SHM_MESSAGE_SIZE_THRESHOLD` bytes (default 512, as rmw_zenoh) are
written into Zenoh shared memory (a pool of `ZENOH_SHM_ALLOC_SIZE` bytes, default 48 MiB) when
the session has `transport/shared_memory/enabled`: a subscriber on the same machine then maps
them instead of receiving them over TCP; Zenoh copies them onto the wire for remote ones.

Session configuration follows rmw_zenoh: `ZENOH_SESSION_CONFIG_URI` (a Zenoh JSON5 file) replaces
the defaults, `ZENOH_CONFIG_OVERRIDE` ('key=json5;key=json5', e.g.
`connect/endpoints=["tcp/10.0.0.2:7447"]`) changes single keys, `ROS_DOMAIN_ID` picks the domain.
The defaults are rmw_zenoh's peer session, on loopback only: connect to a router at
tcp/127.0.0.1:7447 (which `vla-launch --processes` runs), listen on tcp/127.0.0.1 (any port), no
multicast scouting.
"""

import itertools
import logging
import os
import threading
import time

from vla_nodes.ros import msgs
from vla_nodes.ros import zenoh_keys as K
from vla_nodes.ros.qos import (
    DurabilityPolicy, HistoryPolicy, qos_profile_services_default, ReliabilityPolicy)

_log = logging.getLogger('vla_nodes.ros.zenoh')

DEFAULT_ROUTER = 'tcp/127.0.0.1:7447'
# rmw_zenoh's DEFAULT_RMW_ZENOH_SESSION_CONFIG.json5, the keys that matter here. Timestamps are
# on because the advanced subscriber orders the history it fetches by them.
DEFAULT_SESSION_CONFIG = f"""{{
  mode: "peer",
  connect: {{ endpoints: ["{DEFAULT_ROUTER}"] }},
  listen: {{ endpoints: ["tcp/127.0.0.1:0"] }},
  scouting: {{ multicast: {{ enabled: false }}, gossip: {{ enabled: true }} }},
  timestamping: {{ enabled: {{ router: true, peer: true, client: true }} }},
  transport: {{ shared_memory: {{ enabled: true }} }},
}}"""


def session_config(overrides: str | None = None):
    """The Zenoh config of a session: file or defaults, then `ZENOH_CONFIG_OVERRIDE` entries."""
    import zenoh
    uri = os.environ.get('ZENOH_SESSION_CONFIG_URI')
    if uri:
        config = zenoh.Config.from_file(uri)
    else:
        config = zenoh.Config.from_json5(DEFAULT_SESSION_CONFIG)
    text = os.environ.get('ZENOH_CONFIG_OVERRIDE', '') if overrides is None else overrides
    for item in filter(None, (i.strip() for i in text.split(';'))):
        key, sep, value = item.partition('=')
        if not sep:
            raise ValueError(f'ZENOH_CONFIG_OVERRIDE: {item!r} is not key=value')
        config.insert_json5(key.strip(), value.strip())
    return config


class _Endpoint:
    """What the bus holds for one publisher, subscription, service or client."""

    def __init__(self, entity: K.Entity, token, zobj=None):
        self.entity, self.token, self.zobj = entity, token, zobj
        self.gid = entity.gid
        self.seq = itertools.count(1)

    def close(self) -> None:
        for obj in (self.zobj, self.token):
            if obj is not None:
                try:
                    obj.undeclare()
                except Exception:  # the session may already be closed
                    pass


class ZenohBus:
    """A `Bus` over one Zenoh session, with rmw_zenoh_cpp's names and formats."""

    def __init__(self, config=None, domain_id: int | None = None, enclave: str = '/'):
        import zenoh
        self._z = zenoh
        config = config if config is not None else session_config()
        self.session = zenoh.open(config)
        self.zid = str(self.session.zid())
        self.domain_id = (int(os.environ.get('ROS_DOMAIN_ID', '0')) if domain_id is None
                          else domain_id)
        self.enclave = enclave
        self._lock = threading.RLock()
        self._ids = itertools.count()  # rmw_context_impl_s::get_next_entity_id, nodes included
        self._nodes = {}       # node -> _Endpoint (its NN token)
        self._endpoints = {}   # pub/sub/service/client -> _Endpoint
        self._graph = {}       # liveliness key expression -> K.Entity, this session's included
        self._warned = set()
        self._shm = None
        if str(_config_value(config, 'transport/shared_memory/enabled')) == 'true':
            from zenoh import shm
            self._shm = shm.ShmProvider.default_backend(
                int(os.environ.get('ZENOH_SHM_ALLOC_SIZE', 48 * 2**20)))
            self._shm_threshold = int(os.environ.get('ZENOH_SHM_MESSAGE_SIZE_THRESHOLD', 512))
        self._graph_sub = self.session.liveliness().declare_subscriber(
            f'{K.ADMIN_SPACE}/{self.domain_id}/**', self._on_token, history=True)

    def _payload(self, msg):
        """`msg` in CDR: in a shared-memory buffer when that is on and worth it, else in memory.

        Into shared memory, a trailing byte sequence (an image's pixels) is copied once, straight
        from the message (`msgs.serialize_parts`), not first into a serialised buffer.
        """
        head, tail = msgs.serialize_parts(msg)
        size = len(head) + len(tail)
        if self._shm is None or size < self._shm_threshold:
            return head + tail if tail else head
        from zenoh import shm
        try:
            buffer = self._shm.alloc(size, policy=shm.GarbageCollect())
        except Exception:  # pool full (slow readers): send a copy instead of waiting
            return head + tail if tail else head
        buffer[0:len(head)] = head
        if tail:
            buffer[len(head):size] = tail
        return buffer

    # --- graph ----------------------------------------------------------------------------------
    def _on_token(self, sample) -> None:
        key = str(sample.key_expr)
        with self._lock:
            if sample.kind == self._z.SampleKind.DELETE:
                self._graph.pop(key, None)
                return
            entity = K.Entity.parse(key)
            if entity is not None:
                self._graph[key] = entity

    def _declare(self, entity: K.Entity):
        with self._lock:
            self._graph[entity.keyexpr] = entity
        return self.session.liveliness().declare_token(entity.keyexpr)

    def entities(self, kind: str | None = None, topic: str | None = None) -> list:
        """Graph entries seen (tokens of every session of the domain, this one included)."""
        with self._lock:
            return [e for e in self._graph.values()
                    if (kind is None or e.kind == kind) and (topic is None or e.topic == topic)]

    def count(self, topic: str, kind: str) -> int:
        code = K.ENTITY['publisher' if kind == 'publishers' else 'subscription']
        return len(self.entities(code, topic))

    def topic_names_and_types(self) -> list:
        names = {}
        for e in self.entities():
            if e.kind in (K.ENTITY['publisher'], K.ENTITY['subscription']):
                names.setdefault(e.topic, set()).add(e.type_name)
        return sorted((t, sorted(types)) for t, types in names.items())

    # --- nodes (optional hooks of the Bus interface) ---------------------------------------------
    def add_node(self, node) -> None:
        nid = str(next(self._ids))
        entity = K.Entity(self.domain_id, self.zid, nid, nid, K.ENTITY['node'], self.enclave,
                          node.get_namespace(), node.get_name())
        with self._lock:
            self._nodes[node] = _Endpoint(entity, self._declare(entity))

    def remove_node(self, node) -> None:
        with self._lock:
            record = self._nodes.pop(node, None)
        if record is not None:
            record.close()

    def _entity(self, endpoint, kind: str, name: str, type_name: str, qos) -> K.Entity:
        node = self._nodes[endpoint.node].entity
        return K.Entity(self.domain_id, self.zid, node.node_id, str(next(self._ids)),
                        K.ENTITY[kind], self.enclave, node.namespace, node.node_name, name,
                        type_name, K.type_hash(type_name), _qos_keyexpr(qos))

    # --- topics ---------------------------------------------------------------------------------
    def add_publisher(self, pub) -> None:
        entity = self._entity(pub, 'publisher', pub.topic, msgs.type_name(pub.msg_type), pub.qos)
        key = K.topic_keyexpr(self.domain_id, pub.topic, entity.type_name, entity.type_hash)
        reliable = pub.qos.reliability != ReliabilityPolicy.BEST_EFFORT
        options = dict(
            reliability=self._z.Reliability.RELIABLE if reliable
            else self._z.Reliability.BEST_EFFORT,
            # rmw_publisher_data.cpp: DROP, BLOCK only for RELIABLE + KEEP_ALL
            congestion_control=self._z.CongestionControl.BLOCK
            if reliable and pub.qos.history == HistoryPolicy.KEEP_ALL
            else self._z.CongestionControl.DROP)
        if pub.qos.durability == DurabilityPolicy.TRANSIENT_LOCAL:
            ext = self._z.ext
            zpub = ext.declare_advanced_publisher(
                self.session, key, cache=ext.CacheConfig(max_samples=pub.qos.queue_length),
                publisher_detection=True,
                sample_miss_detection=ext.MissDetectionConfig(sporadic_heartbeat=0.5)
                if reliable else None, **options)
        else:
            zpub = self.session.declare_publisher(key, **options)
        with self._lock:
            self._endpoints[pub] = _Endpoint(entity, self._declare(entity), zpub)

    def publish(self, pub, msg) -> None:
        record = self._endpoints[pub]
        record.zobj.put(self._payload(msg), attachment=K.attachment(
            next(record.seq), time.time_ns(), record.gid))

    def add_subscription(self, sub) -> None:
        type_name = msgs.type_name(sub.msg_type)
        entity = self._entity(sub, 'subscription', sub.topic, type_name, sub.qos)
        key = K.topic_keyexpr(self.domain_id, sub.topic, type_name, entity.type_hash)

        def on_sample(sample):
            try:
                msg = msgs.deserialize(sample.payload.to_bytes(), type_name)
            except Exception as err:  # a foreign publisher's bad payload must not kill the bus
                self._warn_once(('cdr', key), f'{sub.topic}: dropped a sample that is not a '
                                f'{type_name} in CDR: {err}')
                return
            sub.deliver(msg)
        if sub.qos.durability == DurabilityPolicy.TRANSIENT_LOCAL:
            ext = self._z.ext
            zsub = ext.declare_advanced_subscriber(
                self.session, key, on_sample, subscriber_detection=True,
                history=ext.HistoryConfig(detect_late_publishers=True,
                                          max_samples=sub.qos.queue_length),
                recovery=ext.RecoveryConfig(heartbeat=True)
                if sub.qos.reliability != ReliabilityPolicy.BEST_EFFORT else None)
        else:
            zsub = self.session.declare_subscriber(key, on_sample)
        with self._lock:
            self._endpoints[sub] = _Endpoint(entity, self._declare(entity), zsub)

    def remove(self, endpoint) -> None:
        with self._lock:
            record = self._endpoints.pop(endpoint, None)
        if record is not None:
            record.close()

    def _warn_once(self, key, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _log.error(text)

    # --- services -------------------------------------------------------------------------------
    def add_service(self, srv) -> None:
        service_type = _service_type(srv.srv_type)
        entity = self._entity(srv, 'service', srv.name, service_type,
                              qos_profile_services_default)
        key = K.topic_keyexpr(self.domain_id, srv.name, service_type, entity.type_hash)

        def on_query(query):
            from vla_nodes.ros.local.future import Future
            try:
                seq, _, client_gid = K.parse_attachment(query.attachment.to_bytes())
                request = msgs.deserialize(query.payload.to_bytes(), f'{service_type}_Request')
            except Exception as err:
                query.reply_err(f'bad request: {err}')
                query.drop()
                return

            def answer(future):
                try:
                    if future.exception() is not None:
                        query.reply_err(f'{type(future.exception()).__name__}: '
                                        f'{future.exception()}')
                    else:
                        # rmw_service_data.cpp: the reply carries the request's sequence number
                        # and the client's GID, so the client matches it to its request.
                        query.reply(key, msgs.serialize(future.result()),
                                    attachment=K.attachment(seq, time.time_ns(), client_gid))
                finally:
                    query.drop()
            future = Future()
            future.add_done_callback(answer)
            srv.enqueue(request, future)
        queryable = self.session.declare_queryable(key, on_query, complete=True)
        with self._lock:
            self._endpoints[srv] = _Endpoint(entity, self._declare(entity), queryable)

    def add_client(self, client) -> None:
        entity = self._entity(client, 'client', client.name, _service_type(client.srv_type),
                              qos_profile_services_default)
        with self._lock:
            self._endpoints[client] = _Endpoint(entity, self._declare(entity))

    def find_service(self, name: str):
        """A handle whose `enqueue(request, future)` calls the service; None while none is up."""
        if not self.entities(K.ENTITY['service'], name):
            return None
        return _RemoteService(self, name)

    def call(self, name: str, request, future) -> None:
        service_type = msgs.type_name(request)[:-len('_Request')]
        key = K.topic_keyexpr(self.domain_id, name, service_type, K.type_hash(service_type))
        with self._lock:
            client = next((r for e, r in self._endpoints.items()
                           if r.entity.kind == K.ENTITY['client'] and r.entity.topic == name),
                          None)
        source_gid = client.gid if client else K.gid(f'{self.zid}/{name}')
        seq = next(client.seq) if client else 1

        def on_reply(reply):
            if future.done():
                return
            if reply.ok is not None:
                future.set_result(msgs.deserialize(reply.ok.payload.to_bytes(),
                                                   f'{service_type}_Response'))
            else:
                future.set_exception(RuntimeError(
                    f'service {name}: {reply.err.payload.to_string()}'))
        self.session.get(key, on_reply, target=self._z.QueryTarget.ALL_COMPLETE,
                         consolidation=self._z.ConsolidationMode.NONE,
                         payload=msgs.serialize(request),
                         attachment=K.attachment(seq, time.time_ns(), source_gid))

    # --- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            records = list(self._endpoints.values()) + list(self._nodes.values())
            self._endpoints.clear()
            self._nodes.clear()
        for record in records:
            record.close()
        self.session.close()


class _RemoteService:
    """`find_service`'s answer: the same `enqueue` as a local service, over a Zenoh query."""

    def __init__(self, bus: ZenohBus, name: str):
        self._bus, self.name = bus, name

    def enqueue(self, request, future) -> None:
        self._bus.call(self.name, request, future)


def _service_type(srv_type) -> str:
    return msgs.type_name(srv_type.Request)[:-len('_Request')]


def _config_value(config, key: str):
    try:
        return config.get_json(key)
    except Exception:  # a key the config does not have
        return None


def _qos_keyexpr(qos) -> str:
    return K.qos_keyexpr(int(qos.reliability), int(qos.durability), int(qos.history),
                         qos.depth if qos.history != HistoryPolicy.KEEP_ALL else 0)
