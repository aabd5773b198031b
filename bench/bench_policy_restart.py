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

"""The simulated graph across processes: kill policy_node mid-motion, restart it, time the driver.

Usage: MUJOCO_GL=egl python bench/bench_policy_restart.py [--kill-at 45] [--down 20] [--after 40]

Runs `vla-launch vla_nodes sim.launch.yaml --processes` (CAN over udp_multicast, a router on a
free loopback port), and joins the graph with a probe on the zenoh backend that timestamps
`/vla/action_chunk` (policy) and `/arm_driver_node/command` (the driver's joint commands, one per
control step while it follows a chunk, none while it holds). At `--kill-at` seconds policy_node
is SIGKILLed; `--down` seconds later it is started alone (`--only policy_node --connect`), as on
a second machine. Printed: when the driver stopped commanding after the kill (its staleness
watchdog: end of the last chunk + `command_timeout_s`), and when chunks and commands resumed.
Needs several free cores: on a loaded 2-core machine the policy may not keep up at all.
"""

import argparse
import os
from pathlib import Path
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

from vla_nodes.ros import local, msgs, zenoh_bus

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--kill-at', type=float, default=45.0)
    parser.add_argument('--down', type=float, default=20.0)
    parser.add_argument('--after', type=float, default=40.0)
    opts = parser.parse_args()
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        endpoint = f'tcp/127.0.0.1:{s.getsockname()[1]}'
    env = dict(os.environ, PYTHONPATH=str(ROOT), VLA_ROS_BACKEND='zenoh')
    launch = [sys.executable, '-m', 'vla_nodes.ros.launch', 'vla_nodes', 'sim.launch.yaml',
              '--processes', 'can_interface:=udp_multicast', 'can_name:=239.74.163.7']
    out = tempfile.mkdtemp(prefix='policy_restart_')
    log = Path(out, 'graph.log')
    graph = subprocess.Popen(launch + ['--listen', endpoint, f'output_dir:={out}'], env=env,
                             stderr=open(log, 'w'))
    context = local.Context()
    context.init(bus=zenoh_bus.ZenohBus(zenoh_bus.session_config(
        f'connect/endpoints=["{endpoint}"];listen/endpoints=[]')))
    node = local.Node('probe', context=context)
    chunks, commands = [], []
    node.create_subscription(msgs.get_message('trajectory_msgs/msg/JointTrajectory'),
                             '/vla/action_chunk', lambda m: chunks.append(time.monotonic()), 10)
    node.create_subscription(msgs.get_message('sensor_msgs/msg/JointState'),
                             '/arm_driver_node/command',
                             lambda m: commands.append(time.monotonic()), 100)
    executor = local.MultiThreadedExecutor(context=context)
    executor.add_node(node)
    start = time.monotonic()
    restarted = None
    try:
        def spin_until(t):
            while time.monotonic() - start < t:
                executor.spin_once(timeout_sec=0.05)
        # Across processes the driver may connect before the simulated firmware is on the CAN
        # bus and latch a fault; the documented recovery is `~/enable true` (a service call
        # across processes), once frames flow.
        SetBool = msgs.get_service('std_srvs/srv/SetBool')
        enable = node.create_client(SetBool, '/arm_driver_node/enable')
        enabled = None
        while enabled is None and time.monotonic() - start < opts.kill_at - 5:
            spin_until(time.monotonic() - start + 2.0)
            if enable.service_is_ready():
                future = enable.call_async(SetBool.Request(data=True))
                if future.wait(5) and future.result().success:
                    enabled = time.monotonic()
        print(f'driver enabled at {enabled - start if enabled else float("nan"):.1f} s')
        spin_until(opts.kill_at)
        pid = int(re.search(r'started /policy_node .* pid (\d+)', log.read_text()).group(1))
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        spin_until(opts.kill_at + opts.down)
        restarted = subprocess.Popen(launch + ['--connect', endpoint, '--only', 'policy_node'],
                                     env=env, stderr=open(Path(out, 'policy.log'), 'w'))
        restart = time.monotonic()
        spin_until(opts.kill_at + opts.down + opts.after)
    finally:
        for proc in (restarted, graph):
            if proc is not None:
                proc.send_signal(signal.SIGINT)
                proc.wait(30)
        context.shutdown()

    def rel(ts):
        return 'never' if ts is None else f'{ts - start:6.1f} s'
    before = [t for t in chunks if t < killed]
    print(f'chunks before the kill: {len(before)}, first at {rel(before[0] if before else None)}')
    print(f'policy killed at        {rel(killed)}')
    last_cmd = max((t for t in commands if t < restart), default=None)
    print(f'last driver command     {rel(last_cmd)}'
          + (f'  ({last_cmd - killed:+.2f} s after the kill)' if last_cmd else ''))
    print(f'policy restarted at     {rel(restart)}')
    first_chunk = min((t for t in chunks if t > restart), default=None)
    first_cmd = min((t for t in commands if t > restart), default=None)
    print(f'first chunk after it    {rel(first_chunk)}')
    print(f'first command after it  {rel(first_cmd)}')
    print(f'logs: {out}')


if __name__ == '__main__':
    main()
