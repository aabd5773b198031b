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

"""vla-main's settings, flags and --resume (the stages themselves run in test_closed_loop.py)."""

import json
import os
import subprocess
import sys

import pytest

from vla_nodes import contract
from vla_nodes.orchestration import pipeline


def _never(*args, **kwargs):
    raise AssertionError('a finished stage ran again')


def test_resume_reuses_finished_demos_and_dataset(tmp_path, monkeypatch):
    import vla_nodes.orchestration.record
    import vla_nodes.record.export
    setting = pipeline.Setting(demos=3, presets=('tiny_pi0_depth',), steps=1)
    (tmp_path / 'bags').mkdir()
    (tmp_path / 'bags' / pipeline.DEMOS_DONE).write_text(json.dumps({'demos': 3}))
    (tmp_path / 'dataset' / 'meta').mkdir(parents=True)
    (tmp_path / 'dataset' / 'meta' / 'info.json').write_text(json.dumps(
        {'features': {contract.SCENE_CAMERA.image_key: {}}}))
    monkeypatch.setattr(vla_nodes.orchestration.record, 'record_sim', _never)
    monkeypatch.setattr(vla_nodes.record.export, 'export', _never)
    bags = pipeline.record(tmp_path, setting, progress=False, resume=True)
    assert bags == tmp_path / 'bags'
    assert pipeline.export_dataset(bags, tmp_path, False, resume=True) == tmp_path / 'dataset'


def test_resume_records_again_when_the_demos_differ_or_are_unfinished(tmp_path, monkeypatch):
    import vla_nodes.orchestration.record
    calls = []

    def record_sim(task, episodes, output_dir, **kwargs):
        calls.append(episodes)
        return [{'path': None, 'seed': k + 1, 'outcome': 'success', 'kept': True}
                for k in range(episodes)]

    monkeypatch.setattr(vla_nodes.orchestration.record, 'record_sim', record_sim)
    (tmp_path / 'bags').mkdir()
    pipeline.record(tmp_path, pipeline.Setting(demos=2, presets=(), steps=1), False, resume=True)
    done = json.loads((tmp_path / 'bags' / pipeline.DEMOS_DONE).read_text())
    assert calls == [2] and done['demos'] == 2 and len(done['episodes']) == 2
    pipeline.record(tmp_path, pipeline.Setting(demos=4, presets=(), steps=1), False, resume=True)
    assert calls == [2, 4]  # 2 recorded demos are not the 4 asked for
    wrist = pipeline.Setting(demos=4, presets=('tiny_pi0_keypoints+crop+wrist',), steps=1)
    assert wrist.cameras == ('scene', 'wrist') and wrist.run_name(wrist.presets[0]).endswith(
        '_crop_wrist')
    pipeline.record(tmp_path, wrist, False, resume=True)
    assert calls == [2, 4, 4]  # scene-only demos lack the wrist camera a policy reads
    pipeline.record(tmp_path, wrist, False, resume=True)
    assert calls == [2, 4, 4]


def test_flags_override_the_setting(monkeypatch):
    seen = {}
    monkeypatch.setattr(pipeline, 'main_job',
                        lambda out, setting, progress, resume: seen.update(
                            setting=setting, resume=resume))
    assert pipeline.main(['--full', '--episodes', '3', '--presets', 'tiny_pi0_baseline',
                          '--crop', '0.3', '0.2', '0.9', '0.8', '--image-size', '112',
                          '--no-random', '--resume']) == 0
    setting = seen['setting']
    assert (setting.demos, setting.episodes, setting.presets) == (50, 3, ('tiny_pi0_baseline',))
    assert setting.crop == (0.3, 0.2, 0.9, 0.8) and setting.image_size == 112
    assert not setting.random_baseline and setting.expert and seen['resume']
    assert setting.run_name('tiny_pi0_baseline') == 'tiny_pi0_baseline_112px_crop'
    assert pipeline.QUICK.run_name('tiny_depthvla') == 'tiny_depthvla'
    pipeline.main([])
    assert seen['setting'] == pipeline.QUICK and not seen['resume']
    pipeline.main(['--ablation'])  # the depth-aware presets against the baseline, image only
    assert seen['setting'].presets[0] == 'tiny_pi0_baseline' and {
        'tiny_pi0_depth', 'tiny_depthvla', 'tiny_qdepth_vla', 'tiny_spatial_forcing',
        'tiny_pose_vla'} <= set(seen['setting'].presets) and seen['setting'].episodes == 50
    with pytest.raises(SystemExit):
        pipeline.main(['--episodes', '0'])
    # Another task: its own time budget unless one is given, and its own objects in the export.
    pipeline.main(['--task', 'place_cube_on_plate'])
    assert seen['setting'].task == 'place_cube_on_plate' and seen['setting'].max_seconds is None
    pipeline.main(['--task', 'push_block_left', '--max-seconds', '12'])
    assert seen['setting'].max_seconds == 12.0
    with pytest.raises(SystemExit):
        pipeline.main(['--task', 'pick_blue_cube'])
    # Pose snapshots train only the presets that predict the poses from the camera.
    pipeline.main(['--full', '--pose-snapshots', 'snaps', '--presets',
                   'tiny_pi0_keypoints_pose+crop', 'tiny_pi0_keypoints+crop'])
    setting = seen['setting']
    assert setting.pose_snapshots == 'snaps'
    assert setting.run_name('tiny_pi0_keypoints_pose+crop') == (
        'tiny_pi0_keypoints_pose_crop_snapshots')
    assert setting.snapshots_of('tiny_pi0_keypoints+crop') == ''
    assert setting.run_name('tiny_pi0_keypoints+crop') == 'tiny_pi0_keypoints_crop'


