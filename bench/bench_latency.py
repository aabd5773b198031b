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

"""Print the per-step latency budget, observation -> chunk published -> first CAN frame.

Usage: MUJOCO_GL=egl python bench/bench_latency.py [--seconds 20] [--checkpoint DIR]

Graph (local backend, one process, wall clock): a test camera node publishes 320x240 rgb8 +
32FC1 depth at 10 Hz; policy_node (tiny random-weight model, or --checkpoint) and arm_driver_node
through piper_sdk to the simulated firmware on a python-can virtual bus (first-order plant). The
split:
    transport  camera publish -> a subscriber callback on the same executor (what policy_node's
               colour callback sees; measured on a probe subscription next to it)
    model      VLAPolicy.infer (policy_node's own timing, on /vla/chunk_timing)
    obs->chunk observation stamp -> chunk published (policy_node: waiting for the joint state,
               queueing on the tick, conversion, inference, publishing)
    driver     chunk received (probe) -> next joint-command CAN frame (0x155) on the bus
"""

import argparse
import itertools
import json
import sys
import threading
import time

import can
import numpy as np

from vla_nodes import contract, ros
from vla_nodes.arm import kinematics
from vla_nodes.arm.piper_protocol import JOINT_CTRL
from vla_nodes.nodes.arm_driver_node import ArmDriverNode
from vla_nodes.nodes.policy_node import PolicyNode
from vla_nodes.ros import image, local
from vla_nodes.ros.msgs import sensor_msgs, stamp_to_ns, std_msgs, trajectory_msgs
from vla_nodes.sim.kinematic_plant import KinematicPlant
from vla_nodes.sim.piper_can import PiperFirmware

JOINT_CTRL_12 = JOINT_CTRL[0]
_ids = itertools.count()


def percentiles(name, values_ms):
    v = np.asarray(values_ms, float)
    if v.size == 0:
        return f'{name:12s} no samples'
    return (f'{name:12s} n={v.size:4d}  p50 {np.percentile(v, 50):7.2f} ms  '
            f'p95 {np.percentile(v, 95):7.2f} ms  max {v.max():7.2f} ms')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=20.0)
    parser.add_argument('--checkpoint', default='')
    opts = parser.parse_args(argv)
    ctx = local.Context()
    ctx.init()
    channel = f'bench_latency_{next(_ids)}'
    bus = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
    plant = KinematicPlant(contract.READY_POSITIONS)
    firmware = PiperFirmware(bus, plant.read_state, plant.set_targets, fk=lambda q: (
        kinematics.pose_to_xyz_rpy(kinematics.forward_kinematics(q))))
    firmware.start()
    frames = []  # perf_counter times of joint-command frames
    listener = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            msg = listener.recv(timeout=0.1)
            if msg is not None and msg.arbitration_id == JOINT_CTRL_12:
                frames.append(time.perf_counter())

    threading.Thread(target=listen, daemon=True).start()
    params = {'can_name': channel, 'can_interface': 'virtual', 'judge_flag': False,
              'dry_run': False, 'enable_on_start': True}
    driver = ArmDriverNode(context=ctx, parameter_overrides=[
        ros.Parameter(k, value=v) for k, v in params.items()])
    policy = PolicyNode(context=ctx, parameter_overrides=[
        ros.Parameter('checkpoint', value=opts.checkpoint)])
    node = local.Node('bench_camera', context=ctx)
    color = node.create_publisher(sensor_msgs.Image, contract.COLOR_TOPIC, 2)
    depth = node.create_publisher(sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC, 2)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    metres = rng.uniform(0.3, 1.0, (240, 320)).astype(np.float32)
    sent, transport, received = {}, [], []

    def publish():
        stamp = node.get_clock().now().nanoseconds
        sent[stamp] = time.perf_counter()
        color.publish(image.to_msg(rgb, 'rgb8', stamp, contract.CAMERA_FRAME))
        depth.publish(image.to_msg(metres, '32FC1', stamp, contract.CAMERA_FRAME))

    def on_color(msg):
        t0 = sent.get(stamp_to_ns(msg.header.stamp))
        if t0 is not None:
            transport.append((time.perf_counter() - t0) * 1e3)

    node.create_timer(0.1, publish)
    node.create_subscription(sensor_msgs.Image, contract.COLOR_TOPIC, on_color, 2)
    node.create_subscription(trajectory_msgs.JointTrajectory, contract.ACTION_CHUNK_TOPIC,
                             lambda msg: received.append(time.perf_counter()), 10)
    timings = []  # policy_node's own per-chunk figures, from /vla/chunk_timing
    node.create_subscription(std_msgs.String, contract.CHUNK_TIMING_TOPIC,
                             lambda msg: timings.append(json.loads(msg.data)), 100)
    executor = local.MultiThreadedExecutor(context=ctx)
    for n in (driver, policy, node):
        executor.add_node(n)
    end = time.monotonic() + opts.seconds
    try:
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.02)
    finally:
        executor.shutdown()
        stop.set()
        for n in (policy, driver, node):
            n.destroy_node()
        firmware.stop()
        bus.shutdown()
        listener.shutdown()
        ctx.try_shutdown()
    stamps = np.asarray(frames)
    driver_ms = [(stamps[i] - t) * 1e3 for t in received
                 for i in [int(np.searchsorted(stamps, t))] if i < len(stamps)]
    print(f'latency budget over {opts.seconds:.0f} s, {len(received)} chunks '
          f"({'checkpoint ' + opts.checkpoint if opts.checkpoint else 'random-weight tiny'}"
          ', 320x240 frames, 1 torch thread)')
    print(percentiles('transport', transport))
    print(percentiles('model', [t['infer_ms'] for t in timings]))
    print(percentiles('obs->chunk', [t['delay_s'] * 1e3 for t in timings]))
    print(percentiles('driver', driver_ms))
    return 0


if __name__ == '__main__':
    sys.exit(main())
