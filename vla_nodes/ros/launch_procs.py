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

"""`vla-launch --processes`: every node of a launch file in its own process, on the zenoh backend.

The launcher plays rmw_zenoh's router (`rmw_zenohd`): it opens a Zenoh session in router mode on
`--listen` (default tcp/127.0.0.1:7447, loopback only) and starts each node as
`python -c CHILD <module:Class> <ROS args>` (`run_node`) with `VLA_ROS_BACKEND=zenoh` and
`ZENOH_CONFIG_OVERRIDE` pointing its session at the router. With `--connect` it starts no router
and the nodes join the given endpoints instead (a router or a peer on another machine).

Supervision: a node that exits is reported (name, exit code or signal) and the others keep
running; Ctrl-C or the duration stops every node (SIGINT, then SIGKILL after a grace period).
"""

import logging
import os
from pathlib import Path
import signal
import subprocess
import sys
import tempfile
import time

from vla_nodes.ros import executables as installed_nodes, signals
from vla_nodes.ros.launch_file import NodeSpec
from vla_nodes.ros.launch_schema import LaunchError
from vla_nodes.ros.zenoh_bus import DEFAULT_ROUTER

_LOG = logging.getLogger('vla_launch')
# A node process. SIGINT and SIGTERM only set a flag, installed before any import: a
# KeyboardInterrupt raised while a library imports or a constructor runs can be swallowed there,
# and a process started from a non-interactive shell inherits SIGINT ignored.
CHILD = """import signal, sys, threading
stop = threading.Event()
for signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(signum, lambda *_: stop.set())
from vla_nodes.ros.launch_procs import run_node
sys.exit(run_node(sys.argv[1], sys.argv[2:], stop))
"""
GRACE_S = 10.0  # how long a node may take to shut down after SIGINT (torch, busy CPUs)


def node_target(spec: NodeSpec, executables: dict | None = None) -> str:
    """'module:attribute' of the spec's executable, checked without importing it."""
    target = installed_nodes.target(spec, executables)
    if not isinstance(target, str):
        raise LaunchError(f"{spec.source}: node {spec.label}: executable '{spec.executable}' "
                          "is a class; a node process needs 'module:attribute'")
    return target


def child_env(connect: list) -> dict:
    """The environment of a node process: zenoh backend, session joined to `connect`."""
    env = dict(os.environ, VLA_ROS_BACKEND='zenoh')
    endpoints = ', '.join(f'"{e}"' for e in connect)
    override = env.get('ZENOH_CONFIG_OVERRIDE', '')
    env['ZENOH_CONFIG_OVERRIDE'] = f'connect/endpoints=[{endpoints}];{override}'.rstrip(';')
    return env


def open_router(listen: list):
    """A Zenoh session in router mode on `listen` (what rmw_zenohd is to rmw_zenoh)."""
    import zenoh
    config = zenoh.Config()
    config.insert_json5('mode', '"router"')
    config.insert_json5('listen/endpoints', str(listen).replace("'", '"'))
    config.insert_json5('scouting/multicast/enabled', 'false')
    try:
        return zenoh.open(config)
    except Exception as err:
        raise LaunchError(f'cannot open the Zenoh router on {listen}: {err}. Is another router '
                          'listening there? Then pass --connect to use it.') from err


class Supervisor:
    """Starts node processes and keeps track of them; `poll()` reports the ones that ended."""

    def __init__(self, specs: list, connect: list, executables: dict | None = None):
        from vla_nodes.ros.launch import node_arguments
        self._tmp = tempfile.TemporaryDirectory(prefix='vla_launch_')
        env = child_env(connect)
        self.procs = {}
        self.exits = {}
        for spec in specs:
            command = [sys.executable, '-c', CHILD, node_target(spec, executables),
                       *node_arguments(spec, Path(self._tmp.name))]
            # Own session: Ctrl-C reaches the launcher only, which stops the nodes in order.
            self.procs[spec.label] = subprocess.Popen(command, env=env, start_new_session=True)
            _LOG.info('started %s [%s %s] pid %d', spec.label, spec.package, spec.executable,
                      self.procs[spec.label].pid)

    def poll(self) -> dict:
        """Nodes that ended since the last call: label -> exit code (negative: signal)."""
        ended = {}
        for label, proc in self.procs.items():
            if label not in self.exits and proc.poll() is not None:
                self.exits[label] = ended[label] = proc.returncode
                _LOG.error('node %s exited (%s); the other nodes keep running', label,
                           describe_exit(proc.returncode))
        return ended

    def running(self) -> list:
        return [label for label, p in self.procs.items() if p.poll() is None]

    def stop(self) -> dict:
        """SIGINT every running node, SIGKILL what is left after the grace period."""
        for label in self.running():
            self.procs[label].send_signal(signal.SIGINT)
        deadline = time.monotonic() + GRACE_S
        for proc in self.procs.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for label, proc in self.procs.items():
            self.exits.setdefault(label, proc.returncode)
        self._tmp.cleanup()
        return dict(self.exits)


def stop_launcher(proc: subprocess.Popen, timeout_s: float) -> int | None:
    """SIGINT a `vla-launch --processes` process and wait: its exit code, None if it hung.

    One that does not exit in time is SIGKILLed with its nodes (each runs in its own session,
    so no process group reaches them): no stray graph is left to join the next one, and the
    caller goes on to close its own Zenoh session (whose threads would keep it from exiting).
    """
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        for pid in [proc.pid] + _children(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        return None


def _children(pid: int) -> list:
    """Pids whose parent is `pid` (Linux /proc; [] elsewhere)."""
    found = []
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def describe_exit(code: int) -> str:
    if code is not None and code < 0:
        return f'killed by {signal.Signals(-code).name}'
    return f'exit code {code}'


def run_processes(specs: list, duration: float | None = None, listen: list | None = None,
                  connect: list | None = None, executables: dict | None = None) -> dict:
    """Run every node in its own process until Ctrl-C, `duration`, or all have ended.

    Returns label -> exit code of every node (negative: the signal that ended it).
    """
    # SIGINT (also when inherited ignored, as bash starts a script's `cmd &`) and SIGTERM (a
    # service manager) stop every node, rather than leave them running in their own sessions.
    signals.install()
    router = None
    if not connect:
        listen = listen or [DEFAULT_ROUTER]
        router = open_router(listen)
        connect = listen
    supervisor = Supervisor(specs, connect, executables)
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while supervisor.running() and (deadline is None or time.monotonic() < deadline):
            supervisor.poll()
            time.sleep(0.1)
        supervisor.poll()
    except KeyboardInterrupt:
        _LOG.info('interrupted, stopping every node')
    finally:
        exits = supervisor.stop()
        if router is not None:
            router.close()
        signals.restore()
    for label, code in exits.items():
        _LOG.info('%s: %s', label, describe_exit(code))
    return exits


def run_node(target: str, args: list, stop) -> int:
    """Run the node class `target` names ('module:Class' or 'module:main') until `stop` is set.

    What `nodes.run` does for a console script, with the stop flag of `CHILD` instead of
    KeyboardInterrupt.
    """
    node_class = installed_nodes.node_class(target)
    from vla_nodes import ros
    ros.init(args=args)
    node = None
    try:
        node = None if stop.is_set() else node_class()
        executor = ros.SingleThreadedExecutor()
        if node is not None:
            executor.add_node(node)
        while node is not None and not stop.is_set() and ros.ok():
            executor.spin_once(timeout_sec=0.1)
    finally:
        if node is not None:
            node.destroy_node()
        ros.try_shutdown()
    return 0
