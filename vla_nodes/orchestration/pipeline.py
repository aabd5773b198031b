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

"""vla-main: the main job, from recorded demos to a simulated Piper doing the task, measured.

Where it fits: it chains the suite's own steps, each the same code as its CLI:
    1. `vla-record --sim`  the scripted expert demonstrates the task through the leader arm (CAN)
    2. `vla-export`        bags -> a LeRobot v3 dataset (at the policy's action rate)
    3. `vla-train`         the policies, from the same demos (QUICK: tiny π0 with the object
                           poses from pose_node as input)
    4. `vla-eval`          closed loop on held-out seeds: the expert, each checkpoint and a
                           random-weight model, through policy_node and the real driver path
and prints the table (success rate, episode time, grasp-to-cube distance, latencies), with
plots, image strips and results.json under --out.

    vla-main                 quick (~6 min on a 2-core CPU): 50 demos, 1 policy, 20 episodes
    vla-main --full          the benchmark: 50 demos, 3 policies, 50 held-out episodes each
"""

import argparse
from dataclasses import dataclass, replace
import json
from pathlib import Path
import sys
import time
from typing import NamedTuple

from vla_nodes import contract

TASK = 'pick_red_cube'
DEMOS_DONE = 'demos.json'
# Where the sim's workspace (cube and plate regions, the gripper above them) lies in the scene
# camera's 320x240 frame, as (top, left, bottom, right) fractions: measured by projecting the
# regions through SimWorld's camera (u 90-206, v 107-204 px), with a margin.
WORKSPACE_CROP = (0.3, 0.25, 0.9, 0.72)


@dataclass(frozen=True)
class Setting:
    """Sizes of one run of the main job.

    Attributes:
        demos: demos recorded (failed ones are discarded).
        presets: policies trained, each 'PRESET[+env][+crop][+wrist]' (models/presets.py;
            +env: with the object poses from pose_node as input, vla-train --env-state; +crop:
            on WORKSPACE_CROP; +wrist: the wrist camera too, which the demos then record);
            the first is the headline policy.
        steps: training steps per preset.
        batch_size: training batch.
        lr: peak learning rate (short runs need more than the long-run recipes).
        episodes: held-out evaluation episodes per policy.
        max_seconds: simulated s per evaluation episode (None: the task's budget).
        random_baseline: also evaluate a random-weight model.
        expert: also evaluate the scripted expert.
        image_size: the models' input side S, px (0: each preset's own).
        crop: (top, left, bottom, right) fractions of the camera frame the models see
            (() = the whole frame); saved in each checkpoint, applied by policy_node.
        task: the sim task (sim/tasks.py); its objects are the object-pose input of +env.
        pose_snapshots: a vla-snapshots folder (scene frames labelled by pose_node, no
            actions) that also trains the pose estimator of presets that predict the object
            poses from the camera (env_state_from_image); '' = none.
    """

    demos: int
    presets: tuple
    steps: int
    batch_size: int = 8
    lr: float = 2e-3
    episodes: int = 5
    max_seconds: float | None = None
    random_baseline: bool = True
    expert: bool = True
    image_size: int = 0
    crop: tuple = ()
    task: str = TASK
    pose_snapshots: str = ''

    def run_name(self, spec: str) -> str:
        """A training run's folder name: the spec, and the input when it is not the preset's."""
        parsed = parse_spec(spec)
        return parsed.preset + ('_env' if parsed.env else '') + (
            f'_{self.image_size}px' if self.image_size else '') + (
            '_crop' if parsed.crop or self.crop else '') + ('_wrist' if parsed.wrist else '') + (
            '_snapshots' if self.snapshots_of(spec) else '')

    def snapshots_of(self, spec: str) -> str:
        """The pose snapshots a policy trains on: the setting's, if it predicts poses."""
        from vla_nodes.models.presets import get
        return self.pose_snapshots if get(parse_spec(spec).preset).env_state_from_image else ''

    def crop_of(self, spec: str) -> tuple:
        """The crop a policy is trained on: WORKSPACE_CROP for '+crop', else the setting's."""
        return WORKSPACE_CROP if parse_spec(spec).crop else tuple(self.crop)

    @property
    def cameras(self) -> tuple:
        """The cameras the demos record: the scene's, and the wrist's when a policy reads it."""
        wrist = any(parse_spec(spec).wrist for spec in self.presets)
        return contract.DEFAULT_CAMERAS + ((contract.WRIST_CAMERA.name,) if wrist else ())


