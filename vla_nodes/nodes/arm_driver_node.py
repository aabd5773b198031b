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

"""arm_driver_node: executes `/vla/action_chunk` on a Piper through piper_sdk, safely.

Every control tick (200 Hz) it reads the arm (follower feedback on `/joint_states`, the
leader's control frames on `/leader/joint_states`, the firmware's end pose on `~/end_pose`),
watches for faults, takes the target of the blended chunk trajectory at the current time
(`arm.trajectory`), passes it through the safety filter (limits, per-step and velocity limits,
NaN rejection; `arm.safety`) and sends it, publishing what was sent on `~/command` (that,
`~/end_pose` and `/leader/joint_states` only while someone subscribes). Single
targets (JointState on `/vla/joint_command`, for teleop and tests) take the same path.

Safe by default: `dry_run` (the default) computes and publishes commands but sends nothing, not
even the enable frame; no fresh command for `command_timeout_s` -> hold; CAN silence or arm
errors latch a fault shown in `/diagnostics` and refuse motion until `~/enable true`. On
`/vla/episode_start` (std_msgs/Header) it drops its chunk, blend and last command, sends a hold
at the position it measures at the next tick, and refuses chunks observed before the stamp.
Joint feedback is believed only once confirmed (`arm.feedback_guard`) and a sample the arm
cannot have produced latches a fault; parameters out of range stop the node at start-up. The CAN
bus is a parameter, so the same code drives a real arm (socketcan) or the simulated one.
Bimanual robots run two instances with `joint_prefix` left_ / right_ on two CAN ports.
The decisions live in `arm.controller.ArmController`; this node converts and publishes.
"""

import time

from vla_nodes import contract, ros
from vla_nodes.arm.controller import ArmController
from vla_nodes.arm.driver_params import control_config, piper_config, RANGES, safety_filter
from vla_nodes.arm.loop_timing import LoopTiming
from vla_nodes.arm.piper import PiperArm, PiperConnectionError
from vla_nodes.nodes import run, StartupError
from vla_nodes.nodes.diagnostics import Diagnostics, ERROR, OK, WARN
from vla_nodes.nodes.parameters import declare_parameters
from vla_nodes.ros.convert import joint_positions, pose_msg, trajectory_arrays
from vla_nodes.ros.msgs import (geometry_msgs, sensor_msgs, stamp_to_ns, std_msgs, std_srvs,
                                trajectory_msgs)

# Single targets for teleop and tests (sensor_msgs/JointState, names with the joint prefix).
JOINT_COMMAND_TOPIC = contract.JOINT_COMMAND_TOPIC
DIAGNOSTICS_REFRESH_HZ = 2.0
LEVELS = {'ERROR': ERROR, 'WARN': WARN, 'OK': OK}


def _bounds(name: str) -> list:
    return [getattr(contract.PIPER_LIMITS[n], name) for n in contract.JOINT_NAMES]


PARAMETERS = {
    'can_name': 'can0',
    'can_interface': 'socketcan',
    # udp_multicast only: the interface the bus listens on (0.0.0.0: the whole network).
    'can_bind_address': '127.0.0.1',
    'judge_flag': True,             # let the SDK check the socketcan port and bitrate
    'dh_is_offset': 1,              # 1 for firmware S-V1.6-3 and later
    'speed_rate': 50,               # firmware planner speed, % of 3 rad/s
    'gripper_effort': 1000,         # 0.001 N/m
    'connect_timeout_s': 2.0,
    'enable_timeout_s': 2.0,
    # The real arm sends feedback at 200 Hz; commanding at that rate adds no lag.
    'control_rate_hz': 200.0,
    'command_timeout_s': 0.5,       # no fresh chunk or target this long: hold
    'can_timeout_s': 0.5,           # no CAN feedback this long: latch a fault
    'blend_s': 0.2,                 # cross-fade between chunks (0 = hard switch)
    # Chunk stamps later than now by more than this are refused (host clock skew).
    'max_future_stamp_s': 0.5,
    'max_step_rad': 0.05,           # per tick, from the measured position
    'max_gripper_step_m': 0.01,
    'max_velocity_rad_s': 1.5,
    'max_gripper_velocity_m_s': 0.1,
    # Per joint in contract.JOINT_NAMES order (rad x6, gripper m); only ever narrowed.
    'lower_limits': _bounds('lower'),
    'upper_limits': _bounds('upper'),
    'enable_on_start': False,
    # Safe by default: nothing reaches the arm until a user sets dry_run:=false.
    'dry_run': True,
    'joint_prefix': '',             # 'left_' / 'right_' on a bimanual robot
}


class ArmDriverNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('arm_driver_node', **kwargs)
        p = declare_parameters(self, PARAMETERS, ranges=RANGES)
        self._joints = [p['joint_prefix'] + j for j in contract.JOINT_NAMES]
        self._frame_id = p['joint_prefix'] + contract.BASE_FRAME
        self._timing = LoopTiming(1.0 / p['control_rate_hz'])
        try:
            safety, ignored = safety_filter(p)
        except ValueError as err:
            raise StartupError(f'lower_limits / upper_limits refused: {err}') from None
        for message in ignored:
            self.get_logger().warning(f'joint limit wider than the contract ignored: {message}')
        arm = PiperArm(piper_config(p))
        try:
            arm.connect()  # fail at launch, saying what to check, rather than later
        except PiperConnectionError as err:
            self.get_logger().fatal(str(err))
            raise
        self._control = ArmController(arm, safety, control_config(
            p, self.get_parameter('use_sim_time').value), log=self.get_logger())
        self._refresh_every = max(1, round(p['control_rate_hz'] / DIAGNOSTICS_REFRESH_HZ))
        self._create_interfaces()
        self.create_timer(1.0 / p['control_rate_hz'], self._control_tick)
        self._diag = Diagnostics(self, hardware_id=p['can_name'])
        if p['dry_run']:
            self.get_logger().warning('dry_run: commands are computed and published on '
                                      '~/command but NOT sent to the arm; set dry_run:=false '
                                      'to move it')
        if p['enable_on_start']:
            self._set_enabled(True)

    def _create_interfaces(self) -> None:
        self._state_pub = self.create_publisher(sensor_msgs.JointState,
                                                contract.JOINT_STATES_TOPIC, 10)
        self._leader_pub = self.create_publisher(sensor_msgs.JointState,
                                                 contract.LEADER_JOINT_STATES_TOPIC, 10)
        self._command_pub = self.create_publisher(sensor_msgs.JointState, '~/command', 10)
        self._pose_pub = self.create_publisher(geometry_msgs.PoseStamped, '~/end_pose', 10)
        self.create_subscription(trajectory_msgs.JointTrajectory, contract.ACTION_CHUNK_TOPIC,
                                 self._on_chunk, 10)
        self.create_subscription(sensor_msgs.JointState, JOINT_COMMAND_TOPIC,
                                 self._on_target, 10)
        self.create_subscription(std_msgs.Header, contract.EPISODE_START_TOPIC,
                                 self._on_episode_start, ros.qos_profile_latched)
        self.create_service(std_srvs.SetBool, '~/enable', self._on_enable)
        self.create_service(std_srvs.Trigger, '~/emergency_stop', self._on_estop)

    # --- inputs: messages to arrays, into the controller ----------------------------------------
    def _on_chunk(self, msg) -> None:
        now = self.get_clock().now().nanoseconds
        try:
            self._control.follow_chunk(*trajectory_arrays(msg, self._joints), now)
        except ValueError as err:
            self._control.reject(f'action chunk rejected, arm holds: {err}')

    def _on_episode_start(self, msg) -> None:
        start_ns = stamp_to_ns(msg.stamp) or self.get_clock().now().nanoseconds  # 0: now
        self._control.start_episode(start_ns)
        self.get_logger().info(f'episode start at {start_ns / 1e9:.3f} s '
                               f'({msg.frame_id or "no label"}): holding the measured position')

    def _on_target(self, msg) -> None:
        try:
            self._control.follow_target(joint_positions(msg, self._joints),
                                        self.get_clock().now().nanoseconds)
        except ValueError as err:
            self._control.reject(f'joint command rejected, arm holds: {err}')

    def _on_enable(self, request, response):
        response.success = self._set_enabled(request.data)
        response.message = self._control.faults.fault or (
            'enabled' if self._control.enabled else 'disabled')
        return response

    def _on_estop(self, request, response):
        self._control.emergency_stop()
        self._refresh_diagnostics()
        response.success, response.message = True, 'emergency stop engaged'
        return response

    def _set_enabled(self, enable: bool) -> bool:
        if self._control.set_enabled(enable):
            return True
        self._refresh_diagnostics()  # the latched fault says why
        return False

    # --- control loop ---------------------------------------------------------------------------
    def _control_tick(self) -> None:
        started, cpu = time.monotonic(), time.thread_time()
        self._timing.tick(started)
        now = self.get_clock().now()
        reading = self._control.sense(now.nanoseconds)
        if reading.fault:
            self._refresh_diagnostics(feedback=reading.feedback)
        if reading.verdict.ok:  # never the SDK's initial zeros, nor feedback not (yet) believed
            self._state_pub.publish(self._joint_state(reading.feedback.positions, now))
        # The other topics are built only for a subscriber (a lazy publisher, as pose_node's):
        # in vla-eval's graph nobody reads them, and at 100 Hz building them cost a tenth of a
        # lock-step physics period.
        if reading.leader is not None and self._leader_pub.get_subscription_count():
            self._leader_pub.publish(self._joint_state(reading.leader.positions, now))
        if reading.pose is not None and self._pose_pub.get_subscription_count():
            msg = geometry_msgs.PoseStamped()
            msg.header.stamp, msg.header.frame_id = now.to_msg(), self._frame_id
            msg.pose = pose_msg([*reading.pose.position, *reading.pose.quaternion])
            self._pose_pub.publish(msg)
        sent = self._control.act(now.nanoseconds, reading)
        if sent is not None and self._command_pub.get_subscription_count():
            self._command_pub.publish(self._joint_state(sent, now))
        self._timing.done(time.monotonic() - started, time.thread_time() - cpu)
        if self._timing.ticks % self._refresh_every == 0:
            self._refresh_diagnostics(feedback=reading.feedback)

    def _joint_state(self, positions, now):
        msg = sensor_msgs.JointState(name=list(self._joints),
                                     position=[float(v) for v in positions])
        msg.header.stamp = now.to_msg()
        return msg

    def _refresh_diagnostics(self, feedback=None) -> None:
        level, message, values = self._control.diagnostics(self._timing.summary(), feedback)
        self._diag.set(LEVELS[level], message, **values)

    def destroy_node(self):
        self._control.arm.close()
        super().destroy_node()


def main(args=None):
    run(ArmDriverNode, args)
