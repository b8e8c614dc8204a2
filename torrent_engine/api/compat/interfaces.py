"""The network interface in qBittorrent's names: ``current_network_interface`` and
``current_interface_address`` in ``app/preferences`` / ``app/setPreferences``, and the lists its
web UI offers (``app/networkInterfaceList``, ``app/networkInterfaceAddressList``). Translation
only: the setting is the job service's ``bind_interface`` (with ``bind_address``). Transmission's
RPC has no such field (its ``bind-address-ipv4`` lives in settings.json alone)."""

from __future__ import annotations

from collections.abc import Mapping

from ...errors import ConfigError
from ...jobs import InvalidJobRequest
from ...jobs.tuning.settings import ServiceSettings, SettingChanges
from ...jsonvalue import JSON, JSONValue
from ...net.netbind import check_address, check_interface, interface_addresses, interface_names

QBT_FIELDS = frozenset({"current_network_interface", "current_interface_address"})


def qbt_preferences(s: ServiceSettings) -> dict[str, JSON]:
    """The interface fields of ``app/preferences`` ("": any, as qBittorrent says it)."""
    return {"current_network_interface": s.bind_interface, "current_interface_address": s.bind_address}


def qbt_changes(prefs: Mapping[str, JSONValue], s: ServiceSettings) -> SettingChanges:
    """Our settings' changes for the interface fields of ``app/setPreferences`` ``prefs``, each
    checked here so that a refusal names qBittorrent's field."""
    if not any(name in prefs for name in QBT_FIELDS):
        return {}
    interface = prefs.get("current_network_interface", s.bind_interface)
    if not isinstance(interface, str):
        raise InvalidJobRequest("must be a string (\"\": any)", "current_network_interface")
    address = prefs.get("current_interface_address",
                        s.bind_address if interface == s.bind_interface else "")
    if not isinstance(address, str):
        raise InvalidJobRequest("must be a string (\"\": any)", "current_interface_address")
    try:
        check_interface(interface.strip(), "current_network_interface")
        address = check_address(address.strip(), interface.strip(), "current_interface_address")
    except ConfigError as exc:
        raise InvalidJobRequest(exc.reason, exc.field) from None
    return {"bind_interface": interface.strip(), "bind_address": address}


def interface_list() -> list[dict[str, str]]:
    """``app/networkInterfaceList``: each interface's name shown and its value."""
    return [{"name": name, "value": name} for name in interface_names()]


def address_list(iface: str) -> list[str]:
    """``app/networkInterfaceAddressList?iface=``: that interface's addresses ("": every one's)."""
    if iface:
        return interface_addresses(iface)
    return [address for name in interface_names() for address in interface_addresses(name)]
