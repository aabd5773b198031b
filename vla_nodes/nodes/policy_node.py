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

"""policy_node: runs a VLA policy on camera, depth, joint state and instruction; publishes chunks.

Observations are assembled around one colour frame: the depth frame with the same stamp (when the
checkpoint reads depth), the joint state as of that stamp (never a newer one) and, for a checkpoint
trained on several cameras (its contract's `cameras`, the primary first), each further camera's
latest frame stamped at most `max_camera_skew_s` before it (a checkpoint needing a camera this
robot lacks, parameter `cameras`, is refused at start-up), and for a checkpoint reading object
poses (its contract's `environment_state`, vla-train --env-state) each object's latest pose from
`objects_topic` (pose_node's /vla/objects) stamped at or before the frame, put in base_link with
/tf_static (perception/env_state.py, as vla-export does; `objects_topic` '' says this robot has no
object poses, and such a checkpoint is refused at start-up); so an observation is exactly what the
robot saw at one instant and can be replayed from a bag. Inference runs on a worker thread, never
in a callback; the chunk is published on `/vla/action_chunk` stamped with the observation time, its
points `1/action_rate_hz` apart, step k at `contract.chunk_step_time_s(k)` (step 0 is the command
for the observation's instant, as in training). A stale camera or state produces no chunk: the
driver then holds.

Timing (`policy/runner.py`): a tick at `tick_rate_hz` asks the ChunkScheduler whether to request a
chunk; it does when the rest of the last chunk is shorter than the measured observation-to-chunk
delay plus `horizon_margin_s` (or `inference_rate_hz` says it is time), so the next chunk lands
before the current one ends and the driver blends the seam. A checkpoint (`checkpoint`, a local
directory) is checked against this robot before it drives anything: joint names, action rate
and, if `expected_image_size` is set, the model's image size; a mismatch refuses to start.
`dry_run` publishes nothing and logs what would have been sent.

Episodes: on `/vla/episode_start` (std_msgs/Header) the node forgets its observations, its
schedule and any chunk waiting to be published, and never publishes a chunk observed before the
stamp (an inference still running for the old episode is dropped when it ends). Lock-step
simulation: `inference_delay_s` >= 0 runs the model in the tick itself (the simulator waits for
it) and publishes the chunk at observation time + that delay on the simulated clock, so latency
still shapes the episode and the episode replays exactly; -1 (the default, for robots and the
real-time graph) runs it on the worker and publishes when done. Diagnostics: inference time,
observation-to-chunk delay, chunk age, busy worker (queue depth), drops for staleness; and each
chunk's model time and observation-to-chunk delay on `/vla/chunk_timing` (JSON, what vla-eval's
latency figures are made of).
"""

import bisect
import collections
import concurrent.futures
import json
import threading
import time

import numpy as np

from vla_nodes import contract, ros
from vla_nodes.nodes import run
from vla_nodes.nodes.diagnostics import Diagnostics, ERROR, OK, WARN
from vla_nodes.policy.runner import ChunkScheduler
from vla_nodes.ros import image
from vla_nodes.ros.msgs import sensor_msgs, stamp_to_ns, std_msgs, trajectory_msgs


