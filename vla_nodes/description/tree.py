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

"""A URDF's kinematic tree and its transforms from joint positions (robot_state_publisher's logic).

Pure Python + numpy, no ROS: `robot_state_node` publishes what this computes. As in
robot_state_publisher, fixed joints give static transforms (published once on /tf_static) and
revolute, continuous and prismatic joints give one transform per joint state; a mimic joint
follows `multiplier * position + offset` of the joint it mimics.
"""

from dataclasses import dataclass
from functools import cached_property
import math
import xml.etree.ElementTree as ET

import numpy as np

from vla_nodes.arm.kinematics import quat_from_matrix

MOVING = ('revolute', 'continuous', 'prismatic')


class UrdfError(ValueError):
    """A URDF that cannot give a kinematic tree (what is wrong is in the message)."""


@dataclass(frozen=True)
class Joint:
    """One URDF joint: the parent -> child transform is `origin @ motion(position)`."""

    name: str
    kind: str
    parent: str
    child: str
    origin: np.ndarray  # (4, 4)
    axis: np.ndarray    # (3,) unit
    mimic: tuple | None = None  # (joint name, multiplier, offset)
    limit: tuple | None = None  # (lower, upper) of a revolute or prismatic joint

    def transform(self, position: float = 0.0) -> np.ndarray:
        """(4, 4) parent <- child at `position` (rad or m; ignored for a fixed joint)."""
        motion = np.eye(4)
        if self.kind == 'prismatic':
            motion[:3, 3] = self.axis * position
        elif self.kind in ('revolute', 'continuous'):
            motion[:3, :3] = _axis_angle(self.axis, position)
        return self.origin @ motion

    @cached_property
    def _origin_xyz_quat(self) -> tuple:
        xyz = tuple(float(v) for v in self.origin[:3, 3])
        return xyz, tuple(float(v) for v in quat_from_matrix(self.origin[:3, :3])), tuple(
            float(v) for v in self.origin[:3, :3] @ self.axis)

    def xyz_quat(self, position: float = 0.0) -> tuple:
        """Return `transform(position)` as (x, y, z, qx, qy, qz, qw), without matrices.

        This runs for every moving joint of every joint state.
        """
        (x, y, z), (qx, qy, qz, qw), (ax, ay, az) = self._origin_xyz_quat
        if self.kind == 'prismatic':
            return (x + ax * position, y + ay * position, z + az * position, qx, qy, qz, qw)
        if self.kind == 'fixed':
            return (x, y, z, qx, qy, qz, qw)
        s, c = math.sin(position / 2), math.cos(position / 2)
        bx, by, bz = (float(v) * s for v in self.axis)  # origin quaternion times the joint's
        return (x, y, z,
                qw * bx + qx * c + qy * bz - qz * by, qw * by - qx * bz + qy * c + qz * bx,
                qw * bz + qx * by - qy * bx + qz * c, qw * c - qx * bx - qy * by - qz * bz)


def _floats(text: str | None, default: str, count: int = 3) -> np.ndarray:
    values = np.array([float(v) for v in (text or default).split()])
    if values.shape != (count,):
        raise UrdfError(f'expected {count} numbers, got {text!r}')
    return values


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF's fixed-axis roll, pitch, yaw (rad): R = Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def rpy_from_matrix(rot: np.ndarray) -> np.ndarray:
    """Roll, pitch, yaw (rad) of a rotation, the inverse of `rpy_matrix`.

    Exact also at pitch = +-90 deg, where yaw is set to 0.
    """
    r = np.asarray(rot, dtype=np.float64)
    cos_pitch = math.hypot(r[0, 0], r[1, 0])
    if cos_pitch < 1e-12:
        return np.array([math.atan2(-r[1, 2], r[1, 1]), math.atan2(-r[2, 0], cos_pitch), 0.0])
    return np.array([math.atan2(r[2, 1], r[2, 2]), math.atan2(-r[2, 0], cos_pitch),
                     math.atan2(r[1, 0], r[0, 0])])


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix of `angle` (rad) about the unit `axis` (Rodrigues)."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * (k @ k)


def _origin(element) -> np.ndarray:
    pose = np.eye(4)
    if element is not None:
        pose[:3, :3] = rpy_matrix(*_floats(element.get('rpy'), '0 0 0'))
        pose[:3, 3] = _floats(element.get('xyz'), '0 0 0')
    return pose


