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


"""Publishers, subscriptions, services and clients of a local node."""

import collections
import time

from vla_nodes.ros.local.future import Future


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
