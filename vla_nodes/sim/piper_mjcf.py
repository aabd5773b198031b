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

"""MJCF text of the simulated Piper and its tabletop scene, generated from the SDK's DH chain.

Each link body sits at the fixed part of its modified-DH transform (`RotX TransX RotZ(offset)
TransZ`), and its hinge turns about the body's own z axis, so MuJoCo's `ee` site on link6 is
exactly `vla_nodes.arm.kinematics.forward_kinematics`. Geometry is primitive (capsules, boxes,
cylinders): fast to render on CPU, and the arm's kinematics, limits and gripper stroke match the
real Piper (`contract.PIPER_LIMITS`). The world frame is base_link; the table top is z = 0.

No mujoco import here: this is text only. `vla_nodes/sim/world.py` compiles it.
"""

import math

import numpy as np

from vla_nodes import contract
from vla_nodes.arm import kinematics
from vla_nodes.description.tree import rpy_matrix

# Position servos, (kp N*m/rad, kv N*m*s/rad, max |torque| N*m). Arm links are gravity
# compensated (like the firmware's gravity feed-forward), so kp only has to hold contact loads.
# With armature 0.05 kg*m^2 per joint (geared-motor reflected inertia) the stiffest loop has
# omega = sqrt(300 / 0.05) ~ 77 rad/s, dt * omega ~ 0.15 at dt = 2 ms: stable; kv is integrated
# implicitly (implicitfast) and puts the loops near critical damping, so a 0.5 rad step settles
# to < 1 deg in about 0.3-0.6 s.
ARM_GAINS = (
    (300.0, 20.0, 60.0),
    (300.0, 20.0, 60.0),
    (300.0, 20.0, 60.0),
    (100.0, 6.0, 20.0),
    (100.0, 6.0, 20.0),
    (100.0, 6.0, 20.0),
)
ARMATURE = 0.05  # kg*m^2
# Gripper servo on the opening (sum of both fingers): N/m, N*s/m, max |force| N.
# 0.04 m of squeeze error gives ~16 N: a firm grip on a 50 g cube.
GRIPPER_GAINS = (400.0, 20.0, 30.0)

FINGER_TRAVEL_M = contract.PIPER_LIMITS[contract.GRIPPER_JOINT].upper / 2
LINK_RADIUS_M = (0.045, 0.04, 0.035, 0.03, 0.03, 0.03)
# Primitive geometry shared with the URDF (vla_nodes/description): base cylinder (radius, height)
# on base_link; gripper housing and finger pad boxes (centre, half sizes) in the link6 frame.
BASE_CYLINDER_M = (0.05, 0.09)
GRIPPER_HOUSING_M = ((0.0, 0.0, 0.05), (0.025, 0.05, 0.04))
FINGER_PAD_M = ((0.0, 0.006, 0.12), (0.012, 0.006, 0.03))  # the left finger; the right mirrors y
# A wrist RGB-D camera (D405-like) beside the gripper housing (off the fingers' y stroke),
# looking along the tool axis, tilted 25 deg towards it, image 'down' towards the fingers (so
# they show at the bottom of the frame, as on Cobot Magic / ALOHA wrist views): (translation m,
# URDF rpy rad) of its optical frame in the flange (link6); R = Ry(25 deg) Rz(-90 deg). The
# sim's wrist camera and the description's default mount.
WRIST_CAMERA_MOUNT = ((-0.07, 0.0, 0.05), (math.radians(-25.0), 0.0, math.radians(-90.0)))
WRIST_CAMERA_NAME = 'wrist_camera'
GEOM_DENSITY = 1000.0  # kg/m^3 of every arm geom

