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

"""Every CLI reading a bag or a launch file answers damaged input with one line, no traceback.

A real small bag (BagWriter, the topics vla-export needs) and the real bimanual launch and
parameter files are mutated deterministically (seeded): bit flips, truncations, record, chunk and
index length fields set huge, garbage metadata.yaml and recorder marker, launch and parameter
text cut, flipped and spliced. On each, in-process: vla-bag-summary, vla-export and
vla-record --repair (bags), vla-launch --print (launch and parameter files). Each either succeeds
or exits non-zero with exactly one line on stderr, `<prog>: error: ...`, naming the file. Any
other exception fails the test with the case, which replays alone (same seed, same index).
Lengths are refused before allocation (record/mcap_check.py): a MemoryError is a failure too.
"""

from contextlib import redirect_stderr, redirect_stdout
import io
import os
from pathlib import Path
import random
import shutil
import struct
import traceback

import numpy as np
import pytest
import yaml

from vla_nodes import contract
from vla_nodes.nodes.camera_topics import camera_info
from vla_nodes.orchestration import record as cli
from vla_nodes.record import bag_read, export
from vla_nodes.record.bag import BagWriter, UNFINISHED_MARKER
from vla_nodes.ros import image, msgs
from vla_nodes.ros.launch import main as vla_launch
from vla_nodes.ros.msgs import geometry_msgs, sensor_msgs, std_msgs

ROOT = Path(__file__).resolve().parents[1]
# Every kind of damage once per round: 17 bags (x summary, export, repair, summary of the
# repaired bag) and 48 launch/parameter files. VLA_FUZZ_ROUNDS=20 is the deep run; another
# VLA_FUZZ_SEED explores other cases.
SEED = int(os.environ.get('VLA_FUZZ_SEED', '12'))
ROUNDS = int(os.environ.get('VLA_FUZZ_ROUNDS', '1'))
LAUNCH_CASES = 48 * ROUNDS
T0 = 1_700_000_000_000_000_000
MS = 1_000_000
MAGIC, CHUNK, MESSAGE = b'\x89MCAP0\r\n', 0x06, 0x05
FOOTER_SIZE = 1 + 8 + 20  # opcode, length, summary start, summary offset start, crc
HUGE = (2**64 - 1, 2**63 - 1, 2**63, 2**62, 2**40, 2**32 - 1, 2**31)


def make_bag(path: Path, frames: int = 4, size=(12, 16)) -> Path:
    """An exportable episode: camera, depth, infos, joints, leader, pose, instruction."""
    h, w = size
    info = camera_info(np.array([[20.0, 0, w / 2], [0, 20.0, h / 2], [0, 0, 1]]), [0.0] * 5,
                       w, h, 'plumb_bob', T0, 'cam')
    items = [(contract.INSTRUCTION_TOPIC, std_msgs.String(data='pick up the red cube'),
              T0 - 50 * MS)]
    for k in range(frames):
        t = T0 + k * 33 * MS
        items += [(contract.COLOR_TOPIC, image.to_msg(np.full((h, w, 3), 9 * k, np.uint8),
                                                      'rgb8', t, 'cam'), t),
                  (contract.DEPTH_TOPIC, image.to_msg(np.full((h, w), 500 + k, np.uint16),
                                                      '16UC1', t, 'cam'), t),
                  (contract.COLOR_INFO_TOPIC, info, t), (contract.DEPTH_INFO_TOPIC, info, t)]
    for n in range(frames * 4):
        t = T0 - 20 * MS + n * 10 * MS
        header = std_msgs.Header(stamp=msgs.ns_to_stamp(t), frame_id='base_link')
        joints = sensor_msgs.JointState(header=header, name=list(contract.JOINT_NAMES),
                                        position=[0.01 * n] * 7)
        items += [(contract.JOINT_STATES_TOPIC, joints, t),
                  (contract.LEADER_JOINT_STATES_TOPIC, joints, t),
                  (contract.EE_POSE_TOPIC, geometry_msgs.PoseStamped(header=header), t)]
    with BagWriter(path, metadata={'task': 'pick', 'robot': 'piper'},
                   flush_period_s=None) as writer:
        for topic, msg, t in sorted(items, key=lambda item: item[2]):
            writer.write(topic, msg, t)
    return path


# --- mutations: (name, function of (rng, bytes, layout) -> bytes) -------------------------------

def _put(data: bytes, at: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, value % (1 << 8 * struct.calcsize(fmt)))
    return bytes(out)


def flip_bits(rng, data, layout):
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(out))
        out[at] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(rng, data, layout):
    return data[:rng.randrange(len(data))]


def huge_record_length(rng, data, layout):
    return _put(data, rng.choice(layout['records']) + 1, '<Q', rng.choice(HUGE))


