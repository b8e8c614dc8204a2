"""Data changed under our seed, with a libtorrent leecher: a file overwritten in place after its
pieces were verified is never served as it is now. libtorrent must never receive a piece that
fails its hash from us (it would ban us); we no longer count the changed piece as had, and say so
(BEP 54 ``lt_donthave``): told only by rejects, libtorrent asked again and again for the blocks of
the piece if it had begun it, and for nothing else (1 run in 12 under load stalled so)."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.integration.helpers import loopback_config, make_payload, make_torrent
from tests.interop.test_libtorrent_transfer import lt_add, lt_session
from torrent_engine.session import Session
from torrent_engine.session.state_table import State

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

PL = 64 * 1024
FILES = (("a.bin", 1_000_003), ("b.bin", 300_001))
CHANGED = 3  # a piece inside a.bin


def _overwrite_in_place(a: Path) -> None:
    """Same size, other bytes in piece CHANGED."""
    before = a.stat()
    with a.open("r+b") as f:
        f.seek(CHANGED * PL + 100)
        f.write(b"\xa5" * 1000)
    # (a write moves the mtime; a coarse file system clock may leave it where it was)
    os.utime(a, ns=(before.st_atime_ns, max(a.stat().st_mtime_ns, before.st_mtime_ns + 1_000_000)))


async def test_a_piece_overwritten_under_our_seed_is_never_sent_to_libtorrent(tmp_path: Path) -> None:
    lt = require_libtorrent()
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL)
    a = tmp_path / "seed" / "payload" / "a.bin"
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as ours:
        await ours.wait_ready()
        assert ours.state is State.SEEDING and ours.status().progress == 1.0
        _overwrite_in_place(a)
        with lt_session(lt) as ses:
            ses.apply_settings({"alert_mask": lt.alert.category_t.all_categories})
            handle = lt_add(lt, ses, torrent, tmp_path / "lt")
            handle.connect_peer(("127.0.0.1", ours.listen_port))
            hash_failures: list[int] = []
            links: list[str] = []  # (libtorrent's connects and disconnects: said when it stalls)
            with anyio.move_on_after(60):
                while handle.status().num_pieces < torrent.num_pieces - 1 and not hash_failures:
                    for alert in ses.pop_alerts():
                        if isinstance(alert, lt.hash_failed_alert):
                            hash_failures.append(alert.piece_index)
                        elif isinstance(alert, (lt.peer_connect_alert, lt.peer_disconnected_alert,
                                                lt.peer_error_alert)):
                            links.append(alert.message())
                    await anyio.sleep(0.05)
            st = handle.status()
            assert st.num_pieces >= torrent.num_pieces - 1 or hash_failures, (
                f"libtorrent stalled at {st.num_pieces} of {torrent.num_pieces} pieces after 60 s: "
                f"missing {[i for i, had in enumerate(st.pieces) if not had]}, peers {st.num_peers}, "
                f"downloading {[q['piece_index'] for q in handle.get_download_queue()]}, "
                f"its connections {links}; ours lost {sorted(ours.uploader.lost)}, "
                f"ours has {ours.status().peers} peers")
            await anyio.sleep(0.5)  # (a bad piece on its way would be hashed by now)
            for alert in ses.pop_alerts():
                if isinstance(alert, lt.hash_failed_alert):
                    hash_failures.append(alert.piece_index)
            st = handle.status()
            assert hash_failures == []  # nothing we sent failed its hash: we are not banned
            assert st.num_pieces == torrent.num_pieces - 1 and not st.pieces[CHANGED]
            assert st.num_peers == 1  # (still connected to us)
            (us,) = handle.get_peer_info()
            assert not us.pieces[CHANGED] and sum(us.pieces) == torrent.num_pieces - 1  # BEP 54
        assert CHANGED not in ours.have  # no longer had: it does not verify on disk
        assert ours.state is State.DOWNLOADING and ours.status().progress < 1.0


async def test_libtorrent_that_began_the_overwritten_piece_still_gets_every_other_one(tmp_path: Path) -> None:
    """The stall above made certain: libtorrent wants the changed piece alone until we have
    refused it, then everything. A piece it has begun it asks for again at once when rejected,
    before any other; without ``lt_donthave`` it asked us for that piece only, for ever."""
    lt = require_libtorrent()
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as ours:
        await ours.wait_ready()
        _overwrite_in_place(tmp_path / "seed" / "payload" / "a.bin")
        with lt_session(lt) as ses:
            handle = lt_add(lt, ses, torrent, tmp_path / "lt")
            handle.prioritize_pieces([7 if i == CHANGED else 0 for i in range(torrent.num_pieces)])
            handle.connect_peer(("127.0.0.1", ours.listen_port))
            with anyio.fail_after(30):  # libtorrent asks for it: we find it changed, and lose it
                while CHANGED not in ours.uploader.lost:
                    await anyio.sleep(0.01)
            handle.prioritize_pieces([4] * torrent.num_pieces)
            with anyio.move_on_after(30):
                while handle.status().num_pieces < torrent.num_pieces - 1:
                    await anyio.sleep(0.05)
            st = handle.status()
            assert st.num_pieces == torrent.num_pieces - 1 and not st.pieces[CHANGED], (
                f"libtorrent stalled at {st.num_pieces} of {torrent.num_pieces} pieces: "
                f"downloading {[q['piece_index'] for q in handle.get_download_queue()]}, "
                f"peers {st.num_peers}")
            assert st.num_peers == 1
