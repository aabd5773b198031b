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

"""A launch file's graph in this process, and its simulated episodes seen from outside.

Where it fits: vla-record --sim, vla-eval and vla-main run a sim launch file through
`open_graph` and drive its episodes with `SimEpisodes`, on the graph's control node: sim_node's
`~/reset` service, `/sim/episode_status`, `/sim/episode_result` and `/clock`. Nothing here holds
a node object: what a job learns about an episode comes over the wire, as it would from a
simulator in another process.
"""

from contextlib import contextmanager
import json
import threading
import time
from typing import Callable

from vla_nodes import contract

RESET_SERVICE = '/sim_node/reset'
TERMINAL = ('success', 'failure')


@contextmanager
def open_graph(launch_file, launch_args: dict | None = None, lockstep: bool = False,
               control: str = 'vla_control'):
    """Run a launch file's nodes plus a control node in this process, spinning on a thread.

    Example:
        with open_graph('sim_record.launch.yaml', {'task': 'pick_red_cube'}) as graph:
            episodes = SimEpisodes(graph.control)

    With `lockstep` the launch file gets `lockstep:=true` (sim_node's lock-step mode) and the
    callbacks run on one thread, in an order that depends only on the work: an exact replay.
    With `launch_file` None only the control node runs (the graph runs elsewhere, e.g. rclpy).

    Yields:
        The started `ros.launch.Graph`; `graph.control` is the control node. Every node is
        destroyed on the way out.
    """
    from vla_nodes.ros import launch
    launch_args = dict(launch_args or {}, **({'lockstep': 'true'} if lockstep else {}))
    specs = [] if launch_file is None else launch.load_launch(launch_file, launch_args)
    with launch.Graph(specs, single_threaded=lockstep, control=control) as graph:
        yield graph.spin_in_thread()


def call_service(client, service: str, timeout_s: float, request=None):
    """Call a service client spun by another thread; the response, or RuntimeError.

    `request` defaults to an empty std_srvs/Trigger request.
    """
    from vla_nodes.ros.msgs import std_srvs
    future = client.call_async(std_srvs.Trigger.Request() if request is None else request)
    end = time.monotonic() + timeout_s
    while not future.done():
        if time.monotonic() > end:
            raise RuntimeError(f'{service} did not answer in {timeout_s} s')
        time.sleep(0.01)
    return future.result()


class SimEpisodes:
    """sim_node's episodes, on a control node: reset, status, result and simulated clock.

    Args:
        node: the control node (spun by the caller's executor).
        on_color: called with every colour frame (e.g. to keep an image strip), or None.
    """

    def __init__(self, node, on_color: Callable | None = None) -> None:
        from vla_nodes import ros
        from vla_nodes.ros.msgs import rosgraph_msgs, sensor_msgs, std_msgs, std_srvs
        group = ros.ReentrantCallbackGroup()
        self._reset = node.create_client(std_srvs.Trigger, RESET_SERVICE)
        self.status, self.result, self.sim_s = '', None, 0.0
        self._changed = threading.Event()
        node.create_subscription(std_msgs.String, contract.EPISODE_STATUS_TOPIC,
                                 self._on_status, ros.qos_profile_latched, callback_group=group)
        node.create_subscription(std_msgs.String, contract.EPISODE_RESULT_TOPIC,
                                 self._on_result, ros.qos_profile_latched, callback_group=group)
        node.create_subscription(rosgraph_msgs.Clock, contract.CLOCK_TOPIC, self._on_clock, 10,
                                 callback_group=group)
        if on_color is not None:
            node.create_subscription(sensor_msgs.Image, contract.COLOR_TOPIC, on_color, 2,
                                     callback_group=group)

    def _on_status(self, msg) -> None:
        self.status = msg.data
        self._changed.set()

    def _on_result(self, msg) -> None:
        self.result = json.loads(msg.data)
        self._changed.set()

    def _on_clock(self, msg) -> None:
        self.sim_s = msg.clock.sec + msg.clock.nanosec * 1e-9

    def reset(self, timeout_s: float = 30.0, wait_running: bool = True) -> int:
        """Start the next episode; returns its seed (the launch's `seed` + 1, + 2, ...).

        With `wait_running`, returns once the status says 'running'.
        """
        if not self._reset.wait_for_service(timeout_sec=timeout_s):
            raise RuntimeError(f'{RESET_SERVICE} is not available: is sim_node running?')
        self.status, self.result = '', None
        response = call_service(self._reset, RESET_SERVICE, timeout_s)
        if not response.success:
            raise RuntimeError(f'{RESET_SERVICE} failed: {response.message}')
        if wait_running:
            self.wait_for(lambda s: s == 'running', timeout_s)
        return int(response.message.split()[-1])

    def wait_for(self, accept: Callable[[str], bool], timeout_s: float) -> bool:
        """Wait until `accept(status)`; False after `timeout_s` wall seconds."""
        end = time.monotonic() + timeout_s
        while not accept(self.status):
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            if accept(self.status):
                break
            self._changed.wait(min(remaining, 0.2))
        return True

    def wait_result(self, seed: int, max_sim_s: float, wall_timeout_s: float) -> dict:
        """The result of episode `seed` (sim_node's /sim/episode_result), when it ends.

        sim_node ends an episode by its own budget; should it not, after `max_sim_s` + 1
        simulated seconds the outcome is 'failure', after `wall_timeout_s` 'timeout', and the
        figures only sim_node knows are NaN.

        Returns:
            {'seed', 'status', 'reason', 'episode_s', 'grasp_to_object_m': {name: m}}.
        """
        start_wall, start_sim = time.monotonic(), self.sim_s
        outcome = 'timeout'
        while time.monotonic() - start_wall < wall_timeout_s:
            result = self.result
            if result is not None and result.get('seed') == seed:
                return result
            if self.sim_s - start_sim >= max_sim_s + 1.0:  # sim_node should have said so
                outcome = 'failure'
                break
            time.sleep(0.02)
        return {'seed': seed, 'status': outcome, 'reason': 'no result from sim_node',
                'episode_s': self.sim_s - start_sim, 'grasp_to_object_m': {}}
