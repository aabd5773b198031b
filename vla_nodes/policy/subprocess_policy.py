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

"""A policy whose model runs in a child process: the node's Python and the model run in parallel.

In one process the model shares the GIL with everything else the graph does: in lock-step the
simulation ran at about half speed while the worker thread inferred (bench/bench_lockstep.py),
and in real time rendering and the driver slowed the model. Here policy_node's worker thread only
waits on a pipe (no GIL held) while the child computes on another core. The child builds the
policy itself (`load`, run there), so the weights never cross; each `infer` sends the observation
dict (numpy arrays, a few hundred kB) and gets the actions back. The chunk is the same as in
process: VLAPolicy's noise comes from the observation's own seed. A child that dies or fails
raises in `infer` with the reason: policy_node then publishes nothing and the driver holds.
"""

from multiprocessing.connection import Connection
import signal
import socket
import subprocess
import sys
import threading

from vla_nodes.policy.base import PolicyInputs


def _serve(conn) -> None:
    """The child: build the policy, then answer ('infer', obs) and ('reset',) until closed."""
    try:
        load, args = conn.recv()
        policy = load(*args)
    except BaseException as err:  # reported to the parent, which raises it
        conn.send(('error', err))
        return
    conn.send(('ready', policy.inputs, policy.contract))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the parent went away
            return
        if request[0] == 'close':
            return
        try:
            out = policy.infer(request[1]) if request[0] == 'infer' else policy.reset()
            conn.send(('ok', out))
        except Exception as err:
            conn.send(('error', err))


class SubprocessPolicy:
    """The policy `load(*args)` builds, run in a child Python process (the Policy interface).

    The child is `python -m vla_nodes.policy.subprocess_policy FD`, not a multiprocessing
    spawn: that re-runs the parent's main script, which a script without a main guard (or
    stdin) does not survive.

    Args:
        load: a module-level function (picklable by name) that returns a Policy; it runs in
            the child, and an exception it raises (a contract mismatch) is raised here.
        args: its arguments (picklable).
        start_timeout_s: how long the child may take to import and load.
    """

    def __init__(self, load, args=(), start_timeout_s: float = 120.0):
        ours, theirs = socket.socketpair()
        self._process = subprocess.Popen(
            [sys.executable, '-m', 'vla_nodes.policy.subprocess_policy', str(theirs.fileno())],
            pass_fds=(theirs.fileno(),))
        theirs.close()
        self._conn = Connection(ours.detach())
        self._lock = threading.Lock()
        self._send((load, tuple(args)))
        if not self._conn.poll(start_timeout_s):
            self.close()
            raise RuntimeError(f'the policy process did not start within {start_timeout_s:g} s')
        reply = self._receive()
        self.inputs: PolicyInputs = reply[1]
        self.contract: dict = reply[2]

    def infer(self, obs: dict) -> dict:
        with self._lock:
            self._send(('infer', obs))
            return self._receive()[1]

    def reset(self) -> None:
        with self._lock:
            self._send(('reset',))
            self._receive()

    def close(self) -> None:
        """Stop the child (a second call does nothing)."""
        if self._conn.closed:
            return
        if self._process.poll() is None:
            try:
                self._conn.send(('close',))
                self._process.wait(5.0)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait(5.0)
        self._conn.close()

    def _send(self, request) -> None:
        try:
            self._conn.send(request)
        except OSError as err:
            raise RuntimeError(f'the policy process is gone ({err}): restart policy_node') from err

    def _receive(self):
        try:
            reply = self._conn.recv()
        except (EOFError, OSError) as err:
            raise RuntimeError(f'the policy process died (exit code {self._process.poll()}):'
                               ' restart policy_node') from err
        if reply[0] == 'error':
            raise reply[1]
        return reply


if __name__ == '__main__':
    # Ctrl-C reaches the whole process group: the parent stops this child by closing the pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _serve(Connection(int(sys.argv[1])))
