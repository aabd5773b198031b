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

"""The `local` backend: rclpy's node API in pure Python, over a `Bus` (in-process by default).

Same names and semantics as rclpy for what the suite uses: `init/shutdown/ok/spin/spin_once`,
`Node` (publishers, subscriptions, timers, services, clients, parameters, logger, clock),
callback groups and the single- and multi-threaded executors. Work items (a message, a due timer,
a service request) become ready on the context's condition variable; executors take them and run
the callbacks, honouring mutually exclusive callback groups. Nothing here knows the transport.
"""

import collections
import concurrent.futures
import logging
import os
import sys
import threading
import time
import weakref

from vla_nodes.ros import params as P
from vla_nodes.ros import signals
from vla_nodes.ros.bus import InProcessBus
from vla_nodes.ros.clock import Clock, ClockType, Duration, Time
from vla_nodes.ros.qos import as_profile, qos_profile_services_default


class ExternalShutdownException(Exception):
    """Raised by spin when the context was shut down elsewhere (as in rclpy)."""


# --- context -------------------------------------------------------------------------------------

class Context:
    """One ROS 'process': the bus, global arguments and the wake-up condition of executors."""

    def __init__(self):
        self.bus = InProcessBus()
        self.cond = threading.Condition(threading.RLock())
        # Same lock; notified only when a callback ends or an executor runs out of work: who
        # waits for idle() (a lock-step simulator) is not woken by every message delivered.
        self.idle_cond = threading.Condition(self.cond._lock)
        self.global_args = P.RosArgs()
        self._ok = False
        self._on_shutdown = []
        # Bumped on every event executors wait for, so a wake-up is never missed.
        self.generation = 0
        self.executors = weakref.WeakSet()
        self.active = 0  # callbacks being taken or run (guarded by `cond`)

    def init(self, args=None, bus=None) -> None:
        if self._ok:
            raise RuntimeError('Context.init() must only be called once')
        # As rclpy: no args means the process's command line (`node --ros-args -p ...`).
        self.global_args = P.parse_ros_args(sys.argv if args is None else args)
        if bus is None and os.environ.get('VLA_ROS_BACKEND', '').strip().lower() == 'zenoh':
            from vla_nodes.ros.zenoh_bus import ZenohBus
            bus = ZenohBus()
        if bus is not None:
            self.bus = bus
        self._ok = True

    def ok(self) -> bool:
        return self._ok

    def wake(self) -> None:
        with self.cond:
            self.notify_locked()

    def notify_locked(self) -> None:
        """Signal waiting executors; the caller holds `cond`."""
        self.generation += 1
        self.cond.notify_all()

    def idle(self, scan: bool = True) -> bool:
        """Whether no callback runs and no executor of this context has work ready now.

        A lock-step simulator (sim_node `lockstep`) advances time only when this holds. Every
        executor that found nothing to take records the generation it looked at: when that is
        still the current one, no scan is needed. `scan=False` answers from that alone (False
        when unsure): cheap enough to ask on every wake-up.
        """
        with self.cond:
            if self.active:
                return False
            executors = list(self.executors)
            if executors and all(e.idle_generation == self.generation for e in executors):
                return True
            return scan and not any(e.has_work() for e in executors)

    def on_shutdown(self, callback) -> None:
        self._on_shutdown.append(callback)

    def shutdown(self) -> None:
        if not self._ok:
            raise RuntimeError('Context must be initialized before it can be shutdown')
        self._ok = False
        for callback in self._on_shutdown:
            callback()
        if hasattr(self.bus, 'close'):  # a session-backed bus leaves the graph
            self.bus.close()
        self.wake()

    def try_shutdown(self) -> None:
        if self._ok:
            self.shutdown()


_default_context = Context()


def get_default_context() -> Context:
    return _default_context


def init(*, args=None, context=None, bus=None) -> None:
    """Initialize `context` (default: a fresh process-wide one, so init after shutdown works)."""
    global _default_context
    if context is None:
        if _default_context.ok():
            raise RuntimeError('ros.init() was already called; call ros.shutdown() first')
        _default_context = Context()
        _default_context.init(args, bus=bus)
        # The process's context takes SIGTERM as rclpy.init does (ros/signals.py).
        signals.install()
        _default_context.on_shutdown(signals.restore)
        return
    context.init(args, bus=bus)


