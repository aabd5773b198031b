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

"""CanReaders: time waits until each reader of a virtual CAN channel took its frames."""

import itertools
import threading

import can

from vla_nodes.sim.can_readers import CanReaders
from vla_nodes.sim.virtual_can import FastVirtualBus

_channels = itertools.count()


class GatedReader:
    """A reader thread that, after each frame, 'parses' until `gate` lets it go on."""

    def __init__(self, channel: str):
        self.bus = can.Bus(interface='virtual', channel=channel, receive_own_messages=False)
        self.gate, self.taken, self._stop = threading.Event(), [], False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self._stop:
            msg = self.bus.recv(timeout=None)
            if msg is not None:
                self.taken.append(msg.arbitration_id)
                self.gate.wait()
                self.gate.clear()

    def close(self):
        self._stop = True
        self.gate.set()
        self.bus.shutdown()


def test_waiting_for_the_readers_wakes_when_the_reader_goes_back_to_waiting():
    channel = f'test_can_readers_{next(_channels)}'
    sender = FastVirtualBus(channel=channel, receive_own_messages=False)
    reader = GatedReader(channel)
    readers = CanReaders(channel, (sender,))
    try:
        assert readers.wait(30.0)  # the reader is blocked in recv(): idle
        sender.send_burst([(0x2A5, bytes(8))])
        assert not readers.wait(0.05)  # it took the frame and is still at it
        assert readers.busy()
        woke = []
        waiter = threading.Thread(target=lambda: woke.append(readers.wait(600.0)))
        waiter.start()
        reader.gate.set()  # done with the frame: back to recv()
        waiter.join(60.0)
        # Woken by the reader going to wait, not by the end of its 600 s.
        assert woke == [True] and reader.taken == [0x2A5] and readers.idle()
    finally:
        reader.close()
        sender.shutdown()
