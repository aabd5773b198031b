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


"""vla-export's settings, the streams it exports and its error."""

from dataclasses import dataclass

from vla_nodes import contract
from vla_nodes.perception import env_state
from vla_nodes.record.lerobot_depth import DEPTH_HEVC12


EE_POSE_NAMES = ('x', 'y', 'z', 'qx', 'qy', 'qz', 'qw')
VECTOR_KINDS = ('joints', 'pose', 'objects')  # streams that become parquet columns


class ExportError(RuntimeError):
    """Bags that cannot be exported as asked; the message says what to do."""


@dataclass(frozen=True)
class Camera:
    """One RGB-D camera's topics and the dataset keys they become (None: no depth)."""

    image_key: str = contract.OBS_IMAGE
    depth_key: str | None = contract.OBS_DEPTH
    color_topic: str = contract.COLOR_TOPIC
    color_info_topic: str = contract.COLOR_INFO_TOPIC
    depth_topic: str = contract.DEPTH_TOPIC
    depth_info_topic: str = contract.DEPTH_INFO_TOPIC


@dataclass(frozen=True)
class ExportConfig:
    """How bags become a dataset.

    Attributes:
        fps: sample rate (Hz), an integer as LeRobot expects; None = the first camera's rate in
            the first bag (camera_rate), so rows do not repeat frames.
        max_age_s: freshness window (s); 0.1 s is 3 camera frames or 20 joint states.
        max_stale_fraction: skip an episode when more of its rows than this are stale.
        cameras: the cameras to export (contract.Camera, or Camera for other topics); the
            first one sets the grid's phase. A camera's depth is exported when the first bag
            has its depth topic (then every bag must have it).
        task: task text for every frame; None reads /vla/instruction, else the bag's 'task'.
        robot_type: info.json robot_type; None takes the first bag's 'robot' metadata.
        crf: H.264 quality of the colour videos (lower is better and larger; 23 is x264's).
        env_objects: object categories of observation.environment_state, in order (exported
            when the first bag has /vla/objects); () = none.
        depth_codec: 'hevc12-log' (LeRobot's depth video; LeRobot reads it) or 'ffv1-mm16'
            (lossless 16-bit millimetres; LeRobot cannot read it); lerobot_depth.DEPTH_CODECS.
        progress: show a progress bar over episodes.
    """

    fps: int | None = None
    max_age_s: float = 0.1
    max_stale_fraction: float = 0.1
    cameras: tuple = (contract.SCENE_CAMERA,)
    task: str | None = None
    robot_type: str | None = None
    crf: int = 23
    depth_codec: str = DEPTH_HEVC12
    env_objects: tuple = env_state.DEFAULT_OBJECTS
    progress: bool = True


@dataclass(frozen=True)
class Stream:
    key: str     # dataset feature key
    topic: str
    kind: str    # 'joints' | 'pose' | 'rgb8' | '16UC1'
    why: str     # what it is, for error messages
