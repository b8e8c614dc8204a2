"""v2-only and hybrid magnet links by ``btmh`` alone, downloaded from a libtorrent seeder on
127.0.0.1: the info dict comes by BEP 9, the v2 piece layers by BEP 52 hash requests, and the
saved metainfo holds them (DHT off on both sides; the seeder is given as a peer)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.integration.helpers import (
    loopback_config,
    make_payload,
    make_torrent,
    record_sent_messages,
    same_files,
)
from tests.interop.test_libtorrent_transfer import lt_add, lt_session, wait_lt
from tests.kept import kept_torrent
from torrent_engine import events as ev
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.net.peer import messages as m
from torrent_engine.session import Session

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

PL = 64 * 1024
# files of several pieces (a.bin: 16, sub/b.bin: 2), one smaller than a piece (no piece layer by
# BEP 52's rules) and an empty one
FILES = (("a.bin", 1_000_003), ("empty.txt", 0), ("sub/b.bin", 77_777), ("z.txt", 1_000))


@pytest.mark.parametrize("version", ["v2", "hybrid"])
async def test_btmh_magnet_from_libtorrent_seeder(tmp_path: Path, version: str) -> None:
    lt = require_libtorrent()
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL, version=version)
    assert torrent.info_hash_v2 is not None and len(torrent.piece_layers) == 2
    uri = f"magnet:?xt=urn:btmh:1220{torrent.info_hash_v2.hex()}&dn={torrent.name}"  # no btih
    magnet = parse_magnet(uri)
    assert magnet.info_hash_v1 is None
    seen: list[ev.Event] = []
    state = tmp_path / "state"
    with lt_session(lt) as ses:
        handle = lt_add(lt, ses, torrent, tmp_path / "seed")
        await wait_lt(handle, seeding=True)
        async with TorrentManager(loopback_config(state_dir=state)) as manager:
            manager.events.subscribe("*", seen.append)
            ours = await manager.add(uri, tmp_path / "ours", peers=(("127.0.0.1", ses.listen_port()),))
            with anyio.fail_after(60):
                await ours.wait_completed()
                while ours.torrent.missing_piece_layers:  # (hybrid: SHA-1 verifies without them)
                    await anyio.sleep(0.05)
            assert ours.hash_failures == 0 and ours.banned_count == 0
            assert ours.torrent.piece_layers == torrent.piece_layers
            with anyio.fail_after(10):
                while (kept := kept_torrent(state, magnet.info_hash)) is None or kept.missing_piece_layers:
                    await anyio.sleep(0.05)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "ours") == []
    assert not [e for e in seen if isinstance(e, ev.PieceHashFailed)]
    assert any(isinstance(e, ev.SessionPieceLayersReceived) for e in seen)
    saved = kept_torrent(state, magnet.info_hash)
    assert saved is not None and saved.piece_layers == torrent.piece_layers
    assert (saved.info_hash_v1, saved.info_hash_v2) == (torrent.info_hash_v1, torrent.info_hash_v2)
    assert saved.info_bytes == torrent.info_bytes


async def test_hybrid_torrent_file_without_layers_over_v1_from_libtorrent(tmp_path: Path) -> None:
    """Over a hybrid's v1 info-hash no hash request is sent (libtorrent drops a v1 connection
    that sends one); SHA-1 verifies every piece, and the v2 layers are built from them."""
    lt = require_libtorrent()
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL, version="hybrid")
    bare = Torrent.from_info_bytes(torrent.info_bytes)
    assert bare.missing_piece_layers
    with lt_session(lt) as ses:
        handle = lt_add(lt, ses, torrent, tmp_path / "seed")
        await wait_lt(handle, seeding=True)
        async with Session(bare, tmp_path / "ours", config=loopback_config(),
                           peers=[("127.0.0.1", ses.listen_port())]) as ours:
            with anyio.fail_after(60):
                await ours.wait_completed()
            assert ours.hash_failures == 0 and ours.banned_count == 0
            assert ours.torrent.piece_layers == torrent.piece_layers
    assert same_files(torrent, tmp_path / "seed", tmp_path / "ours") == []


async def test_libtorrent_fetches_a_v2_magnet_from_our_seeder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """libtorrent asks our seeder for the piece layers (BEP 52 hash requests): every request is
    answered, none rejected, with hashes it accepts."""
    lt = require_libtorrent()
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL, version="v2")
    uri = f"magnet:?xt=urn:btmh:1220{(torrent.info_hash_v2 or b'').hex()}&dn={torrent.name}"
    sent = record_sent_messages(monkeypatch)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        with lt_session(lt) as ses:
            ses.apply_settings({"alert_mask": lt.alert_category.all})
            params = lt.parse_magnet_uri(uri)
            params.save_path = str(tmp_path / "lt")
            handle = ses.add_torrent(params)
            await wait_lt(handle, seeding=False, peer=("127.0.0.1", seeder.listen_port))
            seen = [(isinstance(a, lt.peer_disconnected_alert), a.message()) for a in ses.pop_alerts()
                    if isinstance(a, (lt.hash_failed_alert, lt.peer_disconnected_alert, lt.peer_error_alert))]
            # (an alert is read before the next pop_alerts, which leaving lt_session calls)
    # libtorrent reports "invalid hashes" for an answer that does not verify: none here, no piece
    # failed, and the one disconnect is for being done
    assert not [message for disconnect, message in seen if not disconnect
                or "finished" not in message and "seed" not in message]
    answers = [msg for msg in sent if isinstance(msg, m.Hashes)]
    assert {a.pieces_root for a in answers} == set(torrent.piece_layers)
    assert not [msg for msg in sent if isinstance(msg, m.HashReject)]
    assert same_files(torrent, tmp_path / "seed", tmp_path / "lt") == []