_ARM_RGBA = '0.82 0.82 0.85 1'
_JOINT_RGBA = '0.15 0.15 0.17 1'
# Arm geoms collide with the world (table, objects) but not with each other.
_ARM_COLLISION = 'contype="2" conaffinity="1"'
_WORLD_COLLISION = 'contype="1" conaffinity="3"'
# Stiffer, harder finger-cube contacts (time constant 2 dt, impedance 0.99): a squeezed 4 cm cube
# reads as a 3.99 cm opening (about 3 cm with MuJoCo's soft defaults).
_GRIP_CONTACT = 'solref="0.004 1" solimp="0.99 0.999 0.001"'
# The fingers' stops are hard, like the arm's (with MuJoCo's soft joint limits a crash pushed
# the open fingers to a 0.10 m opening, which the driver's feedback guard rightly faults).
_FINGER_STOP = 'solreflimit="0.004 1" solimplimit="0.99 0.999 0.001"'
# Blue block for pushing (half sizes x, y, z in m): 5 cm wide across the push so that two finger
# pads 3 cm apart both touch it, which keeps a push straight.
BLOCK_HALF_SIZE_M = (0.025, 0.02, 0.02)
# Where the block waits when its task is not running: on the floor under the table (the table top
# hides it from any camera above it), so scenes without it look and behave as before.
BLOCK_STOWED_POS = (0.25, 0.0, -0.75 + BLOCK_HALF_SIZE_M[2])


def _fmt(values) -> str:
    """Space-separated floats for MJCF attributes."""
    return ' '.join(f'{float(v):.9g}' for v in np.ravel(values))


def _quat_wxyz(rot: np.ndarray) -> np.ndarray:
    """MuJoCo-order quaternion (w, x, y, z) of a (3, 3) rotation matrix."""
    x, y, z, w = kinematics.quat_from_matrix(rot)
    return np.array([w, x, y, z])


def look_at_xyaxes(pos, target) -> np.ndarray:
    """Compute MuJoCo camera `xyaxes` (image right, image up) to look from `pos` at `target`.

    Args:
        pos: (3,) camera position (m).
        target: (3,) point on the optical axis (m); not straight above or below `pos`.

    Returns:
        (6,) right and up axes in the world frame; MuJoCo cameras look along their -z.
    """
    forward = np.asarray(target, dtype=np.float64) - np.asarray(pos, dtype=np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, (0.0, 0.0, 1.0))
    right /= np.linalg.norm(right)
    return np.concatenate([right, np.cross(right, forward)])


def _capsules(start, end, radius) -> list:
    """Capsule geoms along start -> end (m) in the body frame; none for a zero-length segment."""
    if np.linalg.norm(np.subtract(end, start)) < 1e-6:
        return []
    return [f'<geom type="capsule" fromto="{_fmt(start)} {_fmt(end)}" size="{radius}" '
            f'rgba="{_ARM_RGBA}" {_ARM_COLLISION}/>']


def _link_geoms(chain, i: int) -> list:
    """Geoms of link i+1: a joint housing along its z axis and capsules to the next origin."""
    radius = LINK_RADIUS_M[i]
    geoms = [f'<geom type="cylinder" size="{radius * 1.05} {radius}" rgba="{_JOINT_RGBA}" '
             f'{_ARM_COLLISION}/>']
    if i == 5:
        return geoms
    a, alpha, d = chain.a[i + 1], chain.alpha[i + 1], chain.d[i + 1]
    corner = (a, 0.0, 0.0)
    nxt = (a, -math.sin(alpha) * d, math.cos(alpha) * d)
    return geoms + _capsules((0, 0, 0), corner, radius) + _capsules(corner, nxt, radius)


def _finger(name: str, side: int) -> str:
    """One finger body sliding along +-link6 y; its joint value is its stroke (m), 0 = closed."""
    (x, y, z), half = FINGER_PAD_M
    return f"""
<body name="{name}" gravcomp="1">
  <joint name="{name}" type="slide" axis="0 {side} 0" range="0 {FINGER_TRAVEL_M}" {_FINGER_STOP}
         armature="0.05" damping="1"/>
  <geom type="box" pos="{_fmt((x, y * side, z))}" size="{_fmt(half)}" rgba="0.3 0.3 0.32 1"
        friction="1.5 0.01 0.001" condim="4" {_GRIP_CONTACT} {_ARM_COLLISION}/>
</body>"""


def _gripper() -> str:
    """Gripper housing, two fingers and the `ee` (flange) and `tcp` (grasp centre) sites."""
    pos, half = GRIPPER_HOUSING_M
    return f"""
<geom type="box" pos="{_fmt(pos)}" size="{_fmt(half)}" rgba="{_JOINT_RGBA}" {_ARM_COLLISION}/>
<site name="ee" size="0.005" rgba="0 0 1 0" group="5"/>
<site name="tcp" pos="0 0 {kinematics.TCP_OFFSET_M}" size="0.005" rgba="0 0 1 0" group="5"/>
{_wrist_camera()}
{_finger('finger_left', 1)}{_finger('finger_right', -1)}"""


