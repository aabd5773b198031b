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

"""rosbag2 recording and reading with `rosbags`: one bag per episode, never blocking the caller.

Where it fits: `teleop_recorder_node` (through `record/episode.py`) writes with `BagWriter`;
`record/export.py` reads with `bag_read.read_bag`; `vla-bag-summary PATH` (`bag_read.main`)
prints what a bag holds.
Bags are rosbag2 folders (`metadata.yaml` + one `.mcap` or `.db3`) in metadata version 8, which
ROS 2 Humble reads (`ros2 bag info/play`; Humble needs `ros-humble-rosbag2-storage-mcap` for MCAP)
as do Jazzy and later (DESIGN.md section 5, research/feasibility.md Q2c).

Custom metadata (task text, robot, calibration) goes to `custom_data` in `metadata.yaml` (and the
copy inside the MCAP), encoded as `bag_meta.py` says; `bag_meta.read_metadata(path)` gives it
back. Reading is `bag_read.py` (`read_bag`, `summarize`).

Crash safety: rosbags writes `metadata.yaml` and the MCAP summary only on close and keeps up to
1 MiB of messages in memory. The writer thread therefore flushes every `flush_period_s` (a new
MCAP chunk handed to the OS, or a sqlite3 commit), and an `UNFINISHED_MARKER` file holding the
metadata stays in the bag folder until the bag is finished. A process killed at any moment leaves
every message written before the last flush; `record/repair.py` (`vla-record --repair BAG`) turns
such a bag into a finished one.
"""

import atexit
from contextlib import suppress
import json
import logging
from pathlib import Path
import queue
import threading
import time
from typing import Any, Iterable

from vla_nodes.record.bag_meta import BagError, encode_custom_data
from vla_nodes.record.bag_storage import (flush_storage, LATCHED_TOPICS, make_writer, offered_qos,
                                          open_error)
from vla_nodes.ros import msgs, type_store

logger = logging.getLogger(__name__)

# Three RGB-D cameras at 30 Hz (colour, depth, 2 camera_infos each), metric depth and three
# 200 Hz streams (joint states, leader, ee pose) are ~1000 msg/s and ~175 MB/s: the queue holds
# up to 1 GiB (~6 s of images), so a disk stall that short loses nothing. When the disk is slower
# than the cameras for longer, images are dropped first: small messages (the joint states, i.e.
# the action and the state) have a reserve of their own on top, and ~30 s of messages fit.
DEFAULT_QUEUE_SIZE = 32768
DEFAULT_QUEUE_BYTES = 1 << 30
SMALL_MESSAGE_BYTES = 64 << 10  # at most this (data + overhead) uses the reserve below
SMALL_RESERVE_BYTES = 64 << 20
# How often the writer thread hands what it wrote to the OS: a killed recorder loses at most this
# much (rosbags also writes a chunk whenever 1 MiB is pending, i.e. about every 640x480 image).
DEFAULT_FLUSH_PERIOD_S = 1.0
# Lives in the bag folder from open until metadata.yaml is written; holds the custom metadata.
UNFINISHED_MARKER = 'vla_unfinished.json'
MESSAGE_OVERHEAD_BYTES = 256  # counted per queued message on top of its `data` field
_STOP = object()


def _payload_size(msg: Any) -> int:
    """Bytes a queued message holds: its `data` field (images) plus a fixed overhead."""
    try:
        return len(msg.data) + MESSAGE_OVERHEAD_BYTES
    except (AttributeError, TypeError):
        return MESSAGE_OVERHEAD_BYTES


