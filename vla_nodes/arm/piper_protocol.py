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

"""The Piper CAN protocol in one table: frame ids, field values and fixed-point units.

Where it fits: the driver side (`arm/piper.py` converts SI units to the SDK's, `arm/can_bus.py`
filters feedback frames, `arm/faults.py` names arm statuses) and the simulated firmware
(`sim/piper_can.py`, which encodes the frames itself, and `sim/leader.py`) import these values,
so the two ends of the bus cannot drift apart. Source: piper_sdk 0.6.2
(`piper_msgs/msg_v2/can_id.py`, the `C_PiperInterface_V2` docstrings). Pure Python, no SDK.
"""

import math

import numpy as np

# --- frame ids -----------------------------------------------------------------------------------
MOTION_CTRL_1 = 0x150       # e-stop / resume (= reset)
MOTION_CTRL_2 = 0x151       # ctrl mode, move mode, speed rate
JOINT_CTRL = (0x155, 0x156, 0x157)  # joints 1-2, 3-4, 5-6
GRIPPER_CTRL = 0x159
MOTOR_ENABLE = 0x471
LIMIT_QUERY = 0x472         # asked by the SDK's ConnectPort (PiperInit)
FIRMWARE_QUERY = 0x4AF      # asked by ConnectPort; the answer uses the same id
STATUS = 0x2A1
END_POSE = (0x2A2, 0x2A3, 0x2A4)
JOINT_FEEDBACK = (0x2A5, 0x2A6, 0x2A7)
GRIPPER_FEEDBACK = 0x2A8
LOW_SPEED = (0x261, 0x262, 0x263, 0x264, 0x265, 0x266)
ANGLE_LIMIT_REPLY = 0x473
ACC_LIMIT_REPLY = 0x47C
# Feedback ids an arm sends (0x2A1 status ... 0x2A8 gripper): always 8 data bytes.
FEEDBACK_IDS = range(STATUS, GRIPPER_FEEDBACK + 1)
# Every id an arm sends (piper_sdk can_id.py): feedback, driver info and replies.
ARM_SENT_IDS = frozenset(
    [STATUS, *END_POSE, *JOINT_FEEDBACK, GRIPPER_FEEDBACK, *LOW_SPEED, ANGLE_LIMIT_REPLY,
     ACC_LIMIT_REPLY, 0x476, 0x478, 0x47B, 0x47E, *range(0x251, 0x257), *range(0x481, 0x487)])

# --- field values (piper_sdk MotionCtrl_2, GripperCtrl, EmergencyStop, EnableArm) ----------------
CTRL_STANDBY, CTRL_CAN = 0x00, 0x01
MOVE_J, MOVE_CPV = 0x01, 0x05
JOINT_MOVE_MODES = (MOVE_J, MOVE_CPV)   # both take 0x155-0x157 joint targets
POSITION_VELOCITY_MODE = 0x00
ESTOP, RESUME = 0x01, 0x02
MOTOR_DISABLE, MOTOR_ENABLE_FLAG = 0x01, 0x02
ALL_MOTORS = (0x07, 0xFF)
GRIPPER_DISABLE, GRIPPER_ENABLE = 0x00, 0x01
GRIPPER_ENABLE_CODES = (0x01, 0x03)  # 0x02 / 0x03 also clear errors
# 0x2A1 byte 1, arm_status (piper_sdk ArmMsgFeedbackStatusEnum.ArmStatus), and byte 4.
ARM_NORMAL, ARM_ESTOP, ARM_TARGET_OVER_LIMIT = 0x00, 0x01, 0x04
MOTION_REACHED, MOTION_MOVING = 0x00, 0x01
DRIVER_ENABLED_BIT = 1 << 6         # low-speed and gripper status byte
GRIPPER_HOMED_BIT = 1 << 7

# --- fixed-point units ---------------------------------------------------------------------------
MILLIDEG_PER_RAD = 180_000.0 / math.pi   # joints and end-pose angles: 0.001 deg per unit
MICROMETRE_PER_M = 1_000_000.0           # gripper stroke and end-pose position: 0.001 mm
DECIDEG_PER_RAD = 1_800.0 / math.pi      # joint limits (0x473): 0.1 deg per unit
MILLIRAD_PER_RAD = 1_000.0               # joint speeds (0x473, MotorMaxSpdSet): 0.001 rad/s


def joints_to_sdk(q6) -> list:
    """Joint angles (rad) -> SDK joint units (int, 0.001 deg), rounded to nearest."""
    return [int(round(float(v) * MILLIDEG_PER_RAD)) for v in q6]


def gripper_to_sdk(opening_m: float) -> int:
    """Gripper opening (m) -> SDK gripper units (int, 0.001 mm), rounded to nearest."""
    return int(round(float(opening_m) * MICROMETRE_PER_M))


def sdk_to_positions(joints_mdeg, gripper_um: int) -> np.ndarray:
    """SDK units (0.001 deg x6, 0.001 mm) -> (7,) rad x6 and m."""
    joints = np.asarray(joints_mdeg, dtype=np.float64) / MILLIDEG_PER_RAD
    return np.append(joints, gripper_um / MICROMETRE_PER_M)
