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

"""Finish a bag whose recorder died before closing it (SIGKILL, power cut, full disk).

Where it fits: `record/bag.py`'s BagWriter flushes every second (a complete MCAP chunk handed to
the OS) and keeps an `UNFINISHED_MARKER` file with the bag's metadata until `metadata.yaml` is
written. rosbags refuses such a bag (no `metadata.yaml`, no MCAP footer). `repair_bag(path)` reads
the MCAP file record by record with the `mcap` library's StreamReader, as `mcap recover` does, and
stops at the first incomplete or damaged record: every chunk written before the crash is kept, the
torn one at the end is not (nor anything after a damaged record in the middle). No field length
larger than what is left of the file is read (`_Bounded`). The messages go into a new, finished
bag (rosbags Writer, same metadata version, the marker's metadata plus a `repair` entry) written
beside the bag, then renamed over the storage file: a full disk leaves the bag untouched. The
damaged file is kept as `<name>.mcap.damaged` unless asked otherwise. `vla-record --repair BAG`
is the command line.
"""

from contextlib import suppress
import errno
import json
import logging
from pathlib import Path
import shutil

from mcap.exceptions import InvalidMagic
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.typesys import get_types_from_msg, get_typestore, Stores

from vla_nodes.cli_errors import one_line
from vla_nodes.record.bag import UNFINISHED_MARKER
from vla_nodes.record.bag_meta import (
    BagError, decode_custom_data, encode_custom_data, read_metadata)
from vla_nodes.record.bag_read import read_bag
from vla_nodes.record.bag_storage import LATCHED_TOPICS, offered_qos
from vla_nodes.record.mcap_check import McapDamage
from vla_nodes.ros import msgs, type_store

logger = logging.getLogger(__name__)
DAMAGED_SUFFIX = '.damaged'


def needs_repair(path: str | Path) -> bool:
    """Whether the bag folder `path` needs `repair_bag`.

    It does when unfinished (no metadata.yaml, or BagWriter's marker still there) or not readable
    whole by `read_bag` (damaged metadata, structure or messages). The last check reads every
    message: repair is rare, a wrong "nothing to repair" would leave the user stuck.

    Raises:
        BagError: `path` is not a folder.
    """
    path = Path(path)
    if not path.is_dir():
        raise BagError(f'{path} is not a bag folder; give the folder that holds the .mcap file')
    if not (path / 'metadata.yaml').is_file() or (path / UNFINISHED_MARKER).is_file():
        return True
    try:
        read_metadata(path)
        for _ in read_bag(path):
            pass
    except BagError:
        return True  # damaged: repair keeps what is intact and rebuilds metadata.yaml
    return False


def repair_bag(path: str | Path, *, keep_damaged: bool = True) -> dict:
    """Rewrite an unfinished MCAP bag as a finished one holding every complete chunk.

    Args:
        path: the bag folder (holding `<name>.mcap`, without or with metadata.yaml).
        keep_damaged: keep the original file as `<name>.mcap.damaged` (else delete it).

    Returns:
        {'path', 'messages', 'topics': {topic: count}, 'salvaged_bytes', 'discarded_bytes',
        'stopped_at': why reading stopped, 'damaged_file': path or None}.

    Raises:
        BagError: not a bag folder, a sqlite3 bag, or a file that is not MCAP.
    """
    path = Path(path)
    storage = _storage_file(path)
    marker = _read_marker(path)
    work = path.parent / f'.{path.name}.repair'  # same file system: the moves are renames
    shutil.rmtree(work, ignore_errors=True)
    try:
        # The bag is only touched by the renames below, once the repaired copy is complete.
        report = _write_repaired(storage, work / path.name, marker)
    except (OSError, WriterError) as exc:
        shutil.rmtree(work, ignore_errors=True)
        full = getattr(exc, 'errno', None) in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
        advice = (f'Free disk space (the copy needs up to {storage.stat().st_size} bytes)'
                  if full else f'Make {path.parent} writable')
        raise BagError(f'cannot repair {path}: writing the repaired copy in {work} failed '
                       f'({one_line(exc)}); the bag is untouched. {advice} and run it '
                       f'again.') from None
    try:
        damaged = storage.with_name(storage.name + DAMAGED_SUFFIX)
        storage.replace(damaged)
        for item in (work / path.name).iterdir():
            item.replace(path / item.name)
        if not keep_damaged:
            damaged.unlink()
        with suppress(FileNotFoundError):
            (path / UNFINISHED_MARKER).unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.update(path=str(path), damaged_file=str(damaged) if keep_damaged else None)
    return report


def _write_repaired(storage: Path, target: Path, marker: dict) -> dict:
    """Write the intact messages of `storage` as a finished bag at `target`; the report."""
    target.parent.mkdir()
    version = marker.get('version', 8)
    writer = Writer(target, version=version if version in (8, 9) else 8,
                    storage_plugin=StoragePlugin.MCAP)
    writer.open()
    try:
        report = _copy_records(storage, writer)
        try:
            metadata = decode_custom_data(marker.get('custom_data'))
        except (ValueError, TypeError):
            metadata = {}  # damaged beyond use: the messages matter more
        metadata['repair'] = {k: report[k] for k in (
            'messages', 'dropped_messages', 'salvaged_bytes', 'discarded_bytes', 'stopped_at')}
        for key, value in encode_custom_data(metadata).items():
            writer.set_custom_data(key, value)
        writer.close()
    except BaseException:
        with suppress(Exception):
            writer.abort()
        raise
    return report


