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

"""An ended episode's figures, as sim_node publishes them on /sim/episode_result (contract.py).

The grasp-centre-to-object distances (ground truth) are a continuous measure of how close a
policy came, which shows learning before success does. Pure Python over the world, no ROS.
"""

import numpy as np

from vla_nodes.sim.world import OBJECTS


def episode_result(world, episode) -> dict:
    """Seed, status, reason, simulated duration and grasp-to-object distances, measured now."""
    tcp = world.tcp_pose()[:3, 3]
    distances = {}
    for name in OBJECTS:
        try:
            distances[name] = float(np.linalg.norm(tcp - world.object_pose(name)[:3, 3]))
        except KeyError:  # a user's scene without it
            continue
    return {'seed': int(episode.seed), 'status': episode.status, 'reason': episode.reason,
            'episode_s': float(world.time), 'grasp_to_object_m': distances}
