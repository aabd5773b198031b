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

"""sim_node on the local backend: tasks by name, episodes and resets, the expert as leader arm.

Real parts only: MuJoCo, the simulated firmware on a python-can virtual bus, and the real
piper_sdk (through PiperArm) listening on that bus like arm_driver_node does.
"""

import itertools
import os

os.environ.setdefault('MUJOCO_GL', 'egl')  # mujoco picks its GL backend when first imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from graph import spin_executor  # noqa: E402
from vla_nodes import contract  # noqa: E402
from vla_nodes.arm.piper import PiperArm, PiperConfig  # noqa: E402
from vla_nodes.nodes.sim_node import EPISODE_STATUS_TOPIC, SimNode  # noqa: E402
from vla_nodes.ros import local, qos_profile_latched  # noqa: E402
from vla_nodes.ros.msgs import rosgraph_msgs, std_msgs, std_srvs  # noqa: E402
from vla_nodes.sim import tasks  # noqa: E402
from vla_nodes.sim.world import SimWorld  # noqa: E402

READY = np.array(contract.READY_POSITIONS)
_channels = itertools.count()
# piper_sdk 0.6.2 still passes python-can's deprecated `bustype`.
pytestmark = pytest.mark.filterwarnings('ignore:.*bustype.*:DeprecationWarning')


def _args(**params) -> list:
    args = ['--ros-args']
    for name, value in params.items():
        args += ['-p', f'{name}:={value}']
    return args


def test_expert_leads_the_follower_over_can_until_success_then_reset(ctx):
    channel = f'test_sim_node_{next(_channels)}'
    sim = SimNode(context=ctx, cli_args=_args(
        leader='expert', can_name=channel, seed=3, camera_rate_hz=2.0))
    probe = local.Node('probe', context=ctx)
    statuses, clock = [], []
    probe.create_subscription(std_msgs.String, EPISODE_STATUS_TOPIC,
                              lambda m: statuses.append(m.data), qos_profile_latched)
    probe.create_subscription(std_msgs.String, contract.INSTRUCTION_TOPIC,
                              lambda m: statuses.append('instruction: ' + m.data),
                              qos_profile_latched)
    probe.create_subscription(rosgraph_msgs.Clock, contract.CLOCK_TOPIC,
                              lambda m: clock.append(m.clock.sec + m.clock.nanosec * 1e-9), 10)
    # The driver's view of the bus: the real SDK decodes feedback and the leader's frames.
    arm = PiperArm(PiperConfig(can_name=channel, interface='virtual', connect_timeout=2.0))
    arm.connect()
    executor = local.MultiThreadedExecutor(context=ctx)
    executor.add_node(sim)
    executor.add_node(probe)
    leader, follower = [], []

    def sample():
        lead, fb = arm.read_leader(), arm.read()
        if lead is not None and lead.valid and fb.valid:
            leader.append(lead.positions)
            follower.append(fb.positions)

    try:
        budget = tasks.TASKS['pick_red_cube'].max_seconds
        # Wall time may run slower than simulated time on a loaded machine; the budget is
        # checked in simulated time below.
        assert spin_executor(executor, 4 * budget,
                             lambda: 'success' in statuses or 'failure' in statuses,
                             every=sample), (statuses, clock[-1:])
        assert statuses[:3] == ['instruction: pick up the red cube', 'running', 'success'] or \
            statuses[:3] == ['running', 'instruction: pick up the red cube', 'success']
        assert clock[-1] < budget
        spin_executor(executor, 1.0, every=sample)  # the expert holds
        leader, follower = np.array(leader), np.array(follower)
        assert len(leader) > 50
        # The follower moved, close behind the leader arm all along, and ends where it is told.
        assert np.abs(follower[-1, :6] - READY[:6]).max() > 0.2
        assert np.abs(follower[:, :6] - leader[:, :6]).max() < 0.15  # 1 rad/s, < 0.15 s behind
        np.testing.assert_allclose(follower[-1, :6], leader[-1, :6], atol=0.01)
        assert np.abs(leader[:, 6]).min() < 1e-3  # the gripper was told to close ...
        assert follower[-1, 6] == pytest.approx(0.04, abs=3e-3)  # ... and it holds the cube

        client = probe.create_client(std_srvs.Trigger, '/sim_node/reset')
        future = client.call_async(std_srvs.Trigger.Request())
        assert spin_executor(executor, 5.0, future.done)
        assert future.result().success and future.result().message == 'seed 4'
        assert spin_executor(executor, 2.0, lambda: statuses[-1] == 'running')
        # The new episode starts at the ready pose with seed 4's layout, and the clock went on.
        after, before = [], clock[-1]
        spin_executor(executor, 5.0, lambda: clock[-1] > before + 0.3,
                      every=lambda: after.append(arm.read().positions))
        assert min(np.abs(q[:6] - READY[:6]).max() for q in after) < 0.05
        assert np.all(np.diff(clock) >= 0)
        expected = SimWorld()
        tasks.TASKS['pick_red_cube'].reset(expected, 4)
        with sim._sim.lock:  # the test peeks at the world; the cube has not been touched yet
            np.testing.assert_allclose(sim._sim.world.object_pose('cube')[:3, 3],
                                       expected.object_pose('cube')[:3, 3], atol=2e-3)
    finally:
        executor.shutdown()
        arm.close()
        sim.destroy_node()


def test_unknown_task_is_refused_with_the_task_names(ctx):
    with pytest.raises(ValueError, match='pick_red_cube, place_cube_on_plate, push_block_left'):
        SimNode(context=ctx, cli_args=_args(task='stack_cubes'))
    with pytest.raises(ValueError, match="instruction of task 'pick_red_cube'"):
        SimNode(context=ctx, cli_args=['--ros-args', '-p', 'task:=pick up the red cube'])


def test_invalid_mjcf_path_is_refused_naming_it(ctx):
    with pytest.raises(ValueError, match="mjcf_path '/nonexistent/piper.xml' is not a file"):
        SimNode(context=ctx, cli_args=_args(mjcf_path='/nonexistent/piper.xml'))


def test_unknown_leader_is_refused(ctx):
    with pytest.raises(ValueError, match="leader must be '' .* or 'expert'"):
        SimNode(context=ctx, cli_args=_args(leader='human'))
