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

"""Print arm_driver_node's control-loop period and jitter, and the CAN frame rates it sees.

Usage: python bench/bench_driver.py [--seconds 10] [--rate 200] [--executor single|multi]

The driver runs on the local backend as `arm_driver_node` runs (one executor), against the
simulated Piper firmware on a python-can virtual bus (feedback at 200 Hz, as the real arm),
through the real piper_sdk, with dry_run off. A stand-in policy publishes a 10-waypoint chunk
every 0.5 s, stamped 0.15 s in the past like a real inference delay, so blending, the safety
filter and CAN sends all run. Printed: tick period p50 / p99 / max and |period - nominal|
p50 / p99 (from the driver's /diagnostics), the time one tick takes, piper_sdk's GetCanFps
(frames the SDK decodes per second), and the frames per second on the bus by direction,
counted by an independent listener.
"""

import argparse
import collections
import math
import threading
import time

import can
import numpy as np

from vla_nodes import contract, ros
from vla_nodes.arm import kinematics
from vla_nodes.arm.piper_protocol import (
    GRIPPER_CTRL, JOINT_CTRL, MOTION_CTRL_1, MOTION_CTRL_2, MOTOR_ENABLE)
from vla_nodes.nodes.arm_driver_node import ArmDriverNode
from vla_nodes.ros import local
from vla_nodes.ros.msgs import diagnostic_msgs, trajectory_msgs
from vla_nodes.sim.kinematic_plant import KinematicPlant
from vla_nodes.sim.piper_can import PiperFirmware

COMMAND_IDS = {MOTION_CTRL_1, MOTION_CTRL_2, *JOINT_CTRL, GRIPPER_CTRL, MOTOR_ENABLE}


class FrameCounter:
    """Counts the frames on a virtual CAN channel by id, on its own thread."""

    def __init__(self, channel: str):
        self._bus = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
        self.counts = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            msg = self._bus.recv(0.1)
            if msg is not None:
                self.counts[msg.arbitration_id] += 1

    def stop(self):
        self._stop.set()
        self._thread.join()
        self._bus.shutdown()


def chunk(node, now_ns: int, delay_s: float):
    """A policy-like chunk: 10 waypoints 0.1 s apart on a slow swing, observed delay_s ago."""
    observed = now_ns / 1e9 - delay_s
    msg = trajectory_msgs.JointTrajectory(joint_names=list(contract.JOINT_NAMES))
    msg.header.stamp = ros.Time(nanoseconds=int(observed * 1e9)).to_msg()
    for k in range(1, 11):
        t = observed + 0.1 * k
        q = np.array(contract.READY_POSITIONS)
        q[0] += 0.3 * math.sin(2 * math.pi * 0.2 * t)
        q[4] += 0.1 * math.cos(2 * math.pi * 0.2 * t)
        point = trajectory_msgs.JointTrajectoryPoint(positions=[float(v) for v in q])
        point.time_from_start.nanosec = int(0.1 * k * 1e9) % 10**9
        point.time_from_start.sec = int(0.1 * k)
        msg.points.append(point)
    return msg


def main(args=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--rate', type=float, default=200.0, help='control rate (Hz)')
    parser.add_argument('--executor', choices=['single', 'multi'], default='single')
    options = parser.parse_args(args)

    channel = f'bench_driver_{int(time.time())}'
    bus = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
    plant = KinematicPlant()
    firmware = PiperFirmware(bus, plant.read_state, plant.set_targets, fk=lambda q6: (
        kinematics.pose_to_xyz_rpy(kinematics.forward_kinematics(q6)))).start()
    counter = FrameCounter(channel).start()
    ctx = local.Context()
    ctx.init()
    driver = ArmDriverNode(context=ctx, parameter_overrides=[
        ros.Parameter(name, value=value) for name, value in {
            'can_name': channel, 'can_interface': 'virtual', 'judge_flag': False,
            'dry_run': False, 'enable_on_start': True, 'control_rate_hz': options.rate}.items()])
    policy = local.Node('bench_policy', context=ctx)
    pub = policy.create_publisher(trajectory_msgs.JointTrajectory,
                                  contract.ACTION_CHUNK_TOPIC, 10)
    policy.create_timer(0.5, lambda: pub.publish(
        chunk(policy, policy.get_clock().now().nanoseconds, 0.15)))
    last = {}

    def on_diagnostics(array):
        for status in array.status:
            if status.name == '/arm_driver_node':
                last.update({kv.key: kv.value for kv in status.values}, message=status.message)
    policy.create_subscription(diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC,
                               on_diagnostics, 10)
    executor = (local.SingleThreadedExecutor(context=ctx) if options.executor == 'single'
                else local.MultiThreadedExecutor(context=ctx))
    executor.add_node(driver)
    executor.add_node(policy)
    start_counts = collections.Counter(counter.counts)
    started = time.monotonic()
    try:
        while time.monotonic() - started < options.seconds:
            executor.spin_once(timeout_sec=0.1)
    finally:
        elapsed = time.monotonic() - started
        counts = counter.counts - start_counts
        executor.shutdown()
        driver.destroy_node()
        ctx.try_shutdown()
        counter.stop()
        firmware.stop()
        bus.shutdown()

    nominal = 1e3 / options.rate
    print(f'arm_driver_node at {options.rate:.0f} Hz (nominal period {nominal:.2f} ms), '
          f'{options.executor}-threaded executor, {elapsed:.1f} s, status: {last["message"]!r}')
    print(f"  period  p50 {float(last['period_p50_ms']):.2f} ms  p99 "
          f"{float(last['period_p99_ms']):.2f} ms  max {float(last['period_max_ms']):.2f} ms")
    print(f"  jitter  |period - nominal| p50 {float(last['jitter_p50_ms']):.3f} ms  "
          f"p99 {float(last['jitter_p99_ms']):.3f} ms")
    print(f"  tick    p50 {float(last['tick_p50_ms']):.3f} ms  p99 "
          f"{float(last['tick_p99_ms']):.3f} ms wall, p50 {float(last['tick_cpu_p50_ms']):.3f} "
          'ms CPU (read, faults, blend, safety, send, publish)')
    print(f"  sent {last['sent']} commands, {last['chunks']} chunks, "
          f"{last['limited']} limited by safety, {last['rejected']} rejected")
    print(f"  piper_sdk GetCanFps: {float(last['can_fps']):.0f} frames/s decoded")
    sent = sum(n for i, n in counts.items() if i in COMMAND_IDS)
    received = sum(n for i, n in counts.items() if i not in COMMAND_IDS)
    print(f'  on the bus: {sent / elapsed:.0f} command frames/s (driver -> arm), '
          f'{received / elapsed:.0f} feedback frames/s (arm -> driver)')


if __name__ == '__main__':
    main()
