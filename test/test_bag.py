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

"""rosbag2 recording: written with BagWriter, read back by rosbags and by the independent mcap."""

import os
from pathlib import Path
import shutil
import subprocess
import sys
import textwrap
import threading
import time

from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from ruamel.yaml import YAML

from graph import joint_state
from vla_nodes import contract
from vla_nodes.orchestration import record as cli
from vla_nodes.record import bag, bag_meta, bag_read, repair
from vla_nodes.record.bag import BagWriter
from vla_nodes.record.bag_meta import BagError
from vla_nodes.ros import image, msgs
from vla_nodes.ros.msgs import (
    diagnostic_msgs, geometry_msgs, sensor_msgs, std_msgs, trajectory_msgs, vision_msgs)

REPO = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000_000_000_000  # ns
RGB = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
CALIBRATION = {'camera_to_base': np.eye(4)[:3], 'fx': 600.5}


def detections():
    detection = vision_msgs.Detection3D(id='cube')
    detection.results.append(vision_msgs.ObjectHypothesisWithPose(
        hypothesis=vision_msgs.ObjectHypothesis(class_id='red_cube', score=0.75)))
    detection.bbox.size = geometry_msgs.Vector3(x=0.04, y=0.05, z=0.06)
    return vision_msgs.Detection3DArray(detections=[detection])


def recording():
    """(topic, msg, stamp_ns): 1 s of images at 30 Hz, joint states at 200 Hz, and others."""
    items = [(contract.INSTRUCTION_TOPIC, std_msgs.String(data='pick up the red cube'), T0)]
    for i in range(30):
        stamp = T0 + round(i * 1e9 / 30)
        items.append((contract.COLOR_TOPIC, image.to_msg(RGB, 'rgb8', stamp, 'cam'), stamp))
    for i in range(200):
        items.append((contract.JOINT_STATES_TOPIC, joint_state([0.01 * i] * 7, T0 + i),
                      T0 + i * 5_000_000))
    point = trajectory_msgs.JointTrajectoryPoint(positions=[0.1] * 7)
    point.time_from_start.nanosec = 100_000_000
    items.append((contract.ACTION_CHUNK_TOPIC,
                  trajectory_msgs.JointTrajectory(joint_names=list(contract.JOINT_NAMES),
                                                  points=[point]), T0 + 1))
    status = diagnostic_msgs.DiagnosticStatus(level=diagnostic_msgs.DiagnosticStatus.WARN,
                                              name='recorder')
    items.append((contract.DIAGNOSTICS_TOPIC, diagnostic_msgs.DiagnosticArray(status=[status]),
                  T0 + 2))
    items.append((contract.OBJECTS_TOPIC, detections(), T0 + 3))
    return sorted(items, key=lambda item: item[2])


@pytest.fixture(scope='module')
def written(tmp_path_factory):
    path = tmp_path_factory.mktemp('bags') / 'episode_0001'
    items = recording()
    metadata = {'task': 'pick up the red cube', 'robot': 'piper_single',
                'calibration': CALIBRATION}
    with BagWriter(path, metadata=metadata) as writer:
        for topic, msg, stamp in items:
            assert writer.write(topic, msg, stamp)
    assert (writer.written, writer.dropped) == (len(items), 0)
    return path, items


def test_read_bag_gives_back_what_was_written(written):
    path, items = written
    got = list(bag_read.read_bag(path))
    assert [(t, s) for t, _, s, _ in got] == [(t, s) for t, _, s in items]
    for (_, type_name, _, msg), (_, original, _) in zip(got, items):
        assert type_name == msgs.type_name(original)
        assert msg == original
    images = list(bag_read.read_bag(path, topics=[contract.COLOR_TOPIC]))
    assert len(images) == 30
    np.testing.assert_array_equal(image.from_msg(images[-1][3]), RGB)


def test_rosbags_anyreader_reads_it(written):
    path, _ = written
    with AnyReader([path]) as reader:  # types from the definitions stored in the bag
        types = {c.topic: c.msgtype for c in reader.connections}
        assert types[contract.OBJECTS_TOPIC] == 'vision_msgs/msg/Detection3DArray'
        assert types[contract.COLOR_TOPIC] == 'sensor_msgs/msg/Image'
        counts = {}
        for conn, _, raw in reader.messages():
            counts[conn.topic] = counts.get(conn.topic, 0) + 1
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic == contract.OBJECTS_TOPIC:
                assert msg.detections[0].results[0].hypothesis.class_id == 'red_cube'
                assert msg.detections[0].bbox.size.z == 0.06
            if conn.topic == contract.COLOR_TOPIC:
                assert msg.data.tobytes() == RGB.tobytes()
    assert counts[contract.COLOR_TOPIC] == 30 and counts[contract.JOINT_STATES_TOPIC] == 200


