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

"""The whole loop at its smallest size: expert demos -> dataset -> training -> closed loop.

Uses vla-main's steps (orchestration/pipeline.py): the scripted expert records demos through the
leader arm on CAN, they are exported to LeRobot v3, tiny_pi0_depth trains for a few steps, and
the checkpoint drives the simulated Piper through policy_node and the real driver. At this size
success is not expected; learning shows on the imitation error on the demos' frames (2 training
episodes and 1 held out by vla-train's split), which the trained policy must bring well below a
random-weight model with the same statistics, and in the loop, where on the same held-out seeds
the trained policy must end nearer the cube than policy_node's random-weight model.
"""

import pytest

from vla_nodes import ros

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(ros.BACKEND != 'local', reason='runs the graph on the local backend'),
    pytest.mark.filterwarnings('ignore:.*bustype.*:DeprecationWarning'),
]


def test_demos_to_trained_policy_beating_random_weights_in_the_loop(tmp_path, one_thread):
    import torch
    from vla_nodes.models.vla import VLAModel
    from vla_nodes.orchestration import pipeline
    from vla_nodes.orchestration.evaluate import (evaluate, format_table, imitation_error,
                                                  PolicySpec)
    from vla_nodes.policy.policy import VLAPolicy

    setting = pipeline.Setting(demos=3, presets=('tiny_pi0_depth',), steps=300, episodes=1,
                               lr=3e-3, max_seconds=6.0, random_baseline=False)
    bags = pipeline.record(tmp_path, setting, progress=False)
    dataset = pipeline.export_dataset(bags, tmp_path, progress=False)
    ckpt = pipeline.train(dataset, 'tiny_pi0_depth', tmp_path, setting, progress=False)

    trained = VLAPolicy.from_checkpoint(ckpt)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        untrained = VLAPolicy(VLAModel(trained.model.config), trained.stats, trained.contract)
    err_trained = imitation_error(trained, dataset, frames=12)
    err_random = imitation_error(untrained, dataset, frames=12)
    print(f'imitation error (rad): trained {err_trained:.4f}, random weights {err_random:.4f}')
    assert err_trained < 0.7 * err_random

    # Closed loop on the same held-out seeds: the trained policy must end nearer the cube.
    runs = [evaluate(spec, episodes=3, max_seconds=setting.max_seconds, out_dir=tmp_path,
                     can_name=f'test_closed_loop_{spec.name}', progress=False)
            for spec in (PolicySpec('trained', checkpoint=str(ckpt)),
                         PolicySpec('random-weight'))]
    print(format_table(runs))
    trained_run, random_run = runs
    assert trained_run.seeds == random_run.seeds
    for result in runs:
        assert all(o in ('success', 'failure') for o in result.outcomes)
        assert result.chunks >= 2 and len(result.infer_ms) == len(result.delay_ms) >= 2
        assert all(0.0 <= d < 1.0 for d in result.final_distance_m)
    assert (sum(trained_run.final_distance_m) < 0.7 * sum(random_run.final_distance_m))
    assert (tmp_path / 'trained_strip.png').is_file()