class ObservationBuffer:
    """Latest colour frame plus the depth and joint states needed to match it in time.

    With `needs_depth` False (a checkpoint that reads no depth) a frame is complete without one:
    a robot without a depth camera runs such a policy.
    """

    def __init__(self, state_history: int = 400, depth_history: int = 10,
                 needs_depth: bool = True):
        self.needs_depth = needs_depth
        self._lock = threading.Lock()
        self.color = None
        self._depth = collections.OrderedDict()
        self._depth_history = depth_history
        self._state_stamps = collections.deque(maxlen=state_history)
        self._states = collections.deque(maxlen=state_history)
        self.instruction = ''
        self.camera_info = None  # the colour camera's latest CameraInfo (K for ray-map priors)
        # Further cameras' colour frames, newest last: {camera name: deque of msgs}.
        self._extra = collections.defaultdict(lambda: collections.deque(maxlen=depth_history))
        self._objects = collections.deque(maxlen=4 * depth_history)  # Detection3DArray msgs
        self._floor_ns = 0  # the episode start: anything older is from the previous episode

    def start_episode(self, stamp_ns: int) -> None:
        """Forget every frame and state; refuse those stamped before `stamp_ns` from now on."""
        with self._lock:
            self._floor_ns = stamp_ns
            self.color = None
            self._extra.clear()
            self._objects.clear()
            self._depth.clear()
            self._state_stamps.clear()
            self._states.clear()

    def add_color(self, msg) -> None:
        with self._lock:
            if stamp_to_ns(msg.header.stamp) >= self._floor_ns:
                self.color = msg

    def add_extra(self, camera: str, msg) -> None:
        """A further camera's colour frame."""
        with self._lock:
            if stamp_to_ns(msg.header.stamp) >= self._floor_ns:
                self._extra[camera].append(msg)

    def extra_as_of(self, cameras, stamp_ns: int, max_skew_ns: int):
        """The other views of the primary frame's instant, never a later frame.

        Returns ({camera: its latest frame stamped in [stamp - max_skew, stamp]}, [cameras
        without one]).
        """
        found, missing = {}, []
        with self._lock:
            for camera in cameras:
                frames = [m for m in self._extra.get(camera, ())
                          if 0 <= stamp_ns - stamp_to_ns(m.header.stamp) <= max_skew_ns]
                if frames:
                    found[camera] = max(frames, key=lambda m: stamp_to_ns(m.header.stamp))
                else:
                    missing.append(camera)
        return found, missing

    def add_objects(self, msg) -> None:
        """A Detection3DArray (pose_node's /vla/objects)."""
        with self._lock:
            if stamp_to_ns(msg.header.stamp) >= self._floor_ns:
                self._objects.append(msg)

    def objects_as_of(self, categories, stamp_ns: int):
        """The objects' poses as of `stamp_ns`.

        Returns ({category: (frame_id, (4, 4) pose in that frame)} from the latest detection of
        each stamped at or before `stamp_ns`, [categories never detected so far]).
        """
        from vla_nodes.perception.env_state import detection_poses
        found = {}
        with self._lock:
            msgs = sorted((m for m in self._objects if stamp_to_ns(m.header.stamp) <= stamp_ns),
                          key=lambda m: stamp_to_ns(m.header.stamp), reverse=True)
        for msg in msgs:
            for category, pose in detection_poses(msg).items():
                if category in categories and category not in found:
                    found[category] = (msg.header.frame_id, pose)
            if len(found) == len(categories):
                break
        return found, [c for c in categories if c not in found]

    def add_depth(self, msg) -> None:
        with self._lock:
            stamp = stamp_to_ns(msg.header.stamp)
            if stamp < self._floor_ns:
                return
            self._depth[stamp] = msg
            while len(self._depth) > self._depth_history:
                self._depth.popitem(last=False)

    def add_state(self, stamp_ns: int, q: np.ndarray) -> None:
        with self._lock:
            if stamp_ns < self._floor_ns:
                return
            self._state_stamps.append(stamp_ns)
            self._states.append(q)

    def assemble(self):
        """(color msg, depth msg or None, state (7,), state stamp) of the latest frame, or None."""
        with self._lock:
            color = self.color
            if color is None:
                return None
            stamp = stamp_to_ns(color.header.stamp)
            depth = self._depth.get(stamp)
            stamps = list(self._state_stamps)
            # The as-of state is final only once a state at or after the frame has arrived.
            if (depth is None and self.needs_depth) or not stamps or stamps[-1] < stamp:
                return None
            i = bisect.bisect_right(stamps, stamp) - 1
            if i < 0:
                return None
            return color, depth, self._states[i], self._state_stamps[i]


def frame_intrinsics(info, color):
    """K # (3, 3) of a colour frame from its camera's CameraInfo, or None.

    None without CameraInfo, or when it describes another resolution than the frame (then its K
    would place the rays wrongly).
    """
    if info is None or (info.width, info.height) != (color.width, color.height):
        return None
    k = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
    return k if k[2, 2] == 1.0 and np.all(np.isfinite(k)) else None


class PolicyNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('policy_node', **kwargs)
        self.declare_parameter('checkpoint', '')
        self.declare_parameter('device', 'cpu')
        self.declare_parameter('seed', 0)
        # A floor on the request rate (Hz, 0 = none); the execution horizon requests earlier.
        self.declare_parameter('inference_rate_hz', 2.0)
        self.declare_parameter('tick_rate_hz', 20.0)
        self.declare_parameter('horizon_margin_s', 0.1)
        self.declare_parameter('action_rate_hz', 10.0)
        self.declare_parameter('max_observation_age_s', 0.5)
        self.declare_parameter('joint_prefix', '')
        # [height, width] the checkpoint's model must take; [0, 0] accepts any (resize + pad).
        self.declare_parameter('expected_image_size', [0, 0])
        self.declare_parameter('dry_run', False)
        # 1 on small CPUs: torch's spin-waiting threads fight the other nodes for the cores
        # (measured: 21 ms per chunk with 1 thread, 200-500 ms with 2 on a loaded 2-core box).
        self.declare_parameter('torch_threads', 1)
        # -1: real time (worker thread). >= 0: lock-step, the chunk is published this long (s,
        # simulated) after its observation; 0.28 is the graph's measured obs->chunk median.
        self.declare_parameter('inference_delay_s', -1.0)
        # The cameras this robot has (contract names, contract.CAMERAS): a checkpoint that needs
        # another one is refused. Further cameras' frames join the primary frame's observation
        # when stamped at most max_camera_skew_s before it (unsynchronised cameras).
        self.declare_parameter('cameras', list(contract.DEFAULT_CAMERAS))
        self.declare_parameter('max_camera_skew_s', 0.1)
        # Where object poses come from (pose_node's Detection3DArray, camera optical frame); ''
        # = this robot has none: a checkpoint reading them (environment_state) is refused.
        self.declare_parameter('objects_topic', contract.OBJECTS_TOPIC)
        self._joints = [self.get_parameter('joint_prefix').value + j
                        for j in contract.JOINT_NAMES]
        self._rate_hz = self.get_parameter('action_rate_hz').value
        if self._rate_hz <= 0:
            raise ValueError(f'action_rate_hz must be > 0 Hz, got {self._rate_hz}')
        self._dt = 1.0 / self._rate_hz
        self._max_age_ns = int(self.get_parameter('max_observation_age_s').value * 1e9)
        self._dry_run = self.get_parameter('dry_run').value
        self._policy = self._load_policy()
        from vla_nodes.policy.checkpoint import contract_cameras
        needed = contract.cameras(contract_cameras(self._policy.contract))
        self._primary, self._extra_cameras = needed[0], needed[1:]
        self._max_skew_ns = int(self.get_parameter('max_camera_skew_s').value * 1e9)
        from vla_nodes.perception.env_state import objects_of
        from vla_nodes.policy.checkpoint import contract_env_state
        self._env_objects = objects_of(contract_env_state(self._policy.contract))
        self._camera_to_base = {}  # frame_id -> (4, 4) in base_link, from /tf_static
        self._chunk_s = contract.chunk_step_time_s(self._policy.model.config.horizon - 1,
                                                   self._rate_hz)  # its last step
        rate = self.get_parameter('inference_rate_hz').value
        tick_hz = self.get_parameter('tick_rate_hz').value
        self._new_scheduler = lambda: ChunkScheduler(
            margin_s=self.get_parameter('horizon_margin_s').value,
            min_period_s=1.0 / tick_hz, max_period_s=1.0 / rate if rate > 0 else 0.0)
        self.scheduler = self._new_scheduler()
        self._delay_s = self.get_parameter('inference_delay_s').value
        self._needs_depth = bool(self._policy.model.config.needs_depth)
        self._obs = ObservationBuffer(needs_depth=self._needs_depth)
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='policy')
        self._busy = threading.Event()
        self._last_stamp = None
        self._episode_start_ns = 0
        self._pending, self._release_timer = None, None  # lock-step: a chunk not yet due
        self.stats = collections.Counter()
        self.infer_ms = collections.deque(maxlen=1000)  # model time per chunk (ms), recent
        self.delays_s = collections.deque(maxlen=1000)  # observation -> chunk published (s)
        self.last_chunk = None  # (stamp ns, actions (H, 7)) of the last chunk (or dry-run one)
        self.last_env_state = None  # the object poses # (E,) of the last observation
        self._pub = self.create_publisher(trajectory_msgs.JointTrajectory,
                                          contract.ACTION_CHUNK_TOPIC, 10)
        self._timing_pub = self.create_publisher(std_msgs.String, contract.CHUNK_TIMING_TOPIC,
                                                 100)
        self.create_subscription(sensor_msgs.Image, self._primary.color_topic,
                                 self._obs.add_color, 2)
        for cam in self._extra_cameras:
            self.create_subscription(sensor_msgs.Image, cam.color_topic,
                                     lambda msg, name=cam.name: self._obs.add_extra(name, msg),
                                     10)
        if self._needs_depth:
            self.create_subscription(sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC,
                                     self._obs.add_depth, 10)
        self.create_subscription(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC,
                                 self._on_joints, 50)
        self.create_subscription(std_msgs.String, contract.INSTRUCTION_TOPIC,
                                 self._on_instruction, ros.qos_profile_latched)
        self.create_subscription(sensor_msgs.CameraInfo, self._primary.color_info_topic,
                                 self._on_camera_info, 2)
        self.create_subscription(std_msgs.Header, contract.EPISODE_START_TOPIC,
                                 self._on_episode_start, ros.qos_profile_latched)
        if self._env_objects:
            from vla_nodes.ros.msgs import tf2_msgs, vision_msgs
            self.create_subscription(vision_msgs.Detection3DArray,
                                     self.get_parameter('objects_topic').value,
                                     self._obs.add_objects, 10)
            self.create_subscription(tf2_msgs.TFMessage, contract.TF_STATIC_TOPIC,
                                     self._on_tf_static, ros.qos_profile_latched)
        self.create_timer(1.0 / tick_hz, self._tick)
        self._diag = Diagnostics(self)

    def expected_contract(self) -> dict:
        """What this robot requires of a checkpoint (policy/checkpoint.py contract fields)."""
        expected = {'joint_names': list(self._joints), 'action_rate_hz': float(self._rate_hz),
                    'cameras': [c.name for c in contract.cameras(
                        self.get_parameter('cameras').value)],
                    'objects': bool(self.get_parameter('objects_topic').value)}
        size = list(self.get_parameter('expected_image_size').value)
        if len(size) != 2:
            raise ValueError(f'expected_image_size must be [height, width], got {size}')
        if any(size):
            expected['image_size'] = [int(v) for v in size]
        return expected

    def _load_policy(self):
        import torch
        from vla_nodes.policy.policy import VLAPolicy
        if self.get_parameter('torch_threads').value > 0:
            torch.set_num_threads(self.get_parameter('torch_threads').value)
        path = self.get_parameter('checkpoint').value
        if path:
            policy = VLAPolicy.from_checkpoint(path, device=self.get_parameter('device').value,
                                               expected_contract=self.expected_contract())
            self.get_logger().info(f'loaded checkpoint {path}: contract {policy.contract}')
            return policy
        self.get_logger().warning(
            'no checkpoint given: running a tiny RANDOM-WEIGHT model (the skeleton demo). '
            'Train one with vla-train and set checkpoint:=<dir>.')
        return VLAPolicy.random_init(seed=self.get_parameter('seed').value)

    def _on_joints(self, msg) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if all(j in index for j in self._joints) and len(msg.position) == len(msg.name):
            q = np.array([msg.position[index[j]] for j in self._joints], dtype=np.float32)
            self._obs.add_state(stamp_to_ns(msg.header.stamp), q)

    def _on_instruction(self, msg) -> None:
        self._obs.instruction = msg.data

    def _on_camera_info(self, msg) -> None:
        self._obs.camera_info = msg

    def _on_tf_static(self, msg) -> None:
        from vla_nodes.arm.kinematics import xyz_quat_to_pose
        for tf in msg.transforms:
            if tf.header.frame_id.lstrip('/') == contract.BASE_FRAME:
                t, r = tf.transform.translation, tf.transform.rotation
                self._camera_to_base[tf.child_frame_id.lstrip('/')] = xyz_quat_to_pose(
                    [t.x, t.y, t.z, r.x, r.y, r.z, r.w])

    def _env_state(self, stamp_ns: int):
        """(object poses # (E,) as of the frame, or None and why not)."""
        from vla_nodes.perception.env_state import vector
        found, missing = self._obs.objects_as_of(self._env_objects, stamp_ns)
        if missing:
            topic = self.get_parameter('objects_topic').value
            return None, f'waiting for poses of {missing} on {topic} (pose_node)'
        frames = {frame.lstrip('/') for frame, _ in found.values()}
        unknown = [f for f in frames if f not in self._camera_to_base]
        if unknown:
            return None, (f'waiting for the {contract.BASE_FRAME} -> {unknown} transform on '
                          f'{contract.TF_STATIC_TOPIC} (the calibration)')
        in_base = {c: self._camera_to_base[f.lstrip('/')] @ pose for c, (f, pose) in found.items()}
        return vector(in_base, np.eye(4), self._env_objects), ''

    def _on_episode_start(self, msg) -> None:
        self._episode_start_ns = (stamp_to_ns(msg.stamp)
                                  or self.get_clock().now().nanoseconds)  # 0: now
        self._obs.start_episode(self._episode_start_ns)
        self.scheduler = self._new_scheduler()
        self._last_stamp = None
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
        assembled = self._obs.assemble()
        if assembled is None:
            self._diag.set(WARN, 'waiting for colour, depth and joint states' if self._needs_depth
                           else 'waiting for colour and joint states')
            return
        color, depth, state, state_ns = assembled
        stamp_ns = stamp_to_ns(color.header.stamp)
        age_ns = now_ns - stamp_ns
        if stamp_ns == self._last_stamp:
            return  # no new frame since the last request: wait for one
        extras, missing = self._obs.extra_as_of([c.name for c in self._extra_cameras], stamp_ns,
                                                self._max_skew_ns)
        if missing:
            self._diag.set(WARN, 'waiting for cameras ' + ', '.join(
                f'{c.name} ({c.color_topic})' for c in self._extra_cameras if c.name in missing))
            return
        env = None
        if self._env_objects:
            env, why = self._env_state(stamp_ns)
            if env is None:
                self._diag.set(WARN, why)
                return
            self.last_env_state = env
        if age_ns > self._max_age_ns:
            self.stats['dropped_stale'] += 1
            self._last_stamp = stamp_ns
            self._diag.set(WARN, f'observation stale ({age_ns / 1e9:.2f} s old): holding',
                           **self.stats)
            return
        self._last_stamp = stamp_ns
        self.scheduler.on_request(now_ns / 1e9)
        self._busy.set()
        if self._delay_s < 0:
            self._worker.submit(self._infer_and_publish, color, depth, state, stamp_ns, extras,
                                env)
        else:
            self._infer_and_hold(color, depth, state, stamp_ns, now_ns, extras, env)

    def _infer_and_publish(self, color, depth, state, stamp_ns, extras=None, env=None) -> None:
        """Real time, on the worker: publish as soon as the model is done."""
        try:
            out = self._infer(color, depth, state, stamp_ns, extras, env)
            if out is not None:
                self._publish(out[0], color.header, stamp_ns, out[1])
        finally:
            self._busy.clear()

    def _infer_and_hold(self, color, depth, state, stamp_ns, now_ns, extras=None,
                        env=None) -> None:
        """Lock-step, in the tick: infer now, publish at observation time + inference_delay_s."""
        out = self._infer(color, depth, state, stamp_ns, extras, env)
        if out is None:
            self._busy.clear()
            return
        self._pending = (out[0], color.header, stamp_ns, out[1])
        wait_ns = stamp_ns + int(round(self._delay_s * 1e9)) - now_ns
        if wait_ns <= 0:
            self._release()
        else:  # a timer on the node's (simulated) clock: the chunk lands when it is due
            self._release_timer = self.create_timer(wait_ns / 1e9, self._release)

    def _release(self) -> None:
        pending = self._pending
        self._drop_pending()
        if pending is not None:
            self._publish(*pending)
        self._busy.clear()

    def _drop_pending(self) -> None:
        if self._release_timer is not None:
            self.destroy_timer(self._release_timer)
        self._pending, self._release_timer = None, None

    def _infer(self, color, depth, state, stamp_ns, extras=None, env=None):
        """(actions (H, 7), model ms), or None when inference failed or was not finite.

        `extras`: {camera name: colour msg} of the further cameras the checkpoint needs; `env`:
        the object poses # (E,) when it reads them.
        """
        try:
            obs = {contract.OBS_IMAGE: image.from_msg(color, 'rgb8'),
                   contract.OBS_STATE: state,
                   contract.OBS_INSTRUCTION: self._obs.instruction,
                   'seed': observation_seed(stamp_ns)}
            if depth is not None:
                obs[contract.OBS_DEPTH] = image.from_msg(depth)
            for cam in self._extra_cameras:
                obs[cam.image_key] = image.from_msg((extras or {})[cam.name], 'rgb8')
            if env is not None:
                obs[contract.OBS_ENV_STATE] = env
            k = frame_intrinsics(self._obs.camera_info, color)
            if k is not None:
                obs[contract.OBS_INTRINSICS] = k
            start = time.perf_counter()
            result = self._policy.infer(obs)
            infer_ms = (time.perf_counter() - start) * 1e3
            actions = np.asarray(result['actions'], dtype=float)
        except Exception as err:  # a bad frame must not kill the worker: report and go on
            self.stats['errors'] += 1
            self.get_logger().error(f'inference failed: {err}', throttle_duration_sec=2.0)
            self._diag.set(ERROR, f'inference failed: {err}')
            return None
        if not np.all(np.isfinite(actions)):
            self.stats['rejected_non_finite'] += 1
            self._diag.set(ERROR, 'policy produced NaN/Inf actions: chunk dropped')
            return None
        return actions, infer_ms

    def _publish(self, actions, header, stamp_ns, infer_ms) -> None:
        if stamp_ns < self._episode_start_ns:  # computed from the previous episode
            self.stats['dropped_previous_episode'] += 1
            return
        msg = self._chunk_msg(actions, header)
        if self._dry_run:
            self.stats['dry_run_chunks'] += 1
            self.get_logger().info(
                f'dry_run: would send a {len(actions)}-step chunk, first target '
                f'{np.round(actions[0], 3).tolist()}', throttle_duration_sec=2.0)
        else:
            self._pub.publish(msg)
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
            'published': not self._dry_run})))
        self._diag.set(OK, 'dry run: logging chunks' if self._dry_run else 'publishing chunks',
                       infer_ms=float(infer_ms), delay_s=float(delay_s),
                       chunk_age_s=float(delay_s), busy=int(self._busy.is_set()),
                       expected_delay_s=self.scheduler.expected_delay_s,
                       remaining_s=self.scheduler.remaining_s(now_ns / 1e9), **self.stats)

    def _chunk_msg(self, actions: np.ndarray, header):
        msg = trajectory_msgs.JointTrajectory()
        msg.header.stamp = header.stamp
        msg.header.frame_id = contract.BASE_FRAME
        msg.joint_names = list(self._joints)
        for k, q in enumerate(actions):
            point = trajectory_msgs.JointTrajectoryPoint(positions=[float(v) for v in q])
            point.time_from_start = ros.Duration(
                seconds=contract.chunk_step_time_s(k, self._rate_hz)).to_msg()
            msg.points.append(point)
        return msg

    def destroy_node(self):
        self._worker.shutdown(wait=True)
        super().destroy_node()


def observation_seed(stamp_ns: int) -> int:
    """Sampling noise seed derived from the observation time: a recorded chunk is reproducible."""
    return int(stamp_ns % (2**31 - 1))


def main(args=None):
    run(PolicyNode, args)
