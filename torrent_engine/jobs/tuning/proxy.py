"""The proxy among the job service's settings: its URL checked on the way in, and the engine's
``ProxyConfig`` made from the settings (the manager's ``Config.proxy``: every new connection
follows it; the shared services follow proxy only when it changes, see ``apply_proxy``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import ConfigError
from ...net.proxy.settings import ProxyConfig, parse_proxy_url
from ..model import InvalidJobRequest

if TYPE_CHECKING:
    from ...engine.manager import TorrentManager
    from .settings import ServiceSettings

PROXY_SWITCHES = ("proxy_peer_connections", "proxy_torrents_only", "proxy_only")


def check_proxy_url(value: object, name: str) -> str:
    """A proxy URL as the settings keep it (written back from what was read: a password
    percent-encoded once); "" for none; ``InvalidJobRequest`` naming ``name`` for a bad one."""
    if isinstance(value, str) and not value.strip():
        return ""
    try:
        return parse_proxy_url(value, name).url()
    except ConfigError as exc:
        raise InvalidJobRequest(exc.reason, name) from None


def proxy_config(settings: ServiceSettings) -> ProxyConfig | None:
    """The engine's proxy for these settings (None: none is set)."""
    if not settings.proxy_url:
        return None
    return parse_proxy_url(settings.proxy_url, "proxy_url", peer_connections=settings.proxy_peer_connections,
                           only=settings.proxy_only)


async def apply_proxy(manager: TorrentManager, settings: ServiceSettings) -> None:
    """Make ``settings``' proxy the engine's: new connections (peers, trackers, web seeds) go
    through it at once; when proxy only was turned on or off, the shared services (listening,
    uTP, DHT, LSD, port mapping) are started again as it says, and when another proxy takes over
    under proxy only (the DHT goes by its UDP relay)."""
    was_only, was = manager.config.proxy_only, manager.config.proxy
    manager.config.proxy = proxy_config(settings)
    if manager.config.proxy_only != was_only or (was_only and manager.config.proxy != was):
        await manager.shared.restart_services(same_port=True)
