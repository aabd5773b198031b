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

"""python-can buses for the Piper: unusable frames dropped, udp_multicast kept on one interface.

Where it fits: `PiperArm` wraps the bus piper_sdk reads in `FrameFilter`, and `PiperArm` and
`sim_node` open udp_multicast buses through `open_bus()`. Pure python-can, no ROS.

Why a filter: piper_sdk decodes a frame by its 11-bit id alone. An error frame or a remote
(RTR) frame whose id bits happen to be 0x2A5 is decoded as joint feedback (issue 12: joint 1
read 4.576 rad, outside its limit, and the driver followed). A Piper only ever sends standard
8-byte data frames, so anything else is dropped here, before the SDK sees it, and counted.

Why a bound socket: python-can's udp_multicast binds 0.0.0.0 and joins the group on the default
interface, so any host on the network can inject frames into the simulated arm's bus (a
unicast datagram to the port is enough). `open_bus()` binds the group address and joins it on
`bind_address` only (127.0.0.1 by default: driver and simulator on one host).
"""

import collections
import queue
import socket
import struct
import time

import can
from can.interfaces.virtual import VirtualBus

from vla_nodes.arm.piper_protocol import FEEDBACK_IDS

LOOPBACK = '127.0.0.1'
ANY_INTERFACE = ('', '0.0.0.0')
# SO_TIMESTAMPNS (python-can asks for kernel receive stamps when the platform has them).
_SO_TIMESTAMPNS = getattr(socket, 'SO_TIMESTAMPNS', 35)


def unusable(msg: can.Message) -> str:
    """Why a received frame cannot come from a Piper ('' if it can)."""
    if msg.is_error_frame:
        return 'error frame'
    if msg.is_remote_frame:
        return 'remote frame'
    if msg.is_extended_id:
        return 'extended id'
    if msg.arbitration_id in FEEDBACK_IDS and len(msg.data) != 8:
        return 'feedback frame without 8 data bytes'
    return ''


class FrameFilter(can.BusABC):
    """A python-can bus whose `recv()` never returns a frame a Piper cannot have sent.

    A BusABC itself (piper_sdk checks `isinstance(bus, can.BusABC)` before every read and
    send); sending, state and shutdown are the wrapped bus's. `dropped` counts the frames
    dropped, by reason.
    """

    def __init__(self, bus: can.BusABC):
        self.bus = bus
        self.dropped = collections.Counter()
        super().__init__(channel=bus.channel_info)
        self.channel_info = bus.channel_info

    def _recv_internal(self, timeout):
        msg = self.bus.recv(timeout)
        if msg is None:
            return None, False
        reason = unusable(msg)
        if reason:
            self.dropped[reason] += 1
            return None, False  # BusABC.recv() waits on for the rest of the timeout
        return msg, False

    def send(self, msg: can.Message, timeout=None) -> None:
        if type(self.bus) is VirtualBus:  # the simulated arm's bus: skip its deepcopy
            send_virtual(self.bus, msg, timeout)
        else:
            self.bus.send(msg, timeout)

    @property
    def state(self) -> can.BusState:
        return self.bus.state

    def shutdown(self) -> None:
        super().shutdown()
        self.bus.shutdown()


def send_virtual(bus: VirtualBus, msg: can.Message, timeout=None) -> None:
    """`VirtualBus.send` without its `copy.deepcopy` of the frame per receiver.

    The same frames arrive (fresh Message objects with the sender's data, a common timestamp,
    `is_rx` set per receiver); the generic deepcopy cost 10 us a frame, and the driver sends 5
    frames per tick to the simulated arm.
    """
    bus._check_if_open()
    timestamp = msg.timestamp if bus.preserve_timestamps else time.time()
    all_sent = True
    for bus_queue in bus.channel:
        if bus_queue is bus.queue and not bus.receive_own_messages:
            continue
        try:
            bus_queue.put(virtual_copy(bus, msg, timestamp, bus_queue), block=True,
                          timeout=timeout)
        except queue.Full:
            all_sent = False
    if not all_sent:
        raise can.CanOperationError('Could not send message to one or more recipients')


def virtual_copy(bus: VirtualBus, msg: can.Message, timestamp: float,
                 bus_queue) -> can.Message:
    """The frame `bus` puts into a receiver's queue, as VirtualBus.send's deepcopy makes it."""
    return can.Message(timestamp=timestamp, arbitration_id=msg.arbitration_id,
                       is_extended_id=msg.is_extended_id, is_remote_frame=msg.is_remote_frame,
                       is_error_frame=msg.is_error_frame, channel=bus.channel_id, dlc=msg.dlc,
                       data=bytearray(msg.data), is_fd=msg.is_fd,
                       is_rx=bus_queue is not bus.queue, bitrate_switch=msg.bitrate_switch,
                       error_state_indicator=msg.error_state_indicator)


def open_bus(interface: str, channel: str, bind_address: str = LOOPBACK) -> can.BusABC:
    """A python-can bus; udp_multicast receives only through `bind_address`'s interface.

    Args:
        interface: python-can interface ('virtual', 'udp_multicast', 'socketcan', ...).
        channel: its channel (a multicast group such as '239.74.163.2' for udp_multicast).
        bind_address: udp_multicast only: the IPv4 address of the interface to join the group
            on ('127.0.0.1': this host only); '0.0.0.0' is python-can's own (every interface,
            and anyone on the network can inject frames).

    Raises:
        ValueError: bind_address needs an IPv4 group, or is not an address of this host.
    """
    bus = can.Bus(interface=interface, channel=channel, receive_own_messages=False)
    if interface == 'udp_multicast':
        try:
            bind_udp_multicast(bus, bind_address)
        except (ValueError, OSError):
            bus.shutdown()
            raise
    return bus


def bind_udp_multicast(bus, bind_address: str) -> None:
    """Replace a python-can udp_multicast bus's socket by one bound to the group on one interface.

    Raises:
        ValueError: an IPv6 group with a bind_address other than 0.0.0.0, or a bind_address
            that is not an IPv4 address of this host.
    """
    if bind_address in ANY_INTERFACE:
        return
    multicast = bus._multicast  # python-can 4.x GeneralPurposeUdpMulticastBus
    if multicast.ip_version != 4:
        raise ValueError(f'udp_multicast group {multicast.group} is IPv6; binding it to '
                         f'{bind_address} needs an IPv4 group such as 239.74.163.2, or set '
                         'the bind address to 0.0.0.0')
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        iface = socket.inet_aton(bind_address)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL,
                        struct.pack('@I', multicast.hop_limit))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, 'SO_REUSEPORT'):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if multicast.timestamp_nanosecond:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        # The group address, not 0.0.0.0: unicast datagrams to this host's port never match.
        sock.bind((multicast.group, multicast.port))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                        socket.inet_aton(multicast.group) + iface)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, iface)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    except OSError as err:
        sock.close()
        raise ValueError(f'cannot join udp_multicast group {multicast.group} on {bind_address} '
                         f'({err}): use an IPv4 address of this host, 127.0.0.1 for one '
                         'host') from err
    old, multicast._socket = multicast._socket, sock
    old.close()
