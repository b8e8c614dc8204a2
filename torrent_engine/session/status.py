"""The public snapshot of a session (``Session.status()``): state, progress, bytes, rates, peers,
ETA and, while it does not progress, why."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .context import seen_complete
from .phases import Loaded

if TYPE_CHECKING:
    from collections.abc import Sized

    from ..policy.stall import Stall
    from .context import TorrentContext


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """A snapshot of a session: state, progress, bytes, rates, peers and ETA."""

    name: str
    info_hash: str
    state: str
    progress: float
    total_wanted: int
    have_bytes: int
    downloaded: int
    uploaded: int
    download_rate: float
    upload_rate: float
    peers: int
    seeds: int
    eta: float | None
    pieces: int
    num_pieces: int
    listen_port: int
    error: str = ""
    # why a download has not progressed for Config.stall_after seconds (None while it moves)
    stall_reason: str | None = None  # a StallReason value
    stall_message: str | None = None
    stalled_since: float | None = None  # wall-clock time (time.time()) the progress stopped
    # wall-clock time the swarm last showed a whole copy (``context.seen_complete``; 0.0: not
    # in this run)
    seen_complete: float = 0.0
    web_seeds: int = 0  # BEP 19 web seeds in use (not counted in ``peers``)
    # seed mode: every piece had (``pieces``, ``progress`` 1.0), ``verified_pieces`` hashed so far
    seed_mode: bool = False
    verified_pieces: int = 0  # pieces verified (all of ``pieces`` when not in seed mode)


class RatesShown(Protocol):
    """The rates as the snapshot shows them (``rates.Rates``)."""

    @property
    def down_rate(self) -> float:
        """Payload bytes/s received, over the last ticks."""

    @property
    def up_rate(self) -> float:
        """Payload bytes/s sent, over the last ticks."""


class StallShown(Protocol):
    """The stall diagnosis as the snapshot shows it (``stall_watch.StallWatch``)."""

    @property
    def stall(self) -> Stall | None:
        """Why the download is stuck (None: it is not)."""

    @property
    def stalled_since(self) -> float | None:
        """Wall-clock time the download stopped progressing."""


class StatusSource(Protocol):
    """What the snapshot reads of the session (``core.Session``)."""

    @property
    def context(self) -> TorrentContext:
        """The torrent's facts, phase and peers."""

    @property
    def rates(self) -> RatesShown:
        """The rates."""

    @property
    def stall_watch(self) -> StallShown:
        """The stall diagnosis."""

    @property
    def name(self) -> str:
        """The torrent's name."""

    @property
    def downloaded(self) -> int:
        """Payload bytes received in all."""

    @property
    def uploaded(self) -> int:
        """Payload bytes sent in all."""

    @property
    def have(self) -> Sized:
        """The pieces had (counted)."""

    @property
    def listen_port(self) -> int:
        """The port peers reach us on."""

    @property
    def error(self) -> str:
        """Why the session failed ("": it has not)."""

    @property
    def seed_mode(self) -> bool:
        """Whether it seeds in seed mode (each piece verified the first time it is served)."""

    @property
    def verified_pieces(self) -> int:
        """Pieces verified so far."""


def wanted_and_had(ctx: TorrentContext) -> tuple[int, int] | None:
    """(payload bytes of the files wanted, of them verified); None until a magnet's metadata
    is in. The counters alone: no status made (``JobLifecycle.refresh_counters``, every stats
    update of every job)."""
    phase = ctx.phase
    if not isinstance(phase, Loaded):
        return None
    wanted = phase.parts.total_wanted
    return wanted, max(0, wanted - phase.parts.picker.left_bytes())


def session_status(s: StatusSource) -> SessionStatus:
    """A snapshot of the session's state, progress, rates and peers."""
    ctx = s.context
    phase = ctx.phase
    parts = phase.parts if isinstance(phase, Loaded) else None  # None: a magnet's metadata is not in yet
    wanted, have_bytes = wanted_and_had(ctx) or (0, 0)
    left = wanted - have_bytes
    progress = (1.0 if wanted == 0 else have_bytes / wanted) if parts is not None else 0.0
    down_rate = s.rates.down_rate
    eta: float | None = None
    if left == 0 and parts is not None:
        eta = 0.0
    elif down_rate > 0:
        eta = left / down_rate
    stall = s.stall_watch.stall
    return SessionStatus(
        name=s.name, info_hash=ctx.info_hash_hex, state=ctx.state.value, progress=progress,
        total_wanted=wanted, have_bytes=have_bytes, downloaded=s.downloaded, uploaded=s.uploaded,
        download_rate=down_rate, upload_rate=s.rates.up_rate, peers=len(ctx.peers),
        seeds=sum(1 for p in ctx.peers.values() if p.is_seed), eta=eta, pieces=len(s.have),
        num_pieces=parts.torrent.num_pieces if parts is not None else 0,
        listen_port=s.listen_port, error=s.error,
        stall_reason=stall.reason.value if stall is not None else None,
        stall_message=stall.message if stall is not None else None,
        stalled_since=s.stall_watch.stalled_since if stall is not None else None,
        web_seeds=parts.webseeds.working() if parts is not None else 0,
        seed_mode=s.seed_mode, verified_pieces=s.verified_pieces,
        seen_complete=seen_complete(ctx.totals, ctx.peers.values(), time.time()))