def _joint(element) -> Joint:
    name, kind = element.get('name'), element.get('type')
    if kind not in MOVING + ('fixed',):
        raise UrdfError(f'joint {name!r}: type {kind!r} is not supported (fixed, revolute, '
                        'continuous, prismatic)')
    axis = _floats(element.find('axis').get('xyz') if element.find('axis') is not None
                   else None, '1 0 0')
    if kind != 'fixed' and np.linalg.norm(axis) < 1e-12:
        raise UrdfError(f'joint {name!r}: zero axis')
    mimic = element.find('mimic')
    if mimic is not None:
        mimic = (mimic.get('joint'), float(mimic.get('multiplier', 1.0)),
                 float(mimic.get('offset', 0.0)))
    limit = element.find('limit')
    if limit is not None and kind in ('revolute', 'prismatic'):
        limit = (float(limit.get('lower', 0.0)), float(limit.get('upper', 0.0)))
    else:
        limit = None
    return Joint(name, kind, element.find('parent').get('link'), element.find('child').get('link'),
                 _origin(element.find('origin')), axis / max(np.linalg.norm(axis), 1e-12), mimic,
                 limit)


class UrdfTree:
    """The links and joints of one URDF.

    Args:
        urdf: URDF XML text.

    Raises:
        UrdfError: not a URDF, a link with two parents, a joint naming an unknown link, several
            roots, or a mimic of an unknown joint.
    """

    def __init__(self, urdf: str):
        try:
            root = ET.fromstring(urdf)
        except ET.ParseError as err:
            raise UrdfError(f'not XML: {err}') from None
        if root.tag != 'robot':
            raise UrdfError(f'root element is <{root.tag}>, not <robot>')
        self.name = root.get('name', '')
        self.links = [link.get('name') for link in root.findall('link')]
        self.joints = [_joint(j) for j in root.findall('joint')]
        self._by_name = {j.name: j for j in self.joints}
        self._parent_joint = {}
        for joint in self.joints:
            for link in (joint.parent, joint.child):
                if link not in self.links:
                    raise UrdfError(f'joint {joint.name!r} names unknown link {link!r}')
            if joint.child in self._parent_joint:
                raise UrdfError(f'link {joint.child!r} has two parent joints')
            self._parent_joint[joint.child] = joint
            if joint.mimic is not None and joint.mimic[0] not in self._by_name:
                raise UrdfError(f'joint {joint.name!r} mimics unknown joint {joint.mimic[0]!r}')
        roots = [link for link in self.links if link not in self._parent_joint]
        if len(roots) != 1:
            raise UrdfError(f'expected one root link, got {roots}')
        self.root = roots[0]

    @cached_property
    def moving_joints(self) -> list:
        return [j for j in self.joints if j.kind in MOVING]

    @property
    def fixed_joints(self) -> list:
        return [j for j in self.joints if j.kind == 'fixed']

    def positions_of(self, positions: dict) -> dict:
        """Joint name -> position of every moving joint known from `positions`, mimics included."""
        out = {}
        for joint in self.moving_joints:
            if joint.mimic is not None:
                master, multiplier, offset = joint.mimic
                if master in positions:
                    out[joint.name] = multiplier * positions[master] + offset
            elif joint.name in positions:
                out[joint.name] = positions[joint.name]
        return out

    def moving_transforms(self, positions: dict) -> list:
        """Return (parent, child, (x, y, z, qx, qy, qz, qw)) of each moving joint.

        Only the joints whose position `positions` gives.
        """
        known = self.positions_of(positions)
        return [(j.parent, j.child, j.xyz_quat(known[j.name]))
                for j in self.moving_joints if j.name in known]

    def static_transforms(self) -> list:
        """(parent, child, (x, y, z, qx, qy, qz, qw)) of each fixed joint."""
        return [(j.parent, j.child, j.xyz_quat()) for j in self.fixed_joints]

    def pose(self, link: str, positions: dict) -> np.ndarray:
        """(4, 4) pose of `link` in the root link; moving joints missing from `positions` at 0."""
        known = self.positions_of(positions)
        pose = np.eye(4)
        while link != self.root:
            joint = self._parent_joint[link]
            pose = joint.transform(known.get(joint.name, 0.0)) @ pose
            link = joint.parent
        return pose
