"""Other clients' dialects over the one job service: qBittorrent's WebAPI v2 (``/api/v2/...``)
and Transmission's RPC (``/transmission/rpc``). Translators only: they map names, states and
units and call ``JobService``; every fact lives in the service (see docs/compat.md)."""

from __future__ import annotations

from .qbittorrent import QbittorrentApi
from .transmission import TransmissionRpc

__all__ = ["QbittorrentApi", "TransmissionRpc"]
