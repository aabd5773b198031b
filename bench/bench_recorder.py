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

"""Recorder throughput: 3 RGB-D cameras at 640x480 and 30 Hz plus joint states at 200 Hz.

Where it fits: issue 5's benchmark for `record/bag.py`'s BagWriter, the writer behind
teleop_recorder_node. The load is fed by direct `BagWriter.write()` calls, paced in real time by
one thread standing in for the subscription callbacks (no ROS transport in the loop), per second:
3 x 30 colour (rgb8, 921,600 B) + 3 x 30 aligned depth (16UC1, 614,400 B) + 3 x 60 camera_infos
+ 200 /joint_states + 200 /leader/joint_states = 760 messages, 138 MB.

Compared in the same run, on the same messages:
  BagWriter      write() queues; a thread serializes, writes and flushes every second.
  bare rosbags   what a naive recorder does in its callback: serialize + Writer.write() inline.

Printed: messages dropped, how long a write call blocks the callback (p50 / p99 / max), how far
the callbacks fell behind real time, write throughput (bag MB / wall time until the bag is
finished) and CPU use. Then a burst (a few seconds of data written at once) measures each
writer's capacity in MB/s.

    python bench/bench_recorder.py                 # 60 s per writer
    python bench/bench_recorder.py --seconds 20    # a shorter run on a busy machine
"""

import argparse
import heapq
from pathlib import Path
import shutil
import tempfile
import time

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from vla_nodes import contract
from vla_nodes.record.bag import BagWriter
from vla_nodes.record.bag_storage import offered_qos
from vla_nodes.ros import msgs, type_store
from vla_nodes.ros.msgs import sensor_msgs, std_msgs

CAMERAS = ('/camera/camera', '/wrist_left/camera', '/wrist_right/camera')
WIDTH, HEIGHT, CAMERA_HZ, JOINT_HZ = 640, 480, 30.0, 200.0


def streams():
    """[(topic, rate Hz, message)]: the benchmark's load.

    One message per stream, built once and written again and again: what is measured is the
    writer (serialization included), not building messages; the bag's log time still advances.
    """
    rng = np.random.default_rng(0)
    image, info, joints = sensor_msgs.Image, sensor_msgs.CameraInfo, sensor_msgs.JointState
    header = std_msgs.Header(stamp=msgs.ns_to_stamp(1), frame_id='camera_color_optical_frame')
    out = []
    for camera in CAMERAS:
        rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8).tobytes()
        depth = rng.integers(300, 3000, (HEIGHT, WIDTH), np.uint16).tobytes()
        for stream, encoding, step, data in (('color', 'rgb8', 3 * WIDTH, rgb),
                                             ('aligned_depth_to_color', '16UC1', 2 * WIDTH,
                                              depth)):
            out.append((f'{camera}/{stream}/image_raw', CAMERA_HZ,
                        image(header=header, height=HEIGHT, width=WIDTH, encoding=encoding,
                              step=step, data=data)))
            out.append((f'{camera}/{stream}/camera_info', CAMERA_HZ,
                        info(header=header, height=HEIGHT, width=WIDTH,
                             k=[600.0, 0, 320, 0, 600.0, 240, 0, 0, 1])))
    for topic in (contract.JOINT_STATES_TOPIC, contract.LEADER_JOINT_STATES_TOPIC):
        out.append((topic, JOINT_HZ, joints(header=header, name=list(contract.JOINT_NAMES),
                                            position=[0.1] * 7)))
    return out


def schedule(seconds):
    """Yield (due s, topic, message) for every message of `seconds` of load, in time order."""
    heap = [(0.0, i, topic, hz, msg) for i, (topic, hz, msg) in enumerate(streams())]
    heapq.heapify(heap)
    while heap:
        due, i, topic, hz, msg = heapq.heappop(heap)
        if due >= seconds:
            continue
        yield due, topic, msg
        heapq.heappush(heap, (due + 1.0 / hz, i, topic, hz, msg))


