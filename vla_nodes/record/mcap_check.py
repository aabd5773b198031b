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

"""Check an MCAP file's structure before a reader trusts its lengths.

Where it fits: `bag_read.py` runs `check_mcap` before handing a bag to rosbags, `repair.py` uses
it to tell a damaged bag from a finished one. rosbags and `mcap` read a record, a chunk or an
index entry by allocating the length the file states; a flipped bit makes that 2**60 bytes
(MemoryError) or a negative size. Here every length is compared with what the file holds, reading
only record headers (a few bytes per chunk, however large the bag), so a damaged file is refused
before anything large is allocated. Layout: https://mcap.dev/spec (records: opcode u8, length u64).
"""

from pathlib import Path
import struct

MAGIC = b'\x89MCAP0\r\n'
HEADER, FOOTER, CHUNK, CHUNK_INDEX = 0x01, 0x02, 0x06, 0x08
FOOTER_SIZE = 1 + 8 + 20  # opcode, length, summary_start u64, summary_offset_start u64, crc u32


class McapDamage(ValueError):
    """Where and how an MCAP file's structure is broken (bag_read turns it into a BagError)."""


def check_mcap(file: Path) -> None:
    """Raise McapDamage unless every record of `file` fits in it and the indexes point at chunks.

    Checked: both magics, the footer, record lengths (each record inside the file, the records
    ending exactly at the footer), each chunk's compression name and data length inside its
    record, the footer's summary offset on a record boundary, and every chunk index naming a
    chunk with the same compression and sizes.
    """
    size = file.stat().st_size
    with file.open('rb') as stream:
        if stream.read(len(MAGIC)) != MAGIC:
            raise McapDamage('it does not start with the MCAP magic: not an MCAP file')
        footer_at = size - len(MAGIC) - FOOTER_SIZE
        stream.seek(max(0, footer_at))
        footer = stream.read(FOOTER_SIZE + len(MAGIC))
        if footer_at < len(MAGIC) or footer[FOOTER_SIZE:] != MAGIC:
            raise McapDamage('it ends without the MCAP footer (truncated or unfinished)')
        opcode, length, summary_start = struct.unpack_from('<BQQ', footer)
        if (opcode, length) != (FOOTER, 20):
            raise McapDamage(f'its footer record at byte {footer_at} is broken')
        records, chunks = _walk(stream, footer_at)
        if summary_start and summary_start not in records and summary_start != footer_at:
            raise McapDamage(f'its footer points the summary at byte {summary_start}, which is '
                             f'not the start of a record')
        for offset in records:
            if records[offset][0] == CHUNK_INDEX:
                _check_chunk_index(stream, offset, records[offset][1], chunks)


def _walk(stream, end: int) -> tuple[dict, dict]:
    """{offset: (opcode, length)} of the records before the footer, {offset: chunk fields}."""
    records, chunks, pos = {}, {}, len(MAGIC)
    while pos < end:
        stream.seek(pos)
        head = stream.read(9)
        if len(head) < 9:
            raise McapDamage(f'the record at byte {pos} is cut off')
        opcode, length = struct.unpack('<BQ', head)
        if length > end - pos - 9:
            raise McapDamage(f'the record at byte {pos} (opcode {opcode:#04x}) claims {length} '
                             f'bytes, more than the {end - pos - 9} left before the footer')
        if pos == len(MAGIC) and opcode != HEADER:
            raise McapDamage('its first record is not the MCAP header')
        records[pos] = (opcode, length)
        if opcode == CHUNK:
            chunks[pos] = _chunk_fields(_Body(stream, pos, length), pos)
        pos += 9 + length
    return records, chunks


class _Body:
    """Bounded reads inside one record: a length past the record's end is damage."""

    def __init__(self, stream, offset: int, length: int):
        self.stream, self.offset, self.left = stream, offset, length
        stream.seek(offset + 9)

    def read(self, fmt: str):
        raw = self.take(struct.calcsize(fmt))
        return struct.unpack(fmt, raw)[0] if len(fmt) == 2 else struct.unpack(fmt, raw)

    def take(self, count: int) -> bytes:
        if count > self.left:
            raise McapDamage(f'a field of the record at byte {self.offset} claims {count} bytes, '
                             f'more than the {self.left} left in the record')
        self.left -= count
        return self.stream.read(count)

    def text(self) -> bytes:
        return self.take(self.read('<I'))


def _chunk_fields(body: _Body, offset: int) -> tuple:
    _, _, uncompressed, _ = body.read('<QQQI')
    compression = body.text()
    compressed = body.read('<Q')
    if compressed > body.left:
        raise McapDamage(f'the chunk at byte {offset} claims {compressed} bytes of data, more '
                         f'than the {body.left} left in it')
    if compression == b'' and uncompressed != compressed:
        raise McapDamage(f'the uncompressed chunk at byte {offset} states {uncompressed} bytes '
                         f'but holds {compressed}')
    return compression, compressed, uncompressed


def _check_chunk_index(stream, offset: int, length: int, chunks: dict) -> None:
    body = _Body(stream, offset, length)
    _, _, chunk_at, _ = body.read('<QQQQ')
    body.take(body.read('<I'))  # message index offsets
    body.read('<Q')
    fields = (body.text(), *body.read('<QQ'))
    if chunks.get(chunk_at) != fields:
        raise McapDamage(f'the chunk index at byte {offset} does not match a chunk at byte '
                         f'{chunk_at}')
