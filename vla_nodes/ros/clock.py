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

"""Time, Duration and Clock with rclpy's interface, for the ROS-free backends.

A node's clock is the system clock, or, with the `use_sim_time` parameter, the last time received
on `/clock` (zero before the first message), exactly as in ROS 2.
"""

import enum
import threading
import time as _time


class ClockType(enum.IntEnum):
    ROS_TIME = 1
    SYSTEM_TIME = 2
    STEADY_TIME = 3


class Duration:
    """A signed span of time in nanoseconds."""

    __slots__ = ('_ns',)

    def __init__(self, *, seconds: float = 0, nanoseconds: int = 0):
        self._ns = int(round(seconds * 1e9)) + int(nanoseconds)

    @property
    def nanoseconds(self) -> int:
        return self._ns

    def to_msg(self):
        from vla_nodes.ros import msgs
        sec, nsec = divmod(self._ns, 1_000_000_000)
        return msgs.builtin_interfaces.Duration(sec=sec, nanosec=nsec)

    @classmethod
    def from_msg(cls, msg) -> 'Duration':
        return cls(seconds=msg.sec, nanoseconds=msg.nanosec)

    def __eq__(self, other):
        return isinstance(other, Duration) and self._ns == other._ns

    def __lt__(self, other):
        return self._ns < other._ns

    def __le__(self, other):
        return self._ns <= other._ns

    def __hash__(self):
        return hash(self._ns)

    def __repr__(self):
        return f'Duration(nanoseconds={self._ns})'


class Time:
    """A point in time of one clock type, in nanoseconds since its epoch."""

    __slots__ = ('_ns', 'clock_type')

    def __init__(self, *, seconds: float = 0, nanoseconds: int = 0,
                 clock_type: ClockType = ClockType.SYSTEM_TIME):
        self._ns = int(round(seconds * 1e9)) + int(nanoseconds)
        if self._ns < 0:
            raise ValueError('Time cannot be negative')
        self.clock_type = clock_type

    @property
    def nanoseconds(self) -> int:
        return self._ns

    def seconds_nanoseconds(self) -> tuple:
        return divmod(self._ns, 1_000_000_000)

    def to_msg(self):
        from vla_nodes.ros import msgs
        sec, nsec = self.seconds_nanoseconds()
        return msgs.builtin_interfaces.Time(sec=sec, nanosec=nsec)

    @classmethod
    def from_msg(cls, msg, clock_type: ClockType = ClockType.ROS_TIME) -> 'Time':
        return cls(seconds=msg.sec, nanoseconds=msg.nanosec, clock_type=clock_type)

    def __add__(self, other: Duration) -> 'Time':
        return Time(nanoseconds=self._ns + other.nanoseconds, clock_type=self.clock_type)

    def __sub__(self, other):
        if isinstance(other, Time):
            return Duration(nanoseconds=self._ns - other._ns)
        return Time(nanoseconds=self._ns - other.nanoseconds, clock_type=self.clock_type)

    def __eq__(self, other):
        return isinstance(other, Time) and self._ns == other._ns

    def __lt__(self, other):
        return self._ns < other._ns

    def __le__(self, other):
        return self._ns <= other._ns

    def __hash__(self):
        return hash(self._ns)

    def __repr__(self):
        return f'Time(nanoseconds={self._ns}, clock_type={self.clock_type.name})'


class Clock:
    """System time, or simulated time fed from /clock when `ros_time_override` is active."""

    def __init__(self, clock_type: ClockType = ClockType.ROS_TIME):
        self.clock_type = clock_type
        self._sim_ns = None  # None: follow the system clock
        self._lock = threading.Lock()

    @property
    def sim_time_active(self) -> bool:
        return self._sim_ns is not None

    def set_sim_time(self, ns: int | None) -> None:
        """Switch to simulated time at `ns` (None switches back to the system clock)."""
        with self._lock:
            self._sim_ns = None if ns is None else int(ns)

    def now_ns(self) -> int:
        with self._lock:
            if self._sim_ns is not None:
                return self._sim_ns
        if self.clock_type == ClockType.STEADY_TIME:
            return _time.monotonic_ns()
        return _time.time_ns()

    def now(self) -> Time:
        return Time(nanoseconds=self.now_ns(), clock_type=self.clock_type)
