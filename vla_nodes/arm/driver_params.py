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

"""The ranges arm_driver_node's numeric parameters must lie in, and what to write instead.

Where it fits: the node passes `RANGES` to `nodes.parameters.declare_parameters`, which declares
each parameter with a ROS range descriptor (rclpy and the local backend then refuse out-of-range
and NaN values, at start-up and on `ros2 param set`) and turns a refusal into one line saying
what to write instead. Pure Python, no ROS.

Why: a zero rate divided by zero, a negative timeout never moved the arm, a NaN limit crashed the
process on the first command and 1000 rad/s passed without a word (issue 12). The bounds are
what the Piper can do (3 rad/s joints, 0.1 m/s gripper, 0-100 % speed, 0-5000 effort) or
what keeps the driver meaningful; narrower is always allowed.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    """Closed interval of a parameter, and why it is bounded."""

    low: float
    high: float
    why: str


RANGES = {
    'control_rate_hz': Range(1.0, 1000.0, 'commands per second; the arm sends feedback at 200'),
    'command_timeout_s': Range(0.01, 10.0, 'how long the arm follows a chunk past its end'),
    'can_timeout_s': Range(0.01, 5.0, 'CAN silence before a fault latches'),
    'connect_timeout_s': Range(0.1, 60.0, 'wait for the first status frame'),
    'enable_timeout_s': Range(0.1, 60.0, 'wait for the motors to report enabled'),
    'blend_s': Range(0.0, 2.0, 'cross-fade between chunks'),
    'max_future_stamp_s': Range(0.0, 5.0, 'how far ahead of this clock a chunk stamp may be'),
    'max_step_rad': Range(0.001, 0.2, 'distance from the measured joint per tick'),
    'max_gripper_step_m': Range(0.0001, 0.02, 'distance from the measured gripper per tick'),
    'max_velocity_rad_s': Range(0.01, 3.0, "joint speed; the Piper's top speed is 3 rad/s"),
    'max_gripper_velocity_m_s': Range(0.001, 0.1, "gripper speed; the Piper's top is 0.1 m/s"),
    'speed_rate': Range(0, 100, "firmware planner speed in % (piper_sdk's 8-bit field)"),
    'gripper_effort': Range(0, 5000, 'gripper force in 0.001 N/m (piper_sdk)'),
    'dh_is_offset': Range(0, 1, "piper_sdk's DH variant: 1 for firmware S-V1.6-3 and later"),
}
