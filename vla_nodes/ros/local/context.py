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


"""The local backend's context: one ROS 'process' (bus, arguments, wake-ups) and init/shutdown."""

import os
import sys
import threading
import weakref

from vla_nodes.ros import params as P
from vla_nodes.ros import signals
from vla_nodes.ros.bus import InProcessBus


class ExternalShutdownException(Exception):
    """Raised by spin when the context was shut down elsewhere (as in rclpy)."""


class Context:
    """One ROS 'process': the bus, global arguments and the wake-up condition of executors."""

    def __init__(self):
        self.bus = InProcessBus()
        self.cond = threading.Condition(threading.RLock())
        # Same lock; notified only when an executor runs out of work: who waits for idle() (a
        # lock-step simulator) is not woken by every message delivered or callback ended.
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
