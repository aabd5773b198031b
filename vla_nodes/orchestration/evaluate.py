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

"""vla-eval: closed-loop evaluation of policies on held-out seeded sim episodes, without ROS.

Where it fits: after `vla-record --sim`, `vla-export` and `vla-train`, this runs
`launch/sim_eval.launch.yaml` in this process (sim_node, arm_driver_node through piper_sdk on
the simulated CAN bus, depth, pose, policy_node with the checkpoint) and, for each episode,
calls `/sim_node/reset` and waits for `/sim/episode_status` to say 'success' or 'failure' (the
task's own time budget, or a shorter `max_seconds` of simulated time). The scripted expert runs
through the same graph as the leader arm, with no policy. Per policy it reports the success
rate, the mean episode time (simulated s), the distance from the grasp centre to the cube at the
end of each episode (m, a continuous measure that shows learning before success does) and the
inference latency (model time and observation-to-chunk delay, p50/p95), and saves plots and an
image strip of the first episode.

By default the simulation runs in lock-step (sim_node `lockstep`): simulated time advances only
when the graph has caught up, the policy's inference is charged `inference_delay_s` of simulated
time (default 0.28 s, see INFERENCE_DELAY_S), and the
same checkpoint and seeds give the same episodes bit for bit, as fast as the CPU allows.
`--real-time` runs on wall time instead, as on a robot.

    vla-eval --checkpoint runs/cube/checkpoints/step_000500 --episodes 10 --out out/eval
    vla-eval --expert --episodes 10

`imitation_error` is the offline companion: the mean error of a policy's chunks against the
demonstrated actions on dataset frames.
"""

import argparse
from dataclasses import asdict, dataclass, field
import json
from pathlib import Path
import sys
import threading
import time

import numpy as np

from vla_nodes import contract
from vla_nodes.orchestration.episodes import open_graph, SimEpisodes

EVAL_LAUNCH = 'sim_eval.launch.yaml'
TARGET = 'cube'  # the object whose distance to the grasp centre is reported
HELD_OUT_SEED = 1000  # demos are recorded from seed 0 up: evaluation seeds never overlap them
STRIP_FRAMES = 6
# Observation -> published chunk in the real-time sim graph, median, as measured when policy_node
# still waited for its 20 Hz tick (bench/bench_latency.py, 261 ms; since it asks the model on the
# observation's arrival, 60-110 ms: bench/bench_obs_to_chunk.py). Kept: conservative for a
# slower robot computer, and the closed-loop figures stay comparable.
INFERENCE_DELAY_S = 0.28


@dataclass
class PolicySpec:
    """What drives the arm: the scripted expert, a checkpoint, or a random-weight model.

    Attributes:
        name: the row's label.
        checkpoint: policy checkpoint directory ('' with expert False: random weights).
        expert: the scripted expert plays the leader arm; no policy_node.
        action_rate_hz: chunk step rate; 0 = the checkpoint's (its dataset fps), else must
            equal it.
    """

    name: str
    checkpoint: str = ''
    expert: bool = False
    action_rate_hz: float = 0.0


def _policy_args(spec: PolicySpec) -> dict:
    """sim_eval.launch.yaml's arguments for what drives the arm."""
    return {'checkpoint': spec.checkpoint, 'action_rate_hz': str(float(spec.action_rate_hz)),
            'policy': 'false' if spec.expert else 'true',
            'leader': 'expert' if spec.expert else '',
            'driver_dry_run': 'true' if spec.expert else 'false',
            'cameras': str(_cameras_of(spec))}


def _cameras_of(spec: PolicySpec) -> list:
    """The cameras the sim renders (and the robot offers): those the checkpoint needs."""
    if not spec.checkpoint:
        return list(contract.DEFAULT_CAMERAS)
    from vla_nodes.policy.checkpoint import contract_cameras, read_policy_json
    return contract_cameras(read_policy_json(spec.checkpoint).get('contract') or {})


