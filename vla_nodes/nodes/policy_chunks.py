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

"""policy_node's chunks: when to ask for the next one, and what becomes of one the model gave.

`PolicyChunks` owns the `policy.runner.ChunkScheduler` (a new episode starts a fresh one) and
everything after the model: a chunk that failed, is not finite or was observed before the
episode's start is dropped and counted; one that passes goes on `/vla/action_chunk` (or, with
`dry_run`, into the log), its model time and delay on `/vla/chunk_timing`, into the scheduler
(which plans the next request with them) and into the node's diagnostics.
"""

import collections
import json
import time

import numpy as np

from vla_nodes import contract, ros
from vla_nodes.nodes.diagnostics import ERROR, OK
from vla_nodes.nodes.policy_inputs import chunk_msg
from vla_nodes.policy.runner import ChunkScheduler
from vla_nodes.ros.msgs import std_msgs, trajectory_msgs


class PolicyChunks:
    """Schedules, checks, publishes and accounts for the chunks of one policy.

    Args:
        node: the node (publishers, clock, logger).
        policy: the policy (policy/base.py).
        joints: the joint names a chunk commands.
        rate_hz: chunk steps per second.
        params: policy_node's parameters (scheduler periods and margin, `dry_run`).
        stats: the node's counts of drops and chunks (a Counter, shared with its matcher).
        diag: the node's Diagnostics.
        busy: whether a request is under way (a value for diagnostics).
    """

    def __init__(self, node, policy, joints, rate_hz: float, params: dict, stats, diag, busy):
        self._node, self._policy, self._joints, self._rate_hz = node, policy, joints, rate_hz
        self._p, self._stats, self._diag, self._busy = params, stats, diag, busy
        self._chunk_s = contract.chunk_step_time_s(policy.inputs.horizon - 1, rate_hz)
        self.scheduler = self._new_scheduler()
        self.episode_start_ns = 0
        self.infer_ms = collections.deque(maxlen=1000)  # model time per chunk (ms), recent
        self.delays_s = collections.deque(maxlen=1000)  # observation -> chunk published (s)
        self.last_chunk = None  # (stamp ns, actions (H, 7)) of the last chunk (or dry-run one)
        self._pub = node.create_publisher(trajectory_msgs.JointTrajectory,
                                          contract.ACTION_CHUNK_TOPIC, 10)
        self._timing_pub = node.create_publisher(std_msgs.String, contract.CHUNK_TIMING_TOPIC,
                                                 100)

    def _new_scheduler(self) -> ChunkScheduler:
        rate = self._p['inference_rate_hz']
        return ChunkScheduler(margin_s=self._p['horizon_margin_s'],
                              min_period_s=1.0 / self._p['tick_rate_hz'],
                              max_period_s=1.0 / rate if rate > 0 else 0.0)

    def start_episode(self, stamp_ns: int) -> None:
        """A new episode from `stamp_ns`: no chunk observed before it goes out."""
        self.episode_start_ns = stamp_ns
        self.scheduler = self._new_scheduler()

    def infer(self, obs, stamp_ns, requested_ns):
        """(actions (H, 7), stamp ns, model ms, requested ns), or None: failed or not finite.

        `requested_ns`: when the node asked (its clock): the observation's wait before that
        (arrival and completion) goes on /vla/chunk_timing apart from the model's time.
        """
        try:
            start = time.perf_counter()
            actions = np.asarray(self._policy.infer(obs)['actions'], dtype=float)
            infer_ms = (time.perf_counter() - start) * 1e3
        except Exception as err:  # a bad frame must not kill the worker: report and go on
            self._stats['errors'] += 1
            self._node.get_logger().error(f'inference failed: {err}', throttle_duration_sec=2.0)
            self._diag.set(ERROR, f'inference failed: {err}')
            return None
        if not np.all(np.isfinite(actions)):
            self._stats['rejected_non_finite'] += 1
            self._diag.set(ERROR, 'policy produced NaN/Inf actions: chunk dropped')
            return None
        return actions, stamp_ns, infer_ms, requested_ns

    def publish(self, actions, stamp_ns, infer_ms, requested_ns) -> None:
        """Publish a chunk of `infer` (log it, dry run) unless observed before the episode."""
        if stamp_ns < self.episode_start_ns:  # computed from the previous episode
            self._stats['dropped_previous_episode'] += 1
            return
        dry_run = self._p['dry_run']
        if dry_run:
            self._stats['dry_run_chunks'] += 1
            self._node.get_logger().info(
                f'dry_run: would send a {len(actions)}-step chunk, first target '
                f'{np.round(actions[0], 3).tolist()}', throttle_duration_sec=2.0)
        else:
            self._pub.publish(chunk_msg(actions, ros.Time(nanoseconds=stamp_ns).to_msg(),
                                        self._joints, self._rate_hz))
            self._stats['chunks'] += 1
        now_ns = self._node.get_clock().now().nanoseconds
        delay_s = (now_ns - stamp_ns) / 1e9
        self.scheduler.record_delay(delay_s)
        self.scheduler.on_chunk(stamp_ns / 1e9, self._chunk_s)
        self.infer_ms.append(infer_ms)
        self.delays_s.append(delay_s)
        self.last_chunk = (stamp_ns, actions)
        self._timing_pub.publish(std_msgs.String(data=json.dumps({
            'stamp_ns': int(stamp_ns), 'infer_ms': float(infer_ms), 'delay_s': float(delay_s),
            'input_wait_s': (requested_ns - stamp_ns) / 1e9, 'published': not dry_run})))
        self._diag.set(OK, 'dry run: logging chunks' if dry_run else 'publishing chunks',
                       infer_ms=float(infer_ms), delay_s=float(delay_s),
                       chunk_age_s=float(delay_s), busy=int(self._busy()),
                       expected_delay_s=self.scheduler.expected_delay_s,
                       remaining_s=self.scheduler.remaining_s(now_ns / 1e9), **self._stats)
