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

"""The transport under the ROS-free node runtime: `Bus` (the interface) and `InProcessBus`.

`local.Node` does everything rclpy's node does (names, parameters, timers, executors) and hands
messages and service calls to a `Bus`. `InProcessBus` delivers in one process, zero-copy: every
subscription receives the publisher's object. The multi-process transport (`zenoh_bus.ZenohBus`:
rmw_zenoh key expressions and CDR payloads) implements the same methods and serializes at the
boundary; node code does not change.

Delivery rules follow ROS 2: a subscription only receives messages of its own type (a mismatch is
logged once and dropped, the graph keeps running), QoS-incompatible pairs do not match, keep-last
queues drop their oldest message, and transient-local publishers replay their last messages to
subscriptions that join later.
"""

import collections
import logging
import threading
from typing import Protocol

from vla_nodes.ros.qos import DurabilityPolicy, incompatibility

_log = logging.getLogger('vla_nodes.ros.bus')


class Bus(Protocol):
    """What a transport offers the node runtime.

    Optional, for a transport with a graph (`zenoh_bus.ZenohBus`): `add_node(node)` and
    `remove_node(node)`, `add_client(client)` (announced, never delivered to), and `close()` at
    context shutdown. `local.Node` calls them when the bus has them.
    """

    def add_publisher(self, pub) -> None: ...

    def add_subscription(self, sub) -> None: ...

    def remove(self, endpoint) -> None: ...

    def publish(self, pub, msg) -> None: ...

    def add_service(self, srv) -> None: ...

    def find_service(self, name: str): ...


class InProcessBus:
    """Topics and services of one process.

    Endpoints are duck-typed: a publisher has `.topic`, `.msg_type`, `.qos`; a subscription has
    those plus `.deliver(msg)`; a service has `.name`, `.srv_type` and `.enqueue(request, future)`.
    """

    def __init__(self):
        self._lock = threading.RLock()
        self._publishers = collections.defaultdict(list)     # topic -> [pub]
        self._subscriptions = collections.defaultdict(list)  # topic -> [sub]
        self._latched = {}                                   # pub -> deque of recent msgs
        self._services = {}                                  # name -> srv
        self._warned = set()

    # --- topics ---------------------------------------------------------------------------------
    def add_publisher(self, pub) -> None:
        with self._lock:
            self._publishers[pub.topic].append(pub)
            if pub.qos.durability == DurabilityPolicy.TRANSIENT_LOCAL:
                self._latched[pub] = collections.deque(maxlen=pub.qos.queue_length)

    def add_subscription(self, sub) -> None:
        with self._lock:
            self._subscriptions[sub.topic].append(sub)
            replay = [
                msg for pub in self._publishers[sub.topic] if pub in self._latched
                and sub.qos.durability == DurabilityPolicy.TRANSIENT_LOCAL
                and self._matches(pub, sub) for msg in self._latched[pub]
            ]
        for msg in replay:
            sub.deliver(msg)

    def remove(self, endpoint) -> None:
        with self._lock:
            for table in (self._publishers, self._subscriptions):
                bucket = table.get(getattr(endpoint, 'topic', None), [])
                if endpoint in bucket:
                    bucket.remove(endpoint)
            self._latched.pop(endpoint, None)
            if self._services.get(getattr(endpoint, 'name', None)) is endpoint:
                del self._services[endpoint.name]

    def publish(self, pub, msg) -> None:
        with self._lock:
            if pub in self._latched:
                self._latched[pub].append(msg)
            targets = [s for s in self._subscriptions[pub.topic] if self._matches(pub, s)]
        for sub in targets:
            sub.deliver(msg)

    def count(self, topic: str, kind: str) -> int:
        with self._lock:
            table = self._publishers if kind == 'publishers' else self._subscriptions
            return len(table.get(topic, []))

    def topic_names_and_types(self) -> list:
        with self._lock:
            names = {}
            for table in (self._publishers, self._subscriptions):
                for topic, endpoints in table.items():
                    for e in endpoints:
                        names.setdefault(topic, set()).add(_type_name(e.msg_type))
            return sorted((t, sorted(types)) for t, types in names.items())

    def _matches(self, pub, sub) -> bool:
        if pub.msg_type is not sub.msg_type:
            self._warn_once(
                ('type', pub, sub),
                f'{pub.topic}: dropped a {_type_name(pub.msg_type)} message; the subscription '
                f'of node {sub.node_name!r} expects {_type_name(sub.msg_type)}. Check the topic '
                f'names and remaps: one topic must carry one type.')
            return False
        reason = incompatibility(pub.qos, sub.qos)
        if reason:
            self._warn_once(('qos', pub, sub),
                            f'{pub.topic}: incompatible QoS, no delivery: {reason}')
            return False
        return True

    def _warn_once(self, key, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _log.error(text)

    # --- services -------------------------------------------------------------------------------
    def add_service(self, srv) -> None:
        with self._lock:
            if srv.name in self._services:
                raise RuntimeError(f'a service named {srv.name} already exists')
            self._services[srv.name] = srv

    def find_service(self, name: str):
        with self._lock:
            return self._services.get(name)


def _type_name(msg_type) -> str:
    from vla_nodes.ros import msgs
    try:
        return msgs.type_name(msg_type)
    except Exception:  # an unregistered class: its Python name is still informative
        return getattr(msg_type, '__name__', str(msg_type))
