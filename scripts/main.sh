#!/usr/bin/env bash
# The README's main job: set up (idempotent), then vla-main: demos of a sim task recorded by the
# scripted expert -> LeRobot export -> a small policy trained -> closed-loop evaluation on
# held-out seeds -> a table, plots and rollout strips under out/main/. `--full` is the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
exec .venv/bin/vla-main "$@"
