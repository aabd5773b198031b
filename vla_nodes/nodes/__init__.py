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