def shutdown(*, context=None) -> None:
    (context or _default_context).shutdown()


def try_shutdown(*, context=None) -> None:
    (context or _default_context).try_shutdown()


def ok(*, context=None) -> bool:
    return (context or _default_context).ok()


# --- callback groups ----------------------------------------------------------------------------

class CallbackGroup:
    def __init__(self):
        self._running = 0
        self._lock = threading.Lock()

    def beginning_execution(self) -> bool:
        with self._lock:
            if not self.can_execute():
                return False
            self._running += 1
            return True

    def ending_execution(self) -> None:
        with self._lock:
            self._running -= 1

    def can_execute(self) -> bool:
        raise NotImplementedError


class MutuallyExclusiveCallbackGroup(CallbackGroup):
    """One callback of the group at a time (the default group of a node)."""

    def can_execute(self) -> bool:
        return self._running == 0


class ReentrantCallbackGroup(CallbackGroup):
    """Callbacks of the group may run in parallel under a multi-threaded executor."""

    def can_execute(self) -> bool:
        return True


# --- logging ------------------------------------------------------------------------------------

class Logger:
    """rclpy's RcutilsLogger calls (`info`, `warn`, ..., `throttle_duration_sec`, `once`)."""

    def __init__(self, name: str):
        self.name = name
        self._py = logging.getLogger(name)
        self._last = {}
        self._lock = threading.Lock()

    def get_child(self, name: str) -> 'Logger':
        return Logger(f'{self.name}.{name}')

    def _log(self, level, msg, throttle_duration_sec=None, once=False, skip_first=False):
        # Like rclpy, `once` and throttling are per call site, not per message text.
        caller = sys._getframe(2)
        key = (caller.f_code.co_filename, caller.f_lineno)
        with self._lock:
            now = time.monotonic()
            last = self._last.get(key)
            if once and last is not None:
                return False
            if throttle_duration_sec and last is not None and now - last < throttle_duration_sec:
                return False
            if skip_first and last is None:
                self._last[key] = now
                return False
            self._last[key] = now
        self._py.log(level, msg)
        return True

    def debug(self, msg, **kw):
        return self._log(logging.DEBUG, msg, **kw)

    def info(self, msg, **kw):
        return self._log(logging.INFO, msg, **kw)

    def warning(self, msg, **kw):
        return self._log(logging.WARNING, msg, **kw)

    warn = warning

    def error(self, msg, **kw):
        return self._log(logging.ERROR, msg, **kw)

    def fatal(self, msg, **kw):
        return self._log(logging.CRITICAL, msg, **kw)


def get_logger(name: str) -> Logger:
    return Logger(name)


# --- futures ------------------------------------------------------------------------------------

class Future:
    """rclpy.task.Future subset: result, exception, done callbacks."""

    def __init__(self):
        self._done = threading.Event()
        self._result = None
        self._exception = None
        self._callbacks = []
        self._lock = threading.Lock()

    def done(self) -> bool:
        return self._done.is_set()

    def result(self):
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self):
        return self._exception

    def set_result(self, result) -> None:
        self._finish(result, None)

    def set_exception(self, exc) -> None:
        self._finish(None, exc)

    def cancel(self) -> None:
        self._finish(None, concurrent.futures.CancelledError())

    def cancelled(self) -> bool:
        return isinstance(self._exception, concurrent.futures.CancelledError)

    def _finish(self, result, exc) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._result, self._exception = result, exc
            self._done.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback(self)

    def add_done_callback(self, callback) -> None:
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        callback(self)

    def wait(self, timeout=None) -> bool:
        return self._done.wait(timeout)


# --- entities -----------------------------------------------------------------------------------

class Publisher:
    def __init__(self, node, msg_type, topic, qos):
        self.node_name, self.msg_type, self.topic, self.qos = node.get_name(), msg_type, topic, qos
        self._node = self.node = node

    def publish(self, msg) -> None:
        if not isinstance(msg, self.msg_type):
            raise TypeError(f'{self.topic}: expected {self.msg_type.__name__}, got '
                            f'{type(msg).__name__}')
        self._node.context.bus.publish(self, msg)

    def get_subscription_count(self) -> int:
        return self._node.context.bus.count(self.topic, 'subscriptions')

    @property
    def topic_name(self) -> str:
        return self.topic

    def destroy(self) -> None:
        self._node.destroy_publisher(self)


