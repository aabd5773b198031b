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
        # A thread that runs every callback itself (a lock-step simulator's, during an episode;
        # `take_over`): executors take no work meanwhile and wait on `handed_back`.
        self.stepper = None
        self.handed_back = threading.Condition(self.cond._lock)

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

    def take_over(self) -> None:
        """From now on the calling thread runs every callback (`run_ready`); executors wait.

        Returns once no callback an executor took is still running. A lock-step simulator
        takes over for an episode: each step's callbacks then run on its own thread, without
        the two thread hand-offs per physics step of waking an executor and being woken by it
        (and in an order that depends only on what was published).
        """
        with self.cond:
            self.stepper = threading.current_thread()
            while self.active:
                self.cond.wait(0.01)

    def hand_back(self) -> None:
        """The executors run the callbacks again (undoes `take_over`)."""
        with self.cond:
            if self.stepper is threading.current_thread():
                self.stepper = None
                self.handed_back.notify_all()
                self.notify_locked()

    def may_take(self) -> bool:
        """Whether the calling thread may take work now (the caller holds `cond`)."""
        return self.stepper is None or self.stepper is threading.current_thread()

    def wait_handed_back(self, timeout_s: float) -> None:
        """While another thread took over (`take_over`), wait until it hands back."""
        with self.cond:
            if not self.may_take():
                self.handed_back.wait(timeout_s)

    def run_ready(self) -> int:
        """Run, on the calling thread, every callback ready now and what they make ready.

        For the thread that took over (`take_over`). Executors in the order they were created,
        each taking its work in its own fair rotation: the order depends only on the work.
        Returns how many callbacks ran.
        """
        executors = list(self.executors)
        if len(executors) > 1:
            executors.sort(key=lambda e: e.created)
        ran = 0
        while True:
            ran_before = ran
            for executor in executors:
                while executor.run_one():
                    ran += 1
            # One executor found nothing left: no need to look again (a scan per physics step).
            if ran == ran_before or len(executors) == 1:
                return ran

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
