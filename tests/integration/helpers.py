"""Payloads, torrents and checks shared by the loopback swarm tests."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from torrent_engine import events as ev
from torrent_engine.config import Config
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.net.peer.messages import Message
from torrent_engine.session import PeerState, Session
from torrent_engine.session.peer_io import PeerLink
from torrent_engine.storage.create import create_torrent

# Odd sizes, a nested folder and an empty file; hybrid torrents get BEP 47 pad files between.
DEFAULT_FILES: tuple[tuple[str, int], ...] = (
    ("a.bin", 200_003),
    ("empty.txt", 0),
    ("sub/b.bin", 77_777),
    ("sub/deeper/c.dat", 131_072 + 5),
    ("z.txt", 1),
)


def make_payload(root: Path, files: Sequence[tuple[str, int]] = DEFAULT_FILES, *, seed: int = 1,
                 name: str = "payload") -> Path:
    rng = random.Random(seed)
    base = root / name
    for rel, size in files:
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
    return base


def make_torrent(payload: Path, *, piece_length: int = 32 * 1024, version: str = "hybrid") -> Torrent:
    return create_torrent(payload, piece_length=piece_length, version=version)  # type: ignore[arg-type]


def small_v1(root: Path, files: Sequence[tuple[str, int]], name: str, *, seed: int = 1) -> Torrent:
    """A v1 torrent of 16 KiB pieces over ``files``, made in ``root/name``."""
    return make_torrent(make_payload(root, files, name=name, seed=seed), version="v1", piece_length=16384)


@asynccontextmanager
async def seeded_magnet(torrent: Torrent, root: Path) -> AsyncIterator[str]:
    """A session seeding ``torrent`` from ``root`` on loopback, ready: its magnet link, naming
    that peer (``x.pe``)."""
    async with Session(torrent, root, config=loopback_config()) as seeder:
        await seeder.wait_ready()
        yield f"{torrent.magnet_uri()}&x.pe=127.0.0.1:{seeder.listen_port}"


def loopback_config(**kw: object) -> Config:
    cfg = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                 lsd_enabled=False,
                 tracker_enabled=False)
    for key, value in kw.items():
        setattr(cfg, key, value)
    return cfg


async def add_again(manager: TorrentManager, info_hash: bytes, save_path: Path) -> Session:
    """A restart as the owner of the records makes it (the job service, from its jobs): the
    torrent the manager saved before (``info_hash``, the hash it was added by) added again from
    its saved metainfo, going on from what its resume data says was verified."""
    assert manager.keeps_saved, "the manager has no state folder"
    torrent = manager.saved_metainfo(info_hash)
    assert torrent is not None, "the manager kept no metainfo for it"
    return await manager.add_saved(torrent, save_path, info_hash=info_hash)


def same_files(torrent: Torrent, a: Path, b: Path, *, empty_may_be_missing: bool = False) -> list[str]:
    """Paths (relative) whose contents differ or are missing; pad files must not exist.

    ``empty_may_be_missing``: for clients (Transmission 3) that never create zero-length files."""
    bad: list[str] = []
    for f in torrent.files:
        pa, pb = a.joinpath(*f.path), b.joinpath(*f.path)
        if f.length == 0 and empty_may_be_missing and not pb.exists():
            continue
        if f.pad:
            if pb.exists():
                bad.append("/".join(f.path) + " (pad file written)")
            continue
        if not pb.is_file() or pa.read_bytes() != pb.read_bytes():
            bad.append("/".join(f.path))
    return bad


def keep_peers(session: Session, also: Callable[[], object] | None = None) -> list[PeerState]:
    """Every peer ``session`` connects from now on, kept as it connects (``PeerConnected``), to be
    read after the session let it go: a leecher closes its seeds as soon as it completes, before
    a test's next line. ``also`` is called at each connection too (to keep more of it)."""
    met: list[PeerState] = []

    def keep(_event: ev.PeerConnected) -> None:
        met.extend(p for p in session.peers if all(p is not q for q in met))
        if also is not None:
            also()

    session.events.subscribe(ev.PeerConnected, keep)
    return met


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def task_count() -> int:
    return len(asyncio.all_tasks())


def record_sent_messages(monkeypatch: pytest.MonkeyPatch) -> list[Message]:
    """Every message our peer links send from now on (the test's sessions, in order)."""
    sent: list[Message] = []
    original = PeerLink.send_many

    async def spy(self: PeerLink, msgs: Iterable[Message]) -> None:
        msgs = list(msgs)
        sent.extend(msgs)
        await original(self, msgs)

    monkeypatch.setattr(PeerLink, "send_many", spy)
    return sent