class Subscription:
    def __init__(self, node, msg_type, topic, callback, qos, group):
        self.node_name, self.msg_type, self.topic, self.qos = node.get_name(), msg_type, topic, qos
        self.callback, self.callback_group, self.node = callback, group, node
        self._queue = collections.deque(maxlen=qos.queue_length)
        self._context = node.context
        self.dropped = 0  # messages lost to keep-last overflow

    def deliver(self, msg) -> None:
        with self._context.cond:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append(msg)
            self._context.notify_locked()

    def has_work(self) -> bool:
        return bool(self._queue)

    def take(self):
        with self._context.cond:
            if not self._queue:
                return None
            msg = self._queue.popleft()
        return lambda: self.callback(msg)

    @property
    def topic_name(self) -> str:
        return self.topic


class ClockSubscription(Subscription):
    """A node's /clock subscription (use_sim_time).

    The time is set as the message is delivered, not by an executor later. Every node sees the
    new time at once, and a lock-step simulator's 100 Hz clock costs no callback per node and
    step.
    """

    def deliver(self, msg) -> None:
        self.callback(msg)
        self._context.wake()  # timers may be due now

    def has_work(self) -> bool:
        return False

    def take(self):
        return None


class Timer:
    """A periodic callback on the node's clock; missed periods are skipped, as in rcl."""

    def __init__(self, node, period_sec, callback, group, clock):
        if period_sec <= 0:
            raise ValueError('timer period must be positive')
        self.period_ns = int(period_sec * 1e9)
        self.callback, self.callback_group, self.clock = callback, group, clock
        self._next_ns = clock.now_ns() + self.period_ns
        self._canceled = False
        self._lock = threading.Lock()

    @property
    def timer_period_ns(self) -> int:
        return self.period_ns

    def is_canceled(self) -> bool:
        return self._canceled

    def cancel(self) -> None:
        self._canceled = True

    def reset(self) -> None:
        with self._lock:
            self._canceled = False
            self._next_ns = self.clock.now_ns() + self.period_ns

    def time_until_next_call(self) -> int | None:
        """Nanoseconds until due (<= 0: due); None when canceled."""
        if self._canceled:
            return None
        return self._next_ns - self.clock.now_ns()

    def has_work(self) -> bool:
        wait = self.time_until_next_call()
        return wait is not None and wait <= 0

    def take(self):
        with self._lock:
            now = self.clock.now_ns()
            if self._canceled or now < self._next_ns:
                return None
            missed = (now - self._next_ns) // self.period_ns
            self._next_ns += (missed + 1) * self.period_ns
        return self.callback


class Service:
    def __init__(self, node, srv_type, name, callback, group):
        self.srv_type, self.name, self.callback, self.callback_group = (
            srv_type, name, callback, group)
        self.node = node
        self._requests = collections.deque()
        self._context = node.context

    def enqueue(self, request, future: Future) -> None:
        with self._context.cond:
            self._requests.append((request, future))
            self._context.notify_locked()

    def has_work(self) -> bool:
        return bool(self._requests)

    def take(self):
        with self._context.cond:
            if not self._requests:
                return None
            request, future = self._requests.popleft()

        def run():
            try:
                future.set_result(self.callback(request, self.srv_type.Response()))
            except Exception as err:  # the caller sees the server's error, the server lives on
                future.set_exception(err)
                raise
        return run

    @property
    def service_name(self) -> str:
        return self.name


class Client:
    def __init__(self, node, srv_type, name):
        self.srv_type, self.name, self.node = srv_type, name, node
        self._context = node.context

    def service_is_ready(self) -> bool:
        return self._context.bus.find_service(self.name) is not None

    def wait_for_service(self, timeout_sec=None) -> bool:
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        while not self.service_is_ready():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def call_async(self, request) -> Future:
        if not isinstance(request, self.srv_type.Request):
            raise TypeError(f'{self.name}: expected {self.srv_type.__name__}.Request')
        future = Future()
        server = self._context.bus.find_service(self.name)
        if server is None:
            future.set_exception(RuntimeError(f'service {self.name} is not available'))
        else:
            server.enqueue(request, future)
        return future

    def call(self, request, timeout_sec=None):
        """Blocking call; the server must be spun by another thread (as in rclpy)."""
        future = self.call_async(request)
        if not future.wait(timeout_sec):
            raise TimeoutError(f'service {self.name} did not answer in {timeout_sec} s')
        return future.result()