class Spec(NamedTuple):
    """One policy of a Setting: 'PRESET[+env][+crop][+wrist]'."""

    preset: str
    env: bool  # the object poses from pose_node as input
    crop: bool  # on WORKSPACE_CROP
    wrist: bool  # the wrist camera besides the scene camera


def parse_spec(spec: str) -> Spec:
    """'PRESET[+env][+crop][+wrist]' -> Spec."""
    preset, *options = spec.split('+')
    unknown = set(options) - {'env', 'crop', 'wrist'}
    if unknown:
        raise ValueError(f'{spec!r}: unknown options {sorted(unknown)} '
                         '(PRESET[+env][+crop][+wrist])')
    return Spec(preset, 'env' in options, 'crop' in options, 'wrist' in options)


# Episodes end at the task's check or after max_seconds of simulated time: the expert picks the
# cube in about 4 s, so 10 s leaves a policy 2.5 times the expert's time.
# QUICK's headline policy reads the cube's pose from pose_node (+env): from 50 demos it picks the
# cube in 20 of 20 held-out episodes, where image-only policies at this budget rarely do
# (docs/closed_loop_benchmark.md); the whole job takes about 6 minutes on a 2-core CPU.
QUICK = Setting(demos=50, presets=('tiny_pi0_baseline+env',), steps=6000, episodes=20,
                max_seconds=10.0)
# The benchmark: the policy with object poses, the image-only keypoint policy on the workspace
# crop and the plain baseline, from the same 50 demos and budget, 50 held-out seeds each.
FULL = Setting(demos=50, presets=('tiny_pi0_baseline+env', 'tiny_pi0_keypoints+crop',
                                  'tiny_pi0_baseline'),
               steps=6000, episodes=50, max_seconds=10.0)

# The seed papers' ablation: the image-only baseline against every depth-aware preset (sensor
# depth tokens, DepthVLA, QDepth-VLA, Spatial Forcing, Pose-VLA), same demos and budget as FULL.
ABLATION = replace(FULL, presets=('tiny_pi0_baseline', 'tiny_pi0_depth', 'tiny_depthvla',
                                  'tiny_qdepth_vla', 'tiny_spatial_forcing', 'tiny_pose_vla'),
                   expert=False, random_baseline=False)


# The smallest run that learned the task here (test/test_closed_loop.py, measured by
# bench/bench_smallest_loop.py): 10 demos x 1000 steps picked 0, 0 and 2 of 6 over three
# training seeds, 30 x 3000 picked 0 of 10, 40 x 3000 picked 7, 7 and 8 of 8 (one recording;
# a fresh recording and training picked 3 of 8).
SMALLEST = Setting(demos=40, presets=('tiny_pi0_baseline+env',), steps=3000, episodes=8,
                   max_seconds=10.0, random_baseline=False, expert=False)


def record(out: Path, setting: Setting, progress: bool = True, resume: bool = False) -> Path:
    """Record the demos (seeds 1 ... demos) into out/bags; failed demos are discarded.

    With `resume`, bags that an earlier run recorded for the same number of demos are reused
    (out/bags/demos.json is written last, so its presence means the recording finished).
    """
    from vla_nodes.orchestration.record import record_sim
    bags = out / 'bags'
    done = bags / DEMOS_DONE
    wanted = {'demos': setting.demos, 'cameras': list(setting.cameras)}
    if resume and done.is_file() and _recorded(json.loads(done.read_text())) == wanted:
        print(f'demos: reusing {bags}')
        return bags
    cameras = '[' + ', '.join(setting.cameras) + ']'
    results = record_sim(setting.task, setting.demos, str(bags), seed=0, discard_failures=True,
                         launch_args={'can_name': 'vla_main_record', 'cameras': cameras},
                         progress=progress)
    kept = sum(r['kept'] for r in results)
    if kept == 0:
        raise RuntimeError(f'the expert succeeded in none of {setting.demos} demos: see the log')
    print(f'demos: {kept} of {len(results)} kept ({bags})')
    done.write_text(json.dumps({**wanted, 'episodes': results}, indent=1) + '\n')
    return bags


def _recorded(done: dict) -> dict:
    """What a finished recording holds (its demos.json; before cameras were listed: the scene)."""
    return {'demos': done['demos'], 'cameras': done.get('cameras', list(contract.DEFAULT_CAMERAS))}


