"""Magnets' metadata fetched without a job (qBittorrent's ``torrents/fetchMetadata``): a look at
a torrent's files before it is added.

Each fetch is a session of its own (BEP 9 from the magnet's peers, trackers and the DHT, through
the manager's shared resources) in a scratch folder, run in the service's task group: it ends
when the info dict is in, at ``FETCH_METADATA_TIMEOUT``, when the torrent is added as a job
(``stop``), or with the service. Nothing of it is saved; its scratch folder is removed.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path

import anyio

from ...errors import TorrentEngineError
from ...formats.magnet import Magnet
from ...formats.metainfo import Torrent
from ...session import Session
from ..model import JobConflict
from .host import IntakeHost

log = logging.getLogger(__name__)

FETCH_METADATA_TIMEOUT = 300.0  # seconds a fetch may look for peers that have the info dict
MAX_METADATA_FETCHES = 8  # fetches at once (each a session with its peers)
MAX_FETCHED_KEPT = 32  # fetched info dicts kept until asked for
STOP_WAIT = 10.0  # seconds a fetch's session has to stop and its scratch folder to go


class MetadataFetches:
    """The fetches under way and the metadata fetched, by info-hash (hex)."""

    def __init__(self, run: IntakeHost, *, timeout: float = FETCH_METADATA_TIMEOUT,
                 limit: int = MAX_METADATA_FETCHES) -> None:
        self.run = run
        self.timeout = timeout
        self.limit = limit
        self._running: dict[str, anyio.CancelScope] = {}
        self._fetched: OrderedDict[str, Torrent] = OrderedDict()
        self._ended: dict[str, anyio.Event] = {}  # set once a fetch's session has stopped

    def fetching(self, info_hash: str) -> bool:
        """Whether ``info_hash``'s metadata is being fetched."""
        return info_hash in self._running

    def fetch(self, magnet: Magnet) -> Torrent | None:
        """The magnet's metainfo once fetched (handed over: asked again, it is fetched again),
        else None, with a fetch started unless one is under way. ``JobConflict`` when the service
        is not running, an unfinished job of that torrent exists or is being added, or ``limit``
        fetches are under way; ``DescriptorLimitReached`` when the process has nearly no file
        descriptor left."""
        key = magnet.info_hash.hex()
        torrent = self._fetched.pop(key, None)
        if torrent is not None or key in self._running:
            return torrent
        if self.run.tg is None:
            raise JobConflict("the service is not running")
        job_id = self.run.jobs.active_id(key)
        if job_id is not None:  # (its session holds the info-hash: a fetch's could not start)
            raise JobConflict(f"torrent {key} is job {job_id} already: its files are the job's")
        if key in self.run.adding:  # (the add ends a fetch under way, and takes the info-hash)
            raise JobConflict(f"torrent {key} is being added as a job: its files will be the job's")
        if len(self._running) >= self.limit:
            raise JobConflict(f"{self.limit} metadata fetches are under way already")
        self.run.manager.shared.check_descriptors("cannot fetch metadata")  # (as an add)
        scope = self._running[key] = anyio.CancelScope(deadline=anyio.current_time() + self.timeout)
        ended = self._ended[key] = anyio.Event()
        self.run.tg.start_soon(self._fetch, key, magnet, scope, ended)
        return None

    def stop(self, info_hash: str) -> None:
        """End the fetch of ``info_hash`` (its torrent is being added as a job) and forget what
        it fetched."""
        scope = self._running.pop(info_hash, None)
        if scope is not None:
            scope.cancel()
        self._fetched.pop(info_hash, None)

    async def end(self, info_hash: str) -> None:
        """``stop``, and wait (at most ``STOP_WAIT``) until the fetch's session has stopped: the
        info-hash is free for a job of it (a session still running holds it)."""
        ended = self._ended.get(info_hash)
        self.stop(info_hash)
        if ended is not None:
            with anyio.move_on_after(STOP_WAIT):
                await ended.wait()

    async def _fetch(self, key: str, magnet: Magnet, scope: anyio.CancelScope, ended: anyio.Event) -> None:
        root = self.run.state_dir
        manager = self.run.manager
        scratch: Path | None = None
        session: Session | None = None
        got = anyio.Event()
        torrent: Torrent | None = None
        try:
            with scope:
                scratch = Path(await anyio.to_thread.run_sync(
                    lambda: tempfile.mkdtemp(prefix="metadata-", dir=root)))
                session = Session(magnet, scratch, config=manager.config, shared=manager.shared,
                                  peers=magnet.peers)
                session.events.subscribe("session.metadata_received", lambda _event: got.set())
                async with anyio.create_task_group() as tg:
                    await tg.start(session.run)
                    if not session.has_metadata:
                        await got.wait()
                    torrent = session.torrent
                    await session.stop()  # (the info dict is in: no data is fetched)
                # (ended by ``end`` while its session started, the block above may be left with
                # no info dict and no exception: nothing is kept then)
                if torrent is not None and self._running.get(key) is scope:
                    self._fetched[key] = torrent
                    while len(self._fetched) > MAX_FETCHED_KEPT:
                        self._fetched.popitem(last=False)
            if scope.cancelled_caught:
                log.info("metadata fetch of %s ended without the info dict", key)
        except (TorrentEngineError, OSError) as exc:  # (a fetch that fails is not the service's end)
            log.warning("metadata fetch of %s failed: %s", key, exc)
        finally:
            if self._running.get(key) is scope:
                del self._running[key]
            with anyio.move_on_after(STOP_WAIT, shield=True):
                if session is not None:
                    await session.stop()  # (at once when it ran to its end above)
                if scratch is not None:
                    await anyio.to_thread.run_sync(lambda: shutil.rmtree(scratch, ignore_errors=True))
            if self._ended.get(key) is ended:
                del self._ended[key]
            ended.set()
