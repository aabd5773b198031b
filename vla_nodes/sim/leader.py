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

"""LeaderArm: puts on a CAN bus the frames a Piper leader (teach-input) arm sends its follower.

Where it fits: in leader/follower teleoperation the leader arm streams, at its control rate,
0x151 MotionCtrl_2 (CAN control, MOVE J), 0x155-0x157 JointCtrl (0.001 deg) and 0x159
GripperCtrl (0.001 mm); the follower executes them, and `PiperArm.read_leader()`
(`vla_nodes/arm/piper.py`) decodes the same frames for the recorder. sim_node uses this class to
let the scripted expert (`vla_nodes/sim/expert.py`) play that leader arm on the bus of the
simulated follower (`vla_nodes/sim/piper_can.py`). Frames are encoded by piper_sdk's own
message classes and protocol parser (`C_PiperParserV2.EncodeMessage`), so their layout is the
SDK's by construction.

The bus is the caller's: use a python-can Bus instance of its own on the follower's channel.
It also receives every frame of the channel (about 1700 feedback frames/s), which a virtual bus
queues without limit: `send()` drains it each time, so call it at a steady rate.
"""

import can
import numpy as np

from vla_nodes.arm.piper_protocol import (
    ALL_MOTORS, CTRL_CAN, GRIPPER_ENABLE, gripper_to_sdk, joints_to_sdk, MOTOR_ENABLE_FLAG, MOVE_J,
    POSITION_VELOCITY_MODE, sdk_to_positions)

# The follower's planner runs at this percentage of its maximum joint speed (3 rad/s), so it
# never lags a leader that a person moves at up to about 3 rad/s.
DEFAULT_SPEED_RATE = 100
DEFAULT_GRIPPER_EFFORT = 1000  # 0.001 N/m


class LeaderArm:
    """Encodes and sends leader-arm command frames, in SI units."""

    def __init__(self, bus: can.BusABC, speed_rate: int = DEFAULT_SPEED_RATE,
                 gripper_effort: int = DEFAULT_GRIPPER_EFFORT):
        """Prepare the SDK's encoder; nothing is sent yet.

        Args:
            bus: python-can bus of this leader (not shut down here).
            speed_rate: follower planner speed in percent (0-100), sent in every 0x151.
            gripper_effort: gripper force limit in 0.001 N/m (0-5000), sent in every 0x159.

        Raises:
            ValueError: speed_rate or gripper_effort outside their protocol fields.
        """
        if not 0 <= speed_rate <= 100:
            raise ValueError(f'speed_rate must be 0-100 %, got {speed_rate}')
        if not 0 <= gripper_effort <= 5000:
            raise ValueError(f'gripper_effort must be 0-5000 (0.001 N/m), got {gripper_effort}')
        from piper_sdk.piper_msgs.msg_v2 import (
            ArmMsgGripperCtrl, ArmMsgJointCtrl, ArmMsgMotionCtrl_2,
            ArmMsgMotorEnableDisableConfig, ArmMsgType, PiperMessage)
        from piper_sdk.protocol.protocol_v2 import C_PiperParserV2
        self._bus = bus
        self._parser = C_PiperParserV2()
        self._types = ArmMsgType
        self._message = PiperMessage
        self._joint_ctrl, self._gripper_ctrl = ArmMsgJointCtrl, ArmMsgGripperCtrl
        self._motor_enable = ArmMsgMotorEnableDisableConfig
        self._mode = ArmMsgMotionCtrl_2(CTRL_CAN, MOVE_J, speed_rate, POSITION_VELOCITY_MODE)
        self._gripper_effort = gripper_effort
        self.sent = 0  # frames sent so far

    def enable(self) -> None:
        """Send 0x471 (all motors, enable), which a follower needs before it moves."""
        self._send(self._message(type_=self._types.PiperMsgMotorEnableDisableConfig,
                                 arm_motor_enable=self._motor_enable(ALL_MOTORS[0],
                                                                     MOTOR_ENABLE_FLAG)))

    def send(self, q7) -> np.ndarray:
        """Send one leader command: 0x151, 0x155, 0x156, 0x157, 0x159; then drain the bus.

        Args:
            q7: (7,) joint1..joint6 (rad) and gripper opening (m).

        Returns:
            (7,) what the frames carry, in rad / m (rounded to 0.001 deg and 0.001 mm).

        Raises:
            ValueError: q7 has the wrong size or a non-finite value.
        """
        q7 = np.asarray(q7, dtype=np.float64).reshape(-1)
        if q7.shape != (7,) or not np.all(np.isfinite(q7)):
            raise ValueError(f'a leader command needs 7 finite values (rad x6, m), got {q7!r}')
        joints, stroke = joints_to_sdk(q7[:6]), gripper_to_sdk(q7[6])
        types = self._types
        self._send(self._message(type_=types.PiperMsgMotionCtrl_2, arm_motion_ctrl_2=self._mode))
        ctrl = self._joint_ctrl(*joints)
        for kind in (types.PiperMsgJointCtrl_12, types.PiperMsgJointCtrl_34,
                     types.PiperMsgJointCtrl_56):
            self._send(self._message(type_=kind, arm_joint_ctrl=ctrl))
        gripper = self._gripper_ctrl(stroke, self._gripper_effort, GRIPPER_ENABLE, 0)
        self._send(self._message(type_=types.PiperMsgGripperCtrl, arm_gripper_ctrl=gripper))
        self.drain()
        return sdk_to_positions(joints, stroke)

    def drain(self) -> int:
        """Discard the frames this bus has received; returns how many."""
        count = 0
        while self._bus.recv(timeout=0.0) is not None:
            count += 1
        return count

    def _send(self, message) -> None:
        frame = can.Message(is_extended_id=False)
        self._parser.EncodeMessage(message, frame)  # sets the id and a list of 8 bytes
        frame.data = bytearray(frame.data)
        frame.dlc = len(frame.data)
        self._bus.send(frame)
        self.sent += 1
