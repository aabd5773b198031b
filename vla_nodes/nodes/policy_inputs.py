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

"""What policy_node feeds its policy: observations matched in time, and the chunk it publishes.

Observations are assembled around one colour frame: the depth frame with the same stamp (when the
policy reads depth), the joint state as of that stamp (never a newer one), each further camera's
latest frame stamped at most `max_camera_skew_s` before it (a checkpoint trained on several
cameras, the primary first), and each object's latest pose from pose_node's /vla/objects stamped
at or before the frame (once one at or after it has come) and at most `max_object_age_s` before
it, put in base_link with /tf_static (perception/env_state.py, as vla-export does). So an
observation is exactly what the robot saw at one instant and can be replayed from a bag. These
are the node's message-level helpers (ROS messages in, the policy's numpy dict out;
policy/policy.py keys); `subscribe` wires the node's input topics into them.
"""

import bisect
import collections
import threading

import numpy as np

from vla_nodes import contract, ros
from vla_nodes.ros import image
from vla_nodes.ros.convert import joint_positions
from vla_nodes.ros.msgs import sensor_msgs, stamp_to_ns, std_msgs, trajectory_msgs


class ObservationBuffer:
    """Latest colour frame plus the depth and joint states needed to match it in time.

    With `needs_depth` False (a checkpoint that reads no depth) a frame is complete without one:
    a robot without a depth camera runs such a policy.
    """

    def __init__(self, state_history: int = 400, depth_history: int = 10,
                 needs_depth: bool = True, max_object_age_ns: int | None = None):
        self.needs_depth = needs_depth
        # An object pose older than this (before the frame) is not used: a dead pose_node must
        # not feed the policy a stale pose. None = no limit.
        self.max_object_age_ns = max_object_age_ns
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
        self.frame_period_ns = 0  # between the last two colour frames (0 before two)

    def start_episode(self, stamp_ns: int) -> None:
        """Forget every frame and state; refuse those stamped before `stamp_ns` from now on."""
        with self._lock:
            self._floor_ns = stamp_ns
            self.color = None  # the frame period stays: the camera's rate does not change
            self._extra.clear()
            self._objects.clear()
            self._depth.clear()
            self._state_stamps.clear()
            self._states.clear()

    def add_color(self, msg) -> None:
        with self._lock:
            stamp = stamp_to_ns(msg.header.stamp)
            if stamp < self._floor_ns:
                return
            if self.color is not None:
                period = stamp - stamp_to_ns(self.color.header.stamp)
                self.frame_period_ns = period if 0 < period < 10**9 else self.frame_period_ns
            self.color = msg

    def add_extra(self, camera: str, msg) -> None:
        """A further camera's colour frame."""
        with self._lock:
            if stamp_to_ns(msg.header.stamp) >= self._floor_ns:
                self._extra[camera].append(msg)

    def extra_as_of(self, cameras, stamp_ns: int, max_skew_ns: int, now_ns: int):
        """The other views of the primary frame's instant, never a later frame.

        Returns ({camera: its latest frame stamped in [stamp - max_skew, stamp]}, [cameras
        without one]). An older frame than the primary's is final only once the clock has
        passed the primary's stamp or the camera sent a later frame: in lock-step both cameras'
        frames of one instant arrive in either order, and taking the previous wrist frame when
        the scene frame came first made the episode depend on that order. On a robot the clock
        has always moved on (frames arrive after their stamp), so nothing waits.
        """
        found, missing = {}, []
        with self._lock:
            for camera in cameras:
                frames = [(stamp_to_ns(m.header.stamp), m) for m in self._extra.get(camera, ())]
                ok = [(t, m) for t, m in frames if 0 <= stamp_ns - t <= max_skew_ns]
                if not ok:
                    missing.append(camera)
                    continue
                newest, frame = max(ok, key=lambda pair: pair[0])
                later = any(t > stamp_ns for t, _ in frames)
                if newest == stamp_ns or now_ns > stamp_ns or later:
                    found[camera] = frame
                else:  # this instant's frame may still be on its way
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
        each stamped at or before `stamp_ns` and at most the max object age before it,
        [categories without one]); nothing until a detection stamped at or after `stamp_ns`
        arrived (pose_node may skip frames: then its next one settles this frame's poses).
        """
        from vla_nodes.perception.env_state import detection_poses
        found = {}
        oldest = -1 if self.max_object_age_ns is None else stamp_ns - self.max_object_age_ns
        with self._lock:
            # As the joint state: final only once pose_node has answered for this frame or a
            # later one. Taking the previous frame's poses when they came first made the
            # observation depend on which message of a lock-step step arrived first.
            if not any(stamp_to_ns(m.header.stamp) >= stamp_ns for m in self._objects):
                return {}, list(categories)
            msgs = sorted((m for m in self._objects
                           if oldest <= stamp_to_ns(m.header.stamp) <= stamp_ns),
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


class ObservationMatcher:
    """The next observation for the policy: the latest complete frame not asked about before.

    Complete means: the primary frame with its depth (when read) and the joint state as of its
    stamp (ObservationBuffer.assemble), each further camera's frame at most `max_skew_s`
    before it, and the objects' poses at most the buffer's max object age before it, put in
    base_link (CameraPoses). A frame older than `max_age_s` is dropped: the driver then holds.
    """

    def __init__(self, buffer: ObservationBuffer, extra_cameras, env_objects, camera_poses,
                 max_skew_s: float, max_age_s: float, objects_topic: str):
        self.buffer, self.camera_poses = buffer, camera_poses
        self.extra_cameras, self.env_objects = tuple(extra_cameras), tuple(env_objects)
        self._image_keys = {c.name: c.image_key for c in self.extra_cameras}
        self.max_skew_ns, self.max_age_ns = int(max_skew_s * 1e9), int(max_age_s * 1e9)
        self.objects_topic = objects_topic
        self.stats = collections.Counter()
        self.last_stamp = None
        self.last_env_state = None  # the object poses # (E,) of the last observation

    def start_episode(self, stamp_ns: int) -> None:
        self.buffer.start_episode(stamp_ns)
        self.last_stamp = None

    def next(self, now_ns: int) -> tuple:
        """(((observation dict, its stamp ns), ''), or (None, why not; '' for no new frame)."""
        assembled = self.buffer.assemble()
        if assembled is None:
            return None, ('waiting for colour, depth and joint states' if self.buffer.needs_depth
                          else 'waiting for colour and joint states')
        color, depth, state, _ = assembled
        stamp_ns = stamp_to_ns(color.header.stamp)
        if stamp_ns == self.last_stamp:
            return None, ''  # no new frame since the last request: wait for one
        extras, missing = self.buffer.extra_as_of([c.name for c in self.extra_cameras], stamp_ns,
                                                  self.max_skew_ns, now_ns)
        if missing:
            return None, 'waiting for cameras ' + ', '.join(
                f'{c.name} ({c.color_topic})' for c in self.extra_cameras if c.name in missing)
        env = None
        if self.env_objects:
            env, why = self._env_state(stamp_ns)
            if env is None:
                return None, why
        self.last_stamp = stamp_ns
        if now_ns - stamp_ns > self.max_age_ns:
            self.stats['dropped_stale'] += 1
            return None, f'observation stale ({(now_ns - stamp_ns) / 1e9:.2f} s old): holding'
        return (observation(color, depth, state, self.buffer.instruction,
                            {self._image_keys[n]: m for n, m in extras.items()}, env,
                            self.buffer.camera_info), stamp_ns), ''

    def _env_state(self, stamp_ns: int) -> tuple:
        found, missing = self.buffer.objects_as_of(self.env_objects, stamp_ns)
        if missing:
            age_ns = self.buffer.max_object_age_ns
            return None, (f'waiting for poses of {missing} on {self.objects_topic} (pose_node)'
                          + ('' if age_ns is None else f' at most {age_ns / 1e9:g} s old'))
        env, why = self.camera_poses.env_state(found, self.env_objects)
        if env is not None:
            self.last_env_state = env
        return env, why


class CameraPoses:
    """base_link -> camera frame transforms from /tf_static (the calibration)."""

    def __init__(self):
        self.in_base = {}  # frame_id -> (4, 4) pose in base_link

    def add(self, msg) -> None:
        from vla_nodes.arm.kinematics import xyz_quat_to_pose
        for tf in msg.transforms:
            if tf.header.frame_id.lstrip('/') == contract.BASE_FRAME:
                t, r = tf.transform.translation, tf.transform.rotation
                self.in_base[tf.child_frame_id.lstrip('/')] = xyz_quat_to_pose(
                    [t.x, t.y, t.z, r.x, r.y, r.z, r.w])

    def env_state(self, found: dict, objects) -> tuple:
        """(object poses # (E,) in base_link, '') from objects_as_of's found, or (None, why)."""
        from vla_nodes.perception.env_state import vector
        frames = {frame.lstrip('/') for frame, _ in found.values()}
        unknown = [f for f in frames if f not in self.in_base]
        if unknown:
            return None, (f'waiting for the {contract.BASE_FRAME} -> {unknown} transform on '
                          f'{contract.TF_STATIC_TOPIC} (the calibration)')
        in_base = {c: self.in_base[f.lstrip('/')] @ pose for c, (f, pose) in found.items()}
        return vector(in_base, np.eye(4), objects), ''


def subscribe(node, matcher: ObservationMatcher, primary, needs_depth: bool, joints,
              on_episode_start, on_input=lambda: None) -> None:
    """Feed `matcher`'s buffer from every topic the policy reads; episode starts to a callback.

    Args:
        node: the policy node.
        matcher: its ObservationMatcher (buffer, further cameras, objects, camera poses).
        primary: the primary contract.Camera (its frames trigger observations).
        needs_depth: whether the policy reads depth.
        joints: the joint names, in the policy's order.
        on_episode_start: called with each std_msgs/Header on contract.EPISODE_START_TOPIC.
        on_input: called after each message that can complete an observation (frames, depth,
            joint states, object poses), so the node can act on it at once.
    """
    obs, latched = matcher.buffer, ros.qos_profile_latched

    def sub(msg_type, topic, add, depth):
        def callback(msg):
            add(msg)
            on_input()
        node.create_subscription(msg_type, topic, callback, depth)
    sub(sensor_msgs.Image, primary.color_topic, obs.add_color, 2)
    for cam in matcher.extra_cameras:
        sub(sensor_msgs.Image, cam.color_topic,
            lambda msg, name=cam.name: obs.add_extra(name, msg), 10)
    if needs_depth:
        sub(sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC, obs.add_depth, 10)
    sub(sensor_msgs.JointState, contract.JOINT_STATES_TOPIC,
        lambda msg: _add_joints(node, obs, joints, msg), 50)
    plain = node.create_subscription
    plain(std_msgs.String, contract.INSTRUCTION_TOPIC,
          lambda msg: setattr(obs, 'instruction', msg.data), latched)
    plain(sensor_msgs.CameraInfo, primary.color_info_topic,
          lambda msg: setattr(obs, 'camera_info', msg), 2)
    plain(std_msgs.Header, contract.EPISODE_START_TOPIC, on_episode_start, latched)
    if matcher.env_objects:
        from vla_nodes.ros.msgs import tf2_msgs, vision_msgs
        sub(vision_msgs.Detection3DArray, matcher.objects_topic, obs.add_objects, 10)
        plain(tf2_msgs.TFMessage, contract.TF_STATIC_TOPIC, matcher.camera_poses.add, latched)


def _add_joints(node, obs: ObservationBuffer, joints, msg) -> None:
    try:
        q = joint_positions(msg, joints).astype(np.float32)
    except ValueError as err:
        node.get_logger().warning(f'joint state dropped: {err}', throttle_duration_sec=5.0)
        return
    obs.add_state(stamp_to_ns(msg.header.stamp), q)


def observation(color, depth, state, instruction: str, extras: dict, env, camera_info) -> dict:
    """The policy's observation dict from one matched set of messages.

    `extras`: {image key: colour msg} of the further cameras; `env`: the object poses # (E,)
    or None.
    """
    obs = {contract.OBS_IMAGE: image.from_msg(color, 'rgb8'), contract.OBS_STATE: state,
           contract.OBS_INSTRUCTION: instruction,
           'seed': observation_seed(stamp_to_ns(color.header.stamp))}
    if depth is not None:
        obs[contract.OBS_DEPTH] = image.from_msg(depth)
    for key, msg in extras.items():
        obs[key] = image.from_msg(msg, 'rgb8')
    if env is not None:
        obs[contract.OBS_ENV_STATE] = env
    k = frame_intrinsics(camera_info, color)
    if k is not None:
        obs[contract.OBS_INTRINSICS] = k
    return obs


def chunk_msg(actions: np.ndarray, stamp, joints, rate_hz: float):
    """The JointTrajectory of a chunk: stamped at its observation, step k at chunk_step_time_s."""
    msg = trajectory_msgs.JointTrajectory()
    msg.header.stamp = stamp
    msg.header.frame_id = contract.BASE_FRAME
    msg.joint_names = list(joints)
    for k, q in enumerate(actions):
        point = trajectory_msgs.JointTrajectoryPoint(positions=[float(v) for v in q])
        point.time_from_start = ros.Duration(
            seconds=contract.chunk_step_time_s(k, rate_hz)).to_msg()
        msg.points.append(point)
    return msg


def observation_seed(stamp_ns: int) -> int:
    """Sampling noise seed derived from the observation time: a recorded chunk is reproducible."""
    return int(stamp_ns % (2**31 - 1))


def expected_contract(params: dict, joints) -> dict:
    """What a robot with these policy_node parameters requires of a checkpoint's contract."""
    expected = {'joint_names': list(joints),
                'cameras': [c.name for c in contract.cameras(params['cameras'])],
                'objects': bool(params['objects_topic'])}
    if params['action_rate_hz']:  # 0: the checkpoint's
        expected['action_rate_hz'] = float(params['action_rate_hz'])
    size = list(params['expected_image_size'])
    if len(size) != 2:
        raise ValueError(f'expected_image_size must be [height, width], got {size}')
    if any(size):
        expected['image_size'] = [int(v) for v in size]
    return expected


def load_policy(params: dict, expected: dict, logger):
    """The checkpoint's policy, checked against `expected`; without one, the random demo.

    With `inference_process` the model runs in a child process (policy/subprocess_policy.py).
    """
    args = ({k: params[k] for k in ('checkpoint', 'device', 'seed', 'torch_threads')}, expected)
    if params['inference_process']:
        from vla_nodes.policy.subprocess_policy import SubprocessPolicy
        policy = SubprocessPolicy(build_policy, args)
    else:
        policy = build_policy(*args)
    if params['checkpoint']:
        logger.info(f"loaded checkpoint {params['checkpoint']}: contract {policy.contract}")
    else:
        logger.warning('no checkpoint given: running a tiny RANDOM-WEIGHT model (the skeleton '
                       'demo). Train one with vla-train and set checkpoint:=<dir>.')
    return policy


def build_policy(params: dict, expected: dict):
    """A VLAPolicy from policy_node's `checkpoint`, `device`, `seed` and `torch_threads`."""
    import torch
    from vla_nodes.policy.policy import VLAPolicy
    if params['torch_threads'] > 0:
        torch.set_num_threads(params['torch_threads'])
    if params['checkpoint']:
        return VLAPolicy.from_checkpoint(params['checkpoint'], device=params['device'],
                                         expected_contract=expected)
    return VLAPolicy.random_init(seed=params['seed'])
