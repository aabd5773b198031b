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

"""The simulated Piper's state and stepping behind sim_node (pure Python and python-can, no ROS).

Where it fits: sim_node publishes what this class computes. It owns the MuJoCo world
(`sim.world.SimWorld`), the task's episode (`sim.episode.Episode`), the arm's firmware
(`sim.piper_can.PiperFirmware`) on its python-can bus and, with `leader: expert`, the leader arm
(`sim.leader.LeaderArm`) on a bus of its own on the same channel, which the scripted expert plays.
Simulated time (`sim_seconds`) keeps counting across episodes: a reset adds the old episode's
time plus one physics period, so every stamp of the old episode is older than the new one's start.

Lock-step (`advance`): one physics period is the leader's frames (at its rate), the firmware's
commands, planner and MuJoCo, its feedback frames, then the task's status check (at its rate);
every rate is counted in physics steps, so it stays exact however fast time runs.
"""

import threading
import time

import numpy as np

from vla_nodes import contract
from vla_nodes.arm.can_bus import open_bus
from vla_nodes.sim.can_readers import CanReaders
from vla_nodes.sim.episode import Episode
from vla_nodes.sim.episode_result import episode_result
from vla_nodes.sim.leader import LeaderArm
from vla_nodes.sim.piper_can import PiperFirmware
from vla_nodes.sim.robot_model import CAMERA_NAME, WRIST_CAMERA_NAME
from vla_nodes.sim.tasks import get_task
from vla_nodes.sim.virtual_can import FastVirtualBus
from vla_nodes.sim.world import SimConfig, SimWorld

STATUS_CHECK_HZ = 10.0
FIRMWARE_LOW_SPEED_HZ = 20.0
# How long a reset waits for the CAN readers (piper_sdk's thread) to take the new state's frames,
# and lock-step for them to take a step's frames, before giving up on one (wall s).
CAN_SETTLE_S = 1.0
# MuJoCo reports the far plane where nothing was hit; a real camera reports no depth there.
MAX_VALID_DEPTH_M = 10.0
SIM_CAMERAS = {contract.SCENE_CAMERA.name: CAMERA_NAME,
               contract.WRIST_CAMERA.name: WRIST_CAMERA_NAME}


