"""The Piper's robot description for the ROS ecosystem (URDF via xacro), and FK over a URDF.

- `generate.py` writes `description/piper_macros.xacro` from the same numbers the simulator
  uses: piper_sdk's DH chain (`arm/kinematics.py`), the driver's limits (`contract.PIPER_LIMITS`),
  the sim's primitive geometry (`sim/piper_mjcf.py`) and `config/calibration.yaml`; then expands
  the top-level `description/*.urdf.xacro` into the parameter files robot_state_publisher reads.
  `python -m vla_nodes.description` regenerates them; a test fails when they are stale.
- `tree.py` parses a URDF and computes every link's transform from joint positions: the pure
  logic of `robot_state_node` (robot_state_publisher without ROS).
"""
