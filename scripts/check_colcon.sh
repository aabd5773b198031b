#!/usr/bin/env bash
# Builds the package with Debian's colcon (as a ROS 2 workspace would) in a scratch workspace and
# checks the install tree: executables in lib/vla_nodes, data files and the ament index marker.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ws=$(mktemp -d)
trap 'rm -rf "$ws"' EXIT
mkdir -p "$ws/src"
git -C "$repo" ls-files -z | (cd "$repo" && xargs -0 cp --parents -t "$ws/src" 2>/dev/null) \
  || cp -r "$repo"/{package.xml,setup.py,setup.cfg,resource,vla_nodes,launch,config,msg} "$ws/src/"
# Debian's colcon runs the system python3: keep the venv out of its way.
(cd "$ws" && env -u VIRTUAL_ENV PATH=/usr/bin:/bin /usr/bin/colcon build \
  --base-paths src --event-handlers console_direct- > build.log 2>&1) \
  || { cat "$ws/build.log"; echo 'colcon build FAILED'; exit 1; }
share="$ws/install/vla_nodes/share/vla_nodes"
fail=0
for exe in camera_node depth_node pose_node policy_node arm_driver_node teleop_recorder_node \
           sim_node robot_state_node trajectory_relay_node vla-launch; do
  [ -x "$ws/install/vla_nodes/lib/vla_nodes/$exe" ] || { echo "missing lib/vla_nodes/$exe"; fail=1; }
done
for f in package.xml launch/sim.launch.yaml launch/gazebo.launch.yaml config/sim.yaml \
         config/controllers.yaml description/piper_macros.xacro description/piper.urdf.xacro \
         description/piper.yaml description/piper_bimanual.yaml; do
  [ -f "$share/$f" ] || { echo "missing share/vla_nodes/$f"; fail=1; }
done
[ -n "$(ls "$share/msg" 2>/dev/null)" ] || { echo 'missing share/vla_nodes/msg'; fail=1; }
[ -f "$ws/install/vla_nodes/share/ament_index/resource_index/packages/vla_nodes" ] \
  || { echo 'missing ament index marker'; fail=1; }
[ $fail = 0 ] && echo 'colcon build OK: executables, launch/, config/, msg/, description/, package.xml, ament index'
exit $fail
