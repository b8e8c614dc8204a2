"""Dialing a peer by uTP and TCP at once (``peer_io._race``): whatever ends the race, a link that
won is either handed back or closed."""

from __future__ import annotations

import math
from typing import cast

import anyio
import pytest

from torrent_engine.net.peer.connection import PeerConnection
from torrent_engine.session.peer_io import _race

pytestmark = pytest.mark.anyio


class FakeConnection:
    """What ``PeerLink`` reads of a handshaken connection, and whether it was closed."""

    peer_id = b"-TE0000-" + b"0" * 12

    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_a_link_that_won_as_the_dial_was_cancelled_is_closed() -> None:
    """A pause cancelled the dialer just as uTP's handshake completed: the link was left open,
    so the peer kept it as connected and refused our next dial as a duplicate of our peer id
    (a paused and resumed download that never reconnected)."""
    conn = FakeConnection()

    with anyio.CancelScope() as outer:
        async def utp_dial() -> PeerConnection:
            outer.cancel()  # (the swarm cancelled between the handshake and the race's end)
            return cast(PeerConnection, conn)

        async def tcp_dial() -> PeerConnection:
            await anyio.sleep(math.inf)
            raise AssertionError("unreachable")

        await _race(utp_dial, tcp_dial, ("127.0.0.1", 6881), head_start=30.0)
    assert outer.cancel_called and conn.closed


async def test_a_link_that_won_is_handed_back_open() -> None:
    conn = FakeConnection()

    async def utp_dial() -> PeerConnection:
        return cast(PeerConnection, conn)

    async def tcp_dial() -> PeerConnection:
        await anyio.sleep(math.inf)
        raise AssertionError("unreachable")

    link = await _race(utp_dial, tcp_dial, ("127.0.0.1", 6881), head_start=30.0)
    assert link.conn is cast(PeerConnection, conn) and link.transport == "utp" and not conn.closed


@pytest.mark.parametrize("tcp_dialing", [True, False], ids=["tcp-dialing", "tcp-in-head-start"])
async def test_the_losing_dial_ends_with_no_reference_cycle_for_the_collector(tcp_dialing: bool) -> None:
    """The loser is called off by its own scope and its task returns: a task that ended
    cancelled is kept by anyio in a reference cycle with its frames, a few hundred a second
    for the garbage collector while many torrents start."""
    import gc

    conn = FakeConnection()
    utp_ready = anyio.Event()
    tcp_began = anyio.Event()

    async def utp_dial() -> PeerConnection:
        await utp_ready.wait()
        return cast(PeerConnection, conn)

    async def tcp_dial() -> PeerConnection:
        tcp_began.set()
        await anyio.sleep(math.inf)
        raise AssertionError("unreachable")

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        async with anyio.create_task_group() as tg:
            async def go() -> None:
                link = await _race(utp_dial, tcp_dial, ("127.0.0.1", 6881),
                                   head_start=0.0 if tcp_dialing else 30.0)
                assert link.transport == "utp" and not conn.closed

            tg.start_soon(go)
            if tcp_dialing:
                await tcp_began.wait()  # (the TCP dial is under way when uTP wins)
            else:
                await anyio.sleep(0.01)  # (TCP still waits out uTP's head start)
            utp_ready.set()
        gc.collect()
        left = [o for o in gc.garbage
                if type(o).__name__ == "frame" and "_race.<locals>" in o.f_code.co_qualname]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []


@pytest.mark.parametrize("tcp_fails", [False, True], ids=["tcp-wins", "tcp-fails"])
async def test_tcp_first_dials_utp_only_after_its_head_start_or_its_failure(tcp_fails: bool) -> None:
    """``tcp_first`` (Transmission's ``preferred_transports`` ``["tcp", "utp"]``): TCP alone
    for the head start; a refused TCP lets uTP go at once."""
    tcp_conn, utp_conn = FakeConnection(), FakeConnection()
    utp_dialed = anyio.Event()

    async def tcp_dial() -> PeerConnection:
        if tcp_fails:
            raise OSError("refused")
        await anyio.sleep(0.05)
        return cast(PeerConnection, tcp_conn)

    async def utp_dial() -> PeerConnection:
        utp_dialed.set()
        return cast(PeerConnection, utp_conn)

    with anyio.fail_after(5):
        link = await _race(utp_dial, tcp_dial, ("127.0.0.1", 6881), head_start=30.0, tcp_first=True)
    assert link.transport == ("utp" if tcp_fails else "tcp") and utp_dialed.is_set() is tcp_fails
    assert not tcp_conn.closed and not utp_conn.closed
