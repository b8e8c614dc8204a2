"""Connection and upload-slot limits as the job service keeps them (qBittorrent's ``max_connec``,
``max_connec_per_torrent``, ``max_uploads``, ``max_uploads_per_torrent``; Transmission's
``peer-limit-global``/``-per-torrent``), and the outgoing connection attempts a second over
every torrent (qBittorrent's ``connection_speed``): -1 for none, else at least 1, or 0 where
``ZERO_MEANS`` says what it means (``connection_speed`` 0: no outgoing connection at all, as
libtorrent's). They are handed to the
shared resources (``SharedResources.limits``), which every session reads when it dials, accepts
or rechokes: new connections follow a lowered limit, those held are kept."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..model import InvalidJobRequest

if TYPE_CHECKING:
    from ...engine.shared import SharedResources
    from .settings import ServiceSettings

# (a torrent's two are the Config's ``max_peers_per_torrent`` and ``upload_slots`` at first:
# ``JobService.load`` asks for them as the configuration's, which a change of them then changes)
LIMIT_SETTINGS = ("max_connections", "max_connections_per_torrent", "max_uploads", "max_uploads_per_torrent",
                  "connection_speed")
MAX_JOB_PEERS = 2**31 - 1  # a limit's largest value (a C int's, as qBittorrent's)


# the limits that take 0 too, and what it means for each (the others: -1 or from 1); a torrent's
# upload slots at 0 leave it its optimistic unchoke, as ``Config.upload_slots`` 0 does
ZERO_MEANS = {"max_uploads_per_torrent": "the optimistic unchoke alone",
              "connection_speed": "no outgoing connections"}


def check_peer_limit(value: object, name: str) -> int:
    """-1 (none) or a whole number >= 1; 0 too for the limits of ``ZERO_MEANS`` (``connection_speed``
    also under its qBittorrent name, which is the same)."""
    zero = ZERO_MEANS.get(name)
    if (isinstance(value, bool) or not isinstance(value, int)
            or not (value == -1 or (0 if zero is not None else 1) <= value <= MAX_JOB_PEERS)):
        said = f", 0 ({zero})" if zero is not None else ""
        raise InvalidJobRequest(f"must be -1 (no limit){said} or a whole number from 1", name)
    return value


def check_job_peers(value: object, name: str) -> int:
    """A job's own connections at most: 0 (the setting for every torrent) or a whole number."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_JOB_PEERS:
        raise InvalidJobRequest("must be 0 (the setting for every torrent) or a whole number from 1", name)
    return value


def apply_peer_limits(shared: SharedResources, s: ServiceSettings) -> None:
    """Give the shared resources the limits of ``s``."""
    limits = shared.limits
    limits.max_connections = max(0, s.max_connections)  # (0 there: none)
    limits.max_uploads = max(0, s.max_uploads)
    limits.max_peers_per_torrent = s.max_connections_per_torrent if s.max_connections_per_torrent > 0 \
        else sys.maxsize
    limits.max_uploads_per_torrent = s.max_uploads_per_torrent if s.max_uploads_per_torrent >= 0 \
        else sys.maxsize
    limits.connection_speed = max(0, s.connection_speed)  # (0 there: none; 0 here: none made)
    shared.dials.set_rate(limits.connection_speed)  # (the dials waiting go at the new rate now)
    shared.set_dial_out(s.connection_speed != 0)  # (turned on: the torrents' dialers start again)
    limits.block_privileged_ports = s.block_privileged_ports  # (peers connected are kept)
    limits.seeding_choker = s.seeding_choker
    shared.bandwidth.set_local_limited(s.limit_lan_peers)
    limits.multiple_connections_per_ip = s.multiple_connections_per_ip  # (connections held are kept)