def _wrist_camera(fovy_deg: float = 58.0) -> str:
    """The wrist camera at WRIST_CAMERA_MOUNT; 58 deg is the D405's vertical field of view."""
    (x, y, z), (roll, pitch, yaw) = WRIST_CAMERA_MOUNT
    rot = rpy_matrix(roll, pitch, yaw)
    # Optical (X right, Y down, Z forward) -> MuJoCo's camera axes (X right, Y up, looks along -Z).
    xyaxes = np.concatenate([rot[:, 0], -rot[:, 1]])
    return (f'<camera name="{WRIST_CAMERA_NAME}" pos="{_fmt((x, y, z))}" fovy="{fovy_deg}" '
            f'xyaxes="{_fmt(xyaxes)}"/>')


def _arm(dh_is_offset: int) -> str:
    """Nested link bodies link1..link6 with hinges, limits and the gripper."""
    chain = kinematics.DH_CHAINS[dh_is_offset]
    limits = kinematics.limit_arrays()
    closing = ''
    radius, height = BASE_CYLINDER_M
    xml = ('<body name="base_link" childclass="arm">'
           f'<geom type="cylinder" fromto="0 0 0 0 0 {height}" size="{radius}" '
           f'rgba="{_JOINT_RGBA}" {_ARM_COLLISION}/>')
    for i, name in enumerate(contract.ARM_JOINTS):
        fixed = kinematics.dh_transform(chain.alpha[i], chain.a[i], chain.theta[i], chain.d[i])
        inner = '\n'.join(_link_geoms(chain, i))
        xml += (f'\n<body name="link{i + 1}" pos="{_fmt(fixed[:3, 3])}" '
                f'quat="{_fmt(_quat_wxyz(fixed[:3, :3]))}" gravcomp="1">'
                f'\n<joint name="{name}" range="{_fmt([limits[0][i], limits[1][i]])}"/>\n{inner}')
        closing += '</body>'
    return xml + _gripper() + closing + '</body>'


def _actuators() -> str:
    """Position servos for joint1..joint6 and the gripper opening (tendon)."""
    limits = kinematics.limit_arrays()
    lines = [
        f'<position name="{name}" joint="{name}" kp="{kp}" kv="{kv}" forcerange="{-f} {f}" '
        f'ctrlrange="{_fmt([limits[0][i], limits[1][i]])}"/>'
        for i, (name, (kp, kv, f)) in enumerate(zip(contract.ARM_JOINTS, ARM_GAINS))
    ]
    kp, kv, f = GRIPPER_GAINS
    grip = contract.PIPER_LIMITS[contract.GRIPPER_JOINT]
    lines.append(f'<position name="gripper" tendon="gripper" kp="{kp}" kv="{kv}" '
                 f'forcerange="{-f} {f}" ctrlrange="{grip.lower} {grip.upper}"/>')
    return '\n'.join(lines)


def _objects(cube_size_m: float) -> str:
    """Table (static), red cube, green plate and blue block (free bodies).

    reset() places the cube and plate; the block stays stowed until a task places it.
    """
    half = cube_size_m / 2
    return f"""
<geom name="floor" type="plane" pos="0 0 -0.75" size="3 3 0.1" rgba="0.35 0.35 0.38 1"/>
<geom name="table" type="box" pos="0.25 0 -0.02" size="0.55 0.6 0.02" rgba="0.72 0.68 0.6 1"
      {_WORLD_COLLISION}/>
<body name="cube" pos="0.3 0 {half}">
  <freejoint name="cube"/>
  <geom name="cube" type="box" size="{half} {half} {half}" mass="0.05" rgba="0.85 0.08 0.08 1"
        friction="1 0.01 0.001" condim="4" {_GRIP_CONTACT} {_WORLD_COLLISION}/>
</body>
<body name="plate" pos="0.3 0.2 0.005">
  <freejoint name="plate"/>
  <geom name="plate" type="cylinder" size="0.06 0.005" mass="0.2" rgba="0.1 0.7 0.15 1"
        {_WORLD_COLLISION}/>
</body>
<body name="block" pos="{_fmt(BLOCK_STOWED_POS)}">
  <freejoint name="block"/>
  <geom name="block" type="box" size="{_fmt(BLOCK_HALF_SIZE_M)}" mass="0.1"
        rgba="0.1 0.25 0.85 1" friction="1 0.01 0.001" condim="4" {_WORLD_COLLISION}/>
</body>"""


