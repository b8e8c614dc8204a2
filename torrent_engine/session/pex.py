"""BEP 11 peer exchange: what we tell a peer about the others we are connected to."""

from __future__ import annotations

from collections.abc import Iterable

from ..net.peer.extensions import PEX_ENCRYPTION, PEX_HOLEPUNCH, PEX_REACHABLE, PEX_SEED, PEX_UTP
from .peer import PeerState


def pex_view(peer: PeerState, connected: Iterable[PeerState]) -> dict[tuple[str, int], int]:
    """The peers to list to ``peer``, by their listen address, with their BEP 11 flags."""
    view: dict[tuple[str, int], int] = {}
    for other in connected:
        if other is peer or other.closed:
            continue
        port = other.listen_port if other.incoming else other.port
        if not port:
            continue  # an incoming peer that did not tell us where it listens
        flags = (PEX_SEED if other.is_seed else 0) | (0 if other.incoming else PEX_REACHABLE)
        if other.link.encrypted:
            flags |= PEX_ENCRYPTION
        if other.transport == "utp":
            flags |= PEX_UTP
        if other.ut_holepunch:
            flags |= PEX_HOLEPUNCH
        view[(other.host, port)] = flags
    return view
