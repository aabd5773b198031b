#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for vla_nodes without ROS: apt packages, then a virtual
# environment in .venv with the package and all its extras. Safe to run again (it is idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libusb-1.0-0 libegl1 libgl1 libgles2 libopengl0 libglvnd0 libgbm1 libegl-mesa0)
# check_urdf (liburdfdom-tools) checks the robot description in the tests.
APT_PACKAGES+=(liburdfdom-tools)
# The ROS packaging check (colcon build) uses Debian's colcon and ament tools.
APT_PACKAGES+=(colcon python3-colcon-ros python3-colcon-python-setup-py
               python3-colcon-recursive-crawl python3-colcon-package-selection
               python3-colcon-parallel-executor python3-colcon-output python3-colcon-bash
               python3-ament-package python3-setuptools)
# The ament linters a ROS 2 package's tests run (test/test_pep257.py, test_copyright.py,
# test_xmllint.py; flake8 comes with pip): Debian's, run by their commands with the system python.
APT_PACKAGES+=(python3-ament-pep257 python3-ament-copyright python3-ament-xmllint libxml2-utils)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  echo "== apt: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "== pip: installing vla_nodes[ml,hw,sim,test] (torch pinned to the CPU build 2.13.0)"
# torch first and pinned: a bare 'torch' requirement would pull gigabytes of CUDA packages.
.venv/bin/pip install -q --disable-pip-version-check torch==2.13.0 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/pip install -q --disable-pip-version-check -c scripts/constraints.txt \
  -e '.[ml,hw,sim,test]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import torch, transformers, mujoco, piper_sdk, rosbags, pyrealsense2' \
  || { echo 'setup failed: a dependency does not import (see pip output above)'; exit 1; }
echo "== ready: .venv/bin/vla-main runs the main job (demos -> training -> closed loop), .venv/bin/vla-demo the bring-up"
