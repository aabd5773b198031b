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

"""Where publish -> callback time goes on the zenoh backend, one stage at a time.

Usage: python bench/bench_zenoh_stages.py [--count 100] [--kind JointState] [--no-shm]

The setting of bench_zenoh.py (its publisher process at 20 Hz; this process subscribes on a
single-threaded executor), with wall-clock stamps along the way. Medians in microseconds:
`stamp->put` the publisher (header stamp to the attachment's timestamp, taken just before
`put`: dispatch, serialisation, the copy into shared memory); `put->sample` Zenoh (to the
sample in the bus's callback thread here); `to_bytes` the payload copy out of the sample;
`deserialize`; `deliver` (queue, notify); `->callback` the executor's wake-up and dispatch.
The bus runs its own code: its session and two functions are wrapped from outside.
"""

import argparse
import socket
import statistics
import subprocess
import sys
import threading
import time

from bench_zenoh import _shm, _topic, KINDS, make

from vla_nodes.ros import local, msgs, zenoh_bus
from vla_nodes.ros import zenoh_keys as K

STAGES = (('stamp', 'put', 'stamp->put'), ('put', 'sample', 'put->sample'),
          ('sample', 'copied', 'to_bytes'), ('copied', 'decoded', 'deserialize'),
          ('decoded', 'delivered', 'deliver'), ('delivered', 'callback', '->callback'),
          ('stamp', 'callback', 'total'))


class _TimedSession:
    """A session whose data subscribers stamp each sample before the bus's callback sees it."""

    def __init__(self, session, now: dict):
        self._session, self._now = session, now

    def __getattr__(self, name):
        return getattr(self._session, name)

    def declare_subscriber(self, key, callback, **kwargs):
        def timed(sample):
            self._now['sample'] = time.time_ns()
            self._now['put'] = K.parse_attachment(sample.attachment.to_bytes())[1]
            callback(sample)
        return self._session.declare_subscriber(key, timed, **kwargs)


def stages(kind: str, count: int, shm: bool) -> dict:
    """Stage name -> median microseconds over `count` messages."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        endpoint = f'tcp/127.0.0.1:{s.getsockname()[1]}'
    bus = zenoh_bus.ZenohBus(zenoh_bus.session_config(
        f'listen/endpoints=["{endpoint}"];connect/endpoints=[];{_shm(shm)}'))
    rows, now = {}, {}
    bus.session = _TimedSession(bus.session, now)
    deserialize = msgs.deserialize

    def timed_deserialize(data, type_name):
        copied = time.time_ns()
        msg = deserialize(data, type_name)
        stamp = msgs.stamp_to_ns(msg.header.stamp)
        rows[stamp] = dict(now, stamp=stamp, copied=copied, decoded=time.time_ns())
        return msg
    context = local.Context()
    context.init(bus=bus)
    node = local.Node('bench_sub', context=context)
    sub = node.create_subscription(type(make(kind)), _topic(kind), lambda msg: rows[
        msgs.stamp_to_ns(msg.header.stamp)].update(callback=time.time_ns()), 10)
    deliver = sub.deliver

    def timed_deliver(msg):
        deliver(msg)
        rows[msgs.stamp_to_ns(msg.header.stamp)]['delivered'] = time.time_ns()
    sub.deliver = timed_deliver
    executor = local.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    stop = threading.Event()
    spinner = threading.Thread(target=lambda: [executor.spin_once(timeout_sec=0.05)
                                               for _ in iter(stop.is_set, True)])
    msgs.deserialize = timed_deserialize  # the bus calls msgs.deserialize
    spinner.start()
    try:
        subprocess.run([sys.executable, sys.modules['bench_zenoh'].__file__, 'child', endpoint,
                        kind, str(count), '20', str(int(shm))], check=True, timeout=120)
        time.sleep(0.3)
    finally:
        msgs.deserialize = deserialize
        stop.set()
        spinner.join()
        context.shutdown()
    done = [r for r in rows.values() if 'callback' in r]
    return {name: statistics.median((r[b] - r[a]) / 1e3 for r in done) for a, b, name in STAGES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=100)
    parser.add_argument('--kind', action='append', choices=KINDS)
    parser.add_argument('--no-shm', action='store_true')
    opts = parser.parse_args()
    print(f'publish -> callback by stage, {opts.count} messages at 20 Hz, p50 us, '
          f'shared memory {"off" if opts.no_shm else "on"}')
    print(f"{'message':<15}" + ''.join(f'{name:>13}' for _, _, name in STAGES))
    for kind in opts.kind or KINDS:
        medians = stages(kind, opts.count, not opts.no_shm)
        print(f'{kind:<15}' + ''.join(f'{medians[name]:13.0f}' for _, _, name in STAGES),
              flush=True)


if __name__ == '__main__':
    main()
