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

"""Tabletop tasks (vla_nodes/sim/tasks.py) and the scripted expert (vla_nodes/sim/expert.py).

Every task has an instruction, starts unsolved and reproducible from its seed, its success check
tells solved from unsolved states, and the IK expert solves it with smooth, speed-capped joint
targets without touching the world itself.
"""

import math
import os

os.environ.setdefault('MUJOCO_GL', 'egl')  # mujoco picks its GL backend when first imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vla_nodes.sim import expert, tasks  # noqa: E402
from vla_nodes.sim.episode import Episode, FAILURE, RUNNING, SUCCESS  # noqa: E402
from vla_nodes.sim.world import SimConfig, SimWorld  # noqa: E402

OBJECTS = ('cube', 'plate', 'block')


def _poses(sim: SimWorld) -> dict:
    return {name: sim.object_pose(name) for name in OBJECTS}


def test_each_task_has_its_instruction():
    assert {name: task.instruction for name, task in tasks.TASKS.items()} == {
        'pick_red_cube': 'pick up the red cube',
        'place_cube_on_plate': 'put the red cube on the green plate',
        'push_block_left': 'push the blue block to the left',
    }
    assert all(task.name == name for name, task in tasks.TASKS.items())
    assert set(expert.SCRIPTS) == set(tasks.TASKS)


@pytest.mark.parametrize('name', sorted(tasks.TASKS))
def test_not_solved_at_reset_nor_after_settling(world, name):
    task = tasks.TASKS[name]
    for seed in range(10):
        task.reset(world, seed)
        assert not task.success(world), seed
        world.step(0.3)  # the objects settle on the table; nothing solves itself
        assert not task.success(world), seed


@pytest.mark.parametrize('name', sorted(tasks.TASKS))
def test_seeded_reset_is_reproducible_and_seeds_differ(world, name):
    task = tasks.TASKS[name]
    task.reset(world, 11)
    first = _poses(world)
    task.reset(world, 12)
    other = _poses(world)
    task.reset(world, 11)
    again = _poses(world)
    for obj in OBJECTS:
        np.testing.assert_array_equal(again[obj], first[obj])
    moved = [np.linalg.norm(other[o][:3, 3] - first[o][:3, 3]) > 1e-3 for o in OBJECTS]
    assert any(moved)


def test_cube_tasks_keep_the_worlds_layout_and_put_the_block_aside(world):
    world.reset(5)
    cube, plate = world.object_pose('cube'), world.object_pose('plate')
    for name in ('pick_red_cube', 'place_cube_on_plate'):
        tasks.TASKS[name].reset(world, 5)
        np.testing.assert_array_equal(world.object_pose('cube'), cube)
        np.testing.assert_array_equal(world.object_pose('plate'), plate)
        block = world.object_pose('block')[:3, 3]
        assert block[2] == pytest.approx(0.02)  # on the table, in view as a distractor
        assert abs(block[1]) >= 0.27  # beside the cube and plate regions


def test_push_block_starts_8cm_right_of_the_goal_line_with_a_clear_lane(world):
    task = tasks.TASKS['push_block_left']
    for seed in range(20):
        task.reset(world, seed)
        block = world.object_pose('block')[:3, 3]
        assert block[1] <= tasks.PUSH_GOAL_Y_M - tasks.PUSH_MIN_DISTANCE_M
        for name in ('cube', 'plate'):
            xy = world.object_pose(name)[:2, 3]
            in_lane = abs(xy[0] - block[0]) < 0.08 and block[1] - 0.08 < xy[1] < 0.08
            assert not in_lane, (seed, name)


def test_push_success_is_the_goal_line_on_the_table(world):
    tasks.TASKS['push_block_left'].reset(world, 0)
    world.place_object('block', (0.25, 0.01))
    assert tasks.block_pushed_left(world)
    world.place_object('block', (0.25, -0.01))
    assert not tasks.block_pushed_left(world)
    world.reset(0)  # stowed under the table at y = 0: not on the table, not a success
    assert not tasks.block_pushed_left(world)


@pytest.mark.parametrize('name', sorted(tasks.TASKS))
def test_expert_solves_at_least_4_of_5_seeds(world, name):
    results = [expert.run_episode(name, seed, world=world) for seed in range(5)]
    assert sum(ok for ok, _ in results) >= 4, results
    assert all(seconds < tasks.TASKS[name].max_seconds for _, seconds in results)


