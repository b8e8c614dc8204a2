"""The network interface among the job service's settings (``bind_interface``,
``bind_address``): checked on the way in, and made the engine's (``Config.bind_interface``,
``Config.bind_address``) with the shared services bound to it again (docs/daemon.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ...errors import ConfigError
from ...net.interface import check_names
from ...net.netbind import check_address, check_interface
from ..model import InvalidJobRequest

if TYPE_CHECKING:
    from ...engine.manager import TorrentManager
    from .settings import ServiceSettings

BIND_FIELDS = ("bind_interface", "bind_address")


def check_bind_field(value: object, name: str) -> str:
    """One of the two fields as a string (its form is checked with the other, ``checked_binding``)."""
    if not isinstance(value, str):
        raise InvalidJobRequest("must be a string (\"\": none)", name)
    return value.strip()


def checked_binding(before: ServiceSettings, new: ServiceSettings, changes: Mapping[str, object], *,
                    loading: bool) -> ServiceSettings:
    """``new`` with its interface and address checked: their form always, and, when one was
    changed (not at a load: an interface may come later), that the interface exists here and
    may be bound to and that the address is one of its own. An interface changed alone drops
    an address that was not given with it."""
    moved = new.bind_interface != before.bind_interface
    if moved and "bind_interface" in changes and "bind_address" not in changes:
        new = dataclasses.replace(new, bind_address="")
    try:
        address = check_names(new.bind_interface, new.bind_address)
        if not loading and any(name in changes for name in BIND_FIELDS):
            check_interface(new.bind_interface)
            address = check_address(address, new.bind_interface)
    except ConfigError as exc:
        raise InvalidJobRequest(exc.reason, exc.field) from None
    return dataclasses.replace(new, bind_address=address)


async def apply_binding(manager: TorrentManager, settings: ServiceSettings) -> None:
    """Make ``settings``' interface the engine's: new connections (peers, trackers, web seeds)
    leave by it at once; the shared services (listening, uTP, DHT, LSD) are bound to it anew, on
    the port listened on now (one taken at random too)."""
    config = manager.config
    if (config.bind_interface, config.bind_address) == (settings.bind_interface, settings.bind_address):
        return
    config.bind_interface, config.bind_address = settings.bind_interface, settings.bind_address
    await manager.shared.restart_services(same_port=True)
