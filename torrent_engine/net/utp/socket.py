"""The async shell: one UDP socket multiplexing uTP connections (each an ``anyio.abc.ByteStream``,
``stream.UtpStream``) and passing KRPC datagrams to the DHT (``dht_channel.DhtChannel``).

Datagrams are read in batches in the event loop's reader callback (no per-packet task, no
transport object): each wake-up reads up to ``READ_BATCH`` datagrams with plain ``recvfrom``,
hands each to its connection's core (found by the sender's address and connection id in one
dict lookup of the connection table, ``table.py``), and then flushes every connection touched
once, so a batch of data packets is answered by at most one ack (the core may defer the ack of
in-order data; a loop timer sends it by its deadline). What a connection sends in one flush
leaves in runs, each one ``sendmsg`` that the kernel cuts into datagrams (``gso.py``); on Linux
the socket also reads such runs from a peer coalesced (``UDP_GRO``). A timer task drives
retransmission timeouts.

Datagram size: the core offers larger datagrams than the standard 1 400 bytes in the handshake
only when told the path carries them (``max_datagram``), and the socket says so only for a
loopback peer (127.0.0.0/8, ::1): the loopback interface's MTU is 64 KiB, so nothing is
fragmented there, and two endpoints on one machine (the ``demo``, a local seedbox) move their
data in a tenth of the datagrams. Toward any other address the socket offers nothing and the
connection starts at ``PACKET_SIZE``. Asking the kernel for the route MTU (``IP_MTU``) would need
a connected socket per peer beside the shared one, and the MTU of the first hop says nothing of
the hops after it; so the connection finds the path's MTU itself (``connection.py``: padded
probes between ``PACKET_SIZE`` and ``mtu_ceiling``, 1 500 bytes of Ethernet less the headers).

A probe leaves with the don't-fragment bit (``_send_probe``): on Linux the socket's
``IP_MTU_DISCOVER`` is set to ``IP_PMTUDISC_DO`` (and ``IPV6_DONTFRAG`` on an IPv6 socket) for
that one ``sendto`` and put back after it, as libtorrent does around its probes; everything
else on the shared socket (data at the size found, acks, the DHT's KRPC) keeps the kernel's
default (``IP_PMTUDISC_WANT``: the bit set, and a datagram above an MTU the kernel learnt from
ICMP fragmented here rather than lost). A router that fragments a probe without the bit would
make a size look carried that costs fragments; one that drops it with an ICMP "fragmentation
needed" teaches the kernel the MTU, and the next probe above it fails with EMSGSIZE, which
lowers the connection's ceiling (``mtu_probe_refused``) and sends the probe's bytes again
unpadded, never failing the connection.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import random
import socket
import sys
import time
from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Any  # Any: socket addresses of any family, as asyncio and the socket module give them

import anyio
import anyio.abc

from ...beats import sleep_to_beat
from ...errors import UtpError
from ..netbind import NetBind, bind_socket
from . import gso, mmsg
from .connection import PACKET_SIZE, UtpConnection
from .dht_channel import DhtChannel
from .events import Readable
from .packet import (
    HEADER_SIZE,
    SEQ_MASK,
    TS_MASK,
    VERSION,
    Packet,
    PacketType,
    decode,
    encode,
    is_probe,
    looks_like_utp,
)
from .state import State
from .stream import UtpStream
from .table import ConnectionTable, SilentPeers, WireAddress

log = logging.getLogger(__name__)

Address = tuple[str, int]
TICK = 0.02  # s between timer checks (the smallest RTO is 500 ms; a tail loss probe, two round trips)
# s between checks with no connection (ICMP errors drained, nothing else to time): an idle daemon's
# socket woke fifty times a second for nothing; each on the daemon's beat (``beats.py``), where its
# other timers wake the loop too
IDLE_TICK = 1.0
LINGER_US = 5_000_000  # a closed connection still acks a retransmitted FIN this long
SOCKET_BUFFER = 4 << 20  # bytes of kernel buffer asked for in each direction
READ_BATCH = 64  # datagrams read per wake-up before the touched connections are flushed (and acked)
MAX_DATAGRAM = 65536  # what a read takes: nothing is cut short
MAX_UDP_PAYLOAD = 65507  # the largest datagram we can send: 65 535 bytes of IPv4 less its headers
# the datagram size offered to loopback peers: near the largest UDP payload, with room to spare;
# of 1 400, 8 235, 16 427 (one 16 KiB block and its piece message header a datagram), 32 768,
# 49 221, 65 000 and 65 507 bytes it cost the event loop least (bench/bench_utp_datagram.py,
# bench/RESULTS.md "uTP datagrams above 1 400 bytes between our endpoints on loopback")
LOOPBACK_DATAGRAM = 65000
WAKE_BYTES = 256 * 1024  # while a backlog of datagrams is read, a reader is woken once this much waits
_FIRST_SYN = (PacketType.SYN << 4) | VERSION  # a packet type byte below this is DATA, FIN, STATE or RESET
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)  # Linux
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)  # Linux
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)  # Linux (<linux/in.h>)
IP_PMTUDISC_DO = 2  # Linux: the don't-fragment bit always; EMSGSIZE above the known path MTU
IPV6_DONTFRAG = getattr(socket, "IPV6_DONTFRAG", 62)  # RFC 3542
# the largest datagram a path through Ethernet (1 500 bytes) carries: less the IPv4 or IPv6
# header and UDP's 8 bytes (the ceiling of a connection's path MTU discovery)
ETHERNET_MTU = 1500
IPV4_MTU_CEILING = ETHERNET_MTU - 20 - 8
IPV6_MTU_CEILING = ETHERNET_MTU - 40 - 8


def _dual_stack_socket(port: int) -> socket.socket | None:
    """A UDP socket on [::]:port that takes IPv4 too, or None where IPv6 is unavailable."""
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    except OSError:
        return None
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port))
    except OSError:
        sock.close()
        return None
    return sock


def _coalescing(sock: socket.socket) -> bool:
    """Ask the kernel to hand over runs of datagrams from one sender together (``UDP_GRO``);
    whether it agreed."""
    try:
        sock.setsockopt(mmsg.SOL_UDP, mmsg.UDP_GRO, 1)
    except OSError:
        return False
    return True


def _errqueue_errno(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The ``ee_errno`` of the ``sock_extended_err`` in an error-queue message's ancillary data."""
    for level, kind, payload in ancillary:
        if ((level, kind) in ((socket.IPPROTO_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR))
                and len(payload) >= 4):
            return int.from_bytes(payload[:4], sys.byteorder)
    return None