def test_pick_success_needs_the_cube_held(world):
    ok, _ = expert.run_episode('pick_red_cube', 3, world=world)
    assert ok and tasks.cube_picked(world)
    assert world.object_pose('cube')[2, 3] - 0.02 >= tasks.LIFT_HEIGHT_M
    targets = world.data.ctrl[:7].copy()
    targets[6] = expert.GRIPPER_OPEN_M
    world.set_targets(targets)
    world.step(0.6)  # let go: the cube drops back to the table
    assert not tasks.cube_picked(world)
    assert world.object_pose('cube')[2, 3] < 0.03


def test_place_success_needs_the_cube_on_the_plate(world):
    ok, _ = expert.run_episode('place_cube_on_plate', 3, world=world)
    assert ok and tasks.cube_on_plate(world)
    offset = world.object_pose('cube')[:2, 3] - world.object_pose('plate')[:2, 3]
    assert np.linalg.norm(offset) <= 0.06
    world.place_object('plate', (0.25, -0.25))  # the plate slides away, the cube stays put
    assert not tasks.cube_on_plate(world)


def test_run_episode_stops_at_the_time_budget(world):
    ok, seconds = expert.run_episode('place_cube_on_plate', 0, max_seconds=1.0, world=world)
    assert not ok
    assert seconds == pytest.approx(1.0, abs=0.021)


def test_expert_targets_are_smooth_and_leave_the_world_alone(world):
    task = tasks.TASKS['place_cube_on_plate']
    task.reset(world, 2)
    bot = expert.ScriptedExpert(task, world)
    config, period = bot.config, 0.02
    commands, phases = [], []
    while not bot.done and world.time < task.max_seconds:
        qpos, ctrl = world.data.qpos.copy(), world.data.ctrl.copy()
        command = bot.action(world)
        np.testing.assert_array_equal(world.data.qpos, qpos)  # reading only
        np.testing.assert_array_equal(world.data.ctrl, ctrl)
        np.testing.assert_array_equal(bot.action(world), command)  # no time passed, no motion
        commands.append(command)
        phases.append(bot.phase)
        world.set_targets(command)
        world.step(period)
    assert bot.done and task.success(world)
    speeds = np.abs(np.diff(commands, axis=0)) / period  # (T-1, 7)
    assert speeds[:, :6].max() <= config.max_joint_speed + 1e-9
    assert speeds[:, :6].max() > 0.9 * config.max_joint_speed  # and it does move briskly
    assert speeds[:, 6].max() <= config.gripper_speed + 1e-9
    # Speed ramps: no joint jumps from rest to full speed in one step.
    accels = np.abs(np.diff(speeds[:, :6], axis=0)) / period
    assert accels.max() <= 1.25 * config.max_joint_accel
    order = list(dict.fromkeys(phases))
    assert order == ['pre-grasp', 'descend', 'close', 'lift', 'move', 'lower', 'open', 'retreat',
                     'done']


def test_closing_yaw_keeps_fingers_near_the_tangential():
    quarter = math.pi / 2
    assert expert.closing_yaw(0.0, (0.3, 0.0), quarter) == pytest.approx(quarter)
    assert expert.closing_yaw(0.1, (0.3, 0.0), quarter) == pytest.approx(quarter + 0.1)
    assert expert.closing_yaw(-0.1, (0.3, 0.0), math.pi) == pytest.approx(math.pi - 0.1)
    for yaw in np.linspace(-4.0, 4.0, 17):
        xy = (0.3, 0.2)
        tangential = math.atan2(0.2, 0.3) + quarter
        out = expert.closing_yaw(yaw, xy, quarter)
        assert abs(out - tangential) <= quarter / 2 + 1e-12
        turns = (out - yaw) / quarter
        assert turns == pytest.approx(round(turns), abs=1e-9)


def test_tool_pose_points_down_and_tilts_outward():
    pose = expert.tool_pose((0.3, 0.0, 0.1), math.pi / 2)
    np.testing.assert_allclose(pose[:3, :3], [[-1, 0, 0], [0, 1, 0], [0, 0, -1]], atol=1e-12)
    tilted = expert.tool_pose((0.0, 0.3, 0.1), math.pi, 0.3)
    np.testing.assert_allclose(tilted[:3, 2], [0.0, math.sin(0.3), -math.cos(0.3)], atol=1e-12)
    np.testing.assert_allclose(tilted[:3, 1], [-1.0, 0.0, 0.0], atol=1e-12)  # still closing on x


