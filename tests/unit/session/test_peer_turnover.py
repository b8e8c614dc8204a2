"""Peer turnover in a running session whose dials reach fake links: at its connection limit, with
other addresses known, it drops its slowest peer at the interval and dials another in its place;
with none to try instead, it keeps its peers."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config
from torrent_engine.session import Session
from torrent_engine.storage.create import create_torrent

from .idle_link import IdleLink

pytestmark = pytest.mark.anyio


async def run_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, known: int,
                           ) -> tuple[list[tuple[str, int]], list[tuple[int, str]], int]:
    """A session allowed 6 peers that knows ``known`` addresses, its turnover looking every
    0.5 s, its first peer the slowest: the addresses dialed, the peers closed (their place among
    the peers and their reason), and the peers dropped, once it has turned over once (or 3 s
    passed)."""
    import torrent_engine.session.connector as connector_module

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    pool = [("127.0.0.1", 7000 + i) for i in range(known)]
    dialed: list[tuple[str, int]] = []

    async def fake_open_connection(host: str, port: int, **kw: object) -> IdleLink:
        dialed.append((host, port))
        return IdleLink(b"-XX0001-" + str(port).encode().rjust(12, b"0"))

    monkeypatch.setattr(connector_module, "open_connection", fake_open_connection)
    cfg = loopback_config(max_peers_per_torrent=6, peer_turnover=20, peer_turnover_interval=0.5)
    async with Session(torrent, tmp_path / "dl", config=cfg, peers=pool) as s:
        with anyio.fail_after(5):
            while len(s.peers) < 6:
                await anyio.sleep(0.01)
        peers = list(s.peers)
        for peer in peers[1:]:  # (each has sent us plenty, but the first)
            peer.downloaded = 10_000_000
        with anyio.move_on_after(3):
            while not s.connector.turned_over:
                await anyio.sleep(0.01)
        reasons = [(i, peer.close_reason) for i, peer in enumerate(peers) if peer.closed]
        dropped = s.connector.turned_over
        with anyio.fail_after(5):  # (and one dialed in its place)
            while dropped and len(dialed) < 7:
                await anyio.sleep(0.01)
    return dialed, reasons, dropped


async def test_at_its_limit_a_torrent_drops_its_slowest_peer_and_dials_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dialed, reasons, dropped = await run_at_the_limit(tmp_path, monkeypatch, known=9)
    assert dropped == 1 and len(reasons) == 1  # (20 % of 6: one at least)
    place, reason = reasons[0]
    assert place == 0 and reason.startswith("peer turnover: one of the 1 worst of 6 peers")
    assert len(dialed) == len(set(dialed)) == 7  # (an address not tried before, in its place)


async def test_with_no_other_address_a_torrent_keeps_its_peers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dialed, reasons, dropped = await run_at_the_limit(tmp_path, monkeypatch, known=6)
    assert (dropped, reasons, len(dialed)) == (0, [], 6)
