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

"""Orchestration talks to nodes on the wire: sim_node's episode result, no node objects read.

vla-eval's figures (success, episode seconds, final grasp-to-cube distance, latencies) come from
`/sim/episode_result` and `/vla/chunk_timing`; `test_episodes.py` runs a whole evaluation with
the graph's node objects out of reach.
"""

import ast
import itertools
import json
import os
from pathlib import Path
import threading
import time

os.environ.setdefault('MUJOCO_GL', 'egl')  # mujoco picks its GL backend when first imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vla_nodes import contract, ros  # noqa: E402
from vla_nodes.ros import local, qos_profile_latched  # noqa: E402
from vla_nodes.ros.msgs import std_msgs, std_srvs  # noqa: E402

ORCHESTRATION = Path(__file__).resolve().parents[1] / 'vla_nodes' / 'orchestration'
_channels = itertools.count()


def _wait(predicate, timeout_s: float = 60.0) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < end, 'timed out'
        time.sleep(0.01)


@pytest.mark.skipif(ros.BACKEND != 'local', reason='lock-step runs on the local backend')
@pytest.mark.filterwarnings('ignore:.*bustype.*:DeprecationWarning')
def test_sim_node_publishes_each_episodes_result_as_it_ends(ctx):
    from vla_nodes.nodes.sim_node import SimNode
    sim = SimNode(context=ctx, cli_args=[
        '--ros-args', '-p', 'lockstep:=true', '-p', f'can_name:=test_orch_{next(_channels)}',
        '-p', 'camera_rate_hz:=2.0', '-p', 'seed:=7', '-p', 'max_episode_s:=0.5'])
    probe = local.Node('probe', context=ctx)
    results, statuses = [], []
    probe.create_subscription(std_msgs.String, contract.EPISODE_RESULT_TOPIC,
                              lambda m: results.append(json.loads(m.data)), qos_profile_latched)
    probe.create_subscription(std_msgs.String, contract.EPISODE_STATUS_TOPIC,
                              lambda m: statuses.append(m.data), qos_profile_latched)
    reset = probe.create_client(std_srvs.Trigger, '/sim_node/reset')
    executor = local.MultiThreadedExecutor(context=ctx)
    for node in (sim, probe):
        executor.add_node(node)
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        future = reset.call_async(std_srvs.Trigger.Request())
        assert future.wait(30.0) and future.result().message == 'seed 8'
        _wait(lambda: results)
        _wait(lambda: statuses[-1] == 'failure')
        world = sim._sim.world  # a test may look inside; time stands still once the episode ended
        tcp = world.tcp_pose()[:3, 3]
        cube = float(np.linalg.norm(tcp - world.object_pose('cube')[:3, 3]))
        seconds = float(world.time)
    finally:
        stop.set()
        spinner.join()
        executor.shutdown()
        probe.destroy_node()
        sim.destroy_node()
    assert statuses[0] == 'running' and len(results) == 1  # none while an episode runs
    result = results[0]
    assert (result['seed'], result['status']) == (8, 'failure')
    assert 'no success within 0.5 s' in result['reason']
    assert result['episode_s'] == seconds and 0.5 <= seconds < 0.65
    assert result['grasp_to_object_m']['cube'] == cube
    assert set(result['grasp_to_object_m']) == {'cube', 'plate', 'block'}


def _node_object_reads(tree: ast.AST) -> list:
    """Lines where code reaches for a node object.

    That is `x.node(...)` (Graph.node: for tests), `x.nodes`, or a private `x._name` of anything
    but `self` / `cls`.
    """
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == 'node'):
            found.append(node.lineno)
        if not isinstance(node, ast.Attribute):
            continue
        if node.attr == 'nodes':
            found.append(node.lineno)
        elif (node.attr.startswith('_') and not node.attr.startswith('__')
              and not (isinstance(node.value, ast.Name) and node.value.id in ('self', 'cls'))):
            found.append(node.lineno)
    return sorted(set(found))


def test_orchestration_reads_nothing_off_node_objects():
    """Orchestration talks to nodes on the wire only.

    Regressions pinned: vla-eval read policy.stats, policy.infer_ms, policy.delays_s,
    sim.episode_seconds() and sim.grasp_to_object_m() off the node objects; vla-record --sim
    set the recorder's parameter on its object (now through `~/set_parameters`).
    """
    offenders = {}
    for path in sorted(ORCHESTRATION.glob('*.py')):
        lines = _node_object_reads(ast.parse(path.read_text(), str(path)))
        if lines:
            offenders[path.name] = lines
    assert offenders == {}
    # The check itself catches what it is meant to.
    bad = ast.parse('r = graph.node("policy_node").stats\nq = graph.nodes\nw = sim._world\n')
    assert _node_object_reads(bad) == [1, 2, 3]
