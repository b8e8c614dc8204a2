"""Super-seeding (BEP 16) with five libtorrent leechers: our seed tells each of them of one rare
piece at a time, the leechers trade the rest among themselves, and the swarm completes while our
seed uploads little more than the torrent once (a plain seed uploads several times its size)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from tests.interop.test_libtorrent_transfer import lt_add, lt_session
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session
from torrent_engine.session.state_table import State

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

LEECHERS = 5
PL = 32 * 1024
FILES = (("a.bin", 1_000_003), ("b.bin", 500_001))  # 46 pieces
RATIO = 1.2  # what the issue asks: the seed uploads at most 1.2 times the torrent


async def run_swarm(lt: ModuleType, torrent: Torrent, seed_dir: Path, work: Path, *,
                    super_seeding: bool, limit: float = 90) -> tuple[float, float]:
    """Our seed and LEECHERS libtorrent leechers, each connected to all the others, until every
    leecher has finished: (our seed's uploaded bytes / the torrent's size, seconds). On time-out
    the failure says where each leecher stood."""
    async with Session(torrent, seed_dir, config=loopback_config()) as ours:
        await ours.wait_ready()
        assert ours.state is State.SEEDING
        ours.set_super_seeding(super_seeding)
        with ExitStack() as stack:
            sessions = [stack.enter_context(lt_session(lt)) for _ in range(LEECHERS)]
            handles: list[Any] = [lt_add(lt, ses, torrent, work / f"lt{n}") for n, ses in enumerate(sessions)]
            ports = [ses.listen_port() for ses in sessions]
            for n, handle in enumerate(handles):
                handle.connect_peer(("127.0.0.1", ours.listen_port))
                for other, port in enumerate(ports):
                    if other != n:
                        handle.connect_peer(("127.0.0.1", port))
            began = time.monotonic()
            try:
                with anyio.fail_after(limit):
                    while not all(h.status().is_finished for h in handles):
                        await anyio.sleep(0.05)
            except TimeoutError:
                stood = [f"{h.status().progress:.2f} ({h.status().num_peers} peers)" for h in handles]
                raise AssertionError(f"super_seeding={super_seeding}: the leechers not finished after "
                                     f"{limit:g} s: {', '.join(stood)}; our seed uploaded "
                                     f"{ours.uploaded / torrent.payload_size:.2f}x the torrent") from None
            seconds = time.monotonic() - began
        for n in range(LEECHERS):
            assert same_files(torrent, seed_dir, work / f"lt{n}") == [], n
        return ours.uploaded / torrent.payload_size, seconds


async def test_five_libtorrent_leechers_complete_while_our_super_seed_uploads_the_torrent_about_once(
        tmp_path: Path) -> None:
    lt = require_libtorrent()
    seed_dir = tmp_path / "seed"
    torrent = make_torrent(make_payload(seed_dir, FILES), piece_length=PL)
    ratio, seconds = await run_swarm(lt, torrent, seed_dir, tmp_path / "super", super_seeding=True)
    plain_ratio, plain_seconds = await run_swarm(lt, torrent, seed_dir, tmp_path / "plain",
                                                 super_seeding=False)
    measured = (f"super-seeding: uploaded {ratio:.2f}x the torrent in {seconds:.1f} s; "
                f"a plain seed: {plain_ratio:.2f}x in {plain_seconds:.1f} s")
    print(measured)
    assert ratio <= RATIO, measured


async def test_we_download_from_a_libtorrent_super_seed(tmp_path: Path) -> None:
    """The other way: libtorrent super-seeds (HAVE NONE, then a piece at a time) and offers the
    next piece once it hears our HAVE of the last, which we send it although it told us it has
    the piece (it started empty)."""
    lt = require_libtorrent()
    seed_dir = tmp_path / "seed"
    torrent = make_torrent(make_payload(seed_dir, FILES), piece_length=PL)
    with lt_session(lt) as ses:
        handle = lt_add(lt, ses, torrent, seed_dir)
        with anyio.fail_after(30):
            while not handle.status().is_seeding:
                await anyio.sleep(0.05)
        handle.set_flags(lt.torrent_flags.super_seeding)
        async with Session(torrent, tmp_path / "ours", config=loopback_config(),
                           peers=[("127.0.0.1", ses.listen_port())]) as ours:
            try:
                with anyio.fail_after(60):
                    await ours.wait_completed()
            except TimeoutError:
                raise AssertionError(f"not complete after 60 s: {len(ours.have)} of {torrent.num_pieces} "
                                     f"pieces, {len(ours.peers)} peers") from None
    assert same_files(torrent, seed_dir, tmp_path / "ours") == []
