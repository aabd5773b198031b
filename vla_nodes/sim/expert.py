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

"""Scripted expert: joint targets that solve each task in `vla_nodes/sim/tasks.py`, by IK.

Each task has a script, a generator of `Phase`s read top to bottom (pre-grasp above, descend,
close, lift, move, place and open, retreat). `ScriptedExpert.action(world)` turns the current
phase into a joint path with `kinematics.inverse_kinematics` (tool point `TCP_OFFSET_M`, the grasp
centre between the finger pads) and walks the command along it with a trapezoidal speed profile
capped at 1 rad/s. It only reads the world (object poses as perfect perception, measured joints
and time) and returns (7,) targets, so the same object drives `SimWorld.set_targets` directly
(`run_episode`) or plays the leader arm whose frames go out over CAN.

Grasps are top-down with the fingers closing across the cube faces. Of the four equivalent
closing directions the pick takes the one within 45 deg of `grasp_yaw_centre`, the middle of the
cube's yaw range (`SimConfig.cube_yaw_range`) turned by 90 deg: a choice that varies
continuously with the cube's yaw and place over every seed, so demos never jump between two
grasps of one scene (joint6 then stays within about 75 deg of its zero). Pushing keeps the
fingers near the tangential (perpendicular to the line from the base), as does
`test_top_down_grasp_lifts_the_cube` in test/test_sim_world.py. Top-down poses are only
reachable low (about 8 cm above the table at 0.38 m out, 10 cm at 0.3 m: j5's +-70 deg limit,
see `SimConfig`), so a held cube is carried higher with the tool tilted 0.3 rad outward.
"""

from dataclasses import dataclass
import math

import numpy as np

from vla_nodes.arm import kinematics
from vla_nodes.sim import tasks
from vla_nodes.sim.world import SimConfig, SimWorld

GRIPPER_OPEN_M = 0.07
GRIPPER_CLOSED_M = 0.0  # commanding fully closed squeezes the cube with the servo's force
PRE_GRASP_M = 0.06  # above the grasp point, as SimConfig.cube_region guarantees reachable
CARRY_Z_M = 0.11  # tool point height while carrying: the cube's underside ~9 cm up
CARRY_TILT_RAD = 0.3  # outward tilt that makes CARRY_Z_M reachable out to 0.4 m
PLACE_CLEARANCE_M = 0.005  # the cube's underside above the plate when it is let go
FINGER_PAD_HALF_M = 0.012  # finger pad half thickness (vla_nodes/sim/piper_mjcf.py `_finger`)
PUSH_OPENING_M = 0.03  # pads 3 cm apart: both touch the 5 cm wide block, so it goes straight
PUSH_Z_M = 0.025  # tool point height while pushing: pad tips 1 cm above the table
PUSH_GAP_M = 0.03  # pads this far from the block before the push starts
PRE_PUSH_M = 0.04  # above the push start: low, as it lies up to 0.37 m out
PUSH_OVERSHOOT_M = 0.03  # push the block this far past the goal line


@dataclass(frozen=True)
class ExpertConfig:
    """Motion limits of the expert's command.

    Attributes:
        max_joint_speed: cap on each arm joint's commanded speed (rad/s); 1 rad/s is a calm
            human-guided leader arm.
        max_joint_accel: rate the command's speed ramps up and down at (rad/s^2); bends
            between IK waypoints add a little on single joints.
        gripper_speed: opening speed (m/s): fully open to closed in 0.7 s.
        step_m: spacing of IK waypoints on straight moves (m); keeps the tool on the line.
        settle_rad: a phase ends once every arm joint is this close to the command (rad).
        settle_timeout_s: or this long after the command arrived (s), e.g. when blocked.
    """

    max_joint_speed: float = 1.0
    max_joint_accel: float = 4.0
    gripper_speed: float = 0.1
    step_m: float = 0.01
    settle_rad: float = 0.02
    settle_timeout_s: float = 1.0