def _unmap(host: str) -> str:
    return host[7:] if host.startswith("::ffff:") and "." in host else host


def _segments(multi: mmsg.MultiReceiver, lengths: list[int]) -> list[tuple[int, int, int, int]]:
    """Every datagram of a ``recvmmsg`` batch in which some slots hold several (``UDP_GRO``):
    ``(slot, offset of its sender's address, offset of the datagram, size)``."""
    stride, skip = mmsg.STRIDE, mmsg.NAME_SIZE
    out: list[tuple[int, int, int, int]] = []
    for i, size in enumerate(lengths):
        name = i * stride
        segment = multi.segment_size(i)
        if not segment:
            out.append((i, name, name + skip, size))
            continue
        count, last = divmod(size, segment)
        sizes = [segment] * count + [last] if last else [segment] * count
        start = name + skip
        # (zipped in C: this runs once per datagram of a coalesced slot)
        out += zip(repeat(i), repeat(name), range(start, start + size, segment), sizes, strict=False)
    return out


class _Protocol(asyncio.DatagramProtocol):
    """For event loops that cannot watch a file descriptor (``add_reader``): one datagram per call."""

    def __init__(self, owner: UtpSocket) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:  # Any: asyncio's DatagramProtocol signature
        owner = self.owner
        owner.datagrams_received += 1
        owner._datagram(data, addr, owner.now_us())
        owner._schedule_flush()

    def error_received(self, exc: Exception) -> None:
        self.owner._icmp_errors()


