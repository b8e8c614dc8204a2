"""Datagrams above the standard size: offered in the handshake, used only when both ends offered
and the path carries them (loopback), and byte-exact over loss and reordering."""

from __future__ import annotations

import random

import pytest

from torrent_engine.errors import UtpError
from torrent_engine.net.utp.connection import PACKET_SIZE, UtpConnection
from torrent_engine.net.utp.packet import Packet, PacketType, decode, encode
from torrent_engine.net.utp.socket import IPV4_MTU_CEILING, LOOPBACK_DATAGRAM, UtpSocket

from .loopback import upload, utp_pair
from .simnet import Link, Pair

NOW = 1_000_000


def _connect(dial: int, answer: int) -> tuple[UtpConnection, UtpConnection, list[bytes]]:
    """A dialer offering ``dial`` bytes and an acceptor offering ``answer`` (0: no offer), after
    the handshake, and the handshake's two datagrams."""
    a = UtpConnection.initiate(100, 500, max_datagram=dial)
    [syn] = a.datagrams(NOW)
    b = UtpConnection.accept(decode(syn), 9000, NOW, max_datagram=answer)
    [state] = b.datagrams(NOW)
    a.receive_datagram(state, NOW + 10)
    return a, b, [syn, state]


def _upload(a: UtpConnection, b: UtpConnection, size: int) -> tuple[list[bytes], bytes]:
    """``size`` bytes from a to b, window wide open: the datagrams a sent, what b read."""
    a.cc.cwnd = a.peer_wnd = 1 << 20
    data = random.Random(1).randbytes(size)
    a.send(data)
    sent = a.datagrams(NOW + 20)
    b.receive_datagrams(sent, NOW + 30)
    return sent, b.read()


def test_both_offering_use_the_smaller_offer() -> None:
    a, b, (syn, state) = _connect(32_000, 16_427)
    assert decode(syn).max_datagram == 32_000 and decode(state).max_datagram == 16_427
    assert a.packet_size == b.packet_size == 16_427
    sent, got = _upload(a, b, 12 * a.payload_size)
    assert got == random.Random(1).randbytes(12 * a.payload_size)
    # full packets: the payload and a 20-byte header (the size leaves room for a selective ack)
    assert max(map(len, sent)) == a.payload_size + 20 == 16_427 - 10
    assert len(sent) == 12
    assert a.cc.min_window == 2 * 16_427  # the window counts in the agreed packets


def test_an_acceptor_that_does_not_offer_sees_todays_packets() -> None:
    """libtorrent and libutp skip the offer in our SYN and answer without one: the dialer keeps
    the standard size, and everything after the SYN is what it always was."""
    a, b, (_, state) = _connect(LOOPBACK_DATAGRAM, 0)
    assert state[1] == 0 and decode(state).max_datagram == 0  # a plain ST_STATE
    sent, _ = _upload(a, b, 100_000)
    assert a.packet_size == PACKET_SIZE and max(map(len, sent)) <= PACKET_SIZE
    assert all(d[1] == 0 for d in sent)  # no extension on the data


def test_a_dialer_that_does_not_offer_is_answered_as_today() -> None:
    plain = UtpConnection.initiate(100, 500)
    [syn] = plain.datagrams(NOW)
    assert syn[1] == 0 and len(syn) == 20  # no offer: the SYN we always sent
    offering = UtpConnection.accept(decode(syn), 9000, NOW, max_datagram=LOOPBACK_DATAGRAM)
    [answer] = offering.datagrams(NOW)
    assert [answer] == UtpConnection.accept(decode(syn), 9000, NOW).datagrams(NOW)  # a plain ST_STATE
    plain.receive_datagram(answer, NOW + 2)
    offering.cc.cwnd = plain.peer_wnd = 1 << 20
    offering.send(b"y" * 100_000)
    assert offering.packet_size == PACKET_SIZE
    assert max(map(len, offering.datagrams(NOW + 3))) <= PACKET_SIZE


def test_a_lost_answer_is_repeated_with_the_offer() -> None:
    a = UtpConnection.initiate(100, 500, max_datagram=LOOPBACK_DATAGRAM)
    [syn] = a.datagrams(NOW)
    b = UtpConnection.accept(decode(syn), 9000, NOW, max_datagram=LOOPBACK_DATAGRAM)
    b.datagrams(NOW)  # the answer is lost
    a.on_timer(NOW + 2_000_000)
    [again] = a.datagrams(NOW + 2_000_000)
    assert decode(again).type is PacketType.SYN and decode(again).max_datagram == LOOPBACK_DATAGRAM
    b.receive_datagram(again, NOW + 2_000_010)
    [answer] = b.datagrams(NOW + 2_000_010)
    assert decode(answer).type is PacketType.STATE and decode(answer).max_datagram == LOOPBACK_DATAGRAM
    a.receive_datagram(answer, NOW + 2_000_020)
    assert a.packet_size == LOOPBACK_DATAGRAM