class Bare:
    """rosbags' Writer called inline: serialize and write in the caller's thread."""

    def __init__(self, path):
        self.writer = Writer(path, version=8, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.connections = {}
        self.dropped, self.dropped_by_topic = 0, {}  # never drops: it blocks the caller

    def write(self, topic, msg, stamp):
        if topic not in self.connections:
            type_name = msgs.type_name(msg)
            self.connections[topic] = self.writer.add_connection(
                topic, type_name, msgdef=type_store.msgdef(type_name)[0],
                rihs01=type_store.type_hash(type_name), offered_qos_profiles=[offered_qos(topic)])
        self.writer.write(self.connections[topic], stamp, msgs.serialize(msg))

    def close(self):
        self.writer.close()


def run(make_writer, folder, seconds, paced):
    """Feed `seconds` of load into a writer; the figures of the run."""
    writer = make_writer(folder / 'bag')
    calls, late, peak_bytes, count = [], 0.0, 0, 0
    cpu0, start = time.process_time(), time.monotonic()
    for due, topic, msg in schedule(seconds):
        if paced:
            wait = start + due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            late = max(late, -wait)
        t = time.perf_counter()
        writer.write(topic, msg, int((start + due) * 1e9))
        calls.append(time.perf_counter() - t)
        count += 1
        if count % 100 == 0 and hasattr(writer, 'pending'):
            peak_bytes = max(peak_bytes, writer.pending[1])
    fed = time.monotonic() - start
    writer.close()
    wall = time.monotonic() - start
    size = sum(f.stat().st_size for f in (folder / 'bag').iterdir())
    shutil.rmtree(folder / 'bag')
    calls = np.array(calls) * 1e3
    joints = (contract.JOINT_STATES_TOPIC, contract.LEADER_JOINT_STATES_TOPIC)
    return {'messages': count, 'dropped': writer.dropped, 'mb': size / 1e6, 'wall': wall,
            'dropped_joints': sum(writer.dropped_by_topic.get(t, 0) for t in joints),
            'fed': fed, 'drain': wall - fed, 'late': late, 'p50': np.percentile(calls, 50),
            'p99': np.percentile(calls, 99), 'max': calls.max(), 'peak_mb': peak_bytes / 1e6,
            'cpu': (time.process_time() - cpu0) / wall}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=60.0, help='real-time run per writer')
    parser.add_argument('--burst', type=float, default=3.0, help='seconds of load in the burst')
    parser.add_argument('--dir', default=None, help='folder for the bags (default: a temp dir)')
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix='bench_recorder_', dir=args.dir))
    load = streams()
    mb_s = sum(len(msg.data) * hz for _, hz, msg in load if hasattr(msg, 'data')) / 1e6
    print(f'load: {len(load)} streams, {sum(hz for _, hz, _ in load):.0f} msg/s, {mb_s:.0f} '
          f'MB/s of image data; bags in {folder}')
    writers = {'BagWriter': lambda p: BagWriter(p, queue_bytes=1 << 30),
               'bare rosbags': Bare}
    try:
        print(f'\n== real time, {args.seconds:.0f} s per writer (write calls paced like '
              f'callbacks)')
        print(f"{'writer':14s} {'msgs':>7s} {'dropped':>7s} {'joints':>6s} {'MB':>6s} "
              f"{'MB/s':>6s} "
              f"{'call p50':>8s} {'p99':>6s} {'max':>7s} {'behind':>7s} {'drain':>6s} "
              f"{'queue':>7s} {'CPU':>5s}")
        for name, make_writer in writers.items():
            r = run(make_writer, folder, args.seconds, paced=True)
            print(f"{name:14s} {r['messages']:7d} {r['dropped']:7d} {r['dropped_joints']:6d} "
                  f"{r['mb']:6.0f} "
                  f"{r['mb'] / r['wall']:6.1f} {r['p50']:6.3f}ms {r['p99']:6.2f} "
                  f"{r['max']:5.1f}ms {r['late']:6.2f}s {r['drain']:5.2f}s "
                  f"{r['peak_mb']:5.0f}MB {r['cpu']:5.0%}")
        print(f'\n== burst: {args.burst:.0f} s of load written at once (capacity)')
        for name, make_writer in writers.items():
            r = run(make_writer, folder, args.burst, paced=False)
            print(f"{name:14s} {r['mb']:6.0f} MB in {r['wall']:5.2f} s = "
                  f"{r['mb'] / r['wall']:6.1f} MB/s, dropped {r['dropped']}, callbacks "
                  f"blocked {r['fed']:5.2f} s in total")
        print('\ndropped: messages not in the bag (joints: of them, joint states). MB/s: bag '
              'bytes / wall time until the bag is finished. call: time one write() blocks the '
              'caller. behind: how late the paced caller got. drain: close() after the last '
              'message. queue: peak bytes waiting for the writer thread.')
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == '__main__':
    main()
