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

from vla_nodes.ros.clock import Clock, Duration, Time
from vla_nodes.ros.local.callback_groups import (
    MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup)
from vla_nodes.ros.local.context import (
    Context, ExternalShutdownException, get_default_context, init, ok, shutdown, try_shutdown)
from vla_nodes.ros.local.entities import Client, Publisher, Service, Subscription
from vla_nodes.ros.local.executors import (
    Executor, MultiThreadedExecutor, SingleThreadedExecutor, spin, spin_once,
    spin_until_future_complete)
from vla_nodes.ros.local.future import Future
from vla_nodes.ros.local.logger import get_logger
from vla_nodes.ros.local.node import Node
from vla_nodes.ros.local.timer import Timer

__all__ = [
    'Client', 'Clock', 'Context', 'Duration', 'Executor', 'ExternalShutdownException', 'Future',
    'MultiThreadedExecutor', 'MutuallyExclusiveCallbackGroup', 'Node', 'Publisher',
    'ReentrantCallbackGroup', 'Service', 'SingleThreadedExecutor', 'Subscription', 'Time',
    'Timer', 'get_default_context', 'get_logger', 'init', 'ok', 'shutdown', 'spin', 'spin_once',
    'spin_until_future_complete', 'try_shutdown',
]
