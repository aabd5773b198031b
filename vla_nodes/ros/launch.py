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

"""vla-launch: run the suite's ROS 2 YAML launch files without ROS, all nodes in one process.

`ros2 launch` runs `launch/*.launch.yaml` on a robot; `vla-launch` reads the same files
(`launch_file.py`: syntax, substitutions, the supported subset) and starts every node in this
process on the façade's backend (`local` without ROS), on one multi-threaded executor, until Ctrl-C
or a duration. Every node is destroyed on the way out, also when one fails to start.
`Graph` is that runner, the only one: vla-record, vla-eval, vla-main and vla-demo start their
nodes through it too (`vla_nodes/orchestration/`).
With `--processes` each node runs in its own process on the zenoh backend instead, supervised
(`launch_procs.py`).
"""

import argparse
import logging
import os
from pathlib import Path
import sys
import tempfile
import threading
import time

import yaml

from vla_nodes.cli_errors import run_cli
from vla_nodes.ros import executables as installed_nodes
from vla_nodes.ros.launch_file import (
    declared_args, format_args, format_nodes, load_launch, NodeSpec)
from vla_nodes.ros.launch_schema import LaunchError
from vla_nodes.ros.params import read_params_file

_LOG = logging.getLogger('vla_launch')


# --- public API: running ------------------------------------------------------------------------

def node_arguments(spec: NodeSpec, params_dir: Path) -> list:
    """Build rclpy's `cli_args` for a node, in the order launch_ros builds its command line.

    Inline parameters go into a parameter file in `params_dir`, keyed by the node's full name
    (or `/**` when unnamed) like launch_ros does, so their YAML types are kept exactly.
    """
    args = list(spec.arguments)
    args += ['--ros-args', *spec.ros_arguments] if spec.ros_arguments else []
    args.append('--ros-args')
    args += ['-r', f'__node:={spec.name}'] if spec.name is not None else []
    args += ['-r', f'__ns:={spec.namespace}'] if spec.namespace is not None else []
    for path in spec.params_files:
        args += ['--params-file', str(path)]
    if spec.params:
        handle, name = tempfile.mkstemp(prefix='launch_params_', suffix='.yaml', dir=params_dir)
        with os.fdopen(handle, 'w') as stream:
            yaml.safe_dump({spec.full_name or '/**': {'ros__parameters': spec.params}}, stream)
        args += ['--params-file', name]
    for source, target in spec.remaps:
        args += ['-r', f'{source}:={target}']
    return args


def check_params_files(specs: list) -> None:
    """Read every parameter file the nodes name, as rcl does when each node starts.

    A broken file is refused up front (also by --print), naming it, instead of by the node
    loading it.
    """
    checked = set()
    for spec in specs:
        for path in spec.params_files:
            if path not in checked:
                checked.add(path)
                try:
                    read_params_file(path)
                except (ValueError, OSError) as err:
                    raise LaunchError(f'{spec.source}: node {spec.label}: {err}') from None


def node_class(spec: NodeSpec, executables: dict | None = None):
    """Return the class of `spec.executable` from `executables` (default: the installed ones).

    Values are classes, 'module.path:ClassName' or a node module's 'module.path:main' strings.
    """
    return installed_nodes.node_class(installed_nodes.target(spec, executables))


