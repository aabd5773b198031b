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

The functions below turn the declared values (`p`, by arm_driver_node's parameter names) into
the cores' configurations, so the node holds no field-by-field mapping.
"""

from dataclasses import dataclass

from vla_nodes.arm.controller import ControlConfig
from vla_nodes.arm.piper import PiperConfig
from vla_nodes.arm.safety import narrowed_limits, SafetyFilter


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


def piper_config(p: dict) -> PiperConfig:
    """The CAN connection and firmware settings of the driver's parameters `p`."""
    return PiperConfig(
        can_name=p['can_name'], interface=p['can_interface'], judge_flag=p['judge_flag'],
        dh_is_offset=p['dh_is_offset'], speed_rate=p['speed_rate'],
        gripper_effort=p['gripper_effort'], connect_timeout=p['connect_timeout_s'],
        bind_address=p['can_bind_address'])


def safety_filter(p: dict) -> tuple:
    """(SafetyFilter, ignored): the limits of `p`, narrowed to the contract's.

    Returns:
        The filter, and one message per limit wider than the contract (ignored, not applied).

    Raises:
        ValueError: limits that cannot be used (see `arm.safety.narrowed_limits`).
    """
    limits, ignored = narrowed_limits(
        p['lower_limits'], p['upper_limits'],
        max_step=(p['max_step_rad'],) * 6 + (p['max_gripper_step_m'],),
        max_velocity=(p['max_velocity_rad_s'],) * 6 + (p['max_gripper_velocity_m_s'],))
    return SafetyFilter(limits), ignored


def control_config(p: dict, sim_time: bool) -> ControlConfig:
    """The control decisions' settings of `p`; `sim_time`: the node runs on simulated time."""
    return ControlConfig(
        dt=1.0 / p['control_rate_hz'], command_timeout_s=p['command_timeout_s'],
        enable_timeout_s=p['enable_timeout_s'], can_timeout_s=p['can_timeout_s'],
        blend_s=p['blend_s'], max_future_stamp_s=p['max_future_stamp_s'], dry_run=p['dry_run'],
        dh_is_offset=p['dh_is_offset'], sim_time=sim_time)
