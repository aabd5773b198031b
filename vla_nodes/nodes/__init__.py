"""One thin ROS adapter per executable; the logic lives in the core packages.

`EXECUTABLES` maps each console script to its node class, so `vla-launch` can build every node of
a launch file in one process (an explicit dict: grep finds the class).
"""

import sys

from vla_nodes import ros

EXECUTABLES = {
    'camera_node': 'vla_nodes.nodes.camera_node:CameraNode',
    'depth_node': 'vla_nodes.nodes.depth_node:DepthNode',
    'pose_node': 'vla_nodes.nodes.pose_node:PoseNode',
    'policy_node': 'vla_nodes.nodes.policy_node:PolicyNode',
    'arm_driver_node': 'vla_nodes.nodes.arm_driver_node:ArmDriverNode',
    'teleop_recorder_node': 'vla_nodes.nodes.teleop_recorder_node:TeleopRecorderNode',
    'sim_node': 'vla_nodes.nodes.sim_node:SimNode',
    'robot_state_node': 'vla_nodes.nodes.robot_state_node:RobotStateNode',
    'trajectory_relay_node': 'vla_nodes.nodes.trajectory_relay_node:TrajectoryRelayNode',
}


class StartupError(Exception):
    """A node refuses its configuration; the message is one line saying what to write."""


def run(node_class, args=None, executor=None) -> None:
    """`main()` of every node: init, spin until Ctrl-C, always destroy and shut down.

    Works the same on Humble, Jazzy and the local backend.
    """
    ros.init(args=args)
    node = None
    try:
        node = node_class()
        ros.spin(node, executor)
    except (KeyboardInterrupt, ros.ExternalShutdownException):
        pass
    except StartupError as err:  # a configuration mistake: one line, not a traceback
        print(f'{node_class.__name__}: error: {err}', file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        if node is not None:
            node.destroy_node()
        ros.try_shutdown()
