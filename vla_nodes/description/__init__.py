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

"""The Piper's robot description for the ROS ecosystem (URDF via xacro), and FK over a URDF.

- `generate.py` writes `description/piper_macros.xacro` from the same numbers the simulator
  uses: piper_sdk's DH chain (`arm/kinematics.py`), the driver's limits (`contract.PIPER_LIMITS`),
  the sim's primitive geometry (`sim/piper_mjcf.py`) and `config/calibration.yaml`; then expands
  the top-level `description/*.urdf.xacro` into the parameter files robot_state_publisher reads.
  `python -m vla_nodes.description` regenerates them; a test fails when they are stale.
- `tree.py` parses a URDF and computes every link's transform from joint positions: the pure
  logic of `robot_state_node` (robot_state_publisher without ROS).
"""