# --- the node -----------------------------------------------------------------------------------

class Node:
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
        self._namespace = _normalize_ns(args.namespace or namespace or '/')
        self._remaps = self._node_rules(args)
        self._overrides = self._collect_overrides(args, parameter_overrides)
        self._parameters = {}
        self._descriptors = {}
        self._set_callbacks = []
        self._allow_undeclared = allow_undeclared_parameters
        self._entities = []
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
        name = _expand(topic, self._namespace, self._name)
        if only_expand:
            return name
        return self._remaps.get(name, name)

    def _node_rules(self, args: P.RosArgs) -> dict:
        rules = {}
        for node, src, dst in args.remaps:
            if node in (None, self._name):
                rules[_expand(src, self._namespace, self._name)] = _expand(
                    dst, self._namespace, self._name)
        return rules

    def _collect_overrides(self, args: P.RosArgs, parameter_overrides) -> dict:
        overrides = {}
        for path in args.params_files:
            overrides.update(P.load_params_file(path, self.get_fully_qualified_name()))
        for node, name, value in args.params:
            # rcl keys '-p node:name:=v' like a parameter file's 'node:' (root namespace only).
            if node is None or P.node_key_matches(node, self.get_fully_qualified_name()):
                overrides[name] = value
        for param in parameter_overrides or []:
            overrides[param.name] = param.value
        return overrides

    # logging and time
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
            self._entities.append(self._clock_sub)
            self.context.bus.add_subscription(self._clock_sub)
        elif not enabled and self._clock_sub is not None:
            self.destroy_subscription(self._clock_sub)
            self._clock_sub = None
            self._clock.set_sim_time(None)

    # topics
    def create_publisher(self, msg_type, topic, qos_profile, **_kw) -> Publisher:
        pub = Publisher(self, msg_type, self.resolve_topic_name(topic), as_profile(qos_profile))
        self.context.bus.add_publisher(pub)
        self._entities.append(pub)
        return pub

    def create_subscription(self, msg_type, topic, callback, qos_profile, *,
                            callback_group=None, **_kw) -> Subscription:
        sub = Subscription(self, msg_type, self.resolve_topic_name(topic), callback,
                           as_profile(qos_profile), callback_group or self._default_group)
        self._entities.append(sub)
        self.context.bus.add_subscription(sub)
        return sub

    def create_timer(self, timer_period_sec, callback, callback_group=None, clock=None) -> Timer:
        timer = Timer(self, timer_period_sec, callback, callback_group or self._default_group,
                      clock or self._clock)
        self._entities.append(timer)
        self.context.wake()
        return timer

    def create_service(self, srv_type, srv_name, callback, *, qos_profile=None,
                       callback_group=None) -> Service:
        srv = Service(self, srv_type, self.resolve_topic_name(srv_name), callback,
                      callback_group or self._default_group)
        self.context.bus.add_service(srv)
        self._entities.append(srv)
        return srv

    def create_client(self, srv_type, srv_name, *, qos_profile=qos_profile_services_default,
                      callback_group=None) -> Client:
        client = Client(self, srv_type, self.resolve_topic_name(srv_name))
        self._entities.append(client)
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

    def ready_work(self) -> list:
        """Entities that may have work: each has `take()` and `callback_group`."""
        return [e for e in list(self._entities) if hasattr(e, 'take')]

    def next_timer_ns(self) -> int | None:
        waits = [t.time_until_next_call() for t in self._entities if isinstance(t, Timer)]
        waits = [w for w in waits if w is not None]
        return min(waits) if waits else None

    # parameters
    def declare_parameter(self, name, value=None, descriptor=None, ignore_override=False):
        if name in self._parameters:
            raise P.ParameterAlreadyDeclaredException(f"parameter '{name}' is already declared")
        descriptor = descriptor or P.ParameterDescriptor()
        if isinstance(value, P.ParameterType):
            declared, value = value, None
        else:
            declared = P.ParameterType.from_parameter_value(value)
        if not ignore_override and name in self._overrides:
            value = self._overrides[name]
            P.check_type(name, declared, value, descriptor.dynamic_typing)
        if value is not None:
            P.check_range(name, value, descriptor)
        self._descriptors[name] = (declared, descriptor)
        param = P.Parameter(name, value=value)
        self._parameters[name] = param
        return param

    def declare_parameters(self, namespace, parameters):
        prefix = f'{namespace}.' if namespace else ''
        return [self.declare_parameter(prefix + p[0], *p[1:]) for p in parameters]

    def has_parameter(self, name) -> bool:
        return name in self._parameters

    def get_parameter(self, name) -> P.Parameter:
        if name not in self._parameters:
            if self._allow_undeclared:
                return P.Parameter(name, P.ParameterType.NOT_SET, None)
            raise P.ParameterNotDeclaredException(
                f"parameter '{name}' is not declared by node {self.get_fully_qualified_name()}")
        return self._parameters[name]

    def get_parameters(self, names) -> list:
        return [self.get_parameter(n) for n in names]

    def get_parameter_or(self, name, alternative_value=None) -> P.Parameter:
        return self._parameters.get(name, alternative_value)

    def add_on_set_parameters_callback(self, callback) -> None:
        self._set_callbacks.insert(0, callback)

    def set_parameters(self, parameter_list) -> list:
        return [self._set_one(p) for p in parameter_list]

    def _set_one(self, param) -> P.SetParametersResult:
        if param.name not in self._parameters and not self._allow_undeclared:
            raise P.ParameterNotDeclaredException(f"parameter '{param.name}' is not declared")
        declared, descriptor = self._descriptors.get(
            param.name, (P.ParameterType.NOT_SET, P.ParameterDescriptor(dynamic_typing=True)))
        if descriptor.read_only:
            return P.SetParametersResult(False, f"parameter '{param.name}' is read-only")
        try:
            P.check_type(param.name, declared, param.value, descriptor.dynamic_typing)
            P.check_range(param.name, param.value, descriptor)
        except (P.InvalidParameterTypeException, P.InvalidParameterValueException) as err:
            return P.SetParametersResult(False, str(err))
        for callback in self._set_callbacks:
            result = callback([param])
            if not result.successful:
                return result
        self._parameters[param.name] = param
        if param.name == 'use_sim_time':
            self._apply_sim_time(bool(param.value))
        return P.SetParametersResult(True)


