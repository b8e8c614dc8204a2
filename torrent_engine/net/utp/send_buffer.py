"""The send side of one uTP connection, sans-I/O: bytes written and not yet sent, cut into data
packets, and the packets in flight until the peer acks them (what a resend and the acks need).

How much may go (the windows, Nagle, the persist timer) and when a packet counts as lost is the
connection's call (``connection.py``); this keeps the bytes and the books: which packets are out,
how many bytes count in flight, how many wait to go again.
"""

from __future__ import annotations

from collections import deque

from .packet import HEADER, HEADER_SIZE, SEQ_MASK, TS_MASK, VERSION, PacketType, seq_less

__all__ = ["SendBuffer", "Sent"]

_DATA = PacketType.DATA
_DATA_V1 = (PacketType.DATA << 4) | VERSION  # first header byte of a data packet


class Sent:
    """A packet of ours in flight (sent, not acked yet): what a resend and the acks need."""

    __slots__ = ("datagram", "fast_resent", "head", "kind", "need_resend", "sent_us", "seq", "size",
                 "transmissions")

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


class SendBuffer:
    """Up to ``capacity`` bytes written and not sent (``length``), and the packets in flight
    (``out``, by seq_nr, oldest first): ``in_flight`` payload bytes of them count against the
    windows, ``to_resend`` of them wait to go again (``need_resend``)."""

    __slots__ = ("capacity", "chunks", "in_flight", "length", "out", "start", "to_resend")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # written, not yet sent: the caller's bytes objects themselves (or views of them), not
        # copied; the first starts at ``start``
        self.chunks: deque[bytes | memoryview] = deque()
        self.start = 0
        self.length = 0
        self.out: dict[int, Sent] = {}
        self.in_flight = 0
        self.to_resend = 0

    @property
    def space(self) -> int:
        """How many more bytes ``write`` would take now."""
        return max(0, self.capacity - self.length)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Queue bytes for sending; how many fitted."""
        n = min(self.capacity - self.length, len(data))
        if n <= 0:
            return 0
        if type(data) is bytes:  # immutable: kept as it is (a view of it when only part fits)
            self.chunks.append(data if n == len(data) else memoryview(data)[:n])
        elif type(data) is memoryview and type(data.obj) is bytes:
            self.chunks.append(data[:n])
        else:  # the caller may change it later: a copy
            self.chunks.append(bytes(data[:n]))
        self.length += n
        return n

    def pack(self, out: list[bytes], seq: int, now_us: int, window: int, cwnd: float, payload_size: int,
             short_ok: bool, header: tuple[int, int, int, int], tail: bytes) -> tuple[int, bool]:
        """Data packets of the written bytes onto ``out``, from ``seq`` on, while ``window`` has
        room: each recorded in flight. ``short_ok``: a short packet may go though others are in
        flight (else Nagle: it waits); ``header``: the fields every packet of this call shares
        (send_id, reply, wnd, ack_nr); ``tail``: the header's extensions (a selective ack).
        Returns the next seq_nr and whether the congestion window (``cwnd``) stopped it.

        This runs once per packet of an upload, so it is written out: each datagram is one
        ``struct`` call and one copy of its payload from the written bytes (which were not
        copied before), and the books are updated once at the end."""
        chunks = self.chunks
        size = self.length
        flight = self.in_flight
        send_id, reply, wnd, ack_nr = header
        pack = HEADER.pack
        first, ext, ts = _DATA_V1, 1 if tail else 0, now_us & TS_MASK
        head = HEADER_SIZE + len(tail)
        outs = self.out
        add = out.append
        cwnd_full = False
        sent = 0
        chunk = memoryview(chunks[0])  # the chunk the next payload starts in, from ``start``
        start = self.start
        left = len(chunk) - start  # (what is left of it)
        while sent < size:
            n = size - sent
            if n >= payload_size:
                n = payload_size
            elif flight and not short_ok:
                break  # Nagle: a short packet waits while others are in flight
            if flight and flight + n > window:
                cwnd_full = flight + n > cwnd
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
            outs[seq] = Sent(_DATA, seq, n, datagram, head, now_us, 1)
            seq = (seq + 1) & SEQ_MASK
            flight += n
            sent += n
        if sent:
            self.start = start
            self.length = size - sent
            self.in_flight = flight
        return seq, cwnd_full

    def ack_through(self, acked_seq: int, ack: int, now_us: int) -> tuple[int, int | None]:
        """A cumulative ack: the packets after ``acked_seq`` up to ``ack`` leave. The payload bytes
        acked, and a round-trip sample from the newest packet sent once (Karn), if any."""
        outs = self.out
        seq = acked_seq
        acked = 0
        left = 0  # of the acked bytes, those counted in flight (not waiting for a resend)
        sample: int | None = None
        while seq != ack:  # (written out: it runs once per packet we send)
            seq = (seq + 1) & SEQ_MASK
            p = outs.pop(seq, None)
            if p is not None:
                acked += p.size
                if p.need_resend:
                    self.to_resend -= 1
                else:
                    left += p.size
                if p.transmissions == 1:  # Karn: no samples from retransmitted packets
                    sample = now_us - p.sent_us
        self.in_flight -= left
        return acked, sample

    def ack_selected(self, ack: int, offsets: list[int], now_us: int,
                     sample: int | None) -> tuple[int, int | None]:
        """A selective ack past ``ack`` (its bits' ``offsets``): those packets leave. The payload
        bytes acked, and the round-trip sample (``sample`` unless one of them gives a newer one)."""
        acked = 0
        for off in offsets:
            p = self.out.pop((ack + 2 + off) & SEQ_MASK, None)
            if p is not None:
                acked += p.size
                if p.need_resend:
                    self.to_resend -= 1
                else:
                    self.in_flight -= p.size
                if p.transmissions == 1:
                    sample = now_us - p.sent_us
        return acked, sample

    def not_resent_before(self, seq: int) -> list[Sent]:
        """The packets in flight sent before ``seq`` and not yet sent again for a loss (oldest first)."""
        found: list[Sent] = []
        for p in self.out.values():
            if not seq_less(p.seq, seq):
                break
            if not p.fast_resent:
                found.append(p)
        return found

    def newest_in_flight(self) -> Sent | None:
        """The packet sent last that still counts in flight (not waiting to go again)."""
        for p in reversed(self.out.values()):
            if not p.need_resend:
                return p
        return None

    def mark_lost(self, p: Sent) -> None:
        """``p`` goes again: it no longer counts in flight."""
        if not p.need_resend:
            p.need_resend = True
            self.to_resend += 1
            self.in_flight -= p.size

    def resend_all(self) -> None:
        """A timeout: every packet in flight goes again."""
        for p in self.out.values():
            self.mark_lost(p)
            p.fast_resent = False
