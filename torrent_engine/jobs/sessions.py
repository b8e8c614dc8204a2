"""A job's session added to the engine's manager again (a start, a dormant job woken or moved):
from what the state folder keeps, its metainfo (or, for a magnet whose metadata never came, its
magnet) and resume data, told before it starts what the job's record holds."""

from __future__ import annotations

from pathlib import Path

import anyio

from ..engine.manager import TorrentManager
from ..errors import SessionError, TorrentEngineError
from ..formats.magnet import Magnet, magnet_again
from ..formats.metainfo import Torrent
from ..session import Session, SessionSetup
from .store import JobRecord


async def saved_source(manager: TorrentManager, rec: JobRecord) -> Torrent | Magnet:
    """What a session of ``rec`` starts from again: its metainfo as the state folder keeps it,
    or (a magnet whose metadata never came) its magnet, to fetch it; ``SessionError`` when a
    torrent's metainfo is missing."""
    try:
        kept = await anyio.to_thread.run_sync(manager.saved_metainfo, rec.info_hash)
        if kept is None:
            raise SessionError("its metainfo is missing from the state directory")
        return kept
    except (TorrentEngineError, OSError):
        if not rec.source.startswith("magnet:"):
            raise
        return magnet_again(rec.source, bytes.fromhex(rec.info_hash))  # (fetches its metadata)


async def add_session(manager: TorrentManager, rec: JobRecord, source: Torrent | Magnet,
                      setup: SessionSetup, save_path: Path, *, paused: bool, saved: bool) -> Session:
    """A session of ``rec`` added to ``manager`` at ``save_path`` from ``source`` and its resume
    data, told before it starts what the record holds (``setup``: its options, file priorities,
    renamed files and edited trackers), under the job's info-hash. ``saved``: a ``Torrent``
    source is the metainfo the manager keeps (nothing written again); else it is written as an
    add's."""
    o = rec.options
    if not isinstance(source, Torrent):
        return await manager.add(source, save_path, peers=o.peers, paused=paused, setup=setup,
                                 seed_mode=o.seed_mode)
    key = bytes.fromhex(rec.info_hash)  # (a hybrid added by its v2 hash keeps it: the job's key)
    if saved:
        return await manager.add_saved(source, save_path, info_hash=key, peers=o.peers, paused=paused,
                                       setup=setup, seed_mode=o.seed_mode)
    return await manager.add(source, save_path, peers=o.peers, paused=paused, setup=setup, info_hash=key,
                             seed_mode=o.seed_mode)