def _normalize_ns(ns: str) -> str:
    ns = '/' + ns.strip('/')
    return ns


def _expand(name: str, namespace: str, node_name: str) -> str:
    """ROS 2 name expansion: '~/x' private, 'x' relative to the namespace, '/x' absolute."""
    if not name:
        raise ValueError('topic or service name must not be empty')
    ns = namespace.rstrip('/')
    if name == '~':
        return f'{ns}/{node_name}'
    if name.startswith('~/'):
        return f'{ns}/{node_name}/{name[2:]}'
    if name.startswith('/'):
        return name
    return f'{ns}/{name}'


# --- executors ----------------------------------------------------------------------------------

class Executor:
    """Takes ready work from its nodes and runs it; subclasses choose the thread."""

    def __init__(self, *, context=None):
        self.context = context or get_default_context()
        self._nodes = []
        self._rr = 0
        self._shutdown = False
        self._lock = threading.Lock()
        self.idle_generation = -1  # the context generation at which it last found no work
        self.context.executors.add(self)

    def has_work(self) -> bool:
        """Whether any entity of its nodes has work ready (a message, a request, a due timer)."""
        return any(e.has_work() for n in self.get_nodes() for e in n.ready_work())

    def add_node(self, node) -> bool:
        with self._lock:
            if node in self._nodes:
                return False
            self._nodes.append(node)
        self.context.wake()
        return True

    def remove_node(self, node) -> None:
        with self._lock:
            if node in self._nodes:
                self._nodes.remove(node)

    def get_nodes(self) -> list:
        with self._lock:
            return list(self._nodes)

    def shutdown(self, timeout_sec=None) -> bool:
        self._shutdown = True
        self.context.wake()
        return True

    def _running(self) -> bool:
        return self.context.ok() and not self._shutdown

    def _take_ready(self, generation: int = -1):
        """One (callable, group) whose group can run now, rotating over entities for fairness.

        Finding nothing at the context's `generation` is recorded (see Context.idle).
        """
        entities = [e for n in self.get_nodes() for e in n.ready_work()]
        if not entities:
            self._found_nothing(generation)
            return None
        # The rotation moves on only when work is taken: given the same work, the same order
        # (a lock-step simulation replays bit for bit), however often an idle executor polls.
        start = self._rr % len(entities)
        with self.context.cond:
            self.context.active += 1  # taken but not yet run still counts as busy
        for entity in entities[start:] + entities[:start]:
            if not entity.has_work():  # cheap, lock-free: most entities have nothing
                continue
            group = entity.callback_group
            if not group.beginning_execution():
                continue
            work = entity.take()
            if work is not None:
                self._rr += 1
                return work, group
            group.ending_execution()
        self._done_one(notify=False)  # nothing happened: waking executors would make them spin
        self._found_nothing(generation)
        return None

    def _found_nothing(self, generation: int) -> None:
        with self.context.cond:
            if generation == self.context.generation != self.idle_generation:
                self.idle_generation = generation
                self.context.idle_cond.notify_all()

    def _done_one(self, notify: bool = True) -> None:
        with self.context.cond:
            self.context.active -= 1
            if notify:
                self.context.notify_locked()
                self.context.idle_cond.notify_all()

    def _wait(self, generation: int, timeout_sec) -> None:
        """Sleep until an event newer than `generation`, the next timer, or the timeout."""
        waits = [n.next_timer_ns() for n in self.get_nodes()]
        # A timer already due but not taken is blocked by its busy group: wait for an event.
        waits = [w / 1e9 for w in waits if w is not None and w > 0]
        if timeout_sec is not None:
            waits.append(max(0.0, timeout_sec))
        wait = min(waits + [0.05])
        with self.context.cond:
            if self.context.generation == generation and wait > 0:
                self.context.cond.wait(wait)

    def _run(self, work, group) -> None:
        try:
            work()
        finally:
            group.ending_execution()
            self._done_one()

    def spin(self) -> None:
        while self._running():
            self.spin_once(timeout_sec=0.1)

    def spin_until_future_complete(self, future, timeout_sec=None) -> None:
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        while self._running() and not future.done():
            if deadline is not None and time.monotonic() >= deadline:
                return
            self.spin_once(timeout_sec=0.05)


