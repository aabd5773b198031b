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


"""Callback groups: which callbacks of a node may run at the same time."""

import threading


class CallbackGroup:
    def __init__(self):
        self._running = 0
        self._lock = threading.Lock()

    def beginning_execution(self) -> bool:
        with self._lock:
            if not self.can_execute():
                return False
            self._running += 1
            return True

    def ending_execution(self) -> None:
        with self._lock:
            self._running -= 1

    def can_execute(self) -> bool:
        raise NotImplementedError


class MutuallyExclusiveCallbackGroup(CallbackGroup):
    """One callback of the group at a time (the default group of a node)."""

    def can_execute(self) -> bool:
        return self._running == 0


class ReentrantCallbackGroup(CallbackGroup):
    """Callbacks of the group may run in parallel under a multi-threaded executor."""

    def can_execute(self) -> bool:
        return True
