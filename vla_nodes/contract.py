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

"""The suite's vocabulary, said once: joint names, units, limits, topics, rates and keys.

Every node, the simulator, the recorder and the model code read their defaults from here, so a
topic name or a unit is never spelled twice. Units: joints in radians, gripper opening in metres,
camera depth uint16 millimetres (0 = invalid), metric depth float32 metres (NaN = invalid).
"""

from dataclasses import dataclass
import math

# --- joints -------------------------------------------------------------------------------------
ARM_JOINTS = ('joint1', 'joint2', 'joint3', 'joint4', 'joint5', 'joint6')
GRIPPER_JOINT = 'gripper'
JOINT_NAMES = ARM_JOINTS + (GRIPPER_JOINT,)


@dataclass(frozen=True)
class JointLimit:
    """Closed position interval of one joint (rad, or m for the gripper)."""

    lower: float
    upper: float


def _deg(lo: float, hi: float) -> JointLimit:
    return JointLimit(math.radians(lo), math.radians(hi))


# piper_sdk documented soft limits (C_PiperInterface_V2.JointCtrl docstring), in degrees.
PIPER_SDK_LIMITS = {
    'joint1': _deg(-150.0, 150.0),
    'joint2': _deg(0.0, 180.0),
    'joint3': _deg(-170.0, 0.0),
    'joint4': _deg(-100.0, 100.0),
    'joint5': _deg(-70.0, 70.0),
    'joint6': _deg(-120.0, 120.0),
    'gripper': JointLimit(0.0, 0.07),
}

# mujoco_menagerie agilex_piper/piper.xml joint ranges (rad); gripper = two fingers x 0.035 m.
# joint3 is -2.967 (-170 deg) as in AgileX's URDF and piper_sdk's C_PiperParamManager:
# menagerie's -2.697 is a transposed-digit typo that would cost 15.5 deg of joint 3.
PIPER_MODEL_LIMITS = {
    'joint1': JointLimit(-2.618, 2.618),
    'joint2': JointLimit(0.0, 3.14),
    'joint3': JointLimit(-2.967, 0.0),
    'joint4': JointLimit(-1.832, 1.832),
    'joint5': JointLimit(-1.22, 1.22),
    'joint6': JointLimit(-3.14, 3.14),
    'gripper': JointLimit(0.0, 0.07),
}


def intersect_limits(*tables: dict) -> dict:
    """Per-joint intersection of several limit tables: the safe envelope (DESIGN.md section 7)."""
    names = tables[0].keys()
    return {
        n: JointLimit(max(t[n].lower for t in tables), min(t[n].upper for t in tables))
        for n in names
    }


# The envelope every command is clamped to: both the firmware and the model accept it.
PIPER_LIMITS = intersect_limits(PIPER_SDK_LIMITS, PIPER_MODEL_LIMITS)

# A pose in the middle of the workspace, gripper open, camera sees the gripper.
READY_POSITIONS = (0.0, 1.2, -1.0, 0.0, 0.6, 0.0, 0.05)

# --- topics (DESIGN.md section 2) ---------------------------------------------------------------
COLOR_TOPIC = '/camera/camera/color/image_raw'
COLOR_INFO_TOPIC = '/camera/camera/color/camera_info'
DEPTH_TOPIC = '/camera/camera/aligned_depth_to_color/image_raw'
DEPTH_INFO_TOPIC = '/camera/camera/aligned_depth_to_color/camera_info'
METRIC_DEPTH_TOPIC = '/vla/depth/image'
# Debug view: the QDepth-VLA tokenizer's reconstruction of the metric depth (32FC1 m).
DEPTH_TOKENS_TOPIC = '/vla/depth/tokens_reconstruction'
EE_POSE_TOPIC = '/vla/ee_pose'
OBJECTS_TOPIC = '/vla/objects'
INSTRUCTION_TOPIC = '/vla/instruction'
ACTION_CHUNK_TOPIC = '/vla/action_chunk'
JOINT_STATES_TOPIC = '/joint_states'
LEADER_JOINT_STATES_TOPIC = '/leader/joint_states'
DIAGNOSTICS_TOPIC = '/diagnostics'
CLOCK_TOPIC = '/clock'
# Single joint targets for the driver (teleop, tests): same units as /joint_states.
JOINT_COMMAND_TOPIC = '/vla/joint_command'
# Simulation episodes: 'running', then 'success' or 'failure' (transient local).
EPISODE_STATUS_TOPIC = '/sim/episode_status'
# How a simulated episode ended (std_msgs/String, JSON, transient local), published by sim_node
# once per episode as it ends: {"seed": int, "status": "success" | "failure", "reason": str,
# "episode_s": simulated s since the reset, "grasp_to_object_m": {object: m from the grasp
# centre}}. Evaluation reads its figures here, not off the simulator.
EPISODE_RESULT_TOPIC = '/sim/episode_result'
# One message per action chunk from policy_node (std_msgs/String, JSON): {"stamp_ns":
# observation stamp, "infer_ms": model time, "delay_s": observation -> chunk on the node's clock,
# "published": false in dry run}. What vla-eval's latency figures are made of.
CHUNK_TIMING_TOPIC = '/vla/chunk_timing'
# Episode boundaries (std_msgs/Header, transient local): its stamp is the first instant of the
# new episode. Published by sim_node on ~/reset, or by anyone resetting a real robot; the driver
# then holds the measured position and nothing observed before the stamp reaches the arm. A zero
# stamp means 'now' on the receiving node's clock (`ros2 topic pub --once` with an empty Header).
EPISODE_START_TOPIC = '/vla/episode_start'
TF_STATIC_TOPIC = '/tf_static'

