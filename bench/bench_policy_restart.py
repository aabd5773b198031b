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
test_zenoh.py runs it shorter (kill at 25 s, restart 3 s later) and checks the timeline.
"""

import argparse
from dataclasses import dataclass, field
import math
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
from vla_nodes.ros.launch_procs import stop_launcher

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Timeline:
    """Monotonic times (s) of one kill-and-restart run, and the last chunk before the kill."""

    start: float
    enabled: float | None
    killed: float
    restarted: float
    chunks: list = field(default_factory=list)  # (arrival, last point's time_from_start)
    commands: list = field(default_factory=list)  # arrivals of the driver's joint commands
    log_dir: str = ''

    def last_command_before_restart(self) -> float | None:
        return max((t for t in self.commands if t < self.restarted), default=None)

    def last_chunk_before_kill(self) -> tuple | None:
        return max(((t, d) for t, d in self.chunks if t < self.killed), default=None)

    def first_after_restart(self, times) -> float | None:
        return min((t for t in times if t > self.restarted), default=None)


def run(kill_at: float, down: float, after: float, stop_when_resumed: bool = False) -> Timeline:
    """Launch the graph across processes, kill policy_node at `kill_at` s, restart it later.

    With `stop_when_resumed`, the run ends one second after the driver's first command after
    the restart (a test needs no more); else it runs `after` s past the restart.
    """
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
    timeline = Timeline(time.monotonic(), None, math.inf, math.inf, log_dir=out)

    def on_chunk(msg):
        horizon = msg.points[-1].time_from_start if msg.points else None
        timeline.chunks.append((time.monotonic(), horizon.sec + horizon.nanosec * 1e-9
                                if horizon else 0.0))
    node.create_subscription(msgs.get_message('trajectory_msgs/msg/JointTrajectory'),
                             '/vla/action_chunk', on_chunk, 10)
    node.create_subscription(msgs.get_message('sensor_msgs/msg/JointState'),
                             '/arm_driver_node/command',
                             lambda m: timeline.commands.append(time.monotonic()), 100)
    executor = local.MultiThreadedExecutor(context=context)
    executor.add_node(node)
    restarted = None
    try:
        def spin_until(t, done=lambda: False):
            while time.monotonic() - timeline.start < t and not done():
                executor.spin_once(timeout_sec=0.05)
        timeline.enabled = _enable(node, spin_until, timeline.start, kill_at - 5)
        spin_until(kill_at)
        pid = int(re.search(r'started /policy_node .* pid (\d+)', log.read_text()).group(1))
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # seen once under a load of 14 on 2 cores
            raise RuntimeError(f'policy_node (pid {pid}) had exited before the kill: see {log}')
        timeline.killed = time.monotonic()
        spin_until(kill_at + down)
        restarted = subprocess.Popen(launch + ['--connect', endpoint, '--only', 'policy_node'],
                                     env=env, stderr=open(Path(out, 'policy.log'), 'w'))
        timeline.restarted = time.monotonic()
        resumed = lambda: stop_when_resumed and any(  # noqa: E731
            t > timeline.restarted + 1.0 for t in timeline.commands)
        spin_until(kill_at + down + after, resumed)
    finally:
        for proc in (restarted, graph):
            if proc is not None:
                stop_launcher(proc, 30)
        context.shutdown()
    return timeline


def _enable(node, spin_until, start: float, deadline: float) -> float | None:
    """Call `/arm_driver_node/enable` until it succeeds; when it did (monotonic s), or None.

    Across processes the driver may connect before the simulated firmware is on the CAN bus and
    latch a fault; the documented recovery is `~/enable true` (a service call across
    processes), once frames flow.
    """
    SetBool = msgs.get_service('std_srvs/srv/SetBool')
    enable = node.create_client(SetBool, '/arm_driver_node/enable')
    while time.monotonic() - start < deadline:
        spin_until(time.monotonic() - start + 2.0)
        if enable.service_is_ready():
            future = enable.call_async(SetBool.Request(data=True))
            if future.wait(5) and future.result().success:
                return time.monotonic()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--kill-at', type=float, default=45.0)
    parser.add_argument('--down', type=float, default=20.0)
    parser.add_argument('--after', type=float, default=40.0)
    opts = parser.parse_args()
    t = run(opts.kill_at, opts.down, opts.after)

    def rel(ts):
        return 'never' if ts is None else f'{ts - t.start:6.1f} s'
    before = [a for a, _ in t.chunks if a < t.killed]
    print(f'driver enabled at       {rel(t.enabled)}')
    print(f'chunks before the kill: {len(before)}, first at {rel(before[0] if before else None)}')
    print(f'policy killed at        {rel(t.killed)}')
    last_cmd = t.last_command_before_restart()
    print(f'last driver command     {rel(last_cmd)}'
          + (f'  ({last_cmd - t.killed:+.2f} s after the kill)' if last_cmd else ''))
    print(f'policy restarted at     {rel(t.restarted)}')
    print(f'first chunk after it    {rel(t.first_after_restart(a for a, _ in t.chunks))}')
    print(f'first command after it  {rel(t.first_after_restart(t.commands))}')
    print(f'logs: {t.log_dir}')


if __name__ == '__main__':
    main()