@dataclass
class EvalResult:
    """One policy's episodes and latencies (times in s, distances in m, latencies in ms)."""

    name: str
    seeds: list = field(default_factory=list)
    outcomes: list = field(default_factory=list)
    episode_s: list = field(default_factory=list)
    final_distance_m: list = field(default_factory=list)
    chunks: int = 0
    infer_ms: list = field(default_factory=list)
    delay_ms: list = field(default_factory=list)
    strip: str = ''
    wall_s: list = field(default_factory=list)  # wall time of each episode, reset to outcome

    def add_episode(self, ended: dict, wall_s: float) -> None:
        """One episode from sim_node's /sim/episode_result (SimEpisodes.wait_result)."""
        self.wall_s.append(wall_s)
        self.seeds.append(int(ended['seed']))
        self.outcomes.append(ended['status'])
        self.episode_s.append(float(ended['episode_s']))
        self.final_distance_m.append(float(ended['grasp_to_object_m'].get(TARGET, float('nan'))))

    def summary(self) -> dict:
        """Success rate, means and latency percentiles of this run."""
        def pct(values, q):
            return float(np.percentile(values, q)) if values else float('nan')
        n = len(self.outcomes)
        return {'policy': self.name, 'episodes': n,
                'success_rate': sum(o == 'success' for o in self.outcomes) / n if n else 0.0,
                'mean_episode_s': float(np.mean(self.episode_s)) if n else float('nan'),
                'mean_final_distance_m': float(np.mean(self.final_distance_m)) if n
                else float('nan'),
                'chunks': self.chunks,
                'infer_p50_ms': pct(self.infer_ms, 50), 'infer_p95_ms': pct(self.infer_ms, 95),
                'delay_p50_ms': pct(self.delay_ms, 50), 'delay_p95_ms': pct(self.delay_ms, 95)}


def evaluate(spec: PolicySpec, episodes: int, task: str = 'pick_red_cube',
             seed: int = HELD_OUT_SEED, max_seconds: float | None = None,
             out_dir: str | Path | None = None, can_name: str = 'vla_sim_eval',
             progress: bool = True, lockstep: bool = True,
             inference_delay_s: float = INFERENCE_DELAY_S,
             inference_process: bool = True) -> EvalResult:
    """Run `episodes` closed-loop episodes of `task` for one policy.

    Args:
        spec: what drives the arm.
        episodes: how many episodes; their seeds are seed + 1 ... seed + episodes.
        task: a task of vla_nodes/sim/tasks.py.
        seed: the simulator's start seed (each reset takes the next one).
        max_seconds: simulated seconds per episode; None = the task's budget.
        out_dir: where the image strip goes (None: no files).
        can_name: virtual CAN channel of this run.
        progress: show a progress bar.
        lockstep: simulate in lock-step (exact replays, faster than real time on this CPU);
            False: on wall time, inference as slow as it is.
        inference_delay_s: lock-step only: simulated seconds from observation to chunk.
        inference_process: policy_node runs the model in a child process (same chunks; the
            simulation runs on meanwhile), else on its worker thread.

    Returns:
        The EvalResult with one entry per episode.

    Raises:
        RuntimeError: the simulator does not answer. LaunchError: a node failed to start (a
        checkpoint whose contract does not match is refused here, with the reason).
    """
    from tqdm import tqdm
    from vla_nodes.paths import package_share
    from vla_nodes.sim.tasks import get_task
    budget = float(max_seconds or get_task(task).max_seconds)
    args = {'task': task, 'seed': str(seed), 'can_name': can_name, 'max_episode_s': str(budget),
            'inference_delay_s': str(float(inference_delay_s) if lockstep else -1.0),
            'inference_process': str(bool(inference_process)).lower(),
            **_policy_args(spec)}
    result, frames, keep = EvalResult(spec.name), [], threading.Event()
    with open_graph(package_share() / 'launch' / EVAL_LAUNCH, args, lockstep,
                    control='vla_eval') as graph:
        chunks = ChunkTimings(graph.control)

        def keep_frame(msg) -> None:  # the first episode's frames, for the image strip
            if keep.is_set():
                frames.append(msg)
        sim = SimEpisodes(graph.control, on_color=keep_frame)
        bar = tqdm(total=episodes, unit='episode', desc=f'eval {spec.name}',
                   disable=not progress)
        for k in range(episodes):
            started = time.monotonic()
            episode_seed = sim.reset(wait_running=False)
            if k == 0:
                keep.set()
            ended = sim.wait_result(episode_seed, budget, wall_timeout_s=budget * 4 + 30.0)
            keep.clear()
            result.add_episode(ended, time.monotonic() - started)
            bar.update(1)
            bar.set_postfix(success=result.outcomes.count('success'))
        bar.close()
        chunks.fill(result)
    if out_dir is not None and frames:
        result.strip = str(save_strip(frames, Path(out_dir) / f'{_slug(spec.name)}_strip.png'))
    return result


