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

"""policy_node: runs a policy on cameras, depth, joint state and instruction; publishes chunks.

What it feeds the policy, matched in time around one colour frame, is nodes/policy_inputs.py; it
depends only on the policy interface (policy/base.py), whose `inputs` say which cameras, depth
and object poses to feed. A checkpoint (`checkpoint`, a local directory) is checked against this
robot before it drives anything: joint names, cameras, object poses, the action rate when
`action_rate_hz` is set (0, the default, takes the checkpoint's: its dataset fps) and, if set,
`expected_image_size`; a mismatch refuses to start. Chunks go on `/vla/action_chunk` stamped
with the observation time, step k at `contract.chunk_step_time_s(k)` (step 0 is the command for
the observation's instant, as in training). A stale input produces no chunk: the driver holds.

Timing (policy/runner.py): a tick at `tick_rate_hz` asks the ChunkScheduler whether to request
a chunk, so the next one lands before the current one ends. Real time (`inference_delay_s` -1,
robots): inference on a worker thread, published when done. Lock-step simulation (>= 0): the
chunk is published at observation time + that delay on the simulated clock, so latency still
shapes the episode and it replays exactly; the model runs on the worker meanwhile, while the
simulation goes on (the release waits for it if it is not done: the simulator waits then).
On `/vla/episode_start` it forgets observations, schedule and pending chunk, and never publishes
a chunk observed before the start. Each chunk's model time and delay go on `/vla/chunk_timing`.
`dry_run` publishes nothing and logs what would have been sent.
"""

import collections
import concurrent.futures
import json
import threading
import time

import numpy as np

from vla_nodes import contract, ros
from vla_nodes.nodes import run
from vla_nodes.nodes.diagnostics import Diagnostics, ERROR, OK, WARN
from vla_nodes.nodes.parameters import declare_parameters
from vla_nodes.nodes.policy_inputs import (CameraPoses, chunk_msg, expected_contract,
                                           load_policy, ObservationBuffer, ObservationMatcher)
from vla_nodes.policy.runner import ChunkScheduler
from vla_nodes.ros.convert import joint_positions
from vla_nodes.ros.msgs import sensor_msgs, stamp_to_ns, std_msgs, trajectory_msgs

# Parameters and their defaults; config/<robot>.yaml overrides them.
PARAMETERS = {
    'checkpoint': '',                # a local checkpoint directory; '' = random-weight demo
    'device': 'cpu',
    'seed': 0,
    'inference_rate_hz': 2.0,        # a floor on the request rate (0 = none)
    'tick_rate_hz': 20.0,
    'horizon_margin_s': 0.1,         # request when the chunk's rest is shorter than delay + this
    'action_rate_hz': 0.0,           # chunk steps per s; 0 = the checkpoint's (its dataset fps)
    'max_observation_age_s': 0.5,
    'max_object_age_s': 0.5,         # an older object pose is not used: the policy waits
    'joint_prefix': '',
    'expected_image_size': [0, 0],   # [height, width] the model must take; [0, 0] = any
    'dry_run': False,
    # 1 on small CPUs: torch's spin-waiting threads fight the other nodes for the cores
    # (measured: 21 ms per chunk with 1 thread, 200-500 ms with 2 on a loaded 2-core box).
    'torch_threads': 1,
    # -1: real time (worker thread). >= 0: lock-step, the chunk is published this long (s,
    # simulated) after its observation; 0.28 is the graph's measured obs->chunk median.
    'inference_delay_s': -1.0,
    # The cameras this robot has (contract.CAMERAS): a checkpoint needing another is refused.
    # Further cameras join the primary frame when stamped at most max_camera_skew_s before it.
    'cameras': list(contract.DEFAULT_CAMERAS),
    'max_camera_skew_s': 0.1,
    # pose_node's Detection3DArray topic; '' = no object poses: such a checkpoint is refused.
    'objects_topic': contract.OBJECTS_TOPIC,
}


class PolicyNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('policy_node', **kwargs)
        self.p = p = declare_parameters(self, PARAMETERS)
        self._joints = [p['joint_prefix'] + j for j in contract.JOINT_NAMES]
        if not p['action_rate_hz'] >= 0:
            raise ValueError(f"action_rate_hz must be >= 0 Hz (0: the checkpoint's), got "
                             f"{p['action_rate_hz']}")
        self._policy = load_policy(self.p, self.expected_contract(), self.get_logger())
        inputs = self._policy.inputs
        self._rate_hz = p['action_rate_hz'] or inputs.action_rate_hz
        cameras = contract.cameras(inputs.cameras)
        self._primary, self._extra_cameras = cameras[0], cameras[1:]
        self._env_objects, self._camera_poses = inputs.env_objects, CameraPoses()
        self._chunk_s = contract.chunk_step_time_s(inputs.horizon - 1, self._rate_hz)
        self.scheduler = self._new_scheduler()
        self._obs = ObservationBuffer(needs_depth=inputs.needs_depth,
                                      max_object_age_ns=int(p['max_object_age_s'] * 1e9))
        self._matcher = ObservationMatcher(
            self._obs, self._extra_cameras, self._env_objects, self._camera_poses,
            max_skew_s=p['max_camera_skew_s'], max_age_s=p['max_observation_age_s'],
            objects_topic=p['objects_topic'])
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='policy')
        self._busy = threading.Event()
        self._episode_start_ns = 0
        self._pending, self._release_timer = None, None  # lock-step: a Future not yet due
        self.stats = self._matcher.stats  # counts of drops and chunks, for diagnostics
        self.infer_ms = collections.deque(maxlen=1000)  # model time per chunk (ms), recent
        self.delays_s = collections.deque(maxlen=1000)  # observation -> chunk published (s)
        self.last_chunk = None  # (stamp ns, actions (H, 7)) of the last chunk (or dry-run one)
        self._pub = self.create_publisher(trajectory_msgs.JointTrajectory,
                                          contract.ACTION_CHUNK_TOPIC, 10)
        self._timing_pub = self.create_publisher(std_msgs.String, contract.CHUNK_TIMING_TOPIC,
                                                 100)
        self._subscribe(inputs)
        self.create_timer(1.0 / p['tick_rate_hz'], self._tick)
        self._diag = Diagnostics(self)

    def _subscribe(self, inputs) -> None:
        sub, latched = self.create_subscription, ros.qos_profile_latched
        sub(sensor_msgs.Image, self._primary.color_topic, self._obs.add_color, 2)
        for cam in self._extra_cameras:
            sub(sensor_msgs.Image, cam.color_topic,
                lambda msg, name=cam.name: self._obs.add_extra(name, msg), 10)
        if inputs.needs_depth:
            sub(sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC, self._obs.add_depth, 10)
        sub(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC, self._on_joints, 50)
        sub(std_msgs.String, contract.INSTRUCTION_TOPIC,
            lambda msg: setattr(self._obs, 'instruction', msg.data), latched)
        sub(sensor_msgs.CameraInfo, self._primary.color_info_topic,
            lambda msg: setattr(self._obs, 'camera_info', msg), 2)
        sub(std_msgs.Header, contract.EPISODE_START_TOPIC, self._on_episode_start, latched)
        if self._env_objects:
            from vla_nodes.ros.msgs import tf2_msgs, vision_msgs
            sub(vision_msgs.Detection3DArray, self.p['objects_topic'], self._obs.add_objects, 10)
            sub(tf2_msgs.TFMessage, contract.TF_STATIC_TOPIC, self._camera_poses.add, latched)

    @property
    def last_env_state(self):
        """The object poses # (E,) of the last observation (None before one)."""
        return self._matcher.last_env_state

    def _new_scheduler(self) -> ChunkScheduler:
        rate = self.p['inference_rate_hz']
        return ChunkScheduler(margin_s=self.p['horizon_margin_s'],
                              min_period_s=1.0 / self.p['tick_rate_hz'],
                              max_period_s=1.0 / rate if rate > 0 else 0.0)

    def expected_contract(self) -> dict:
        """What this robot requires of a checkpoint (policy/checkpoint.py contract fields)."""
        return expected_contract(self.p, self._joints)

    def _on_joints(self, msg) -> None:
        try:
            q = joint_positions(msg, self._joints).astype(np.float32)
        except ValueError as err:
            self.get_logger().warning(f'joint state dropped: {err}', throttle_duration_sec=5.0)
            return
        self._obs.add_state(stamp_to_ns(msg.header.stamp), q)

    def _on_episode_start(self, msg) -> None:
        self._episode_start_ns = (stamp_to_ns(msg.stamp)
                                  or self.get_clock().now().nanoseconds)  # 0: now
        self._matcher.start_episode(self._episode_start_ns)
        self.scheduler = self._new_scheduler()
        if self._pending is not None or self._release_timer is not None:
            self.stats['dropped_previous_episode'] += 1
            self._drop_pending()
            self._busy.clear()
        # A worker still running (real time) finishes; _publish drops its chunk.

    def _tick(self) -> None:
        now_ns = self.get_clock().now().nanoseconds
        if self._busy.is_set():
            self.stats['skipped_busy'] += 1
            return
        if not self.scheduler.should_request(now_ns / 1e9):
            return
        matched, why = self._matcher.next(now_ns)
        if matched is None:
            if why:
                self._diag.set(WARN, why, **self.stats)
            return
        self.scheduler.on_request(now_ns / 1e9)
        self._busy.set()
        if self.p['inference_delay_s'] < 0:
            self._worker.submit(self._infer_and_publish, matched)
        else:
            self._infer_and_hold(matched, now_ns)

    def _infer_and_publish(self, matched) -> None:
        """Real time, on the worker: publish as soon as the model is done."""
        try:
            out = self._infer(*matched)
            if out is not None:
                self._publish(*out)
        finally:
            self._busy.clear()

    def _infer_and_hold(self, matched, now_ns: int) -> None:
        """Lock-step: infer on the worker, publish at observation time + inference_delay_s.

        Simulated time runs on meanwhile (the model on one core, the simulation on the other),
        and the release, a timer on the simulated clock, waits for the model: the same chunk at
        the same simulated instant however long the model took.
        """
        self._pending = self._worker.submit(self._infer, *matched)
        wait_ns = matched[1] + int(round(self.p['inference_delay_s'] * 1e9)) - now_ns
        if wait_ns <= 0:
            self._release()
        else:
            self._release_timer = self.create_timer(wait_ns / 1e9, self._release)

    def _release(self) -> None:
        pending = self._pending
        self._drop_pending()
        out = pending.result() if pending is not None else None
        if out is not None:
            self._publish(*out)
        self._busy.clear()

    def _drop_pending(self) -> None:
        if self._release_timer is not None:
            self.destroy_timer(self._release_timer)
        if self._pending is not None:
            self._pending.cancel()  # one still running finishes unread
        self._pending, self._release_timer = None, None

    def _infer(self, obs, stamp_ns):
        """(actions (H, 7), stamp ns, model ms), or None: inference failed or was not finite."""
        try:
            start = time.perf_counter()
            actions = np.asarray(self._policy.infer(obs)['actions'], dtype=float)
            infer_ms = (time.perf_counter() - start) * 1e3
        except Exception as err:  # a bad frame must not kill the worker: report and go on
            self.stats['errors'] += 1
            self.get_logger().error(f'inference failed: {err}', throttle_duration_sec=2.0)
            self._diag.set(ERROR, f'inference failed: {err}')
            return None
        if not np.all(np.isfinite(actions)):
            self.stats['rejected_non_finite'] += 1
            self._diag.set(ERROR, 'policy produced NaN/Inf actions: chunk dropped')
            return None
        return actions, stamp_ns, infer_ms

    def _publish(self, actions, stamp_ns, infer_ms) -> None:
        if stamp_ns < self._episode_start_ns:  # computed from the previous episode
            self.stats['dropped_previous_episode'] += 1
            return
        if self.p['dry_run']:
            self.stats['dry_run_chunks'] += 1
            self.get_logger().info(
                f'dry_run: would send a {len(actions)}-step chunk, first target '
                f'{np.round(actions[0], 3).tolist()}', throttle_duration_sec=2.0)
        else:
            self._pub.publish(chunk_msg(actions, ros.Time(nanoseconds=stamp_ns).to_msg(),
                                        self._joints, self._rate_hz))
            self.stats['chunks'] += 1
        now_ns = self.get_clock().now().nanoseconds
        delay_s = (now_ns - stamp_ns) / 1e9
        self.scheduler.record_delay(delay_s)
        self.scheduler.on_chunk(stamp_ns / 1e9, self._chunk_s)
        self.infer_ms.append(infer_ms)
        self.delays_s.append(delay_s)
        self.last_chunk = (stamp_ns, actions)
        self._timing_pub.publish(std_msgs.String(data=json.dumps({
            'stamp_ns': int(stamp_ns), 'infer_ms': float(infer_ms), 'delay_s': float(delay_s),
            'published': not self.p['dry_run']})))
        self._diag.set(OK, 'dry run: logging chunks' if self.p['dry_run'] else
                       'publishing chunks', infer_ms=float(infer_ms), delay_s=float(delay_s),
                       chunk_age_s=float(delay_s), busy=int(self._busy.is_set()),
                       expected_delay_s=self.scheduler.expected_delay_s,
                       remaining_s=self.scheduler.remaining_s(now_ns / 1e9), **self.stats)

    def destroy_node(self):
        self._worker.shutdown(wait=True)
        super().destroy_node()


def observation_seed(stamp_ns: int) -> int:
    """Sampling noise seed derived from the observation time: a recorded chunk is reproducible."""
    return int(stamp_ns % (2**31 - 1))


def main(args=None):
    run(PolicyNode, args)
