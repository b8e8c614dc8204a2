"""Path MTU discovery: a connection that did not agree on large datagrams probes with one padded
data packet at a time, grows its datagrams to what the path carries, and a path that silently
drops larger ones costs it neither a window cut nor the probe's bytes."""

from __future__ import annotations

import errno
import os
import random
import socket

import pytest

from torrent_engine.net.utp.connection import PACKET_SIZE, UtpConnection
from torrent_engine.net.utp.packet import HEADER_SIZE, PacketType, decode
from torrent_engine.net.utp.pmtud import MTU_PROBE_TRIES, MTU_SEARCH_DONE, PathMtu
from torrent_engine.net.utp.socket import (
    IP_MTU_DISCOVER,
    IP_PMTUDISC_DO,
    IPV4_MTU_CEILING,
    IPV6_MTU_CEILING,
    LOOPBACK_DATAGRAM,
    UtpSocket,
)
from torrent_engine.net.utp.stream import UtpStream

from .loopback import upload, utp_pair
from .simnet import Link, Pair

CEILING = 1472  # 1 500 bytes of Ethernet less IPv4's and UDP's headers
DATA = random.Random(7).randbytes(3_000_000)


class _Path(Link):
    """A link that drops, without a word, every datagram above ``cap`` bytes (a black hole:
    no ICMP), and the first ``drop_probes`` datagrams above the standard size."""

    def __init__(self, *, cap: int = 0, drop_probes: int = 0, **kw: float) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.cap = cap
        self.drop_probes = drop_probes
        self.largest = 0
        self.too_big = 0

    def transit(self, size: int, now: int, rng: random.Random) -> int | None:
        if self.cap and size > self.cap:
            self.too_big += 1
            return None
        if size > PACKET_SIZE and self.drop_probes:
            self.drop_probes -= 1
            return None
        self.largest = max(self.largest, size)
        return super().transit(size, now, rng)


class _Cuts:
    """Counts the sender's window cuts (losses and timeouts)."""

    def __init__(self, conn: UtpConnection) -> None:
        self.losses = self.timeouts = 0
        cc = conn.cc
        on_loss, on_timeout = cc.on_loss, cc.on_timeout

        def loss() -> None:
            self.losses += 1
            on_loss()

        def timeout() -> None:
            self.timeouts += 1
            on_timeout()

        cc.on_loss = loss  # type: ignore[method-assign]
        cc.on_timeout = timeout  # type: ignore[method-assign]


def _run(ab: _Path, *, loss: float = 0.0, **kw: int) -> tuple[Pair, _Cuts]:
    ba = _Path(loss=loss, delay_us=50_000)
    pair = Pair(ab, ba, seed=5, mtu_ceiling=CEILING, **kw)
    cuts = _Cuts(pair.a)
    pair.run(DATA)
    assert bytes(pair.received) == DATA
    assert pair.closed_errors() == [None, None]
    return pair, cuts


def test_datagrams_grow_to_near_the_ceiling_on_a_path_that_carries_them() -> None:
    ab = _Path(delay_us=50_000)
    pair, cuts = _run(ab)
    a = pair.a
    assert CEILING - MTU_SEARCH_DONE < a.mtu.floor <= CEILING == a.mtu.ceiling
    assert a.packet_size == a.mtu.floor and a.payload_size > PACKET_SIZE - HEADER_SIZE
    assert CEILING - MTU_SEARCH_DONE < ab.largest <= CEILING
    assert a.mtu.probes_sent >= 2 and a.mtu.probes_lost == 0
    assert cuts.losses == cuts.timeouts == 0


def test_a_smaller_path_mtu_is_found_without_window_cuts_and_the_probes_bytes_arrive() -> None:
    cap = 1430  # what the path carries: the probes above it vanish
    ab = _Path(cap=cap, delay_us=50_000)
    pair, cuts = _run(ab)
    a = pair.a
    assert PACKET_SIZE < a.mtu.floor <= cap < a.mtu.ceiling + 1
    assert a.mtu.ceiling - a.mtu.floor < MTU_SEARCH_DONE
    assert ab.too_big == a.mtu.probes_lost > 0  # lost probes, their bytes sent again (DATA arrived)
    assert a.packets_resent == ab.too_big  # each once, unpadded
    assert cuts.losses == cuts.timeouts == 0  # no lost probe cut the window


def test_a_path_below_the_first_probe_keeps_the_standard_size() -> None:
    cap = PACKET_SIZE - 8  # less than the standard datagram with a selective ack; data without one fits
    ab = _Path(cap=cap, delay_us=50_000)
    pair, cuts = _run(ab)
    a = pair.a
    assert a.mtu.floor == a.packet_size == PACKET_SIZE and a.mtu.ceiling - a.mtu.floor < MTU_SEARCH_DONE
    assert ab.largest <= cap and ab.too_big == a.mtu.probes_lost > 0
    assert cuts.losses == cuts.timeouts == 0


