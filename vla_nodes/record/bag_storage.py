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

"""The rosbags storage under BagWriter: the QoS a bag offers, opening a writer, flushing it."""

from pathlib import Path
from typing import Iterable

from rosbags.interfaces import (
    Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime)
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.rosbag2.storage_mcap import McapWriter
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer

from vla_nodes import contract
from vla_nodes.record.bag_meta import BagError

# Topics offered as transient local (latched), so `ros2 bag play` re-latches them.
LATCHED_TOPICS = (contract.TF_STATIC_TOPIC, contract.INSTRUCTION_TOPIC)


def offered_qos(topic: str, latched_topics: Iterable[str] = LATCHED_TOPICS) -> Qos:
    """The QoS recorded for `topic`: transient local when latched, else volatile."""
    latched = topic in set(latched_topics)
    return _qos(QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE)


def _qos(durability: QosDurability) -> Qos:
    """The QoS offered in metadata: reliable, keep last, as rclpy publishers usually are."""
    depth = 1 if durability == QosDurability.TRANSIENT_LOCAL else 10
    never = QosTime(0, 0)  # 0 = rmw default (infinite)
    return Qos(QosHistory.KEEP_LAST, depth, QosReliability.RELIABLE, durability, never, never,
               QosLiveliness.AUTOMATIC, never, False)


def make_writer(path: Path, storage: str, version: int, custom: dict[str, str]) -> Writer:
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


def flush_storage(writer: Writer) -> None:
    """Hand what `writer` wrote so far to the OS, so that a killed process leaves it readable.

    rosbags (pinned in setup.py) keeps the pending MCAP chunk in memory until it exceeds 1 MiB
    and commits sqlite3 only on close: this closes the pending chunk (its messages and their
    index) and flushes the file, or commits. These are rosbags internals, hence the pin.
    """
    storage = writer.storage
    if isinstance(storage, McapWriter):
        if storage.chunk.msgs:  # schemas alone stay pending: a chunk needs a message time
            storage.close_chunk()
        storage.bio.flush()
    elif isinstance(storage, Sqlite3Writer):
        storage.conn.commit()


def open_error(path: Path, exc: BaseException) -> BagError:
    """The error for a bag that could not be opened, with what to check."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else repr(exc)
    return BagError(f'cannot create bag {path}: {reason}. Check that {path.parent} is '
                    f'writable (permissions, read-only mount, free space) or choose another '
                    f'folder.')