def _camera(config) -> str:
    """The D455-like scene camera, looking from `camera_pos` at `camera_target`."""
    return (f'<camera name="scene_camera" pos="{_fmt(config.camera_pos)}" '
            f'fovy="{config.fovy_deg}" '
            f'xyaxes="{_fmt(look_at_xyaxes(config.camera_pos, config.camera_target))}"/>')


_LIGHT = ('<light directional="true" pos="0.3 0 1.5" dir="0 0 -1" diffuse="0.6 0.6 0.6" '
          'castshadow="false"/>')
_ARM_DEFAULTS = f"""<default>
  <default class="arm">
    <joint armature="{ARMATURE}" damping="0.1"/>
    <geom density="{GEOM_DENSITY:g}"/>
  </default>
</default>"""
_GRIPPER_COUPLING = """<tendon>
  <fixed name="gripper"><joint joint="finger_left" coef="1"/><joint joint="finger_right" coef="1"/>
  </fixed>
</tendon>
<equality>
  <joint joint1="finger_right" joint2="finger_left" polycoef="0 1 0 0 0"/>
</equality>"""


def robot_mjcf(dh_is_offset: int = 1) -> str:
    """Write the built-in Piper alone (arm, gripper, servos), like menagerie's `piper.xml`.

    Args:
        dh_is_offset: piper_sdk DH variant the arm is built from (0 or 1).

    Returns:
        MJCF XML of the robot; `SimWorld` can load it as a user model (`SimConfig.mjcf_path`).
    """
    return f"""<mujoco model="piper">
<compiler angle="radian" autolimits="true"/>
<option integrator="implicitfast"/>
{_ARM_DEFAULTS}
<worldbody>
{_arm(dh_is_offset)}
</worldbody>
{_robot_tail()}"""


def props_mjcf(config, camera: bool = True) -> str:
    """Write the tabletop that SimWorld puts around a user's robot.

    Args:
        config: a `SimConfig` (camera_pos, camera_target, fovy_deg, cube_size_m are read).
        camera: include the scene camera (leave it out if the robot's file has its own).

    Returns:
        MJCF XML with a light, the camera, floor, table, cube, plate and block.
    """
    return f"""<mujoco model="vla_tabletop">
<worldbody>
{_LIGHT}
{_camera(config) if camera else ''}
{_objects(config.cube_size_m)}
</worldbody>
</mujoco>
"""


def build_mjcf(config) -> str:
    """Write the whole scene as MJCF text.

    Args:
        config: a `vla_nodes.sim.world.SimConfig` (width, height, physics_dt, fovy_deg,
            camera_pos, camera_target, cube_size_m, dh_is_offset are read).

    Returns:
        MJCF XML for `mujoco.MjModel.from_xml_string`.
    """
    # znear/zfar are fractions of the extent (1 m): depth is valid from 1 cm to 20 m.
    return f"""<mujoco model="piper_tabletop">
<compiler angle="radian" autolimits="true"/>
<option timestep="{config.physics_dt}" integrator="implicitfast"/>
<statistic extent="1" center="0.3 0 0.2"/>
<visual>
  <global offwidth="{config.width}" offheight="{config.height}"/>
  <map znear="0.01" zfar="20"/>
  <quality offsamples="0"/>
  <headlight ambient="0.35 0.35 0.35" diffuse="0.4 0.4 0.4" specular="0 0 0"/>
</visual>
{_ARM_DEFAULTS}
<worldbody>
{_LIGHT}
{_camera(config)}
{_arm(config.dh_is_offset)}
{_objects(config.cube_size_m)}
</worldbody>
{_robot_tail()}"""


def _robot_tail() -> str:
    """What follows the world body in every model: the gripper coupling and the actuators."""
    return f"""{_GRIPPER_COUPLING}
<actuator>
{_actuators()}
</actuator>
</mujoco>
"""
