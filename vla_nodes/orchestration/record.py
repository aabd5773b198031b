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

"""vla-record: episode control for teleop_recorder_node, demos in simulation, bag repair.

Where it fits: the recorder node (`nodes/teleop_recorder_node.py`) records; this is the terminal
that drives it through its services and shows what its `/diagnostics` report.

    vla-record [--launch FILE [name:=value ...]]
        Interactive: type start (s), stop (t), discard (d), next (n: stop, then start), quit (q)
        and Enter; the screen shows the saved episode count, the state and live per-topic rates.
        With rclpy it talks to a running recorder; without ROS (or with --launch) it runs the
        launch file's graph in this process.
    vla-record --sim --task pick_red_cube --episodes 5 [--output-dir D] [--seed S]
        Headless demos: runs launch/sim_record.launch.yaml in this process (the scripted expert
        plays the leader arm over the CAN bus, the driver only listens) and for each episode
        resets the simulation, starts recording, waits for `/sim/episode_status` to say
        'success' or 'failure', and stops. Failures are kept, marked `outcome: failure` in the
        bag metadata (a dataset can filter them; they are also negatives for evaluation), unless
        --discard-failures. Each bag's metadata holds the episode's seed. The simulation runs in
        lock-step (as fast as the graph keeps up, every episode recorded from its first
        instant) unless --real-time.
    vla-record --repair BAG [BAG ...]
        Finish bags left unfinished by a killed recorder (record/repair.py).
"""

import argparse
from pathlib import Path
import queue
import sys
import threading
import time
from typing import Callable, Iterable

from vla_nodes.cli_errors import run_cli
from vla_nodes.orchestration.episodes import (call_service, open_graph, RESET_SERVICE,
                                              SimEpisodes, TERMINAL)

RECORDER = '/teleop_recorder_node'
SIM_LAUNCH = 'sim_record.launch.yaml'
_ALIASES = {'s': 'start', 't': 'stop', 'd': 'discard', 'n': 'next', 'q': 'quit'}
COMMANDS = {**_ALIASES, **{c: c for c in _ALIASES.values()}, '': '', 'status': ''}
HELP = 'commands: [s]tart  s[t]op  [d]iscard  [n]ext  [q]uit  (then Enter; Enter alone: refresh)'


class RecorderControl:
    """The recorder's services and its /diagnostics status, on a node of the caller's.

    Args:
        node: any node (rclpy or local) spun by the caller's executor.
        recorder: the recorder node's fully qualified name.
    """

    def __init__(self, node, recorder: str = RECORDER) -> None:
        from vla_nodes import contract, ros
        from vla_nodes.ros.msgs import diagnostic_msgs, rcl_interfaces, std_srvs
        self._recorder = recorder
        self._clients = {a: node.create_client(std_srvs.Trigger, f'{recorder}/{a}_episode')
                         for a in ('start', 'stop', 'discard')}
        self._params = node.create_client(rcl_interfaces.SetParameters,
                                          f'{recorder}/set_parameters')
        self._status = None
        node.create_subscription(diagnostic_msgs.DiagnosticArray, contract.DIAGNOSTICS_TOPIC,
                                 self._on_diagnostics, 50,
                                 callback_group=ros.ReentrantCallbackGroup())

    def wait(self, timeout_s: float) -> bool:
        """Whether the recorder's services appeared within `timeout_s`."""
        return all(c.wait_for_service(timeout_sec=timeout_s) for c in self._clients.values())

    def call(self, action: str, timeout_s: float = 60.0) -> tuple[bool, str]:
        """Call `<recorder>/<action>_episode`; (success, message: the bag path or the error)."""
        service = f'{self._recorder}/{action}_episode'
        try:
            response = call_service(self._clients[action], service, timeout_s)
        except RuntimeError as err:
            return False, str(err)
        return bool(response.success), response.message

    def set_episode_metadata(self, entries: list[str], timeout_s: float = 30.0) -> None:
        """Set the recorder's `episode_metadata` ('key=value' into the next bags).

        Through its `~/set_parameters` service, as `ros2 param set` does; RuntimeError if refused.
        """
        from vla_nodes.ros import Parameter
        from vla_nodes.ros.msgs import rcl_interfaces
        service = f'{self._recorder}/set_parameters'
        if not self._params.wait_for_service(timeout_sec=timeout_s):
            raise RuntimeError(f'{service} is not available')
        request = rcl_interfaces.SetParameters.Request(
            parameters=[Parameter('episode_metadata', value=list(entries)).to_parameter_msg()])
        result = call_service(self._params, service, timeout_s, request).results[0]
        if not result.successful:
            raise RuntimeError(f'{service} refused episode_metadata: {result.reason}')

    def status(self) -> dict:
        """The recorder's last diagnostics: level, message, state, episodes, rates {topic: Hz}."""
        status = self._status
        if status is None:
            return {}
        values = {v.key: v.value for v in status.values}
        rates = {k.split(':', 1)[1]: float(v) for k, v in values.items() if k.startswith('rate:')}
        level = status.level  # bytes under rclpy, int in the local backend
        return {'level': level[0] if isinstance(level, bytes) else int(level),
                'message': status.message, 'rates': rates,
                **{k: v for k, v in values.items() if ':' not in k}}

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name == self._recorder:
                self._status = status


