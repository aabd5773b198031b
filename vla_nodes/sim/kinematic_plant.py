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

"""A first-order stand-in for the Piper's body, for the firmware when no MuJoCo world runs.

Where it fits: `sim.piper_can.PiperFirmware` reads and sets the arm's state through two callables;
tests and bench scripts that need the CAN protocol but no physics pass this plant's.
"""

import math
import threading
import time

import numpy as np

from vla_nodes import contract


class KinematicPlant:
    """A first-order stand-in for the arm's body: positions follow the setpoint with a lag.

    State advances with wall-clock time whenever it is read or set, so it needs no thread.
    Thread-safe: the firmware thread sets targets while tests read the state.
    """

    def __init__(self, positions=contract.READY_POSITIONS, time_constant: float = 0.01):
        """Start at rest.

        Args:
            positions: (7,) initial joints (rad) and gripper opening (m).
            time_constant: first-order lag (s); 0 tracks the setpoint exactly.
        """
        self._q = np.array(positions, dtype=np.float64)
        self._target = self._q.copy()
        self._tau = time_constant
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def read_state(self) -> np.ndarray:
        """Return the current (7,) positions, rad / m."""
        with self._lock:
            self._advance()
            return self._q.copy()

    def set_targets(self, positions) -> None:
        """Track a new (7,) setpoint, rad / m."""
        with self._lock:
            self._advance()
            self._target = np.array(positions, dtype=np.float64)

    def _advance(self) -> None:
        now = time.monotonic()
        dt, self._last = now - self._last, now
        alpha = 1.0 if self._tau <= 0 else 1.0 - math.exp(-dt / self._tau)
        self._q += alpha * (self._target - self._q)