@dataclass(frozen=True)
class Phase:
    """One step of a script: move the tool point and/or set the gripper, then wait.

    Attributes:
        name: shown by `ScriptedExpert.phase`.
        xyz: (3,) tool point target in base_link (m); None keeps the arm still.
        yaw: direction the fingers close along, about base z (rad).
        tilt: tool axis tilted outward from straight down (rad).
        opening: gripper opening at the end (m); None keeps it.
        straight: move the tool point along a straight line (else straight in joint space).
        speed: fraction of the configured speed caps.
        dwell_s: wait after arriving (s), e.g. for the fingers to squeeze.
    """

    name: str
    xyz: tuple | None = None
    yaw: float = 0.0
    tilt: float = 0.0
    opening: float | None = None
    straight: bool = True
    speed: float = 1.0
    dwell_s: float = 0.1


# --- geometry ------------------------------------------------------------------------------------
def _rotation(axis, angle: float) -> np.ndarray:
    """(3, 3) rotation by `angle` (rad) about unit `axis` (Rodrigues)."""
    x, y, z = axis
    skew = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + math.sin(angle) * skew + (1 - math.cos(angle)) * skew @ skew


def tool_pose(xyz, yaw: float, tilt: float = 0.0) -> np.ndarray:
    """Tool pose pointing down, fingers closing along `yaw`, tilted outward by `tilt`.

    Args:
        xyz: (3,) tool point in base_link (m).
        yaw: closing direction about base z (rad).
        tilt: rotation of the tool axis from straight down towards the outward radial (rad).

    Returns:
        (4, 4) target for `inverse_kinematics(..., tcp_offset_m=TCP_OFFSET_M)`.
    """
    closing = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([np.cross(closing, down), closing, down])
    azimuth = math.atan2(xyz[1], xyz[0])
    # About (sin, -cos, 0), a positive angle turns "down" towards the outward radial.
    pose[:3, :3] = _rotation((math.sin(azimuth), -math.cos(azimuth), 0.0), tilt) @ pose[:3, :3]
    pose[:3, 3] = xyz
    return pose


def fold_yaw(yaw: float, centre: float, period: float) -> float:
    """The direction equivalent to `yaw` (mod `period`) within period / 2 of `centre` (rad)."""
    return centre + (yaw - centre + period / 2) % period - period / 2


def closing_yaw(yaw: float, xy, period: float) -> float:
    """The closing direction equivalent to `yaw` (mod `period`) nearest the tangential at `xy`.

    Args:
        yaw: any closing direction that would do (rad).
        xy: (2,) point the tool goes to (m); its tangential direction keeps joint6 near zero.
        period: symmetry of what is grasped (rad): pi / 2 for a cube's faces, pi for a line.

    Returns:
        Closing direction (rad) within period / 2 of the tangential direction.
    """
    return fold_yaw(yaw, math.atan2(xy[1], xy[0]) + math.pi / 2, period)


def grasp_yaw_centre(config: SimConfig) -> float:
    """Centre of the cube grasps' closing directions (rad).

    The middle of the cube's yaw range turned by 90 deg, i.e. the tangential in front of the
    base for a range centred on 0. The wrap of `fold_yaw` then lies in the range's gap
    (SimConfig.cube_yaw_range).
    """
    low, high = config.cube_yaw_range
    return (low + high) / 2 + math.pi / 2


def cube_grasp_yaw(world: SimWorld) -> float:
    """Closing direction (rad) of the pick grasp for the cube as it lies now."""
    return fold_yaw(_object_yaw(world.object_pose('cube')), grasp_yaw_centre(world.config),
                    math.pi / 2)


def _object_yaw(pose: np.ndarray) -> float:
    """Yaw (rad) of an object's x axis about base z."""
    return math.atan2(pose[1, 0], pose[0, 0])


# --- scripts: one generator per task, reading object poses when each phase starts ---------------
def pick_script(world: SimWorld):
    """Pre-grasp above the red cube, descend, close, lift it and hold."""
    centre = world.object_pose('cube')[:3, 3]
    yaw = cube_grasp_yaw(world)
    yield Phase('pre-grasp', centre + (0.0, 0.0, PRE_GRASP_M), yaw, opening=GRIPPER_OPEN_M,
                straight=False)
    centre = world.object_pose('cube')[:3, 3]
    yield Phase('descend', centre, yaw, speed=0.5)
    yield Phase('close', opening=GRIPPER_CLOSED_M, dwell_s=0.5)
    yield Phase('lift', (*centre[:2], CARRY_Z_M), yaw, CARRY_TILT_RAD, speed=0.5, dwell_s=0.3)
    return yaw, centre