class Simulation:
    """World, episode, firmware and leader arm, stepped under one lock.

    Args:
        p: sim_node's parameters (its PARAMETERS, by name).

    Raises:
        ValueError: an unknown task or camera, or a robot model without a named camera; raised
            before the firmware starts, so a refused configuration leaves no thread running.
    """

    def __init__(self, p: dict):
        get_task(p['task'])  # an unknown name fails before the world is built
        self.world = SimWorld(SimConfig(width=p['width'], height=p['height'], seed=p['seed'],
                                        mjcf_path=p['mjcf_path'], joint_map=tuple(p['joint_map'])))
        self.episode = Episode(self.world, p['task'], p['seed'], expert=bool(p['leader']),
                               max_seconds=p['max_episode_s'] or None)
        # The firmware thread reads the state while we step; the lock-step thread reads it
        # through the firmware while it holds the lock.
        self.lock = threading.RLock()
        self.dt = 1.0 / p['physics_rate_hz']
        self._time_offset = 0.0  # simulated seconds of earlier episodes: time never goes back
        self.episode.reset()
        self.cameras = self._checked_cameras(p['cameras'])
        self._lockstep = p['lockstep']
        self._open_firmware(p)
        self.leader, self._leader_bus = None, None
        if p['leader'] == 'expert':
            self._leader_bus = _open_bus(p)  # its own bus, like a second arm on the wire
            self.leader = LeaderArm(self._leader_bus)
            self.leader.enable()
        self.readers = (CanReaders(p['can_name'], (self._bus, self._leader_bus))
                        if p['can_interface'] == 'virtual' else None)
        # Periods in physics steps (lock-step): every rate is simulated.
        self._every = {k: max(1, round(p['physics_rate_hz'] / hz)) for k, hz in (
            ('camera', p['camera_rate_hz']), ('leader', p['leader_rate_hz']),
            ('status', STATUS_CHECK_HZ), ('low_speed', FIRMWARE_LOW_SPEED_HZ))}
        self._steps = 0  # physics steps of this episode (lock-step)
        if self._lockstep:
            self._firmware.send_feedback(low_speed=True)

    def _checked_cameras(self, names) -> list:
        """(simulator camera name, contract.Camera) of each named camera; ValueError if unknown."""
        cameras = contract.cameras(names)
        unknown = [c.name for c in cameras if c.name not in SIM_CAMERAS]
        if unknown:
            raise ValueError(f'cameras {unknown}: the simulator has {list(SIM_CAMERAS)}')
        for c in cameras:
            self.world.camera_pose(SIM_CAMERAS[c.name])  # a user MJCF without it fails now
        return [(SIM_CAMERAS[c.name], c) for c in cameras]

    def _open_firmware(self, p) -> None:
        self._bus = _open_bus(p)
        self._firmware = PiperFirmware(self._bus, self._read_state, rate_hz=p['feedback_rate_hz'])
        if not self._lockstep:
            self._firmware.start()  # in lock-step the stepping thread drives it

    def _read_state(self) -> np.ndarray:
        with self.lock:
            return self.world.joint_positions()

    def sim_seconds(self) -> float:
        """Simulated time since start-up (s), across episodes; call with the lock held."""
        return self._time_offset + self.world.time

    def reset(self) -> tuple:
        """The next episode: (its seed, its first instant in simulated s)."""
        with self.lock:
            if self._lockstep:
                self._firmware.step(0.0)  # commands of the old episode, before the hold
            # One period more: every stamp of the old episode is older than the boundary.
            self._time_offset += self.world.time + self.dt
            seed = self.episode.reset()
            self._firmware.hold(self.world.joint_positions())  # no pull back to the old pose
            self._firmware.send_feedback()
            self._steps = 0
            return seed, self.sim_seconds()

    def settle_can(self) -> bool:
        """Wait until the CAN readers took their frames; False when one was given up on."""
        return self.readers is None or self.readers.settle(CAN_SETTLE_S)

    def result(self) -> dict:
        """The episode's figures, measured now (sim.episode_result)."""
        with self.lock:
            return episode_result(self.world, self.episode)

    def check_status(self) -> str:
        """Run the task's check; the episode's status."""
        with self.lock:
            return self.episode.update()

    def lead(self) -> None:
        """The expert's next leader-arm frames (real time)."""
        with self.lock:
            action = self.episode.leader_action()
        self.leader.send(action)

    def step(self) -> float:
        """One physics period toward the firmware's setpoint (real time); simulated s after it."""
        with self.lock:
            self.world.set_targets(self._firmware.targets().positions)
            self.world.step(self.dt)
            return self.sim_seconds()

    def stand_still(self, low_speed: bool) -> None:
        """Answer the firmware's commands (enable, queries) while time stands still."""
        with self.lock:
            self._firmware.step(0.0, low_speed=low_speed)

    def now(self) -> tuple:
        """(whether a camera frame is due at this step, simulated s) (lock-step)."""
        with self.lock:
            return self._steps % self._every['camera'] == 0, self.sim_seconds()

    def advance(self) -> bool:
        """One lock-step physics period; whether the task's status was checked at its end."""
        with self.lock:
            k = self._steps
            if self.leader is not None and k % self._every['leader'] == 0:
                self.leader.send(self.episode.leader_action())
            self._firmware.step(self.dt, advance=self._physics,
                                low_speed=k % self._every['low_speed'] == 0)
            self._steps = k = k + 1
            check = k % self._every['status'] == 0
            if check:
                self.episode.update()
        return check

    def _physics(self, setpoint) -> None:
        self.world.set_targets(setpoint)
        self.world.step(self.dt)

    def resend_after(self, silence_s: float) -> None:
        """Re-send the last feedback frames when none went out for `silence_s` (wall s)."""
        if time.monotonic() - self._firmware.feedback_sent_at >= silence_s:
            self._firmware.resend()

    def render(self, sim_names) -> tuple:
        """([(rgb, depth m (NaN: no return), (K, width, height))], stamp ns): one instant."""
        with self.lock:
            frames = [(self.world.render(name), self.world.intrinsics(name)) for name in sim_names]
            stamp_ns = int(round(self.sim_seconds() * 1e9))
        return [(rgb, np.where(depth_m < MAX_VALID_DEPTH_M, depth_m, np.nan), intrinsics)
                for (rgb, depth_m), intrinsics in frames], stamp_ns

    def close_renderer(self) -> None:
        """Free the GL context: call it from the thread that rendered."""
        with self.lock:
            self.world.close()

    def close(self) -> None:
        """Stop the firmware and shut its bus (and the leader's) down."""
        self._firmware.stop()
        self._bus.shutdown()
        if self._leader_bus is not None:
            self._leader_bus.shutdown()


def _open_bus(p):
    if p['can_interface'] == 'virtual':
        return FastVirtualBus(channel=p['can_name'], receive_own_messages=False)
    return open_bus(p['can_interface'], p['can_name'], p['can_bind_address'])
