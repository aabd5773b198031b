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

"""trajectory_relay_node: the policy's chunks to ros2_control's joint_trajectory_controllers.

`/vla/action_chunk` carries one JointTrajectory over all the contract's joints; each controller
of `controllers_file` (default config/controllers.yaml) takes only its own joints, on
`/<controller>/joint_trajectory`. The split keeps the chunk's stamp (observation time) and its
points' timing (`description/controllers.py`). Chunks observed before the latest
`/vla/episode_start` are dropped: a chunk computed in the previous episode never reaches the
controllers (as in arm_driver_node).
"""

from vla_nodes import contract, paths, ros
from vla_nodes.description.controllers import split_points, trajectory_controllers
from vla_nodes.nodes import run
from vla_nodes.nodes.parameters import declare_parameters
from vla_nodes.ros.msgs import stamp_to_ns, std_msgs, trajectory_msgs

PARAMETERS = {
    'controllers_file': '',    # '' = the package's config/controllers.yaml
    'joint_prefix': '',        # prepended to the controllers' joint names (left_, right_)
}


class TrajectoryRelayNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('trajectory_relay_node', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        path = p['controllers_file'] or paths.package_share() / 'config' / 'controllers.yaml'
        self._groups = {name: [p['joint_prefix'] + j for j in joints]
                        for name, joints in trajectory_controllers(path).items()}
        self._pubs = {name: self.create_publisher(trajectory_msgs.JointTrajectory,
                                                  f'/{name}/joint_trajectory', 10)
                      for name in self._groups}
        self.create_subscription(trajectory_msgs.JointTrajectory, contract.ACTION_CHUNK_TOPIC,
                                 self._on_chunk, 10)
        self._episode_start_ns = 0
        self.refused = 0
        self.create_subscription(std_msgs.Header, contract.EPISODE_START_TOPIC,
                                 self._on_episode_start, ros.qos_profile_latched)

    def _on_episode_start(self, msg) -> None:
        self._episode_start_ns = (stamp_to_ns(msg.stamp)
                                  or self.get_clock().now().nanoseconds)  # 0: now

    def _on_chunk(self, msg) -> None:
        if stamp_to_ns(msg.header.stamp) < self._episode_start_ns:
            self.refused += 1
            self.get_logger().warning('chunk observed before the episode start: dropped',
                                      throttle_duration_sec=2.0)
            return
        points = [(list(p.positions), p.time_from_start) for p in msg.points]
        for name, (joints, rows) in split_points(msg.joint_names, points, self._groups).items():
            out = trajectory_msgs.JointTrajectory(header=msg.header, joint_names=joints)
            out.points = [trajectory_msgs.JointTrajectoryPoint(positions=[float(v) for v in q],
                                                               time_from_start=t)
                          for q, t in rows]
            self._pubs[name].publish(out)


def main(args=None):
    run(TrajectoryRelayNode, args)