def test_mcap_library_reads_it(written):
    path, items = written
    files = list(path.glob('*.mcap'))
    assert len(files) == 1
    counts, positions, classes = {}, [], []
    with files[0].open('rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == 'ros2'
        for schema, channel, message, decoded in reader.iter_decoded_messages():
            assert message.log_time >= T0
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
            if channel.topic == contract.COLOR_TOPIC:
                assert schema.name == 'sensor_msgs/msg/Image'
                assert (decoded.height, decoded.width, decoded.encoding) == (480, 640, 'rgb8')
                assert bytes(decoded.data) == RGB.tobytes()
            if channel.topic == contract.JOINT_STATES_TOPIC:
                positions.append(decoded.position[0])
            if channel.topic == contract.OBJECTS_TOPIC:
                classes.append(decoded.detections[0].results[0].hypothesis.class_id)
    expected = {}
    for topic, _, _ in items:
        expected[topic] = expected.get(topic, 0) + 1
    assert counts == expected
    assert positions == pytest.approx([0.01 * i for i in range(200)])
    assert classes == ['red_cube']


def test_metadata_version_8_and_custom_data(written):
    path, _ = written
    info = YAML(typ='safe').load((path / 'metadata.yaml').read_text())
    info = info['rosbag2_bagfile_information']
    assert info['version'] == 8
    assert info['storage_identifier'] == 'mcap'
    assert info['custom_data']['task'] == 'pick up the red cube'  # plain text, as given
    assert info['custom_data'][bag_meta.JSON_KEYS] == '["calibration"]'
    qos = {t['topic_metadata']['name']: YAML(typ='safe').load(
        t['topic_metadata']['offered_qos_profiles'])[0] for t in info['topics_with_message_count']}
    assert qos[contract.INSTRUCTION_TOPIC]['durability'] == 1  # transient local (latched)
    assert qos[contract.COLOR_TOPIC]['durability'] == 2        # volatile
    metadata = bag_meta.read_metadata(path)
    assert metadata == {'task': 'pick up the red cube', 'robot': 'piper_single',
                        'calibration': {'camera_to_base': np.eye(4)[:3].tolist(), 'fx': 600.5}}


def test_mcap_embeds_the_rosbag2_metadata(written):
    path, _ = written
    with next(path.glob('*.mcap')).open('rb') as stream:
        records = {m.name: m.metadata for m in make_reader(stream).iter_metadata()}
    assert 'task: pick up the red cube' in records['rosbag2']['serialized_metadata']


def test_summarize_counts_and_rates(written):
    path, _ = written
    stats = bag_read.summarize(path)
    joints = stats[contract.JOINT_STATES_TOPIC]
    assert joints['type'] == 'sensor_msgs/msg/JointState'
    assert joints['count'] == 200
    assert (joints['first_ns'], joints['last_ns']) == (T0, T0 + 199 * 5_000_000)
    assert joints['rate_hz'] == pytest.approx(200.0)
    assert stats[contract.COLOR_TOPIC]['count'] == 30
    assert stats[contract.COLOR_TOPIC]['rate_hz'] == pytest.approx(30.0, rel=1e-6)
    assert stats[contract.INSTRUCTION_TOPIC]['count'] == 1
    assert stats[contract.INSTRUCTION_TOPIC]['rate_hz'] == 0.0


def test_cli_prints_a_table(written, capsys):
    path, _ = written
    assert bag_read.main([str(path)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith(contract.JOINT_STATES_TOPIC + ' '))
    assert line.split()[1:4] == ['sensor_msgs/msg/JointState', '200', '200.00']
    assert 'task: pick up the red cube' in out
    assert bag_read.main([str(path.parent / 'missing')]) == 1
    assert 'metadata.yaml is missing' in capsys.readouterr().err


def test_sqlite3_storage(tmp_path):
    with BagWriter(tmp_path / 'b', storage='sqlite3') as writer:
        writer.write('/chatter', std_msgs.String(data='a'), 1)
        writer.write('/chatter', std_msgs.String(data='b'), 2)
    assert list(tmp_path.joinpath('b').glob('*.db3'))
    assert [m.data for _, _, _, m in bag_read.read_bag(tmp_path / 'b')] == ['a', 'b']


def test_full_queue_drops_instead_of_blocking(tmp_path):
    msg = image.to_msg(RGB, 'rgb8')
    with BagWriter(tmp_path / 'b', queue_size=1) as writer:
        results = [writer.write(contract.COLOR_TOPIC, msg, T0 + i) for i in range(200)]
    assert writer.dropped > 0 and results.count(False) == writer.dropped
    assert writer.written + writer.dropped == 200
    assert bag_read.summarize(tmp_path / 'b')[contract.COLOR_TOPIC]['count'] == writer.written


def test_one_type_per_topic(tmp_path):
    with BagWriter(tmp_path / 'b') as writer:
        writer.write('/t', std_msgs.String(data='a'), 1)
        with pytest.raises(TypeError, match='recorded as std_msgs/msg/String'):
            writer.write('/t', sensor_msgs.JointState(), 2)


def test_write_after_close_and_existing_bag(tmp_path):
    writer = BagWriter(tmp_path / 'b')
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(BagError, match='is closed'):
        writer.write('/t', std_msgs.String(), 1)
    with pytest.raises(BagError, match='already exists'):
        BagWriter(tmp_path / 'b')


def test_bag_is_finished_when_the_block_raises(tmp_path):
    with pytest.raises(KeyError):
        with BagWriter(tmp_path / 'b') as writer:
            writer.write('/t', std_msgs.String(data='kept'), 1)
            raise KeyError('boom')
    assert [m.data for _, _, _, m in bag_read.read_bag(tmp_path / 'b')] == ['kept']


def test_missing_parent_directory(tmp_path):
    with pytest.raises(BagError, match=r'does not exist\. Create it first'):
        BagWriter(tmp_path / 'no' / 'such' / 'bag')
    assert not (tmp_path / 'no').exists()


@pytest.fixture
def unwritable_dir(tmp_path):
    """A folder in which mkdir fails.

    Made with chmod 0o500, or /sys when root ignores permissions, or (in a container where even
    /sys is writable) a path through a regular file.
    """
    folder = tmp_path / 'ro'
    folder.mkdir()
    folder.chmod(0o500)
    (tmp_path / 'file').write_text('')
    for candidate in (folder, Path('/sys'), tmp_path / 'file'):
        try:
            (candidate / 'vla_probe').mkdir()
        except OSError:
            yield candidate
            break
        (candidate / 'vla_probe').rmdir()
    else:
        pytest.skip('no unwritable folder available')
    folder.chmod(0o700)


def test_unwritable_parent_directory(unwritable_dir):
    with pytest.raises(BagError, match='is writable') as err:
        BagWriter(unwritable_dir / 'bag')
    assert isinstance(err.value.__cause__, OSError)


# Run in a child process: RLIMIT_FSIZE makes the disk "full" after 2 MB (EFBIG).
DISK_FULL = textwrap.dedent("""
    import resource, signal, sys, time
    import numpy as np
    from vla_nodes.record.bag import BagWriter
    from vla_nodes.record.bag_meta import BagError
    from vla_nodes.ros import image
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, resource.RLIM_INFINITY))
    msg = image.to_msg(np.zeros((480, 640, 3), np.uint8), 'rgb8')
    writer = BagWriter(sys.argv[1])
    for i in range(8):
        writer.write('/image', msg, i)
    deadline = time.monotonic() + 20
    while writer.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    print('error:', repr(writer.error))
    try:
        writer.write('/image', msg, 99)
    except BagError as exc:
        print('write raised:', exc)
    try:
        writer.close()
    except BagError as exc:
        print('close raised:', exc)
""")


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='RLIMIT_FSIZE semantics')
def test_writer_thread_io_error_is_surfaced(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), VLA_ROS_BACKEND='local')
    done = subprocess.run([sys.executable, '-c', DISK_FULL, str(tmp_path / 'bag')], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert 'error: OSError(27' in done.stdout  # EFBIG: File too large
    assert 'write raised: recording to' in done.stdout
    assert 'Free disk space' in done.stdout
    assert 'close raised: recording to' in done.stdout


def test_bad_message_in_thread_is_surfaced(tmp_path):
    writer = BagWriter(tmp_path / 'b')
    writer.write('/t', std_msgs.String(data=3), 1)  # not a str: fails when serialized
    with pytest.raises(BagError, match='recording to .* failed'):
        writer.close()
    assert isinstance(writer.error, AttributeError)
    with pytest.raises(BagError, match='failed'):
        writer.write('/t', std_msgs.String(data='x'), 2)


# --- crash safety: periodic flushes, the unfinished marker, repair ------------------------------

def wait_until(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, 'timed out'
        time.sleep(0.01)


def snapshot_while_open(tmp_path, count=20, metadata=None):
    """A copy of an open bag once `count` messages are flushed: what SIGKILL would leave."""
    writer = BagWriter(tmp_path / 'open', flush_period_s=0.05, metadata=metadata)
    for i in range(count):
        writer.write(contract.JOINT_STATES_TOPIC, joint_state([0.01 * i] * 7, T0 + i), T0 + i)
    wait_until(lambda: writer.flushed == count)
    copy = tmp_path / 'killed'
    shutil.copytree(writer.path, copy)
    (copy / 'open.mcap').rename(copy / 'killed.mcap')
    writer.close()
    assert not (writer.path / bag.UNFINISHED_MARKER).exists()  # gone once finished
    return copy


def test_a_flushed_bag_survives_its_process_and_is_repaired(tmp_path):
    killed = snapshot_while_open(tmp_path, metadata={'task': 'pick', 'calibration': CALIBRATION})
    assert sorted(p.name for p in killed.iterdir()) == ['killed.mcap', bag.UNFINISHED_MARKER]
    with pytest.raises(BagError, match=r'metadata.yaml is missing.*vla-record --repair'):
        bag_meta.read_metadata(killed)
    assert repair.needs_repair(killed)

    report = repair.repair_bag(killed)
    assert (report['messages'], report['discarded_bytes']) == (20, 0)
    assert report['topics'] == {contract.JOINT_STATES_TOPIC: 20}
    assert not repair.needs_repair(killed)
    assert sorted(p.name for p in killed.iterdir()) == [
        'killed.mcap', 'killed.mcap.damaged', 'metadata.yaml']
    got = list(bag_read.read_bag(killed))
    assert [m for _, _, _, m in got] == [joint_state([0.01 * i] * 7, T0 + i) for i in range(20)]
    assert [s for _, _, s, _ in got] == [T0 + i for i in range(20)]
    metadata = bag_meta.read_metadata(killed)
    assert metadata['task'] == 'pick' and metadata['repair']['messages'] == 20
    assert metadata['calibration']['fx'] == 600.5
    with (killed / 'killed.mcap').open('rb') as stream:  # the independent reader agrees
        assert sum(1 for _ in make_reader(stream).iter_messages()) == 20


def test_repair_drops_only_the_torn_record_at_the_end(tmp_path):
    killed = snapshot_while_open(tmp_path, count=10)
    with (killed / 'killed.mcap').open('ab') as stream:  # half a chunk record: killed mid-write
        stream.write(b'\x06' + (5000).to_bytes(8, 'little') + b'\0' * 100)
    report = repair.repair_bag(killed, keep_damaged=False)
    assert report['messages'] == 10 and report['discarded_bytes'] == 109
    assert report['stopped_at'].startswith('incomplete or damaged record at byte')
    assert sorted(p.name for p in killed.iterdir()) == ['killed.mcap', 'metadata.yaml']
    assert len(list(bag_read.read_bag(killed))) == 10


def test_a_truncated_finished_bag_says_to_repair_it(tmp_path, written):
    path, items = written
    broken = tmp_path / 'broken'
    shutil.copytree(path, broken)
    (broken / f'{path.name}.mcap').rename(broken / 'broken.mcap')
    with (broken / 'broken.mcap').open('r+b') as stream:
        stream.truncate(stream.seek(0, 2) - 100)  # the footer is gone
    with pytest.raises(BagError, match='vla-record --repair'):
        bag_read.summarize(broken)
    assert repair.needs_repair(broken) and not repair.needs_repair(path)
    assert repair.repair_bag(broken)['messages'] == len(items)
    assert bag_meta.read_metadata(broken)['task'] == 'pick up the red cube'


# vla-record --repair with every file capped at 8 kB (RLIMIT_FSIZE: EFBIG), like a full disk.
REPAIR_ON_A_FULL_DISK = """
import resource, signal, sys
from vla_nodes.orchestration.record import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (8000, resource.RLIM_INFINITY))
sys.exit(main(['--repair', sys.argv[1]]))
"""


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='RLIMIT_FSIZE semantics')
def test_repair_on_a_full_disk_says_so_and_leaves_the_bag_untouched(tmp_path):
    killed = snapshot_while_open(tmp_path, count=200)
    before = {p.name: p.read_bytes() for p in killed.iterdir()}
    assert len(before['killed.mcap']) > 20_000
    env = dict(os.environ, PYTHONPATH=str(REPO), VLA_ROS_BACKEND='local')
    done = subprocess.run([sys.executable, '-c', REPAIR_ON_A_FULL_DISK, str(killed)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    line, = done.stderr.splitlines()  # one line, no traceback
    assert line.startswith(f'vla-record: error: cannot repair {killed}: ')
    assert 'the bag is untouched. Free disk space' in line, line
    assert {p.name: p.read_bytes() for p in killed.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['killed', 'open']  # no leftovers
    assert cli.main(['--repair', str(killed)]) == 0  # with space, the same command repairs it
    assert len(list(bag_read.read_bag(killed))) == 200


def test_repair_refuses_what_it_cannot_repair(tmp_path):
    with BagWriter(tmp_path / 'db', storage='sqlite3') as writer:
        writer.write('/t', std_msgs.String(data='a'), 1)
    with pytest.raises(BagError, match='ros2 bag reindex'):
        repair.repair_bag(tmp_path / 'db')
    (tmp_path / 'junk').mkdir()
    (tmp_path / 'junk' / 'junk.mcap').write_bytes(b'not an mcap file')
    with pytest.raises(BagError, match='not an MCAP file'):
        repair.repair_bag(tmp_path / 'junk')
    with pytest.raises(BagError, match='not a bag folder'):
        repair.needs_repair(tmp_path / 'missing')


def test_sqlite3_commits_at_every_flush(tmp_path):
    writer = BagWriter(tmp_path / 'db', storage='sqlite3', flush_period_s=0.05)
    writer.write('/t', std_msgs.String(data='a'), 1)
    wait_until(lambda: writer.flushed == 1)
    import sqlite3
    with sqlite3.connect(tmp_path / 'db' / 'db.db3') as other:  # another reader sees it
        assert other.execute('SELECT COUNT(*) FROM messages').fetchone() == (1,)
    writer.close()


def test_queue_bounded_in_bytes_counts_drops_per_topic(tmp_path):
    big = image.to_msg(RGB, 'rgb8')  # 921,600 bytes
    writer = BagWriter(tmp_path / 'b', queue_bytes=2_000_000, flush_period_s=None)
    busy, disk = threading.Event(), threading.Event()
    write = writer._writer.write

    def stalled_disk(*args):
        busy.set()
        disk.wait()
        write(*args)
    writer._writer.write = stalled_disk
    writer.write('/t', std_msgs.String(data='first'), T0)
    busy.wait()  # the writer thread is stuck in the disk with the first message
    results = [writer.write(contract.COLOR_TOPIC, big, T0 + i) for i in range(4)]
    results.append(writer.write(contract.JOINT_STATES_TOPIC, joint_state([0.0] * 7, T0), T0))
    # the joint state fits in the reserve of small messages: images are dropped first
    assert results == [True, True, False, False, True]
    assert writer.pending == (3, 2 * (921_600 + bag.MESSAGE_OVERHEAD_BYTES)
                              + bag.MESSAGE_OVERHEAD_BYTES)
    assert writer.dropped_by_topic == {contract.COLOR_TOPIC: 2} and writer.dropped == 2
    disk.set()
    writer.close()
    assert writer.written == 4 and writer.pending == (0, 0)


def test_close_adds_metadata_and_checks_it(tmp_path):
    writer = BagWriter(tmp_path / 'c', metadata={'task': 'pick', 'outcome': 'running'})
    writer.close(metadata={'outcome': 'success', 'audit': {'level': 'ok'}})
    expected = {'task': 'pick', 'outcome': 'success', 'audit': {'level': 'ok'}}
    assert bag_meta.read_metadata(tmp_path / 'c') == expected
    writer = BagWriter(tmp_path / 'd')
    with pytest.raises(TypeError, match='cannot store object'):
        writer.close(metadata={'bad': object()})
    assert (tmp_path / 'd' / 'metadata.yaml').exists()  # finished all the same
