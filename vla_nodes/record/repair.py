"""Finish a bag whose recorder died before closing it (SIGKILL, power cut, full disk).

Where it fits: `record/bag.py`'s BagWriter flushes every second (a complete MCAP chunk handed to
the OS) and keeps an `UNFINISHED_MARKER` file with the bag's metadata until `metadata.yaml` is
written. rosbags refuses such a bag (no `metadata.yaml`, no MCAP footer). `repair_bag(path)` reads
the MCAP file record by record with the `mcap` library's StreamReader, as `mcap recover` does, and
stops at the first incomplete record: every chunk written before the crash is kept, the torn one
at the end is not. The messages go into a new, finished bag (rosbags Writer, same metadata
version, the marker's metadata plus a `repair` entry) that replaces the storage file; the damaged
file is kept beside it as `<name>.mcap.damaged` unless asked otherwise. `vla-record --repair BAG`
is the command line.
"""

from contextlib import suppress
import json
from pathlib import Path
import shutil
import struct

from mcap.exceptions import InvalidMagic, McapError
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_types_from_msg, get_typestore, Stores

from vla_nodes.record.bag import (
    BagError, decode_custom_data, encode_custom_data, LATCHED_TOPICS, offered_qos,
    read_metadata, UNFINISHED_MARKER)
from vla_nodes.ros import msgs

DAMAGED_SUFFIX = '.damaged'
MCAP_MAGIC = b'\x89MCAP0\r\n'  # first and last 8 bytes of a finished MCAP file


def needs_repair(path: str | Path) -> bool:
    """Whether the bag folder `path` is unfinished: no metadata.yaml, BagWriter's marker still
    there, or an MCAP file that does not end with the MCAP magic (no footer).

    Raises:
        BagError: `path` is not a folder.
    """
    path = Path(path)
    if not path.is_dir():
        raise BagError(f'{path} is not a bag folder; give the folder that holds the .mcap file')
    if not (path / 'metadata.yaml').is_file() or (path / UNFINISHED_MARKER).is_file():
        return True
    for file in path.glob('*.mcap'):
        with file.open('rb') as stream:
            stream.seek(max(0, file.stat().st_size - len(MCAP_MAGIC)))
            if stream.read() != MCAP_MAGIC:
                return True
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
    work.mkdir()
    try:
        writer = Writer(work / path.name, version=int(marker.get('version', 8)),
                        storage_plugin=StoragePlugin.MCAP)
        writer.open()
        try:
            report = _copy_records(storage, writer)
            metadata = decode_custom_data(marker.get('custom_data'))
            metadata['repair'] = {k: report[k] for k in (
                'messages', 'salvaged_bytes', 'discarded_bytes', 'stopped_at')}
            for key, value in encode_custom_data(metadata).items():
                writer.set_custom_data(key, value)
            writer.close()
        except BaseException:
            writer.abort()
            raise
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
    with suppress(FileNotFoundError, json.JSONDecodeError):
        return json.loads((path / UNFINISHED_MARKER).read_text(encoding='utf-8'))
    with suppress(BagError, OSError):
        return {'version': 8, 'custom_data': encode_custom_data(read_metadata(path))}
    return {'version': 8, 'custom_data': {}}


def _copy_records(source: Path, writer: Writer) -> dict:
    """Write every message of `source` up to its first incomplete record with `writer`."""
    schemas, connections, counts = {}, {}, {}
    stopped_at, good_bytes = 'end of file', 0
    with source.open('rb') as stream:
        try:
            for record in StreamReader(stream, record_size_limit=1 << 32).records:
                if isinstance(record, Schema):
                    schemas[record.id] = record
                elif isinstance(record, Channel) and record.id not in connections:
                    # (a finished file repeats its channels in the summary section)
                    connections[record.id] = _add_connection(writer, record, schemas)
                elif isinstance(record, Message) and record.channel_id in connections:
                    conn = connections[record.channel_id]
                    writer.write(conn, record.log_time, record.data)
                    counts[conn.topic] = counts.get(conn.topic, 0) + 1
                good_bytes = stream.tell()
        except InvalidMagic as exc:
            raise BagError(f'{source} is not an MCAP file ({exc}); nothing to repair') from exc
        except (McapError, struct.error, ValueError) as exc:
            stopped_at = f'incomplete record at the end ({type(exc).__name__})'
    size = source.stat().st_size
    if good_bytes == size and stopped_at != 'end of file':
        stopped_at = 'end of file, without the MCAP summary and footer'
    return {'messages': sum(counts.values()), 'topics': counts, 'salvaged_bytes': good_bytes,
            'discarded_bytes': max(0, size - good_bytes), 'stopped_at': stopped_at}


def _add_connection(writer: Writer, channel: Channel, schemas: dict):
    schema = schemas.get(channel.schema_id)
    if schema is None:
        raise BagError(f'channel {channel.topic} refers to schema {channel.schema_id}, which the '
                       f'file does not hold: it was not written by BagWriter')
    text = schema.data.decode('utf-8')
    return writer.add_connection(channel.topic, schema.name, msgdef=text,
                                 rihs01=_type_hash(schema.name, text),
                                 offered_qos_profiles=[offered_qos(channel.topic,
                                                                   LATCHED_TOPICS)])


def _type_hash(type_name: str, text: str) -> str:
    """RIHS01 hash: from the suite's type store, else from the definition stored in the file."""
    with suppress(Exception):
        return msgs.type_hash(type_name)
    store = get_typestore(Stores.EMPTY)
    store.register(get_types_from_msg(text, type_name))
    return store.hash_rihs01(type_name)
