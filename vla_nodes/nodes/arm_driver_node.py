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
NaN rejection; `arm.safety`) and sends it, publishing what was sent on `~/command`. Single
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
"""

import functools
import time

import numpy as np

from vla_nodes import contract, ros
from vla_nodes.arm import kinematics
from vla_nodes.arm.driver_params import RANGES
from vla_nodes.arm.faults import (ArrivalClock, driver_state, FaultMonitor, feedback_stamps,
                                  status_values, warnings_of)
from vla_nodes.arm.feedback_guard import FeedbackGuard, reason_kind, Verdict
from vla_nodes.arm.loop_timing import LoopTiming
from vla_nodes.arm.piper import PiperArm, PiperConfig, PiperConnectionError
from vla_nodes.arm.piper_protocol import ARM_ESTOP
from vla_nodes.arm.safety import narrowed_limits, SafetyFilter
from vla_nodes.arm.trajectory import Chunk, TrajectoryFollower
from vla_nodes.nodes import run, StartupError
from vla_nodes.nodes.diagnostics import Diagnostics, ERROR, OK, WARN
from vla_nodes.nodes.parameters import declare_parameters
from vla_nodes.ros.convert import joint_positions, pose_msg, select_joints
from vla_nodes.ros.msgs import (geometry_msgs, sensor_msgs, stamp_to_ns, std_msgs, std_srvs,
                                trajectory_msgs)

# The feedback streams watched for silence (names as the fault message shows them).

# Single targets for teleop and tests (sensor_msgs/JointState, names with the joint prefix).
JOINT_COMMAND_TOPIC = contract.JOINT_COMMAND_TOPIC
DIAGNOSTICS_REFRESH_HZ = 2.0
REJECTION_SHOWN_S = 5.0  # a rejected command keeps the diagnostics at WARN this long


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
        self._dt = 1.0 / p['control_rate_hz']
        self._command_timeout = p['command_timeout_s']
        self._enable_timeout = p['enable_timeout_s']
        self._dry_run = p['dry_run']
        self._max_future_ns = int(p['max_future_stamp_s'] * 1e9)
        self._safety = self._safety_filter(p)
        self._follower = TrajectoryFollower(blend_s=p['blend_s'])
        self._faults = FaultMonitor(p['can_timeout_s'])
        # Under simulated time, silence and speed are judged on the node's clock (ArrivalClock).
        self._arrivals = ArrivalClock() if self.get_parameter('use_sim_time').value else None
        self._guard = FeedbackGuard(functools.partial(kinematics.forward_kinematics,
                                                      dh_is_offset=p['dh_is_offset']))
        self._believed = None     # (7,) the last joint sample the guard accepted
        self._feedback_wait = ''  # why feedback is not believed yet ('' = it is)
        self._timing = LoopTiming(self._dt)
        self._arm = self._connect(p)
        self._enabled = self._estopped = False
        self._last_sent = None
        self._hold_next_tick = False  # a new episode: the next command holds the measured pose
        self._end_pose_stamp = 0.0
        self._rejection = (-REJECTION_SHOWN_S, '')  # (monotonic s, reason)
        self._counts = dict.fromkeys(
            ('chunks', 'targets', 'rejected', 'sent', 'held', 'limited'), 0)
        self._refresh_every = max(1, round(p['control_rate_hz'] / DIAGNOSTICS_REFRESH_HZ))
        self._create_interfaces()
        self.create_timer(self._dt, self._control_tick)
        self._diag = Diagnostics(self, hardware_id=p['can_name'])
        if self._dry_run:
            self.get_logger().warning('dry_run: commands are computed and published on '
                                      '~/command but NOT sent to the arm; set dry_run:=false '
                                      'to move it')
        if p['enable_on_start']:
            self._set_enabled(True)

    def _safety_filter(self, p) -> SafetyFilter:
        try:
            limits, ignored = narrowed_limits(
                p['lower_limits'], p['upper_limits'],
                max_step=(p['max_step_rad'],) * 6 + (p['max_gripper_step_m'],),
                max_velocity=(p['max_velocity_rad_s'],) * 6 + (p['max_gripper_velocity_m_s'],))
        except ValueError as err:
            raise StartupError(f'lower_limits / upper_limits refused: {err}') from None
        for message in ignored:
            self.get_logger().warning(f'joint limit wider than the contract ignored: {message}')
        return SafetyFilter(limits)

    def _connect(self, p) -> PiperArm:
        arm = PiperArm(PiperConfig(
            can_name=p['can_name'], interface=p['can_interface'], judge_flag=p['judge_flag'],
            dh_is_offset=p['dh_is_offset'], speed_rate=p['speed_rate'],
            gripper_effort=p['gripper_effort'], connect_timeout=p['connect_timeout_s'],
            bind_address=p['can_bind_address']))
        try:
            arm.connect()  # fail at launch, saying what to check, rather than later
        except PiperConnectionError as err:
            self.get_logger().fatal(str(err))
            raise
        return arm

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

    # --- inputs ---------------------------------------------------------------------------------
    def _on_chunk(self, msg) -> None:
        now = self.get_clock().now().nanoseconds
        try:
            chunk = self._parse_chunk(msg, now)
            self._follower.set_chunk(chunk, self._current(), now_ns=now)
        except ValueError as err:
            self._reject(f'action chunk rejected, arm holds: {err}')
            return
        self._hold_next_tick = False  # the chunk starts from the measured position already
        self._counts['chunks'] += 1

    def _on_episode_start(self, msg) -> None:
        # Nothing of the previous episode may move the arm: not the chunk, not the blend from
        # the last command, not the safety filter's memory of it.
        start_ns = stamp_to_ns(msg.stamp) or self.get_clock().now().nanoseconds  # 0: now
        self._follower.start_episode(start_ns)
        self._last_sent = None
        self._safety.reset()
        self._hold_next_tick = True
        self.get_logger().info(f'episode start at {start_ns / 1e9:.3f} s '
                               f'({msg.frame_id or "no label"}): holding the measured position')

    def _on_target(self, msg) -> None:
        try:
            q = joint_positions(msg, self._joints)
            self._follower.set_target(q, self.get_clock().now().nanoseconds)
        except ValueError as err:
            self._reject(f'joint command rejected, arm holds: {err}')
            return
        self._counts['targets'] += 1

    def _parse_chunk(self, msg, now_ns: int) -> Chunk:
        if not msg.points:
            raise ValueError('no points')
        positions = select_joints(msg.joint_names, [p.positions for p in msg.points],
                                  self._joints)
        times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
        # The policy stamps chunks with the observation time; an unstamped one starts now.
        start = stamp_to_ns(msg.header.stamp) or now_ns
        if start - now_ns > self._max_future_ns:
            raise ValueError(
                f'stamped {(start - now_ns) / 1e9:.3f} s in the future (max_future_stamp_s '
                f'{self._max_future_ns / 1e9:g}): the publisher clock runs ahead of this one; '
                'synchronise the hosts (chrony/NTP) or, for a known skew, raise '
                'max_future_stamp_s')
        return Chunk(start, np.asarray(times, float), positions)

    def _current(self) -> np.ndarray:
        """The last command, else the measured position: where a new trajectory starts."""
        if self._last_sent is not None:
            return self._last_sent
        if self._believed is None:
            raise ValueError(self._feedback_wait or 'no joint feedback from the arm yet')
        return self._believed

    def _reject(self, reason: str) -> None:
        self._counts['rejected'] += 1
        self._rejection = (time.monotonic(), reason)
        self.get_logger().error(reason)

    def _on_enable(self, request, response):
        response.success = self._set_enabled(request.data)
        response.message = self._faults.fault or ('enabled' if self._enabled else 'disabled')
        return response

    def _on_estop(self, request, response):
        self._arm.emergency_stop()  # even in dry_run: stopping is never the unsafe choice
        self._estopped, self._enabled = True, False
        self._follower.clear()
        self.get_logger().error('EMERGENCY STOP: motion halted; call ~/enable true to resume')
        self._refresh_diagnostics()
        response.success, response.message = True, 'emergency stop engaged'
        return response

    def _set_enabled(self, enable: bool) -> bool:
        try:
            if self._dry_run:
                pass  # dry_run sends nothing, not even the enable frame
            elif not enable:
                self._arm.disable()
            elif self._estopped or self._arm.status()['arm_status'] == ARM_ESTOP:
                # resume() clears the firmware's e-stop and enables; enable() is enough otherwise.
                self._arm.resume(self._enable_timeout, self._believed_gripper())
            else:
                self._arm.enable(self._enable_timeout, self._believed_gripper())
        except PiperConnectionError as err:  # a dead bus must not take the node down: report it
            self._faults.reset()
            self._faults.latch(f'enable failed: {err}')
            self.get_logger().error(self._faults.fault)
            self._refresh_diagnostics()
            return False
        if enable:
            self._faults.reset()
            self._estopped, self._last_sent = False, None
            self._safety.reset()
        self._enabled = enable
        self._follower.clear()
        self.get_logger().info(f"arm {'enabled' if enable else 'disabled'}"
                               f"{' (dry run)' if self._dry_run else ''}")
        return True

    def _believed_gripper(self):
        """The gripper opening to enable at: only a believed one (else the first command's)."""
        return None if self._believed is None else float(self._believed[6])

    # --- control loop ---------------------------------------------------------------------------
    def _control_tick(self) -> None:
        started, cpu = time.monotonic(), time.thread_time()
        self._timing.tick(started)
        now = self.get_clock().now()
        feedback, status = self._arm.read(), self._arm.status(drivers=False)
        pose = self._arm.read_end_pose()
        now_s = time.time() if self._arrivals is None else now.nanoseconds / 1e9
        feedback, pose, stamps = feedback_stamps(feedback, pose, status, now_s, self._arrivals)
        fault = self._faults.update(now_s, stamps, status)
        verdict = self._judge(feedback, pose)
        if verdict.fault and not self._faults.fault:
            self._faults.latch(f'{verdict.reason}; motion refused: look for another sender on '
                               'the CAN bus or a failing adapter, then call ~/enable true')
            fault = self._faults.fault
        if fault:
            self._enabled = False
            self._follower.clear()
            self.get_logger().error(fault)
            self._refresh_diagnostics(feedback=feedback)
        self._publish_feedback(feedback, verdict, pose, now)
        if self._enabled and verdict.ok and not self._faults.fault:
            self._command(now, feedback)
        self._timing.done(time.monotonic() - started, time.thread_time() - cpu)
        if self._timing.ticks % self._refresh_every == 0:
            self._refresh_diagnostics(feedback=feedback)

    def _judge(self, feedback, pose) -> Verdict:
        """The guard's verdict on this tick's sample; says (once per kind) why it waits."""
        if not feedback.valid:  # the SDK's initial zeros, or frames stopped: nothing to judge
            self._guard.reset()  # after a silence, feedback is confirmed afresh
            self._believed, self._feedback_wait = None, ''
            return Verdict(False, 'no joint feedback')
        end_pose = (pose.position, pose.quaternion, pose.stamp) if pose.valid else None
        verdict = self._guard.check(feedback.positions, feedback.stamp, end_pose)
        if verdict.moved:  # the old trajectory and last command refer to where the arm was
            self._follower.clear()
            self._last_sent = None
            self._safety.reset()
        wait = '' if verdict.ok or verdict.fault else verdict.reason
        new_kind = reason_kind(wait) != reason_kind(self._feedback_wait)
        if wait and not verdict.confirming and new_kind:
            self.get_logger().warning(f'{wait}; nothing is sent or published until it is')
        elif not wait and self._feedback_wait:
            self.get_logger().info('joint feedback confirmed')
        self._feedback_wait = wait
        self._believed = np.asarray(feedback.positions, float) if verdict.ok else None
        return verdict

    def _publish_feedback(self, feedback, verdict, pose, now) -> None:
        if verdict.ok:  # never the SDK's initial zeros, nor feedback not (yet) believed
            self._state_pub.publish(self._joint_state(feedback.positions, now))
        leader = self._arm.read_leader()
        if leader is not None and leader.valid:
            self._leader_pub.publish(self._joint_state(leader.positions, now))
        if pose.valid and pose.stamp != self._end_pose_stamp:
            self._end_pose_stamp = pose.stamp
            msg = geometry_msgs.PoseStamped()
            msg.header.stamp, msg.header.frame_id = now.to_msg(), self._frame_id
            msg.pose = pose_msg([*pose.position, *pose.quaternion])
            self._pose_pub.publish(msg)

    def _command(self, now, feedback) -> None:
        if self._hold_next_tick:
            self._follower.set_target(feedback.positions, now.nanoseconds)
            self._hold_next_tick = False
        if self._follower.seconds_past_end(now.nanoseconds) > self._command_timeout:
            # Stale: the firmware keeps the last command, the arm holds position. The next
            # chunk starts from that command, not from where the stale one would have gone.
            self._follower.clear()
            self._counts['held'] += 1
            return
        target = self._follower.target(now.nanoseconds)
        safe, reasons = self._safety.filter(target, np.asarray(feedback.positions), self._dt)
        self._counts['limited'] += bool(reasons)
        self._last_sent = safe if self._dry_run else np.asarray(self._arm.send(safe), float)
        self._counts['sent'] += 1
        self._command_pub.publish(self._joint_state(self._last_sent, now))

    def _joint_state(self, positions, now):
        msg = sensor_msgs.JointState(name=list(self._joints),
                                     position=[float(v) for v in positions])
        msg.header.stamp = now.to_msg()
        return msg

    def _refresh_diagnostics(self, feedback=None) -> None:
        status = self._arm.status()
        feedback = feedback or self._arm.read()
        values = dict(self._counts, **self._timing.summary())
        values.update(status_values(status), feedback_trusted=self._guard.trusted,
                      enabled=self._enabled, dry_run=self._dry_run,
                      last_rejection=self._rejection[1])
        recent = time.monotonic() - self._rejection[0] < REJECTION_SHOWN_S
        level, message = driver_state(
            fault=self._faults.fault, estopped=self._estopped, feedback_valid=feedback.valid,
            feedback_wait=self._feedback_wait,
            rejection=self._rejection[1] if recent else '', enabled=self._enabled,
            warnings=warnings_of(status), dry_run=self._dry_run)
        self._diag.set({'ERROR': ERROR, 'WARN': WARN, 'OK': OK}[level], message, **values)

    def destroy_node(self):
        self._arm.close()
        super().destroy_node()


def main(args=None):
    run(ArmDriverNode, args)
