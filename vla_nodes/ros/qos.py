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

"""QoS profiles for the ROS-free backends, with rclpy's names and ROS 2's matching rules.

Only what changes behaviour in-process is modelled: history depth (keep-last drops the oldest),
reliability and durability (transient-local publishers replay their last messages to late
subscribers, like a latched topic). Matching follows the ROS 2 QoS compatibility table, so a
pairing that would stay silent on a robot stays silent here too.
"""

from dataclasses import dataclass
import enum


class HistoryPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    KEEP_LAST = 1
    KEEP_ALL = 2


class ReliabilityPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    RELIABLE = 1
    BEST_EFFORT = 2


class DurabilityPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    TRANSIENT_LOCAL = 1
    VOLATILE = 2


# KEEP_ALL still needs a bound in a process: this is rmw's practical default for it.
KEEP_ALL_DEPTH = 10_000


@dataclass
class QoSProfile:
    """rclpy.qos.QoSProfile subset: history, depth, reliability, durability."""

    history: HistoryPolicy = HistoryPolicy.KEEP_LAST
    depth: int = 10
    reliability: ReliabilityPolicy = ReliabilityPolicy.RELIABLE
    durability: DurabilityPolicy = DurabilityPolicy.VOLATILE

    def __init__(self, *, history=HistoryPolicy.KEEP_LAST, depth=None,
                 reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE):
        if history == HistoryPolicy.KEEP_LAST and depth is None:
            raise ValueError('QoSProfile with KEEP_LAST history needs a depth (as in rclpy)')
        self.history = HistoryPolicy(history)
        self.depth = int(depth) if depth is not None else 0
        self.reliability = ReliabilityPolicy(reliability)
        self.durability = DurabilityPolicy(durability)

    @property
    def queue_length(self) -> int:
        """Messages kept per subscription before the oldest is dropped."""
        if self.history == HistoryPolicy.KEEP_ALL:
            return KEEP_ALL_DEPTH
        return max(1, self.depth)


def as_profile(qos) -> QoSProfile:
    """Accept what rclpy accepts: a QoSProfile or a plain history depth."""
    if isinstance(qos, QoSProfile):
        return qos
    if isinstance(qos, int) and not isinstance(qos, bool):
        return QoSProfile(depth=qos)
    raise TypeError(f'qos must be a QoSProfile or an int depth, got {type(qos).__name__}')


def incompatibility(pub: QoSProfile, sub: QoSProfile) -> str:
    """Why a publisher and a subscription would not match in ROS 2; '' when they do."""
    if (pub.reliability == ReliabilityPolicy.BEST_EFFORT
            and sub.reliability == ReliabilityPolicy.RELIABLE):
        return 'publisher is BEST_EFFORT but subscription requires RELIABLE'
    if (pub.durability == DurabilityPolicy.VOLATILE
            and sub.durability == DurabilityPolicy.TRANSIENT_LOCAL):
        return 'publisher is VOLATILE but subscription requires TRANSIENT_LOCAL'
    return ''


qos_profile_sensor_data = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
qos_profile_system_default = QoSProfile(depth=10)
qos_profile_services_default = QoSProfile(depth=10)
# What a latched topic (e.g. /tf_static, /vla/instruction) uses on a robot.
qos_profile_latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
