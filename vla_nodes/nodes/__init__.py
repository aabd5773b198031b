"""One thin ROS adapter per executable; the logic lives in the core packages.

Each module here is one console script of setup.py
(`camera_node = vla_nodes.nodes.camera_node:main`) defining one `ros.Node` subclass. `vla-launch`
finds the class from the installed console scripts (`ros/executables.py`), so the façade below
never imports this package.
"""

import sys

from vla_nodes import ros


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
