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

"""Object poses as a policy input: LeRobot's `observation.environment_state` from `/vla/objects`.

Where it fits: pose_node publishes detections (vision_msgs/Detection3DArray, camera optical
frame); vla-export turns the bag's detections into the dataset feature OBS_ENV_STATE, vla-train
`--env-state` appends it (normalised) to the state the action expert reads, and policy_node
builds the same vector from the latest detections as of each frame's stamp. One function,
`vector`, makes it everywhere, so training and the robot read the same numbers.

Layout: for each object category, in a fixed order (`objects`), its pose in base_link: x, y, z
(m) and, for an object with k-fold symmetry about the vertical, cos(k yaw), sin(k yaw), which are
the same for every one of its k equivalent yaws and continuous across them (a cube: k = 4).
Feature names are '<category>.<field>' (`feature_names`), and the objects a vector holds are read
back from its names (`objects_of`), so a dataset or a checkpoint says what it needs. A category
missing from a detection message is NaN.
"""

import math

import numpy as np

# Yaw symmetry order about the vertical of the sim's categories (perception/objects.py): a cube
# looks the same every 90 deg, a box every 180 deg, a round plate at every yaw (0: no yaw).
SYMMETRY = {'cube': 4, 'block': 2, 'plate': 0}
DEFAULT_OBJECTS = ('cube',)


def fields(category: str) -> tuple:
    """The per-object fields of `category`."""
    k = SYMMETRY.get(category, 1)
    return ('x', 'y', 'z') + ((f'cos{k}yaw', f'sin{k}yaw') if k else ())


def feature_names(objects=DEFAULT_OBJECTS) -> list:
    """'<category>.<field>' names of the vector, in order."""
    return [f'{c}.{f}' for c in objects for f in fields(c)]


def objects_of(names) -> tuple:
    """The object categories of a vector, in order, from its feature names."""
    return tuple(dict.fromkeys(str(n).split('.', 1)[0] for n in names))


def pose_features(pose: np.ndarray, category: str) -> list:
    """The fields of one object from its (4, 4) pose in base_link."""
    k = SYMMETRY.get(category, 1)
    x, y, z = (float(v) for v in pose[:3, 3])
    yaw = math.atan2(pose[1, 0], pose[0, 0])
    return [x, y, z] + ([math.cos(k * yaw), math.sin(k * yaw)] if k else [])


def detection_poses(msg) -> dict:
    """The poses of a Detection3DArray: {category: (4, 4) pose in the message's frame}.

    The highest score wins when a category is detected twice.
    """
    from vla_nodes.arm.kinematics import xyz_quat_to_pose

    best = {}
    for detection in msg.detections:
        for result in detection.results:
            category, score = result.hypothesis.class_id, float(result.hypothesis.score)
            p, q = result.pose.pose.position, result.pose.pose.orientation
            if category not in best or score > best[category][0]:
                best[category] = (score, xyz_quat_to_pose([p.x, p.y, p.z, q.x, q.y, q.z, q.w]))
    return {category: pose for category, (_, pose) in best.items()}


def vector(poses_in_camera: dict, camera_to_base: np.ndarray, objects=DEFAULT_OBJECTS):
    """The environment state # (E,): `objects`' fields in base_link, NaN for a missing one.

    Args:
        poses_in_camera: {category: (4, 4) pose in the camera optical frame} (detection_poses).
        camera_to_base: (4, 4) camera optical frame in base_link (the calibration, /tf_static).
        objects: categories in the vector's order.
    """
    out = []
    for category in objects:
        pose = poses_in_camera.get(category)
        if pose is None:
            out += [math.nan] * len(fields(category))
        else:
            out += pose_features(np.asarray(camera_to_base) @ pose, category)
    return np.asarray(out, dtype=np.float32)


def from_detections(msg, camera_to_base: np.ndarray, objects=DEFAULT_OBJECTS) -> np.ndarray:
    """`vector` of one Detection3DArray message (camera optical frame)."""
    return vector(detection_poses(msg), camera_to_base, objects)


def hold_last(values: np.ndarray) -> np.ndarray:
    """Each object's fields carried forward over the rows where it was not detected.

    An object stays where it was last seen (occluded by the gripper while grasped, for example).
    Rows before its first detection stay NaN. # (N, E) -> (N, E)
    """
    out = np.array(values, dtype=np.float32, copy=True)
    for column in out.T:
        seen = np.flatnonzero(np.isfinite(column))
        if seen.size:
            index = np.maximum.accumulate(np.where(np.isfinite(column),
                                                   np.arange(column.size), -1))
            column[index >= 0] = column[index[index >= 0]]
    return out
