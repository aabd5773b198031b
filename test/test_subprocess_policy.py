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

"""policy/subprocess_policy.py: the model in a child process gives the same chunks, refuses alike.

Real spawned processes and the real tiny VLAPolicy (random weights, or a checkpoint saved from
them); the node-level wiring is `inference_process`, the default of vla-eval's graph
(test_episodes.py replays evaluations with it).
"""

import numpy as np
import pytest

from vla_nodes.nodes.policy_inputs import build_policy
from vla_nodes.policy.checkpoint import ContractMismatchError, make_contract, save_checkpoint
from vla_nodes.policy.policy import demo_stats, make_piper_example, VLAPolicy
from vla_nodes.policy.subprocess_policy import SubprocessPolicy

PARAMS = {'checkpoint': '', 'device': 'cpu', 'seed': 3, 'torch_threads': 1}


def test_the_child_returns_the_chunk_the_policy_computes_in_process():
    local = build_policy(PARAMS, {})
    remote = SubprocessPolicy(build_policy, (PARAMS, {}))
    try:
        assert remote.inputs == local.inputs and remote.contract == local.contract
        for seed in (0, 1):
            obs = make_piper_example(seed)  # carries its own noise seed
            np.testing.assert_array_equal(remote.infer(obs)['actions'],
                                          local.infer(obs)['actions'])
    finally:
        remote.close()
        remote.close()  # a second close does nothing


def test_a_contract_mismatch_is_raised_in_the_parent(tmp_path):
    policy = VLAPolicy.random_init(seed=0)
    config = policy.model.config
    save_checkpoint(tmp_path, policy.model, demo_stats(),
                    make_contract(config.horizon, (config.image_size,) * 2))
    params = dict(PARAMS, checkpoint=str(tmp_path))
    with pytest.raises(ContractMismatchError, match='image_size'):
        SubprocessPolicy(build_policy, (params, {'image_size': [224, 224]}))


def test_a_dead_child_is_an_error_that_says_so_not_a_hang():
    remote = SubprocessPolicy(build_policy, (PARAMS, {}))
    try:
        remote._process.kill()
        remote._process.wait(10)
        with pytest.raises(RuntimeError, match='policy process (died|is gone)'):
            remote.infer(make_piper_example(0))
    finally:
        remote.close()
