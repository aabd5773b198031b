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

"""vla_nodes: depth-aware Vision-Language-Action policies on robot arms, as ROS 2 nodes.

Map of the package (data flows left to right, DESIGN.md section 1):

    camera_node | sim_node --color, aligned depth--> depth_node --metric depth--> policy_node
    arm_driver_node --/joint_states--> pose_node, policy_node, teleop_recorder_node
    policy_node --/vla/action_chunk--> arm_driver_node --CAN (piper_sdk)--> Piper | simulated Piper

- contract.py   joint names, limits, topics, units: said once
- ros/          the façade (rclpy or the built-in `local` runtime), messages, images, vla-launch
                and its graph runner
- nodes/        one thin ROS adapter per executable
- orchestration/ jobs that run a graph in this process (vla-record, vla-eval, vla-main, vla-demo)
- camera/       RealSense capture and playback
- perception/   metric depth, end-effector pose
- arm/          Piper kinematics, the piper_sdk wrapper, safety filter, trajectory following
- policy/       policy interface, transforms, checkpoints
- models/       torch + transformers model code
- record/       rosbag2 writing and reading
- sim/          MuJoCo world and the simulated Piper firmware on a CAN bus
"""