def huge_chunk_field(rng, data, layout):
    """uncompressed size, compression name length or data length of the chunk set huge."""
    at = layout['chunk'] + 9
    field = rng.choice([(at + 16, '<Q'), (at + 28, '<I'), (at + 32, '<Q')])
    return _put(data, *field, rng.choice(HUGE))


def huge_inner_length(rng, data, layout):
    """A record length inside the chunk (schema, channel or message) set huge."""
    return _put(data, rng.choice(layout['inner']) + 1, '<Q', rng.choice(HUGE))


def huge_summary_field(rng, data, layout):
    """Any u32 or u64 of the summary section (chunk index, statistics...) set huge."""
    at = rng.randrange(layout['summary'], len(data) - len(MAGIC) - 8)
    return _put(data, at, rng.choice(['<Q', '<I']), rng.choice(HUGE + (len(data),)))


def bad_summary_offset(rng, data, layout):
    at = len(data) - len(MAGIC) - FOOTER_SIZE + 9
    return _put(data, at, '<Q', rng.choice(HUGE + (rng.randrange(len(data)),)))


MCAP_MUTATIONS = [flip_bits, truncate, huge_record_length, huge_chunk_field,
                  huge_inner_length, huge_inner_length, huge_summary_field, bad_summary_offset]


def garbage_bytes(rng, text):
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))


def cut_text(rng, text):
    return text[:rng.randrange(len(text))]


def flip_text(rng, text):
    return flip_bits(rng, text, None)


def splice_text(rng, text):
    """A line replaced by one of YAML's awkward values (wrong types, anchors, tags...)."""
    lines = text.split(b'\n')
    at = rng.randrange(len(lines))
    key = lines[at].split(b':')[0]
    lines[at] = key + b': ' + rng.choice([
        b'[', b'{}', b'[]', b'~', b'- 1', b'!!python/object:os.system x', b'&a [*a]', b'*a',
        b'"\\x00\\xff"', b'99999999999999999999999999', b'1e999', b'.nan', b'$(var nope)',
        b'$(env', b'$(find-pkg-share nope)', b'{ros__parameters: 5}', b'\xff\xfe', b'\t'])
    return b'\n'.join(lines)


TEXT_MUTATIONS = [garbage_bytes, cut_text, flip_text, splice_text]


def metadata_shape(rng, text):
    """Valid YAML, wrong content: a key removed or a value of the wrong type."""
    doc = yaml.safe_load(text)
    info = doc['rosbag2_bagfile_information']
    key = rng.choice(sorted(info))
    if rng.random() < 0.3:
        del info[key]
    else:
        info[key] = rng.choice([None, 'x', -1, 2**70, [1, 'a'], {'a': {}}, [{'name': 5}]])
    return yaml.safe_dump(doc).encode()


# --- running a CLI -------------------------------------------------------------------------------

def run_cli(main, argv: list, prog: str, names: list, case: str) -> int:
    """main(argv) -> exit code; a non-zero one must come with one line naming a file."""
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
        except BaseException as exc:  # noqa: BLE001 - the failure this test exists for
            pytest.fail(f'{case}: {prog} raised {type(exc).__name__}: {exc}\n'
                        f'{"".join(traceback.format_exception(exc))}')
    lines = err.getvalue().splitlines()
    if not code:
        return 0
    assert len(lines) == 1 and lines[0].startswith(f'{prog}: error: '), (case, err.getvalue())
    assert any(str(name) in lines[0] for name in names), (case, lines[0])
    return code


def records(data: bytes, at: int, end: int) -> list:
    """[(offset, opcode, length)] of the MCAP records in data[at:end]."""
    found = []
    while at < end:
        opcode, length = struct.unpack_from('<BQ', data, at)
        found.append((at, opcode, length))
        at += 9 + length
    return found


def layout_of(bag: Path) -> dict:
    """Offsets of the records (top level and inside the single chunk) and of the summary."""
    data = next(bag.glob('*.mcap')).read_bytes()
    top = records(data, len(MAGIC), len(data) - len(MAGIC) - FOOTER_SIZE)
    (chunk, _, _), = [r for r in top if r[1] == CHUNK]
    name_length, = struct.unpack_from('<I', data, chunk + 9 + 28)
    assert name_length == 0  # uncompressed: the records follow the data length field
    length, = struct.unpack_from('<Q', data, chunk + 9 + 32)
    inner = records(data, chunk + 9 + 40, chunk + 9 + 40 + length)
    summary = struct.unpack_from('<Q', data, len(data) - len(MAGIC) - FOOTER_SIZE + 9)[0]
    return {'records': [r[0] for r in top], 'chunk': chunk, 'inner': [r[0] for r in inner],
            'messages': [at for at, opcode, size in inner if opcode == MESSAGE and size >= 30],
            'summary': summary}


@pytest.fixture(scope='module')
def good_bag(tmp_path_factory):
    path = make_bag(tmp_path_factory.mktemp('fuzz') / 'good')
    assert bag_read.main([str(path)]) == 0
    return path


