"""rosbag2 recording and reading with `rosbags`: one bag per episode, never blocking the caller.

Where it fits: `teleop_recorder_node` (through `record/episode.py`) writes with `BagWriter`;
`record/export.py` reads with `read_bag`; `vla-bag-summary PATH` prints what a bag holds.
Bags are rosbag2 folders (`metadata.yaml` + one `.mcap` or `.db3`) in metadata version 8, which
ROS 2 Humble reads (`ros2 bag info/play`; Humble needs `ros-humble-rosbag2-storage-mcap` for MCAP)
as do Jazzy and later (DESIGN.md section 5, research/feasibility.md Q2c).

Custom metadata (task text, robot, calibration) goes to `custom_data` in `metadata.yaml` (and the
copy inside the MCAP), which rosbag2 only allows as str -> str: strings are stored as they are,
anything else as JSON, and the names of the JSON-encoded keys are listed under `JSON_KEYS`.
`read_metadata(path)` gives the original dict back.
"""

import argparse
import atexit
from contextlib import suppress
import json
import logging
from pathlib import Path
import queue
import sys
import threading
from typing import Any, Iterable, Iterator

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.interfaces import (
    Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime)
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from ruamel.yaml import YAML

from vla_nodes import contract
from vla_nodes.ros import msgs

logger = logging.getLogger(__name__)

# About 2 s of the suite's recording load (2 x 200 Hz joint states + a few 30 Hz image streams
# ~ 500 msg/s), i.e. a disk stall of 2 s loses nothing; at most ~0.2 GB of queued images.
DEFAULT_QUEUE_SIZE = 1024
# Topics offered as transient local (latched), so `ros2 bag play` re-latches them.
LATCHED_TOPICS = (contract.TF_STATIC_TOPIC, contract.INSTRUCTION_TOPIC)
JSON_KEYS = 'vla_nodes.json_keys'  # custom_data key listing the JSON-encoded keys
_STOP = object()


class BagError(RuntimeError):
    """A bag that cannot be created, written or read; the message says what to do."""


# --- custom metadata ----------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f'cannot store {type(value).__name__} in bag metadata; use str, numbers, '
                    f'lists, dicts or numpy arrays')


def encode_custom_data(metadata: dict) -> dict[str, str]:
    """{'task': 'pick', 'calibration': {...}} -> rosbag2 custom_data (str -> str)."""
    if JSON_KEYS in metadata:
        raise ValueError(f'{JSON_KEYS!r} is reserved in bag metadata')
    data, json_keys = {}, []
    for key, value in metadata.items():
        if isinstance(value, str):
            data[str(key)] = value
        else:
            data[str(key)] = json.dumps(value, default=_jsonable, sort_keys=True)
            json_keys.append(str(key))
    if json_keys:
        data[JSON_KEYS] = json.dumps(sorted(json_keys))
    return data


def decode_custom_data(data: dict[str, str] | None) -> dict:
    """The inverse of encode_custom_data (numpy arrays come back as lists)."""
    data = dict(data or {})
    json_keys = json.loads(data.pop(JSON_KEYS, '[]'))
    return {k: json.loads(v) if k in json_keys else v for k, v in data.items()}


def read_metadata(path: str | Path) -> dict:
    """Return the custom metadata a BagWriter stored (task, robot, calibration...)."""
    info = _load_metadata_yaml(Path(path))
    return decode_custom_data(info.get('custom_data'))


def _load_metadata_yaml(path: Path) -> dict:
    meta = path / 'metadata.yaml'
    if not meta.is_file():
        raise BagError(
            f'{path} is not a finished rosbag2 bag: {meta} is missing. If the recorder was '
            f'killed before closing the bag, its messages are still in the storage file; '
            f'`ros2 bag reindex` rebuilds metadata.yaml where its storage plugin supports it.')
    return YAML(typ='safe').load(meta.read_text(encoding='utf-8'))['rosbag2_bagfile_information']


# --- writing ------------------------------------------------------------------------------------
def _qos(durability: QosDurability) -> Qos:
    """The QoS offered in metadata: reliable, keep last, as rclpy publishers usually are."""
    depth = 1 if durability == QosDurability.TRANSIENT_LOCAL else 10
    never = QosTime(0, 0)  # 0 = rmw default (infinite)
    return Qos(QosHistory.KEEP_LAST, depth, QosReliability.RELIABLE, durability, never, never,
               QosLiveliness.AUTOMATIC, never, False)


