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

Uses vla-main's own steps (orchestration/pipeline.py): the scripted expert records demos through
the leader arm on CAN, they are exported to LeRobot v3 with the cube's pose from pose_node, a tiny
π0 with the object poses as input (`tiny_pi0_baseline+env`) trains, and the checkpoint drives the
simulated Piper through policy_node and the real driver in lock-step on held-out seeds. Learning
shows twice: on the imitation error on the demos' frames, which the trained policy must bring
well below a random-weight model with the same statistics, and in the loop, where it must pick
the cube up in most episodes (SUCCESSES_NEEDED of EPISODES: the margin measured below).
"""

import pytest

from vla_nodes import ros

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(ros.BACKEND != 'local', reason='runs the graph on the local backend'),
    pytest.mark.filterwarnings('ignore:.*bustype.*:DeprecationWarning'),
]

# 40 demos is the smallest size that learned the task here: 10 demos x 1000 steps picked 0, 0
# and 2 of 6 over three training seeds, 30 x 3000 picked 0 of 10.
DEMOS, STEPS, EPISODES = 40, 3000, 8
SUCCESSES_NEEDED = 4  # measured 7, 7 and 8 of 8: see the function's docstring


def test_demos_to_trained_policy_picking_the_cube_in_the_loop(tmp_path, one_thread):
    """Learning shows as successes in the loop, with a margin measured over training seeds.

    Measured on this 2-core machine with the same lock-step demos and training seeds 0, 1, 2:
    7/8, 7/8 and 8/8 held-out episodes picked (failures ended 0.09-0.10 m from the cube),
    about 4.5 min per run (`python bench/bench_smallest_loop.py`).
    """
    import torch
    from vla_nodes.models.vla import VLAModel
    from vla_nodes.orchestration import pipeline
    from vla_nodes.orchestration.evaluate import (evaluate, format_table, imitation_error,
                                                  PolicySpec)
    from vla_nodes.policy.policy import VLAPolicy

    spec = 'tiny_pi0_baseline+env'
    setting = pipeline.Setting(demos=DEMOS, presets=(spec,), steps=STEPS, episodes=EPISODES,
                               max_seconds=10.0, random_baseline=False)
    bags = pipeline.record(tmp_path, setting, progress=False)
    dataset = pipeline.export_dataset(bags, tmp_path, progress=False)
    ckpt = pipeline.train(dataset, spec, tmp_path, setting, progress=False)

    trained = VLAPolicy.from_checkpoint(ckpt)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        untrained = VLAPolicy(VLAModel(trained.model.config), trained.stats, trained.contract)
    err_trained = imitation_error(trained, dataset, frames=12)
    err_random = imitation_error(untrained, dataset, frames=12)
    print(f'imitation error (rad): trained {err_trained:.4f}, random weights {err_random:.4f}')
    assert err_trained < 0.7 * err_random

    result = evaluate(PolicySpec('trained', checkpoint=str(ckpt)), episodes=EPISODES,
                      max_seconds=setting.max_seconds, out_dir=tmp_path,
                      can_name='test_closed_loop', progress=False)
    print(format_table([result]))
    assert all(o in ('success', 'failure') for o in result.outcomes)
    assert result.chunks >= 2 and len(result.infer_ms) == len(result.delay_ms) >= 2
    successes = sum(o == 'success' for o in result.outcomes)
    assert successes >= SUCCESSES_NEEDED, f'{successes}/{EPISODES} picked: {result.outcomes}'
    assert (tmp_path / 'trained_strip.png').is_file()
