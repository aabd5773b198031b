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

"""sim_node: the simulated Piper, its camera and its task, for users without hardware and for CI.

Hosts a MuJoCo world (`sim.world.SimWorld`) and the arm's firmware (`sim.piper_can.PiperFirmware`)
on a python-can bus, so `arm_driver_node` drives it through the real piper_sdk exactly as it drives
a real arm. Publishes what realsense-ros would (colour rgb8, aligned depth 16UC1 millimetres,
camera_info), the camera-to-base transform on `/tf_static`, the task's instruction (latched), the
episode status and the simulation clock on `/clock`. Parameter `cameras` names the cameras it
renders (contract.CAMERAS): 'scene' (the fixed D455-like camera, the default) and 'wrist' (a
D405-like camera on link6, on /camera/wrist_camera/...); each camera costs a render per frame,
so the wrist one is rendered only when named. The wrist camera moves with the arm: its frame is
in the description (description/piper_wrist_camera.yaml, fixed on the flange), and /tf comes
from the joint states (robot_state_node), as on a robot. Its own timers run on wall time: it is the
clock the others follow; `/clock` keeps counting across episode resets.

Episodes (`sim.episode.Episode`): parameter `task` names a task of `sim.tasks.TASKS`; the first
episode uses parameter `seed`, each `~/reset` (std_srvs/Trigger, answers 'seed N') the next seed.
`/sim/episode_status` (std_msgs/String, latched) says 'running' after a reset, then 'success' or
'failure' (the task's check, or its time budget in simulated seconds, or the expert giving up);
just before the end, `/sim/episode_result` (JSON, latched) carries the episode's figures:
simulated duration and the grasp centre's distance to each object.
With `leader: expert` the scripted expert plays the leader arm: it sends, on a bus of its own on
the same CAN channel, the frames a Piper leader arm sends (`sim.leader.LeaderArm`), which the
simulated follower executes and `arm_driver_node` publishes on `/leader/joint_states`.
A user's robot MJCF loads with `mjcf_path` and `joint_map` (see `sim/robot_model.py`).

Episode boundaries: every reset publishes `/vla/episode_start` (std_msgs/Header, latched) stamped
with the first instant of the new episode; `/clock` jumps one physics period across a reset, so
every stamp of the old episode is strictly older. The driver and the policy drop what they hold.

Lock-step (`lockstep: true`, for evaluation and demos; needs the local runtime and the virtual
CAN bus): simulated time advances only when the graph has done what it would have done by then.
One thread steps: render the frame due now, publish `/clock`, wait until every callback of the
process has run and the CAN readers have drained their frames, then one physics period
(firmware commands, planner, MuJoCo, feedback frames); the leader arm and the status check run at
their simulated rates. Between episodes (before the first `~/reset`, and once the status is
'success' or 'failure') time stands still; the firmware keeps answering on the bus. Same seed,
same graph: the same episode, bit for bit.
"""

import json
import threading
import time

import numpy as np

from vla_nodes import contract, ros
from vla_nodes.arm import kinematics
from vla_nodes.nodes import run
from vla_nodes.nodes.camera_topics import camera_info, CameraPublishers
from vla_nodes.nodes.parameters import declare_parameters
from vla_nodes.perception.depth import metres_to_mm
from vla_nodes.ros.convert import transform_msg
from vla_nodes.ros.msgs import rosgraph_msgs, std_msgs, std_srvs, tf2_msgs
from vla_nodes.sim.can_readers import CanReaders
from vla_nodes.sim.episode_result import episode_result
from vla_nodes.sim.robot_model import DEFAULT_JOINT_MAP

