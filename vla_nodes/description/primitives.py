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


"""URDF pieces: numbers, origins, solid primitives (geometry and inertia) and links."""

import math

import numpy as np

from vla_nodes.description.tree import rpy_from_matrix
from vla_nodes.sim import piper_mjcf

# A prismatic joint needs a child with mass for Gazebo; the opening frame carries almost none.
NOMINAL_MASS = (1e-3, 1e-7)  # kg, kg*m^2


def number(value: float) -> str:
    """A float with 15 significant digits (far below 0.01 mm at arm scale); -0 written as 0."""
    text = f'{float(value):.15g}'
    return '0' if text == '-0' else text


def vector(values) -> str:
    return ' '.join(number(v) for v in values)


def origin_xml(xyz, rot=None) -> str:
    rpy = np.zeros(3) if rot is None else rpy_from_matrix(rot)
    return f'<origin xyz="{vector(xyz)}" rpy="{vector(rpy)}"/>'


class Primitive:
    """A solid box (full sizes) or cylinder (radius, length along its z) placed in a link frame."""

    def __init__(self, kind: str, dims, pos, rot=None):
        self.kind, self.dims = kind, tuple(float(d) for d in dims)
        self.pos = np.asarray(pos, dtype=np.float64)
        self.rot = np.eye(3) if rot is None else np.asarray(rot, dtype=np.float64)

    def xml(self) -> str:
        if self.kind == 'box':
            return f'<box size="{vector(self.dims)}"/>'
        return f'<cylinder radius="{number(self.dims[0])}" length="{number(self.dims[1])}"/>'

    def mass_and_inertia(self) -> tuple:
        """Mass (kg) at GEOM_DENSITY, inertia tensor (kg*m^2) about its centre in link axes."""
        if self.kind == 'box':
            x, y, z = self.dims
            mass = piper_mjcf.GEOM_DENSITY * x * y * z
            local = np.diag([y * y + z * z, x * x + z * z, x * x + y * y]) * mass / 12
        else:
            r, length = self.dims
            mass = piper_mjcf.GEOM_DENSITY * math.pi * r * r * length
            side = mass * (3 * r * r + length * length) / 12
            local = np.diag([side, side, mass * r * r / 2])
        return mass, self.rot @ local @ self.rot.T


def cylinder_between(start, end, radius: float):
    """A cylinder primitive from `start` to `end` (m); None for a zero-length segment."""
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    axis = end - start
    length = float(np.linalg.norm(axis))
    if length < 1e-6:
        return None
    z = axis / length
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return Primitive('cylinder', (radius, length), (start + end) / 2,
                     np.column_stack([x, np.cross(z, x), z]))


def inertial(prims: list) -> tuple:
    """(mass, centre of mass, inertia about it) of solid primitives, in the link frame."""
    total, moment, first = 0.0, np.zeros(3), np.zeros((3, 3))
    parts = [(p.pos, *p.mass_and_inertia()) for p in prims]
    for pos, mass, _ in parts:
        total += mass
        moment += mass * pos
    com = moment / total
    for pos, mass, inertia in parts:
        d = pos - com  # parallel axis theorem about the common centre of mass
        first += inertia + mass * (d @ d * np.eye(3) - np.outer(d, d))
    return total, com, first


def inertial_xml(mass: float, com, inertia) -> str:
    i = inertia
    return (f'<inertial>{origin_xml(com)}<mass value="{number(mass)}"/>'
            f'<inertia ixx="{number(i[0, 0])}" ixy="{number(i[0, 1])}" ixz="{number(i[0, 2])}" '
            f'iyy="{number(i[1, 1])}" iyz="{number(i[1, 2])}" izz="{number(i[2, 2])}"/>'
            '</inertial>')


def link_xml(name: str, prims: list, material: str) -> str:
    """A link with one visual and one collision per primitive and the solid's inertial."""
    if not prims:
        mass, inertia = NOMINAL_MASS
        nominal = inertial_xml(mass, (0, 0, 0), np.eye(3) * inertia)
        return f'<link name="${{prefix}}{name}">{nominal}</link>'
    body = []
    for p in prims:
        where = origin_xml(p.pos, p.rot)
        body.append(f'<visual>{where}<geometry>{p.xml()}</geometry>'
                    f'<material name="{material}"/></visual>')
        body.append(f'<collision>{where}<geometry>{p.xml()}</geometry></collision>')
    body.append(inertial_xml(*inertial(prims)))
    return f'<link name="${{prefix}}{name}">\n  ' + '\n  '.join(body) + '\n</link>'
