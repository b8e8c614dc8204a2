"""UPnP Internet Gateway Device messages: SSDP discovery, the device description, SOAP actions.

Sans-I/O: bytes in, typed values out, and the bytes to send. The shell (``portmap/service.py``)
multicasts the search, fetches the description and posts the SOAP requests. Only the actions a
BitTorrent client needs: GetExternalIPAddress, AddPortMapping, DeletePortMapping, on a
WANIPConnection (v1 or v2) or WANPPPConnection service.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin, urlsplit
from xml.sax.saxutils import escape

from ...errors import PortMapError

SSDP_GROUP = ("239.255.255.250", 1900)  # UPnP Device Architecture 1.1, section 1.1.2
IGD_SEARCH_TARGET = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
CONNECTION_SERVICES = (
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
)
MAX_DESCRIPTION = 256 * 1024  # a gateway's description is a few KiB
MAX_SSDP_REPLY = 4096
# UPnP IGD fault codes a client reacts to
FAULT_CONFLICT = 718  # ConflictInMappingEntry: the external port is someone else's
FAULT_ONLY_PERMANENT = 725  # OnlyPermanentLeasesSupported: ask again with lease 0
FAULT_NO_SUCH_ENTRY = 714  # NoSuchEntryInArray: deleting what is not there

Protocol = Literal["tcp", "udp"]


@dataclass(frozen=True, slots=True)
class SsdpReply:
    """A device's answer to M-SEARCH: where its description is."""

    location: str
    search_target: str
    server: str


@dataclass(frozen=True, slots=True)
class IgdService:
    """The connection service to send port mapping actions to."""

    service_type: str
    control_url: str


def search_request(search_target: str = IGD_SEARCH_TARGET, mx: int = 2) -> bytes:
    """The M-SEARCH datagram (sent to the SSDP group, or unicast to a known gateway)."""
    return (
        "M-SEARCH * HTTP/1.1\r\n"
        f"HOST: {SSDP_GROUP[0]}:{SSDP_GROUP[1]}\r\n"
        'MAN: "ssdp:discover"\r\n'
        f"MX: {mx}\r\n"
        f"ST: {search_target}\r\n"
        "\r\n"
    ).encode("ascii")


def parse_search_reply(data: bytes) -> SsdpReply:
    """An SSDP reply (HTTP/1.1 200 over UDP); its LOCATION must be an http URL."""
    if len(data) > MAX_SSDP_REPLY:
        raise PortMapError(f"SSDP reply of {len(data)} bytes is too large")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PortMapError("SSDP reply is not UTF-8") from None
    lines = text.split("\r\n")
    status = lines[0].split(None, 2)
    if len(status) < 2 or not status[0].upper().startswith("HTTP/") or status[1] != "200":
        raise PortMapError(f"SSDP reply has status line {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    location = headers.get("location", "")
    parts = urlsplit(location)
    if parts.scheme != "http" or not parts.hostname:
        raise PortMapError(f"SSDP reply has no usable LOCATION ({location[:80]!r})")
    return SsdpReply(location=location, search_target=headers.get("st", ""), server=headers.get("server", ""))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_description(xml: bytes, location: str) -> IgdService:
    """The connection service of a gateway's device description; its control URL is made
    absolute against URLBase, or else the description's own location."""
    if len(xml) > MAX_DESCRIPTION:
        raise PortMapError(f"device description of {len(xml)} bytes is too large")
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise PortMapError("device description declares a DTD or entities")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise PortMapError(f"device description is not XML: {exc}") from None
    base = location
    found: dict[str, str] = {}
    for element in root.iter():
        name = _local(element.tag)
        if name == "URLBase" and element.text and element.text.strip():
            base = element.text.strip()
        elif name == "service":
            fields = {_local(child.tag): (child.text or "").strip() for child in element}
            service_type = fields.get("serviceType", "")
            control = fields.get("controlURL", "")
            if service_type in CONNECTION_SERVICES and control and service_type not in found:
                found[service_type] = control
    for service_type in CONNECTION_SERVICES:
        if service_type in found:
            url = urljoin(base, found[service_type])
            if urlsplit(url).scheme != "http":
                raise PortMapError(f"control URL {url[:80]!r} is not http")
            return IgdService(service_type=service_type, control_url=url)
    raise PortMapError("the device has no WANIPConnection or WANPPPConnection service")


def soap_body(service: IgdService, action: str, arguments: dict[str, str]) -> bytes:
    """The SOAP envelope calling ``action`` of ``service`` with ``arguments``."""
    args = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in arguments.items())
    return (
        '<?xml version="1.0"?>\r\n'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">'
        f'<s:Body><u:{action} xmlns:u="{service.service_type}">{args}</u:{action}></s:Body>'
        "</s:Envelope>\r\n"
    ).encode()