EPISODE_STATUS_TOPIC = contract.EPISODE_STATUS_TOPIC
LEADERS = ('', 'expert')
STATUS_CHECK_HZ = 10.0
FIRMWARE_LOW_SPEED_HZ = 20.0
# Lock-step: how often the firmware re-sends its feedback while time stands still (wall s), and
# how long to wait for the CAN readers (piper_sdk's thread) to take their frames before stepping.
HEARTBEAT_S = 0.02
# While time runs, a step waits for rendering or inference: re-send only after a longer silence,
# still well under piper_sdk's 0.1 s (each re-send is 8 frames for the SDK to parse again).
RUNNING_HEARTBEAT_S = 0.05
CAN_SETTLE_S = 1.0
# MuJoCo reports the far plane where nothing was hit; a real camera reports no depth there.
MAX_VALID_DEPTH_M = 10.0
PARAMETERS = {
    'width': 320,
    'height': 240,
    'camera_rate_hz': 10.0,
    'physics_rate_hz': 100.0,
    'seed': 0,
    'task': 'pick_red_cube',
    'leader': '',
    'leader_rate_hz': 50.0,
    'can_interface': 'virtual',
    'can_name': 'vla_sim',
    # udp_multicast: the interface the bus listens on; 0.0.0.0 lets the network inject frames.
    'can_bind_address': '127.0.0.1',
    'feedback_rate_hz': 200.0,
    'mjcf_path': '',
    'joint_map': list(DEFAULT_JOINT_MAP),
    'lockstep': False,
    'max_episode_s': 0.0,  # 0 = the task's time budget
    'cameras': list(contract.DEFAULT_CAMERAS),
}


class SimNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('sim_node', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        self._check_config(p)
        self._build_world(p)
        cameras = self._checked_cameras(p['cameras'])
        # Only now the firmware thread: a refused configuration must not leave it running.
        self._firmware, self._bus = self._start_firmware(p)
        # The wrist camera first: when the scene frame (policy_node's trigger) arrives, the
        # wrist frame of the same instant is already there.
        self._cameras = [(sim_name, CameraPublishers(self, c)) for sim_name, c in sorted(
            cameras, key=lambda named: named[1] is contract.SCENE_CAMERA)]
        self._create_interfaces()
        self._leader, self._leader_bus = None, None
        if p['leader'] == 'expert':
            self._start_leader(p)
        self._start_threads(p)
        self.get_logger().info(
            f"simulated Piper on CAN {p['can_interface']}:{p['can_name']}, cameras "
            f"{[c.name for _, c in cameras]} {p['width']}x{p['height']} at "
            f"{p['camera_rate_hz']} Hz, task {p['task']!r} "
            f"seed {self._episode.seed}, leader {p['leader'] or 'none'}"
            f"{', lock-step: time stands still until ~/reset' if self._lockstep else ''}")

    def _check_config(self, p) -> None:
        if p['leader'] not in LEADERS:
            raise ValueError(f"leader must be '' (no leader arm) or 'expert', got {p['leader']!r}")
        self._lockstep = p['lockstep']
        local_runtime = hasattr(self.context, 'idle')
        if self._lockstep and (p['can_interface'] != 'virtual' or not local_runtime):
            raise ValueError('lockstep needs the local runtime (VLA_ROS_BACKEND=local, one '
                             "process) and can_interface 'virtual'")

    def _build_world(self, p) -> None:
        from vla_nodes.sim.episode import Episode
        from vla_nodes.sim.tasks import get_task
        from vla_nodes.sim.world import SimConfig, SimWorld
        get_task(p['task'])  # an unknown name fails before the world is built
        self._world = SimWorld(SimConfig(width=p['width'], height=p['height'], seed=p['seed'],
                                         mjcf_path=p['mjcf_path'],
                                         joint_map=tuple(p['joint_map'])))
        self._episode = Episode(self._world, p['task'], p['seed'], expert=bool(p['leader']),
                                max_seconds=p['max_episode_s'] or None)
        # The firmware thread reads the state while we step; the lock-step thread reads it
        # through the firmware while it holds the lock.
        self._lock = threading.RLock()
        self._dt = 1.0 / p['physics_rate_hz']
        self._time_offset = 0.0  # simulated seconds of earlier episodes: /clock never goes back
        self._episode.reset()

    def _checked_cameras(self, names) -> list:
        """(simulator camera name, contract.Camera) of each named camera; ValueError if unknown."""
        from vla_nodes.sim.robot_model import CAMERA_NAME, WRIST_CAMERA_NAME
        sim_cameras = {contract.SCENE_CAMERA.name: CAMERA_NAME,
                       contract.WRIST_CAMERA.name: WRIST_CAMERA_NAME}
        cameras = contract.cameras(names)
        unknown = [c.name for c in cameras if c.name not in sim_cameras]
        if unknown:
            raise ValueError(f'cameras {unknown}: the simulator has {list(sim_cameras)}')
        for c in cameras:
            self._world.camera_pose(sim_cameras[c.name])  # a user MJCF without it fails now
        return [(sim_cameras[c.name], c) for c in cameras]

    def _create_interfaces(self) -> None:
        self._clock_pub = self.create_publisher(rosgraph_msgs.Clock, contract.CLOCK_TOPIC, 10)
        self._status_pub = self.create_publisher(std_msgs.String, EPISODE_STATUS_TOPIC,
                                                 ros.qos_profile_latched)
        self._result_pub = self.create_publisher(std_msgs.String, contract.EPISODE_RESULT_TOPIC,
                                                 ros.qos_profile_latched)
        self._episode_start_pub = self.create_publisher(
            std_msgs.Header, contract.EPISODE_START_TOPIC, ros.qos_profile_latched)
        self._published_status = ''
        self._publish_latched(self._episode.task.instruction)
        self._publish_status()
        self._publish_episode_start(0.0)
        self.create_service(std_srvs.Trigger, '~/reset', self._on_reset)

    def _start_threads(self, p) -> None:
        self._camera_period = 1.0 / p['camera_rate_hz']
        self._stop = threading.Event()
        self._readers = (CanReaders(p['can_name'], (self._bus, self._leader_bus))
                         if p['can_interface'] == 'virtual' else None)
        if self._lockstep:
            # Periods in physics steps: every rate is simulated, so it stays exact however fast.
            every = {k: max(1, round(p['physics_rate_hz'] / hz)) for k, hz in (
                ('camera', p['camera_rate_hz']), ('leader', p['leader_rate_hz']),
                ('status', STATUS_CHECK_HZ), ('low_speed', FIRMWARE_LOW_SPEED_HZ))}
            self._every = every
            self._running, self._episode_steps = False, 0
            self._firmware.send_feedback(low_speed=True)
            target, name = self._lockstep_loop, 'sim_lockstep'
            threading.Thread(target=self._heartbeat, name='sim_heartbeat', daemon=True).start()
        else:
            self.create_timer(self._dt, self._step)
            self.create_timer(1.0 / STATUS_CHECK_HZ, self._check_status)
            if self._leader is not None:
                self.create_timer(1.0 / p['leader_rate_hz'], self._lead)
            target, name = self._camera_loop, 'sim_camera'
        # An EGL context belongs to one thread: the camera renders on its own thread (the
        # lock-step thread in lock-step), which also keeps the executor free while it renders.
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def _open_bus(self, p):
        if p['can_interface'] == 'virtual':
            from vla_nodes.sim.virtual_can import FastVirtualBus
            return FastVirtualBus(channel=p['can_name'], receive_own_messages=False)
        from vla_nodes.arm.can_bus import open_bus
        return open_bus(p['can_interface'], p['can_name'], p['can_bind_address'])

    def _start_firmware(self, p):
        from vla_nodes.sim.piper_can import PiperFirmware
        bus = self._open_bus(p)
        firmware = PiperFirmware(
            bus, self._read_state, rate_hz=p['feedback_rate_hz'],
            fk=lambda q6: kinematics.pose_to_xyz_rpy(kinematics.forward_kinematics(q6)))
        if not p['lockstep']:
            firmware.start()  # in lock-step the stepping thread drives it
        return firmware, bus

    def _start_leader(self, p) -> None:
        from vla_nodes.sim.leader import LeaderArm
        self._leader_bus = self._open_bus(p)  # its own bus, like a second arm on the wire
        self._leader = LeaderArm(self._leader_bus)
        self._leader.enable()

    def _read_state(self) -> np.ndarray:
        with self._lock:
            return self._world.joint_positions()

    def _publish_latched(self, instruction: str) -> None:
        pub = self.create_publisher(std_msgs.String, contract.INSTRUCTION_TOPIC,
                                    ros.qos_profile_latched)
        pub.publish(std_msgs.String(data=instruction))
        tf_static = self.create_publisher(tf2_msgs.TFMessage, contract.TF_STATIC_TOPIC,
                                          ros.qos_profile_latched)
        tf_static.publish(tf2_msgs.TFMessage(transforms=[self._camera_transform()]))

    def _camera_transform(self):
        xyz_quat = kinematics.pose_to_xyz_quat(self._world.camera_pose())
        return transform_msg(contract.BASE_FRAME, contract.CAMERA_FRAME, xyz_quat)

    def _sim_seconds(self) -> float:
        """Simulated time since start-up (s), across episodes; call with the lock held."""
        return self._time_offset + self._world.time

    # --- episode --------------------------------------------------------------------------------
    def _on_reset(self, request, response):
        with self._lock:
            if self._lockstep:
                self._firmware.step(0.0)  # commands of the old episode, before the hold
            # One period more: every stamp of the old episode is older than the boundary.
            self._time_offset += self._world.time + self._dt
            seed = self._episode.reset()
            self._firmware.hold(self._world.joint_positions())  # no pull back to the old pose
            self._firmware.send_feedback()
            boundary_s = self._sim_seconds()
            if self._lockstep:
                self._episode_steps = 0
        # The driver holds what it measures at its next tick: let it read the new state first.
        self._settle_can()
        self._publish_episode_start(boundary_s)
        self._publish_status(fresh=True)
        if self._lockstep:
            self._running = True
        response.success, response.message = True, f'seed {seed}'
        return response

    def _publish_episode_start(self, stamp_s: float) -> None:
        msg = std_msgs.Header(frame_id=f'seed {self._episode.seed}')
        msg.stamp = ros.Time(seconds=stamp_s).to_msg()
        self._episode_start_pub.publish(msg)

    def _check_status(self) -> None:
        with self._lock:
            self._episode.update()
        self._publish_status()

    def _publish_status(self, fresh: bool = False) -> None:
        """Publish the status when it changed, or always after a reset (`fresh`).

        An ended episode's result goes out first, so whoever sees the end can have its figures.
        """
        status = self._episode.status
        if status == self._published_status and not fresh:
            return
        if status not in ('', 'running'):
            with self._lock:
                result = episode_result(self._world, self._episode)
            self._result_pub.publish(std_msgs.String(data=json.dumps(result)))
        self._status_pub.publish(std_msgs.String(data=status))
        self._published_status = status
        reason = f' ({self._episode.reason})' if self._episode.reason else ''
        self.get_logger().info(f'episode seed {self._episode.seed}: {status}{reason}')

    def _lead(self) -> None:
        with self._lock:
            action = self._episode.leader_action()
        self._leader.send(action)

    # --- lock-step ------------------------------------------------------------------------------
    def _lockstep_loop(self) -> None:
        beats = 0
        try:
            while not self._stop.is_set():
                if not self._running:  # time stands still; commands (enable) are still answered
                    beats += 1
                    with self._lock:
                        self._firmware.step(0.0, low_speed=beats % 2 == 0)
                    self._stop.wait(HEARTBEAT_S)
                    continue
                self._wait_for_graph()
                with self._lock:
                    frame_due = self._episode_steps % self._every['camera'] == 0
                    stamp = ros.Time(seconds=self._sim_seconds()).to_msg()
                if frame_due:
                    self._render()
                self._clock_pub.publish(rosgraph_msgs.Clock(clock=stamp))
                self._wait_for_graph()
                self._advance()
        except Exception as err:  # say why time stopped, rather than hang silently
            self.get_logger().fatal(f'lock-step simulation stopped: {err!r}')
            raise
        finally:
            with self._lock:
                self._world.close()  # the GL context must be freed by the thread that made it

    def _heartbeat(self) -> None:
        """Re-send the last feedback while time stands still or a step takes long.

        The same frames, so the driver sees a live, unchanged arm (piper_sdk reports 0 Hz after
        0.1 s of silence, and the driver latches a CAN fault after 0.25 s).
        """
        while not self._stop.wait(HEARTBEAT_S / 2):
            silence = RUNNING_HEARTBEAT_S if self._running else HEARTBEAT_S
            if time.monotonic() - self._firmware.feedback_sent_at >= silence:
                self._firmware.resend()

    def _advance(self) -> None:
        """One physics period: the leader's frames, the firmware's commands, MuJoCo, feedback."""
        with self._lock:
            k = self._episode_steps
            if self._leader is not None and k % self._every['leader'] == 0:
                self._leader.send(self._episode.leader_action())
            self._firmware.step(self._dt, advance=self._physics,
                                low_speed=k % self._every['low_speed'] == 0)
            self._episode_steps = k = k + 1
            check = k % self._every['status'] == 0
            if check:
                self._episode.update()
        if check:
            self._publish_status()
            if self._episode.status != 'running':
                self._running = False  # until the next ~/reset

    def _physics(self, setpoint) -> None:
        self._world.set_targets(setpoint)
        self._world.step(self._dt)

    def _wait_for_graph(self) -> None:
        """Until every callback has run and the CAN readers have taken their frames."""
        settling, scan = None, True
        while not self._stop.is_set():
            if self.context.idle(scan):
                if self._readers is None or self._readers.idle():
                    return
                settling = settling or time.monotonic()
                left = CAN_SETTLE_S - (time.monotonic() - settling)
                if left <= 0:
                    self._give_up_on_unread_queues()
                    return
                # piper_sdk's reader says when it waits again (CanReaders); then re-check the
                # graph, which the frames' parsing does not touch, before stepping.
                self._readers.wait_idle(min(left, 0.005))
                continue
            settling = None
            with self.context.idle_cond:  # a finished callback, or an executor out of work,
                # notifies it: a full scan only when no notice came (a slow callback)
                scan = not self.context.idle_cond.wait(0.005)

    def _give_up_on_unread_queues(self) -> None:
        self._readers.give_up()
        self._warn_unread()

    def _settle_can(self) -> None:
        if self._readers is not None and not self._readers.settle(CAN_SETTLE_S):
            self._warn_unread()

    def _warn_unread(self) -> None:
        self.get_logger().warning(
            f'a reader of CAN channel {self._readers.channel} does not take its frames; it is '
            'ignored from now on (lock-step may not replay exactly)')

    # --- physics and camera ---------------------------------------------------------------------
    def _step(self) -> None:
        with self._lock:
            self._world.set_targets(self._firmware.targets().positions)
            self._world.step(self._dt)
            stamp = ros.Time(seconds=self._sim_seconds()).to_msg()
        self._clock_pub.publish(rosgraph_msgs.Clock(clock=stamp))

    def _camera_loop(self) -> None:
        next_frame = time.monotonic()
        while not self._stop.is_set():
            try:
                self._render()
            except Exception as err:  # keep the camera alive; the log says what went wrong
                self.get_logger().error(f'render failed: {err}', throttle_duration_sec=5.0)
            next_frame += self._camera_period
            self._stop.wait(max(0.0, next_frame - time.monotonic()))
            next_frame = max(next_frame, time.monotonic() - self._camera_period)
        with self._lock:
            self._world.close()  # the GL context must be freed by the thread that made it

    def _render(self) -> None:
        """One frame of every camera, all of the same instant (one stamp)."""
        with self._lock:
            frames = [(self._world.render(name), self._world.intrinsics(name), pubs)
                      for name, pubs in self._cameras]
            stamp_ns = int(round(self._sim_seconds() * 1e9))
        for (rgb, depth_m), (k, width, height), pubs in frames:
            depth_m = np.where(depth_m < MAX_VALID_DEPTH_M, depth_m, np.nan)
            frame = pubs.camera.frame
            info = camera_info(k, [0.0] * 5, width, height, 'plumb_bob', stamp_ns, frame)
            pubs.publish(rgb, metres_to_mm(depth_m), stamp_ns, frame, info, info)

    def destroy_node(self):
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._firmware.stop()
        self._bus.shutdown()
        if self._leader_bus is not None:
            self._leader_bus.shutdown()
        super().destroy_node()


def main(args=None):
    run(SimNode, args)
