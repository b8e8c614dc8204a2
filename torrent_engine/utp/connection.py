"""One uTP connection, sans-I/O: packets and a clock value in, datagrams and events out.

The shell feeds every datagram for this connection to ``receive_datagram(data, now_us)`` (or a
decoded packet to ``receive_packet``), calls ``on_timer(now_us)`` when ``timeout_at`` passes,
drains ``datagrams(now_us)`` to the socket and ``events()`` to the application. The application
writes with ``send`` (bounded by the send buffer) and reads with ``read`` (the advertised window
is the free receive buffer).

Datagrams are ``PACKET_SIZE`` bytes at most, unless both ends offered larger ones (``max_datagram``:
our ST_SYN, and our ST_STATE answering one, carry the largest datagram we accept, an extension
of ours that other implementations skip, see ``packet.py``): then the connection uses the
smaller of the two offers, from the handshake on. What the path carries is the shell's call
(``socket.py``); the core is told it as ``max_datagram``.

Otherwise the connection looks for the path's MTU (RFC 4821's packetization-layer PMTUD, as
libtorrent does it): the datagram size it knows passes (the floor, ``PACKET_SIZE`` at first)
and one the path may carry (the ceiling, ``mtu_ceiling``, the shell's guess: 1 500 bytes of
Ethernet less the IP and UDP headers). Now and then one data packet goes padded to the midpoint
(an extension every receiver skips, ``packet.pad``), one at a time, only while the window holds
at least three packets and no loss is being repaired. Acked, the floor rises to its size and
every datagram from then on may be that large; lost ``MTU_PROBE_TRIES`` times, the ceiling
drops below it. A lost probe costs no window cut, and what it carried goes again unpadded, at
the floor's size, so a path that silently drops large datagrams never stalls the transfer. The
search stops when floor and ceiling are less than ``MTU_SEARCH_DONE`` apart.

The per-datagram path is written for speed, since every step runs once per datagram: the
header is parsed with one ``struct`` call and no packet object; in-order data that acks nothing
new (a steady download) takes a short path; acks are coalesced (the shell drains
``datagrams`` once per batch of received datagrams, so one ST_STATE answers the batch) and
the ack of in-order data is deferred across batches, up to ``ACK_EVERY`` packets or
``ACK_DELAY_US`` (part of ``timeout_at``); selective-ack work happens only when packets arrive out of order.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Sequence

from ..errors import UtpError
from . import events as ev
from .congestion import MAX_RTO_US, Ledbat, RttEstimator
from .packet import (
    HEADER,
    HEADER_SIZE,
    SEQ_MASK,
    TS_MASK,
    VERSION,
    Packet,
    PacketType,
    decode,
    encode_header,
    make_sack,
    pad,
    sack_bits,
    seq_less,
)
from .state import CAN_CLOSE, CAN_SEND, State, UtpStateError, next_state

PACKET_SIZE = 1400  # whole datagram; safe under every common path MTU (the floor of PMTU discovery)
SACK_LIMIT = 8  # bytes of selective-ack bitmask we send (64 packets past the hole)
DUP_ACK_LIMIT = 3  # BEP 29: three duplicate acks (or three packets sacked past a hole) = lost
SYN_RETRIES = 2  # SYN resends before the connect fails (libtorrent's utp_syn_resends)
MAX_TIMEOUTS = 6  # consecutive timeouts of a connected socket before it is declared dead
MAX_REORDER = 1024  # out-of-order packets we buffer
ACK_EVERY = 32  # in-order data packets acked together at most (a deferred ack goes out at this many)
ACK_BYTES = ACK_EVERY * PACKET_SIZE  # with larger datagrams, fewer packets (at least two) per ack
ACK_DELAY_US = 2_000  # how long the ack of in-order data may be deferred
PROBE_MIN_US = 10_000  # the tail loss probe waits at least this (and the peer's ack delay) past two SRTT
MTU_SEARCH_DONE = 16  # path MTU discovery stops when ceiling and floor are closer than this (bytes)
MTU_PROBE_TRIES = 2  # an MTU probe of one size lost this often means the path does not carry it

_DATA, _FIN, _STATE, _RESET, _SYN = (PacketType.DATA, PacketType.FIN, PacketType.STATE, PacketType.RESET,
                                     PacketType.SYN)
_DATA_V1 = (PacketType.DATA << 4) | VERSION  # first header byte of a data packet
_ROUTING = struct.Struct(">H14xHH")  # the header's type/version and extension (one number), seq_nr, ack_nr
# module constants: an enum member read through its class costs ten times a global's lookup
_SYN_SENT, _CONNECTED, _FIN_SENT, _CLOSED = State.SYN_SENT, State.CONNECTED, State.FIN_SENT, State.CLOSED
_READABLE = ev.Readable()
_WRITABLE = ev.Writable()


class _Out:
    """A packet of ours in flight (sent, not acked yet): what a resend and the acks need."""

    __slots__ = ("kind", "seq", "size", "datagram", "head", "sent_us", "transmissions", "need_resend",
                 "fast_resent")

    def __init__(self, kind: int, seq: int, size: int, datagram: bytes, head: int, sent_us: int,
                 transmissions: int) -> None:
        self.kind = kind
        self.seq = seq
        self.size = size  # payload bytes
        self.datagram = datagram  # as last sent: its header (``head`` bytes) and the payload
        self.head = head
        self.sent_us = sent_us
        self.transmissions = transmissions
        self.need_resend = False
        self.fast_resent = False

    @property
    def payload(self) -> bytes:
        """The packet's payload (what a resend carries after a fresh header)."""
        return self.datagram[self.head:]