def format_status(status: dict) -> str:
    """The screen: episodes saved, state, then one line per topic with its live rate."""
    if not status:
        return "waiting for the recorder's diagnostics ..."
    state = status.get('state', '?')
    if state == 'recording':
        state += f" {status.get('episode', '')} ({float(status.get('elapsed_s', 0)):.1f} s)"
    level = ('OK', 'WARN', 'ERROR', 'STALE')[min(status['level'], 3)]
    lines = [f"episodes saved: {status.get('episodes', '?')}   state: {state}   "
             f"dropped: {status.get('dropped', '?')}",
             f'recorder: {level} {status["message"]}']
    lines += [f'  {rate:8.1f} Hz  {topic}' for topic, rate in sorted(status['rates'].items())]
    return '\n'.join(lines)


def interactive(control: RecorderControl, lines: Iterable[str],
                write: Callable[[str], None] = print, refresh_s: float = 2.0,
                clear_screen: bool = False) -> int:
    """Read commands from `lines` (e.g. sys.stdin) until quit or the end; returns 0.

    The status is redrawn every `refresh_s` seconds and after each command. A running episode
    is stopped (saved) on quit.
    """
    commands: queue.Queue = queue.Queue()

    def feed():
        for line in lines:
            commands.put(line.strip().lower())
        commands.put('quit')
    threading.Thread(target=feed, name='vla_record_input', daemon=True).start()
    write(HELP)
    last = ''
    while True:
        try:
            command = COMMANDS.get(commands.get(timeout=refresh_s), None)
        except queue.Empty:
            command = ''
        if command is None:
            write(f'unknown command; {HELP}')
            continue
        if command in ('start', 'stop', 'discard'):
            last = _report(command, control.call(command))
        elif command == 'next':
            stopped = control.call('stop')
            last = _report('stop', stopped) + '\n' + _report('start', control.call('start'))
        elif command == 'quit':
            stopped = control.call('stop')  # save a running episode; none running is fine
            if stopped[0]:
                write(_report('stop', stopped))
            return 0
        screen = format_status(control.status()) + ('\n' + last if last else '')
        write(('\033[2J\033[H' + HELP + '\n' if clear_screen else '') + screen)


def _report(action: str, result: tuple[bool, str]) -> str:
    ok, message = result
    return f"{'ok' if ok else 'FAILED'}: {action}: {message}"


# --- --sim: demos from the scripted expert ---------------------------------------------------

def record_sim(task: str, episodes: int, output_dir: str, seed: int = 0,
               discard_failures: bool = False, timeout_s: float = 180.0,
               launch_args: dict | None = None, progress: bool = True,
               lockstep: bool = True) -> list[dict]:
    """Record `episodes` demos of `task` with the scripted expert; one dict per episode.

    In lock-step (the default) time stands still between episodes, so each bag starts before
    its episode's first instant; in real time recording starts just after the reset.

    Returns:
        [{'path': str or None, 'seed': int, 'outcome': 'success' | 'failure' | 'timeout',
          'kept': bool}, ...]

    Raises:
        RuntimeError: the recorder or the simulation does not answer.
    """
    from tqdm import tqdm
    from vla_nodes.paths import package_share
    from vla_nodes.record.bag_meta import read_metadata
    args = {'task': task, 'seed': str(seed), 'output_dir': output_dir, **(launch_args or {})}
    results = []
    with open_graph(package_share() / 'launch' / SIM_LAUNCH, args, lockstep,
                    control='vla_record') as graph:
        control = RecorderControl(graph.control)
        sim = SimEpisodes(graph.control)
        if not control.wait(30.0):
            raise RuntimeError(f'{RECORDER} services did not appear')
        bar = tqdm(total=episodes, unit='episode', desc=task, disable=not progress)
        for k in range(episodes):
            episode_seed = seed + k + 1
            if not lockstep:
                episode_seed = sim.reset(30.0)
            control.set_episode_metadata([f'seed={episode_seed}', f'sim_task={task}'])
            ok, path = control.call('start')
            if not ok:
                raise RuntimeError(f'start_episode failed: {path}')
            if lockstep and sim.reset(30.0) != episode_seed:
                raise RuntimeError(f'{RESET_SERVICE} did not start seed {episode_seed}')
            ended = sim.wait_for(lambda s: s in TERMINAL, timeout_s)
            outcome = sim.status if ended else 'timeout'
            time.sleep(0.5)  # the recorder sees the same status: its metadata says the outcome
            keep = not (discard_failures and outcome != 'success')
            ok, message = control.call('stop' if keep else 'discard')
            if not ok:
                raise RuntimeError(f"{'stop' if keep else 'discard'}_episode failed: {message}")
            if keep and read_metadata(path).get('outcome') != outcome and ended:
                print(f'warning: {path} metadata outcome differs from {outcome!r}',
                      file=sys.stderr)
            results.append({'path': path if keep else None, 'seed': episode_seed,
                            'outcome': outcome, 'kept': keep})
            bar.update(1)
            bar.set_postfix(success=sum(r['outcome'] == 'success' for r in results),
                            failure=sum(r['outcome'] != 'success' for r in results))
        bar.close()
    return results


