#!/usr/bin/env bash
# The README's test command: set up (idempotent), run the test suite, then check the ROS
# packaging with colcon. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl} VLA_ROS_BACKEND=${VLA_ROS_BACKEND:-local}
.venv/bin/python -m pytest -q "$@"
scripts/check_colcon.sh
