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

"""ArmController without ROS or CAN: a fake arm, ticks called by hand (node: test_arm_driver)."""

import dataclasses
import time

import numpy as np
import pytest

from vla_nodes.arm import kinematics
from vla_nodes.arm.controller import ArmController, ControlConfig
from vla_nodes.arm.feedback_guard import CONFIRM_FRAMES
from vla_nodes.arm.piper import ArmFeedback, EndPose
from vla_nodes.arm.safety import SafetyFilter

READY = np.array([0.0, 0.5, -0.5, 0.0, 0.3, 0.0, 0.03])
DT_NS = 5_000_000  # 200 Hz


class FakeArm:
    """Feedback at `q` (fresh stamps, a matching end pose); `send` moves it there at once."""

    def __init__(self, q):
        self.q, self.sent, self.enabled = np.array(q, float), [], False

    def read(self):
        self._stamp = time.time()  # the end pose of the same instant: one stamp, even under load
        return ArmFeedback(self.q.copy(), self._stamp, True)

    def read_end_pose(self):
        xyz_quat = kinematics.pose_to_xyz_quat(kinematics.forward_kinematics(self.q[:6]))
        return EndPose(xyz_quat[:3], xyz_quat[3:], self._stamp, True)

    def read_leader(self):
        return None

    def status(self, drivers=True):
        return {'stamp': time.time(), 'arm_status': 0, 'err_code': 0, 'bus_state': 'ACTIVE'}

    def enable(self, timeout, gripper):
        self.enabled = True

    def send(self, q):
        self.sent.append(np.array(q, float))
        return q


def tick(control, now_ns):
    return control.act(now_ns, control.sense(now_ns))


@pytest.fixture
def control():
    control = ArmController(FakeArm(READY), SafetyFilter(),
                            ControlConfig(dt=DT_NS / 1e9, dry_run=False))
    for i in range(CONFIRM_FRAMES):
        tick(control, i * DT_NS)
    assert control.guard.trusted
    assert control.set_enabled(True) and control.arm.enabled
    return control


def test_after_an_episode_start_the_first_command_is_the_measured_position(control):
    now = 100 * DT_NS
    goal = READY + [0.3, 0, 0, 0, 0, 0, 0]
    control.follow_chunk(now, [0.5, 1.0], [goal, goal], now)
    for _ in range(20):
        now += DT_NS
        tick(control, now)
    assert control.arm.sent[-1][0] > READY[0] + 0.01  # following the chunk
    control.arm.q = control.arm.sent[-1] - [0.02, 0, 0, 0, 0, 0, 0]  # the arm lags behind
    control.start_episode(now)
    now += DT_NS
    sent = tick(control, now)
    np.testing.assert_allclose(sent, control.arm.q)  # not the old chunk, not the last command


def test_stale_commands_send_nothing_and_count_as_held(control):
    now = 100 * DT_NS
    control.follow_target(READY, now)
    assert tick(control, now + DT_NS) is not None
    assert tick(control, now + int(0.6e9)) is None  # command_timeout_s 0.5 past its end
    assert control.counts['held'] == 1


def test_chunks_stamped_in_the_future_are_refused(control):
    with pytest.raises(ValueError, match='in the future'):
        control.follow_chunk(int(1e9), [0.1], [READY], 0)
    assert control.counts['chunks'] == 0


def test_the_leader_counts_while_its_frames_keep_coming_on_the_node_clock():
    # piper_sdk's Hz (a wall-clock thread) made the leader's first frames count from a
    # wall-clock instant: two lock-step recordings of one seed began their actions apart.
    frames = {'stamp': 0.0}
    arm = FakeArm(READY)
    arm.read_leader = lambda: None if not frames['stamp'] else ArmFeedback(
        READY.copy(), frames['stamp'], False, True)  # seen, the SDK's rate still 0
    control = ArmController(arm, SafetyFilter(),
                            ControlConfig(dt=DT_NS / 1e9, dry_run=False, sim_time=True))
    now = 100 * DT_NS
    assert control.sense(now).leader is None
    frames['stamp'] = 1.0
    assert control.sense(now).leader is not None  # at once: no rate to wait for
    timeout_ns = int(control.config.can_timeout_s * 1e9)
    assert control.sense(now + timeout_ns).leader is not None
    assert control.sense(now + timeout_ns + DT_NS).leader is None  # the leader fell silent
    frames['stamp'] = 2.0
    assert control.sense(now + timeout_ns + 2 * DT_NS).leader is not None
    wall = ArmController(arm, SafetyFilter(), ControlConfig(dt=DT_NS / 1e9))
    assert wall.sense(now).leader is None  # on the wall clock the SDK's verdict stands


def test_under_simulated_time_feedback_counts_without_the_sdks_wall_clock_rate():
    # piper_sdk's Hz stays 0 until its thread's first 0.1 s of wall time: on a loaded machine
    # the first lock-step episode's feedback was confirmed later in simulated time, and two
    # evaluations of one seed differed.
    arm = FakeArm(READY)
    read, read_end_pose = arm.read, arm.read_end_pose
    arm.read = lambda: dataclasses.replace(read(), valid=False)  # seen, no rate yet
    arm.read_end_pose = lambda: dataclasses.replace(read_end_pose(), valid=False)
    control = ArmController(arm, SafetyFilter(),
                            ControlConfig(dt=DT_NS / 1e9, dry_run=False, sim_time=True))
    for i in range(CONFIRM_FRAMES):
        tick(control, i * DT_NS)
    assert control.guard.trusted
    frozen = read()  # the arm falls silent: no new stamp on the node's clock
    arm.read = lambda: dataclasses.replace(frozen, valid=False)
    timeout_ns, now = int(control.config.can_timeout_s * 1e9), CONFIRM_FRAMES * DT_NS
    assert control.sense(now).verdict.ok
    assert control.sense(now + timeout_ns + DT_NS).verdict.ok is False
    wall_arm = FakeArm(READY)
    wall_read = wall_arm.read
    wall_arm.read = lambda: dataclasses.replace(wall_read(), valid=False)
    wall = ArmController(wall_arm, SafetyFilter(), ControlConfig(dt=DT_NS / 1e9))
    for i in range(CONFIRM_FRAMES):
        tick(wall, i * DT_NS)
    assert not wall.guard.trusted  # on the wall clock the SDK's verdict stands