class BagWriter:
    """A rosbag2 bag written by a background thread; `write()` never blocks.

    Messages go into a queue bounded in messages and bytes; a thread serializes them
    (msgs.serialize) and writes them with rosbags' Writer, flushing every `flush_period_s`. A
    full queue drops the message (counted in `dropped` and per topic in `dropped_by_topic`,
    logged); small messages have a reserve, so a slow disk costs images before joint states.
    An error in the thread (disk full, bad message) is kept in `error` and raised as BagError
    by the next write() or close(). Topics are registered on their first message, with its type,
    definition, RIHS01 hash and a QoS profile (transient local for LATCHED_TOPICS).

    Do not modify a message after passing it to write(): it is serialized later. Publishing
    code creates a new message per publish, as with rclpy.

    Example:
        with BagWriter(episode_dir / 'bag', metadata={'task': 'pick the red cube'}) as bag:
            bag.write(contract.JOINT_STATES_TOPIC, joint_state, stamp_ns)
    """

    def __init__(self, path: str | Path, *, storage: str = 'mcap', version: int = 8,
                 metadata: dict | None = None, queue_size: int = DEFAULT_QUEUE_SIZE,
                 queue_bytes: int = DEFAULT_QUEUE_BYTES,
                 flush_period_s: float | None = DEFAULT_FLUSH_PERIOD_S,
                 latched_topics: Iterable[str] = LATCHED_TOPICS) -> None:
        """Create the bag folder and start the writer thread.

        Args:
            path: bag folder to create; its parent must exist, the folder itself must not.
            storage: 'mcap' (default) or 'sqlite3'.
            version: rosbag2 metadata version; 8 is readable by Humble, 9 by Jazzy and later.
            metadata: custom data, e.g. {'task': str, 'robot': str, 'calibration': dict}.
            queue_size: messages that may wait for the writer thread before drops start.
            queue_bytes: bytes (message `data` + 256 each) that may wait before drops start;
                messages up to SMALL_MESSAGE_BYTES may use SMALL_RESERVE_BYTES more.
            flush_period_s: seconds between flushes to the OS; None flushes only on close.
            latched_topics: topics recorded with transient-local QoS.

        Raises:
            BagError: the parent folder is missing or not writable, or the bag exists.
            ValueError: unknown storage or version, or metadata that cannot be stored.
        """
        self.path = Path(path)
        self.error: BaseException | None = None
        self._written = 0
        self._flushed = 0
        self._dropped: dict[str, int] = {}
        self._types: dict[str, str] = {}
        self._latched = frozenset(latched_topics)
        self._lock = threading.Lock()
        self._closed = False
        self._metadata = dict(metadata or {})
        self._storage, self._version = storage, version
        self._writer = make_writer(self.path, storage, version,
                                   encode_custom_data(self._metadata))
        if flush_period_s is not None and flush_period_s <= 0:
            raise ValueError(f'flush_period_s must be positive or None, got {flush_period_s}')
        self._flush_period = flush_period_s
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._queue_bytes = queue_bytes
        self._queued_bytes = 0
        # The thread opens the bag (sqlite3 objects belong to the thread that made them);
        # the constructor waits for it so a bad folder fails here.
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f'BagWriter({self.path.name})',
                                        daemon=True)
        self._thread.start()
        self._opened.wait()
        if self.error is not None:
            self._closed = True
            raise open_error(self.path, self.error) from self.error
        _OPEN.add(self)

    @property
    def written(self) -> int:
        """Messages written to the bag so far."""
        return self._written

    @property
    def flushed(self) -> int:
        """Messages handed to the OS by the last flush: a killed process keeps these."""
        return self._flushed

    @property
    def pending(self) -> tuple[int, int]:
        """(messages, bytes) waiting for the writer thread now."""
        with self._lock:
            return self._queue.qsize(), self._queued_bytes

    @property
    def dropped(self) -> int:
        """Messages dropped: queue full, or queued after a writer error."""
        with self._lock:
            return sum(self._dropped.values())

    @property
    def dropped_by_topic(self) -> dict[str, int]:
        """Messages dropped per topic (only topics with drops)."""
        with self._lock:
            return dict(self._dropped)

    @property
    def metadata(self) -> dict:
        """The custom metadata the bag will be finished with."""
        return dict(self._metadata)

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
        size = _payload_size(msg)
        limit = self._queue_bytes + (SMALL_RESERVE_BYTES if size <= SMALL_MESSAGE_BYTES else 0)
        with self._lock:
            full = self._queued_bytes > 0 and self._queued_bytes + size > limit
            if not full:
                self._queued_bytes += size
        if not full:
            try:
                self._queue.put_nowait((topic, msg, int(stamp_ns), size))
                return True
            except queue.Full:
                with self._lock:
                    self._queued_bytes -= size
        self._count_drop(topic)
        return False

    def close(self, metadata: dict | None = None) -> None:
        """Write what is queued, finish the bag (metadata.yaml) and stop the thread.

        Args:
            metadata: custom data added to (or replacing keys of) the constructor's, e.g. an
                audit computed at the end of the episode.

        Raises:
            BagError: the writer thread failed; the bag holds what was written before.
            ValueError: metadata that cannot be stored (the bag is still finished).
        """
        if not self._closed:
            self._closed = True
            try:
                self._set_metadata(metadata or {})
            finally:
                self._stop_thread()
        self._raise_if_failed()

    def _set_metadata(self, metadata: dict) -> None:
        if not metadata:
            return
        merged = {**self._metadata, **metadata}
        encoded = encode_custom_data(merged)  # may raise: nothing changed then
        self._metadata = merged
        for key, value in encoded.items():  # read by the thread only when it finishes
            self._writer.set_custom_data(key, value)

    def _stop_thread(self) -> None:
        while True:  # the thread keeps draining, even after an error, until _STOP
            try:
                self._queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                if not self._thread.is_alive():
                    break
        self._thread.join()
        _OPEN.discard(self)

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

    def _count_drop(self, topic: str, queue_full: bool = True) -> None:
        with self._lock:
            self._dropped[topic] = self._dropped.get(topic, 0) + 1
            dropped = sum(self._dropped.values())
        if queue_full and (dropped == 1 or dropped % 100 == 0):
            logger.warning('bag %s: queue full (%d messages or %d MB), dropped a message on '
                           '%s (%d dropped so far); the disk is slower than the recording',
                           self.path, self._queue.maxsize, self._queue_bytes >> 20, topic,
                           dropped)

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise BagError(
                f'recording to {self.path} failed: {self.error!r}. The bag keeps what was '
                f'written before ({self._written} messages). Free disk space or fix the cause, '
                f'then record a new bag.') from self.error

    def _run(self) -> None:
        try:
            self._writer.open()
            self._write_marker()
        except Exception as exc:  # noqa: BLE001 - raised by the constructor
            self.error = exc
            with suppress(Exception):
                self._writer.abort()
            return
        finally:
            self._opened.set()
        connections: dict[str, Any] = {}
        period = self._flush_period
        next_flush = None if period is None else time.monotonic() + period
        while True:
            timeout = None if next_flush is None else max(0.0, next_flush - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _STOP:
                break
            if item is not None:
                self._write_item(item, connections)
            if next_flush is not None and time.monotonic() >= next_flush:
                self._flush()
                next_flush = time.monotonic() + period
        self._finish()

    def _write_item(self, item: tuple, connections: dict) -> None:
        topic, msg, stamp_ns, size = item
        with self._lock:
            self._queued_bytes -= size
        if self.error is not None:  # the bag failed: the rest of the queue is lost
            self._count_drop(topic, queue_full=False)
            return
        try:
            if topic not in connections:
                connections[topic] = self._add_connection(topic, msg)
            self._writer.write(connections[topic], stamp_ns, msgs.serialize(msg))
            self._written += 1
        except Exception as exc:  # noqa: BLE001 - surfaced by the next write()/close()
            self._fail(exc, f'writing a message on {topic}')

    def _flush(self) -> None:
        if self.error is not None:
            return
        try:
            flush_storage(self._writer)
            self._flushed = self._written
        except Exception as exc:  # noqa: BLE001 - surfaced by the next write()/close()
            self._fail(exc, 'flushing the bag to disk')

    def _write_marker(self) -> None:
        """The metadata, in the bag folder until it is finished (record/repair.py reads it)."""
        marker = {'storage': self._storage, 'version': self._version,
                  'custom_data': encode_custom_data(self._metadata),
                  'note': f'unfinished bag: run `vla-record --repair {self.path}` if the '
                          f'recorder is no longer running'}
        (self.path / UNFINISHED_MARKER).write_text(json.dumps(marker, indent=1),
                                                   encoding='utf-8')

    def _add_connection(self, topic: str, msg: Any) -> Any:
        type_name = msgs.type_name(msg)
        text, _ = type_store.msgdef(type_name)
        return self._writer.add_connection(
            topic, type_name, msgdef=text, rihs01=type_store.type_hash(type_name),
            offered_qos_profiles=[offered_qos(topic, self._latched)])

    def _finish(self) -> None:
        try:
            self._writer.close()
        except Exception as exc:  # noqa: BLE001 - surfaced by close()
            self._fail(exc, 'finishing the bag')
            with suppress(Exception):
                self._writer.abort()
            return
        with suppress(OSError):
            (self.path / UNFINISHED_MARKER).unlink()

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
