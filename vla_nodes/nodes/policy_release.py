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

"""When policy_node's chunk goes out: as soon as the model is done, or at a simulated instant.

Real time (`inference_delay_s` < 0, robots): inference on a worker thread, the chunk published
as soon as it is done. Lock-step simulation (>= 0): the model runs on the same worker while the
simulation goes on (the model on one core, the simulation on the other), and the chunk is
released by a timer on the simulated clock at observation time + that delay; the release waits
for the model if it is not done (the simulator then waits too). So latency still shapes the
episode, and the same chunk goes out at the same simulated instant however long the model took.
One request at a time: `busy` until its chunk went out or was dropped.
"""

import concurrent.futures
import threading


class ChunkRelease:
    """Runs inference off the executor and publishes its result when it is due.

    Args:
        node: the node whose timers release held chunks (simulated clock in lock-step).
        infer: (obs, stamp ns, ...) -> a result, or None when there is nothing to publish.
        publish: publishes a result of `infer`.
        delay_s: `inference_delay_s`: < 0 real time; >= 0 lock-step, published this long
            (simulated s) after the observation.
    """

    def __init__(self, node, infer, publish, delay_s: float):
        self._node, self._infer, self._publish = node, infer, publish
        self._delay_ns = None if delay_s < 0 else int(round(delay_s * 1e9))
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='policy')
        self._busy = threading.Event()
        self._pending, self._timer = None, None  # lock-step: a Future not yet due

    @property
    def busy(self) -> bool:
        """A request is under way: its chunk has not gone out yet."""
        return self._busy.is_set()

    def submit(self, matched, now_ns: int) -> None:
        """Infer on `matched` (obs, stamp ns, ...: infer's arguments), observed before `now_ns`."""
        self._busy.set()
        if self._delay_ns is None:
            self._worker.submit(self._infer_and_publish, matched)
            return
        self._pending = self._worker.submit(self._infer, *matched)
        wait_ns = matched[1] + self._delay_ns - now_ns
        if wait_ns <= 0:
            self._release()
        else:
            self._timer = self._node.create_timer(wait_ns / 1e9, self._release)

    def drop(self) -> bool:
        """Forget a held chunk (a new episode); whether there was one.

        A worker still running in real time finishes; the node's publish drops its chunk.
        """
        if self._pending is None and self._timer is None:
            return False
        self._drop_pending()
        self._busy.clear()
        return True

    def shutdown(self) -> None:
        self._worker.shutdown(wait=True)

    def _infer_and_publish(self, matched) -> None:
        """Real time, on the worker: publish as soon as the model is done."""
        try:
            out = self._infer(*matched)
            if out is not None:
                self._publish(*out)
        finally:
            self._busy.clear()

    def _release(self) -> None:
        pending, self._pending = self._pending, None  # taken: waited for below, not cancelled
        self._drop_pending()
        out = pending.result() if pending is not None else None
        if out is not None:
            self._publish(*out)
        self._busy.clear()

    def _drop_pending(self) -> None:
        if self._timer is not None:
            self._node.destroy_timer(self._timer)
        if self._pending is not None:
            self._pending.cancel()  # one still running finishes unread
        self._pending, self._timer = None, None