def place_script(world: SimWorld):
    """Pick the red cube, carry it over the green plate, lower, open and retreat."""
    yaw, start = yield from pick_script(world)
    plate = world.object_pose('plate')[:3, 3]
    # Turn the fingers with the base so that joint6 keeps its angle.
    yaw += math.atan2(plate[1], plate[0]) - math.atan2(start[1], start[0])
    place_z = 2 * world.model.geom('plate').size[1] + world.config.cube_size_m / 2
    yield Phase('move', (*plate[:2], CARRY_Z_M), yaw, CARRY_TILT_RAD)
    yield Phase('lower', (*plate[:2], place_z + PLACE_CLEARANCE_M), yaw, speed=0.5)
    yield Phase('open', opening=GRIPPER_OPEN_M, dwell_s=0.4)
    yield Phase('retreat', (*plate[:2], place_z + PRE_GRASP_M), yaw, CARRY_TILT_RAD, speed=0.5)


def push_script(world: SimWorld):
    """Come down right of the blue block and push it left (+y) past the goal line."""
    block = world.object_pose('block')[:3, 3]
    reach = world.model.geom('block').size[1] + FINGER_PAD_HALF_M  # tool point to block centre
    start = np.array([block[0], block[1] - reach - PUSH_GAP_M, PUSH_Z_M])
    # Fingers close along base x, so the pads' flat faces push along +y.
    yaw = closing_yaw(0.0, start[:2], math.pi)
    end = (block[0], tasks.PUSH_GOAL_Y_M + PUSH_OVERSHOOT_M - reach, PUSH_Z_M)
    yield Phase('pre-push', start + (0.0, 0.0, PRE_PUSH_M), yaw, opening=PUSH_OPENING_M,
                straight=False)
    yield Phase('descend', start, yaw, speed=0.5)
    yield Phase('push', end, yaw, speed=0.3)
    yield Phase('retreat', (*end[:2], PUSH_Z_M + PRE_GRASP_M), yaw, CARRY_TILT_RAD, speed=0.5)


SCRIPTS = {
    'pick_red_cube': pick_script,
    'place_cube_on_plate': place_script,
    'push_block_left': push_script,
}