class UtpConnection:
    """A uTP connection. Build one with ``initiate`` (we dial) or ``accept`` (an ST_SYN came)."""

    def __init__(self, *, recv_id: int, send_id: int, seq_nr: int, packet_size: int = PACKET_SIZE,
                 max_datagram: int = 0, mtu_ceiling: int = 0, recv_buffer: int = 1 << 20,
                 send_buffer: int = 1 << 20, max_window: int = 1 << 20) -> None:
        """``packet_size``: our datagrams' size unless larger ones are agreed or found; ``max_datagram``:
        the largest datagram this end accepts and the path carries (above ``packet_size`` it is
        offered to the peer in the handshake; 0: no offer); ``mtu_ceiling``: the largest datagram
        the path may carry, where path MTU discovery stops (at most ``packet_size``: none)."""
        self.recv_id = recv_id & SEQ_MASK
        self.send_id = send_id & SEQ_MASK
        self.state = _SYN_SENT
        self._use_packet_size(packet_size)
        # what we offer (0: nothing; the handshake then looks as it always did)
        self.max_datagram = max_datagram if max_datagram > packet_size else 0
        if self.max_datagram > 0xFFFF:
            raise UtpError(f"largest datagram must fit in 16 bits: {max_datagram}")
        self.peer_max_datagram = 0  # the peer's offer, once agreed on (0: standard datagrams)
        # path MTU discovery (whole datagrams): ``mtu_floor`` passes, above ``mtu_ceiling`` does not
        self.mtu_floor = packet_size
        self.mtu_ceiling = max(packet_size, min(mtu_ceiling, 0xFFFF))
        self._mtu_probe_seq: int | None = None  # the data packet an MTU probe carries, until acked or lost
        self._mtu_probe_size = 0
        self._mtu_losses = 0  # MTU probes of this size lost
        self._mtu_lost_seq: int | None = None  # the last lost probe's packet: its repair cuts no window
        self.mtu_probe_datagram: bytes | None = None  # the probe in the last ``datagrams`` (for the shell)
        self.mtu_probes_sent = 0
        self.mtu_probes_lost = 0
        self._answer_syn = False  # an ST_STATE carrying our offer is owed to the peer's SYN
        self._ack_every = ACK_EVERY
        self.recv_buffer = recv_buffer
        self.send_buffer = send_buffer
        self.seq_nr = seq_nr & SEQ_MASK  # the next seq_nr we will use
        self.acked_seq = (seq_nr - 1) & SEQ_MASK  # everything up to here the peer has
        self.ack_nr = 0  # the last in-order seq_nr we received
        self.rtt = RttEstimator()
        self.cc = Ledbat(packet_size, max_window=max_window)
        self.peer_wnd = 1 << 20
        self.bytes_in_flight = 0
        self.timeouts = 0
        self.error: str | None = None
        # statistics the shell and tests read
        self.packets_sent = 0
        self.packets_resent = 0
        self.packets_received = 0
        self.packets_dropped = 0
        self._out: dict[int, _Out] = {}
        # written, not yet sent: the caller's bytes objects themselves (or views of them), not
        # copied; the first starts at _send_start
        self._send_chunks: deque[bytes | memoryview] = deque()
        self._send_start = 0
        self._send_len = 0
        # received in-order bytes not read yet: whole chunks (one per batch of datagrams, joined
        # once), handed to ``read`` without further copying where they fit
        self._recv_chunks: list[bytes] = []
        self._recv_len = 0
        self._reorder: dict[int, tuple[int, bytes]] = {}
        self._reorder_bytes = 0
        self._reply_micro = 0
        self._ack_needed = False
        # the ack of in-order data may wait for ACK_EVERY packets or until _ack_due; anything
        # else (a hole, a duplicate, FIN, SYN, a reopened window) sets _ack_now and is acked at once
        self._ack_now = False
        self._unacked = 0  # in-order data packets received since our last ack
        self._ack_due = 0  # when a deferred ack must go (valid while _unacked)
        self.acks_deferred = 0  # datagrams() calls that held an ack back
        self._advertised = recv_buffer
        self._rto_deadline: int | None = None
        self._persist_at: int | None = None  # when to probe a closed window of the peer
        self._dup_acks = 0
        # no second window cut for losses before this seq (None once all before it are acked: no
        # loss is being repaired)
        self._loss_until: int | None = None
        # the tail loss probe (RFC 8985's idea): when nothing is acked for two round trips while
        # packets are in flight, one packet goes (a lost retransmission again, new data, or the
        # last in flight again) so that the receiver's selective ack shows the holes before the
        # retransmission timeout
        self._probe_at: int | None = None  # armed by new data and by acks that move acked_seq
        self._probe_due = False  # the probe's deadline passed: ``datagrams`` sends it
        self._probe_seq: int | None = None  # the packet a probe sent again, until it is acked
        self._probe_ts = 0  # (the probe's timestamp: an ack echoing it or later answers the probe)
        self.probes_sent = 0
        self._closing = False
        self._abandon = False
        self._fin_seq: int | None = None
        self._fin_acked = False
        self._eof_seq: int | None = None
        self._eof = False
        self._events: list[ev.Event] = []
        self._readable_queued = False  # Readable / Writable are queued once per events() call
        self._writable_queued = False
        self._to_resend = 0  # packets in _out with need_resend set
        self._pending_delay = 0  # the last one-way delay sample of in-order data not yet fed to LEDBAT
        # whether our last send stopped at the congestion window (not for want of data): the acks
        # of a batch are taken before the window is refilled, so the bytes in flight each of them
        # sees understate how full the window was kept
        self._cwnd_full = False

    # -- construction --------------------------------------------------------------------
    @classmethod
    def initiate(cls, conn_id: int, seq_nr: int, **kw: int) -> UtpConnection:
        """We dial: ST_SYN carries ``conn_id``; we receive on it and send on ``conn_id + 1``."""
        conn = cls(recv_id=conn_id, send_id=conn_id + 1, seq_nr=seq_nr, **kw)
        syn = _Out(_SYN, conn.seq_nr, 0, b"", 0, 0, 0)
        conn._out[syn.seq] = syn
        syn.need_resend = True  # "resend" = send now
        conn._to_resend = 1
        conn.seq_nr = (conn.seq_nr + 1) & SEQ_MASK
        return conn

    @classmethod
    def accept(cls, syn: Packet, seq_nr: int, now_us: int, **kw: int) -> UtpConnection:
        """Answer an ST_SYN: receive on its id + 1, send on its id, ack its seq_nr."""
        if syn.type is not PacketType.SYN:
            raise UtpStateError(f"accept() needs an ST_SYN, got {syn.type.name}")
        conn = cls(recv_id=syn.connection_id + 1, send_id=syn.connection_id, seq_nr=seq_nr, **kw)
        if conn.max_datagram and syn.max_datagram:
            conn._agree(syn.max_datagram)
            conn._answer_syn = True
        conn.state = _CONNECTED
        conn.ack_nr = syn.seq_nr
        conn.peer_wnd = syn.wnd_size
        conn._reply_micro = (now_us - syn.timestamp) & TS_MASK
        conn._ack_needed = conn._ack_now = True
        conn._events.append(ev.Connected())
        return conn

    def _agree(self, peer_max: int) -> None:
        """The peer accepts datagrams up to ``peer_max`` (its offer in the handshake, before any
        data): use the larger datagrams both ends accept, never less than the standard size."""
        size = min(peer_max, self.max_datagram)
        if size <= self.packet_size:
            return
        self.peer_max_datagram = peer_max
        self.mtu_floor = self.mtu_ceiling = size  # (no path MTU discovery)
        self._use_packet_size(size)
        self.cc.resize(size)
        self._ack_every = max(2, min(ACK_EVERY, ACK_BYTES // size))

    def _use_packet_size(self, size: int) -> None:
        """Our datagrams are ``size`` bytes at most: the payload is what the header and the
        largest selective ack we send leave of it."""
        self.packet_size = size
        self.payload_size = size - HEADER_SIZE - 2 - SACK_LIMIT

    # -- application side ----------------------------------------------------------------
    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Queue bytes for sending; returns how many fitted in the send buffer."""
        if self.state not in CAN_SEND or self._closing:
            raise UtpStateError(f"cannot send on a uTP connection in state {self.state.value}"
                                + (" (closing)" if self._closing else ""))
        n = min(self.send_buffer - self._send_len, len(data))
        if n <= 0:
            return 0
        if type(data) is bytes:  # immutable: kept as it is (a view of it when only part fits)
            self._send_chunks.append(data if n == len(data) else memoryview(data)[:n])
        elif type(data) is memoryview and type(data.obj) is bytes:
            self._send_chunks.append(data[:n])
        else:  # the caller may change it later: a copy
            self._send_chunks.append(bytes(data[:n]))
        self._send_len += n
        return n

    @property
    def send_space(self) -> int:
        """How many more bytes ``write`` would take now."""
        return max(0, self.send_buffer - self._send_len)

    @property
    def unsent(self) -> int:
        """Bytes written but not yet sent."""
        return self._send_len

    def read(self, max_bytes: int = 1 << 30) -> bytes:
        """Take up to ``max_bytes`` of the received, in-order data."""
        chunks = self._recv_chunks
        if max_bytes >= self._recv_len:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
        else:
            taken = 0
            i = 0
            while taken + len(chunks[i]) <= max_bytes:
                taken += len(chunks[i])
                i += 1
            head = chunks[i]  # max_bytes ends inside it (the loop stops at the chunk that would pass it)
            cut = max_bytes - taken
            data = b"".join([*chunks[:i], head[:cut]])
            chunks[:i + 1] = [head[cut:]]
        self._recv_len -= len(data)
        if self._advertised < self.payload_size and self.receive_window >= self.payload_size:
            self._ack_needed = self._ack_now = True  # tell a peer stalled on our zero window that it is open
        return data

    def read_chunk(self) -> bytes:
        """Take the oldest chunk of the received, in-order data whole (``read`` without joining
        or cutting, so without a copy); ``b""`` when nothing waits."""
        if not self._recv_chunks:
            return b""
        data = self._recv_chunks.pop(0)
        self._recv_len -= len(data)
        if self._advertised < self.payload_size and self.receive_window >= self.payload_size:
            self._ack_needed = self._ack_now = True  # tell a peer stalled on our zero window that it is open
        return data

    @property
    def ack_pending(self) -> bool:
        """Whether an ack must be sent now (e.g. ``read`` reopened a window the peer saw closed);
        the deferred ack of in-order data is not counted: ``timeout_at`` covers it."""
        return self._ack_needed and self._ack_now

    @property
    def readable(self) -> int:
        """Bytes received and ready to read."""
        return self._recv_len

    @property
    def at_eof(self) -> bool:
        """The peer finished sending and everything it sent has been read."""
        return self._eof and not self._recv_len

    @property
    def receive_window(self) -> int:
        """Bytes the receive buffer can still take (advertised to the peer)."""
        return max(0, self.recv_buffer - self._recv_len - self._reorder_bytes)

    def close(self, *, abandon: bool = True) -> None:
        """Send ST_FIN once the queued bytes are out. ``abandon``: we do not wait for the peer's
        FIN (a full close); otherwise only our direction ends (``send_eof``)."""
        self._abandon = self._abandon or abandon
        if self.state in CAN_CLOSE:
            self._closing = True
        self._maybe_closed()

    def abort(self, reason: str) -> None:
        """Give up at once (the shell sends ST_RESET with ``reset_packet`` if it wants)."""
        self._finish(reason)

    def events(self) -> list[ev.Event]:
        """The events since the last call (connected, readable, writable, end of stream, closed)."""
        out, self._events = self._events, []
        self._readable_queued = self._writable_queued = False
        return out

    def _readable(self) -> None:
        if not self._readable_queued:
            self._readable_queued = True
            self._events.append(_READABLE)

    # -- network side --------------------------------------------------------------------
    def receive_datagrams(self, datagrams: Sequence[bytes | memoryview], now_us: int) -> None:
        """Process a batch of datagrams from the peer, in arrival order, at ``now_us``.

        The datagrams may be views into the caller's buffer (read in place): nothing of them is
        kept after the call. The steady download (data packets in order, acking nothing new)
        runs in one tight loop that collects the payloads, joined into the receive buffer once
        per run, and keeps the sequence state in locals; a datagram that is anything else (one
        acking our data, a hole, an extension) goes alone through the general path, and the
        tight loop takes over again after it. The result is the same as feeding them one by one."""
        i, n = 0, len(datagrams)
        while i < n:
            i = self._in_order_run(datagrams, i, now_us)
            if i == n:
                return
            data = datagrams[i]
            i += 1
            if type(data) is bytes or len(data) < HEADER_SIZE:
                self.receive_datagram(bytes(data), now_us)
                continue
            first, ext, _, ts, ts_diff, wnd, seq, ack = HEADER.unpack_from(data)
            if ext or first & 0x0F != VERSION or first >> 4 > _SYN:
                self.receive_datagram(bytes(data), now_us)  # (the full decoder takes bytes)
            else:  # what receive_datagram does with it, copying only the payload out of the view
                self._receive(first >> 4, ts, ts_diff, wnd, seq, ack, None, bytes(data[HEADER_SIZE:]), now_us)

    def _in_order_run(self, datagrams: Sequence[bytes | memoryview], start: int, now_us: int) -> int:
        """Take the steady download's datagrams from ``datagrams[start]`` on (the next data
        packets in order, acking nothing new, without extensions, within the buffer) in one
        loop; where it stopped."""
        if self.state is not _CONNECTED or self._reorder or self._eof_seq is not None:
            return start
        unpack = _ROUTING.unpack_from  # type and extension, seq_nr, ack_nr: no 32-bit ints made
        acked = self.acked_seq
        expect = (self.ack_nr + 1) & SEQ_MASK
        room = 2 * self.recv_buffer - self._recv_len  # payload bytes the buffer may still take
        parts: list[bytes | memoryview] = []
        add = parts.append
        header_size, data_v1, mask = HEADER_SIZE, _DATA_V1 << 8, SEQ_MASK  # (locals: read per packet)
        for j in range(start, len(datagrams)):
            data = datagrams[j]
            size = len(data) - header_size
            if size < 0 or size > room:
                break
            kind, seq, ack = unpack(data)
            if kind != data_v1 or seq != expect or ack != acked:
                break
            add(data[header_size:])
            room -= size
            expect = (expect + 1) & mask
        done = len(parts)
        if done:
            _, _, _, ts, ts_diff, wnd, _, _ = HEADER.unpack_from(datagrams[start + done - 1])  # the latest's
            self._took_in_order(done, (expect - 1) & SEQ_MASK, ts, ts_diff, wnd, b"".join(parts), now_us)
        return start + done

    def _took_in_order(self, count: int, ack_nr: int, ts: int, ts_diff: int, wnd: int, payload: bytes,
                       now_us: int) -> None:
        """The fast paths' bookkeeping for ``count`` data packets taken in order, up to ``ack_nr``
        (the header fields are the latest packet's): what ``_receive`` would do for them."""
        self.packets_received += count
        self.ack_nr = ack_nr
        self._reply_micro = (now_us - ts) & TS_MASK
        self.peer_wnd = wnd
        if ts_diff and self._out:
            self._pending_delay = ts_diff  # LEDBAT takes it once per batch (``datagrams``)
        self._ack_needed = True
        if not self._unacked:
            self._ack_due = now_us + ACK_DELAY_US
        self._unacked += count
        if payload:
            self._recv_chunks.append(payload)
            self._recv_len += len(payload)
            if not self._readable_queued:
                self._readable_queued = True
                self._events.append(_READABLE)

    def receive_datagram(self, data: bytes, now_us: int) -> None:
        """Process one datagram from the peer at ``now_us``; a malformed one is dropped and counted."""
        if len(data) < HEADER_SIZE:
            self.packets_dropped += 1
            return
        first, ext, _, ts, ts_diff, wnd, seq, ack = HEADER.unpack_from(data)
        if (first == _DATA_V1 and not ext and self.state is _CONNECTED and ack == self.acked_seq
                and seq == (self.ack_nr + 1) & SEQ_MASK and not self._reorder and self._eof_seq is None
                and self._recv_len + len(data) - HEADER_SIZE <= 2 * self.recv_buffer):
            # The steady download: the next data packet in order, acking nothing new. This is
            # what ``_receive`` would do for it (CONNECTED stays CONNECTED in the state table).
            self._took_in_order(1, seq, ts, ts_diff, wnd, data[HEADER_SIZE:], now_us)
            return
        if ext or first & 0x0F != VERSION or first >> 4 > _SYN:
            try:  # extensions (selective ACK) and validation: the full decoder
                pkt = decode(data)
            except UtpError:
                self.packets_dropped += 1
                return
            self._receive(pkt.type, ts, ts_diff, wnd, seq, ack, pkt.sack, pkt.payload, now_us,
                          pkt.max_datagram)
        else:
            self._receive(first >> 4, ts, ts_diff, wnd, seq, ack, None, data[HEADER_SIZE:], now_us)

    def receive_packet(self, pkt: Packet, now_us: int) -> None:
        """Process one decoded packet from the peer at ``now_us``."""
        self._receive(pkt.type, pkt.timestamp, pkt.timestamp_difference, pkt.wnd_size, pkt.seq_nr,
                      pkt.ack_nr, pkt.sack, pkt.payload, now_us, pkt.max_datagram)

    def _receive(self, kind: int, ts: int, ts_diff: int, wnd: int, seq: int, ack: int,
                 sack: bytes | None, payload: bytes, now_us: int, max_datagram: int = 0) -> None:
        if self.state is _CLOSED:
            # after a clean close, keep acking the peer's retransmitted FIN (our last ack was lost)
            if self.error is None and kind == _FIN and self._eof:
                self._ack_needed = self._ack_now = True
            return
        try:
            new_state = next_state(self.state, kind)
        except UtpStateError:
            self.packets_dropped += 1
            return
        self.packets_received += 1
        self._reply_micro = (now_us - ts) & TS_MASK
        if kind == _RESET:
            self._finish("connection reset by peer")
            return
        if kind == _SYN:
            if seq == self.ack_nr or self.state is _SYN_SENT:
                self._ack_needed = self._ack_now = True
                if self.peer_max_datagram and seq == self.ack_nr:
                    self._answer_syn = True  # our answer was lost: the peer still waits for the offer
            return
        if self.state is _SYN_SENT:
            if ack != (self.seq_nr - 1) & SEQ_MASK:
                self.packets_dropped += 1
                return
            self.ack_nr = (seq - 1) & SEQ_MASK
            if max_datagram and self.max_datagram and kind == _STATE:
                self._agree(max_datagram)
            self._events.append(ev.Connected())
        self.state = new_state
        self.peer_wnd = wnd
        if self._out:  # nothing of ours in flight (e.g. pure download): nothing to ack or measure
            self._process_ack(kind, ack, sack, ts, ts_diff, now_us)
        if kind == _DATA or kind == _FIN:
            self._process_data(kind, seq, payload, now_us)
        self._maybe_closed()

    def _process_ack(self, kind: int, ack: int, sack: bytes | None, ts: int, ts_diff: int,
                     now_us: int) -> None:
        if not self._out:
            return  # nothing of ours in flight (e.g. pure download): nothing to ack or measure
        if self._pending_delay:
            self.cc.on_delay_sample(self._pending_delay, now_us)
            self._pending_delay = 0
        last_sent = (self.seq_nr - 1) & SEQ_MASK
        if seq_less(last_sent, ack) or seq_less(ack, self.acked_seq):
            return  # acks something never sent, or stale
        flight_before = self.bytes_in_flight
        acked_bytes = 0
        rtt_sample: int | None = None
        progressed = ack != self.acked_seq
        outs = self._out
        seq = self.acked_seq
        left = 0  # of the acked bytes, those counted in flight (not waiting for a resend)
        while seq != ack:  # (written out: it runs once per packet we send)
            seq = (seq + 1) & SEQ_MASK
            p = outs.pop(seq, None)
            if p is not None:
                acked_bytes += p.size
                if p.need_resend:
                    self._to_resend -= 1
                else:
                    left += p.size
                if p.transmissions == 1:  # Karn: no samples from retransmitted packets
                    rtt_sample = now_us - p.sent_us
        self.acked_seq = seq
        self.bytes_in_flight -= left
        lost: list[_Out] = []
        offsets: list[int] = []
        if sack is not None:
            offsets = sack_bits(sack)
            for off in offsets:
                p = self._out.pop((ack + 2 + off) & SEQ_MASK, None)
                if p is not None:
                    acked_bytes += self._acked(p)
                    if p.transmissions == 1:
                        rtt_sample = now_us - p.sent_us
            if len(offsets) >= DUP_ACK_LIMIT:
                # a packet with DUP_ACK_LIMIT sacked packets after it is lost
                third = (ack + 2 + offsets[-DUP_ACK_LIMIT]) & SEQ_MASK
                for p in self._out.values():
                    if not seq_less(p.seq, third):
                        break
                    if not p.fast_resent:
                        lost.append(p)
        if progressed:
            self._dup_acks = 0
        elif kind == _STATE and self._out:
            self._dup_acks += 1
            if self._dup_acks == DUP_ACK_LIMIT:
                first = self._out.get((ack + 1) & SEQ_MASK)
                if first is not None and not first.fast_resent:
                    lost.append(first)
        if offsets and not lost and outs:
            self._early_retransmit(ack, last_sent, len(offsets), lost)
        if rtt_sample is not None:
            self.rtt.sample(rtt_sample)
        if ts_diff:
            self.cc.on_delay_sample(ts_diff, now_us)
        if acked_bytes or progressed:
            self.cc.on_ack(acked_bytes, flight_before, self.rtt.rtt_us, window_full=self._cwnd_full)
            self.timeouts = 0
            self._rto_deadline = now_us + self.rtt.rto_us if self._out else None
            if progressed:
                self._probe_at = now_us + self._probe_timeout() if self._out else None
                until = self._loss_until
                if until is not None and not seq_less(seq, (until - 1) & SEQ_MASK):
                    self._loss_until = None  # repaired (and a mark kept longer would wrap around)
            if (self._send_len or acked_bytes) and not self._writable_queued:
                self._writable_queued = True
                self._events.append(_WRITABLE)
        mtu_probe = self._mtu_probe_seq
        if mtu_probe is not None and mtu_probe not in outs:
            self._mtu_probe_acked()
        if lost:
            if mtu_probe is not None and any(p.seq == mtu_probe for p in lost):
                self._mtu_probe_lost()
            # (the packet of a lost MTU probe is no sign of congestion: it cuts no window)
            first = lost[0] if lost[0].seq != self._mtu_lost_seq else lost[1] if len(lost) > 1 else None
            if first is not None and (self._loss_until is None or not seq_less(first.seq, self._loss_until)):
                self.cc.on_loss()
                self._loss_until = self.seq_nr
            for p in lost:
                p.fast_resent = True
                self._mark_lost(p)
        probed = self._probe_seq
        if probed is not None and probed not in outs:
            self._probe_seq = None
            self._probe_acked(probed, ts, ts_diff)
        if self._fin_seq is not None and self._fin_seq not in self._out:
            self._fin_acked = True

    def _early_retransmit(self, ack: int, last_sent: int, sacked: int, lost: list[_Out]) -> None:
        """Early retransmit (RFC 5827's idea): the first packet not acked has fewer than
        ``DUP_ACK_LIMIT`` packets sent after it, so that many can never be sacked past it; when
        all of them were (``sacked``) and no new data can go to draw more acks (the end of the
        data, or a full window), it is lost. (Selective acks only: a receiver that sends them
        sends none while nothing past the hole arrived, and its duplicate acks then are window
        updates, not packets received.)"""
        hole = self._out.get((ack + 1) & SEQ_MASK)
        if hole is None or hole.fast_resent or hole.need_resend:
            return
        behind = (last_sent - hole.seq) & SEQ_MASK
        if not 0 < behind < DUP_ACK_LIMIT or sacked < behind:
            return
        n = min(self._send_len, self.payload_size)
        if n and (n == self.payload_size or self._closing or not self.bytes_in_flight) and (
                self.bytes_in_flight + n <= min(self.cc.cwnd, self.peer_wnd)):
            return  # new data goes instead, and its acks tell (as three sacked packets) if the hole is lost
        lost.append(hole)

    def _probe_acked(self, seq: int, ts: int, ts_diff: int) -> None:
        """The packet a tail loss probe sent again is acked. If the ack answers the probe (the
        time it echoes, its timestamp less the delay it reports, is the probe's or later), the
        first copy was lost (or its ack was: without duplicate-SACK the two look the same), and
        the probe repaired it: a loss for congestion control, once per window as any other. An
        ack echoing an earlier time answers the first copy: the probe was spurious, the window
        stays."""
        echo = (ts - ts_diff) & TS_MASK
        if ts_diff and (echo - self._probe_ts) & TS_MASK >= 0x80000000:
            return  # the first copy's ack, late: nothing was lost
        if seq == self._mtu_lost_seq:
            return  # the first copy was an MTU probe the path did not carry: no congestion
        if self._loss_until is None or not seq_less(seq, self._loss_until):
            self.cc.on_loss()
            self._loss_until = self.seq_nr

    # -- path MTU discovery ----------------------------------------------------------------
    def _mtu_probe_acked(self) -> None:
        """The MTU probe arrived: datagrams of its size pass, and ours are that large from now on."""
        self._mtu_probe_seq = None
        self._mtu_losses = 0
        self.mtu_floor = self._mtu_probe_size
        self._use_packet_size(self.mtu_floor)
        self.cc.resize(self.mtu_floor)

    def _mtu_probe_lost(self, *, certain: bool = False) -> None:
        """The MTU probe is lost (or sent again: its copy goes unpadded): the ceiling drops below
        its size once ``MTU_PROBE_TRIES`` probes of that size were lost (a single loss may be
        the path's random loss, not the size), or at once when ``certain`` (the kernel refused it)."""
        self._mtu_lost_seq = self._mtu_probe_seq
        self._mtu_probe_seq = None
        self.mtu_probes_lost += 1
        self._mtu_losses += 1
        if certain or self._mtu_losses >= MTU_PROBE_TRIES:
            self._mtu_losses = 0
            self.mtu_ceiling = max(self.mtu_floor, self._mtu_probe_size - 1)

    def mtu_probe_refused(self) -> None:
        """The shell could not send the MTU probe of the last ``datagrams`` (the kernel knows the
        path's MTU is smaller: EMSGSIZE): the ceiling drops below it at once, and its packet
        goes again unpadded (``datagrams``) with no window cut."""
        seq = self._mtu_probe_seq
        if seq is None:
            return
        self._mtu_probe_lost(certain=True)
        p = self._out.get(seq)
        if p is not None:
            self._mark_lost(p)

    def _mark_lost(self, p: _Out) -> None:
        """``p`` goes again (``datagrams``): it no longer counts in flight."""
        if not p.need_resend:
            p.need_resend = True
            self._to_resend += 1
            self.bytes_in_flight -= p.size

    def _send_mtu_probe(self, window: int, now_us: int, out: list[bytes]) -> None:
        """New data with its first packet padded to the midpoint of floor and ceiling, as the
        MTU probe (the caller checked the conditions: a full packet to send, room for three)."""
        seq, start = self.seq_nr, len(out)
        self._send_new(window, now_us, out)
        p = self._out.get(seq)
        if p is None or p.size != self.payload_size or len(out) <= start:
            return
        size = (self.mtu_floor + self.mtu_ceiling + 1) // 2
        out[start] = self.mtu_probe_datagram = pad(out[start], size)
        self._mtu_probe_seq = seq
        self._mtu_probe_size = size
        self._mtu_lost_seq = None
        self.mtu_probes_sent += 1

    def _probe_timeout(self) -> int:
        """How long after the last ack (or new data) with packets in flight the tail loss probe
        goes: two smoothed round trips, at least ``PROBE_MIN_US``, plus the peer's ack delay
        (before any round trip was measured: the retransmission timeout, so no probe)."""
        if not self.rtt.samples:
            return self.rtt.rto_us
        return max(2 * self.rtt.rtt_us, PROBE_MIN_US) + ACK_DELAY_US

    def _acked(self, p: _Out) -> int:
        if p.need_resend:
            self._to_resend -= 1
        else:
            self.bytes_in_flight -= p.size
        return p.size

    def _process_data(self, kind: int, seq: int, payload: bytes, now_us: int) -> None:
        diff = (seq - self.ack_nr) & SEQ_MASK
        if (diff == 1 and kind == _DATA and not self._reorder and self._eof_seq is None
                and self.state is _CONNECTED
                and self._recv_len + len(payload) <= 2 * self.recv_buffer):
            # the next packet in order, nothing waiting behind a hole: its ack may wait
            # (as on the short paths of ``receive_datagram(s)``)
            self._ack_needed = True
            if not self._unacked:
                self._ack_due = now_us + ACK_DELAY_US
            self._unacked += 1
            if self._deliver(kind, payload):
                self._readable()
            return
        self._ack_needed = self._ack_now = True
        if diff == 0 or diff >= 0x8000:
            return  # a duplicate: the ack we owe tells the peer
        if self._eof_seq is not None and seq_less(self._eof_seq, seq):
            return  # past the peer's FIN
        if kind == _FIN and self._eof_seq is None:
            self._eof_seq = seq
        if diff > 1:
            if (diff <= MAX_REORDER and seq not in self._reorder
                    and self._reorder_bytes + len(payload) <= self.recv_buffer):
                self._reorder[seq] = (kind, payload)
                self._reorder_bytes += len(payload)
            return
        if self._recv_len + len(payload) > 2 * self.recv_buffer:
            self.packets_dropped += 1  # a peer ignoring our window: unacked, it must resend later
            return
        delivered = self._deliver(kind, payload)
        while self._reorder:
            nxt = (self.ack_nr + 1) & SEQ_MASK
            item = self._reorder.pop(nxt, None)
            if item is None:
                break
            self._reorder_bytes -= len(item[1])
            delivered |= self._deliver(*item)
        if delivered:
            self._readable()

    def _deliver(self, kind: int, payload: bytes) -> bool:
        self.ack_nr = (self.ack_nr + 1) & SEQ_MASK
        if kind == _DATA and payload and not self._eof:
            self._recv_chunks.append(payload)
            self._recv_len += len(payload)
            got = True
        else:
            got = False
        if self._eof_seq is not None and self.ack_nr == self._eof_seq and not self._eof:
            self._eof = True
            self._reorder.clear()
            self._reorder_bytes = 0
            self._events.append(ev.EndOfStream())
        return got

    # -- timers --------------------------------------------------------------------------
    @property
    def timeout_at(self) -> int | None:
        """When ``on_timer`` must run next (microseconds), or None when no timer is armed:
        the retransmission timeout, the tail loss probe, the deadline of an ack being deferred,
        or the next probe of the peer's closed window."""
        due = self._rto_deadline
        persist = self._persist_at
        if persist is not None and (due is None or persist < due):
            due = persist
        probe = self._probe_at
        if probe is not None and (due is None or probe < due):
            due = probe
        if self._ack_needed and not self._ack_now and self.state is not _CLOSED:
            return self._ack_due if due is None or self._ack_due < due else due
        return due

    @property
    def ack_deferred(self) -> bool:
        """Whether the ack of received in-order data is being held back (until ``timeout_at``)."""
        return self._ack_needed and not self._ack_now

    def on_timer(self, now_us: int) -> None:
        """Retransmit, or give up on the connection, if the timeout passed at ``now_us``; a
        deferred ack whose deadline passed is due, and so is a tail loss probe whose deadline
        passed before the timeout's (``datagrams`` sends them). One probe per silence: the next
        is armed only by an ack that moves ``acked_seq``."""
        if self._ack_needed and self._unacked and now_us >= self._ack_due:
            self._ack_now = True
        probe = self._probe_at
        if probe is not None and now_us >= probe:
            self._probe_at = None
            self._probe_due = (bool(self._out) and self.state is not _SYN_SENT and self.state is not _CLOSED
                               and self._rto_deadline is not None and now_us < self._rto_deadline)
        if self.state is _CLOSED or self._rto_deadline is None or now_us < self._rto_deadline:
            return
        self._probe_at = self._probe_seq = None
        self._probe_due = False
        if not self._out:
            self._rto_deadline = None
            return
        mtu_probe = self._mtu_probe_seq
        if mtu_probe is not None:
            if mtu_probe == (self.acked_seq + 1) & SEQ_MASK:
                # the oldest packet not acked is the MTU probe: it, not congestion, is lost (so
                # neither the window nor the timeout count changes; everything goes again)
                self._mtu_probe_lost()
                self._resend_all()
                self._rto_deadline = now_us + self.rtt.rto_us
                return
            self._mtu_probe_seq = None  # sent again below with the rest: its fate is unknown
        self.timeouts += 1
        if self.state is _SYN_SENT and self.timeouts > SYN_RETRIES:
            self._finish("connect timed out")
            return
        if self.timeouts > MAX_TIMEOUTS:
            self._finish("timed out: the peer stopped acknowledging")
            return
        self.cc.on_timeout()
        self._resend_all()
        self._loss_until = self.seq_nr
        self._rto_deadline = now_us + min(MAX_RTO_US, self.rtt.rto_us << self.timeouts)

    def _resend_all(self) -> None:
        """A timeout: every packet in flight goes again (``datagrams``, as the window allows)."""
        for p in self._out.values():
            self._mark_lost(p)
            p.fast_resent = False

    # -- output --------------------------------------------------------------------------
    def _sack(self) -> bytes | None:
        """The selective ACK bitmask we send: only while packets wait out of order."""
        if not self._reorder:
            return None
        base = (self.ack_nr + 2) & SEQ_MASK
        offsets = sorted((s - base) & SEQ_MASK for s in self._reorder)
        return make_sack([o for o in offsets if o < SACK_LIMIT * 8], SACK_LIMIT) or None

    def _header(self, kind: int, seq: int, now_us: int, *, with_sack: bool) -> bytes:
        sack = self._sack() if with_sack else None
        wnd = self.recv_buffer - self._recv_len - self._reorder_bytes
        if wnd < 0:
            wnd = 0
        self._advertised = wnd
        return encode_header(kind, self.send_id, now_us, self._reply_micro, wnd, seq, self.ack_nr, sack)

    def _emit(self, p: _Out, now_us: int, out: list[bytes]) -> None:
        """Send (or resend) one packet of ``_out`` with a fresh header."""
        if p.kind == _SYN:
            wnd = self.receive_window
            self._advertised = wnd
            out.append(encode_header(_SYN, self.recv_id, now_us, 0, wnd, p.seq, 0, None, self.max_datagram))
        else:
            head = self._header(p.kind, p.seq, now_us, with_sack=True)
            datagram = head + p.datagram[p.head:] if p.size else head
            p.datagram, p.head = datagram, len(head)
            out.append(datagram)
        if p.transmissions:
            self.packets_resent += 1
        p.transmissions += 1
        p.sent_us = now_us
        self.packets_sent += 1
        self.bytes_in_flight += p.size
        if self._rto_deadline is None:
            self._rto_deadline = now_us + self.rtt.rto_us
            if p.kind != _SYN:
                self._probe_at = now_us + self._probe_timeout()
        self._ack_needed = self._ack_now = False
        self._unacked = 0

    def datagrams(self, now_us: int) -> list[bytes]:
        """Everything that should go on the wire now: resends, new data, FIN, a bare ack."""
        out: list[bytes] = []
        self.mtu_probe_datagram = None
        if self.state is _CLOSED:
            if self._ack_needed and self.error is None:
                out.append(self._header(_STATE, self.seq_nr, now_us, with_sack=False))
            self._ack_needed = self._ack_now = False
            self._unacked = 0
            return out
        if self._pending_delay:
            self.cc.on_delay_sample(self._pending_delay, now_us)
            self._pending_delay = 0
        window = int(min(self.cc.cwnd, self.peer_wnd))
        if self._answer_syn:  # before any data: the peer learns our datagram size from this ack
            self._answer_syn = False
            out.append(encode_header(_STATE, self.send_id, now_us, self._reply_micro, self.receive_window,
                                     self.seq_nr, self.ack_nr, None, self.max_datagram))
            self._advertised = self.receive_window
            self._ack_needed = self._ack_now = False
            self._unacked = 0
        if self._to_resend:  # (a walk over everything in flight only when something was lost)
            for p in self._out.values():
                if p.need_resend:
                    # a fast retransmit goes at once, as TCP's does: it fills the hole the
                    # receiver holds the rest of the window behind (the window was cut for it)
                    if self.bytes_in_flight and self.bytes_in_flight + p.size > window and not p.fast_resent:
                        self._cwnd_full = self.bytes_in_flight + p.size > self.cc.cwnd
                        break
                    p.need_resend = False
                    self._to_resend -= 1
                    self._emit(p, now_us, out)
        if self.state is not _SYN_SENT:
            if self._send_len:
                if (self.mtu_ceiling - self.mtu_floor >= MTU_SEARCH_DONE and self._mtu_probe_seq is None
                        and self._loss_until is None and not self._to_resend
                        and self._send_len >= self.payload_size and window >= 3 * self.packet_size):
                    self._send_mtu_probe(window, now_us, out)
                else:
                    self._send_new(window, now_us, out)
            elif not self._to_resend:
                self._cwnd_full = False  # nothing to send: the application, not the window, limits us
            if self._closing and not self._send_len and self._fin_seq is None and self.state is _CONNECTED:
                p = _Out(_FIN, self.seq_nr, 0, b"", 0, 0, 0)
                self._fin_seq = p.seq
                self.seq_nr = (self.seq_nr + 1) & SEQ_MASK
                self._out[p.seq] = p
                self.state = _FIN_SENT
                self._emit(p, now_us, out)
            if self._probe_due:
                self._probe_due = False
                self._send_probe(now_us, out)
            if self._ack_needed:  # one ack for everything received since the last call
                if (self._ack_now or self._unacked >= self._ack_every or now_us >= self._ack_due
                        or self.state is not _CONNECTED
                        # little room left: the peer is about to stall on our window, tell it now
                        or self.recv_buffer - self._recv_len - self._reorder_bytes
                        < self._ack_every * self.payload_size):
                    out.append(self._header(_STATE, self.seq_nr, now_us, with_sack=True))
                    self._ack_needed = self._ack_now = False
                    self._unacked = 0
                else:
                    self.acks_deferred += 1  # in-order data only: acked with more, or at _ack_due
        self._maybe_closed()
        return out

    def _send_probe(self, now_us: int, out: list[bytes]) -> None:
        """The tail loss probe: one packet past the congestion window (which it does not cut).
        The first packet not acked again if it was sent again already and the ack of that copy
        is overdue (a lost retransmission: no selective ack would ever resend it); else new
        data if the peer's window takes it; else the last packet in flight again."""
        hole = self._out.get((self.acked_seq + 1) & SEQ_MASK)
        if (hole is not None and hole.transmissions > 1 and not hole.need_resend
                and now_us - hole.sent_us > self.rtt.rtt_us + 4 * self.rtt.rtt_var_us):
            self._probe_again(hole, now_us, out)
            return
        flight = self.bytes_in_flight
        n = min(self._send_len, self.payload_size)
        if n and flight + n <= self.peer_wnd:
            seq = self.seq_nr
            self._send_new(flight + n, now_us, out, probe=True)
            if self.seq_nr != seq:
                self.probes_sent += 1
                return
        for p in reversed(self._out.values()):
            if not p.need_resend:
                self._probe_again(p, now_us, out)
                return

    def _probe_again(self, p: _Out, now_us: int, out: list[bytes]) -> None:
        """Send ``p`` (in flight) again as the tail loss probe."""
        if p.seq == self._mtu_probe_seq:
            self._mtu_probe_lost()  # (two round trips without an ack of it)
        self.bytes_in_flight -= p.size  # (in flight still: sent again, counted once)
        self._emit(p, now_us, out)
        self._probe_seq = p.seq
        self._probe_ts = now_us & TS_MASK
        self.probes_sent += 1

    def _send_new(self, window: int, now_us: int, out: list[bytes], *, probe: bool = False) -> None:
        """New data packets from the send buffer, while the window has room. This runs once per
        packet of an upload, so it is written out: every header field but seq_nr is the same for
        all packets of one call and is worked out once, each datagram is one ``struct`` call and
        one copy of its payload from the written bytes (which were not copied before), and the
        counters are updated once at the end. ``probe``: a tail loss probe (a short packet goes
        though others are in flight)."""
        chunks = self._send_chunks
        size = self._send_len
        payload_size = self.payload_size
        flight = self.bytes_in_flight
        self._cwnd_full = False  # unless the congestion window stops the loop below
        if not flight and self.peer_wnd < min(size, payload_size):
            # The peer's window is closed (less than a packet open) and nothing of ours is in
            # flight. The ack it sends when its reader opens the window again tells us; until
            # then one packet probes it per retransmission timeout (TCP's persist timer), in
            # case that ack is lost. Probing on every ack instead made a reader that paused
            # into a storm of one-packet exchanges, each a wake-up on both sides.
            if self._persist_at is None:
                self._persist_at = now_us + self.rtt.rto_us
                return
            if now_us < self._persist_at:
                return
        self._persist_at = None
        closing = self._closing or probe
        sack = self._sack()
        tail = b"" if sack is None else bytes((0, len(sack))) + sack
        head = HEADER_SIZE + len(tail)
        wnd = self.recv_buffer - self._recv_len - self._reorder_bytes
        if wnd < 0:
            wnd = 0
        self._advertised = wnd
        pack = HEADER.pack
        first, ext, send_id = _DATA_V1, 1 if tail else 0, self.send_id
        ts, reply = now_us & TS_MASK, self._reply_micro
        ack_nr = self.ack_nr
        seq = self.seq_nr
        outs = self._out
        add = out.append
        sent = 0
        chunk = memoryview(chunks[0])  # the chunk the next payload starts in, from ``start``
        start = self._send_start
        left = len(chunk) - start  # (what is left of it)
        while sent < size:
            n = size - sent
            if n >= payload_size:
                n = payload_size
            elif flight and not closing:
                break  # Nagle: a short packet waits while others are in flight
            if flight and flight + n > window:
                self._cwnd_full = flight + n > self.cc.cwnd
                break
            if n < left:
                payload: bytes | memoryview = chunk[start:start + n]
                start += n
                left -= n
            else:  # the payload ends this chunk, or runs on into the next ones
                parts = [chunk[start:]]
                need = n - left
                chunks.popleft()
                while need:
                    chunk = memoryview(chunks[0])
                    if len(chunk) > need:
                        parts.append(chunk[:need])
                        break
                    parts.append(chunk)
                    need -= len(chunk)
                    chunks.popleft()
                payload = parts[0] if len(parts) == 1 else b"".join(parts)
                if chunks:
                    chunk = memoryview(chunks[0])
                    start = need
                    left = len(chunk) - need
                else:
                    start = left = 0
            if tail:
                datagram = pack(first, ext, send_id, ts, reply, wnd, seq, ack_nr) + tail + payload
            else:
                datagram = pack(first, ext, send_id, ts, reply, wnd, seq, ack_nr) + payload
            add(datagram)
            outs[seq] = _Out(_DATA, seq, n, datagram, head, now_us, 1)
            seq = (seq + 1) & SEQ_MASK
            flight += n
            sent += n
        if sent:
            self.packets_sent += (seq - self.seq_nr) & SEQ_MASK
            self._send_start = start
            self._send_len = size - sent
            self.seq_nr = seq
            self.bytes_in_flight = flight
            if self._rto_deadline is None:
                self._rto_deadline = now_us + self.rtt.rto_us
                self._probe_at = now_us + self._probe_timeout()
            elif self._probe_at is not None and self._loss_until is None:
                # (as RFC 8985: from the newest data; but while a loss is being repaired, from the
                # last ack that moved acked_seq, so a lost retransmission is probed in time)
                self._probe_at = now_us + self._probe_timeout()
            self._ack_needed = self._ack_now = False
            self._unacked = 0

    def reset_packet(self, now_us: int) -> bytes:
        """An ST_RESET for this connection (to refuse or abort it)."""
        return encode_header(_RESET, self.send_id, now_us, 0, 0, self.seq_nr, self.ack_nr)

    def _maybe_closed(self) -> None:
        if self.state is _FIN_SENT and self._fin_acked and (self._eof or self._abandon):
            self._finish(None)
        elif (self._abandon and self.state is _SYN_SENT) or (
            self._abandon and self._eof and self.state is _CONNECTED and not self._closing
        ):
            self._finish(None)

    def _finish(self, error: str | None) -> None:
        if self.state is _CLOSED:
            return
        self.state = _CLOSED
        self.error = error
        self._rto_deadline = self._persist_at = self._probe_at = None
        self._probe_due = False
        self._events.append(ev.Closed(error))
