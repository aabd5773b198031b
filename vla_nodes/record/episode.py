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

"""Episodes of a recording: the state machine behind teleop_recorder_node, and its audit.

Where it fits: `nodes/teleop_recorder_node.py` maps services, parameters, timers and diagnostics
onto `EpisodeRecorder`, which writes one bag per episode with `record/bag.py`'s BagWriter (a
background thread that flushes every second, so callbacks never wait for the disk and a killed
process keeps what was flushed). No ROS here: stamps are integer nanoseconds of the caller's clock.

States: idle -> recording -> idle. `stop` finishes the bag with an audit in its metadata;
`discard` deletes it; a writer failure (full disk) ends the episode at once, keeps what was
written and reports the error; earlier episodes are never touched.

The audit compares, per topic, what arrived with what was expected (`expected_rates`, Hz):
count, mean rate over the episode, the longest interval between messages against the expected
period, messages dropped by the writer queue or lost before the recorder. A stream that stops
(a camera unplugged) is an error, never hidden; so are drops. While recording, `live()` gives
per-topic rates and the expected streams that went silent, for diagnostics and `vla-record`.
"""

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
import re
import shutil
import threading
from typing import Any, Mapping

from vla_nodes.record.bag import (
    BagWriter, DEFAULT_FLUSH_PERIOD_S, DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_SIZE)
from vla_nodes.record.bag_meta import BagError
from vla_nodes.record.bag_storage import LATCHED_TOPICS

OK, WARN, ERROR = 'ok', 'warn', 'error'
_RANK = {OK: 0, WARN: 1, ERROR: 2}
_EPISODE_DIR = re.compile(r'^episode_(\d+)')


@dataclass(frozen=True)
class RecorderConfig:
    """How episodes are recorded and judged.

    Attributes:
        output_dir: folder receiving one bag folder per episode (created if missing).
        expected_rates: topic -> nominal rate (Hz) the audit checks; other topics are counted.
        latched_topics: topics whose last message opens every episode (transient local).
        storage: 'mcap' or 'sqlite3'.
        flush_period_s: seconds between flushes of the bag to the OS (what a crash can lose).
        queue_size: messages that may wait for the writer thread.
        queue_bytes: bytes that may wait for the writer thread.
        gap_factor: an interval longer than this many expected periods is a gap...
        min_gap_s: ...and longer than this: receive times jitter by tens of ms on a busy
            computer, which is not data loss.
        min_rate_ratio: a mean rate below this fraction of the expected one is flagged.
        stall_timeout_s: an expected stream silent for longer than this (and than
            gap_factor periods) has stopped.
    """

    output_dir: Path
    expected_rates: Mapping[str, float] = field(default_factory=dict)
    latched_topics: tuple = LATCHED_TOPICS
    storage: str = 'mcap'
    flush_period_s: float = DEFAULT_FLUSH_PERIOD_S
    queue_size: int = DEFAULT_QUEUE_SIZE
    queue_bytes: int = DEFAULT_QUEUE_BYTES
    gap_factor: float = 3.0
    min_gap_s: float = 0.1
    min_rate_ratio: float = 0.8
    stall_timeout_s: float = 1.0

    def gap_ns(self, topic: str) -> int | None:
        """The longest interval on `topic` that is not a gap (ns); None when not checked."""
        rate = self.expected_rates.get(topic, 0.0)
        return int(max(self.gap_factor / rate, self.min_gap_s) * 1e9) if rate > 0 else None

    def stall_ns(self, topic: str) -> int:
        """How long `topic` may be silent before it counts as stopped (ns)."""
        rate = self.expected_rates.get(topic, 0.0)
        periods = self.gap_factor / rate if rate > 0 else 0.0
        return int(max(self.stall_timeout_s, periods) * 1e9)


@dataclass
class TopicStats:
    """Arrivals on one topic during an episode (stamps in ns)."""

    count: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    max_gap_ns: int = 0
    gaps: int = 0

    def add(self, stamp_ns: int, gap_ns: int | None) -> None:
        """Count a message; an interval longer than `gap_ns` (None: no limit) is a gap."""
        if self.last_ns is not None:
            interval = stamp_ns - self.last_ns
            self.max_gap_ns = max(self.max_gap_ns, interval)
            if gap_ns is not None and interval > gap_ns:
                self.gaps += 1
        if self.first_ns is None:
            self.first_ns = stamp_ns
        self.count += 1
        self.last_ns = stamp_ns