def test_one_lost_probe_is_taken_for_random_loss_not_for_the_size() -> None:
    ab = _Path(drop_probes=1, delay_us=50_000)
    pair, cuts = _run(ab)
    a = pair.a
    assert a.mtu.probes_lost == 1 and a.mtu.ceiling == CEILING
    assert CEILING - MTU_SEARCH_DONE < a.mtu.floor
    assert cuts.losses == cuts.timeouts == 0


def test_a_small_path_mtu_under_random_loss_delivers_every_byte() -> None:
    ab = _Path(cap=1430, loss=0.02, delay_us=50_000)
    pair, _ = _run(ab, loss=0.02)
    assert PACKET_SIZE <= pair.a.mtu.floor <= 1430
    assert ab.largest <= 1430


def _probing() -> tuple[UtpConnection, list[bytes]]:
    """A connected sender whose next datagrams carry an MTU probe (first) and standard packets."""
    a = UtpConnection.initiate(7, 100, mtu_ceiling=CEILING)
    syn = decode(a.datagrams(1_000)[0])
    b = UtpConnection.accept(syn, 500, 1_000)
    a.receive_datagrams(b.datagrams(2_000), 3_000)
    a.cc.cwnd = 10 * PACKET_SIZE
    a.send(DATA[:20_000])
    out = a.datagrams(4_000)
    probe = a.mtu_probe_datagram
    assert probe is not None and probe is out[0] and len(probe) == (PACKET_SIZE + CEILING + 1) // 2
    assert all(len(d) <= PACKET_SIZE for d in out[1:])
    return a, out


def _sent_again_unpadded(a: UtpConnection, probe: bytes) -> None:
    again = a.datagrams(4_100)
    assert len(again) == 1 and len(again[0]) < PACKET_SIZE and a.mtu_probe_datagram is None
    first, resent = decode(probe), decode(again[0])
    assert first.type is resent.type is PacketType.DATA
    assert (first.seq_nr, first.payload) == (resent.seq_nr, resent.payload)


def test_a_probe_the_kernel_refuses_goes_again_unpadded_at_once() -> None:
    a, out = _probing()
    cwnd = a.cc.cwnd
    a.mtu_probe_refused()
    assert a.mtu.ceiling == len(out[0]) - 1
    _sent_again_unpadded(a, out[0])
    assert a.cc.cwnd == cwnd


def test_a_timeout_with_the_probe_oldest_blames_the_probe_not_congestion() -> None:
    a, out = _probing()
    cwnd, due = a.cc.cwnd, a._rto_deadline
    assert due is not None
    a.on_timer(due)  # nothing came back, the tail loss probe's time passed unused
    assert a.timeouts == 0 and a.cc.cwnd == cwnd
    assert a.mtu.probes_lost == 1 and a.mtu.ceiling == CEILING  # one loss: maybe not the size
    again = a.datagrams(due)
    assert len(again) == len(out) and all(len(d) <= PACKET_SIZE for d in again)
    assert [decode(d).seq_nr for d in again] == [decode(d).seq_nr for d in out]
    assert decode(again[0]).payload == decode(out[0]).payload


def test_a_lone_probe_lost_goes_again_as_the_tail_loss_probe_and_cuts_no_window() -> None:
    a = UtpConnection.initiate(7, 100, mtu_ceiling=CEILING)
    b = UtpConnection.accept(decode(a.datagrams(1_000)[0]), 500, 1_000)
    now = 50_000
    a.receive_datagrams(b.datagrams(now), now)  # the handshake's round trip: one RTT sample
    a.cc.cwnd = 10 * PACKET_SIZE
    a.send(DATA[:a.payload_size])  # one packet's worth: the probe is alone in flight
    out = a.datagrams(now)
    assert len(out) == 1 and out[0] is a.mtu_probe_datagram
    cwnd = a.cc.cwnd
    due = a.timeout_at
    assert due is not None
    a.on_timer(due)  # the probe vanished: the tail loss probe's time, before the timeout
    again = a.datagrams(due)
    assert a.loss_probe.sent == 1 and a.mtu.probes_lost == 1
    assert len(again) == 1 and len(again[0]) < PACKET_SIZE
    b.receive_datagrams(again, due + 25_000)
    b.on_timer(due + 30_000)
    a.receive_datagrams(b.datagrams(due + 30_000), due + 50_000)
    assert not a._tx.out and a.cc.cwnd >= cwnd and a.timeouts == 0
    assert b.read() == DATA[:a.payload_size]