class SingleThreadedExecutor(Executor):
    """Runs every callback in the thread that spins."""

    def spin_once(self, timeout_sec=None) -> None:
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        while self._running():
            generation = self.context.generation
            ready = self._take_ready(generation)
            if ready is not None:
                self._run(*ready)
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            self._wait(generation, remaining)


class MultiThreadedExecutor(Executor):
    """Runs callbacks on a thread pool; a mutually exclusive group runs one at a time."""

    def __init__(self, num_threads=None, *, context=None):
        super().__init__(context=context)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=num_threads or 4, thread_name_prefix='vla_executor')
        self._errors = collections.deque()

    def spin_once(self, timeout_sec=None) -> None:
        self._raise_errors()
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        while self._running():
            generation = self.context.generation
            ready = self._take_ready(generation)
            if ready is not None:
                self._pool.submit(self._run_collecting, *ready)
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            self._wait(generation, remaining)

    def _run_collecting(self, work, group) -> None:
        try:
            self._run(work, group)
        except BaseException as err:  # re-raised in the spinning thread, as rclpy does
            self._errors.append(err)
            self.context.wake()

    def _raise_errors(self) -> None:
        if self._errors:
            raise self._errors.popleft()

    def shutdown(self, timeout_sec=None) -> bool:
        super().shutdown(timeout_sec)
        # Let submitted callbacks finish: a cancelled one would leave its group marked busy.
        self._pool.shutdown(wait=True)
        return True


def spin_once(node, *, executor=None, timeout_sec=None) -> None:
    executor = executor or SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    executor.spin_once(timeout_sec=timeout_sec)


def spin(node, executor=None) -> None:
    executor = executor or SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    executor.spin()


def spin_until_future_complete(node, future, executor=None, timeout_sec=None) -> None:
    executor = executor or SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    executor.spin_until_future_complete(future, timeout_sec)


__all__ = [
    'Client', 'Clock', 'Context', 'Duration', 'Executor', 'ExternalShutdownException', 'Future',
    'MultiThreadedExecutor', 'MutuallyExclusiveCallbackGroup', 'Node', 'Publisher',
    'ReentrantCallbackGroup', 'Service', 'SingleThreadedExecutor', 'Subscription', 'Time',
    'Timer', 'get_default_context', 'get_logger', 'init', 'ok', 'shutdown', 'spin', 'spin_once',
    'spin_until_future_complete', 'try_shutdown',
]