class ChunkTimings:
    """policy_node's per-chunk timing (/vla/chunk_timing), counted on the control node.

    Each message is one chunk: model time (ms), observation -> chunk delay (s), and whether it
    was published (not a dry run).
    """

    def __init__(self, node) -> None:
        from vla_nodes.ros.msgs import std_msgs
        self.chunks, self.infer_ms, self.delay_ms = 0, [], []
        # Deep enough for a real-time graph's burst; lock-step delivers every message anyway.
        # The node's default (mutually exclusive) group: one count at a time.
        node.create_subscription(std_msgs.String, contract.CHUNK_TIMING_TOPIC, self._on_timing,
                                 1000)

    def _on_timing(self, msg) -> None:
        timing = json.loads(msg.data)
        self.chunks += bool(timing['published'])
        self.infer_ms.append(float(timing['infer_ms']))
        self.delay_ms.append(float(timing['delay_s']) * 1e3)

    def fill(self, result: 'EvalResult') -> None:
        """Copy the counts and latencies into `result`."""
        result.chunks = self.chunks
        result.infer_ms, result.delay_ms = list(self.infer_ms), list(self.delay_ms)


def save_strip(frames: list, path: Path, count: int = STRIP_FRAMES) -> Path | None:
    """Save `count` colour frames spread over an episode side by side as one PNG.

    Returns:
        The PNG's path, or None without frames.
    """
    if not frames:
        return None
    from PIL import Image as PILImage
    from vla_nodes.ros import image
    path.parent.mkdir(parents=True, exist_ok=True)
    picks = [frames[i] for i in np.linspace(0, len(frames) - 1, count).astype(int)]
    PILImage.fromarray(np.hstack([image.from_msg(f, 'rgb8') for f in picks])).save(path)
    return path


def _as_trained(contract) -> dict:
    """The checkpoint's {role: dataset key} as the loader's {key: role} feature map."""
    return {key: role for role, key in (contract.get('dataset_features') or {}).items()}


def imitation_error(policy, dataset_dir: str | Path, episodes=None, frames: int = 16,
                    steps: int = 4) -> float:
    """Mean absolute error of a policy's first `steps` actions against the demonstration.

    Args:
        policy: a VLAPolicy.
        dataset_dir: a LeRobot v3 dataset from vla-export.
        episodes: episode indices to draw from (default all).
        frames: how many frames, evenly spread over the episodes.
        steps: how many chunk steps are compared.

    Returns:
        Mean |predicted - demonstrated| over joints 1-6 (rad) and the compared steps.
    """
    from vla_nodes.train.data import LeRobotDataset
    config = policy.model.config
    data = LeRobotDataset(dataset_dir, config.horizon, config.image_size, use_depth=True,
                          episodes=episodes, crop=policy.contract.get('image_crop'),
                          feature_map=_as_trained(policy.contract),
                          env_state=bool(config.env_state_dim))
    errors = []
    for i in np.linspace(0, len(data) - 1, min(frames, len(data))).astype(int):
        sample = data[int(i)]
        obs = {key: sample[key] for key in (contract.OBS_IMAGE, contract.OBS_DEPTH,
                                            contract.OBS_STATE, contract.OBS_INSTRUCTION,
                                            contract.OBS_ENV_STATE) if key in sample}
        obs['seed'] = int(i)
        actions = policy.infer(obs)['actions'][:steps, :6]
        errors.append(np.abs(actions - sample[contract.ACTION][:steps, :6]).mean())
    return float(np.mean(errors))


