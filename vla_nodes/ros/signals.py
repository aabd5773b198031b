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

"""SIGTERM stops the process as Ctrl-C does, for the local backend's `init()`.

rclpy.init installs SIGINT and SIGTERM handlers that shut the context down, so spin returns and
every node is destroyed (the recorder finishes its bag). Python's default SIGTERM kills at once,
which left bags unfinished when `ros2 launch` escalated to SIGTERM or a service manager stopped
the process. Here the first SIGTERM raises KeyboardInterrupt in the main thread, the path Ctrl-C
already takes; a SIGTERM arriving while the process is already stopping (after Ctrl-C or a first
SIGTERM) is ignored so the bag can finish; SIGKILL remains the way to force it.
"""

import logging
import signal
import threading

_LOG = logging.getLogger(__name__)
_state = {'installed': None, 'stopping': False}


def install() -> None:
    """Take over SIGINT and SIGTERM where nobody else has (main thread only; else a no-op)."""
    main = threading.current_thread() is threading.main_thread()
    if _state['installed'] is not None or not main:
        return
    previous = {}
    # SIGINT ignored is taken over too, as rclpy does: bash starts a script's `cmd &` with it
    # ignored, and such a node (or launcher) would never stop on Ctrl-C or a supervisor's SIGINT.
    for signum, defaults in ((signal.SIGINT, (signal.default_int_handler, signal.SIG_IGN)),
                             (signal.SIGTERM, (signal.SIG_DFL,))):
        if signal.getsignal(signum) in defaults:
            previous[signum] = signal.signal(signum, _on_signal)
    _state.update(installed=previous, stopping=False)


def restore() -> None:
    """Give back the handlers `install` replaced (at shutdown)."""
    previous = _state['installed']
    if previous is None or threading.current_thread() is not threading.main_thread():
        return
    for signum, handler in previous.items():
        if signal.getsignal(signum) is _on_signal:
            signal.signal(signum, handler)
    _state['installed'] = None


def _on_signal(signum, frame) -> None:
    if signum == signal.SIGTERM and _state['stopping']:
        _LOG.warning('SIGTERM while stopping: still finishing (SIGKILL forces an exit)')
        return
    _state['stopping'] = True
    raise KeyboardInterrupt(signal.Signals(signum).name)
