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


"""Executors: take ready work from nodes and run it, in one thread or on a pool."""

import collections
import concurrent.futures
import itertools
import threading
import time

from vla_nodes.ros.local.context import get_default_context

_CREATED = itertools.count()


class Executor:
    """Takes ready work from its nodes and runs it; subclasses choose the thread."""

    def __init__(self, *, context=None):
        self.context = context or get_default_context()
        self._nodes = []  # replaced, never mutated: read without the lock
        self._work = ([], None, [])  # (nodes, their work_version, flat entity list)
        self._rr = 0
        self._shutdown = False
        self._lock = threading.Lock()
        self.idle_generation = -1  # the context generation at which it last found no work
        self.created = next(_CREATED)  # Context.run_ready's order
        self.context.executors.add(self)

    def has_work(self) -> bool:
        """Whether any entity of its nodes has work ready (a message, a request, a due timer)."""
        return any(e.has_work() for e in self._entities())

    def add_node(self, node) -> bool:
        with self._lock:
            if node in self._nodes:
                return False
            self._nodes = self._nodes + [node]
        self.context.wake()
        return True

    def remove_node(self, node) -> None:
        with self._lock:
            if node in self._nodes:
                self._nodes = [n for n in self._nodes if n is not node]

    def get_nodes(self) -> list:
        return list(self._nodes)

    def _entities(self) -> list:
        """The entities of its nodes that may have work, in node order (do not modify).

        Rebuilt only when a node or an entity came or went: a lock-step graph asks several
        times per physics step.
        """
        nodes = self._nodes
        versions = [n.work_version for n in nodes]
        cached_nodes, cached_versions, entities = self._work
        if nodes is not cached_nodes or versions != cached_versions:
            entities = [e for n in nodes for e in n.ready_work()]
            self._work = (nodes, versions, entities)
        return entities

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
        entities = self._entities()
        count = len(entities)
        # The rotation moves on only when work is taken: given the same work, the same order
        # (a lock-step simulation replays bit for bit), however often an idle executor polls.
        start = self._rr % count if count else 0
        for i in range(count):
            entity = entities[(start + i) % count]
            if not entity.has_work():  # cheap, lock-free: most entities have nothing
                continue
            group = entity.callback_group
            if not group.beginning_execution():
                continue
            with self.context.cond:
                if not self.context.may_take():  # a lock-step simulator runs the callbacks now
                    group.ending_execution()
                    return None
                self.context.active += 1  # taken but not yet run still counts as busy
            work = entity.take()
            if work is not None:
                self._rr += 1
                return work, group
            group.ending_execution()
            self._done_one(notify=False)  # nothing happened: waking executors would spin them
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
                # Executors only: who waits for idle() hears from `_found_nothing`, once the
                # executor looked again and found nothing (woken here, idle(scan=False) could
                # not say yes before that look, and the wake-up cost a lock-step step a thread
                # switch per callback).
                self.context.notify_locked()

    def _parked(self, deadline) -> bool:
        """Wait while another thread runs the callbacks (Context.take_over); whether it still does.

        Parked, an executor is not woken by the messages the stepping thread delivers.
        """
        if self.context.stepper is None:
            return False
        remaining = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
        self.context.wait_handed_back(max(0.0, remaining))
        return self.context.stepper is not None and not self.context.may_take()

    def _wait(self, generation: int, timeout_sec) -> None:
        """Sleep until an event newer than `generation`, the next timer, or the timeout."""
        waits = [n.next_timer_ns() for n in self._nodes]
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

    def run_one(self) -> bool:
        """Run one ready callback on the calling thread; whether there was one.

        For the thread that took over the context (`Context.take_over`).
        """
        ready = self._take_ready()
        if ready is None:
            return False
        self._run(*ready)
        return True

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
            if self._parked(deadline):
                return
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
            if self._parked(deadline):
                return
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
