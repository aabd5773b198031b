#!/usr/bin/env bash
# The README's main job: set up (idempotent), then run the simulated robot end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
exec .venv/bin/vla-demo "$@"