def format_table(results: list) -> str:
    """The results as a fixed-width table, one row per policy."""
    head = (f"{'policy':24s} {'episodes':>8s} {'success':>8s} {'time s':>7s} {'dist m':>7s} "
            f"{'chunks':>6s} {'infer p50/p95 ms':>17s} {'obs->chunk p50/p95 ms':>22s}")
    rows = [head, '-' * len(head)]
    for r in results:
        s = r.summary()
        rows.append(f"{s['policy']:24s} {s['episodes']:8d} {s['success_rate']:8.0%} "
                    f"{s['mean_episode_s']:7.1f} {s['mean_final_distance_m']:7.3f} "
                    f"{s['chunks']:6d} {s['infer_p50_ms']:8.1f}/{s['infer_p95_ms']:<8.1f} "
                    f"{s['delay_p50_ms']:11.1f}/{s['delay_p95_ms']:<10.1f}")
    return '\n'.join(rows)


def save_plots(results: list, out_dir: str | Path) -> Path:
    """Success rate and final grasp-to-cube distance per policy, as one PNG (matplotlib Agg)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [r.name for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.bar(names, [r.summary()['success_rate'] for r in results], color='tab:green')
    left.set_ylim(0, 1)
    left.set_ylabel('success rate')
    right.boxplot([r.final_distance_m or [np.nan] for r in results])
    right.set_xticks(range(1, len(names) + 1), names)
    right.set_ylabel('final grasp-to-cube distance (m)')
    for axis in (left, right):
        axis.tick_params(axis='x', rotation=20)
    fig.tight_layout()
    path = out / 'eval.png'
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_results(results: list, out_dir: str | Path) -> Path:
    """All episodes and summaries as results.json."""
    path = Path(out_dir) / 'results.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{**asdict(r), 'summary': r.summary()} for r in results],
                               indent=1) + '\n')
    return path


def _slug(name: str) -> str:
    return ''.join(c if c.isalnum() or c in '-_' else '_' for c in name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='vla-eval', description=__doc__.split('\n\n')[0])
    parser.add_argument('--checkpoint', action='append', default=[],
                        help='policy checkpoint directory (repeat for several)')
    parser.add_argument('--expert', action='store_true', help='also run the scripted expert')
    parser.add_argument('--random', action='store_true', help='also run a random-weight model')
    parser.add_argument('--task', default='pick_red_cube', help='sim task (sim/tasks.py)')
    parser.add_argument('--episodes', type=int, default=10, help='episodes per policy')
    parser.add_argument('--seed', type=int, default=HELD_OUT_SEED,
                        help='held-out start seed (episodes use seed+1 ...)')
    parser.add_argument('--max-seconds', type=float, help='simulated s per episode '
                        "(default: the task's budget)")
    parser.add_argument('--action-rate', type=float, default=0.0,
                        help="chunk step rate, Hz; 0 = the checkpoint's (its dataset fps)")
    parser.add_argument('--real-time', dest='lockstep', action='store_false',
                        help='simulate on wall time instead of in lock-step')
    parser.add_argument('--inference-delay', type=float, default=INFERENCE_DELAY_S,
                        help='lock-step: simulated s from observation to published chunk')
    parser.add_argument('--out', default='out/eval', help='plots, strips, results.json')
    parser.add_argument('--no-progress', dest='progress', action='store_false')
    opts = parser.parse_args(argv)
    specs = [PolicySpec('expert', expert=True)] if opts.expert else []
    specs += [PolicySpec(Path(c).name if Path(c).name.startswith('step_') is False
                         else Path(c).parent.parent.name, checkpoint=c,
                         action_rate_hz=opts.action_rate) for c in opts.checkpoint]
    specs += [PolicySpec('random-weight', action_rate_hz=opts.action_rate)] if opts.random else []
    if not specs:
        parser.error('nothing to evaluate: pass --checkpoint DIR, --expert or --random')
    from vla_nodes.orchestration.logs import node_logs_to
    log = node_logs_to(opts.out)
    results = [evaluate(s, opts.episodes, opts.task, opts.seed, opts.max_seconds, opts.out,
                        can_name=f'vla_eval_{i}', progress=opts.progress,
                        lockstep=opts.lockstep, inference_delay_s=opts.inference_delay)
               for i, s in enumerate(specs)]
    print(format_table(results))
    print(f'plots: {save_plots(results, opts.out)}  results: {save_results(results, opts.out)}')
    if log:
        print(f"nodes' log: {log}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