class Graph:
    """A launch file's nodes on one executor in this process: start, spin, stop.

    The one in-process graph runner: `vla-launch` (`run`) and the orchestration (vla-record,
    vla-eval, vla-main, vla-demo) all start their nodes through it.

    Example:
        with Graph(load_launch(path, args), control='vla_eval').spin_in_thread() as graph:
            client = graph.control.create_client(...)

    Args:
        specs: the nodes, from `load_launch`.
        executables: executable name -> class or 'module:Class'; default nodes.EXECUTABLES.
        single_threaded: one thread runs every callback, in an order that depends only on the
            work (lock-step simulation: an exact replay); otherwise a MultiThreadedExecutor.
        control: name of an extra node of the caller's (services, subscriptions) on the same
            executor, as `graph.control`; None for none.
    """

    def __init__(self, specs: list, executables: dict | None = None,
                 single_threaded: bool = False, control: str | None = None) -> None:
        # Resolved first: an unknown executable fails before anything starts.
        self._classes = [node_class(spec, executables) for spec in specs]
        self.specs, self.single_threaded, self._control_name = specs, single_threaded, control
        self.nodes, self.control = [], None
        self._executor, self._thread, self._owns_context = None, None, False
        self._halt = threading.Event()

    def start(self) -> 'Graph':
        """Initialize the façade if needed and start every node (all destroyed if one fails).

        Raises:
            LaunchError: a node constructor raised (named in the message).
        """
        from vla_nodes import ros
        self._ros = ros
        self._owns_context = not ros.ok()
        if self._owns_context:
            ros.init()
        self._executor = (ros.SingleThreadedExecutor() if self.single_threaded
                          else ros.MultiThreadedExecutor())
        try:
            with tempfile.TemporaryDirectory(prefix='vla_launch_') as params_dir:
                for spec, cls in zip(self.specs, self._classes):
                    self.nodes.append(_start_node(spec, cls, Path(params_dir)))
                    self._executor.add_node(self.nodes[-1])
                    _LOG.info('started %s [%s %s]', spec.label, spec.package, spec.executable)
            if self._control_name is not None:
                self.control = ros.Node(self._control_name)
                self._executor.add_node(self.control)
        except BaseException:
            self.stop()
            raise
        return self

    def spin(self, duration: float | None = None) -> None:
        """Spin in this thread until Ctrl-C (raised to the caller) or `duration` seconds."""
        if duration is None:
            self._executor.spin()
            return
        deadline = time.monotonic() + duration
        while self._ros.ok() and time.monotonic() < deadline:
            self._executor.spin_once(timeout_sec=min(0.1, deadline - time.monotonic()))

    def spin_in_thread(self) -> 'Graph':
        """Spin on a daemon thread until `stop`; returns self (started if it was not)."""
        if self._executor is None:
            self.start()

        def spin():
            while not self._halt.is_set() and self._ros.ok():
                self._executor.spin_once(timeout_sec=0.1)
        self._thread = threading.Thread(target=spin, name='vla_graph_spin', daemon=True)
        self._thread.start()
        return self

    def node(self, name: str):
        """The started node called `name`: for tests; orchestration talks to nodes on the wire."""
        return next(n for n in self.nodes if n.get_name() == name)

    def stop(self) -> None:
        """Stop the executor (waiting for running callbacks), destroy every node, shut down."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
        for node in reversed(self.nodes + ([self.control] if self.control else [])):
            try:
                node.destroy_node()
            except Exception:  # one failing node must not keep the others alive
                _LOG.exception('destroying %s failed', node.get_name())
        self.nodes, self.control = [], None
        if self._owns_context and self._ros.ok():
            self._ros.shutdown()
        self._owns_context = False

    def __enter__(self) -> 'Graph':
        return self if self._executor is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def run(specs: list, duration: float | None = None, executables: dict | None = None) -> list:
    """Start every node on one MultiThreadedExecutor and spin until Ctrl-C or `duration`.

    Initializes the façade if needed (and then shuts it down at the end). All nodes are destroyed
    on the way out, also when a node fails to start.

    Args:
        specs: the nodes, from `load_launch`.
        duration: seconds to spin; None spins until Ctrl-C.
        executables: executable name -> class or 'module:Class'; default: the installed ones.

    Returns:
        The node objects (destroyed by then), in launch order.

    Raises:
        LaunchError: an executable is unknown or a node constructor raised (named in the message).
    """
    from vla_nodes import ros
    graph = Graph(specs, executables)
    nodes = graph.nodes
    try:
        graph.start()
        nodes = list(graph.nodes)
        graph.spin(duration)
    except (KeyboardInterrupt, ros.ExternalShutdownException):
        _LOG.info('interrupted, shutting down')
    finally:
        graph.stop()
    return nodes


def _start_node(spec: NodeSpec, cls, params_dir: Path):
    try:
        return cls(cli_args=node_arguments(spec, params_dir))
    except Exception as err:
        raise LaunchError(f'{spec.source}: node {spec.label} ({spec.package} {spec.executable}) '
                          f'failed to start: {type(err).__name__}: {err}') from err


# --- command line -------------------------------------------------------------------------------

def main(argv=None) -> int:
    """`vla-launch [PKG] FILE [name:=value ...] [--duration S] [--show-args] [--print]`."""
    parser = argparse.ArgumentParser(
        prog='vla-launch', description='Run a ROS 2 YAML launch file without ROS, all nodes in '
        'one process (like ros2 launch).')
    parser.add_argument('words', nargs='+', metavar='[PKG] FILE [name:=value ...]',
                        help='a launch file path, or vla_nodes and a file in its launch/ folder')
    parser.add_argument('--duration', type=float, help='stop after S seconds (default: Ctrl-C)')
    parser.add_argument('--show-args', action='store_true', help='list the launch arguments')
    parser.add_argument('--print', dest='print_nodes', action='store_true',
                        help='print the resolved nodes and exit')
    parser.add_argument('--processes', action='store_true',
                        help='each node in its own process on the zenoh backend, supervised')
    parser.add_argument('--listen', action='append', metavar='ENDPOINT',
                        help='--processes: the router endpoint (default tcp/127.0.0.1:7447)')
    parser.add_argument('--connect', action='append', metavar='ENDPOINT',
                        help='--processes: join these Zenoh endpoints instead of a router here')
    parser.add_argument('--only', action='append', metavar='NODE',
                        help='start only these nodes (by name), e.g. policy_node on a GPU box')
    opts = parser.parse_intermixed_args(argv)
    words = [w for w in opts.words if ':=' not in w]
    if len(words) not in (1, 2):
        parser.error(f'expected [PKG] FILE, got {words}')
    launch_args = dict(w.split(':=', 1) for w in opts.words if ':=' in w)
    launch_file = words[0] if len(words) == 1 else tuple(words)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format='[%(levelname)s] [%(name)s]: %(message)s')

    def body() -> int:
        if opts.show_args:
            print(format_args(declared_args(launch_file)))
            return 0
        specs = load_launch(launch_file, launch_args)
        check_params_files(specs)
        if opts.only:
            specs = [s for s in specs if s.name in opts.only]
        if opts.print_nodes:
            print(format_nodes(specs))
            return 0
        if opts.processes:
            from vla_nodes.ros.launch_procs import run_processes
            exits = run_processes(specs, opts.duration, opts.listen, opts.connect)
            return 0 if all(code in (0, None) for code in exits.values()) else 1
        run(specs, duration=opts.duration)
        return 0
    return run_cli('vla-launch', body)


if __name__ == '__main__':
    sys.exit(main())
