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

Timing (policy/runner.py): the ChunkScheduler says when to request a chunk, so the next one lands
before the current one ends. It is asked as soon as an observation is complete (the last of its
frame, depth, joint state and poses arrived): when a request falls due before the next frame,
the model starts on this one at once, so a chunk is as fresh as the model allows (waiting for a
20 Hz tick and taking the newest frame then cost ~45 ms of observation -> chunk, measured by
bench/bench_obs_to_chunk.py). A tick at `tick_rate_hz` reports what is missing and catches
what the inputs did not trigger. Real time (`inference_delay_s` -1,
robots): published when the model is done. Lock-step simulation (>= 0): published at
observation time + that delay on the simulated clock (nodes/policy_release.py). On
`/vla/episode_start` it forgets observations, schedule and pending chunk, and never publishes a
chunk observed before the start (nodes/policy_chunks.py). Each chunk's model time and delay go
on `/vla/chunk_timing`. `dry_run` publishes nothing and logs what would have been sent.
"""

from vla_nodes import contract, ros
from vla_nodes.nodes import run
from vla_nodes.nodes.diagnostics import Diagnostics, WARN
from vla_nodes.nodes.parameters import declare_parameters
from vla_nodes.nodes.policy_chunks import PolicyChunks
from vla_nodes.nodes.policy_inputs import (CameraPoses, expected_contract, load_policy,
                                           ObservationBuffer, ObservationMatcher, subscribe)
from vla_nodes.nodes.policy_release import ChunkRelease
from vla_nodes.ros.msgs import stamp_to_ns

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
    # The model in a child process (policy/subprocess_policy.py): it no longer shares the GIL
    # with the node, so in lock-step the simulation runs on while it infers.
    'inference_process': False,
    # -1: real time (worker thread). >= 0: lock-step, the chunk is published this long (s,
    # simulated) after its observation (vla-eval's default: evaluate.INFERENCE_DELAY_S).
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
        obs = ObservationBuffer(needs_depth=inputs.needs_depth,
                                max_object_age_ns=int(p['max_object_age_s'] * 1e9))
        self._matcher = ObservationMatcher(
            obs, cameras[1:], inputs.env_objects, CameraPoses(), max_skew_s=p['max_camera_skew_s'],
            max_age_s=p['max_observation_age_s'], objects_topic=p['objects_topic'])
        self.stats = self._matcher.stats  # counts of drops and chunks, for diagnostics
        self._diag = Diagnostics(self)
        self._chunks = PolicyChunks(self, self._policy, self._joints, self._rate_hz, p,
                                    self.stats, self._diag, lambda: self._release.busy)
        self._release = ChunkRelease(self, self._chunks.infer, self._chunks.publish,
                                     p['inference_delay_s'])
        # Recent model times (ms) and delays (s): for tests; the node publishes them too.
        self.infer_ms, self.delays_s = self._chunks.infer_ms, self._chunks.delays_s
        subscribe(self, self._matcher, cameras[0], inputs.needs_depth, self._joints,
                  self._on_episode_start, self._on_input)
        self.create_timer(1.0 / p['tick_rate_hz'], self._tick)

    @property
    def last_env_state(self):
        """The object poses # (E,) of the last observation (None before one)."""
        return self._matcher.last_env_state

    @property
    def last_chunk(self):
        """(stamp ns, actions (H, 7)) of the last chunk (or dry-run one); None before one."""
        return self._chunks.last_chunk

    def expected_contract(self) -> dict:
        """What this robot requires of a checkpoint (policy/checkpoint.py contract fields)."""
        return expected_contract(self.p, self._joints)

    def _on_episode_start(self, msg) -> None:
        start_ns = stamp_to_ns(msg.stamp) or self.get_clock().now().nanoseconds  # 0: now
        self._chunks.start_episode(start_ns)
        self._matcher.start_episode(start_ns)
        if self._release.drop():
            self.stats['dropped_previous_episode'] += 1

    def _on_input(self) -> None:
        """An input arrived: request on the newest frame if a request falls due before the next.

        Asked at the next frame's stamp, not now: every input of one frame gets the same
        answer. Once the next frame is due, its inputs wait for it: acting on the old frame
        then would depend on which of the step's messages came first (in lock-step, a
        different episode from the same seed).
        """
        color = self._matcher.buffer.color
        if color is None:
            return
        period_ns = self._matcher.buffer.frame_period_ns  # 0 until two frames came
        next_frame_ns = stamp_to_ns(color.header.stamp) + period_ns
        if period_ns and self.get_clock().now().nanoseconds >= next_frame_ns:
            return
        self._request(next_frame_ns, report=False)

    def _tick(self) -> None:
        self._request(0, report=True)

    def _request(self, due_ns: int, report: bool) -> None:
        """Submit the newest complete observation if the scheduler wants a chunk by `due_ns`.

        `due_ns` earlier than now means now. `report`: count a busy skip and say what is missing
        (the tick's job; the inputs call this hundreds of times a second).
        """
        now_ns = self.get_clock().now().nanoseconds
        if self._release.busy:
            if report:
                self.stats['skipped_busy'] += 1
            return
        scheduler = self._chunks.scheduler
        if not scheduler.should_request(max(now_ns, due_ns) / 1e9):
            return
        matched, why = self._matcher.next(now_ns)
        if matched is None:
            if why and report:
                self._diag.set(WARN, why, **self.stats)
            return
        scheduler.on_request(now_ns / 1e9)
        self._release.submit((*matched, now_ns), now_ns)

    def destroy_node(self):
        self._release.shutdown()
        if hasattr(self._policy, 'close'):
            self._policy.close()
        super().destroy_node()


def main(args=None):
    run(PolicyNode, args)
