"""Data changed under our seed, with a libtorrent leecher: a file overwritten in place after its
pieces were verified is never served as it is now. libtorrent must never receive a piece that
fails its hash from us (it would ban us); we no longer count the changed piece as had."""

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


async def test_a_piece_overwritten_under_our_seed_is_never_sent_to_libtorrent(tmp_path: Path) -> None:
    lt = require_libtorrent()
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL)
    a = tmp_path / "seed" / "payload" / "a.bin"
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as ours:
        await ours.wait_ready()
        assert ours.state is State.SEEDING and ours.status().progress == 1.0
        before = a.stat()
        with a.open("r+b") as f:  # overwritten in place: same size, other bytes in one piece
            f.seek(CHANGED * PL + 100)
            f.write(b"\xa5" * 1000)
        # (a write moves the mtime; a coarse file system clock may leave it where it was)
        os.utime(a, ns=(before.st_atime_ns, max(a.stat().st_mtime_ns, before.st_mtime_ns + 1_000_000)))
        with lt_session(lt) as ses:
            ses.apply_settings({"alert_mask": lt.alert.category_t.all_categories})
            handle = lt_add(lt, ses, torrent, tmp_path / "lt")
            handle.connect_peer(("127.0.0.1", ours.listen_port))
            hash_failures: list[int] = []
            with anyio.fail_after(60):
                while handle.status().num_pieces < torrent.num_pieces - 1 and not hash_failures:
                    for alert in ses.pop_alerts():
                        if isinstance(alert, lt.hash_failed_alert):
                            hash_failures.append(alert.piece_index)
                    await anyio.sleep(0.05)
            await anyio.sleep(0.5)  # (a bad piece on its way would be hashed by now)
            for alert in ses.pop_alerts():
                if isinstance(alert, lt.hash_failed_alert):
                    hash_failures.append(alert.piece_index)
            st = handle.status()
            assert hash_failures == []  # nothing we sent failed its hash: we are not banned
            assert st.num_pieces == torrent.num_pieces - 1 and not st.pieces[CHANGED]
            assert st.num_peers == 1  # (still connected to us)
        assert CHANGED not in ours.have  # no longer had: it does not verify on disk
        assert ours.state is State.DOWNLOADING and ours.status().progress < 1.0