def test_same_seed_gives_the_same_episode_twice_in_a_row(world):
    first, second = [], []
    assert expert.run_episode('push_block_left', 7, world=world, trace=first)[0]
    blocks = world.object_pose('block')
    assert expert.run_episode('push_block_left', 7, world=world, trace=second)[0]
    assert len(first) > 100
    np.testing.assert_array_equal(np.array(first), np.array(second))  # bit for bit
    np.testing.assert_array_equal(world.object_pose('block'), blocks)


def test_unreachable_target_makes_the_expert_report_failure(world):
    task = tasks.TASKS['pick_red_cube']
    task.reset(world, 0)
    world.place_object('cube', (0.75, 0.0))  # beyond the arm's top-down reach
    bot = expert.ScriptedExpert(task, world)
    command = bot.action(world)  # no exception: the expert gives up and holds still
    assert bot.done and bot.phase == 'done'
    assert "phase 'pre-grasp': target out of reach: no IK solution" in bot.failure
    np.testing.assert_array_equal(command, world.joint_positions())
    world.step(0.1)
    np.testing.assert_array_equal(bot.action(world), command)


def test_episode_counts_seeds_and_reports_success_or_failure(world):
    episode = Episode(world, 'pick_red_cube', seed=5, expert=True)
    assert episode.status == '' and episode.seed is None
    assert episode.reset() == 5 and episode.status == RUNNING
    while episode.update() == RUNNING:
        world.set_targets(episode.leader_action())
        world.step(0.02)
    assert episode.status == SUCCESS and 'succeeded after' in episode.reason
    assert world.time < episode.task.max_seconds
    world.step(0.5)
    assert episode.update() == SUCCESS  # kept until the next reset
    # The next episode (seed 6): nobody moves the arm, the budget runs out.
    assert episode.reset() == 6 and episode.status == RUNNING and world.time == 0.0
    world.step(episode.task.max_seconds - 0.1)
    assert episode.update() == RUNNING
    world.step(0.2)
    assert episode.update() == FAILURE and 'no success within 20.0 s' in episode.reason
    # Seed 7: the cube out of reach, the expert gives up, the episode fails at once.
    assert episode.reset() == 7
    world.place_object('cube', (0.75, 0.0))
    episode.leader_action()
    assert episode.status == FAILURE and 'expert gave up' in episode.reason


def test_tasks_are_looked_up_by_name_with_a_helpful_error():
    assert tasks.get_task('push_block_left') is tasks.TASKS['push_block_left']
    with pytest.raises(ValueError, match='choose one of pick_red_cube, place_cube_on_plate'):
        tasks.get_task('stack')
    with pytest.raises(ValueError, match="instruction of task 'place_cube_on_plate'"):
        Episode(None, 'put the red cube on the green plate')


def test_pick_grasp_yaw_varies_continuously_with_the_cube():
    """The expert's grasp turns with the cube and, over seeds, stays clear of its wrap.

    Measured across the cube yaw where the old rule (nearest the tangential) flipped by 90 deg.
    """
    world = SimWorld(SimConfig())
    world.reset(seed=0)
    xy = (0.3, -0.1)  # azimuth -18 deg: relative to the tangential the yaw crosses 45 deg
    yaws = np.linspace(0.2, 0.6, 41)
    grasps = []
    for yaw in yaws:
        world.place_object('cube', xy, yaw)
        grasps.append(expert.cube_grasp_yaw(world))
    np.testing.assert_allclose(np.diff(grasps), np.diff(yaws), atol=1e-6)
    old = [expert.closing_yaw(yaw, xy, math.pi / 2) for yaw in yaws]
    assert np.abs(np.diff(old)).max() > 1.0  # what the demos used to do here
    centre, gap = expert.grasp_yaw_centre(world.config), math.pi / 4
    for seed in range(100):
        world.reset(seed=seed)
        offset = expert.cube_grasp_yaw(world) - centre
        assert abs(offset) <= gap - math.radians(4)
