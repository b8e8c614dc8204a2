"""Port mapping (NAT-PMP, UPnP IGD): the sans-I/O messages and the shell SharedResources runs."""

from .service import PortMapper, PortMapping

__all__ = ["PortMapper", "PortMapping"]
