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

"""Reading rosbag2 bags with `rosbags`, and `vla-bag-summary PATH`.

Where it fits: `record/export.py`, the tests and `vla-demo` read what `bag.BagWriter` wrote, in
log-time order, as the façade's message classes. `bag.py` re-exports these names.
"""

import argparse
from contextlib import contextmanager
import json
from pathlib import Path
import sys
from typing import Any, Iterable, Iterator

from rosbags.highlevel import AnyReader

from vla_nodes.cli_errors import run_cli
from vla_nodes.record.bag_meta import (
    BagError, damaged_bag, load_metadata_yaml, read_metadata)
from vla_nodes.record.mcap_check import check_mcap, McapDamage
from vla_nodes.ros import msgs, type_store


@contextmanager
def _reading(path: Path):
    """Open a bag for rosbags, every failure of a damaged bag as one BagError.

    The lengths are checked first (mcap_check), so nothing is allocated from a damaged field.
    What the readers still raise on damaged bytes (ReaderError, struct.error, KeyError,
    UnicodeDecodeError, SerdeError, ...) is the bag's fault, not a bug: it becomes the message
    that says to repair it. MemoryError is not caught: it would mean a length got past the check.
    """
    if not (path / 'metadata.yaml').is_file():
        load_metadata_yaml(path)  # the message for a missing or unfinished bag
    try:
        for file in sorted(path.glob('*.mcap')):
            check_mcap(file)
        with AnyReader([path], default_typestore=type_store.typestore()) as reader:
            yield reader
    except (BagError, MemoryError):
        raise
    except McapDamage as exc:
        raise damaged_bag(path, f'{file.name}: {exc}') from None
    except Exception as exc:  # noqa: BLE001 - damaged input, see above
        raise damaged_bag(path, f'{type(exc).__name__}: {exc}') from None


def read_bag(path: str | Path,
             topics: Iterable[str] | None = None) -> Iterator[tuple[str, str, int, Any]]:
    """Yield (topic, type_name, stamp_ns, msg) in log-time order.

    Args:
        path: bag folder (with metadata.yaml).
        topics: only these topics; None for all.

    Yields:
        Messages as the façade's classes (local or rclpy); types unknown to type_store.typestore()
        come as rosbags dataclasses decoded from the definitions stored in the bag.
    """
    wanted = None if topics is None else set(topics)
    known = type_store.typestore().fielddefs
    with _reading(Path(path)) as reader:
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
    with _reading(Path(path)) as reader:
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


def bag_topics(path: str | Path) -> dict[str, tuple[str, int]]:
    """{topic: (type, message count)} from the bag's index, without reading messages."""
    with _reading(Path(path)) as reader:
        counts: dict[str, tuple[str, int]] = {}
        for conn in reader.connections:
            _, count = counts.get(conn.topic, (conn.msgtype, 0))
            counts[conn.topic] = (conn.msgtype, count + conn.msgcount)
        return counts


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
    return run_cli('vla-bag-summary', lambda: _summary(args.path))


def _summary(path: Path) -> int:
    stats = summarize(path)
    metadata = read_metadata(path)
    print(format_summary(stats))
    for key, value in sorted(metadata.items()):
        text = value if isinstance(value, str) else json.dumps(value)
        print(f'{key}: {text if len(text) <= 200 else text[:197] + "..."}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