class ScriptedExpert:
    """Joint targets over time for one task episode, like a leader arm a person moves.

    Call `action(world)` at the control rate (30-100 Hz) with the world being acted on; it
    returns the (7,) target for now and never changes the world. `done` turns True after the
    last phase has settled; the expert then holds its last target. If a phase's target is out
    of the arm's reach (never seen in the task regions) the expert gives up: `done` turns True,
    `failure` says which phase and target, and it holds its last target.
    """

    def __init__(self, task: tasks.Task, world: SimWorld, config: ExpertConfig = ExpertConfig()):
        """Prepare the task's script; nothing is read from `world` before the first action.

        Args:
            task: a value of `tasks.TASKS`.
            world: the world the script reads object poses from, reset for this episode.
            config: speed and settling limits.
        """
        self.config = config
        self.done = False
        self.failure = ''  # why the expert gave up; '' while it has not
        self._script = SCRIPTS[task.name](world)
        self._phase = None
        self._cmd = None  # (7,) current command
        self._path = []  # (7,) waypoints still ahead of the command
        self._speed = 0.0  # fraction of the phase's speed caps
        self._tool = None  # (xyz, yaw, tilt) of the last planned tool target
        self._time = None  # world time of the last action (s)
        self._arrived = None  # world time the command reached the phase's end (s)

    @property
    def phase(self) -> str:
        """Name of the current phase: '' before the first action, 'done' at the end."""
        return 'done' if self.done else (self._phase.name if self._phase else '')

    def action(self, world: SimWorld) -> np.ndarray:
        """Joint targets for now.

        Args:
            world: read for its time (s), measured joints and object poses.

        Returns:
            (7,) joint1..joint6 (rad) and gripper opening (m).
        """
        now = world.time
        if self._cmd is None:
            self._cmd = world.joint_positions()
            self._time = self._arrived = now
        dt = max(now - self._time, 0.0)
        self._time = now
        if not self.done and not self._path and self._settled(world, now):
            try:
                self._next_phase()
            except kinematics.IkError as err:
                self.failure = f'phase {self._phase.name!r}: target out of reach: {err}'
                self.done, self._path = True, []
        self._advance(dt, now)
        return self._cmd.copy()

    def _settled(self, world: SimWorld, now: float) -> bool:
        """Whether the current phase has dwelt and the arm caught up with the command."""
        if self._phase is None:
            return True
        waited = now - self._arrived
        error = np.abs(world.joint_positions()[:6] - self._cmd[:6]).max()
        return waited >= self._phase.dwell_s and (
            error <= self.config.settle_rad or waited >= self.config.settle_timeout_s)

    def _next_phase(self) -> None:
        """Take the script's next phase and plan its joint path."""
        self._phase = next(self._script, None)
        if self._phase is None:
            self.done = True
            return
        phase = self._phase
        opening = self._cmd[6] if phase.opening is None else phase.opening
        if phase.xyz is None:
            self._path = [np.append(self._cmd[:6], opening)]
            return
        goal = (np.asarray(phase.xyz, dtype=np.float64), phase.yaw, phase.tilt)
        if phase.straight and self._tool is not None:
            start = self._tool
            change = max(np.linalg.norm(goal[0] - start[0]), 0.05 * abs(goal[2] - start[2]),
                         0.05 * abs(goal[1] - start[1]))  # 5 cm per rad of turning
            count = max(1, math.ceil(change / self.config.step_m))
        else:
            start, count = goal, 1
        q6 = self._cmd[:6]
        self._path = []
        for f in np.linspace(0.0, 1.0, count + 1)[1:]:
            xyz, yaw, tilt = (s + f * (g - s) for s, g in zip(start, goal))
            q6 = kinematics.inverse_kinematics(tool_pose(xyz, yaw, tilt), q6,
                                               tcp_offset_m=kinematics.TCP_OFFSET_M)
            grip = self._cmd[6] + f * (opening - self._cmd[6])
            self._path.append(np.append(q6, grip))
        self._tool = goal

    def _advance(self, dt: float, now: float) -> None:
        """Move the command along the path: speed ramps up, caps, and ramps down to stop."""
        if not self._path:
            return
        scale = self._phase.speed
        caps = np.array([self.config.max_joint_speed * scale] * 6 + [self.config.gripper_speed])
        points = [self._cmd] + self._path
        # Each segment's duration at full speed (s); the slowest joint sets it.
        durations = [np.abs((b - a) / caps).max() for a, b in zip(points, points[1:])]
        accel = self.config.max_joint_accel / self.config.max_joint_speed  # (1/s)
        # Fastest speed from which steps of `dt`, each slower by accel * dt, stop at the end:
        # s^2 / (2 accel) + s dt / 2 = remaining.
        stop = accel * (math.sqrt(dt * dt / 4 + 2 * sum(durations) / accel) - dt / 2)
        self._speed = min(1.0, self._speed + accel * dt, stop)
        budget = self._speed * dt  # full-speed seconds to travel now
        for duration in durations:
            if duration > budget:
                self._cmd = self._cmd + (self._path[0] - self._cmd) * budget / duration
                return
            budget -= duration
            self._cmd = self._path.pop(0)
        self._speed = 0.0
        self._arrived = now


def run_episode(task_name: str, seed: int, max_seconds: float | None = None,
                control_hz: float = 50.0, world: SimWorld | None = None,
                trace: list | None = None) -> tuple:
    """Run the scripted expert on one seeded episode, driving SimWorld directly (no CAN).

    Args:
        task_name: key of `tasks.TASKS`.
        seed: episode seed (initial object layout).
        max_seconds: simulated time budget (s); the task's `max_seconds` when None.
        control_hz: rate of expert actions (Hz).
        world: a world to reuse (it is reset); a fresh 320x240 one when None.
        trace: if given, receives the (7,) measured joints (rad, m) before every action.

    Returns:
        (success, seconds): the task's success check once the expert is done or the budget is
        spent, and the simulated time that took (s). A target out of the arm's reach ends the
        episode as a failure.
    """
    task = tasks.get_task(task_name)
    world = SimWorld(SimConfig()) if world is None else world
    limit = task.max_seconds if max_seconds is None else max_seconds
    task.reset(world, seed)
    expert = ScriptedExpert(task, world)
    period = 1.0 / control_hz
    while not expert.done and world.time < limit:
        if trace is not None:
            trace.append(world.joint_positions())
        world.set_targets(expert.action(world))
        if expert.failure:
            return False, world.time
        world.step(period)
    return task.success(world), world.time
