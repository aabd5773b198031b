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

"""Driving a few nodes of the local backend in a test: spin them, probe topics, make messages.

Shared by the node test files (fixtures are in conftest.py).
"""

import threading
import time

from vla_nodes import contract
from vla_nodes.ros import local, msgs
from vla_nodes.ros.msgs import sensor_msgs, std_msgs


def spin_executor(executor, seconds, until=lambda: False, every=None) -> bool:
    """Spin `executor` for `seconds`, or until `until()` holds; call `every()` after each turn.

    Returns whether `until()` holds at the end.
    """
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        executor.spin_once(timeout_sec=min(0.02, max(0.0, end - time.monotonic())))
        if every is not None:
            every()
    return until()


def spin(ctx, nodes, seconds, until=lambda: False, executor_type=None) -> bool:
    """Spin `nodes` for `seconds`, or until `until()` holds; return whether it held."""
    executor = (executor_type or local.MultiThreadedExecutor)(context=ctx)
    for node in nodes:
        executor.add_node(node)
    try:
        return spin_executor(executor, seconds, until)
    finally:
        executor.shutdown()


class Probe:
    """Collects what a topic carries (keep last 1000: a test reads all it needs)."""

    def __init__(self, node, msg_type, topic, qos=1000):
        self.msgs = []
        node.create_subscription(msg_type, topic, self.msgs.append, qos)


def joint_state(position, stamp_ns: int = 0, names=contract.JOINT_NAMES):
    """A JointState of `names` at `position` (rad; gripper in m), stamped `stamp_ns`."""
    return sensor_msgs.JointState(header=std_msgs.Header(stamp=msgs.ns_to_stamp(int(stamp_ns))),
                                  name=list(names), position=[float(v) for v in position])


class Spinning:
    """Spins `executor` on a daemon thread until `close()`, which also shuts the executor down."""

    def __init__(self, executor):
        self.executor = executor
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self):
        self._stop.set()
        self._thread.join()
        self.executor.shutdown()


def tiny_checkpoint(dataset, out, *flags):
    """Train two steps of the default tiny preset on `dataset` with vla-train `flags`.

    Returns the checkpoint's directory: enough for round trips (contract, loading, policy_node),
    not for behaviour.
    """
    from vla_nodes.train.train import main as vla_train
    assert vla_train(['--data', str(dataset), '--out', str(out), '--steps', '2',
                      '--batch-size', '2', '--val-every', '2', '--save-every', '2',
                      '--val-batches', '1', '--warmup', '1', '--no-progress', *flags]) == 0
    return out / 'checkpoints' / 'step_000002'