def test_an_offer_out_of_the_handshake_changes_nothing() -> None:
    """Only the ST_STATE answering our SYN (or the SYN itself) sets the size: an offer on a
    packet after the handshake is not a negotiation."""
    a, b, _ = _connect(LOOPBACK_DATAGRAM, 0)
    late = Packet(PacketType.STATE, a.recv_id, NOW, 0, 1 << 20, b.seq_nr, (a.seq_nr - 1) & 0xFFFF,
                  max_datagram=LOOPBACK_DATAGRAM)
    a.receive_datagram(encode(late), NOW + 50)
    assert a.packet_size == PACKET_SIZE and a.peer_max_datagram == 0
    with pytest.raises(UtpError, match="16 bits"):
        UtpConnection.initiate(1, 1, max_datagram=70_000)


class _Sizes(Link):
    """A link that remembers the largest datagram it carried."""

    largest = 0

    def transit(self, size: int, now: int, rng: random.Random) -> int | None:
        self.largest = max(self.largest, size)
        return super().transit(size, now, rng)


@pytest.mark.parametrize(("loss", "jitter_us"), [(0.0, 0), (0.03, 0), (0.03, 30_000)])
def test_a_transfer_in_large_datagrams_is_byte_exact_over_loss_and_reordering(loss: float,
                                                                                jitter_us: int) -> None:
    data = random.Random(7).randbytes(3_000_000)
    ab, ba = _Sizes(loss=loss, jitter_us=jitter_us), _Sizes(loss=loss, jitter_us=jitter_us)
    pair = Pair(ab, ba, seed=5, max_datagram=LOOPBACK_DATAGRAM)
    pair.run(data)
    assert bytes(pair.received) == data
    assert pair.closed_errors() == [None, None]
    assert LOOPBACK_DATAGRAM - 10 <= ab.largest <= LOOPBACK_DATAGRAM == pair.a.packet_size
    if loss:
        assert pair.a.packets_resent > 0


def test_only_loopback_peers_are_offered_more_than_the_standard_size() -> None:
    sock = UtpSocket()
    for host in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):  # (the last: dual-stack)
        assert sock.max_datagram(host) == LOOPBACK_DATAGRAM
    for host in ("192.0.2.1", "10.0.0.1", "2001:db8::1", "::ffff:192.0.2.1", "not an address"):
        assert sock.max_datagram(host) == PACKET_SIZE
    with pytest.raises(ValueError, match="loopback_datagram"):
        UtpSocket(loopback_datagram=65_508)


@pytest.mark.anyio
@pytest.mark.usefixtures("read_path")
@pytest.mark.parametrize(("client", "server", "size"), [
    (LOOPBACK_DATAGRAM, LOOPBACK_DATAGRAM, LOOPBACK_DATAGRAM),
    (LOOPBACK_DATAGRAM, 16_427, 16_427),  # the smaller offer
    (LOOPBACK_DATAGRAM, PACKET_SIZE, PACKET_SIZE),  # the server offers nothing
    (PACKET_SIZE, LOOPBACK_DATAGRAM, PACKET_SIZE),  # the client offers nothing
])
async def test_sockets_on_loopback_use_what_both_offer(client: int, server: int, size: int) -> None:
    data = random.Random(3).randbytes(2_000_000)
    async with utp_pair(client_datagram=client, server_datagram=server, timeout=60) as (
            stream, accepted, server_sock, client_sock):
        assert stream.conn.packet_size == accepted.conn.packet_size == size
        assert await upload(stream, accepted, data) == data
        assert await upload(accepted, stream, data[:300_000]) == data[:300_000]
        # (without large datagrams agreed, path MTU discovery grows them up to an Ethernet MTU)
        grown = stream.conn.packet_size
        assert grown == size or size == PACKET_SIZE < grown <= IPV4_MTU_CEILING
    # every datagram of the upload was at most ``grown`` bytes, most of them exactly
    payload = grown - 30
    assert len(data) // payload <= server_sock.datagrams_received < 2 * len(data) // payload
    assert client_sock.datagrams_sent >= len(data) // payload


def test_large_datagrams_are_acked_every_two_packets_not_every_thirty_two() -> None:
    """The deferred ack waits for as many bytes as 32 standard packets (at least two packets),
    so a window of 65 000-byte packets is not held back unacked."""
    a, b, _ = _connect(LOOPBACK_DATAGRAM, LOOPBACK_DATAGRAM)
    a.cc.cwnd = a.peer_wnd = 1 << 20
    a.send(b"z" * (8 * a.payload_size))
    acks = 0
    for d in a.datagrams(NOW + 20):
        b.receive_datagrams([d], NOW + 20)  # one at a time, the clock standing still
        acks += len(b.datagrams(NOW + 20))
    assert acks == 4