def _make_writer(path: Path, storage: str, version: int, custom: dict[str, str]) -> Writer:
    """A rosbags Writer for `path`, checked here so a bad path fails in the caller."""
    if not path.parent.is_dir():
        raise BagError(f'cannot create bag {path}: the folder {path.parent} does not exist. '
                       f'Create it first (mkdir -p {path.parent}) or choose another folder.')
    if path.exists():
        raise BagError(f'cannot create bag {path}: it already exists and bags are never '
                       f'overwritten. Use a new name per episode or delete the old bag.')
    try:
        plugin = StoragePlugin[storage.upper()]
    except KeyError:
        raise ValueError(f'storage {storage!r}: use "mcap" or "sqlite3"') from None
    try:
        writer = Writer(path, version=version, storage_plugin=plugin)
    except WriterError as exc:
        raise ValueError(f'{exc} Use 8 (readable by Humble) or 9 (Jazzy and later).') from None
    for key, value in custom.items():
        writer.set_custom_data(key, value)
    return writer


def _open_error(path: Path, exc: BaseException) -> BagError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else repr(exc)
    return BagError(f'cannot create bag {path}: {reason}. Check that {path.parent} is '
                    f'writable (permissions, read-only mount, free space) or choose another '
                    f'folder.')


class BagWriter:
    """A rosbag2 bag written by a background thread; `write()` never blocks.

    Messages go into a bounded queue; a thread serializes them (msgs.serialize) and writes them
    with rosbags' Writer. A full queue drops the message (counted in `dropped`, logged). An
    error in the thread (disk full, bad message) is kept in `error` and raised as BagError by
    the next write() or close(). Topics are registered on their first message, with its type,
    definition, RIHS01 hash and a QoS profile (transient local for LATCHED_TOPICS).

    Do not modify a message after passing it to write(): it is serialized later. Publishing
    code creates a new message per publish, as with rclpy.

    Example:
        with BagWriter(episode_dir / 'bag', metadata={'task': 'pick the red cube'}) as bag:
            bag.write(contract.JOINT_STATES_TOPIC, joint_state, stamp_ns)
    """

    def __init__(self, path: str | Path, *, storage: str = 'mcap', version: int = 8,
                 metadata: dict | None = None, queue_size: int = DEFAULT_QUEUE_SIZE,
                 latched_topics: Iterable[str] = LATCHED_TOPICS) -> None:
        """Create the bag folder and start the writer thread.

        Args:
            path: bag folder to create; its parent must exist, the folder itself must not.
            storage: 'mcap' (default) or 'sqlite3'.
            version: rosbag2 metadata version; 8 is readable by Humble, 9 by Jazzy and later.
            metadata: custom data, e.g. {'task': str, 'robot': str, 'calibration': dict}.
            queue_size: messages that may wait for the writer thread before drops start.
            latched_topics: topics recorded with transient-local QoS.

        Raises:
            BagError: the parent folder is missing or not writable, or the bag exists.
            ValueError: unknown storage or version, or metadata that cannot be stored.
        """
        self.path = Path(path)
        self.error: BaseException | None = None
        self._written = 0
        self._dropped = 0
        self._types: dict[str, str] = {}
        self._latched = frozenset(latched_topics)
        self._lock = threading.Lock()
        self._closed = False
        self._writer = _make_writer(self.path, storage, version,
                                    encode_custom_data(metadata or {}))
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        # The thread opens the bag (sqlite3 objects belong to the thread that made them);
        # the constructor waits for it so a bad folder fails here.
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f'BagWriter({self.path.name})',
                                        daemon=True)
        self._thread.start()
        self._opened.wait()
        if self.error is not None:
            self._closed = True
            raise _open_error(self.path, self.error) from self.error
        _OPEN.add(self)

    @property
    def written(self) -> int:
        """Messages written to the bag so far."""
        return self._written

    @property
    def dropped(self) -> int:
        """Messages dropped: queue full, or queued after a writer error."""
        return self._dropped

    def write(self, topic: str, msg: Any, stamp_ns: int) -> bool:
        """Queue a message for the bag without blocking.

        Args:
            topic: topic name, e.g. contract.COLOR_TOPIC.
            msg: a message (local or rclpy class); its type fixes the topic's type.
            stamp_ns: log time, integer nanoseconds (usually the header stamp).

        Returns:
            True if queued, False if dropped because the queue was full.

        Raises:
            BagError: the writer thread failed earlier, or the bag is closed.
            TypeError: the topic was first written with another message type.
        """
        self._raise_if_failed()
        if self._closed:
            raise BagError(f'bag {self.path} is closed; open a new BagWriter to record more')
        self._check_type(topic, msgs.type_name(msg))
        try:
            self._queue.put_nowait((topic, msg, int(stamp_ns)))
        except queue.Full:
            self._count_drop(topic)
            return False
        return True

    def close(self) -> None:
        """Write what is queued, finish the bag (metadata.yaml) and stop the thread.

        Raises:
            BagError: the writer thread failed; the bag holds what was written before.
        """
        if not self._closed:
            self._closed = True
            while True:  # the thread keeps draining, even after an error, until _STOP
                try:
                    self._queue.put(_STOP, timeout=0.1)
                    break
                except queue.Full:
                    if not self._thread.is_alive():
                        break
            self._thread.join()
            _OPEN.discard(self)
        self._raise_if_failed()

    def __enter__(self) -> 'BagWriter':
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # keep the caller's exception; the bag still gets finished
            self.close()
        except BagError as error:
            logger.error('%s', error)

    # -- internals --------------------------------------------------------------------------
    def _check_type(self, topic: str, type_name: str) -> None:
        with self._lock:
            known = self._types.setdefault(topic, type_name)
        if known != type_name:
            raise TypeError(f'topic {topic} is recorded as {known}; cannot also write a '
                            f'{type_name} to it. Use another topic name.')

    def _count_drop(self, topic: str) -> None:
        with self._lock:
            self._dropped += 1
            dropped = self._dropped
        if dropped == 1 or dropped % 100 == 0:
            logger.warning('bag %s: queue full (%d messages), dropped a message on %s '
                           '(%d dropped so far); the disk is slower than the recording',
                           self.path, self._queue.maxsize, topic, dropped)

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise BagError(
                f'recording to {self.path} failed: {self.error!r}. The bag keeps what was '
                f'written before ({self._written} messages). Free disk space or fix the cause, '
                f'then record a new bag.') from self.error

    def _run(self) -> None:
        try:
            self._writer.open()
        except Exception as exc:  # noqa: BLE001 - raised by the constructor
            self.error = exc
            return
        finally:
            self._opened.set()
        connections: dict[str, Any] = {}
        while (item := self._queue.get()) is not _STOP:
            if self.error is not None:
                with self._lock:
                    self._dropped += 1
                continue
            topic, msg, stamp_ns = item
            try:
                if topic not in connections:
                    connections[topic] = self._add_connection(topic, msg)
                self._writer.write(connections[topic], stamp_ns, msgs.serialize(msg))
                self._written += 1
            except Exception as exc:  # noqa: BLE001 - surfaced by the next write()/close()
                self._fail(exc, f'writing a message on {topic}')
        self._finish()

    def _add_connection(self, topic: str, msg: Any) -> Any:
        type_name = msgs.type_name(msg)
        text, _ = msgs.msgdef(type_name)
        durability = (QosDurability.TRANSIENT_LOCAL if topic in self._latched
                      else QosDurability.VOLATILE)
        return self._writer.add_connection(topic, type_name, msgdef=text,
                                           rihs01=msgs.type_hash(type_name),
                                           offered_qos_profiles=[_qos(durability)])

    def _finish(self) -> None:
        try:
            self._writer.close()
        except Exception as exc:  # noqa: BLE001 - surfaced by close()
            self._fail(exc, 'finishing the bag')
            with suppress(Exception):
                self._writer.abort()

    def _fail(self, exc: BaseException, doing: str) -> None:
        if self.error is None:
            self.error = exc
        logger.error('bag %s: failed while %s: %r', self.path, doing, exc)