# --- command line -----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='vla-record', description='Record teleoperated or simulated demos, one bag per '
        'episode, with teleop_recorder_node; repair bags of a killed recorder.',
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=HELP)
    parser.add_argument('launch_args', nargs='*', metavar='name:=value',
                        help='launch arguments for --launch (or --sim)')
    parser.add_argument('--launch', metavar='FILE',
                        help='run this launch file (a path, or a name in vla_nodes/launch) in '
                             'this process and control its recorder')
    parser.add_argument('--recorder', default=RECORDER, help='the recorder node (full name)')
    parser.add_argument('--refresh', type=float, default=2.0, help='screen refresh (s)')
    parser.add_argument('--sim', action='store_true', help='headless demos in simulation')
    parser.add_argument('--task', default='pick_red_cube', help='sim task (sim/tasks.py)')
    parser.add_argument('--episodes', type=int, default=1, help='episodes to record (--sim)')
    parser.add_argument('--output-dir', default='vla_episodes', help='where bags go (--sim)')
    parser.add_argument('--seed', type=int, default=0,
                        help="sim_node's seed; each reset takes the next one (--sim)")
    parser.add_argument('--discard-failures', action='store_true',
                        help='discard failed sim episodes instead of keeping them marked')
    parser.add_argument('--episode-timeout', type=float, default=180.0,
                        help='wall seconds to wait for an episode to end (--sim)')
    parser.add_argument('--real-time', dest='lockstep', action='store_false',
                        help='simulate on wall time instead of in lock-step (--sim)')
    parser.add_argument('--repair', nargs='+', metavar='BAG', help='finish unfinished bags')
    opts = parser.parse_args(argv)
    bad = [a for a in opts.launch_args if ':=' not in a]
    if bad:
        parser.error(f'unexpected arguments {bad}: launch arguments are name:=value')
    launch_args = dict(a.split(':=', 1) for a in opts.launch_args)

    def body() -> int:
        if opts.repair:
            return _repair(opts.repair)
        if opts.sim:
            return _sim(opts, launch_args)
        return _interactive(opts, launch_args)
    try:
        return run_cli('vla-record', body, (RuntimeError, ValueError))
    except KeyboardInterrupt:
        return 130


def _repair(paths: list[str]) -> int:
    from vla_nodes.record.repair import needs_repair, repair_bag
    for path in paths:
        if not needs_repair(path):
            print(f'{path}: finished bag, nothing to repair')
            continue
        report = repair_bag(path)
        print(f"{path}: repaired, {report['messages']} messages kept "
              f"({report['dropped_messages']} damaged messages and {report['discarded_bytes']} "
              f"bytes from an incomplete or damaged record on dropped; {report['stopped_at']}); "
              f"the damaged file is kept as {report['damaged_file']}")
    return 0


def _sim(opts, launch_args: dict) -> int:
    if opts.episodes < 1:
        raise ValueError(f'--episodes must be at least 1, got {opts.episodes}')
    from vla_nodes.sim.tasks import TASKS
    if opts.task not in TASKS:
        raise ValueError(f'unknown task {opts.task!r}; choose one of {", ".join(TASKS)}')
    results = record_sim(opts.task, opts.episodes, opts.output_dir, opts.seed,
                         opts.discard_failures, opts.episode_timeout, launch_args,
                         lockstep=opts.lockstep)
    for r in results:
        print(f"seed {r['seed']:4d}  {r['outcome']:8s}  {r['path'] or '(discarded)'}")
    kept = sum(r['kept'] for r in results)
    wins = sum(r['outcome'] == 'success' for r in results)
    print(f'{kept} episodes saved in {opts.output_dir}: {wins} of {len(results)} succeeded')
    return 0


def _interactive(opts, launch_args: dict) -> int:
    from vla_nodes import ros
    if opts.launch is None and ros.BACKEND != 'rclpy':
        raise RuntimeError('without ROS the recorder must run in this process: pass --launch '
                           'FILE (e.g. --launch sim.launch.yaml), or use --sim')
    launch_file = None  # rclpy: only a control node, talking to a recorder running elsewhere
    if opts.launch is not None:
        launch_file = opts.launch if Path(opts.launch).is_file() else ('vla_nodes', opts.launch)
    with open_graph(launch_file, launch_args, control='vla_record') as graph:
        return _control(RecorderControl(graph.control, opts.recorder), opts)


def _control(control: RecorderControl, opts) -> int:
    if not control.wait(10.0):
        raise RuntimeError(f'no recorder answers at {opts.recorder}/start_episode: start '
                           f'teleop_recorder_node first, or pass --launch FILE')
    return interactive(control, sys.stdin, refresh_s=opts.refresh,
                       clear_screen=sys.stdout.isatty())


if __name__ == '__main__':
    sys.exit(main())