def export_dataset(bags: Path, out: Path, progress: bool = True, resume: bool = False,
                   task: str = TASK, cameras=contract.DEFAULT_CAMERAS) -> Path:
    """Export the bags to out/dataset at contract.ACTION_RATE_HZ (`resume`: reuse a finished one).

    The object poses exported are those of `task`'s objects; the images those of `cameras`.
    """
    from vla_nodes.record.export import export
    from vla_nodes.record.export_config import ExportConfig
    from vla_nodes.sim.tasks import get_task
    dataset = out / 'dataset'
    info = dataset / 'meta' / 'info.json'
    cameras = contract.cameras(cameras)
    keys = {c.image_key for c in cameras}
    if resume and info.is_file() and keys <= set(json.loads(info.read_text())['features']):
        print(f'dataset: reusing {dataset}')
        return dataset
    export([bags], dataset, ExportConfig(fps=int(contract.ACTION_RATE_HZ), progress=progress,
                                         env_objects=get_task(task).objects,
                                         cameras=cameras),
           overwrite=True)
    return dataset


def train(dataset: Path, spec: str, out: Path, setting: Setting, progress: bool = True,
          seed: int = 0) -> Path:
    """Train the policy `spec` (parse_spec) on the dataset; returns its latest checkpoint."""
    from vla_nodes.train.config import LATEST, TrainConfig
    from vla_nodes.train.train import run
    parsed = parse_spec(spec)
    preset = parsed.preset
    run_dir = out / 'runs' / setting.run_name(spec)
    config = TrainConfig(data=(str(dataset),), out=str(run_dir), preset=preset,
                         env_state=parsed.env,
                         spatial_path=_spatial_path(dataset, preset, out, setting, progress),
                         steps=setting.steps, batch_size=setting.batch_size, lr=setting.lr,
                         min_lr=setting.lr / 10, warmup=min(100, setting.steps // 10),
                         decay_steps=setting.steps, val_every=max(1, setting.steps // 4),
                         save_every=setting.steps, device='cpu', seed=seed,
                         image_size=setting.image_size, crop=setting.crop_of(spec),
                         cameras=','.join(setting.cameras) if parsed.wrist else '',
                         pose_snapshots=setting.snapshots_of(spec),
                         progress=progress, resume=(run_dir / LATEST).is_file())
    run(config)
    return run_dir / (run_dir / LATEST).read_text().strip()


# QDepth-VLA's VQ-VAE depth tokenizer, trained once per dataset and image size before its
# policies: the steps and learning rate that reach a used codebook on the sim's depth (tiny
# preset; the paper's 1e-5 is for 2000 steps on the full-size one).
TOKENIZER_STEPS, TOKENIZER_LR = 1000, 3e-3


def _spatial_path(dataset: Path, preset: str, out: Path, setting: Setting,
                  progress: bool) -> str:
    """The trained module a preset needs as --spatial-path ('' for none); trains it if missing.

    Only qdepth needs one that the suite trains itself (DepthVLA's and Spatial Forcing's are
    pretrained downloads, optional for their tiny twins).
    """
    from vla_nodes.models.presets import PRESETS
    from vla_nodes.train import depth_tokenizer
    model = PRESETS[preset]
    if model.spatial != 'qdepth':
        return ''
    size = setting.image_size or model.image_size
    path = out / 'runs' / f'depth_tokenizer_{size}px'
    if not (path / 'model.safetensors').is_file():
        args = [str(dataset), '--output', str(path), '--image-size', str(size),
                '--preset', 'tiny' if preset.startswith('tiny_') else 'paper',
                '--steps', str(TOKENIZER_STEPS), '--lr', str(TOKENIZER_LR), '--overwrite']
        if depth_tokenizer.main(args + ([] if progress else ['--no-progress'])) != 0:
            raise RuntimeError(f'training the depth tokenizer for {preset} failed')
    return str(path)


def main_job(out: str | Path, setting: Setting, progress: bool = True,
             resume: bool = False) -> list:
    """Record, export, train, evaluate; prints the table; returns the EvalResults.

    With `resume`, finished stages of an earlier run in `out` are reused and unfinished
    training runs continue from their latest checkpoint; evaluation always runs.
    """
    import torch
    from vla_nodes.orchestration.evaluate import (evaluate, format_table, PolicySpec,
                                                  save_plots, save_results)
    torch.set_num_threads(1)  # the graph's nodes need the other core
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    timings, start = {}, time.monotonic()
    bags = record(out, setting, progress, resume)
    timings['record'] = time.monotonic() - start
    dataset = export_dataset(bags, out, progress, resume, setting.task, setting.cameras)
    timings['export'] = time.monotonic() - start - sum(timings.values())
    specs = [PolicySpec('expert', expert=True)] if setting.expert else []
    for preset in setting.presets:
        ckpt = train(dataset, preset, out, setting, progress)
        specs.append(PolicySpec(setting.run_name(preset), checkpoint=str(ckpt)))
    timings['train'] = time.monotonic() - start - sum(timings.values())
    if setting.random_baseline:
        specs.append(PolicySpec('random-weight'))
    results = [evaluate(s, setting.episodes, setting.task, max_seconds=setting.max_seconds,
                        out_dir=out, can_name=f'vla_main_eval_{i}', progress=progress)
               for i, s in enumerate(specs)]
    timings['evaluate'] = time.monotonic() - start - sum(timings.values())
    print(f'\n== {setting.task}: {setting.episodes} held-out episodes per policy, '
          f'{setting.demos} demos, {setting.steps} training steps per preset' + (
              f', pose snapshots from {setting.pose_snapshots}' if setting.pose_snapshots
              else ''))
    print(format_table(results))
    print('time: ' + ', '.join(f'{k} {v:.0f} s' for k, v in timings.items()))
    print(f'plots: {save_plots(results, out)}  results: {save_results(results, out)}')
    for r in results:
        if r.strip:
            print(f'rollout strip ({r.name}): {r.strip}')
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='vla-main', description=__doc__.split('\n\n')[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument('--quick', action='store_true', help='about 6 minutes (default)')
    size.add_argument('--full', action='store_true', help='the benchmark (hours on a CPU)')
    size.add_argument('--ablation', action='store_true',
                      help='FULL with the baseline and every depth-aware preset (image only)')
    parser.add_argument('--out', default='out/main', help='output folder')
    parser.add_argument('--task', default=TASK,
                        help='sim task (sim/tasks.py); other than the default, episodes get '
                             "the task's time budget unless --max-seconds says otherwise")
    parser.add_argument('--demos', type=int, help='override the number of demos')
    parser.add_argument('--steps', type=int, help='override the training steps per preset')
    parser.add_argument('--episodes', type=int, help='override the evaluation episodes')
    parser.add_argument('--presets', nargs='+', metavar='PRESET[+env][+crop][+wrist]',
                        help='override the policies: a preset, +env with the object poses as '
                             'input, +crop on the workspace, +wrist with the wrist camera')
    parser.add_argument('--max-seconds', type=float, help='simulated s per eval episode')
    parser.add_argument('--image-size', type=int, help="models' input side, px")
    parser.add_argument('--crop', type=float, nargs=4, metavar=('TOP', 'LEFT', 'BOTTOM', 'RIGHT'),
                        help='the part of the camera frame the models see, as fractions')
    parser.add_argument('--pose-snapshots', metavar='DIR',
                        help='vla-snapshots folder (or several, comma-separated): more cube '
                             'placements (labelled by pose_node) for the pose estimator of '
                             'presets that predict the poses')
    parser.add_argument('--no-expert', dest='expert', action='store_false',
                        help='do not evaluate the scripted expert')
    parser.add_argument('--no-random', dest='random', action='store_false',
                        help='do not evaluate a random-weight model')
    parser.add_argument('--resume', action='store_true',
                        help='reuse the finished stages of an earlier run in --out')
    parser.add_argument('--no-progress', dest='progress', action='store_false')
    opts = parser.parse_args(argv)
    setting = FULL if opts.full else ABLATION if opts.ablation else QUICK
    overrides = {k: v for k, v in (('demos', opts.demos), ('steps', opts.steps),
                                   ('episodes', opts.episodes), ('max_seconds', opts.max_seconds),
                                   ('presets', tuple(opts.presets or ()) or None),
                                   ('image_size', opts.image_size),
                                   ('crop', tuple(opts.crop or ()) or None),
                                   ('pose_snapshots', opts.pose_snapshots),
                                   ('random_baseline', None if opts.random else False),
                                   ('expert', None if opts.expert else False))
                 if v is not None}
    if opts.task != TASK and opts.max_seconds is None:
        overrides['max_seconds'] = None  # 10 s is 2.5x the expert's pick, not every task's
    setting = replace(setting, task=opts.task, **overrides)
    if setting.demos < 1 or setting.steps < 1 or setting.episodes < 1:
        parser.error('--demos, --steps and --episodes must be >= 1')
    from vla_nodes.models import presets
    from vla_nodes.sim.tasks import get_task
    try:
        get_task(setting.task)
        for spec in setting.presets:
            presets.get(parse_spec(spec).preset)
    except (KeyError, ValueError) as error:
        parser.error(str(error).strip('"'))
    from vla_nodes.orchestration.logs import node_logs_to
    log = node_logs_to(opts.out)
    main_job(opts.out, setting, opts.progress, opts.resume)
    if log:
        print(f"nodes' log: {log}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