def test_each_task_exports_the_poses_of_its_own_objects(tmp_path, monkeypatch):
    seen = {}
    from vla_nodes.record import export
    monkeypatch.setattr(export, 'export', lambda bags, dataset, config, overwrite: seen.update(
        objects=config.env_objects))
    pipeline.export_dataset(tmp_path, tmp_path, progress=False, task='place_cube_on_plate')
    assert seen['objects'] == ('cube', 'plate')
    pipeline.export_dataset(tmp_path, tmp_path, progress=False)
    assert seen['objects'] == ('cube',)


def test_the_benchmark_reports_95_percent_wilson_intervals():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / 'bench' / 'bench_closed_loop.py'
    spec = importlib.util.spec_from_file_location('bench_closed_loop', path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # Published values: 0/10 -> [0, 0.278], 5/10 -> [0.237, 0.763], 41/50 -> [0.692, 0.902].
    for (k, n), expected in {(0, 10): (0.0, 0.278), (5, 10): (0.237, 0.763),
                             (41, 50): (0.692, 0.902)}.items():
        assert bench.wilson(k, n) == pytest.approx(expected, abs=1e-3)
    table = bench.interval_table([{'name': 'p', 'outcomes': ['success'] * 41 + ['failure'] * 9}])
    assert '41/50' in table and '69% -  90%' in table


def test_long_jobs_send_node_logs_to_a_file_and_only_errors_to_the_console(tmp_path):
    """vla-main printed every node's resets, audits and feedback checks over its progress bars."""
    script = ('import sys\n'
              'from vla_nodes.orchestration.logs import node_logs_to\n'
              'log = node_logs_to(sys.argv[1])\n'
              'from vla_nodes import ros\n'
              'ros.init()\n'
              'node = ros.Node("sim_node")\n'
              'node.get_logger().info("episode seed 3: running")\n'
              'node.get_logger().warning("joint feedback jumped")\n'
              'node.get_logger().error("CAN bus down")\n'
              'print("the table")\n'
              'assert node_logs_to(sys.argv[1]) is None  # set up once: kept as it is\n')
    done = subprocess.run([sys.executable, '-c', script, str(tmp_path)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, 'VLA_ROS_BACKEND': 'local'})
    assert done.returncode == 0, done.stderr
    assert done.stdout == 'the table\n'
    assert 'CAN bus down' in done.stderr
    assert 'episode seed 3' not in done.stderr and 'jumped' not in done.stderr
    log = (tmp_path / 'graph.log').read_text()
    assert '[sim_node]: episode seed 3: running' in log and 'CAN bus down' in log


def test_qdepth_presets_get_their_depth_tokenizer_trained_once(tmp_path, monkeypatch):
    """vla-main --presets tiny_qdepth_vla stopped: "QDepth-VLA needs its depth tokenizer"."""
    from test_spatial import write_depth_dataset
    from vla_nodes.train import depth_tokenizer
    dataset = write_depth_dataset(tmp_path / 'ds')
    monkeypatch.setattr(pipeline, 'TOKENIZER_STEPS', 20)
    setting = pipeline.Setting(demos=3, presets=('tiny_qdepth_vla',), steps=1, image_size=32)
    path = pipeline._spatial_path(dataset, 'tiny_qdepth_vla', tmp_path, setting, False)
    assert path == str(tmp_path / 'runs' / 'depth_tokenizer_32px')
    assert json.loads((tmp_path / 'runs' / 'depth_tokenizer_32px' / 'train_log.json')
                      .read_text())['args']['image_size'] == 32
    monkeypatch.setattr(depth_tokenizer, 'main', _never)  # the second preset reuses it
    assert pipeline._spatial_path(dataset, 'tiny_qdepth_vla', tmp_path, setting, False) == path
    assert pipeline._spatial_path(dataset, 'tiny_depthvla', tmp_path, setting, False) == ''