_OPEN: set[BagWriter] = set()


@atexit.register
def _close_open_writers() -> None:
    """Finish bags left open at interpreter exit (e.g. Ctrl-C), so metadata.yaml is written."""
    for writer in list(_OPEN):
        with suppress(Exception):
            writer.close()


# --- reading ------------------------------------------------------------------------------------
def _open_reader(path: Path) -> AnyReader:
    _load_metadata_yaml(path)  # a clear error for a missing or unfinished bag
    return AnyReader([path], default_typestore=msgs.typestore())


def read_bag(path: str | Path,
             topics: Iterable[str] | None = None) -> Iterator[tuple[str, str, int, Any]]:
    """Yield (topic, type_name, stamp_ns, msg) in log-time order.

    Args:
        path: bag folder (with metadata.yaml).
        topics: only these topics; None for all.

    Yields:
        Messages as the façade's classes (local or rclpy); types unknown to msgs.typestore()
        come as rosbags dataclasses decoded from the definitions stored in the bag.
    """
    wanted = None if topics is None else set(topics)
    known = msgs.typestore().fielddefs
    with _open_reader(Path(path)) as reader:
        connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
        for conn, stamp_ns, raw in reader.messages(connections=connections):
            if msgs.USE_RCLPY or conn.msgtype in known:
                msg = msgs.deserialize(raw, conn.msgtype)
            else:
                msg = reader.deserialize(raw, conn.msgtype)
            yield conn.topic, conn.msgtype, stamp_ns, msg


