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

"""The robot inside SimWorld: the built-in Piper or a user's MJCF, and where its joints live.

Where it fits: `SimWorld` (`vla_nodes/sim/world.py`) compiles its scene with `compile_model` and
reads and drives the arm only through an `ArmBinding`, so a user's model (e.g. mujoco_menagerie's
`agilex_piper/piper.xml`) runs the same tasks, firmware and expert as the built-in one.

A user's file holds the robot only; SimWorld adds its tabletop around it (floor, table, cube,
plate, block, a light, and the `scene_camera` unless the file already has one), so the file must
not define those names. Its base sits at the world origin (base_link). The joint map tells which
of its joints are ours, as 'ours:theirs' strings:

    joint1:joint1 ... joint6:joint6      one hinge per arm joint (rad, the SDK's zero and sign)
    gripper:joint7+joint8                every finger slide; |strokes| add up to the opening (m)

For menagerie's Piper that is the identity map for joint1..joint6 plus `gripper:joint7+joint8`.
The fingers are taken to be coupled (an equality constraint), each stroking opening / F; the
gripper's actuator may sit on one finger joint or on a fixed tendon of them, and its target is
that joint's or tendon's length (times its gear) for the commanded opening. A finger opens in the
direction of its range: a range of (-0.035, 0) means negative strokes open it.
"""

from dataclasses import dataclass
import os
import warnings

os.environ.setdefault('MUJOCO_GL', 'egl')  # must precede the mujoco import, which picks the GL

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from vla_nodes import contract  # noqa: E402
from vla_nodes.sim import piper_mjcf  # noqa: E402

CAMERA_NAME = 'scene_camera'
WRIST_CAMERA_NAME = piper_mjcf.WRIST_CAMERA_NAME  # on link6, in the built-in Piper
DEFAULT_JOINT_MAP = tuple(f'{n}:{n}' for n in contract.ARM_JOINTS) + (
    f'{contract.GRIPPER_JOINT}:finger_left+finger_right',)
MENAGERIE_JOINT_MAP = tuple(f'{n}:{n}' for n in contract.ARM_JOINTS) + (
    f'{contract.GRIPPER_JOINT}:joint7+joint8',)


class ModelError(ValueError):
    """A user MJCF or joint map that SimWorld cannot use; the message says what to change."""


def parse_joint_map(entries) -> dict:
    """Read 'ours:theirs' strings into {our joint name: (their joint names, ...)}.

    Args:
        entries: one string per joint of `contract.JOINT_NAMES`; the gripper's may list several
            finger joints joined by '+'.

    Returns:
        dict with every name of `contract.JOINT_NAMES`, in that order.

    Raises:
        ModelError: a malformed entry, an unknown or repeated name, or a joint left out.
    """
    mapping = {}
    for entry in entries:
        ours, sep, theirs = str(entry).partition(':')
        ours, names = ours.strip(), tuple(n.strip() for n in theirs.split('+'))
        if not sep or not ours or not all(names):
            raise ModelError(f"joint_map entry {entry!r} is not 'ours:theirs' (e.g. "
                             "'joint1:joint1', 'gripper:joint7+joint8')")
        if ours not in contract.JOINT_NAMES or ours in mapping:
            raise ModelError(f'joint_map entry {entry!r}: {ours!r} is not one of '
                             f'{", ".join(contract.JOINT_NAMES)}, or it is mapped twice')
        if ours != contract.GRIPPER_JOINT and len(names) != 1:
            raise ModelError(f'joint_map entry {entry!r}: an arm joint maps to one joint')
        mapping[ours] = names
    missing = [n for n in contract.JOINT_NAMES if n not in mapping]
    if missing:
        raise ModelError(f'joint_map leaves out {", ".join(missing)}: give one '
                         "'ours:theirs' entry for each of " + ', '.join(contract.JOINT_NAMES))
    return {n: mapping[n] for n in contract.JOINT_NAMES}


def compile_model(config) -> mujoco.MjModel:
    """Compile the scene: the built-in Piper tabletop, or `config.mjcf_path` plus our tabletop.

    Args:
        config: a `SimConfig` (mjcf_path, physics_dt, width, height and the scene fields).

    Raises:
        ModelError: the file is missing, does not parse, or clashes with the tabletop's names.
    """
    if not config.mjcf_path:
        return mujoco.MjModel.from_xml_string(piper_mjcf.build_mjcf(config))
    path = os.path.abspath(os.path.expanduser(config.mjcf_path))
    hint = ("give the robot's MJCF file (e.g. mujoco_menagerie/agilex_piper/piper.xml), or '' "
            'for the built-in Piper')
    if not os.path.isfile(path):
        raise ModelError(f'mjcf_path {config.mjcf_path!r} is not a file: {hint}')
    try:
        spec = mujoco.MjSpec.from_file(path)
        has_camera = any(c.name == CAMERA_NAME for c in spec.cameras)
        props = mujoco.MjSpec.from_string(piper_mjcf.props_mjcf(config, camera=not has_camera))
        with warnings.catch_warnings():  # an empty prefix keeps the names tasks look up
            warnings.simplefilter('ignore', UserWarning)
            spec.attach(props, frame=spec.worldbody.add_frame(), prefix='')
            _scene_settings(spec, config)
            return spec.compile()
    except ValueError as err:
        raise ModelError(f'mjcf_path {config.mjcf_path!r} cannot be used: {err}. The file must '
                         'hold the robot only (not a scene with a floor, table or objects); '
                         + hint) from err


