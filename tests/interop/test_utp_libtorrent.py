"""uTP (BEP 29) against libtorrent on 127.0.0.1, with TCP switched off on both sides.

libtorrent is set up loopback-only (no DHT/LSD/UPnP/NAT-PMP) with ``enable_outgoing_tcp`` and
``enable_incoming_tcp`` False, so every byte it exchanges with us goes over uTP; our side runs
with ``transport="utp"`` (no TCP dial, incoming TCP refused).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.integration.helpers import keep_peers, loopback_config, make_payload, make_torrent, same_files
from tests.interop.test_libtorrent_transfer import lt_add, lt_session, wait_lt
from torrent_engine.net.utp.connection import PACKET_SIZE
from torrent_engine.net.utp.pmtud import MTU_SEARCH_DONE
from torrent_engine.net.utp.socket import IPV4_MTU_CEILING
from torrent_engine.session import PeerState, Session
from torrent_engine.session.state_table import State

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

FILES = (("a.bin", 2_000_003), ("sub/b.bin", 300_001), ("z.txt", 1))


def lt_utp_session(lt: ModuleType, encryption: str = "disable") -> Any:
    return lt_session(lt, encryption, transport="utp")


def _keep_streams(session: Session) -> tuple[list[PeerState], list[Any]]:
    """The session's peers and their uTP streams, each kept as a peer connects (``keep_peers``):
    read after the session let them go (a seed closes a peer that completed, at once)."""
    streams: list[Any] = []

    def also(met: list[PeerState]) -> None:
        shared = session.shared
        assert shared is not None and shared.utp is not None
        keys = {p.key for p in met}
        streams.extend(s for _, s in shared.utp.table
                       if s.remote in keys and all(s is not t for t in streams))

    met = keep_peers(session, lambda: also(met))
    return met, streams


def _datagram_sizes(streams: list[Any]) -> set[int]:
    """The datagram size of each uTP connection: libtorrent skips the larger datagrams our SYN
    offers on loopback and offers none itself, so none are agreed; the standard size stays
    unless path MTU discovery found more (padded probes, which libtorrent takes as data packets
    with an extension it skips)."""
    assert all(stream.conn.peer_max_datagram == 0 for stream in streams)
    return {stream.conn.packet_size for stream in streams}


@pytest.mark.parametrize("encryption", ["disable", "require"])
async def test_we_download_from_libtorrent_over_utp(tmp_path: Path, encryption: str) -> None:
    lt = require_libtorrent()
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=64 * 1024)
    with lt_utp_session(lt, encryption) as ses:
        handle = lt_add(lt, ses, torrent, tmp_path / "seed")
        await wait_lt(handle, seeding=True)
        cfg = loopback_config(encryption=encryption, transport="utp")
        async with Session(torrent, tmp_path / "ours", config=cfg,
                           peers=[("127.0.0.1", ses.listen_port())]) as ours:
            met, streams = _keep_streams(ours)
            with anyio.fail_after(120):
                await ours.wait_completed()
            assert ours.state is State.SEEDING
            assert met and all(p.link.transport == "utp" for p in met)
            if encryption == "require":
                assert all(p.link.encrypted for p in met)
            assert _datagram_sizes(streams) == {PACKET_SIZE}
    assert same_files(torrent, tmp_path / "seed", tmp_path / "ours") == []


@pytest.mark.parametrize("encryption", ["disable", "require"])
async def test_libtorrent_downloads_from_us_over_utp(tmp_path: Path, encryption: str) -> None:
    lt = require_libtorrent()
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=64 * 1024)
    lt_dir = tmp_path / "lt"
    cfg = loopback_config(encryption=encryption, transport="utp")
    async with Session(torrent, tmp_path / "seed", config=cfg) as ours:
        await ours.wait_ready()
        _met, streams = _keep_streams(ours)
        with lt_utp_session(lt, encryption) as ses:
            handle = lt_add(lt, ses, torrent, lt_dir)
            await wait_lt(handle, seeding=False, limit=120, peer=("127.0.0.1", ours.listen_port))
            assert ours.uploaded >= torrent.payload_size
            # our upload found that loopback carries an Ethernet MTU's datagrams (its probes went
            # up to IPv4's ceiling), and libtorrent took them all
            sizes = _datagram_sizes(streams)
            assert sizes and all(IPV4_MTU_CEILING - MTU_SEARCH_DONE < s <= IPV4_MTU_CEILING for s in sizes)
    assert same_files(torrent, tmp_path / "seed", lt_dir) == []
