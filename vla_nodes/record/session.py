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

"""The recorder node's bookkeeping between episodes, and what its diagnostics say.

Where it fits: `nodes/teleop_recorder_node.py` maps services, subscriptions and timers onto a
`RecordingSession`, which wraps `record.episode.EpisodeRecorder` with what the node learns
between episodes: the latest instruction (the next bag's task), the outcome a status topic
announced, and the subscriptions' loss counters at the start (so a bag's audit counts only its
own losses). Levels are the audit's 'ok' | 'warn' | 'error'; the node maps them onto
DiagnosticStatus. No ROS here: stamps are integer nanoseconds of the node's clock.
"""

from pathlib import Path

from vla_nodes import contract
from vla_nodes.record.episode import Episode, EpisodeRecorder, RecorderConfig
from vla_nodes.record.topics import expected_rates, static_metadata


class RecordingSession:
    """Episodes of one recorder with their task, outcome and losses."""

    def __init__(self, recorder: EpisodeRecorder):
        """Args: recorder: writes the bags."""
        self.recorder = recorder
        self.instruction = ''  # the latest instruction: the next episode's task
        self.outcome = ''      # the latest outcome from the status topic ('' = none)
        self._lost_at_start = {}

    @classmethod
    def from_parameters(cls, p: dict, topics: dict, cameras: list, latched: tuple):
        """The session of teleop_recorder_node's parameters `p`.

        Args:
            p: the node's parameter values by name.
            topics: topic -> message type name of everything recorded (`record_topics`).
            cameras: the camera topic prefixes (`camera_prefix`).
            latched: topics whose last message starts every bag.
        """
        return cls(EpisodeRecorder(RecorderConfig(
            output_dir=Path(p['output_dir']).expanduser(),
            expected_rates=expected_rates(topics, cameras, p['expected_rates'],
                                          p['camera_rate_hz']),
            latched_topics=latched, storage=p['storage'], flush_period_s=p['flush_period_s'],
            queue_size=p['queue_size'], queue_bytes=p['queue_mb'] << 20,
            gap_factor=p['gap_factor'], min_gap_s=p['min_gap_s'],
            stall_timeout_s=p['stall_timeout_s']),
            metadata=static_metadata(p)))

    def on_message(self, topic: str, msg, now_ns: int) -> str:
        """Record `msg`; the error that ended the episode (e.g. a full disk), else ''."""
        if topic == contract.INSTRUCTION_TOPIC:
            self.instruction = msg.data
        return self.recorder.on_message(topic, msg, now_ns) or ''

    def start(self, now_ns: int, lost: dict, metadata: dict) -> Path:
        """Start an episode; `lost`: each subscription's loss counter now.

        Raises:
            RuntimeError, BagError: as `EpisodeRecorder.start`.
        """
        self._lost_at_start = dict(lost)
        return self.recorder.start(now_ns, {'task': self.instruction, **metadata})

    def stop(self, now_ns: int, lost: dict) -> Episode:
        """Finish the episode with its outcome and the messages lost since its start.

        Raises:
            RuntimeError: no episode is recording (saying why the last one failed, if it did).
        """
        lost = {t: n - self._lost_at_start.get(t, 0) for t, n in lost.items()}
        lost = {t: n for t, n in lost.items() if n}
        extra = {'outcome': self.outcome} if self.outcome else {}
        episode = self.recorder.stop(now_ns, extra, lost)
        if episode is None:
            raise RuntimeError('no episode is recording' + (
                f'; the last one failed: {self.recorder.error}' if self.recorder.error else ''))
        return episode

    def discard(self) -> Path:
        """Stop the episode and delete its bag; RuntimeError when none is recording."""
        path = self.recorder.discard()
        if path is None:
            raise RuntimeError('no episode is recording')
        return path

    def live_status(self, now_ns: int, shown: dict) -> tuple:
        """(level or None, message, values): live rates and stopped streams for diagnostics.

        Args:
            now_ns: now on the node's clock.
            shown: the values the diagnostics show now; while idle their `audit:` entries
                (the last episode's audit) are kept.

        Returns:
            level None (with message '') when idle without an error: the level stays.
        """
        live = self.recorder.live(now_ns)
        values = {'state': 'recording' if live['recording'] else 'idle',
                  'episodes': live['episodes'], 'episode': live['episode'] or '',
                  'elapsed_s': live['elapsed_s'], 'written': live['written'],
                  'flushed': live['flushed'], 'dropped': live['dropped']}
        values.update({f'rate:{t}': r for t, r in sorted(live['rates'].items())})
        if not live['recording']:
            values.update({k: v for k, v in shown.items() if k.startswith('audit:')})
        if live['error'] and not live['recording']:
            return 'error', live['error'], values
        if live['recording'] and live['silent']:
            return 'error', 'stopped streams: ' + ', '.join(
                f'{t} silent for {s:.1f} s' for t, s in live['silent'].items()), values
        if live['recording']:
            return ('error' if live['dropped'] else 'ok',
                    f'recording {live["episode"].name}, {live["dropped"]} dropped', values)
        return None, '', values


def saved_status(episode: Episode) -> tuple:
    """(level, message, audit values) of a saved episode for diagnostics."""
    problems = episode.audit['problems']
    message = f'saved {episode.path.name}' + (
        f': {len(problems)} problems: {problems[0]}' if problems else ': audit ok')
    values = {f'audit:{t}': f"{r['level']} {r['count']} msgs {r['rate_hz']:.1f} Hz"
              for t, r in episode.audit['topics'].items()}
    return episode.audit['level'], message, values