class UtpSocket:
    """A UDP endpoint for uTP. ``run`` binds it and serves until cancelled (closing every
    connection). ``on_accept(stream)``, when given, receives each incoming connection."""

    def __init__(self, *, on_accept: Callable[[UtpStream], None] | None = None,
                 accepting: Callable[[], bool] = lambda: True, refusing: Callable[[], bool] = lambda: False,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None,
                 recvmmsg: bool = True, segment: bool = True, coalesce: bool = True,
                 loopback_datagram: int = LOOPBACK_DATAGRAM) -> None:
        """``loopback_datagram``: the largest datagram offered to a loopback peer (at most
        ``PACKET_SIZE`` offers nothing); other peers get ``PACKET_SIZE``. ``accepting()``: whether
        an incoming connection may be taken now; a SYN that comes while not is dropped unanswered,
        as when the table is full (its sender sends it again). While ``refusing()``, a SYN is
        answered with a reset (uTP turned off for incoming peers: the dialer learns it at once)."""
        self.on_accept = on_accept
        self.accepting = accepting
        self.refusing = refusing
        self.netbind: NetBind | None = None  # the interface its socket is bound to (None: any)
        if not 0 < loopback_datagram <= MAX_UDP_PAYLOAD:
            raise ValueError(f"loopback_datagram must be 1..{MAX_UDP_PAYLOAD} bytes: {loopback_datagram}")
        self._loopback_datagram = loopback_datagram
        self._want_multi = recvmmsg and mmsg.available()
        self._segment = segment and gso.available()  # runs of datagrams in one sendmsg (UDP_SEGMENT)
        self._coalesce = coalesce  # runs of datagrams in one slot of a recvmmsg (UDP_GRO)
        self._multi: mmsg.MultiReceiver | None = None  # batch reads in one system call (Linux)
        self._clock = clock
        self._rng = rng or random.Random(int.from_bytes(os.urandom(8), "big"))
        self._sock: socket.socket | None = None
        self._transport: asyncio.DatagramTransport | None = None  # only where add_reader is missing
        self.table = ConnectionTable()
        self._dirty: set[UtpStream] = set()
        self._wake_later: set[UtpStream] = set()  # new data, reader not yet woken (more is coming)
        self._flush_scheduled = False
        self._deferred: set[UtpStream] = set()  # connections holding back the ack of in-order data
        self._ack_timer: asyncio.TimerHandle | None = None
        self._dht: DhtChannel | None = None
        self._local: Address = ("", 0)
        self._silent = SilentPeers()
        self._recverr = False
        self._connected = anyio.Event()  # set when a connection joins the table (the timers run again)
        self._dont_fragment: int | None = None  # IP_MTU_DISCOVER as the kernel set it (None: unknown)
        self._reader: asyncio.AbstractEventLoop | None = None  # the loop whose add_reader reads us
        self._rearm_scheduled = False
        self._dual = False  # an IPv6 socket that also carries IPv4 (as mapped addresses)
        self.resets_sent = 0
        self.timer_rounds = 0  # how many times the timers ran (an idle socket: once a second)
        # the connections a timer round looks at: those serviced since (a datagram came, one was
        # written, a timer fired: what may arm a timer) and those the last round saw armed or
        # closing; none, the round waits for one, at most IDLE_TICK, not TICK
        self._timed: set[UtpStream] = set()
        self.send_errors = 0
        self.datagrams_received = 0  # every datagram that reached the socket (uTP and KRPC)
        self.datagrams_sent = 0
        self.segmented_sends = 0  # sendmsg calls that carried a run of datagrams (UDP_SEGMENT)
        self.coalesced_reads = 0  # recvmmsg calls in which a slot held a run of datagrams (UDP_GRO)

    def now_us(self) -> int:
        """The socket's clock in microseconds."""
        return int(self._clock() * 1_000_000)

    @property
    def local_address(self) -> Address:
        """The bound ``(host, port)``."""
        return self._local

    @property
    def connections(self) -> int:
        """How many uTP connections are open."""
        return self.table.open_count()

    def dht_channel(self) -> DhtChannel:
        """Route KRPC datagrams (first byte ``d``) to a channel the DHT node can use."""
        self._dht = DhtChannel(self)
        return self._dht

    def detach_dht(self, channel: DhtChannel) -> None:
        """Stop routing KRPC datagrams to ``channel`` (its ``aclose``)."""
        if self._dht is channel:
            self._dht = None

    async def run(self, host: str, port: int, *,
                  task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Bind the UDP socket to ``host:port`` and serve it until cancelled (``task_status`` once bound)."""
        loop = asyncio.get_running_loop()
        sock = await self._bind(host, port)
        if self.netbind is not None:
            try:
                bind_socket(sock, self.netbind)
            except OSError:
                sock.close()
                raise
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:  # a burst of a full window must not overflow the default (~200 KB) buffer
                sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
            except OSError:
                pass  # the kernel caps it at net.core.rmem_max / wmem_max
        try:  # Linux: ICMP errors (port unreachable) with the datagram that caused them
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
            if sock.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
            self._recverr = True
        except (OSError, AttributeError):
            self._recverr = False
        if sys.platform.startswith("linux"):
            try:
                self._dont_fragment = sock.getsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER)
            except OSError:
                self._dont_fragment = None
        sockname = sock.getsockname()
        # a dual-stack socket serves IPv4 peers (the DHT on it acts as an IPv4 node)
        self._local = ("0.0.0.0" if self._dual else str(sockname[0]), int(sockname[1]))
        fd = sock.fileno()
        transport: asyncio.DatagramTransport | None = None
        try:
            try:
                if self._want_multi:
                    try:
                        self._multi = mmsg.MultiReceiver(sock.family, READ_BATCH,
                                                         coalesce=self._coalesce and _coalescing(sock))
                    except OSError as exc:
                        log.debug("recvmmsg unavailable (%s): reading datagrams one by one", exc)
                loop.add_reader(fd, self._on_readable)
                self._reader = loop
            except NotImplementedError:  # e.g. Windows' proactor loop: the transport, one by one
                transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
                self._transport = transport
            self._sock = sock
            task_status.started()
            while True:
                if self._timed:
                    await anyio.sleep(TICK)
                else:  # (a connection made or accepted wakes the timers at once; else the
                    # daemon's beat: the loop is woken for the other timers then anyway)
                    self._connected = anyio.Event()
                    await sleep_to_beat(IDLE_TICK, self._connected)
                self.timer_rounds += 1
                if self._recverr:  # an error nobody reported yet (see _icmp_errors)
                    self._icmp_errors()
                self._tick()
        finally:
            self._reader = None
            self._timed.clear()
            for stream in self.table.clear():
                stream.conn.abort("the uTP socket closed")
                stream.wake()
            self._sock = None
            self._transport = None
            if self._multi is not None:
                self._multi.close()
                self._multi = None
            if transport is not None:
                transport.close()
            else:
                loop.remove_reader(fd)
                sock.close()

    async def _bind(self, host: str, port: int) -> socket.socket:
        if host in ("", "::"):  # every interface, IPv4 and IPv6 (IPv4 peers as ::ffff:a.b.c.d)
            sock = _dual_stack_socket(port) if host == "" else None
            if sock is not None:
                self._dual = True
                sock.setblocking(False)
                return sock
            family = socket.AF_INET6 if host == "::" else socket.AF_INET
            # Any: a socket address, as getaddrinfo types it per family
            address: Any = (host or "0.0.0.0", port)
        else:
            try:
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot resolve the uTP listen address {host}: {exc}") from None
            if not infos:
                raise OSError(f"cannot resolve the uTP listen address {host}")
            family, address = infos[0][0], infos[0][4]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind(address)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    # -- datagrams -----------------------------------------------------------------------
    def sendto(self, data: bytes, addr: Address) -> None:
        """Send one datagram (IPv4 addresses mapped on a dual-stack socket; errors counted).

        A full socket buffer drops the datagram as a router queue would (uTP resends it); an
        error from an earlier datagram's ICMP reply (reported on this call, which then sent
        nothing) is read from the error queue and the datagram sent again."""
        sock = self._sock
        if sock is None:
            self.send_errors += 1
            return
        addr = self._wire(addr)
        self.datagrams_sent += 1
        if self._transport is not None:
            try:
                self._transport.sendto(data, addr)
            except (OSError, ValueError):
                self.send_errors += 1
            return
        for attempt in range(2):
            try:
                sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self.send_errors += 1
                return
            except ValueError:
                self.send_errors += 1
                return
            except OSError:
                # With IP_RECVERR, Linux reports an ICMP error (another peer's closed port) on the
                # next call of this unconnected socket, and that call sends nothing: read the error
                # queue, then send this datagram again, once; it may belong to a healthy connection
                if attempt:
                    self.send_errors += 1
                else:
                    self._icmp_errors()

    def _wire(self, addr: Address) -> Address:
        """``addr`` as the socket takes it: an IPv4 address mapped on a dual-stack socket."""
        if self._dual and "." in addr[0] and ":" not in addr[0]:
            return ("::ffff:" + addr[0], addr[1])
        return addr

    def send_many(self, datagrams: list[bytes], addr: Address) -> None:
        """Send ``datagrams`` to ``addr`` in order: each run of equal-sized ones (the last of a run
        may be shorter) in one ``sendmsg`` that the kernel cuts into datagrams (``UDP_SEGMENT``),
        the rest with ``sendto``. Where the kernel or the route cannot segment, the socket sends
        one by one from then on; a full buffer drops the run, as it would drop each datagram."""
        sock = self._sock
        if not self._segment or sock is None or self._transport is not None or len(datagrams) < 2:
            for data in datagrams:
                self.sendto(data, addr)
            return
        wire = self._wire(addr)
        for start, stop in gso.runs(list(map(len, datagrams))):
            if stop - start > 1 and self._segment:
                run = datagrams[start:stop]
                try:
                    sock.sendmsg(run, gso.control(len(run[0])), 0, wire)  # (gathered by the kernel)
                    self.datagrams_sent += len(run)
                    self.segmented_sends += 1
                    continue
                except (BlockingIOError, InterruptedError):
                    self.datagrams_sent += len(run)
                    self.send_errors += len(run)
                    continue
                except OSError as exc:
                    if exc.errno in gso.UNSUPPORTED:
                        log.debug("UDP segmentation unavailable (%s): datagrams one by one", exc)
                        self._segment = False
                    else:  # an earlier datagram's ICMP error, reported on this call (nothing sent)
                        self._icmp_errors()
                except ValueError:
                    pass  # (sendto below counts it)
            for i in range(start, stop):
                self.sendto(datagrams[i], addr)

    def _send_with_probe(self, out: list[bytes], probe: bytes, stream: UtpStream) -> None:
        """Send ``out``, in which ``probe`` is a path MTU probe: the probe alone, without
        fragmentation; refused by the kernel (EMSGSIZE), its connection sends its bytes again."""
        at = next(i for i, data in enumerate(out) if data is probe)
        if at:
            self.send_many(out[:at], stream.remote)
        if not self._send_probe(probe, stream.remote):
            stream.conn.mtu_probe_refused()
            self.mark(stream)
        if at + 1 < len(out):
            self.send_many(out[at + 1:], stream.remote)

    def _send_probe(self, data: bytes, addr: Address) -> bool:
        """Send one datagram with the don't-fragment bit (see the module's docstring); False when
        the kernel refuses it as larger than the path MTU it knows (EMSGSIZE)."""
        sock, before = self._sock, self._dont_fragment
        if sock is None or self._transport is not None or before is None:
            self.sendto(data, addr)
            return True
        v6 = sock.family == socket.AF_INET6
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
            if v6:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_DONTFRAG, 1)
        except OSError:
            self.sendto(data, addr)
            return True
        try:
            self.datagrams_sent += 1
            sock.sendto(data, self._wire(addr))
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:
                self.datagrams_sent -= 1
                return False
            self.send_errors += 1  # (a full buffer, or an earlier ICMP error: read by the next send)
        finally:
            try:
                sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, before)
                if v6:
                    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_DONTFRAG, 0)
            except OSError:
                pass
        return True

    def _icmp_errors(self) -> None:
        """An ICMP error came back: read which datagrams caused it. Where nothing listens on the
        peer's UDP port (port unreachable), its connection is aborted at once instead of
        retransmitting into the void until its timeouts run out: a dial whose SYN was refused
        (so the TCP fallback starts immediately), or a connection whose peer died (a process
        killed without a FIN), as libtorrent does. Other errors (host or network unreachable)
        fail a dial too, but leave an open connection to its timeouts; a "fragmentation needed"
        for an MTU probe lowers its connection's ceiling."""
        sock = self._sock
        if not self._recverr or sock is None:
            return
        try:
            for _ in range(64):
                try:
                    data, anc, _flags, addr = sock.recvmsg(64, 512, socket.MSG_ERRQUEUE)
                except (BlockingIOError, InterruptedError):
                    break
                if self._reader is not None and not self._rearm_scheduled:
                    self._rearm_scheduled = True
                    self._reader.call_soon(self._rearm)
                if len(data) < 4 or data[0] & 0x0F != VERSION or not isinstance(addr, tuple):
                    continue
                stream = self.table.sender_of(data, (_unmap(str(addr[0])), int(addr[1])))
                if stream is None or stream.conn.state is State.CLOSED:
                    continue
                code = _errqueue_errno(anc)
                if code == errno.EMSGSIZE and is_probe(data):
                    # a router's "fragmentation needed" for our MTU probe (padded, see packet.pad)
                    stream.conn.mtu_probe_refused()
                    self.mark(stream)
                    continue
                if code == errno.ECONNREFUSED or stream.conn.state is State.SYN_SENT:
                    what = "port unreachable" if code == errno.ECONNREFUSED else os.strerror(code or 0)
                    stream.conn.abort(f"{what} (ICMP) at {addr[0]}:{addr[1]}")
                    stream.wake()
        except OSError as exc:
            log.debug("reading the ICMP error queue failed: %s", exc)

    def _rearm(self) -> None:
        """Watch the socket afresh. An ICMP error makes the socket signal POLLERR, and uvloop
        (libuv) then closes its watch of the descriptor for good without calling the reader:
        the socket would go deaf. Every error is read from the queue sooner or later (by
        ``sendto``, the reader or the timer task), and reading one re-arms the watch."""
        self._rearm_scheduled = False
        sock, loop = self._sock, self._reader
        if sock is None or loop is None:
            return
        fd = sock.fileno()
        loop.remove_reader(fd)
        loop.add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        """The socket is readable: read a batch, feed each connection, then flush the touched ones."""
        sock = self._sock
        if sock is None:
            return
        if self._multi is not None:
            self._read_multi(sock, self._multi)
            return
        recv = sock.recvfrom
        by_wire = self.table.by_wire
        dirty = self._dirty
        now = self.now_us()  # one clock read per batch: the batch is read within microseconds
        count = 0
        run: list[bytes] = []  # consecutive datagrams of one connection, handed over together
        run_stream: UtpStream | None = None
        errors = 0
        while count < READ_BATCH:
            try:
                data, addr = recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # an ICMP error reported on the socket (IP_RECVERR): read its queue,
                self._icmp_errors()  # then the datagrams behind it (the report consumed the error)
                errors += 1
                if errors > READ_BATCH:
                    break
                continue
            count += 1
            # a data, ack, FIN or reset of a known connection: straight to its core
            if len(data) >= HEADER_SIZE and data[0] < _FIRST_SYN and data[0] & 0x0F == VERSION:
                stream = by_wire.get((addr, data[2] << 8 | data[3]))
                if stream is not None:
                    if stream is run_stream:
                        run.append(data)
                    else:
                        if run_stream is not None:
                            run_stream.feed(run, now)
                        run_stream, run = stream, [data]
                        dirty.add(stream)
                    continue
            if run_stream is not None:  # keep the arrival order across connections
                run_stream.feed(run, now)
                run_stream, run = None, []
            self._datagram(data, addr, now)
        if run_stream is not None:
            run_stream.feed(run, now)
        self.datagrams_received += count
        self._after_batch(sock, count)

    def _read_multi(self, sock: socket.socket, multi: mmsg.MultiReceiver) -> None:
        """``_on_readable`` with ``recvmmsg``: the batch is read in one call into ``multi``'s
        slots and looked at in place. A run of datagrams from one connection's peer (same raw
        address and connection id) is routed once and handed to its core as views; only the
        general path (``_datagram``) gets copies and an address tuple."""
        count = 0
        for _ in range(READ_BATCH):
            try:
                count = multi.receive(sock.fileno())
                break
            except OSError:  # an ICMP error reported on the socket (IP_RECVERR): read its queue,
                self._icmp_errors()  # then the datagrams behind it (the report consumed the error)
        if count:
            now = self.now_us()  # one clock read per batch: the batch is read within microseconds
            by_wire = self.table.by_wire
            dirty = self._dirty
            buf = multi.buffer
            mem = multi.memory
            lengths = multi.lengths(count)
            run: list[memoryview] = []  # consecutive datagrams of one connection, handed over together
            run_stream: UtpStream | None = None
            run_key = b""
            stride, skip = mmsg.STRIDE, mmsg.NAME_SIZE
            # (slot, where its sender's address is, where the datagram is, its size)
            items: Iterable[tuple[int, int, int, int]] = zip(
                range(count), range(0, count * stride, stride), range(skip, count * stride, stride), lengths,
                strict=True)
            received = count
            if multi.coalesced(count):
                segments = _segments(multi, lengths)
                items, received = segments, len(segments)
                self.coalesced_reads += 1
            for i, name, start, size in items:
                # the sender's raw address and the datagram's first four bytes (type, connection id)
                key = (mem[name:start + 4] if start - name == skip
                       else mem[name:name + skip] + mem[start:start + 4])  # (past a slot's first datagram)
                if key == run_key:  # (a datagram too short to be uTP is dropped by the core)
                    run.append(buf[start:start + size])
                    continue
                if run_stream is not None:  # keep the arrival order across connections
                    run_stream.feed(run, now)
                    run_stream, run_key, run = None, b"", []
                view = buf[start:start + size]
                first = key[skip]
                if size >= HEADER_SIZE and first < _FIRST_SYN and first & 0x0F == VERSION:
                    stream = by_wire.get((multi.address(i), key[skip + 2] << 8 | key[skip + 3]))
                    if stream is not None:  # a data, ack, FIN or reset of a known connection
                        run_stream, run_key, run = stream, key, [view]
                        dirty.add(stream)
                        continue
                self._datagram(bytes(view), multi.address(i), now)
            if run_stream is not None:
                run_stream.feed(run, now)
            self.datagrams_received += received
        self._after_batch(sock, count)

    def _after_batch(self, sock: socket.socket, count: int) -> None:
        """A read batch is in: hand the connections their news and send what they answer."""
        backlog = False
        if count == READ_BATCH:
            try:  # more waiting? (this callback then runs again: the loop's watch is level-triggered)
                sock.recv(1, socket.MSG_PEEK)
                backlog = True
            except OSError:
                pass  # drained (or an error, which the next read reports)
        if self._dirty or self._wake_later:
            # while a backlog is read, readers sleep on until it is (or WAKE_BYTES wait), so they
            # take the data in fewer, larger reads
            self._flush(backlog=backlog)

    def _datagram(self, data: bytes, wire_addr: WireAddress, now: int) -> None:
        """Every datagram the batch path does not take: KRPC, SYNs, unknown connections, the
        first packet of a connection from this address (which enters it in ``table.by_wire``)."""
        addr: Address = (_unmap(str(wire_addr[0])), int(wire_addr[1]))
        if not looks_like_utp(data):
            if data[:1] == b"d" and self._dht is not None:
                self._dht.put(data, addr)
            return
        try:
            pkt = decode(data)
        except UtpError as exc:
            log.debug("bad uTP packet from %s:%d: %s", addr[0], addr[1], exc)
            return
        if pkt.type is PacketType.SYN:
            stream = self.table.get(addr, (pkt.connection_id + 1) & SEQ_MASK)
            if stream is None:
                self._incoming(pkt, addr)
                return
        else:
            stream = self.table.get(addr, pkt.connection_id)
            if stream is not None:
                self.table.learn_wire(stream, wire_addr, pkt.connection_id)
            elif pkt.type is PacketType.RESET:
                # a socket that does not know a connection resets it with the id the packet it
                # got carried: our send id (libutp's and ours; libutp looks up all three ids).
                # Unheard, a FIN to a peer that forgot us was resent for minutes, and the
                # connection walked by every timer round meanwhile (1 800 after a swarm's dials)
                stream = self.table.sender_of(data[:HEADER_SIZE], addr)
        if stream is None:
            if pkt.type is not PacketType.RESET:
                self._reset(pkt, addr, now)
            return
        stream.conn.receive_packet(pkt, now)
        self.mark(stream)

    def _reset(self, pkt: Packet, addr: Address, now: int) -> None:
        """Answer ``pkt``, of no connection we take, with a reset carrying the id it carried."""
        self.resets_sent += 1
        reset = Packet(PacketType.RESET, pkt.connection_id, now & TS_MASK, 0, 0, 0, pkt.seq_nr)
        self.sendto(encode(reset), addr)

    def _incoming(self, syn: Packet, addr: Address) -> None:
        if self.refusing():
            self._reset(syn, addr, self.now_us())
            return
        if self.on_accept is None or self.table.full or not self.accepting():
            return
        conn = UtpConnection.accept(syn, self._rng.randrange(1 << 16), self.now_us(),
                                    max_datagram=self.max_datagram(addr[0]),
                                    mtu_ceiling=self.mtu_ceiling(addr[0]))
        stream = UtpStream(self, conn, addr)
        self.table.add(addr, stream)
        self._connected.set()
        self.mark(stream)
        self.on_accept(stream)

    def max_datagram(self, host: str) -> int:
        """The largest datagram a connection with ``host`` (an IP address) may use: see the
        module's docstring."""
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return PACKET_SIZE
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None  # (a dual-stack socket)
        return self._loopback_datagram if (mapped or ip).is_loopback else PACKET_SIZE

    def mtu_ceiling(self, host: str) -> int:
        """The largest datagram a path to ``host`` (an IP address) may carry, where a connection's
        path MTU discovery stops: an Ethernet MTU less the headers (a connection that agreed on
        larger datagrams, ``max_datagram``, does not search)."""
        if ":" in host and not host.startswith("::ffff:"):
            return IPV6_MTU_CEILING
        return IPV4_MTU_CEILING

    def mark(self, stream: UtpStream) -> None:
        """``stream``'s connection has something to send: flush it in this loop iteration."""
        self._dirty.add(stream)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_scheduled = False
        self._flush()

    def _flush(self, *, backlog: bool = False) -> None:
        dirty, self._dirty = self._dirty, set()
        now = self.now_us()
        for stream in dirty:
            self._service(stream, now, backlog=backlog)
        if not backlog and self._wake_later:
            for stream in self._wake_later:
                stream.wake()
            self._wake_later.clear()

    def _service(self, stream: UtpStream, now: int, *, backlog: bool = False) -> None:
        conn = stream.conn
        if stream not in self._timed:  # (what happens here may arm a timer: the rounds look)
            self._timed.add(stream)
            self._connected.set()
        # the reader first: a protocol fed from here answers at once (requests), and what it
        # wrote leaves below with the ack, in one data packet instead of an ack and a packet
        events = conn.events()
        if events:
            if (backlog and len(events) == 1 and type(events[0]) is Readable
                    and conn.readable < WAKE_BYTES):
                self._wake_later.add(stream)
            else:
                self._wake_later.discard(stream)
                stream.wake(flushing=True)
        out = conn.datagrams(now)
        if out:
            probe = conn.mtu_probe_datagram
            if probe is not None:
                self._send_with_probe(out, probe, stream)
            elif len(out) == 1:
                self.sendto(out[0], stream.remote)
            else:
                self.send_many(out, stream.remote)
        if conn.ack_deferred:  # sent with more data, or by the ack timer at the deadline
            self._deferred.add(stream)
            if self._ack_timer is None:
                due = conn.timeout_at
                delay = 0.0 if due is None else max(0.0, (due - now) / 1_000_000)
                self._ack_timer = asyncio.get_running_loop().call_later(delay, self._send_deferred)
        if conn.events():  # what sending changed (closed once our FIN was acked)
            stream.wake()

    def _send_deferred(self) -> None:
        """The ack timer: send the acks whose deadline passed; rearm for the others."""
        self._ack_timer = None
        streams, self._deferred = self._deferred, set()
        if self._sock is None:  # the socket closed meanwhile
            return
        now = self.now_us()
        for stream in streams:
            conn = stream.conn
            if conn.ack_deferred:
                conn.on_timer(now)
                self._service(stream, now)

    def _tick(self) -> None:
        now = self.now_us()
        for stream in list(self._timed):
            conn = stream.conn
            deadline = conn.timeout_at
            keep = deadline is not None
            if deadline is not None and now >= deadline:
                conn.on_timer(now)
                self._service(stream, now)
            if conn.state is State.CLOSED:
                keep = True  # (lingering until forgotten)
                if stream.closed_at is None:
                    stream.closed_at = now
                    stream.wake()
                elif now - stream.closed_at > LINGER_US or conn.error is not None:
                    self.table.forget((stream.remote, conn.recv_id))
                    keep = False
            if not keep:
                self._timed.discard(stream)

    # -- dialing -------------------------------------------------------------------------
    def note_silent(self, host: str, port: int) -> None:
        """Remember that ``host:port`` did not answer a uTP dial (it may speak TCP only)."""
        self._silent.note(host, port, self._clock())

    def is_silent(self, host: str, port: int) -> bool:
        """Whether ``host:port`` failed to answer a uTP dial recently (so dial TCP instead)."""
        return self._silent.is_silent(host, port, self._clock())

    async def _resolve(self, host: str) -> str:
        try:
            ipaddress.ip_address(host)
            return host
        except ValueError:
            pass
        family = socket.AF_INET6 if ":" in self._local[0] and not self._dual else socket.AF_INET
        try:
            infos = await anyio.getaddrinfo(host, None, family=family, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise UtpError(f"cannot resolve {host}: {exc}") from None
        if not infos:
            raise UtpError(f"cannot resolve {host}")
        return str(infos[0][4][0])

    async def connect(self, host: str, port: int) -> UtpStream:
        """Open a uTP connection (raises ``UtpError`` when refused or unanswered; the caller
        bounds the wait with a timeout)."""
        if self._sock is None:
            raise UtpError("the uTP socket is not running")
        addr = (await self._resolve(host), port)  # replies come from the IP: key by it
        conn_id = self.table.free_id(addr, self._rng)
        if conn_id is None:
            raise UtpError(f"no free uTP connection id for {host}:{port}")
        conn = UtpConnection.initiate(conn_id, self._rng.randrange(1 << 16),
                                      max_datagram=self.max_datagram(addr[0]),
                                      mtu_ceiling=self.mtu_ceiling(addr[0]))
        stream = UtpStream(self, conn, addr)
        key = self.table.add(addr, stream)
        self._connected.set()
        self.mark(stream)
        try:
            while conn.state is State.SYN_SENT:
                await stream.wait_change()
        except BaseException:
            conn.abort("connect cancelled")
            self.table.forget(key)
            raise
        if conn.state is State.CLOSED:
            self.table.forget(key)
            raise UtpError(f"uTP connect to {host}:{port} failed: {conn.error}")
        return stream
