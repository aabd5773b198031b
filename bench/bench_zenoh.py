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

"""Publish -> callback latency and throughput: in-process Bus vs Zenoh across two processes.

Usage: python bench/bench_zenoh.py [--count 100] [--rate 20]

For a 640x480 rgb8 frame, a 640x480 16UC1 frame and a JointState: `--count` messages at `--rate`
Hz, stamped with the wall clock just before `publish`; the subscription callback (on a
single-threaded executor, as nodes run) takes the difference. `inproc` is the local backend's
`InProcessBus` (one process, zero-copy); `zenoh` is a publisher node in a second process on its
own session (this script with `child`), connected over loopback TCP to this one: CDR
serialisation, Zenoh transport, deserialisation included; `zenoh + SHM` the same with payloads in
Zenoh shared memory (the backend's default). Throughput: the same messages published
back to back for 2 s (keep-last 10 subscription), messages received per second. `put->zenoh`:
the transport alone (attachment timestamp at `put`, after serialisation, to the raw sample in a
Zenoh callback of the receiving process, before decoding).
"""

import argparse
import socket
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

from vla_nodes.ros import image, local, msgs, zenoh_bus
from vla_nodes.ros import zenoh_keys as K

KINDS = ('rgb8 640x480', '16UC1 640x480', 'JointState')


def make(kind: str):
    if kind == 'rgb8 640x480':
        return image.to_msg(np.full((480, 640, 3), 7, np.uint8), 'rgb8', frame_id='cam')
    if kind == '16UC1 640x480':
        return image.to_msg(np.full((480, 640), 700, np.uint16), '16UC1', frame_id='cam')
    return msgs.get_message('sensor_msgs/msg/JointState')(
        name=[f'joint{i}' for i in range(1, 8)], position=[0.1] * 7, velocity=[0.0] * 7)


def publish_all(pub, kind: str, count: int, rate: float) -> None:
    msg = make(kind)
    for _ in range(count):
        msg.header.stamp = msgs.ns_to_stamp(time.time_ns())
        pub.publish(msg)
        if rate:
            time.sleep(1.0 / rate)


def _topic(kind: str) -> str:
    return '/bench/' + kind.split()[0].lower()


def measure(context, kind: str, count: int, start_publisher) -> tuple:
    """Latencies (ms) of `count` messages and the back-to-back receive rate (msg/s)."""
    node = local.Node('bench_sub', context=context)
    latencies, arrivals = [], []

    def on_msg(msg):
        now = time.time_ns()
        latencies.append((now - msgs.stamp_to_ns(msg.header.stamp)) / 1e6)
        arrivals.append(now)
    node.create_subscription(type(make(kind)), _topic(kind), on_msg, 10)
    executor = local.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    stop = threading.Event()
    spinner = threading.Thread(target=lambda: [executor.spin_once(timeout_sec=0.05)
                                               for _ in iter(stop.is_set, True)])
    spinner.start()
    try:
        done = start_publisher()
        done()
        lat = list(latencies[-count:])
        arrivals.clear()
        done = start_publisher(burst=True)
        done()
        rate = (len(arrivals) - 1) / ((arrivals[-1] - arrivals[0]) / 1e9) if len(arrivals) > 1 \
            else 0.0
    finally:
        stop.set()
        spinner.join()
        node.destroy_node()
    return lat, rate


def inproc(kind: str, count: int, rate: float) -> tuple:
    context = local.Context()
    context.init()
    node = local.Node('bench_pub', context=context)
    pub = node.create_publisher(type(make(kind)), _topic(kind), 10)

    def start(burst=False):
        n, r = (10**9, 0) if burst else (count, rate)
        if burst:
            stop = time.monotonic() + 2.0
            thread = threading.Thread(target=lambda: [publish_all(pub, kind, 1, 0) for _ in iter(
                lambda: time.monotonic() > stop, True)])
        else:
            thread = threading.Thread(target=publish_all, args=(pub, kind, n, r))
        thread.start()
        return lambda: (thread.join(), time.sleep(0.2))
    try:
        return (*measure(context, kind, count, start), float('nan'))
    finally:
        context.shutdown()


def zenoh_processes(kind: str, count: int, rate: float, shm: bool) -> tuple:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        endpoint = f'tcp/127.0.0.1:{s.getsockname()[1]}'
    context = local.Context()
    bus = zenoh_bus.ZenohBus(zenoh_bus.session_config(
        f'listen/endpoints=["{endpoint}"];connect/endpoints=[];{_shm(shm)}'))
    context.init(bus=bus)
    # Transport alone: the attachment's source timestamp (taken at put, after serialisation)
    # to the arrival of the raw sample in Zenoh's callback, before any decoding.
    type_name = msgs.type_name(type(make(kind)))
    key = K.topic_keyexpr(0, _topic(kind), type_name, K.type_hash(type_name))
    transport = []
    bus.session.declare_subscriber(key, lambda sample: transport.append(
        (time.time_ns() - K.parse_attachment(sample.attachment.to_bytes())[1]) / 1e6))

    def start(burst=False):
        args = [sys.executable, __file__, 'child', endpoint, kind,
                str(0 if burst else count), str(0 if burst else rate), str(int(shm))]
        proc = subprocess.Popen(args)
        return lambda: (proc.wait(120), time.sleep(0.3))
    try:
        lat, rate = measure(context, kind, count, start)
        return lat, rate, statistics.median(transport[:count])
    finally:
        context.shutdown()


def _shm(on: bool) -> str:
    return f'transport/shared_memory/enabled={str(on).lower()}'


def child(endpoint: str, kind: str, count: int, rate: float, shm: bool) -> None:
    """The publisher process: waits for the subscriber, then publishes (count 0: 2 s burst)."""
    context = local.Context()
    context.init(bus=zenoh_bus.ZenohBus(zenoh_bus.session_config(
        f'connect/endpoints=["{endpoint}"];listen/endpoints=[];{_shm(shm)}')))
    node = local.Node('bench_pub', context=context)
    pub = node.create_publisher(type(make(kind)), _topic(kind), 10)
    while pub.get_subscription_count() == 0:
        time.sleep(0.01)
    time.sleep(0.2)
    if count:
        publish_all(pub, kind, count, rate)
    else:
        stop = time.monotonic() + 2.0
        while time.monotonic() < stop:
            publish_all(pub, kind, 1, 0)
    time.sleep(0.2)
    context.shutdown()


def main() -> None:
    if sys.argv[1:2] == ['child']:
        endpoint, kind, count, rate, shm = sys.argv[2:7]
        child(endpoint, kind, int(count), float(rate), shm == '1')
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=100)
    parser.add_argument('--rate', type=float, default=20.0)
    opts = parser.parse_args()
    print(f'publish -> callback, {opts.count} messages at {opts.rate:g} Hz; throughput: 2 s '
          'back to back')
    print(f"{'message':<15} {'transport':<18} {'p50 ms':>8} {'p99 ms':>8} {'msg/s':>8} "
          f"{'put->zenoh p50':>15}")
    for kind in KINDS:
        for name, fn in (('in-process Bus', inproc),
                         ('zenoh, 2 processes', lambda *a: zenoh_processes(*a, shm=False)),
                         ('zenoh + SHM', lambda *a: zenoh_processes(*a, shm=True))):
            lat, rate, wire = fn(kind, opts.count, opts.rate)
            p99 = float(np.percentile(lat, 99)) if lat else float('nan')
            print(f'{kind:<15} {name:<18} {statistics.median(lat):8.3f} {p99:8.3f} {rate:8.0f} '
                  f'{wire:15.3f}', flush=True)


if __name__ == '__main__':
    main()
