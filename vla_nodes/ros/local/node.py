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


"""rclpy.node.Node for the local backend: names, entities, logger and clock."""

from vla_nodes.ros import params as P
from vla_nodes.ros.clock import Clock, ClockType
from vla_nodes.ros.local.callback_groups import MutuallyExclusiveCallbackGroup
from vla_nodes.ros.local.context import get_default_context
from vla_nodes.ros.local.entities import (
    Client, ClockSubscription, Publisher, Service, Subscription)
from vla_nodes.ros.local.logger import Logger
from vla_nodes.ros.local.names import expand, normalize_ns
from vla_nodes.ros.local.parameters import NodeParameters
from vla_nodes.ros.local.timer import Timer
from vla_nodes.ros.qos import as_profile, qos_profile_services_default


class Node(NodeParameters):
    """rclpy.node.Node for the local backend."""

    def __init__(self, node_name, *, context=None, cli_args=None, namespace=None,
                 use_global_arguments=True, parameter_overrides=None,
                 allow_undeclared_parameters=False,
                 automatically_declare_parameters_from_overrides=False,
                 start_parameter_services=True, **_ignored):
        self.context = context or get_default_context()
        if not self.context.ok():
            raise RuntimeError('call ros.init() before creating a node')
        args = P.parse_ros_args(cli_args)
        if use_global_arguments:
            args = self.context.global_args.merged(args)
        self._name = args.node_name or node_name
        self._namespace = normalize_ns(args.namespace or namespace or '/')
        self._remaps = self._node_rules(args)
        self._overrides = self._collect_overrides(args, parameter_overrides)
        self._parameters = {}
        self._descriptors = {}
        self._set_callbacks = []
        self._allow_undeclared = allow_undeclared_parameters
        self._entities = []
        # What executors poll, rebuilt (never mutated) when an entity comes or goes; an
        # executor rebuilds its own flat list only when `work_version` moved.
        self._work, self._timers, self.work_version = [], [], 0
        self._default_group = MutuallyExclusiveCallbackGroup()
        self._logger = Logger(self.get_fully_qualified_name().lstrip('/').replace('/', '.'))
        self._clock = Clock(ClockType.ROS_TIME)
        self._clock_sub = None
        if hasattr(self.context.bus, 'add_node'):  # a bus with a graph announces the node
            self.context.bus.add_node(self)
        if automatically_declare_parameters_from_overrides:
            for name, value in self._overrides.items():
                self.declare_parameter(name, value)
        self.declare_parameter('use_sim_time', False)
        self._apply_sim_time(self.get_parameter('use_sim_time').value)
        if start_parameter_services:  # as rclpy's: `ros2 param set` and other nodes set ours
            P.start_parameter_services(self)

    # names
    def get_name(self) -> str:
        return self._name

    def get_namespace(self) -> str:
        return self._namespace

    def get_fully_qualified_name(self) -> str:
        return f"{self._namespace.rstrip('/')}/{self._name}"

    def resolve_topic_name(self, topic: str, *, only_expand=False) -> str:
        name = expand(topic, self._namespace, self._name)
        if only_expand:
            return name
        return self._remaps.get(name, name)

    def _node_rules(self, args: P.RosArgs) -> dict:
        rules = {}
        for node, src, dst in args.remaps:
            if node in (None, self._name):
                rules[expand(src, self._namespace, self._name)] = expand(
                    dst, self._namespace, self._name)
        return rules

    def get_logger(self) -> Logger:
        return self._logger

    def get_clock(self) -> Clock:
        return self._clock

    def _apply_sim_time(self, enabled: bool) -> None:
        if enabled and self._clock_sub is None:
            from vla_nodes.ros import msgs
            self._clock.set_sim_time(0)
            self._clock_sub = ClockSubscription(
                self, msgs.rosgraph_msgs.Clock, '/clock',
                lambda m: self._clock.set_sim_time(m.clock.sec * 10**9 + m.clock.nanosec),
                as_profile(10), self._default_group)
            self._add_entity(self._clock_sub)
            self.context.bus.add_subscription(self._clock_sub)
        elif not enabled and self._clock_sub is not None:
            self.destroy_subscription(self._clock_sub)
            self._clock_sub = None
            self._clock.set_sim_time(None)

    # topics
    def create_publisher(self, msg_type, topic, qos_profile, **_kw) -> Publisher:
        pub = Publisher(self, msg_type, self.resolve_topic_name(topic), as_profile(qos_profile))
        self.context.bus.add_publisher(pub)
        self._add_entity(pub)
        return pub

    def create_subscription(self, msg_type, topic, callback, qos_profile, *,
                            callback_group=None, **_kw) -> Subscription:
        sub = Subscription(self, msg_type, self.resolve_topic_name(topic), callback,
                           as_profile(qos_profile), callback_group or self._default_group)
        self._add_entity(sub)
        self.context.bus.add_subscription(sub)
        return sub

    def create_timer(self, timer_period_sec, callback, callback_group=None, clock=None) -> Timer:
        timer = Timer(self, timer_period_sec, callback, callback_group or self._default_group,
                      clock or self._clock)
        self._add_entity(timer)
        self.context.wake()
        return timer

    def create_service(self, srv_type, srv_name, callback, *, qos_profile=None,
                       callback_group=None) -> Service:
        srv = Service(self, srv_type, self.resolve_topic_name(srv_name), callback,
                      callback_group or self._default_group)
        self.context.bus.add_service(srv)
        self._add_entity(srv)
        return srv

    def create_client(self, srv_type, srv_name, *, qos_profile=qos_profile_services_default,
                      callback_group=None) -> Client:
        client = Client(self, srv_type, self.resolve_topic_name(srv_name))
        self._add_entity(client)
        if hasattr(self.context.bus, 'add_client'):
            self.context.bus.add_client(client)
        return client

    def count_publishers(self, topic: str) -> int:
        return self.context.bus.count(self.resolve_topic_name(topic), 'publishers')

    def count_subscribers(self, topic: str) -> int:
        return self.context.bus.count(self.resolve_topic_name(topic), 'subscriptions')

    def get_topic_names_and_types(self) -> list:
        return self.context.bus.topic_names_and_types()

    def _destroy(self, entity) -> bool:
        if entity in self._entities:
            self._entities.remove(entity)
            self._entities_changed()
            self.context.bus.remove(entity)
            return True
        return False

    destroy_publisher = destroy_subscription = destroy_service = destroy_client = _destroy

    def destroy_timer(self, timer) -> bool:
        timer.cancel()
        return self._destroy(timer)

    def destroy_node(self) -> None:
        for entity in list(self._entities):
            if isinstance(entity, Timer):
                entity.cancel()
            self._destroy(entity)
        if hasattr(self.context.bus, 'remove_node'):
            self.context.bus.remove_node(self)

    def _add_entity(self, entity) -> None:
        self._entities.append(entity)
        self._entities_changed()

    def _entities_changed(self) -> None:
        self._work = [e for e in self._entities if hasattr(e, 'take')]
        self._timers = [e for e in self._entities if isinstance(e, Timer)]
        self.work_version += 1

    def ready_work(self) -> list:
        """Entities that may have work: each has `take()` and `callback_group` (do not modify)."""
        return self._work

    def next_timer_ns(self) -> int | None:
        waits = [t.time_until_next_call() for t in self._timers]
        waits = [w for w in waits if w is not None]
        return min(waits) if waits else None
