"""The interface setting as a value (``Config.bind_interface``, ``Config.bind_address``): its
name and address read and checked for their form. Pure: ``netbind`` binds sockets with it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..errors import ConfigError

IFNAMSIZ = 16  # Linux <net/if.h>: a name of at most 15 bytes and its NUL


@dataclass(frozen=True)
class NetBind:
    """Where the engine's sockets are bound: ``interface`` (its name) and ``address`` (one of
    its addresses; "" lets the kernel choose among the interface's own)."""

    interface: str
    address: str = ""

    def source(self, v6: bool) -> str | None:
        """The address an IPv6 (``v6``) or IPv4 socket is bound to before it connects (None: any)."""
        if not self.address:
            return None
        return self.address if (ipaddress.ip_address(self.address).version == 6) == v6 else None


def check_names(interface: object, address: object, field: str = "bind_interface") -> str:
    """``ConfigError`` naming the field unless ``interface`` is an interface's name (or "") and
    ``address`` an IP address (or "", which needs no interface); the address written plainly."""
    if not isinstance(interface, str):
        raise ConfigError(f"{interface!r} is not an interface name", field)
    if interface and (len(interface.encode()) >= IFNAMSIZ or "/" in interface or ":" in interface
                      or any(c.isspace() for c in interface)):
        raise ConfigError(f"{interface!r} is not an interface name", field)
    if not isinstance(address, str):
        raise ConfigError(f"{address!r} is not an IP address", "bind_address")
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ConfigError(f"{address!r} is not an IP address", "bind_address") from None
    if not interface:
        raise ConfigError("needs an interface (bind_interface)", "bind_address")
    return str(ip)
