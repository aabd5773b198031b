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

"""Episode: one seeded task episode on a SimWorld, as sim_node runs it, without ROS.

Where it fits: sim_node holds its world lock and calls `reset()` at start-up and from its
`~/reset` service, `leader_action()` at the leader rate when the scripted expert plays the
leader arm, and `update()` at about 10 Hz for `/sim/episode_status`. A recorder (`vla-record
--sim`) starts an episode with `~/reset` and stops it when the status leaves 'running'.

Seeds: the first `reset()` uses the configured seed, each later one the next integer, so a run
of N episodes is reproducible from one number. Time is simulated time (`SimWorld.time`).
"""

from typing import Optional

import numpy as np

from vla_nodes.sim import tasks
from vla_nodes.sim.expert import ScriptedExpert
from vla_nodes.sim.world import SimWorld

RUNNING, SUCCESS, FAILURE = 'running', 'success', 'failure'


class Episode:
    """The current task episode of a world: its seed, its status and, optionally, the expert.

    Attributes:
        task: the `tasks.Task` being run.
        seed: seed of the current episode (None before the first `reset`).
        status: '' before the first reset, then RUNNING until SUCCESS or FAILURE (kept until
            the next reset).
        reason: why the episode ended ('' while running).
        expert: the `ScriptedExpert` of this episode, or None without one.
    """

    def __init__(self, world: SimWorld, task_name: str, seed: int = 0, expert: bool = False,
                 max_seconds: Optional[float] = None):
        """Pick the task; nothing changes in the world before `reset()`.

        Args:
            world: the simulator the episode runs in.
            task_name: a key of `tasks.TASKS`.
            seed: seed of the first episode; later resets count up from it.
            expert: whether a scripted expert produces leader actions.
            max_seconds: simulated time budget of an episode; None = the task's.

        Raises:
            ValueError: unknown task name (the message lists the names).
        """
        self.task = tasks.get_task(task_name)
        self.max_seconds = float(max_seconds or self.task.max_seconds)
        self.world = world
        self.seed: Optional[int] = None
        self.status = ''
        self.reason = ''
        self.expert: Optional[ScriptedExpert] = None
        self._next_seed = int(seed)
        self._with_expert = expert

    def reset(self) -> int:
        """Lay out the next episode with the task's `reset` and restart the expert.

        Returns:
            The seed of the new episode.
        """
        seed, self._next_seed = self._next_seed, self._next_seed + 1
        self.task.reset(self.world, seed)
        self.expert = ScriptedExpert(self.task, self.world) if self._with_expert else None
        self.seed, self.status, self.reason = seed, RUNNING, ''
        return seed

    def leader_action(self) -> Optional[np.ndarray]:
        """The expert's (7,) target for now (rad x6, gripper opening m), or None without one.

        An expert that gives up (a target out of reach) ends a running episode as FAILURE and
        keeps returning its last target.
        """
        if self.expert is None:
            return None
        action = self.expert.action(self.world)
        if self.expert.failure and self.status == RUNNING:
            self.status, self.reason = FAILURE, f'expert gave up: {self.expert.failure}'
        return action

    def update(self) -> str:
        """Check the task and the time budget; returns the status.

        A running episode turns SUCCESS when the task's success check holds, FAILURE once
        `max_seconds` of simulated time have passed without it.
        """
        if self.status == RUNNING:
            if self.task.success(self.world):
                self.status = SUCCESS
                self.reason = f'{self.task.name} succeeded after {self.world.time:.2f} s'
            elif self.world.time >= self.max_seconds:
                self.status = FAILURE
                self.reason = (f'{self.task.name}: no success within {self.max_seconds} s '
                               'of simulated time')
        return self.status