def huge_cdr_length(rng, data, layout):
    """A u32 inside a message's CDR bytes (a string or array length) set huge."""
    at = rng.choice(layout['messages'])
    length = struct.unpack_from('<Q', data, at + 1)[0]
    return _put(data, at + 9 + 22 + 4 * rng.randrange((length - 22) // 4), '<I', rng.choice(HUGE))


def on_mcap(mutate):
    return lambda rng, files, layout: {'mcap': mutate(rng, files['mcap'], layout)}


def on_metadata(mutate):
    return lambda rng, files, layout: {'metadata.yaml': mutate(rng, files['metadata.yaml'])}


def unfinished(mutate):
    """A killed recorder's bag: no metadata.yaml, the MCAP cut, its marker damaged too."""
    marker = b'{"version": 8, "custom_data": {"task": "pick"}}'
    return lambda rng, files, layout: {'metadata.yaml': None, UNFINISHED_MARKER: mutate(
        rng, marker), 'mcap': truncate(rng, files['mcap'], layout)}


BAG_KINDS = {  # name -> (rng, {'mcap': bytes, 'metadata.yaml': bytes}, layout) -> changed files
    **{f.__name__: on_mcap(f) for f in MCAP_MUTATIONS},
    'huge_cdr_length': on_mcap(huge_cdr_length),
    **{f'metadata {f.__name__}': on_metadata(f) for f in TEXT_MUTATIONS + [metadata_shape]},
    **{f'unfinished, marker {f.__name__}': unfinished(f) for f in TEXT_MUTATIONS}}


def bag_cases(good: Path):
    """(description, {file name: bytes, or None to delete}): every kind in turn, seeded."""
    rng = random.Random(SEED)
    mcap = next(good.glob('*.mcap'))
    files = {'mcap': mcap.read_bytes(), 'metadata.yaml': (good / 'metadata.yaml').read_bytes()}
    layout = layout_of(good)
    kinds = sorted(BAG_KINDS)
    for index in range(ROUNDS * len(kinds)):
        kind = kinds[index % len(kinds)]
        changed = BAG_KINDS[kind](rng, files, layout)
        yield f'bag case {index} ({kind})', {
            mcap.name if name == 'mcap' else name: content for name, content in changed.items()}


def test_bag_clis_answer_damaged_bags_with_one_line(good_bag, tmp_path):
    outcomes = {'cases': 0, 'ok': 0, 'refused': 0, 'repaired': 0}
    out = tmp_path / 'dataset'
    for case, files in bag_cases(good_bag):
        bag = tmp_path / 'bag'
        shutil.rmtree(bag, ignore_errors=True)
        shutil.copytree(good_bag, bag)
        for name, content in files.items():
            if content is None:
                (bag / name).unlink()
            else:
                (bag / name).write_bytes(content)
        names = [bag]
        outcomes['cases'] += 1
        code = run_cli(bag_read.main, [str(bag)], 'vla-bag-summary', names, case)
        outcomes['refused' if code else 'ok'] += 1
        run_cli(export.main, [str(bag), '-o', str(out), '--overwrite', '--no-progress'],
                'vla-export', names, case)
        if run_cli(cli.main, ['--repair', str(bag)], 'vla-record', names, case) == 0 and code:
            # what --repair leaves must read; the advice in the error was not a dead end
            assert run_cli(bag_read.main, [str(bag)], 'vla-bag-summary', names,
                           case + ' (repaired)') == 0, case
            outcomes['repaired'] += 1
    print(f'damaged bags: {outcomes}')
    assert outcomes['refused'] > outcomes['cases'] // 2  # the damage was real


def test_vla_launch_answers_damaged_launch_and_parameter_files(tmp_path):
    rng = random.Random(SEED)
    launch = (ROOT / 'launch' / 'piper_bimanual.launch.yaml').read_bytes()
    params = (ROOT / 'config' / 'piper_bimanual.yaml').read_bytes()
    refused = 0
    for index in range(LAUNCH_CASES):
        launch_file, params_file = tmp_path / f'l{index}.launch.yaml', tmp_path / f'p{index}.yaml'
        launch_file.write_bytes(launch)
        params_file.write_bytes(params)
        target = launch_file if index % 2 else params_file
        mutate = TEXT_MUTATIONS[index // 2 % len(TEXT_MUTATIONS)]  # each kind, each file
        target.write_bytes(mutate(rng, target.read_bytes()))
        case = f'launch case {index}: {mutate.__name__} of {target.name}'
        refused += bool(run_cli(vla_launch, [str(launch_file), f'config:={params_file}',
                                             '--print'], 'vla-launch', [target], case))
    print(f'{LAUNCH_CASES} damaged launch/parameter files: {refused} refused')
    assert refused > LAUNCH_CASES // 2
