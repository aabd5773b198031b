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

"""Which node class an executable name starts: found the way `ros2 run` finds it, by installation.

Where it fits: `launch.py` (one process) and `launch_procs.py` (one process per node) start the
nodes a launch file names. The executables are the package's console scripts (setup.py, installed
by pip or colcon, the same table `ros2 run` reads in lib/vla_nodes), so the façade never imports
`vla_nodes.nodes`: it is below the nodes, and the list of executables is said once, in setup.py.
A console script points at a node module's `main`; the node class is the one `ros.Node` subclass
that module defines (STYLE.md: one Node subclass per file).
"""

import functools
import importlib
from importlib import metadata

from vla_nodes.ros.launch_schema import LaunchError
from vla_nodes.ros.launch_subst import PACKAGE


@functools.lru_cache(maxsize=1)
def installed() -> dict:
    """Executable name -> 'module:function' of every console script of this package.

    Raises:
        LaunchError: the package is not installed (no console scripts found).
    """
    found = {ep.name: ep.value for ep in metadata.entry_points(group='console_scripts')
             if ep.value.startswith(f'{PACKAGE}.')}
    if not found:
        raise LaunchError(f'no {PACKAGE} executables are installed: run scripts/setup.sh '
                          '(pip install -e .) or colcon build first')
    return found


def target(spec, executables: dict | None = None):
    """What starts `spec`'s node: `executables[spec.executable]`, by default `installed()`.

    Raises:
        LaunchError: another package than this one, or an unknown executable.
    """
    if spec.package != PACKAGE:
        raise LaunchError(f"{spec.source}: node {spec.label}: package '{spec.package}' cannot "
                          f'run without ROS; vla-launch starts {PACKAGE} executables only')
    table = installed() if executables is None else executables
    found = table.get(spec.executable)
    if found is None:
        raise LaunchError(f'{spec.source}: node {spec.label}: unknown executable '
                          f"'{spec.executable}' (known: {', '.join(sorted(table))})")
    return found


def node_class(target):
    """The node class `target` names: a class, 'module:Class' or a node module's 'module:main'.

    Raises:
        LaunchError: the module defines no `ros.Node` subclass, or several.
    """
    if not isinstance(target, str):
        return target
    module_name, _, attribute = target.partition(':')
    module = importlib.import_module(module_name)
    found = getattr(module, attribute)
    if isinstance(found, type):
        return found
    from vla_nodes import ros
    classes = [value for value in vars(module).values() if isinstance(value, type)
               and issubclass(value, ros.Node) and value.__module__ == module_name]
    if len(classes) != 1:
        raise LaunchError(f'{target}: expected one ros.Node subclass in {module_name}, '
                          f'found {len(classes)}')
    return classes[0]
