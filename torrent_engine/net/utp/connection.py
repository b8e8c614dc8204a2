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

Otherwise the connection looks for the path's MTU (``pmtud.py``) with padded data packets, one at
a time, only while the window holds three packets and no loss is being repaired; a lost probe
costs no window cut and its bytes go again unpadded, so a path that drops large datagrams never
stalls the transfer. The bytes live in ``send_buffer.py`` (written, then in flight until acked)
and ``receive_buffer.py`` (in order, or held behind a hole); this module decides what goes when.

The per-datagram path is written for speed, since every step runs once per datagram: the
header is parsed with one ``struct`` call and no packet object; in-order data that acks nothing
new (a steady download) takes a short path; acks are coalesced (the shell drains
``datagrams`` once per batch of received datagrams, so one ST_STATE answers the batch) and
the ack of in-order data is deferred across batches (``ack_deferral.py``, part of
``timeout_at``); selective-ack work happens only when packets arrive out of order.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ...errors import UtpError
from . import events as ev
from .ack_deferral import ACK_DELAY_US, ACK_EVERY, AckDeferral
from .congestion import MAX_RTO_US, Ledbat, RttEstimator
from .loss_probe import TailLossProbe
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
    pad,
    sack_bits,
    seq_less,
)
from .pmtud import PathMtu
from .receive_buffer import SACK_LIMIT, ReceiveBuffer
from .send_buffer import SendBuffer, Sent
from .state import CAN_CLOSE, CAN_SEND, State, UtpStateError, next_state

PACKET_SIZE = 1400  # whole datagram; safe under every common path MTU (the floor of PMTU discovery)
DUP_ACK_LIMIT = 3  # BEP 29: three duplicate acks (or three packets sacked past a hole) = lost
SYN_RETRIES = 2  # SYN resends before the connect fails (libtorrent's utp_syn_resends)
MAX_TIMEOUTS = 6  # consecutive timeouts of a connected socket before it is declared dead
ACK_BYTES = ACK_EVERY * PACKET_SIZE  # with larger datagrams, fewer packets (at least two) per ack

_DATA, _FIN, _STATE, _RESET, _SYN = (PacketType.DATA, PacketType.FIN, PacketType.STATE, PacketType.RESET,
                                     PacketType.SYN)
