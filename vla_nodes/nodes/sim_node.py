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

Publishes what `sim.simulation.Simulation` computes: a MuJoCo world and the arm's firmware on a
python-can bus, so `arm_driver_node` drives it through the real piper_sdk exactly as it drives a
real arm. It publishes what realsense-ros would (colour rgb8, aligned depth 16UC1 millimetres,
camera_info) for each camera named in `cameras` (contract.CAMERAS: 'scene', the fixed D455-like
camera; 'wrist', a D405-like camera on link6, rendered only when named), the camera-to-base
transform on `/tf_static`, the task's instruction (latched) and the simulation clock on `/clock`.
Its own timers run on wall time: it is the clock the others follow (nodes/sim_stepping.py; with
`lockstep: true`, time advances only when the graph has caught up).

Episodes: parameter `task` names a task of `sim.tasks.TASKS`; the first episode uses parameter
`seed`, each `~/reset` (std_srvs/Trigger, answers 'seed N') the next seed. `/sim/episode_status`
(latched) says 'running' after a reset, then 'success' or 'failure'; just before the end,
`/sim/episode_result` (JSON, latched) carries the episode's figures. Every reset publishes
`/vla/episode_start` (std_msgs/Header, latched) stamped with the new episode's first instant;
`/clock` keeps counting across resets, so every stamp of the old episode is strictly older, and
the driver and the policy drop what they hold. With `leader: expert` the scripted expert plays
the leader arm. A user's robot MJCF loads with `mjcf_path` and `joint_map` (sim/robot_model.py).
"""

import json

from vla_nodes import contract, ros
from vla_nodes.arm import kinematics
from vla_nodes.nodes import run
from vla_nodes.nodes.camera_topics import camera_info, CameraPublishers
from vla_nodes.nodes.parameters import declare_parameters
from vla_nodes.perception.depth import metres_to_mm
from vla_nodes.ros.convert import transform_msg
from vla_nodes.ros.msgs import rosgraph_msgs, std_msgs, std_srvs, tf2_msgs
from vla_nodes.sim.robot_model import DEFAULT_JOINT_MAP

EPISODE_STATUS_TOPIC = contract.EPISODE_STATUS_TOPIC
LEADERS = ('', 'expert')
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
        from vla_nodes.nodes.sim_stepping import LockStep, RealTime
        from vla_nodes.sim.simulation import Simulation
        # Its firmware thread starts last: a refused configuration leaves nothing running.
        self._sim = sim = Simulation(p)
        # The wrist camera first: when the scene frame (policy_node's trigger) arrives, the
        # wrist frame of the same instant is already there.
        self._cameras = [(sim_name, CameraPublishers(self, c)) for sim_name, c in sorted(
            sim.cameras, key=lambda named: named[1] is contract.SCENE_CAMERA)]
        self._create_interfaces()
        self._stepping = (LockStep(self, sim) if p['lockstep'] else
                          RealTime(self, sim, p['camera_rate_hz'], p['leader_rate_hz']))
        self.get_logger().info(
            f"simulated Piper on CAN {p['can_interface']}:{p['can_name']}, cameras "
            f"{[c.name for _, c in sim.cameras]} {p['width']}x{p['height']} at "
            f"{p['camera_rate_hz']} Hz, task {p['task']!r} "
            f"seed {sim.episode.seed}, leader {p['leader'] or 'none'}"
            f"{', lock-step: time stands still until ~/reset' if p['lockstep'] else ''}")

    def _check_config(self, p) -> None:
        if p['leader'] not in LEADERS:
            raise ValueError(f"leader must be '' (no leader arm) or 'expert', got {p['leader']!r}")
        local_runtime = hasattr(self.context, 'idle')
        if p['lockstep'] and (p['can_interface'] != 'virtual' or not local_runtime):
            raise ValueError('lockstep needs the local runtime (VLA_ROS_BACKEND=local, one '
                             "process) and can_interface 'virtual'")

    def _create_interfaces(self) -> None:
        pub, latched = self.create_publisher, ros.qos_profile_latched
        self._clock_pub = pub(rosgraph_msgs.Clock, contract.CLOCK_TOPIC, 10)
        self._status_pub = pub(std_msgs.String, EPISODE_STATUS_TOPIC, latched)
        self._result_pub = pub(std_msgs.String, contract.EPISODE_RESULT_TOPIC, latched)
        self._episode_start_pub = pub(std_msgs.Header, contract.EPISODE_START_TOPIC, latched)
        pub(std_msgs.String, contract.INSTRUCTION_TOPIC, latched).publish(
            std_msgs.String(data=self._sim.episode.task.instruction))
        xyz_quat = kinematics.pose_to_xyz_quat(self._sim.world.camera_pose())
        pub(tf2_msgs.TFMessage, contract.TF_STATIC_TOPIC, latched).publish(tf2_msgs.TFMessage(
            transforms=[transform_msg(contract.BASE_FRAME, contract.CAMERA_FRAME, xyz_quat)]))
        self._published_status = ''
        self.publish_status()
        self._publish_episode_start(0.0)
        self.create_service(std_srvs.Trigger, '~/reset', self._on_reset)

    def _on_reset(self, request, response):
        seed, boundary_s = self._sim.reset()
        # The driver holds what it measures at its next tick: let it read the new state first.
        if not self._sim.settle_can():
            self.warn_unread()
        self._publish_episode_start(boundary_s)
        self.publish_status(fresh=True)
        self._stepping.start_episode()
        response.success, response.message = True, f'seed {seed}'
        return response

    def _publish_episode_start(self, stamp_s: float) -> None:
        msg = std_msgs.Header(frame_id=f'seed {self._sim.episode.seed}')
        msg.stamp = ros.Time(seconds=stamp_s).to_msg()
        self._episode_start_pub.publish(msg)

    def publish_clock(self, seconds: float) -> None:
        self._clock_pub.publish(rosgraph_msgs.Clock(clock=ros.Time(seconds=seconds).to_msg()))

    def publish_status(self, fresh: bool = False) -> None:
        """Publish the status when it changed, or always after a reset (`fresh`).

        An ended episode's result goes out first, so whoever sees the end can have its figures.
        """
        episode = self._sim.episode
        status = episode.status
        if status == self._published_status and not fresh:
            return
        if status not in ('', 'running'):
            self._result_pub.publish(std_msgs.String(data=json.dumps(self._sim.result())))
        self._status_pub.publish(std_msgs.String(data=status))
        self._published_status = status
        reason = f' ({episode.reason})' if episode.reason else ''
        self.get_logger().info(f'episode seed {episode.seed}: {status}{reason}')

    def warn_unread(self) -> None:
        self.get_logger().warning(
            f'a reader of CAN channel {self._sim.readers.channel} does not take its frames; it '
            'is ignored from now on (lock-step may not replay exactly)')

    def render(self) -> None:
        """One frame of every camera, all of the same instant (one stamp)."""
        frames, stamp_ns = self._sim.render([name for name, _ in self._cameras])
        for (rgb, depth_m, (k, width, height)), (_, pubs) in zip(frames, self._cameras):
            frame = pubs.camera.frame
            info = camera_info(k, [0.0] * 5, width, height, 'plumb_bob', stamp_ns, frame)
            pubs.publish(rgb, metres_to_mm(depth_m), stamp_ns, frame, info, info)

    def destroy_node(self):
        self._stepping.stop()
        self._sim.close()
        super().destroy_node()


def main(args=None):
    run(SimNode, args)