def _scene_settings(spec, config) -> None:
    """Physics step, offscreen size and depth range of the built-in scene, on a user's spec."""
    spec.option.timestep = config.physics_dt
    spec.visual.global_.offwidth = max(spec.visual.global_.offwidth, config.width)
    spec.visual.global_.offheight = max(spec.visual.global_.offheight, config.height)
    # znear/zfar are fractions of the extent: 1 m gives valid depth from 1 cm to 20 m.
    spec.stat.extent = 1.0
    spec.visual.map.znear, spec.visual.map.zfar = 0.01, 20.0
    spec.visual.quality.offsamples = 0  # no multisampling: exact depth edges, faster on a CPU
    light = spec.visual.headlight
    light.ambient, light.diffuse, light.specular = [0.35] * 3, [0.4] * 3, [0.0] * 3


@dataclass(frozen=True)
class ArmBinding:
    """Where the seven contract joints live in a compiled model.

    Attributes:
        arm_qpos: (6,) qpos addresses of joint1..joint6.
        arm_dof: (6,) qvel addresses of joint1..joint6.
        finger_qpos: (F,) qpos addresses of the finger slides.
        finger_dof: (F,) qvel addresses of the finger slides.
        finger_sign: (F,) +1 or -1: the sign of each finger's stroke when opening.
        actuators: (7,) actuator ids for joint1..joint6 and the gripper.
        ctrl_scale: (7,) actuator target per contract unit (rad, or m of opening).
        finger_bodies: names of the bodies the finger slides move (for contact checks).
    """

    arm_qpos: np.ndarray
    arm_dof: np.ndarray
    finger_qpos: np.ndarray
    finger_dof: np.ndarray
    finger_sign: np.ndarray
    actuators: np.ndarray
    ctrl_scale: np.ndarray
    finger_bodies: tuple

    @classmethod
    def from_model(cls, model: mujoco.MjModel, joint_map: dict) -> 'ArmBinding':
        """Look up the mapped joints and the position actuators that drive them.

        Args:
            model: the compiled scene.
            joint_map: output of `parse_joint_map`.

        Raises:
            ModelError: a mapped joint is missing, of the wrong type, or has no actuator.
        """
        arm = [_joint(model, ours, joint_map[ours][0], mujoco.mjtJoint.mjJNT_HINGE)
               for ours in contract.ARM_JOINTS]
        fingers = [_joint(model, contract.GRIPPER_JOINT, name, mujoco.mjtJoint.mjJNT_SLIDE)
                   for name in joint_map[contract.GRIPPER_JOINT]]
        # A finger whose range is negative opens towards negative strokes.
        signs = np.array([1.0 if model.jnt_range[j][1] > 0 else -1.0 for j in fingers])
        actuators = [_actuator(model, [j], ours) for ours, j in zip(contract.ARM_JOINTS, arm)]
        grip = _actuator(model, fingers, contract.GRIPPER_JOINT)
        # Actuator length per contract unit: gear x joint (rad), or, for the gripper, the length
        # of its joint or tendon when every finger strokes opening / F (equality-coupled).
        stroke = dict(zip(fingers, signs / len(fingers)))
        scale = np.array([model.actuator_gear[a][0] for a in actuators + [grip]])
        target = model.actuator_trnid[grip][0]
        if model.actuator_trntype[grip] == mujoco.mjtTrn.mjTRN_JOINT:
            scale[6] *= stroke[target]
        else:
            wraps = range(model.tendon_adr[target],
                          model.tendon_adr[target] + model.tendon_num[target])
            scale[6] *= sum(model.wrap_prm[w] * stroke.get(model.wrap_objid[w], 0.0)
                            for w in wraps)
        return cls(
            arm_qpos=np.array([model.jnt_qposadr[j] for j in arm]),
            arm_dof=np.array([model.jnt_dofadr[j] for j in arm]),
            finger_qpos=np.array([model.jnt_qposadr[j] for j in fingers]),
            finger_dof=np.array([model.jnt_dofadr[j] for j in fingers]),
            finger_sign=signs,
            actuators=np.array(actuators + [grip]),
            ctrl_scale=scale,
            finger_bodies=tuple(model.body(model.jnt_bodyid[j]).name for j in fingers))


def _joint(model, ours: str, theirs: str, kind) -> int:
    """Id of joint `theirs`, checked to be a hinge (arm) or a slide (finger)."""
    try:
        joint = model.joint(theirs).id
    except KeyError:
        names = [model.joint(i).name for i in range(model.njnt) if model.joint(i).name]
        raise ModelError(f'joint_map maps {ours!r} to {theirs!r}, which the model does not '
                         f'have; its joints are {names}') from None
    if model.jnt_type[joint] != kind:
        raise ModelError(f'joint_map maps {ours!r} to {theirs!r}, which is not a '
                         f'{"hinge" if kind == mujoco.mjtJoint.mjJNT_HINGE else "slide"} joint')
    return joint


def _actuator(model, joints: list, ours: str) -> int:
    """Id of the actuator on one of `joints`, or on a tendon through one of them."""
    for act in range(model.nu):
        kind, target = model.actuator_trntype[act], model.actuator_trnid[act][0]
        if kind == mujoco.mjtTrn.mjTRN_JOINT and target in joints:
            return act
        if kind == mujoco.mjtTrn.mjTRN_TENDON:
            wraps = range(model.tendon_adr[target], model.tendon_adr[target]
                          + model.tendon_num[target])
            if any(model.wrap_type[w] == mujoco.mjtWrap.mjWRAP_JOINT
                   and model.wrap_objid[w] in joints for w in wraps):
                return act
    raise ModelError(f'no actuator drives {ours!r}: add a <position> actuator on its joint '
                     '(for the gripper: on a finger joint or on a tendon of the fingers)')
