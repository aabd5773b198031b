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


"""The policy interface policy_node depends on: what a policy needs as input, and `infer`.

Like openpi's `BasePolicy` (`infer(obs) -> dict`, `reset()`): policy_node assembles observations
and publishes chunks for any object with this shape, whether it wraps a local VLAModel
(policy.VLAPolicy), a remote policy server or a recorder. The node reads what to feed it from
`inputs` and never looks inside the model.
"""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PolicyInputs:
    """What a policy reads and how its chunks are timed (from its checkpoint contract).

    Attributes:
        joint_names: state and action dimensions, in order (contract.JOINT_NAMES).
        action_rate_hz: chunk steps per second (the training dataset's fps).
        horizon: actions per chunk.
        cameras: contract camera names it sees, the primary (OBS_IMAGE) first.
        needs_depth: whether it reads OBS_DEPTH.
        env_objects: the objects whose poses it reads as OBS_ENV_STATE (() = none).
    """

    joint_names: tuple
    action_rate_hz: float
    horizon: int
    cameras: tuple
    needs_depth: bool
    env_objects: tuple = ()


class Policy(Protocol):
    """An observation dict (policy.py's keys) in, {'actions': (H, 7) absolute targets} out."""

    inputs: PolicyInputs
    contract: dict

    def infer(self, obs: dict) -> dict:
        ...

    def reset(self) -> None:
        ...