def audit_topic(stats: TopicStats, expected_hz: float, start_ns: int, end_ns: int,
                config: RecorderConfig, topic: str = '', dropped: int = 0,
                lost: int = 0) -> dict:
    """Judge one topic of an episode [start_ns, end_ns]; see the module docstring."""
    duration = max(0, end_ns - start_ns) / 1e9
    rate = stats.count / duration if duration > 0 else 0.0
    rel = (lambda ns: None if ns is None else round((ns - start_ns) / 1e9, 6))
    result = {'count': stats.count, 'rate_hz': round(rate, 3), 'expected_hz': expected_hz,
              'max_gap_s': round(stats.max_gap_ns / 1e9, 6), 'gaps': stats.gaps,
              'first_s': rel(stats.first_ns), 'last_s': rel(stats.last_ns),
              'dropped': dropped, 'lost': lost}
    problems = []
    if dropped:
        problems.append((ERROR, f'{dropped} messages dropped: the writer queue was full (disk '
                                f'slower than the recording)'))
    if lost:
        problems.append((ERROR, f'{lost} messages lost before the recorder (subscription queue '
                                f'full: the recorder fell behind)'))
    if expected_hz > 0:
        period, stall = 1.0 / expected_hz, config.stall_ns(topic) / 1e9
        if stats.count == 0:
            problems.append((ERROR, f'no messages (expected {expected_hz:g} Hz)'))
        else:
            silent = (end_ns - stats.last_ns) / 1e9
            late = (stats.first_ns - start_ns) / 1e9
            if silent > stall:
                problems.append((ERROR, f'stopped {silent:.2f} s before the end of the episode'))
            if late > stall:
                problems.append((WARN, f'first message {late:.2f} s after the start'))
            if duration > stall and rate < config.min_rate_ratio * expected_hz:
                problems.append((WARN, f'rate {rate:.1f} Hz below the expected '
                                       f'{expected_hz:g} Hz'))
            if stats.gaps:
                problems.append((WARN, f'{stats.gaps} gaps longer than '
                                       f'{config.gap_ns(topic) / 1e9:.3f} s, the longest '
                                       f'{stats.max_gap_ns / 1e9:.3f} s (expected period '
                                       f'{period:.3f} s)'))
    result['level'] = max((level for level, _ in problems), key=_RANK.get, default=OK)
    result['problems'] = [text for _, text in problems]
    return result


def audit_episode(stats: Mapping[str, TopicStats], start_ns: int, end_ns: int,
                  config: RecorderConfig, dropped: Mapping[str, int] | None = None,
                  lost: Mapping[str, int] | None = None) -> dict:
    """The audit saved in the bag: {'level', 'duration_s', 'problems', 'topics': {...}}.

    Every topic seen or expected is listed; 'problems' are '<topic>: <problem>' lines.
    """
    dropped, lost = dropped or {}, lost or {}
    topics = sorted(set(stats) | {t for t, r in config.expected_rates.items() if r > 0}
                    | set(dropped) | set(lost))
    report = {t: audit_topic(stats.get(t, TopicStats()), config.expected_rates.get(t, 0.0),
                             start_ns, end_ns, config, t, dropped.get(t, 0), lost.get(t, 0))
              for t in topics}
    return {'level': max((r['level'] for r in report.values()), key=_RANK.get, default=OK),
            'duration_s': round(max(0, end_ns - start_ns) / 1e9, 6),
            'problems': [f'{t}: {p}' for t, r in report.items() for p in r['problems']],
            'topics': report}


