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

"""Tabletop tasks for the simulated Piper: an instruction, a seeded set-up and a success check.

A task is a value in `TASKS`, picked by name (`get_task` lists the names when one is wrong).
`reset(world, seed)` resets a `SimWorld` and lays out the objects for that task, randomized but
the same for the same seed; `success(world)` only reads world state (object poses, contacts), so
a recorder, a benchmark or a policy evaluation can call it at any time. The scripted expert that
solves each task is `vla_nodes/sim/expert.py`; `vla_nodes/sim/episode.py` runs episodes of it.

Frames and units: base_link, metres, radians; the table top is z = 0 and +y is the arm's left.
"""

from dataclasses import dataclass
import math
from typing import Callable

import numpy as np

from vla_nodes.sim.world import SimWorld

LIFT_HEIGHT_M = 0.05  # the cube's underside above the table for "picked up"
PUSH_MIN_DISTANCE_M = 0.08  # how far left the block must go for "pushed to the left"
# The push goal: the block's centre crosses the arm's centre line, y = 0. Blocks start at least
# PUSH_MIN_DISTANCE_M to its right, so success always means a push of 8 cm or more, and success()
# needs no memory of where the block started.
PUSH_GOAL_Y_M = 0.0
BLOCK_REGION = ((0.2, -0.15), (0.3, -PUSH_MIN_DISTANCE_M))  # block start (x, y), (m)
RESTING_SPEED_M_S = 0.05  # below this an object counts as at rest (m/s)


def touching(world: SimWorld, body_a: str, body_b: str) -> bool:
    """Whether any geom of body `body_a` is in contact with any geom of body `body_b`."""
    ids = {world.model.body(body_a).id, world.model.body(body_b).id}
    bodies = world.model.geom_bodyid
    contacts = world.data.contact[:world.data.ncon]
    return any({bodies[c.geom1], bodies[c.geom2]} == ids for c in contacts)


def _speed(world: SimWorld, name: str) -> float:
    """Linear speed of a free body (m/s)."""
    adr = world.model.joint(name).dofadr[0]
    return float(np.linalg.norm(world.data.qvel[adr:adr + 3]))


def _held(world: SimWorld, name: str) -> bool:
    """Whether every finger touches body `name`."""
    return all(touching(world, finger, name) for finger in world.arm.finger_bodies)


# --- success checks: pure reads of the world -----------------------------------------------------
def cube_picked(world: SimWorld) -> bool:
    """The red cube's underside is LIFT_HEIGHT_M above the table and both fingers hold it."""
    bottom = world.object_pose('cube')[2, 3] - world.config.cube_size_m / 2
    return bottom >= LIFT_HEIGHT_M and _held(world, 'cube')


def cube_on_plate(world: SimWorld) -> bool:
    """The red cube rests on the green plate, its centre within the plate radius, released."""
    offset = world.object_pose('cube')[:2, 3] - world.object_pose('plate')[:2, 3]
    radius = world.model.geom('plate').size[0]
    released = not any(touching(world, finger, 'cube') for finger in world.arm.finger_bodies)
    return (np.linalg.norm(offset) <= radius and touching(world, 'cube', 'plate') and released
            and _speed(world, 'cube') < RESTING_SPEED_M_S)


def block_pushed_left(world: SimWorld) -> bool:
    """The blue block, flat on the table, has crossed PUSH_GOAL_Y_M to the left (+y)."""
    pose = world.object_pose('block')
    on_table = abs(pose[2, 3] - world.model.geom('block').size[2]) < 0.005 and pose[2, 2] > 0.99
    return pose[1, 3] >= PUSH_GOAL_Y_M and on_table


# --- seeded set-ups ------------------------------------------------------------------------------
def _sample_clear(rng, region, keep_out) -> np.ndarray:
    """Draw (x, y) in `region` at least r from each (centre, r) in `keep_out` (m)."""
    for _ in range(1000):
        xy = rng.uniform(*region)
        if all(np.linalg.norm(xy - centre) >= r for centre, r in keep_out):
            return xy
    raise RuntimeError(f'no free spot in {region} after 1000 draws')


