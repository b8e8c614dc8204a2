"""The parts of a torrent as the rest of the session holds them: what ``phases.TorrentParts`` and
``phases.FetchingMetadata`` keep (piece assembly, uploading, piece layers, web seeds, a magnet's
metadata fetch), each as a Protocol of just what is read or called through them, and the values
those calls carry. The classes that do the work (``pieces.Pieces``, ``upload.Uploader``, ...) are
built by the facade (``core``); a part reaches a sibling through the torrent's parts, typed by
these, so no part imports another."""

from __future__ import annotations

import dataclasses
from collections.abc import Container, Hashable, Sequence, Set
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import anyio
    import anyio.abc

    from ..formats.bitfield import Bitfield
    from ..net.peer import messages as m
    from ..net.webseed import WebSeedState
    from ..policy.picker import BlockReceived
    from .peer import PeerState
    from .peer_io import PeerLink

__all__ = ["NO_WEB_SEEDS", "LayerFetch", "MetadataFetch", "PieceAssembly", "SuperSeedOffers", "Uploading",
           "WebSeedFacts", "WebSeeding"]


@dataclasses.dataclass(frozen=True, slots=True)
class WebSeedFacts:
    """The web seeds as the stall diagnosis sees them."""

    count: int  # web seeds of the torrent (a source of pieces, though no peer)
    in_use: int  # not given up on, not banned
    errors: tuple[str, ...]  # "url: error" of each failing or given-up one
    banned: int  # banned for bad data (their keys are in the peer pool's bans)


NO_WEB_SEEDS = WebSeedFacts(count=0, in_use=0, errors=(), banned=0)  # (a magnet before its metadata)


class PieceAssembly(Protocol):
    """Assembly and verification of pieces (``pieces.Pieces``)."""

    @property
    def hash_failures(self) -> int:
        """Pieces that failed their hash check."""

    def land(self, source: Hashable, index: int, begin: int, block: bytes | memoryview,
             to_disk: bool = False) -> BlockReceived | None:
        """A block arrived from ``source``, taken without an await (None: its piece cannot be
        buffered now, ``arrive`` takes it)."""

    async def arrive(self, source: Hashable, index: int, begin: int, block: bytes | memoryview) -> None:
        """``land`` for a block that may wait for room."""

    def hash_taken(self) -> None:
        """Hash what the blocks taken since the last call added to their pieces (once a read)."""

    async def wait_for_room(self, index: int) -> None:
        """Wait while a buffer for piece ``index`` would pass the cap only for pieces being verified."""

    async def passed(self, index: int) -> None:
        """Piece ``index`` is verified and on disk: it counts as had."""

    def tell_haves(self) -> None:
        """Tell the peers that have them of the pieces passed since the last call (once a tick)."""

    def drop_spares(self) -> None:
        """Take no more piece buffers from the pool (the download is complete, or the run ends)."""


class SuperSeedOffers(Protocol):
    """BEP 16 as the wire protocol and the facade reach it, through the uploader
    (``superseed.SuperSeeding``)."""

    def set(self, enabled: bool) -> None:
        """On (for the peers greeted from now on, while seeding) or off (the hidden told our pieces)."""

    def greeting(self, peer: PeerState) -> list[m.Message] | None:
        """What tells ``peer`` of our pieces when super-seeding applies; None: the real bitfield."""

    def peer_have(self, peer: PeerState, index: int) -> None:
        """``peer`` told us it has piece ``index``."""

    def peer_not_interested(self, peer: PeerState) -> None:
        """``peer`` lost interest in us."""

    def peer_bitfield(self, peer: PeerState, have: Bitfield) -> None:
        """``peer`` told us all its pieces."""

    def peer_gone(self, peer: PeerState) -> None:
        """``peer`` disconnected."""