class _SmallPathSocket:
    """A UDP socket whose route's MTU the kernel knows is the standard size: a larger datagram
    with the don't-fragment bit is refused (EMSGSIZE)."""

    family = socket.AF_INET

    def __init__(self) -> None:
        self.options: list[tuple[int, int, int]] = []
        self.sent: list[bytes] = []

    def setsockopt(self, level: int, name: int, value: int) -> None:
        self.options.append((level, name, value))

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) > PACKET_SIZE and self.options[-1][2] == IP_PMTUDISC_DO:
            raise OSError(errno.EMSGSIZE, os.strerror(errno.EMSGSIZE))
        self.sent.append(data)


@pytest.mark.anyio
async def test_emsgsize_on_a_probe_lowers_the_ceiling_and_its_bytes_go_again() -> None:
    sock = UtpSocket(segment=False)
    fake = _SmallPathSocket()
    sock._sock = fake  # type: ignore[assignment]
    sock._dont_fragment = 1  # (the kernel's default: IP_PMTUDISC_WANT)
    a, out = _probing()
    stream = UtpStream(sock, a, ("127.0.0.1", 6881))
    sock._send_with_probe(out, out[0], stream)
    assert fake.options == [(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO),
                            (socket.IPPROTO_IP, IP_MTU_DISCOVER, 1)]  # for the probe alone
    assert fake.sent == out[1:] and a.state.value == "connected"
    assert a.mtu.ceiling == len(out[0]) - 1
    _sent_again_unpadded(a, out[0])


def test_connections_that_agreed_on_large_datagrams_do_not_probe() -> None:
    ab = _Path(delay_us=1_000)
    pair = Pair(ab, _Path(delay_us=1_000), seed=5, mtu_ceiling=CEILING, max_datagram=LOOPBACK_DATAGRAM)
    pair.run(DATA)
    assert bytes(pair.received) == DATA
    assert pair.a.mtu.probes_sent == 0 and pair.a.packet_size == LOOPBACK_DATAGRAM


def test_the_socket_gives_an_ethernet_ceiling_for_the_peers_address_family() -> None:
    sock = UtpSocket()
    assert sock.mtu_ceiling("203.0.113.5") == sock.mtu_ceiling("::ffff:203.0.113.5") == IPV4_MTU_CEILING
    assert IPV4_MTU_CEILING == 1472
    assert sock.mtu_ceiling("2001:db8::1") == IPV6_MTU_CEILING == 1452


@pytest.mark.anyio
@pytest.mark.usefixtures("read_path")
async def test_sockets_that_did_not_agree_on_large_datagrams_probe_with_the_dont_fragment_bit() -> None:
    data = DATA[:2_000_000]
    async with utp_pair(client_datagram=PACKET_SIZE, timeout=60) as (stream, accepted, server_sock, _):
        assert await upload(stream, accepted, data) == data
        conn = stream.conn
        assert conn.mtu.probes_sent >= 2 and conn.mtu.probes_lost == 0
        assert IPV4_MTU_CEILING - MTU_SEARCH_DONE < conn.mtu.floor == conn.packet_size <= IPV4_MTU_CEILING
        assert server_sock.datagrams_received < len(data) // (PACKET_SIZE - 30)


def test_the_search_on_its_own_halves_the_gap_until_it_is_done() -> None:
    mtu = PathMtu(PACKET_SIZE, CEILING)
    assert mtu.may_probe and mtu.probe(10) == (PACKET_SIZE + CEILING + 1) // 2
    assert not mtu.may_probe  # one probe at a time
    assert mtu.acked() == mtu.floor == (PACKET_SIZE + CEILING + 1) // 2
    while mtu.may_probe:
        mtu.probe(11)
        mtu.acked()
    assert CEILING - MTU_SEARCH_DONE < mtu.floor <= CEILING == mtu.ceiling and mtu.probes_lost == 0


def test_the_ceiling_drops_after_repeated_losses_or_at_once_when_refused() -> None:
    mtu = PathMtu(PACKET_SIZE, CEILING)
    size = mtu.probe(5)
    for _ in range(MTU_PROBE_TRIES - 1):
        mtu.lost()
        assert mtu.ceiling == CEILING and mtu.lost_seq == 5  # maybe the path's random loss
        mtu.probe(6)
    mtu.lost()
    assert mtu.ceiling == size - 1 and mtu.floor == PACKET_SIZE
    mtu.probe(7)
    mtu.lost(certain=True)
    assert mtu.ceiling < size - 1 and mtu.probes_lost == MTU_PROBE_TRIES + 1


def test_no_search_when_the_ceiling_is_the_floor_or_the_size_was_agreed() -> None:
    assert not PathMtu(PACKET_SIZE, 0).may_probe
    agreed = PathMtu(PACKET_SIZE, CEILING)
    agreed.fix(LOOPBACK_DATAGRAM)
    assert not agreed.may_probe and agreed.floor == agreed.ceiling == LOOPBACK_DATAGRAM
