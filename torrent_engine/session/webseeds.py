"""A session's web seeds (BEP 19): one ``WebSeed`` per usable ``url-list`` URL, started in the
session's swarm task group, fed by the same picker as the peers, and delivering pieces into the
same block path (``Pieces.arrive``), so verification, writing, smart-ban, stats, rate limits and
the stall diagnosis treat a web seed like a peer.

A web seed's key is ``(url, 0)``: it never collides with a peer's ``(host, port)``.

The URLs in use are the torrent's ``url-list`` until the owner sets others (``set_urls``, a job's
edited web seeds): one added starts in the running swarm, one removed stops at once.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import anyio.abc

from ..errors import StorageError
from ..formats.bitfield import Bitfield
from ..formats.metainfo import Torrent
from ..net.peer.messages import BLOCK_SIZE
from ..net.webseed import RangeClient, WebSeed, WebSeedKey, WebSeedState
from ..net.webseed.client import BANNED
from ..net.webseed.mapping import pieces_without
from .roles import NO_WEB_SEEDS, WebSeedFacts
from .state_table import State

if TYPE_CHECKING:
    from .context import TorrentContext

log = logging.getLogger("torrent_engine.session")

__all__ = ["NO_WEB_SEEDS", "SessionWebSeeds", "WebSeedFacts", "usable_urls"]  # (the facts: ``roles``)

def usable_urls(urls: tuple[str, ...]) -> list[str]:
    """The http(s) URLs among ``urls``, each once (BEP 19: others are ignored)."""
    out: list[str] = []
    for url in urls:
        if url.lower().startswith(("http://", "https://")) and url not in out:
            out.append(url)
    return out


class SessionWebSeeds:
    """The web seeds of one session, and the ``WebSeedHost`` they run against."""

    def __init__(self, context: TorrentContext, *, on_downloaded: Callable[[int], None],
                 urls: Sequence[str] | None = None) -> None:
        self._ctx = context
        self._on_downloaded = on_downloaded  # payload bytes that came (the rates count them)
        # as the owner set them (None: the torrent's url-list)
        self.urls: list[str] | None = None if urls is None else usable_urls(tuple(urls))
        self.seeds: dict[str, WebSeed] = {}  # by URL; kept across pauses (their state with them)
        self._running: dict[str, anyio.CancelScope] = {}  # the task of each web seed running now

    def in_use(self) -> list[str]:
        """The web seed URLs in use: as set (``set_urls``), else the torrent's usable ones."""
        return list(self.urls) if self.urls is not None else usable_urls(self._ctx.parts.torrent.web_seeds)

    def start(self, swarm: anyio.abc.TaskGroup) -> None:
        """Start one task per web seed in the swarm group (a pause cancels them; a resume starts
        them again). Nothing when web seeds are off in the config."""
        if not self._ctx.config.web_seeds:
            return
        for url in self.in_use():
            self._start(swarm, url)

    def _start(self, swarm: anyio.abc.TaskGroup, url: str) -> None:
        ctx = self._ctx
        seed = self.seeds.get(url)
        if seed is None:
            config = ctx.config
            seed = self.seeds[url] = WebSeed(url, self, client=RangeClient(
                proxy=config.proxy, netbind=config.netbind, ssrf=lambda: config.ssrf_mitigation))
        if not seed.state.gave_up and url not in self._running:
            scope = self._running[url] = anyio.CancelScope()
            swarm.start_soon(self._run, seed, scope)

    def set_urls(self, urls: Sequence[str]) -> None:
        """Use these web seeds (http(s) URLs, checked by the owner) instead of those so far: one
        removed stops at once (its task cancelled, its undelivered blocks back to the picker, its
        state forgotten); one added starts now if the swarm runs, else with the swarm."""
        ctx = self._ctx
        wanted = usable_urls(tuple(urls))
        self.urls = wanted
        for url in [u for u in self.seeds if u not in wanted]:
            seed = self.seeds.pop(url)
            scope = self._running.pop(url, None)
            if scope is not None:
                scope.cancel()
            # (at once, not when the cancelled task gets to its ``finally``: no block waits on it)
            ctx.parts.picker.peer_gone(seed.key)
        swarm = ctx.swarm
        if swarm is not None and ctx.config.web_seeds:
            for url in wanted:
                self._start(swarm, url)

    async def _run(self, seed: WebSeed, scope: anyio.CancelScope) -> None:
        ctx = self._ctx
        parts = ctx.parts
        if self._running.get(seed.url) is not scope:
            return  # (removed before its task began)
        with scope:
            if seed.state.missing_files:  # (started again after a pause: it still lacks them)
                parts.picker.peer_bitfield(seed.key, pieces_without(parts.torrent, seed.state.missing_files))
            else:
                parts.picker.peer_have_all(seed.key)
            try:
                await seed.run()
            except StorageError as exc:  # our disk, not the web seed: the session fails as with a peer
                ctx.fail(exc)
            except Exception as exc:  # a bug met through one web seed must not take the session down
                log.exception("web seed %s of %s: unexpected error", seed.url, ctx.name)
                seed.state.gave_up = f"internal error: {exc!r}"
            finally:
                if self._running.get(seed.url) is scope:
                    del self._running[seed.url]
                # (not when removed and added again meanwhile: the key is the new task's then)
                if self.seeds.get(seed.url, seed) is seed:
                    ctx.parts.picker.peer_gone(seed.key)

    def states(self) -> list[WebSeedState]:
        """Each web seed's state (for the status and the stall diagnosis); a banned one counts as
        given up at once, even before its task has seen the ban."""
        return [dataclasses.replace(seed.state, gave_up=BANNED)
                if not seed.state.gave_up and self.is_banned(seed.key) else seed.state
                for seed in self.seeds.values()]

    def working(self) -> int:
        """How many web seeds are not given up (a banned one is: ``states``)."""
        return sum(1 for seed in self.seeds.values()
                   if not seed.state.gave_up and not self.is_banned(seed.key))

    def stall_facts(self) -> WebSeedFacts:
        """What the stall diagnosis needs to know of the web seeds."""
        states = self.states()
        return WebSeedFacts(
            count=len(states), in_use=sum(1 for w in states if not w.gave_up),
            errors=tuple(f"{w.url}: {w.gave_up or w.last_error}" for w in states if w.gave_up or w.failing),
            banned=sum(1 for seed in self.seeds.values() if self.is_banned(seed.key)))

    # -- WebSeedHost ---------------------------------------------------------------------------
    @property
    def torrent(self) -> Torrent:
        """The torrent's metainfo."""
        return self._ctx.parts.torrent

    def downloading(self) -> bool:
        """Whether the session wants pieces now."""
        return self._ctx.state is State.DOWNLOADING

    def is_banned(self, key: WebSeedKey) -> bool:
        """Whether the session banned the web seed (bad data)."""
        return self._ctx.pool.is_banned(key)

    def pick_run(self, key: WebSeedKey, max_pieces: int, *, lowest: bool = False) -> list[int]:
        """Fresh consecutive pieces from the session's picker (none whose v2 hash is unknown yet)."""
        ctx = self._ctx
        return ctx.parts.picker.pick_run(key, max_pieces, time.monotonic(), ctx.parts.layers.verifiable(key),
                                         lowest=lowest)

    def set_have(self, key: WebSeedKey, pieces: Bitfield) -> None:
        """The web seed lacks some files: the picker counts it for the other pieces only."""
        self._ctx.parts.picker.peer_bitfield(key, pieces)

    def release(self, key: WebSeedKey) -> None:
        """Give the web seed's undelivered blocks back to the picker."""
        self._ctx.parts.picker.release_requests(key)

    async def received(self, key: WebSeedKey, nbytes: int) -> None:
        """Bytes from the web seed: the shared and the torrent's rate limits, then the stats."""
        ctx = self._ctx
        shared = ctx.shared
        limits = ctx.limits
        if shared is not None and shared.bandwidth.download.limited(limits.group, limits.download):
            await shared.bandwidth.download.consume(limits.group, limits.download, nbytes)
        elif shared is None and not limits.download.unlimited:
            await limits.download.consume(nbytes)
        self._on_downloaded(nbytes)

    async def deliver(self, key: WebSeedKey, index: int, data: memoryview) -> None:
        """A whole piece: block by block into the session's block path (``Pieces.arrive``: a
        block a peer sent first, in endgame, or of a piece given back meanwhile is wasted)."""
        arrive = self._ctx.parts.pieces.arrive
        for begin in range(0, len(data), BLOCK_SIZE):
            await arrive(key, index, begin, data[begin:begin + BLOCK_SIZE])
