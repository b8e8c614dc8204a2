"""Segmented sends (``UDP_SEGMENT``) and coalesced reads (``UDP_GRO``): which datagrams go
together, that they arrive whole and in order, and the one-by-one fallback."""

from __future__ import annotations

import socket
import sys

import anyio
import pytest

from torrent_engine.net.utp import gso, mmsg
from torrent_engine.net.utp.socket import UtpSocket

from .loopback import upload, utp_pair

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="UDP_SEGMENT is Linux's")


def test_runs_group_equal_sizes_and_a_shorter_last_one() -> None:
    assert gso.runs([1400] * 5 + [300]) == [(0, 6)]
    assert gso.runs([1400, 1400, 1500, 1400]) == [(0, 2), (2, 4)]  # a longer one starts anew
    assert gso.runs([1400, 20, 20, 1400]) == [(0, 2), (2, 3), (3, 4)]  # a shorter one ends a run
    assert gso.runs([]) == []
    assert gso.runs([100]) == [(0, 1)]


def test_runs_respect_the_kernels_limits() -> None:
    assert gso.runs([1400] * 100) == [(0, 46), (46, 92), (92, 100)]  # 46 * 1400 <= 65 000 bytes
    assert gso.runs([10] * 150) == [(0, 64), (64, 128), (128, 150)]  # 64 segments at most
    assert gso.runs([1400] * 46 + [1400]) == [(0, 46), (46, 47)]
    assert gso.runs([1400] * 45 + [1000]) == [(0, 46)]
    assert gso.runs([1400] * 46 + [10]) == [(0, 47)]
    assert gso.runs([1400] * 46 + [700]) == [(0, 46), (46, 47)]  # 65 100 bytes would be too many
    # a datagram larger than one segmented send may carry (large datagrams on loopback) goes alone
    assert gso.runs([65400, 65400, 300]) == [(0, 1), (1, 2), (2, 3)]
    assert gso.runs([40000, 30000]) == [(0, 1), (1, 2)]
    # the run boundaries cover every datagram once, in order
    sizes = [1400] * 50 + [7, 7, 900, 1400, 1400, 3] * 20
    spans = gso.runs(sizes)
    assert [i for a, b in spans for i in range(a, b)] == list(range(len(sizes)))


def _datagrams(count: int, size: int, last: int) -> list[bytes]:
    return [bytes([i]) * size for i in range(count - 1)] + [b"\xff" * last]


async def _send_many_to_plain_socket(datagrams: list[bytes]) -> tuple[UtpSocket, list[bytes]]:
    sock = UtpSocket()
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    got: list[bytes] = []
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(sock.run, "127.0.0.1", 0)
            sock.send_many(datagrams, rx.getsockname())
            with anyio.fail_after(10):
                while len(got) < len(datagrams):
                    await anyio.wait_readable(rx)
                    got.append(rx.recv(65536))
            tg.cancel_scope.cancel()
    finally:
        rx.close()
    return sock, got


@linux
@pytest.mark.anyio
async def test_a_run_leaves_in_one_call_as_separate_datagrams() -> None:
    sent = _datagrams(30, 1400, 333) + [b"odd one"]
    sock, got = await _send_many_to_plain_socket(sent)
    assert got == sent  # whole, in order, cut where each datagram ends
    assert sock.segmented_sends == 1 and sock.datagrams_sent == len(sent)


@linux
@pytest.mark.anyio
async def test_where_the_kernel_refuses_segmenting_datagrams_go_one_by_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gso, "control", lambda segment: [(gso.SOL_UDP, gso.UDP_SEGMENT, b"\x01\x00")])
    sent = _datagrams(10, 1400, 20)  # 1-byte segments: more than the kernel takes (EINVAL)
    sock, got = await _send_many_to_plain_socket(sent)
    assert got == sent
    assert sock.segmented_sends == 0 and sock.datagrams_sent == len(sent) and sock.send_errors == 0
    assert not sock._segment  # and it does not try again


@pytest.mark.skipif(not mmsg.available(), reason="recvmmsg is Linux's")
def test_a_coalesced_slot_says_its_segment_size() -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    rx.setsockopt(mmsg.SOL_UDP, mmsg.UDP_GRO, 1)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    multi = mmsg.MultiReceiver(socket.AF_INET, 4, coalesce=True)
    try:
        run = _datagrams(10, 1000, 300)
        tx.sendmsg(run, gso.control(1000), 0, rx.getsockname())
        tx.sendto(b"alone", rx.getsockname())
        n = multi.receive(rx.fileno())
        assert n == 2 and multi.coalesced(n)
        assert multi.segment_size(0) == 1000 and bytes(multi.datagram(0)) == b"".join(run)
        assert multi.segment_size(1) == 0 and bytes(multi.datagram(1)) == b"alone"
        tx.sendto(b"again", rx.getsockname())  # the control buffers are ready for the next call
        n = multi.receive(rx.fileno())
        assert n == 1 and not multi.coalesced(n) and bytes(multi.datagram(0)) == b"again"
    finally:
        multi.close()
        rx.close()
        tx.close()


@linux
@pytest.mark.anyio
@pytest.mark.parametrize("coalesce", [True, False])
async def test_an_upload_arrives_whole_over_segmented_sends(coalesce: bool) -> None:
    data = bytes(range(256)) * 8000  # ~2 MB: many full windows of full packets
    async with utp_pair(coalesce=coalesce, timeout=60) as (stream, accepted, server, client):
        received = await upload(stream, accepted, data)
    assert received == data
    assert client.segmented_sends > 0
    assert server.datagrams_received >= len(data) // stream.conn.payload_size
    if mmsg.available():  # runs of the client's segmented sends were read as one (or not)
        assert (server.coalesced_reads > 0) == coalesce
