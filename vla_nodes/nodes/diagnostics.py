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

"""Diagnostics publishing shared by the nodes: one DiagnosticStatus per node on /diagnostics."""

from vla_nodes import contract
from vla_nodes.ros.msgs import diagnostic_msgs

# The message's own constants: bytes under rclpy, ints in the local backend.
OK = diagnostic_msgs.DiagnosticStatus.OK
WARN = diagnostic_msgs.DiagnosticStatus.WARN
ERROR = diagnostic_msgs.DiagnosticStatus.ERROR


class Diagnostics:
    """Publishes the node's status at 1 Hz; the node updates level, message and values."""

    def __init__(self, node, hardware_id: str = '', period_s: float = 1.0):
        self._node = node
        self._pub = node.create_publisher(diagnostic_msgs.DiagnosticArray,
                                          contract.DIAGNOSTICS_TOPIC, 10)
        self._hardware_id = hardware_id
        self.level, self.message, self.values = OK, 'starting', {}
        self._timer = node.create_timer(period_s, self.publish)

    def set(self, level, message: str, **values) -> None:
        self.level, self.message = level, message
        self.values.update(values)

    def publish(self) -> None:
        status = diagnostic_msgs.DiagnosticStatus(
            level=self.level,
            name=self._node.get_fully_qualified_name(), message=self.message,
            hardware_id=self._hardware_id,
            values=[diagnostic_msgs.KeyValue(key=k, value=_fmt(v))
                    for k, v in sorted(self.values.items())])
        array = diagnostic_msgs.DiagnosticArray(status=[status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._pub.publish(array)


def _fmt(value) -> str:
    return f'{value:.3f}' if isinstance(value, float) else str(value)