def _block_aside(world: SimWorld, rng: np.random.Generator) -> None:
    """Put the blue block on the table as a distractor, beside the cube and plate regions."""
    side = rng.choice((-1.0, 1.0))
    xy = (rng.uniform(0.15, 0.3), side * rng.uniform(0.27, 0.32))
    world.place_object('block', xy, rng.uniform(-math.pi, math.pi))


def _lane_setup(world: SimWorld, rng: np.random.Generator) -> None:
    """Blue block right of the centre line; cube and plate moved out of its push lane."""
    block_xy = rng.uniform(*BLOCK_REGION)
    world.place_object('block', block_xy, rng.uniform(-0.25, 0.25))
    # The lane: from 8 cm right of the block (where the fingers come down) to 8 cm left of the
    # goal, as three discs of 8 cm radius; distractors keep their own radius on top of that.
    lane = [np.array([block_xy[0], y]) for y in np.linspace(block_xy[1] - 0.04, 0.04, 3)]
    region = ((0.12, -0.3), (0.42, 0.3))
    plate_xy = _sample_clear(rng, region, [(c, 0.08 + 0.06) for c in lane])
    cube_xy = _sample_clear(rng, region, [(c, 0.08 + 0.03) for c in lane] + [(plate_xy, 0.1)])
    world.place_object('plate', plate_xy)
    world.place_object('cube', cube_xy, rng.uniform(-math.pi, math.pi))


@dataclass(frozen=True)
class Task:
    """One tabletop task.

    Attributes:
        name: key in `TASKS`.
        instruction: the language instruction, as published on /vla/instruction.
        check: (world) -> bool, the success test; pure reads of world state.
        setup: (world, rng) -> None, lays out objects after `SimWorld.reset`.
        max_seconds: episode budget (s of simulated time) for benchmarks and recording.
        objects: the object categories the task is about (perception/objects.py), in the
            order of a policy's object-pose input (observation.environment_state).
    """

    name: str
    instruction: str
    check: Callable
    setup: Callable
    max_seconds: float = 20.0
    objects: tuple = ('cube',)

    def reset(self, world: SimWorld, seed: int) -> None:
        """Reset `world` with `seed` and lay out this task's objects, reproducibly.

        Args:
            world: the simulator; its arm goes to the ready pose, time to 0.
            seed: the same seed gives the same initial state (cube, plate, block, yaw).
        """
        world.reset(seed)
        # A stream of its own per task, so that the world's placement for a seed is unchanged.
        self.setup(world, np.random.default_rng([seed, sum(map(ord, self.name))]))

    def success(self, world: SimWorld) -> bool:
        """Whether the task is achieved in the current world state."""
        return bool(self.check(world))


TASKS = {
    'pick_red_cube': Task('pick_red_cube', 'pick up the red cube', cube_picked, _block_aside),
    'place_cube_on_plate': Task('place_cube_on_plate', 'put the red cube on the green plate',
                                cube_on_plate, _block_aside, objects=('cube', 'plate')),
    'push_block_left': Task('push_block_left', 'push the blue block to the left',
                            block_pushed_left, _lane_setup, objects=('block',)),
}


def get_task(name: str) -> Task:
    """The task called `name`.

    Raises:
        ValueError: `name` is not a key of `TASKS`; the message lists the names.
    """
    if name in TASKS:
        return TASKS[name]
    by_instruction = [t.name for t in TASKS.values() if t.instruction == name]
    hint = (f' ({name!r} is the instruction of task {by_instruction[0]!r})'
            if by_instruction else '')
    raise ValueError(f'unknown task {name!r}{hint}: choose one of {", ".join(TASKS)}')