def summarize(path: str | Path) -> dict[str, dict]:
    """Per topic: {'type', 'count', 'rate_hz', 'first_ns', 'last_ns'}.

    rate_hz is (count - 1) / (last - first), the mean rate between the first and last message
    (0.0 with fewer than two messages); first_ns / last_ns are None for an empty topic.
    """
    stats: dict[str, dict] = {}
    with _open_reader(Path(path)) as reader:
        for conn in reader.connections:
            stats.setdefault(conn.topic, {'type': conn.msgtype, 'count': 0, 'rate_hz': 0.0,
                                          'first_ns': None, 'last_ns': None})
        for conn, stamp_ns, _ in reader.messages():
            topic = stats[conn.topic]
            topic['count'] += 1
            if topic['first_ns'] is None or stamp_ns < topic['first_ns']:
                topic['first_ns'] = stamp_ns
            if topic['last_ns'] is None or stamp_ns > topic['last_ns']:
                topic['last_ns'] = stamp_ns
    for topic in stats.values():
        if topic['count'] > 1 and topic['last_ns'] > topic['first_ns']:
            span_s = (topic['last_ns'] - topic['first_ns']) / 1e9
            topic['rate_hz'] = (topic['count'] - 1) / span_s
    return stats


def format_summary(stats: dict[str, dict]) -> str:
    """A text table of summarize()'s result, one topic per line."""
    header = ('topic', 'type', 'count', 'rate Hz', 'duration s')
    rows = [header] + [
        (topic, s['type'], str(s['count']), f'{s["rate_hz"]:.2f}',
         f'{((s["last_ns"] or 0) - (s["first_ns"] or 0)) / 1e9:.2f}')
        for topic, s in sorted(stats.items())]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return '\n'.join('  '.join(cell.ljust(w) if i < 2 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths)))
                     for row in rows)


def main(argv: list[str] | None = None) -> int:
    """`vla-bag-summary PATH`: print topics, types, counts, rates and the custom metadata."""
    parser = argparse.ArgumentParser(
        prog='vla-bag-summary', description='Summarize a rosbag2 bag: topics, counts, rates.')
    parser.add_argument('path', type=Path, help='bag folder (holding metadata.yaml)')
    args = parser.parse_args(argv)
    try:
        stats = summarize(args.path)
        metadata = read_metadata(args.path)
    except (BagError, OSError) as exc:
        print(f'vla-bag-summary: {exc}', file=sys.stderr)
        return 1
    print(format_summary(stats))
    for key, value in sorted(metadata.items()):
        text = value if isinstance(value, str) else json.dumps(value)
        print(f'{key}: {text if len(text) <= 200 else text[:197] + "..."}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