def format_audit(audit: dict) -> str:
    """A text table of an audit, one topic per line, problems below."""
    lines = [f"audit: {audit['level'].upper()}, {audit['duration_s']:.2f} s",
             f"{'topic':52s} {'count':>6s} {'rate':>8s} {'expected':>8s} {'max gap':>8s}"]
    for topic, r in audit['topics'].items():
        expected = f"{r['expected_hz']:g}" if r['expected_hz'] else '-'
        lines.append(f"{topic:52s} {r['count']:6d} {r['rate_hz']:8.1f} {expected:>8s} "
                     f"{r['max_gap_s']:8.3f}")
    lines += [f'  {problem}' for problem in audit['problems']]
    return '\n'.join(lines)


@dataclass
class Episode:
    """A finished episode: where its bag is and what the audit found."""

    path: Path
    audit: dict
    messages: int


class EpisodeRecorder:
    """Records episodes of incoming messages, one bag each; thread-safe, never blocks callers.

    Example:
        recorder = EpisodeRecorder(RecorderConfig(Path('episodes'), {'/joint_states': 200.0}))
        recorder.start(now_ns, {'task': 'pick up the red cube'})
        recorder.on_message('/joint_states', msg, now_ns)   # from subscription callbacks
        episode = recorder.stop(now_ns)                     # bag finished, audit in metadata
    """

    def __init__(self, config: RecorderConfig, metadata: dict | None = None) -> None:
        """Args: config; metadata: custom data of every bag (robot, calibration...)."""
        self.config = config
        self.metadata = dict(metadata or {})
        self.episodes = 0          # saved by this recorder
        self.path: Path | None = None  # the current (or last) episode's bag
        self.error = ''            # why the last episode failed, '' if it did not
        self._lock = threading.Lock()
        self._writer: BagWriter | None = None
        self._start_ns = 0
        self._stats: dict[str, TopicStats] = {}
        self._latched: dict[str, tuple[Any, int]] = {}
        self._seen: dict[str, TopicStats] = {}  # every arrival, recording or not, for live()
        self._window: tuple[int, dict[str, int]] | None = None

    @property
    def recording(self) -> bool:
        return self._writer is not None

    def on_message(self, topic: str, msg: Any, stamp_ns: int) -> str | None:
        """Record a message (when an episode runs). Returns the error that ended it, if any."""
        with self._lock:
            self._seen.setdefault(topic, TopicStats()).add(stamp_ns, None)
            if topic in self.config.latched_topics:
                self._latched[topic] = (msg, stamp_ns)
            writer = self._writer
            if writer is None:
                return None
            self._stats.setdefault(topic, TopicStats()).add(stamp_ns, self.config.gap_ns(topic))
        try:
            writer.write(topic, msg, stamp_ns)
        except BagError as err:
            return self._fail(writer, err)
        return None

    def start(self, now_ns: int, metadata: dict | None = None) -> Path:
        """Open the next episode's bag and write the latched topics' last messages into it.

        Args:
            now_ns: the episode's start (ns, the caller's clock); latched messages get it.
            metadata: custom data for this episode (e.g. the task text), over the recorder's.

        Raises:
            RuntimeError: an episode is already recording.
            BagError: the bag cannot be created (folder not writable, disk full...).
        """
        with self._lock:
            if self._writer is not None:
                raise RuntimeError(f'an episode is already recording into {self.path}; stop or '
                                   f'discard it first')
            self.config.output_dir.mkdir(parents=True, exist_ok=True)
            index = next_episode_index(self.config.output_dir)
            path = self.config.output_dir / (
                f'episode_{index:04d}_{datetime.now().strftime("%Y%m%d_%H%M%S")}')
            info = {'episode_index': index, 'started_at': datetime.now().astimezone().isoformat(),
                    'expected_rates_hz': dict(self.config.expected_rates)}
            writer = BagWriter(path, storage=self.config.storage,
                               metadata={**self.metadata, **info, **(metadata or {})},
                               queue_size=self.config.queue_size,
                               queue_bytes=self.config.queue_bytes,
                               flush_period_s=self.config.flush_period_s,
                               latched_topics=self.config.latched_topics)
            self._writer, self.path, self.error = writer, path, ''
            self._start_ns, self._stats = now_ns, {}
            for topic, (msg, _) in self._latched.items():
                self._stats.setdefault(topic, TopicStats()).add(now_ns, None)
                writer.write(topic, msg, now_ns)
        return path

    def stop(self, now_ns: int, metadata: dict | None = None,
             lost: Mapping[str, int] | None = None) -> Episode | None:
        """Finish the episode's bag with its audit; None when no episode was recording.

        Args:
            now_ns: the episode's end (ns, the caller's clock).
            metadata: more custom data for this bag (e.g. {'outcome': 'success'}).
            lost: messages lost before the recorder during the episode, per topic.

        Raises:
            BagError: the bag could not be finished (it keeps what was flushed; see repair).
        """
        with self._lock:
            writer, self._writer = self._writer, None
            stats, start_ns = self._stats, self._start_ns
        if writer is None:
            return None
        audit = audit_episode(stats, start_ns, now_ns, self.config, writer.dropped_by_topic,
                              lost)
        extra = {'audit': audit, 'duration_s': audit['duration_s'], **(metadata or {})}
        try:
            writer.close(metadata=extra)
        except BagError as err:
            self.error = str(err)
            raise
        self.episodes += 1
        return Episode(writer.path, audit, writer.written)

    def discard(self) -> Path | None:
        """Stop the episode and delete its bag; None when no episode was recording."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is None:
            return None
        try:
            writer.close()
        except BagError:
            pass  # deleted anyway
        shutil.rmtree(writer.path, ignore_errors=True)
        return writer.path

    def live(self, now_ns: int) -> dict:
        """Since the previous call: {'rates': {topic: Hz}, 'silent': {topic: s}, ...}.

        'silent' lists the expected topics without a message for longer than their stall time
        (seconds since their last message, or since the episode started when none came).
        Also: 'recording', 'episode' (path or None), 'elapsed_s', 'episodes', 'written',
        'flushed', 'dropped', 'error'. Checks the writer, so a failed disk ends the episode
        here too.
        """
        writer = self._writer
        if writer is not None and writer.error is not None:
            self._fail(writer, writer.error)
            writer = None
        with self._lock:
            counts = {t: s.count for t, s in self._seen.items()}
            rates = {}
            if self._window is not None and now_ns > self._window[0]:
                span = (now_ns - self._window[0]) / 1e9
                rates = {t: (c - self._window[1].get(t, 0)) / span for t, c in counts.items()}
            self._window = (now_ns, counts)
            silent = {}
            for topic, rate in self.config.expected_rates.items():
                since = self._seen[topic].last_ns if topic in self._seen else None
                if since is None and writer is not None:
                    since = self._start_ns  # never arrived: silent since the episode began
                if rate > 0 and since is not None and now_ns - since > self.config.stall_ns(topic):
                    silent[topic] = round((now_ns - since) / 1e9, 3)
        return {'recording': writer is not None, 'episode': self.path if writer else None,
                'elapsed_s': (now_ns - self._start_ns) / 1e9 if writer else 0.0,
                'episodes': self.episodes, 'rates': rates, 'silent': silent,
                'written': writer.written if writer else 0,
                'flushed': writer.flushed if writer else 0,
                'dropped': writer.dropped if writer else 0, 'error': self.error}

    def close(self, now_ns: int) -> Episode | None:
        """Stop (and save) a running episode, e.g. at shutdown."""
        return self.stop(now_ns, {'outcome': 'interrupted'}) if self.recording else None

    # --- internals ------------------------------------------------------------------------------
    def _fail(self, writer: BagWriter, err: BaseException) -> str:
        """End the episode after a writer error; the bag keeps what was flushed."""
        with self._lock:
            if self._writer is writer:
                self._writer = None
            elif self.error:
                return ''  # already reported
        try:
            writer.close()
        except BagError as closed:
            err = closed
        self.error = (f'recording stopped, episode {writer.path} is incomplete: {err} Earlier '
                      f'episodes are intact; `vla-record --repair {writer.path}` recovers this '
                      f'one up to its last flush.')
        return self.error


def next_episode_index(output_dir: Path) -> int:
    """One more than the highest `episode_NNNN...` folder in `output_dir` (0 when none)."""
    indices = [int(m.group(1)) for p in output_dir.iterdir()
               if p.is_dir() and (m := _EPISODE_DIR.match(p.name))]
    return max(indices, default=-1) + 1
