"""Churn soak: one TorrentManager adds, pauses, resumes, rechecks and removes torrents at random
for a bounded time against our own seeders (which come and go) and a libtorrent seeder, while
its memory, open file descriptors, tasks and threads are sampled.

At the end everything is back to the starting level within a small margin, every completed
torrent is byte-exact, and no resume file marks a piece that is not good on disk. The figures
are printed (run with ``-s``) and recorded in bench/RESULTS.md.

    SOAK_SECONDS=90 python3 -m pytest -q -s -p no:cacheprovider tests/integration/test_churn_soak.py
"""

from __future__ import annotations

import gc
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.kept import all_kept_resume
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.errors import SessionError
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session
from torrent_engine.storage.verify import piece_ok

from .helpers import add_again, loopback_config, make_payload, make_torrent, open_fds, same_files, task_count

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.interop]

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "50"))
TORRENTS = 12
RSS_MARGIN = 40 * 1024 * 1024  # the allocator keeps some freed memory; a leak per torrent would show
FD_MARGIN = 3
TASK_MARGIN = 2
THREAD_MARGIN = 4  # (worker threads idle for 10 s are reused or reaped by anyio)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def sample() -> dict[str, int]:
    gc.collect()
    return {"rss": rss(), "fds": open_fds(), "tasks": task_count(), "threads": threading.active_count()}


def bad_resume_pieces(state: Path, torrents: dict[bytes, Torrent]) -> list[str]:
    """Pieces resume data marks as had that are not good on disk."""
    bad: list[str] = []
    for data in all_kept_resume(state):
        if data.num_pieces == 0:
            continue
        torrent = torrents[data.info_hash]
        blob = bytearray()  # the piece space as it is on disk (small torrents: read whole)
        for f in torrent.files:
            on_disk = Path(data.save_path).joinpath(*f.path)
            raw = b"" if f.pad or not on_disk.is_file() else on_disk.read_bytes()[:f.length]
            blob += raw + bytes(f.length - len(raw))
        pl = torrent.piece_length
        bad += [f"{torrent.name}#{i}" for i in sorted(data.pieces())
                if not piece_ok(torrent, i, bytes(blob[i * pl:(i + 1) * pl]))]
    return bad


async def wait_done(session: Session, limit: float) -> bool:
    with anyio.move_on_after(limit):
        await session.wait_completed()
        return True
    return False