# Nominal rates (Hz) the recorder audit and the tests compare against.
NOMINAL_RATES = {
    COLOR_TOPIC: 30.0,
    DEPTH_TOPIC: 30.0,
    METRIC_DEPTH_TOPIC: 30.0,
    EE_POSE_TOPIC: 200.0,
    JOINT_STATES_TOPIC: 200.0,
    DIAGNOSTICS_TOPIC: 1.0,
}
# Chunk steps per second when nothing else says: the simulated camera's rate (config/sim.yaml
# camera_rate_hz), at which vla-main exports the sim demos. A checkpoint carries its own rate (its
# dataset fps); policy_node executes chunks at it (`action_rate_hz` 0) or refuses a checkpoint
# whose rate differs from an explicitly set `action_rate_hz`, so a mismatch is never silent.
ACTION_RATE_HZ = 10.0

# --- frames -------------------------------------------------------------------------------------
BASE_FRAME = 'base_link'
CAMERA_FRAME = 'camera_color_optical_frame'

# --- image encodings ----------------------------------------------------------------------------
COLOR_ENCODING = 'rgb8'
CAMERA_DEPTH_ENCODING = '16UC1'  # millimetres, 0 = invalid
METRIC_DEPTH_ENCODING = '32FC1'  # metres, NaN = invalid

# --- observation / action keys (LeRobot names; what reaches a dataset) --------------------------
OBS_IMAGE = 'observation.images.color'
OBS_DEPTH = 'observation.depth'
OBS_IMAGES_PREFIX = 'observation.images.'
OBS_DEPTH_PREFIX = 'observation.depth.'
OBS_STATE = 'observation.state'
OBS_EE_POSE = 'observation.ee_pose'  # end-effector pose in base_link: x y z (m), qx qy qz qw
OBS_INSTRUCTION = 'task'
# Object poses in base_link from /vla/objects (LeRobot's name for privileged / perceived scene
# state): per object x y z (m) and cos/sin of its symmetric yaw (perception/env_state.py).
OBS_ENV_STATE = 'observation.environment_state'
# Per dataset row: false where an observation stream had no sample near the row's time (or an
# object was not seen yet); the exporter writes it, training skips those rows' statistics.
SYNC_OK = 'sync_ok'
# Pinhole K of the colour image, px # (3, 3): from camera_info in a node, from the export's
# features[OBS_IMAGE].info.intrinsics in a dataset; the transforms carry it to the model image.
OBS_INTRINSICS = 'observation.intrinsics'
# Where the camera frame lies inside the model's padded S x S image: (top, left, height, width)
# px (transforms.content_box); training batches carry it so that losses can skip the padding.
OBS_IMAGE_CONTENT = 'observation.image_content'
ACTION = 'action'

# Timing of an action chunk (/vla/action_chunk, stamped with its observation's time): step k is
# meant for observation time + (k + CHUNK_FIRST_STEP) / action rate. Training targets are the
# commands at frames t, t + 1, ... of the observation at frame t (train/data.py), so step 0 is
# the command for the observation's own instant; scheduling it one period later would build a
# 1 / rate lag into every chunk.
CHUNK_FIRST_STEP = 0


def chunk_step_time_s(k: int, action_rate_hz: float) -> float:
    """Seconds after the observation at which chunk step k is executed."""
    return (k + CHUNK_FIRST_STEP) / action_rate_hz


