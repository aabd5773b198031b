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

"""Observation -> chunk in the sim graph: all nodes in one process vs each in its own process.

Usage: MUJOCO_GL=egl python bench/bench_obs_to_chunk.py [--seconds 40] [--warmup 20]

Both runs launch sim.launch.yaml in real time (sim_node's camera at 10 Hz, policy_node with the
tiny random-weight model, the driver, depth, pose, recorder and robot_state nodes) and read
policy_node's /vla/chunk_timing after `--warmup` s: `delay_s`, the observation's stamp -> the
chunk published, and `infer_ms`, the model alone. `one process`: the graph in this process on the
local backend (orchestration.episodes.open_graph), a control node listening. `processes`:
`vla-launch ... --processes` on the zenoh backend (CAN over udp_multicast), a probe joining over
loopback TCP. Per chunk: `input wait`, the observation's stamp -> policy_node asking the model
(rendering, transport, and the joint state at or after the frame completing it), the model,
and `after`, what is left (the worker's hand-off, conversion, publishing); issue 17's target is
obs->chunk within 20 % of model time + transport, the ratio column. Times are policy_node's
clock: the simulated one, which sim_node advances in 10 ms steps.
"""

import argparse
import json
import os
from pathlib import Path
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from vla_nodes import contract
from vla_nodes.ros import local, msgs, zenoh_bus
from vla_nodes.ros.launch_procs import stop_launcher

ROOT = Path(__file__).resolve().parents[1]


def one_process(seconds: float, warmup: float) -> list:
    """(delay_s, infer_ms) of each chunk timed, with every node in this process."""
    from vla_nodes.orchestration.episodes import open_graph
    from vla_nodes.paths import package_share
    from vla_nodes.ros.msgs import std_msgs
    timings, start = [], time.monotonic()
    args = {'output_dir': tempfile.mkdtemp(prefix='obs_to_chunk_'), 'can_name': 'bench_o2c'}
    with open_graph(package_share() / 'launch' / 'sim.launch.yaml', args,
                    control='o2c_probe') as graph:
        graph.control.create_subscription(
            std_msgs.String, contract.CHUNK_TIMING_TOPIC,
            lambda m: timings.append((time.monotonic(), json.loads(m.data))), 100)
        time.sleep(warmup + seconds)
    return _after(timings, start + warmup)


def processes(seconds: float, warmup: float) -> list:
    """The same with `vla-launch --processes` (zenoh), read by a probe in this process."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        endpoint = f'tcp/127.0.0.1:{s.getsockname()[1]}'
    out = tempfile.mkdtemp(prefix='obs_to_chunk_')
    graph = subprocess.Popen(
        [sys.executable, '-m', 'vla_nodes.ros.launch', 'vla_nodes', 'sim.launch.yaml',
         '--processes', 'can_interface:=udp_multicast', 'can_name:=239.74.163.9',
         f'output_dir:={out}', '--listen', endpoint],
        env=dict(os.environ, PYTHONPATH=str(ROOT), VLA_ROS_BACKEND='zenoh'),
        stderr=open(Path(out, 'graph.log'), 'w'))
    context = local.Context()
    context.init(bus=zenoh_bus.ZenohBus(zenoh_bus.session_config(
        f'connect/endpoints=["{endpoint}"];listen/endpoints=[]')))
    timings, start = [], time.monotonic()
    try:
        node = local.Node('o2c_probe', context=context)
        node.create_subscription(
            msgs.get_message('std_msgs/msg/String'), contract.CHUNK_TIMING_TOPIC,
            lambda m: timings.append((time.monotonic(), json.loads(m.data))), 100)
        executor = local.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        while time.monotonic() - start < warmup + seconds:
            executor.spin_once(timeout_sec=0.05)
    finally:
        stop_launcher(graph, 30)
        context.shutdown()
    return _after(timings, start + warmup)


def _after(timings: list, t0: float) -> list:
    return [(t['delay_s'], t['infer_ms'], t['input_wait_s'])
            for arrival, t in timings if arrival >= t0]


def _pct(values, q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float('nan')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=40.0)
    parser.add_argument('--warmup', type=float, default=20.0)
    opts = parser.parse_args()
    print(f'command: python bench/bench_obs_to_chunk.py --seconds {opts.seconds:g} '
          f'--warmup {opts.warmup:g}   (load {os.getloadavg()[0]:.1f})')
    rows = [('one process (local)', one_process(opts.seconds, opts.warmup)),
            ('processes (zenoh)', processes(opts.seconds, opts.warmup))]
    print(f"{'graph':22s} {'chunks':>6s} {'obs->chunk p50/p95 ms':>22s} "
          f"{'model p50/p95 ms':>17s} {'input wait p50':>14s} {'after p50':>9s} "
          f"{'obs->chunk / (model + wait)':>27s}")
    for name, got in rows:
        if not got:
            print(f'{name:22s} no chunks: see the graph log')
            continue
        delays = [d * 1e3 for d, _, _ in got]
        model = [m for _, m, _ in got]
        wait = [w * 1e3 for _, _, w in got]
        after = [d - m - w for d, m, w in zip(delays, model, wait)]
        ratio = [d / (m + w) for d, m, w in zip(delays, model, wait)]
        print(f'{name:22s} {len(got):6d} {_pct(delays, 50):10.1f}/{_pct(delays, 95):<10.1f} '
              f'{_pct(model, 50):8.1f}/{_pct(model, 95):<8.1f} {_pct(wait, 50):14.1f} '
              f'{_pct(after, 50):9.1f} {_pct(ratio, 50):15.2f} p50, {_pct(ratio, 95):.2f} p95')
    print(f'load after: {os.getloadavg()[0]:.1f}')


if __name__ == '__main__':
    main()