_DATA_V1 = (PacketType.DATA << 4) | VERSION  # first header byte of a data packet
_ROUTING = struct.Struct(">H14xHH")  # the header's type/version and extension (one number), seq_nr, ack_nr
# module constants: an enum member read through its class costs ten times a global's lookup
_SYN_SENT, _CONNECTED, _FIN_SENT, _CLOSED = State.SYN_SENT, State.CONNECTED, State.FIN_SENT, State.CLOSED
_READABLE = ev.Readable()
_WRITABLE = ev.Writable()


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
        self.mtu = PathMtu(packet_size, mtu_ceiling)  # path MTU discovery, in whole datagrams
        self.mtu_probe_datagram: bytes | None = None  # the probe in the last ``datagrams`` (for the shell)
        self._answer_syn = False  # an ST_STATE carrying our offer is owed to the peer's SYN
        self._tx = SendBuffer(send_buffer)
        self._rx = ReceiveBuffer(recv_buffer)
        self.seq_nr = seq_nr & SEQ_MASK  # the next seq_nr we will use
        self.acked_seq = (seq_nr - 1) & SEQ_MASK  # everything up to here the peer has
        self.ack_nr = 0  # the last in-order seq_nr we received
        self.rtt = RttEstimator()
        self.cc = Ledbat(packet_size, max_window=max_window)
        self.peer_wnd = 1 << 20
        self.timeouts = 0
        self.error: str | None = None
        # statistics the shell and tests read
        self.packets_sent = 0
        self.packets_resent = 0
        self.packets_received = 0
        self.packets_dropped = 0
        self._reply_micro = 0
        self.acks = AckDeferral()  # when our acks go (``ack_deferral.py``)
        self._advertised = recv_buffer
        self._rto_deadline: int | None = None
        self._persist_at: int | None = None  # when to probe a closed window of the peer
        self._dup_acks = 0
        # no second window cut for losses before this seq (None once all before it are acked: no
        # loss is being repaired)
        self._loss_until: int | None = None
        self.loss_probe = TailLossProbe()  # (``loss_probe.py``)
        self._closing = False
        self._abandon = False
        self._fin_seq: int | None = None
        self._fin_acked = False
        self._eof_seq: int | None = None
        self._eof = False
        self._events: list[ev.Event] = []
        self._readable_queued = False  # Readable / Writable are queued once per events() call
        self._writable_queued = False
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
        syn = Sent(_SYN, conn.seq_nr, 0, b"", 0, 0, 0)
        conn._tx.out[syn.seq] = syn
        syn.need_resend = True  # "resend" = send now
        conn._tx.to_resend = 1
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
        conn.acks.now()
        conn._events.append(ev.Connected())
        return conn

    def _agree(self, peer_max: int) -> None:
        """The peer accepts datagrams up to ``peer_max`` (its offer in the handshake, before any
        data): use the larger datagrams both ends accept, never less than the standard size."""
        size = min(peer_max, self.max_datagram)
        if size <= self.packet_size:
            return
        self.peer_max_datagram = peer_max
        self.mtu.fix(size)  # (no path MTU discovery)
        self._use_packet_size(size)
        self.cc.resize(size)
        self.acks.every = max(2, min(ACK_EVERY, ACK_BYTES // size))

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
        return self._tx.write(data)

    @property
    def send_space(self) -> int:
        """How many more bytes ``write`` would take now."""
        return self._tx.space

    @property
    def unsent(self) -> int:
        """Bytes written but not yet sent."""
        return self._tx.length

    @property
    def recv_buffer(self) -> int:
        """The most bytes received and not read yet (in order or held behind a hole)."""
        return self._rx.capacity

    @property
    def bytes_in_flight(self) -> int:
        """Payload bytes sent, not acked and not waiting to go again."""
        return self._tx.in_flight

    def read(self, max_bytes: int = 1 << 30) -> bytes:
        """Take up to ``max_bytes`` of the received, in-order data."""
        data = self._rx.read(max_bytes)
        if self._advertised < self.payload_size:
            self._window_opened()
        return data

    def read_chunk(self) -> bytes:
        """Take the oldest chunk of the received, in-order data whole (``read`` without joining
        or cutting, so without a copy); ``b""`` when nothing waits."""
        data = self._rx.read_chunk()
        if self._advertised < self.payload_size:
            self._window_opened()
        return data

    def _window_opened(self) -> None:
        """Our window looked closed to the peer: tell it at once that it is open again."""
        if self._rx.window >= self.payload_size:
            self.acks.now()

    @property
    def ack_pending(self) -> bool:
        """Whether an ack must be sent now (e.g. ``read`` reopened a window the peer saw closed);
        the deferred ack of in-order data is not counted: ``timeout_at`` covers it."""
        return self.acks.needed and self.acks.urgent

    @property
    def readable(self) -> int:
        """Bytes received and ready to read."""
        return self._rx.length

    @property
    def at_eof(self) -> bool:
        """The peer finished sending and everything it sent has been read."""
        return self._eof and not self._rx.length

    @property
    def receive_window(self) -> int:
        """Bytes the receive buffer can still take (advertised to the peer)."""
        return self._rx.window

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
        if self.state is not _CONNECTED or self._rx.held or self._eof_seq is not None:
            return start
        unpack = _ROUTING.unpack_from  # type and extension, seq_nr, ack_nr: no 32-bit ints made
        acked = self.acked_seq
        expect = (self.ack_nr + 1) & SEQ_MASK
        room = 2 * self._rx.capacity - self._rx.length  # payload bytes the buffer may still take
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
        (the header fields are the latest packet's): what ``_receive`` would do for them, with
        ``AckDeferral.in_order`` and ``ReceiveBuffer.append`` written out (once per batch)."""
        self.packets_received += count
        self.ack_nr = ack_nr
        self._reply_micro = (now_us - ts) & TS_MASK
        self.peer_wnd = wnd
        if ts_diff and self._tx.out:
            self._pending_delay = ts_diff  # LEDBAT takes it once per batch (``datagrams``)
        acks = self.acks
        acks.needed = True
        if not acks.unacked:
            acks.due = now_us + ACK_DELAY_US
        acks.unacked += count
        if payload:
            rx = self._rx
            rx.chunks.append(payload)
            rx.length += len(payload)
            if not self._readable_queued:
                self._readable_queued = True
                self._events.append(_READABLE)

    def receive_datagram(self, data: bytes, now_us: int) -> None:
        """Process one datagram from the peer at ``now_us``; a malformed one is dropped and counted."""
        if len(data) < HEADER_SIZE:
            self.packets_dropped += 1
            return
        first, ext, _, ts, ts_diff, wnd, seq, ack = HEADER.unpack_from(data)
        rx = self._rx
        if (first == _DATA_V1 and not ext and self.state is _CONNECTED and ack == self.acked_seq
                and seq == (self.ack_nr + 1) & SEQ_MASK and not rx.held and self._eof_seq is None
                and rx.length + len(data) - HEADER_SIZE <= 2 * rx.capacity):
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
                self.acks.now()
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
                self.acks.now()
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
        if self._tx.out:  # nothing of ours in flight (e.g. pure download): nothing to ack or measure
            self._process_ack(kind, ack, sack, ts, ts_diff, now_us)
        if kind == _DATA or kind == _FIN:
            self._process_data(kind, seq, payload, now_us)
        self._maybe_closed()

    def _process_ack(self, kind: int, ack: int, sack: bytes | None, ts: int, ts_diff: int,
                     now_us: int) -> None:
        tx = self._tx
        outs = tx.out
        if not outs:
            return  # nothing of ours in flight (e.g. pure download): nothing to ack or measure
        if self._pending_delay:
            self.cc.on_delay_sample(self._pending_delay, now_us)
            self._pending_delay = 0
        last_sent = (self.seq_nr - 1) & SEQ_MASK
        if seq_less(last_sent, ack) or seq_less(ack, self.acked_seq):
            return  # acks something never sent, or stale
        flight_before = tx.in_flight
        progressed = ack != self.acked_seq
        acked_bytes, rtt_sample = tx.ack_through(self.acked_seq, ack, now_us)
        self.acked_seq = seq = ack
        lost: list[Sent] = []
        offsets: list[int] = []
        if sack is not None:
            offsets = sack_bits(sack)
            more, rtt_sample = tx.ack_selected(ack, offsets, now_us, rtt_sample)
            acked_bytes += more
            if len(offsets) >= DUP_ACK_LIMIT:  # a packet with DUP_ACK_LIMIT sacked packets after it is lost
                lost = tx.not_resent_before((ack + 2 + offsets[-DUP_ACK_LIMIT]) & SEQ_MASK)
        if progressed:
            self._dup_acks = 0
        elif kind == _STATE and outs:
            self._dup_acks += 1
            if self._dup_acks == DUP_ACK_LIMIT:
                first = outs.get((ack + 1) & SEQ_MASK)
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
            self._rto_deadline = now_us + self.rtt.rto_us if outs else None
            if progressed:
                self.loss_probe.at = now_us + self.loss_probe.timeout(self.rtt) if outs else None
                until = self._loss_until
                if until is not None and not seq_less(seq, (until - 1) & SEQ_MASK):
                    self._loss_until = None  # repaired (and a mark kept longer would wrap around)
            if (tx.length or acked_bytes) and not self._writable_queued:
                self._writable_queued = True
                self._events.append(_WRITABLE)
        mtu_probe = self.mtu.probe_seq
        if mtu_probe is not None and mtu_probe not in outs:
            self._use_packet_size(self.mtu.acked())  # datagrams of its size pass: ours are that large now
            self.cc.resize(self.packet_size)
        if lost:
            if mtu_probe is not None and any(p.seq == mtu_probe for p in lost):
                self.mtu.lost()
            # (the packet of a lost MTU probe is no sign of congestion: it cuts no window)
            first = lost[0] if lost[0].seq != self.mtu.lost_seq else lost[1] if len(lost) > 1 else None
            if first is not None and (self._loss_until is None or not seq_less(first.seq, self._loss_until)):
                self.cc.on_loss()
                self._loss_until = self.seq_nr
            for p in lost:
                p.fast_resent = True
                tx.mark_lost(p)
        probed = self.loss_probe.seq
        if probed is not None and probed not in outs:
            self.loss_probe.seq = None
            self._probe_acked(probed, ts, ts_diff)
        if self._fin_seq is not None and self._fin_seq not in outs:
            self._fin_acked = True

    def _early_retransmit(self, ack: int, last_sent: int, sacked: int, lost: list[Sent]) -> None:
        """Early retransmit (RFC 5827's idea): the first packet not acked has fewer than
        ``DUP_ACK_LIMIT`` packets sent after it, so that many can never be sacked past it; when
        all of them were (``sacked``) and no new data can go to draw more acks (the end of the
        data, or a full window), it is lost. (Selective acks only: a receiver that sends them
        sends none while nothing past the hole arrived, and its duplicate acks then are window
        updates, not packets received.)"""
        tx = self._tx
        hole = tx.out.get((ack + 1) & SEQ_MASK)
        if hole is None or hole.fast_resent or hole.need_resend:
            return
        behind = (last_sent - hole.seq) & SEQ_MASK
        if not 0 < behind < DUP_ACK_LIMIT or sacked < behind:
            return
        n = min(tx.length, self.payload_size)
        if n and (n == self.payload_size or self._closing or not tx.in_flight) and (
                tx.in_flight + n <= min(self.cc.cwnd, self.peer_wnd)):
            return  # new data goes instead, and its acks tell (as three sacked packets) if the hole is lost
        lost.append(hole)

    def _probe_acked(self, seq: int, ts: int, ts_diff: int) -> None:
        """The packet a tail loss probe sent again is acked. If the ack answers the probe, the
        probe repaired a loss: one for congestion control, once per window as any other; else the
        probe was spurious and the window stays."""
        if not self.loss_probe.answered(ts, ts_diff):
            return  # the first copy's ack, late: nothing was lost
        if seq == self.mtu.lost_seq:
            return  # the first copy was an MTU probe the path did not carry: no congestion
        if self._loss_until is None or not seq_less(seq, self._loss_until):
            self.cc.on_loss()
            self._loss_until = self.seq_nr

    # -- path MTU discovery (``pmtud.py``) --------------------------------------------------
    def mtu_probe_refused(self) -> None:
        """The shell could not send the MTU probe of the last ``datagrams`` (the kernel knows the
        path's MTU is smaller: EMSGSIZE): the ceiling drops below it at once, and its packet
        goes again unpadded (``datagrams``) with no window cut."""
        seq = self.mtu.probe_seq
        if seq is None:
            return
        self.mtu.lost(certain=True)
        p = self._tx.out.get(seq)
        if p is not None:
            self._tx.mark_lost(p)

    def _send_mtu_probe(self, window: int, now_us: int, out: list[bytes]) -> None:
        """New data with its first packet padded as the MTU probe (the caller checked the
        conditions: a full packet to send, room for three)."""
        seq, start = self.seq_nr, len(out)
        self._send_new(window, now_us, out)
        p = self._tx.out.get(seq)
        if p is None or p.size != self.payload_size or len(out) <= start:
            return
        out[start] = self.mtu_probe_datagram = pad(out[start], self.mtu.probe(seq))

    def _process_data(self, kind: int, seq: int, payload: bytes, now_us: int) -> None:
        diff = (seq - self.ack_nr) & SEQ_MASK
        rx = self._rx
        if (diff == 1 and kind == _DATA and not rx.held and self._eof_seq is None
                and self.state is _CONNECTED and rx.length + len(payload) <= 2 * rx.capacity):
            # the next packet in order, nothing waiting behind a hole: its ack may wait
            # (as on the short paths of ``receive_datagram(s)``)
            self.acks.in_order(1, now_us)
            if self._deliver(kind, payload):
                self._readable()
            return
        self.acks.now()
        if diff == 0 or diff >= 0x8000:
            return  # a duplicate: the ack we owe tells the peer
        if self._eof_seq is not None and seq_less(self._eof_seq, seq):
            return  # past the peer's FIN
        if kind == _FIN and self._eof_seq is None:
            self._eof_seq = seq
        if diff > 1:
            rx.hold(seq, kind, payload, diff)
            return
        if rx.length + len(payload) > 2 * rx.capacity:
            self.packets_dropped += 1  # a peer ignoring our window: unacked, it must resend later
            return
        delivered = self._deliver(kind, payload)
        while rx.held:
            item = rx.take((self.ack_nr + 1) & SEQ_MASK)
            if item is None:
                break
            delivered |= self._deliver(*item)
        if delivered:
            self._readable()

    def _deliver(self, kind: int, payload: bytes) -> bool:
        self.ack_nr = (self.ack_nr + 1) & SEQ_MASK
        if kind == _DATA and payload and not self._eof:
            self._rx.append(payload)
            got = True
        else:
            got = False
        if self._eof_seq is not None and self.ack_nr == self._eof_seq and not self._eof:
            self._eof = True
            self._rx.drop_held()
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
        probe = self.loss_probe.at
        if probe is not None and (due is None or probe < due):
            due = probe
        acks = self.acks
        if acks.waiting and self.state is not _CLOSED:
            return acks.due if due is None or acks.due < due else due
        return due

    @property
    def ack_deferred(self) -> bool:
        """Whether the ack of received in-order data is being held back (until ``timeout_at``)."""
        return self.acks.waiting

    def on_timer(self, now_us: int) -> None:
        """Retransmit, or give up on the connection, if the timeout passed at ``now_us``; a
        deferred ack whose deadline passed is due, and so is a tail loss probe whose deadline
        passed before the timeout's (``datagrams`` sends them). One probe per silence: the next
        is armed only by an ack that moves ``acked_seq``."""
        self.acks.on_timer(now_us)
        self.loss_probe.expire(now_us, allowed=bool(self._tx.out) and self.state is not _SYN_SENT
                         and self.state is not _CLOSED and self._rto_deadline is not None
                         and now_us < self._rto_deadline)
        if self.state is _CLOSED or self._rto_deadline is None or now_us < self._rto_deadline:
            return
        self.loss_probe.stop()
        self.loss_probe.seq = None
        if not self._tx.out:
            self._rto_deadline = None
            return
        mtu_probe = self.mtu.probe_seq
        if mtu_probe is not None:
            if mtu_probe == (self.acked_seq + 1) & SEQ_MASK:
                # the oldest packet not acked is the MTU probe: it, not congestion, is lost (so
                # neither the window nor the timeout count changes; everything goes again)
                self.mtu.lost()
                self._tx.resend_all()
                self._rto_deadline = now_us + self.rtt.rto_us
                return
            self.mtu.forget_probe()  # sent again below with the rest
        self.timeouts += 1
        if self.state is _SYN_SENT and self.timeouts > SYN_RETRIES:
            self._finish("connect timed out")
            return
        if self.timeouts > MAX_TIMEOUTS:
            self._finish("timed out: the peer stopped acknowledging")
            return
        self.cc.on_timeout()
        self._tx.resend_all()
        self._loss_until = self.seq_nr
        self._rto_deadline = now_us + min(MAX_RTO_US, self.rtt.rto_us << self.timeouts)

    # -- output --------------------------------------------------------------------------
    def _header(self, kind: int, seq: int, now_us: int, *, with_sack: bool) -> bytes:
        rx = self._rx
        sack = rx.sack(self.ack_nr) if with_sack and rx.held else None
        wnd = rx.capacity - rx.length - rx.held_bytes  # (``rx.window``, written out: once per datagram)
        self._advertised = wnd = wnd if wnd > 0 else 0
        return encode_header(kind, self.send_id, now_us, self._reply_micro, wnd, seq, self.ack_nr, sack)

    def _emit(self, p: Sent, now_us: int, out: list[bytes]) -> None:
        """Send (or resend) one packet in flight with a fresh header."""
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
        self._tx.in_flight += p.size
        if self._rto_deadline is None:
            self._rto_deadline = now_us + self.rtt.rto_us
            if p.kind != _SYN:
                self.loss_probe.arm(now_us, self.rtt)
        self.acks.sent()

    def datagrams(self, now_us: int) -> list[bytes]:
        """Everything that should go on the wire now: resends, new data, FIN, a bare ack."""
        out: list[bytes] = []
        self.mtu_probe_datagram = None
        if self.state is _CLOSED:
            if self.acks.needed and self.error is None:
                out.append(self._header(_STATE, self.seq_nr, now_us, with_sack=False))
            self.acks.sent()
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
            self.acks.sent()
        tx = self._tx
        if tx.to_resend:  # (a walk over everything in flight only when something was lost)
            for p in tx.out.values():
                if p.need_resend:
                    # a fast retransmit goes at once, as TCP's does: it fills the hole the
                    # receiver holds the rest of the window behind (the window was cut for it)
                    if tx.in_flight and tx.in_flight + p.size > window and not p.fast_resent:
                        self._cwnd_full = tx.in_flight + p.size > self.cc.cwnd
                        break
                    p.need_resend = False
                    tx.to_resend -= 1
                    self._emit(p, now_us, out)
        if self.state is not _SYN_SENT:
            if tx.length:
                if (self.mtu.may_probe and self._loss_until is None and not tx.to_resend
                        and tx.length >= self.payload_size and window >= 3 * self.packet_size):
                    self._send_mtu_probe(window, now_us, out)
                else:
                    self._send_new(window, now_us, out)
            elif not tx.to_resend:
                self._cwnd_full = False  # nothing to send: the application, not the window, limits us
            if self._closing and not tx.length and self._fin_seq is None and self.state is _CONNECTED:
                p = Sent(_FIN, self.seq_nr, 0, b"", 0, 0, 0)
                self._fin_seq = p.seq
                self.seq_nr = (self.seq_nr + 1) & SEQ_MASK
                tx.out[p.seq] = p
                self.state = _FIN_SENT
                self._emit(p, now_us, out)
            if self.loss_probe.due:
                self.loss_probe.due = False
                self._send_probe(now_us, out)
            acks = self.acks
            if acks.needed:  # one ack for everything received since the last call
                rx = self._rx
                # (``acks.owed_now`` and ``acks.sent`` written out: once per batch of datagrams)
                if (acks.urgent or acks.unacked >= acks.every or now_us >= acks.due
                        or self.state is not _CONNECTED
                        # little room left: the peer is about to stall on our window, tell it now
                        or rx.capacity - rx.length - rx.held_bytes < acks.every * self.payload_size):
                    out.append(self._header(_STATE, self.seq_nr, now_us, with_sack=True))
                    acks.needed = acks.urgent = False
                    acks.unacked = 0
                else:
                    acks.deferred += 1  # in-order data only: acked with more, or at its deadline
        self._maybe_closed()
        return out

    def _send_probe(self, now_us: int, out: list[bytes]) -> None:
        """The tail loss probe: one packet past the congestion window (which it does not cut).
        The first packet not acked again if it was sent again already and the ack of that copy
        is overdue (a lost retransmission: no selective ack would ever resend it); else new
        data if the peer's window takes it; else the last packet in flight again."""
        tx = self._tx
        hole = tx.out.get((self.acked_seq + 1) & SEQ_MASK)
        if (hole is not None and hole.transmissions > 1 and not hole.need_resend
                and now_us - hole.sent_us > self.rtt.rtt_us + 4 * self.rtt.rtt_var_us):
            self._probe_again(hole, now_us, out)
            return
        flight = tx.in_flight
        n = min(tx.length, self.payload_size)
        if n and flight + n <= self.peer_wnd:
            seq = self.seq_nr
            self._send_new(flight + n, now_us, out, probe=True)
            if self.seq_nr != seq:
                self.loss_probe.sent += 1
                return
        last = tx.newest_in_flight()
        if last is not None:
            self._probe_again(last, now_us, out)

    def _probe_again(self, p: Sent, now_us: int, out: list[bytes]) -> None:
        """Send ``p`` (in flight) again as the tail loss probe."""
        if p.seq == self.mtu.probe_seq:
            self.mtu.lost()  # (two round trips without an ack of it)
        self._tx.in_flight -= p.size  # (in flight still: sent again, counted once)
        self._emit(p, now_us, out)
        self.loss_probe.sent_again(p.seq, now_us)

    def _send_new(self, window: int, now_us: int, out: list[bytes], *, probe: bool = False) -> None:
        """New data packets from the send buffer, while the window has room (``SendBuffer.pack``:
        every header field but seq_nr is the same for all packets of one call and is worked out
        once here). ``probe``: a tail loss probe (a short packet goes though others are in flight)."""
        tx = self._tx
        payload_size = self.payload_size
        self._cwnd_full = False  # unless the congestion window stops the packing
        if not tx.in_flight and self.peer_wnd < min(tx.length, payload_size):
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
        rx = self._rx
        sack = rx.sack(self.ack_nr) if rx.held else None
        wnd = rx.capacity - rx.length - rx.held_bytes  # (``rx.window``)
        self._advertised = wnd = wnd if wnd > 0 else 0
        first = self.seq_nr
        header = (self.send_id, self._reply_micro, wnd, self.ack_nr)
        tail = b"" if sack is None else bytes((0, len(sack))) + sack
        seq, self._cwnd_full = tx.pack(out, first, now_us, window, self.cc.cwnd, payload_size,
                                       self._closing or probe, header, tail)
        if seq != first:
            self.packets_sent += (seq - first) & SEQ_MASK
            self.seq_nr = seq
            if self._rto_deadline is None:
                self._rto_deadline = now_us + self.rtt.rto_us
                self.loss_probe.arm(now_us, self.rtt)
            elif self.loss_probe.at is not None and self._loss_until is None:
                # (as RFC 8985: from the newest data; but while a loss is being repaired, from the
                # last ack that moved acked_seq, so a lost retransmission is probed in time)
                self.loss_probe.arm(now_us, self.rtt)
            self.acks.sent()

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
        self._rto_deadline = self._persist_at = None
        self.loss_probe.stop()
        self._events.append(ev.Closed(error))
