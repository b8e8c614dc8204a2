"""Super-seeding (BEP 16), the session's shell around ``policy.superseed.SuperSeeder``: a peer that
connects while the torrent seeds with super-seeding on is greeted without our pieces and told of
one at a time; its requests of other pieces are rejected. A downloading torrent ignores the flag
(libtorrent's rule): it applies from the next peer greeted while seeding. Turning it off tells
each hidden peer of every piece it lacks and was not told of, with HAVEs (as libtorrent 0.x did;
libtorrent 1.x and 2.x send a fresh bitfield, which BEP 3 allows only as the first message)."""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

from ..net.peer import messages as m
from ..policy.superseed import Offer, SuperSeeder
from .state_table import State

if TYPE_CHECKING:
    from ..formats.bitfield import Bitfield
    from .context import TorrentContext
    from .peer import PeerState

log = logging.getLogger("torrent_engine.session")


class SuperSeeding:
    """One torrent's super-seeding: on or off, and the offers while on (see the module docstring)."""

    def __init__(self, context: TorrentContext, rng: random.Random) -> None:
        self._ctx = context
        self._rng = rng
        self.enabled = False
        self._policy: SuperSeeder | None = None  # while on: every peer connected since, watched

    def set(self, enabled: bool) -> None:
        """Turn it on (for the peers greeted from now on, while seeding) or off (the hidden peers
        are told of our real pieces)."""
        if enabled == self.enabled:
            return
        self.enabled = enabled
        policy = self._policy
        if enabled or policy is None:
            return
        self._policy = None
        peers = self._ctx.peers
        have = self._ctx.parts.picker.have
        for key in policy.hidden_peers():
            peer = peers.get(key)  # type: ignore[call-overload]
            if peer is None or peer.closed:
                continue
            told = policy.told(key)
            self._write(peer, [m.Have(i) for i in have if i not in told and i not in peer.have])

    def greeting(self, peer: PeerState) -> list[m.Message] | None:
        """What tells ``peer`` of our pieces when super-seeding applies (HAVE NONE or nothing,
        then its first offer); None: it does not (the real bitfield is sent)."""
        if not self.enabled or self._ctx.state is not State.SEEDING:
            if self._policy is not None:
                self._policy.watch(peer.key, peer.have)
            return None
        policy = self._policy
        if policy is None:
            parts = self._ctx.parts
            policy = self._policy = SuperSeeder(parts.torrent.num_pieces, self._rng,
                                                had=lambda index: index in parts.picker.have)
            for other in self._ctx.peers.values():
                if other is not peer:
                    policy.watch(other.key, other.have)
        msgs: list[m.Message] = [m.HaveNone()] if peer.fast else []
        offer = policy.join(peer.key, peer.have)
        if offer is not None:
            msgs.append(m.Have(offer.index))
        return msgs

    def may_serve(self, peer: PeerState, index: int) -> bool:
        """Whether ``peer``'s request of piece ``index`` is served (a hidden peer: its offer only)."""
        return self._policy is None or self._policy.may_serve(peer.key, index)

    def peer_have(self, peer: PeerState, index: int) -> None:
        """``peer`` told us it has piece ``index``: the offers this brings are sent."""
        if self._policy is not None:
            self._send(self._policy.have(peer.key, index))

    def peer_not_interested(self, peer: PeerState) -> None:
        """``peer`` lost interest in us: a hidden one has its offer (see ``SuperSeeder``)."""
        if self._policy is not None:
            self._send(self._policy.not_interested(peer.key))

    def peer_bitfield(self, peer: PeerState, have: Bitfield) -> None:
        """``peer`` told us all its pieces (bitfield, HAVE ALL, HAVE NONE)."""
        if self._policy is not None:
            self._send(self._policy.bitfield(peer.key, have))

    def peer_gone(self, peer: PeerState) -> None:
        """``peer`` disconnected."""
        if self._policy is not None:
            self._policy.leave(peer.key)

    def _send(self, offers: list[Offer]) -> None:
        peers = self._ctx.peers
        for offer in offers:
            peer = peers.get(offer.peer)  # type: ignore[call-overload]
            if peer is not None and not peer.closed:
                self._write(peer, [m.Have(offer.index)])

    @staticmethod
    def _write(peer: PeerState, msgs: list[m.Message]) -> None:
        """Write at once, without an await (called from the message loop of another peer)."""
        if not msgs:
            return
        try:
            peer.link.write_many(msgs)
        except Exception as exc:  # its connection has ended (its own task reports why): not ours
            peer.close(f"send failed: {exc}")
