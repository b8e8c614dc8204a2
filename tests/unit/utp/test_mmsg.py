"""``recvmmsg`` batches: sizes, senders as ``recvfrom`` names them, datagrams whole and in place."""

from __future__ import annotations

import socket

import pytest

from torrent_engine.net.utp import mmsg

pytestmark = pytest.mark.skipif(not mmsg.available(), reason="recvmmsg is Linux's")


def _pair(family: int, host: str) -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(family, socket.SOCK_DGRAM)
    rx.bind((host, 0))
    rx.setblocking(False)
    tx = socket.socket(family, socket.SOCK_DGRAM)
    tx.bind((host, 0))
    return rx, tx


def test_a_batch_in_one_call_with_sizes_senders_and_bytes() -> None:
    rx, tx = _pair(socket.AF_INET, "127.0.0.1")
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.2", 0))
    multi = mmsg.MultiReceiver(socket.AF_INET, 8)
    try:
        sent = [bytes([i]) * (100 + i) for i in range(5)] + [b"d" * 9000, b"", b"x"]
        for i, d in enumerate(sent):
            (other if i == 6 else tx).sendto(d, rx.getsockname())
        assert multi.receive(rx.fileno()) == 8
        assert multi.lengths(8) == [len(d) for d in sent]
        assert [bytes(multi.datagram(i)) for i in range(8)] == sent  # the 9 kB one whole
        assert multi.address(0) == tx.getsockname()
        assert multi.address(6) == other.getsockname()
        assert multi.name_key(0) == multi.name_key(7) != multi.name_key(6)
        assert multi.receive(rx.fileno()) == 0  # nothing waits: no block, no error
        tx.sendto(b"again", rx.getsockname())
        assert multi.receive(rx.fileno()) == 1
        assert bytes(multi.datagram(0)) == b"again"  # slots are reused
    finally:
        multi.close()
        for s in (rx, tx, other):
            s.close()


def test_more_waiting_than_slots_is_read_over_several_calls() -> None:
    rx, tx = _pair(socket.AF_INET, "127.0.0.1")
    multi = mmsg.MultiReceiver(socket.AF_INET, 4)
    try:
        for i in range(10):
            tx.sendto(i.to_bytes(2, "big"), rx.getsockname())
        got: list[bytes] = []
        for expect in (4, 4, 2, 0):
            n = multi.receive(rx.fileno())
            assert n == expect
            got += [bytes(multi.datagram(i)) for i in range(n)]
        assert got == [i.to_bytes(2, "big") for i in range(10)]
    finally:
        multi.close()
        rx.close()
        tx.close()


def test_ipv6_senders_are_named_as_recvfrom_names_them() -> None:
    try:
        rx, tx = _pair(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    multi = mmsg.MultiReceiver(socket.AF_INET6, 2)
    try:
        tx.sendto(b"six", rx.getsockname())
        assert multi.receive(rx.fileno()) == 1
        tx.sendto(b"six", rx.getsockname())
        assert multi.address(0) == rx.recvfrom(100)[1]
        assert bytes(multi.datagram(0)) == b"six"
    finally:
        multi.close()
        rx.close()
        tx.close()


def test_a_socket_error_is_raised() -> None:
    rx, tx = _pair(socket.AF_INET, "127.0.0.1")
    multi = mmsg.MultiReceiver(socket.AF_INET, 2)
    rx.close()
    try:
        with pytest.raises(OSError):
            multi.receive(rx.fileno() if rx.fileno() >= 0 else 1 << 20)
    finally:
        multi.close()
        tx.close()