# Message type of every contract topic: the recorder subscribes with these, the tests check them.
# Not EPISODE_START_TOPIC: a bag is one episode, its start is the boundary (std_msgs/Header).
TOPIC_TYPES = {
    COLOR_TOPIC: 'sensor_msgs/msg/Image',
    COLOR_INFO_TOPIC: 'sensor_msgs/msg/CameraInfo',
    DEPTH_TOPIC: 'sensor_msgs/msg/Image',
    DEPTH_INFO_TOPIC: 'sensor_msgs/msg/CameraInfo',
    METRIC_DEPTH_TOPIC: 'sensor_msgs/msg/Image',
    EE_POSE_TOPIC: 'geometry_msgs/msg/PoseStamped',
    OBJECTS_TOPIC: 'vision_msgs/msg/Detection3DArray',
    INSTRUCTION_TOPIC: 'std_msgs/msg/String',
    ACTION_CHUNK_TOPIC: 'trajectory_msgs/msg/JointTrajectory',
    JOINT_STATES_TOPIC: 'sensor_msgs/msg/JointState',
    LEADER_JOINT_STATES_TOPIC: 'sensor_msgs/msg/JointState',
    DIAGNOSTICS_TOPIC: 'diagnostic_msgs/msg/DiagnosticArray',
    CLOCK_TOPIC: 'rosgraph_msgs/msg/Clock',
    TF_STATIC_TOPIC: 'tf2_msgs/msg/TFMessage',
}


# --- cameras (several RGB-D cameras, as real setups have them) -----------------------------------
@dataclass(frozen=True)
class Camera:
    """One RGB-D camera: its realsense-ros names on the wire and its keys in a dataset.

    realsense-ros puts a camera's topics under /<camera_namespace>/<camera_name>/ and names its
    frames <camera_name>_..., so cameras differ by camera_name (distinct TF frames) and share the
    default namespace 'camera'. `name` is the suite's short name (parameters `cameras`, vla-export
    --cameras, checkpoints); the scene camera keeps the single-camera keys (OBS_IMAGE, OBS_DEPTH)
    so that datasets and checkpoints made before there were several cameras stay valid.
    """

    name: str
    camera_name: str
    camera_namespace: str = 'camera'
    image_key: str = ''   # '' = OBS_IMAGES_PREFIX + name
    depth_key: str = ''   # '' = OBS_DEPTH_PREFIX + name

    def __post_init__(self):
        if not self.image_key:
            object.__setattr__(self, 'image_key', OBS_IMAGES_PREFIX + self.name)
        if not self.depth_key:
            object.__setattr__(self, 'depth_key', OBS_DEPTH_PREFIX + self.name)

    @property
    def prefix(self) -> str:
        return f'/{self.camera_namespace}/{self.camera_name}'

    @property
    def color_topic(self) -> str:
        return f'{self.prefix}/color/image_raw'

    @property
    def color_info_topic(self) -> str:
        return f'{self.prefix}/color/camera_info'

    @property
    def depth_topic(self) -> str:
        return f'{self.prefix}/aligned_depth_to_color/image_raw'

    @property
    def depth_info_topic(self) -> str:
        return f'{self.prefix}/aligned_depth_to_color/camera_info'

    @property
    def frame(self) -> str:
        """Its colour optical frame's name, as realsense-ros names it (X right, Y down, Z fwd)."""
        return f'{self.camera_name}_color_optical_frame'


# The fixed scene camera (D455-class) and the wrist camera (D405-class, on link6 beside the
# gripper, as on AgileX Cobot Magic and ALOHA rigs; its mount is in description/generate.py).
SCENE_CAMERA = Camera('scene', 'camera', image_key=OBS_IMAGE, depth_key=OBS_DEPTH)
WRIST_CAMERA = Camera('wrist', 'wrist_camera')
CAMERAS = {c.name: c for c in (SCENE_CAMERA, WRIST_CAMERA)}
DEFAULT_CAMERAS = (SCENE_CAMERA.name,)  # single-camera setups stay the default


def camera(name: str) -> Camera:
    """The camera called `name`: a known one, or a further one named by the same rule.

    Topics /camera/<name>_camera/..., keys observation.images.<name>.
    """
    name = str(name).strip()
    if not name or not name.replace('_', '').isalnum():
        raise ValueError(f'camera name {name!r}: use letters, digits and _ (known: '
                         f'{", ".join(CAMERAS)})')
    return CAMERAS.get(name) or Camera(name, f'{name}_camera')


def cameras(names) -> tuple:
    """Camera objects for names (a list, or 'a,b' text); the first is the primary camera."""
    if isinstance(names, str):
        names = [n for n in names.split(',') if n.strip()]
    found = tuple(camera(n) for n in names)
    if not found or len({c.name for c in found}) != len(found):
        raise ValueError(f'cameras {list(names)!r}: need one or more distinct names')
    return found
