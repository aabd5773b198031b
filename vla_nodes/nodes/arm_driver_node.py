"""arm_driver_node: executes `/vla/action_chunk` on a Piper through piper_sdk, safely.

Every control tick it reads the arm's feedback (published on `/joint_states`, the leader's
control frames on `/leader/joint_states`), takes the target of the active chunk at the current
time, passes it through the safety filter (limits, per-step and velocity limits, NaN rejection) and
sends it. No fresh chunk for `command_timeout_s` -> hold. CAN silence latches a fault: motion is
refused until `~/enable` is called again. `dry_run` computes everything but sends nothing.
The CAN bus is a parameter, so the same code drives a real arm (socketcan) or the simulated one.
"""

import time

import numpy as np

from vla_nodes import contract, ros
from vla_nodes.arm.piper import PiperArm, PiperConfig
from vla_nodes.arm.safety import SafetyFilter, SafetyLimits
from vla_nodes.arm.trajectory import Chunk, TrajectoryFollower
from vla_nodes.nodes import run
from vla_nodes.nodes.diagnostics import Diagnostics, ERROR, OK, WARN
from vla_nodes.ros.msgs import sensor_msgs, stamp_to_ns, std_srvs, trajectory_msgs


class ArmDriverNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('arm_driver_node', **kwargs)
        self.declare_parameter('can_name', 'can0')
        self.declare_parameter('can_interface', 'socketcan')
        self.declare_parameter('judge_flag', True)
        self.declare_parameter('dh_is_offset', 1)
        self.declare_parameter('speed_rate', 50)
        self.declare_parameter('gripper_effort', 1000)
        self.declare_parameter('control_rate_hz', 100.0)
        self.declare_parameter('command_timeout_s', 0.5)
        self.declare_parameter('can_timeout_s', 0.5)
        self.declare_parameter('max_step_rad', 0.05)
        self.declare_parameter('max_gripper_step_m', 0.01)
        self.declare_parameter('enable_on_start', False)
        # Safe by default: nothing reaches the arm until a user sets dry_run:=false.
        self.declare_parameter('dry_run', True)
        self.declare_parameter('joint_prefix', '')
        p = {name: self.get_parameter(name).value for name in (
            'can_name', 'can_interface', 'judge_flag', 'dh_is_offset', 'speed_rate',
            'gripper_effort', 'control_rate_hz', 'command_timeout_s', 'can_timeout_s',
            'max_step_rad', 'max_gripper_step_m', 'enable_on_start', 'dry_run', 'joint_prefix')}
        self._joints = [p['joint_prefix'] + j for j in contract.JOINT_NAMES]
        self._dt = 1.0 / p['control_rate_hz']
        self._command_timeout = p['command_timeout_s']
        self._can_timeout = p['can_timeout_s']
        self._dry_run = p['dry_run']
        self._safety = SafetyFilter(SafetyLimits(
            max_step=(p['max_step_rad'],) * len(contract.ARM_JOINTS) + (p['max_gripper_step_m'],)))
        self._follower = TrajectoryFollower()
        self._arm = PiperArm(PiperConfig(
            can_name=p['can_name'], interface=p['can_interface'], judge_flag=p['judge_flag'],
            dh_is_offset=p['dh_is_offset'], speed_rate=p['speed_rate'],
            gripper_effort=p['gripper_effort']))
        self._arm.connect()
        self._enabled = self._estopped = False
        self._fault = ''
        self._last_sent = None
        self._last_feedback = None  # (stamp, wall ns when it last changed)
        self._counts = {'chunks': 0, 'rejected_chunks': 0, 'sent': 0, 'held': 0}
        self._state_pub = self.create_publisher(sensor_msgs.JointState,
                                                contract.JOINT_STATES_TOPIC, 10)
        self._leader_pub = self.create_publisher(sensor_msgs.JointState,
                                                 contract.LEADER_JOINT_STATES_TOPIC, 10)
        self.create_subscription(trajectory_msgs.JointTrajectory, contract.ACTION_CHUNK_TOPIC,
                                 self._on_chunk, 10)
        self.create_service(std_srvs.SetBool, '~/enable', self._on_enable)
        self.create_service(std_srvs.Trigger, '~/emergency_stop', self._on_estop)
        self.create_timer(self._dt, self._control_tick)
        self._diag = Diagnostics(self, hardware_id=p['can_name'])
        if self._dry_run:
            self.get_logger().warning('dry_run: commands are computed but NOT sent to the arm; '
                                      'set dry_run:=false to move it')
        if p['enable_on_start']:
            self._set_enabled(True)

    # --- inputs ---------------------------------------------------------------------------------
    def _on_chunk(self, msg) -> None:
        try:
            chunk = self._parse_chunk(msg)
        except ValueError as err:
            self._counts['rejected_chunks'] += 1
            self.get_logger().error(f'action chunk rejected, arm holds: {err}')
            self._diag.set(ERROR, f'action chunk rejected: {err}', **self._counts)
            return
        current = self._last_sent if self._last_sent is not None else self._feedback_positions()
        if current is None:
            return
        self._follower.set_chunk(chunk, current)
        self._counts['chunks'] += 1

    def _parse_chunk(self, msg) -> Chunk:
        index = {n: i for i, n in enumerate(msg.joint_names)}
        missing = [j for j in self._joints if j not in index]
        if missing:
            raise ValueError(f'joints {missing} missing from joint_names {list(msg.joint_names)}')
        if not msg.points:
            raise ValueError('no points')
        order = [index[j] for j in self._joints]
        positions, times = [], []
        for point in msg.points:
            if len(point.positions) != len(msg.joint_names):
                raise ValueError('a point has a different number of positions than joint_names')
            positions.append([point.positions[i] for i in order])
            times.append(point.time_from_start.sec + point.time_from_start.nanosec * 1e-9)
        start = stamp_to_ns(msg.header.stamp) or self.get_clock().now().nanoseconds
        return Chunk(start, np.asarray(times, float), np.asarray(positions, float))

    def _on_enable(self, request, response):
        response.success = self._set_enabled(request.data)
        response.message = self._fault or ('enabled' if self._enabled else 'disabled')
        return response

    def _on_estop(self, request, response):
        self._arm.emergency_stop()
        self._estopped, self._enabled = True, False
        self._follower.clear()
        self.get_logger().error('EMERGENCY STOP: motion halted; call ~/enable true to resume')
        response.success, response.message = True, 'emergency stop engaged'
        return response

    def _set_enabled(self, enable: bool) -> bool:
        try:
            if enable:
                # resume() clears the firmware's e-stop and enables; enable() is enough otherwise.
                self._arm.resume() if self._estopped else self._arm.enable()
                self._estopped, self._fault = False, ''
                self._last_sent, self._last_feedback = None, None
                self._safety.reset()
            else:
                self._arm.disable()
        except Exception as err:  # a dead bus must not take the node down: report it
            self._fault = f'enable failed: {err}'
            self.get_logger().error(self._fault)
            return False
        self._enabled = enable
        self._follower.clear()
        return True

    # --- control loop ---------------------------------------------------------------------------
    def _feedback_positions(self):
        feedback = self._arm.read()
        return np.asarray(feedback.positions, float) if feedback.valid else None

    def _control_tick(self) -> None:
        now = self.get_clock().now()
        feedback = self._arm.read()
        self._watch_can(feedback)
        if feedback.valid:
            self._state_pub.publish(self._joint_state(feedback.positions, now))
        leader = self._arm.read_leader()
        if leader is not None and leader.valid:
            self._leader_pub.publish(self._joint_state(leader.positions, now))
        if not (self._enabled and feedback.valid) or self._fault or self._estopped:
            return
        target = self._follower.target(now.nanoseconds)
        stale = self._follower.seconds_past_end(now.nanoseconds) > self._command_timeout
        if target is None or stale:
            self._counts['held'] += 1
            return  # the firmware keeps the last command: the arm holds position
        safe, _reasons = self._safety.filter(target, np.asarray(feedback.positions), self._dt)
        if not self._dry_run:
            self._last_sent = np.asarray(self._arm.send(safe), float)
        else:
            self._last_sent = safe
        self._counts['sent'] += 1
        self._diag.set(OK if not self._dry_run else WARN,
                       'dry run' if self._dry_run else 'following chunks', **self._counts)

    def _watch_can(self, feedback) -> None:
        wall = time.monotonic_ns()  # CAN silence is measured in wall time, even in sim
        if self._last_feedback is None or feedback.stamp != self._last_feedback[0]:
            self._last_feedback = (feedback.stamp, wall)
            return
        silent_s = (wall - self._last_feedback[1]) / 1e9
        if silent_s > self._can_timeout and not self._fault:
            self._fault = (f'no CAN feedback for {silent_s:.2f} s: check the bus (ip link, '
                           'can_activate.sh) and the arm power, then call ~/enable true')
            self._enabled = False
            self.get_logger().error(self._fault)
            self._diag.set(ERROR, self._fault, **self._counts)

    def _joint_state(self, positions, now):
        msg = sensor_msgs.JointState(name=list(self._joints),
                                     position=[float(v) for v in positions])
        msg.header.stamp = now.to_msg()
        return msg

    def destroy_node(self):
        self._arm.close()
        super().destroy_node()


def main(args=None):
    run(ArmDriverNode, args)
