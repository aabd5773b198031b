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

"""End to end: sim.launch.yaml runs the whole graph; the episode bag proves the loop closed.

The bag must hold every contract topic of the graph at roughly its rate, the arm's joints must
have moved, and the recorded action chunks must be the model's forward pass on the recorded
observations (re-running the same random-weight model on them reproduces each chunk).
"""

import bisect

import numpy as np
import pytest

from vla_nodes import contract
from vla_nodes.nodes.policy_inputs import observation_seed
from vla_nodes.paths import package_share
from vla_nodes.record.bag_meta import read_metadata
from vla_nodes.record.bag_read import read_bag, summarize
from vla_nodes.ros import image, launch
from vla_nodes.ros.msgs import stamp_to_ns

pytestmark = pytest.mark.slow
SECONDS = 10.0


@pytest.fixture(scope='module')
def episode(tmp_path_factory):
    out = tmp_path_factory.mktemp('episodes')
    specs = launch.load_launch(package_share() / 'launch' / 'sim.launch.yaml',
                               {'output_dir': str(out)})
    launch.run(specs, duration=SECONDS)
    bags = sorted(out.glob('episode_*'))
    assert len(bags) == 1, f'expected one episode bag in {out}, found {bags}'
    return bags[0]


def test_every_contract_topic_is_recorded_at_roughly_its_rate(episode):
    summary = summarize(episode)
    sim_s = (summary[contract.JOINT_STATES_TOPIC]['last_ns']
             - summary[contract.JOINT_STATES_TOPIC]['first_ns']) / 1e9
    assert sim_s > 0.5 * SECONDS, f'simulation ran only {sim_s:.1f} s of {SECONDS} s'
    expected_hz = {  # config/sim.yaml
        contract.COLOR_TOPIC: 10.0, contract.COLOR_INFO_TOPIC: 10.0,
        contract.DEPTH_TOPIC: 10.0, contract.DEPTH_INFO_TOPIC: 10.0,
        contract.METRIC_DEPTH_TOPIC: 10.0, contract.JOINT_STATES_TOPIC: 100.0,
        contract.EE_POSE_TOPIC: 100.0, contract.ACTION_CHUNK_TOPIC: 2.0,
    }
    for topic, hz in expected_hz.items():
        assert topic in summary, f'{topic} missing from the bag'
        rate = summary[topic]['count'] / sim_s
        # Sim time runs a little slower than wall time on 2 cores: rates in sim time are higher.
        assert 0.4 * hz < rate < 2.5 * hz, f'{topic}: {rate:.1f} Hz, expected about {hz} Hz'
        assert summary[topic]['type'] == contract.TOPIC_TYPES[topic]
    for latched in (contract.INSTRUCTION_TOPIC, contract.TF_STATIC_TOPIC):
        assert summary[latched]['count'] == 1
    assert summary[contract.DIAGNOSTICS_TOPIC]['count'] >= 5
    assert read_metadata(episode)['task'] == 'pick up the red cube'


def test_the_arm_moved_and_depth_matches_the_camera(episode):
    joints, depth_mm, depth_m = [], {}, {}
    for topic, _t, _s, msg in read_bag(episode, [contract.JOINT_STATES_TOPIC,
                                                 contract.DEPTH_TOPIC,
                                                 contract.METRIC_DEPTH_TOPIC]):
        if topic == contract.JOINT_STATES_TOPIC:
            assert list(msg.name) == list(contract.JOINT_NAMES)
            joints.append(np.asarray(msg.position))
        else:
            table = depth_mm if topic == contract.DEPTH_TOPIC else depth_m
            table[stamp_to_ns(msg.header.stamp)] = image.from_msg(msg)
    travel = np.ptp(np.stack(joints), axis=0)
    assert travel[:6].max() > 0.05, f'arm joints barely moved: {travel}'
    stamp = sorted(set(depth_mm) & set(depth_m))[len(depth_m) // 2]
    mm, m = depth_mm[stamp], depth_m[stamp]
    valid = (mm >= 50) & (mm <= 5000)  # depth_node's range in config/sim.yaml: 0.05-5 m
    assert valid.mean() > 0.5
    np.testing.assert_array_equal(m[valid], mm[valid].astype(np.float32) / np.float32(1000))
    assert np.isnan(m[~valid]).all()


def test_recorded_chunks_are_the_models_forward_pass(episode):
    from vla_nodes.policy.policy import VLAPolicy
    topics = [contract.COLOR_TOPIC, contract.METRIC_DEPTH_TOPIC, contract.JOINT_STATES_TOPIC,
              contract.ACTION_CHUNK_TOPIC, contract.INSTRUCTION_TOPIC]
    colors, depths, state_stamps, states, chunks = {}, {}, [], [], []
    instruction = ''
    for topic, _t, _s, msg in read_bag(episode, topics):
        if topic == contract.COLOR_TOPIC:
            colors[stamp_to_ns(msg.header.stamp)] = image.from_msg(msg, 'rgb8')
        elif topic == contract.METRIC_DEPTH_TOPIC:
            depths[stamp_to_ns(msg.header.stamp)] = image.from_msg(msg)
        elif topic == contract.JOINT_STATES_TOPIC:
            state_stamps.append(stamp_to_ns(msg.header.stamp))
            states.append(np.asarray(msg.position, np.float32))
        elif topic == contract.INSTRUCTION_TOPIC:
            instruction = msg.data
        else:
            chunks.append(msg)
    # Chunks computed from frames seen before the recording started have no observation here.
    chunks = [c for c in chunks if stamp_to_ns(c.header.stamp) in colors
              and stamp_to_ns(c.header.stamp) in depths
              and state_stamps and state_stamps[0] <= stamp_to_ns(c.header.stamp)]
    assert len(chunks) >= 5
    policy = VLAPolicy.random_init(seed=0)  # what policy_node runs without a checkpoint
    for chunk in chunks[:3] + chunks[-2:]:
        stamp = stamp_to_ns(chunk.header.stamp)
        i = bisect.bisect_right(state_stamps, stamp) - 1
        obs = {contract.OBS_IMAGE: colors[stamp], contract.OBS_DEPTH: depths[stamp],
               contract.OBS_STATE: states[i], contract.OBS_INSTRUCTION: instruction,
               'seed': observation_seed(stamp)}
        expected = policy.infer(obs)['actions']
        recorded = np.array([p.positions for p in chunk.points])
        np.testing.assert_allclose(recorded, expected, atol=1e-5)
        times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in chunk.points]
        # Step k at observation time + k / rate (contract.CHUNK_FIRST_STEP).
        np.testing.assert_allclose(times, 0.1 * np.arange(len(times)), atol=1e-9)