class Uploading(Protocol):
    """Serving blocks to peers, the choker and seed mode (``upload.Uploader``)."""

    @property
    def seed_verified(self) -> Bitfield | None:
        """Seed mode: the pieces verified since it began (None: not in seed mode)."""

    @property
    def lost(self) -> set[int]:
        """Pieces had and lost (peers may ask for them: rejected); a recheck adds to it."""

    @property
    def changed_files(self) -> Set[int]:
        """Files seen changed or gone (the resume data vouches for none of them)."""

    @property
    def gone_pieces(self) -> Set[int]:
        """Pieces of files found gone or shorter (still had in the resume data)."""

    @property
    def super_seeding(self) -> SuperSeedOffers:
        """BEP 16: what peers greeted while seeding are told of our pieces (``superseed``)."""

    @property
    def optimistic(self) -> frozenset[Hashable]:
        """The peers (their keys) unchoked now as the optimistic unchoke."""

    async def serve(self, peer: PeerState) -> None:
        """Serve the peer's queued requests."""

    def rechoke_soon(self) -> None:
        """Rechoke now rather than at the next interval."""

    def take_request(self, peer: PeerState, req: m.Request) -> bool:
        """``on_request`` without an await."""

    async def on_request(self, peer: PeerState, req: m.Request) -> None:
        """Queue a peer's REQUEST (or reject it)."""

    async def on_cancel(self, peer: PeerState, msg: m.Cancel) -> None:
        """Drop a queued request the peer cancelled."""

    async def read_block(self, index: int, begin: int, length: int) -> bytes | None:
        """``length`` bytes of piece ``index`` from ``begin``, as verified (None: not had)."""

    def files_gone(self, files: tuple[tuple[int, int], ...]) -> None:
        """Files found gone (or only so many bytes long) while the torrent ran."""

    def release_cache(self) -> None:
        """The run ended: its pieces leave the read cache."""

    def swarm_started(self) -> None:
        """A swarm begins: a new choker."""

    def start_seed_mode(self, verified: set[int]) -> None:
        """Seed mode: every piece is had, ``verified`` are known good."""

    def checked_again(self) -> None:
        """The whole torrent was checked (after seed mode failed): what is had is verified."""


class LayerFetch(Protocol):
    """BEP 52 piece layers, asked of peers until the torrent has them (``layers.PieceLayers``)."""

    @property
    def learning(self) -> bool:
        """Whether verified pieces are also hashed the v2 way."""

    def learn(self, index: int, piece_hash: bytes) -> None:
        """Piece ``index`` passed its SHA-1 check; ``piece_hash`` is its v2 piece-layer hash."""

    async def learn_rest(self) -> None:
        """The download is complete: learn the layers of the files held whole."""

    def blocked(self, index: int) -> bool:
        """Whether piece ``index``'s hash is not known yet."""

    def verifiable(self, peer_key: Hashable) -> Container[int] | None:
        """What the picker may take from the peer (None: every piece's hash is known)."""

    def may_ask(self, peer: PeerState) -> bool:
        """Whether ``ask`` may send the peer hash requests."""

    async def ask(self, peer: PeerState) -> None:
        """Send the peer the hash requests it is given."""

    async def on_message(self, peer: PeerState, msg: m.HashRequest | m.Hashes | m.HashReject) -> None:
        """A BEP 52 hash message from the peer."""

    def peer_gone(self, peer_key: tuple[str, int]) -> None:
        """The peer left: its hash requests are free for others."""

    def tick(self, now: float) -> None:
        """Once a second: unanswered hash requests time out."""

    def stall_facts(self) -> tuple[int, int, int]:
        """(files whose pieces wait for their layer, hash requests sent, rejected or unanswered)."""


class WebSeeding(Protocol):
    """The torrent's BEP 19 web seeds (``webseeds.SessionWebSeeds``)."""

    def start(self, swarm: anyio.abc.TaskGroup) -> None:
        """Start one task per web seed in the swarm group."""

    def in_use(self) -> list[str]:
        """The web seed URLs in use."""

    def set_urls(self, urls: Sequence[str]) -> None:
        """Use these web seeds from now on (one removed stops at once, one added starts)."""

    def states(self) -> list[WebSeedState]:
        """Each web seed's state."""

    def working(self) -> int:
        """How many web seeds are not given up."""

    def stall_facts(self) -> WebSeedFacts:
        """What the stall diagnosis needs to know of the web seeds."""


class MetadataFetch(Protocol):
    """A magnet's BEP 9 metadata fetch (``metadata.MetadataClient``)."""

    @property
    def done(self) -> anyio.Event:
        """Set once the info dictionary is in (``result``)."""

    @property
    def result(self) -> bytes | None:
        """The info dictionary's bytes, once fetched and checked against the info-hash."""

    async def fetch_from(self, link: PeerLink, key: tuple[str, int]) -> None:
        """Fetch the metadata from one peer, as the shared fetcher directs."""