def _storage_file(path: Path) -> Path:
    if not path.is_dir():
        raise BagError(f'{path} is not a bag folder; give the folder that holds the .mcap file')
    if list(path.glob('*.db3')):
        raise BagError(f'{path} is a sqlite3 bag: its messages are committed every flush; '
                       f'rebuild metadata.yaml with `ros2 bag reindex {path} -s sqlite3`')
    files = sorted(path.glob('*.mcap'))
    if len(files) != 1:
        raise BagError(f'{path} should hold exactly one .mcap file, found '
                       f'{[f.name for f in files]}; repair works on bags written by BagWriter')
    return files[0]


def _read_marker(path: Path) -> dict:
    """The metadata BagWriter left in the folder; without it, metadata.yaml's, else none."""
    with suppress(OSError, ValueError):
        marker = json.loads((path / UNFINISHED_MARKER).read_text(encoding='utf-8'))
        if isinstance(marker, dict):
            return marker
    with suppress(BagError, OSError):
        return {'version': 8, 'custom_data': encode_custom_data(read_metadata(path))}
    return {'version': 8, 'custom_data': {}}


def _copy_records(source: Path, writer: Writer) -> dict:
    """Write every decodable message of `source` up to its first damaged record with `writer`."""
    copy = _Copy(writer)
    stopped_at, good_bytes = 'end of file', 0
    size = source.stat().st_size
    with source.open('rb') as stream:
        records = StreamReader(_Bounded(stream, size), record_size_limit=size).records
        while True:
            try:
                record = next(records)
            except StopIteration:
                good_bytes = stream.tell()  # the closing magic, after the footer
                break
            except InvalidMagic as exc:
                if good_bytes:
                    stopped_at = 'damaged MCAP magic at the end'
                    break
                raise BagError(f'{source} is not an MCAP file ({exc}); nothing to repair, '
                               f'record the episode again') from None
            except MemoryError:
                raise  # a length got past _Bounded: a bug, not damage
            except Exception as exc:  # noqa: BLE001 - any damage ends the intact part
                stopped_at = (f'incomplete or damaged record at byte {good_bytes} '
                              f'({type(exc).__name__})')
                break
            copy.take(record)
            good_bytes = stream.tell()
    if good_bytes == size and stopped_at != 'end of file':
        stopped_at = 'end of file, without the MCAP summary and footer'
    return {'messages': sum(copy.counts.values()), 'topics': copy.counts,
            'dropped_messages': copy.dropped, 'salvaged_bytes': good_bytes,
            'discarded_bytes': max(0, size - good_bytes), 'stopped_at': stopped_at}


class _Copy:
    """Remembers schemas and channels; writes the messages that read back, counts the rest."""

    def __init__(self, writer: Writer):
        self.writer, self.schemas, self.connections = writer, {}, {}
        self.counts, self.dropped = {}, 0
        self._known = type_store.typestore().fielddefs

    def take(self, record) -> None:
        if isinstance(record, Schema):
            self.schemas[record.id] = record
        elif isinstance(record, Channel) and record.id not in self.connections:
            # (a finished file repeats its channels in the summary section)
            try:
                self.connections[record.id] = _add_connection(self.writer, record, self.schemas)
            except Exception as exc:  # noqa: BLE001 - a damaged channel or schema
                self.connections[record.id] = None  # its messages are dropped, not the others
                logger.warning('repair: skipping channel %r: %s', record.topic, exc)
        elif isinstance(record, Message):
            conn = self.connections.get(record.channel_id)
            if conn is not None and 0 <= record.log_time < 1 << 63 and self._reads(record, conn):
                self.writer.write(conn, record.log_time, record.data)
                self.counts[conn.topic] = self.counts.get(conn.topic, 0) + 1
            else:
                self.dropped += 1

    def _reads(self, record, conn) -> bool:
        """Whether read_bag will decode it (types it knows; others are kept as they are)."""
        if conn.msgtype not in self._known:
            return True
        try:
            msgs.deserialize(record.data, conn.msgtype)
        except Exception:  # noqa: BLE001 - damaged bytes
            return False
        return True


class _Bounded:
    """A file whose reads refuse lengths beyond its end: mcap allocates what a field says."""

    def __init__(self, stream, size: int):
        self._stream, self._size = stream, size

    def read(self, count: int = -1) -> bytes:
        if count > self._size - self._stream.tell():
            raise McapDamage(f'a field claims {count} bytes, more than the file has left')
        return self._stream.read(count)

    def tell(self) -> int:
        return self._stream.tell()


def _add_connection(writer: Writer, channel: Channel, schemas: dict):
    schema = schemas.get(channel.schema_id)
    if schema is None:
        raise BagError(f'channel {channel.topic} refers to schema {channel.schema_id}, which the '
                       f'file does not hold: it was not written by BagWriter')
    text, rihs01 = _definition(schema)
    return writer.add_connection(channel.topic, schema.name, msgdef=text, rihs01=rihs01,
                                 offered_qos_profiles=[offered_qos(channel.topic,
                                                                   LATCHED_TOPICS)])


def _definition(schema: Schema) -> tuple[str, str]:
    """Return (definition, RIHS01 hash) of a message type.

    The suite's own for types it knows (the copy in a damaged file may be damaged too), else the
    file's, which must parse.
    """
    if schema.name in type_store.typestore().fielddefs:
        return type_store.msgdef(schema.name)[0], type_store.type_hash(schema.name)
    text = schema.data.decode('utf-8')
    store = get_typestore(Stores.EMPTY)
    store.register(get_types_from_msg(text, schema.name))
    return text, store.hash_rihs01(schema.name)