async def test_churn_soak(tmp_path: Path) -> None:
    require_libtorrent()
    rng = random.Random(12)
    torrents: dict[bytes, Torrent] = {}
    seeds = tmp_path / "seeds"
    for n in range(TORRENTS):
        sizes = [(f"f{j}.bin", rng.randint(1, 400_000)) for j in range(rng.randint(1, 3))]
        payload = make_payload(seeds / f"t{n}", sizes, seed=n, name=f"payload{n}")
        t = make_torrent(payload, piece_length=16 * 1024, version=("v1", "hybrid")[n % 2])
        torrents[t.info_hash] = t
    hashes = list(torrents)
    save = tmp_path / "dl"
    state = tmp_path / "state"
    ops: dict[str, int] = {}
    refused: list[str] = []

    for n, t in enumerate(torrents.values()):
        (seeds / f"t{n}" / "x.torrent").write_bytes(t.to_bytes())
    dirs = [str(seeds / f"t{n}") for n in range(TORRENTS)]
    lt_port, our_port = free_port(), free_port()
    peers = (("127.0.0.1", our_port), ("127.0.0.1", lt_port))
    seeders: dict[str, subprocess.Popen[str] | None] = {"libtorrent": None, "ours": None}

    async def start_seeder(kind: str, port: int) -> None:
        command = [sys.executable, "-m", "tests.integration._soak_seeder", kind, str(port), *dirs]
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        seeders[kind] = proc
        assert proc.stdout is not None
        with anyio.fail_after(60):
            line = await anyio.to_thread.run_sync(proc.stdout.readline)
        assert line.strip() == "ready", f"{kind} seeder did not start"

    def stop_seeder(kind: str) -> None:
        proc = seeders[kind]
        if proc is not None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            seeders[kind] = None

    try:
        await start_seeder("libtorrent", lt_port)
        await start_seeder("ours", our_port)
        async with TorrentManager(loopback_config(state_dir=state, seed=False)) as manager:
            # warm-up: one full cycle, so lazily created pools and caches exist at the start
            first = await manager.add(torrents[hashes[0]], save, peers=peers)
            assert await wait_done(first, 60)
            await manager.remove(first, delete_files=True)
            await anyio.sleep(0.5)
            start = sample()
            print("\nsoak start", start)

            async def apply(op: str, ih: bytes, session: Session | None) -> None:
                if op in ("add", "magnet") and session is None:
                    src: Any = torrents[ih] if op == "add" else f"magnet:?xt=urn:btih:{ih.hex()}"
                    await manager.add(src, save, peers=peers)
                elif op == "pause" and session is not None:
                    await session.pause()
                elif op == "resume" and session is not None:
                    await session.resume()
                elif op == "recheck" and session is not None:
                    # forget it but keep the files: adding it again hashes what is on disk
                    await manager.remove(session)
                    await manager.add(torrents[ih], save, peers=peers)
                elif op in ("remove", "remove_delete") and session is not None:
                    await manager.remove(session, delete_files=op == "remove_delete")
                elif op == "wait" and session is not None and session.state.value != "paused":
                    await wait_done(session, 10)
                elif op == "seed_flap":  # our seeder vanishes for a while, or comes back
                    if seeders["ours"] is None:
                        await start_seeder("ours", our_port)
                    else:
                        stop_seeder("ours")

            deadline = time.monotonic() + SOAK_SECONDS
            while time.monotonic() < deadline:
                ih = rng.choice(hashes)
                op = rng.choice(["add", "add", "magnet", "pause", "resume", "recheck", "remove",
                                 "remove_delete", "wait", "seed_flap"])
                ops[op] = ops.get(op, 0) + 1
                try:
                    await apply(op, ih, manager.get(ih))
                except SessionError as exc:  # e.g. pause() of a session that has finished
                    refused.append(f"{op}: {exc}")
                await anyio.sleep(rng.random() * 0.3)

            # finish: everything present and unpaused completes, byte-exact
            if seeders["ours"] is None:
                await start_seeder("ours", our_port)
            for session in manager.sessions:
                if session.state.value == "paused":
                    await session.resume()
            for session in manager.sessions:
                assert await wait_done(session, 90), f"{session.name}: {session.status()}"
            for ih in [s.info_hash for s in manager.sessions]:
                n = hashes.index(ih)
                t = torrents[ih]
                assert same_files(t, seeds / f"t{n}", save) == [], t.name
            handled = len(manager.sessions)
        # the manager wrote resume data at exit: none may mark a piece that is bad on disk
        assert bad_resume_pieces(state, torrents) == []
        async with TorrentManager(loopback_config(state_dir=state, seed=False)) as manager:
            for ih in await anyio.to_thread.run_sync(manager.saved):  # (as the owner of records would)
                await add_again(manager, ih, save)
            reloaded = [session.name for session in manager.sessions]  # from the state dir
            assert len(reloaded) == handled
            for session in list(manager.sessions):
                await manager.remove(session, delete_files=True)
            await anyio.sleep(11)  # (idle worker threads are reaped after 10 s idle ...
            await anyio.to_thread.run_sync(lambda: None)  # ... at the next hop, which stops them)
            await anyio.sleep(0.5)  # (and their threads end)
            end = sample()
    finally:
        stop_seeder("ours")
        stop_seeder("libtorrent")
    print("soak end  ", end, "ops", ops, "torrents at the end", handled, "refused", len(refused))
    print("\n".join(sorted(set(refused))[:10]))
    assert end["fds"] <= start["fds"] + FD_MARGIN
    assert end["tasks"] <= start["tasks"] + TASK_MARGIN
    assert end["threads"] <= start["threads"] + THREAD_MARGIN
    assert end["rss"] <= start["rss"] + RSS_MARGIN
    left = [name for name in reloaded if (save / name).exists()]
    assert left == [], "files left after remove(delete_files=True)"
