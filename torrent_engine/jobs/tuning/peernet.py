"""The engine's peer network among the job service's settings: the listening port, the DHT,
PEX, LSD, the encryption policy and the transports (qBittorrent's Connection and BitTorrent
preferences; Transmission's ``peer-port``, ``dht-enabled``, ``pex-enabled``, ``lpd-enabled``,
``encryption``, ``utp-enabled``). Checked on the way in and made the engine's (its ``Config``) at
once (a port of 0 becomes a free one chosen then, kept from then on): the shared services
start, stop or listen anew (``SharedResources.set_dht``, ``set_lsd``, ``set_listen_port``,
``set_transport``); PEX, the encryption policy and the transports are read for each new
connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from ...config import TRANSPORTS, Encryption, Transport
from ...errors import ConfigError
from ..model import InvalidJobRequest

if TYPE_CHECKING:
    from ...engine.manager import TorrentManager
    from .settings import ServiceSettings

NETWORK_SWITCHES = ("dht_enabled", "pex_enabled", "lsd_enabled")
ENCRYPTIONS: tuple[str, ...] = get_args(Encryption)  # prefer, require, disable
MAX_PORT = 65535


def check_listen_port(value: object, name: str) -> int:
    """A port number, or 0 (a free port, chosen when the setting is applied)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PORT:
        raise InvalidJobRequest(f"must be a port from 1 to {MAX_PORT}, or 0 (a free port, chosen now)", name)
    return value


def _one_of(value: object, names: tuple[str, ...], name: str, meaning: str = "") -> str:
    """``value`` when it is one of ``names``; else ``InvalidJobRequest`` naming ``name``."""
    for one in names:
        if value == one:
            return one
    raise InvalidJobRequest(f"must be one of {', '.join(names)}{meaning}", name)


def check_encryption(value: object, name: str) -> Encryption:
    """One of the policies (``Config.encryption``'s names)."""
    return _one_of(value, ENCRYPTIONS, name)  # type: ignore[return-value]  # (one of the Literal's)


def check_transport(value: object, name: str) -> Transport:
    """One of ``any`` (uTP and TCP, uTP first), ``utp``, ``tcp``, ``tcp_first`` (TCP and uTP, TCP
    first) (``Config.transport``'s names)."""
    return _one_of(value, TRANSPORTS, name,  # type: ignore[return-value]
                   " (uTP and TCP, uTP alone, TCP alone, TCP and uTP)")


async def check_port_free(manager: TorrentManager, port: int) -> None:
    """``InvalidJobRequest`` naming ``listen_port`` with the system's reason when the engine
    could not listen on ``port`` now (before anything is saved)."""
    try:
        await manager.shared.check_listen_port(port)
    except ConfigError as exc:  # (listen_port, or listen_host: the address is at fault)
        raise InvalidJobRequest(exc.reason, exc.field) from None


async def choose_port(manager: TorrentManager) -> int:
    """A free port for ``listen_port`` 0 (``SharedResources.choose_listen_port``);
    ``InvalidJobRequest`` naming ``listen_port`` when none can be listened on."""
    try:
        return await manager.shared.choose_listen_port()
    except ConfigError as exc:  # (listen_port, or listen_host: the address is at fault)
        raise InvalidJobRequest(exc.reason, exc.field) from None


def check_utp_free(manager: TorrentManager, transport: Transport) -> None:
    """``InvalidJobRequest`` naming ``transport`` with the system's reason when uTP, turned on by
    ``transport``, could not listen on the port listened on now (UDP: before anything is saved)."""
    try:
        manager.shared.check_utp(transport)
    except ConfigError as exc:
        raise InvalidJobRequest(exc.reason, "transport") from None


async def apply_peer_network(manager: TorrentManager, s: ServiceSettings) -> None:
    """Make ``s``' port, DHT, PEX, LSD, encryption policy and transports the engine's (those that
    differ)."""
    config, shared = manager.config, manager.shared
    config.pex_enabled = s.pex_enabled
    config.encryption = check_encryption(s.encryption, "encryption")
    if config.dht_enabled != s.dht_enabled:
        await shared.set_dht(s.dht_enabled)
    if config.lsd_enabled != s.lsd_enabled:
        await shared.set_lsd(s.lsd_enabled)
    if config.transport != s.transport:
        await shared.set_transport(s.transport)
    if config.listen_port != s.listen_port:
        try:
            await shared.set_listen_port(s.listen_port)
        except ConfigError as exc:
            raise InvalidJobRequest(exc.reason, "listen_port") from None