def soap_request(service: IgdService, action: str, arguments: dict[str, str]) -> bytes:
    """The whole HTTP/1.1 POST of one SOAP action to the service's control URL."""
    parts = urlsplit(service.control_url)
    host = parts.hostname or ""
    host_header = f"[{host}]" if ":" in host else host
    if parts.port:
        host_header += f":{parts.port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = soap_body(service, action, arguments)
    head = (
        f"POST {target} HTTP/1.1\r\n"
        f"Host: {host_header}\r\n"
        'Content-Type: text/xml; charset="utf-8"\r\n'
        f'SOAPAction: "{service.service_type}#{action}"\r\n'
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


def add_port_mapping(service: IgdService, protocol: Protocol, external_port: int, internal_client: str,
                     internal_port: int, lease: int, description: str) -> bytes:
    """The HTTP request mapping ``external_port`` to ``internal_client:internal_port`` for ``lease`` s."""
    ipaddress.ip_address(internal_client)  # the gateway needs our LAN address, not a name
    return soap_request(service, "AddPortMapping", {
        "NewRemoteHost": "",
        "NewExternalPort": str(external_port),
        "NewProtocol": protocol.upper(),
        "NewInternalPort": str(internal_port),
        "NewInternalClient": internal_client,
        "NewEnabled": "1",
        "NewPortMappingDescription": description,
        "NewLeaseDuration": str(lease),
    })


def delete_port_mapping(service: IgdService, protocol: Protocol, external_port: int) -> bytes:
    """The HTTP request removing the mapping of ``external_port``."""
    return soap_request(service, "DeletePortMapping", {
        "NewRemoteHost": "", "NewExternalPort": str(external_port), "NewProtocol": protocol.upper(),
    })


def get_external_ip_address(service: IgdService) -> bytes:
    """The HTTP request asking the gateway for its external IP address."""
    return soap_request(service, "GetExternalIPAddress", {})


def parse_soap_reply(status: int, body: bytes, action: str) -> dict[str, str]:
    """The out-arguments of ``action``; a SOAP fault (or any non-200) raises ``PortMapError``
    with the UPnP error code when the gateway gave one."""
    if len(body) > MAX_DESCRIPTION:
        raise PortMapError(f"SOAP reply of {len(body)} bytes is too large")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise PortMapError("SOAP reply declares a DTD or entities")
    try:
        root = ET.fromstring(body) if body.strip() else None
    except ET.ParseError as exc:
        raise PortMapError(f"{action}: reply is not XML ({exc}), HTTP status {status}") from None
    if root is None:
        raise PortMapError(f"{action}: empty reply, HTTP status {status}")
    code = 0
    description = ""
    response: dict[str, str] | None = None
    for element in root.iter():
        name = _local(element.tag)
        if name == "errorCode" and element.text:
            try:
                code = int(element.text.strip())
            except ValueError:
                code = 0
        elif name == "errorDescription" and element.text:
            description = element.text.strip()
        elif name == f"{action}Response":
            response = {_local(child.tag): (child.text or "").strip() for child in element}
    if status != 200 or response is None:
        reason = description or ("SOAP fault" if code else f"HTTP status {status}")
        raise PortMapError(f"{action} failed: {reason}", code)
    return response
