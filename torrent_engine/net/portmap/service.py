"""Port mapping shell: asks the gateway to forward our listen ports, keeps the leases, and
removes them when the services stop.

NAT-PMP (RFC 6886) is tried first — one datagram to the default gateway — then UPnP IGD (SSDP
search, device description, SOAP). Failures are logged once and never fatal: a client behind a
NAT that maps nothing still downloads, it only gets fewer incoming peers. The external address
the gateway reports is handed to ``on_external_ip`` (SharedResources gives it to the DHT for its
BEP 42 node id).
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.abc

from ...errors import HttpError, PortMapError
from ..httpclient import exchange, http_get
from . import natpmp, upnp
from .natpmp import Protocol

log = logging.getLogger(__name__)

T = TypeVar("T")

NATPMP_TRIES = 4  # 0.25 + 0.5 + 1 + 2 s: RFC 6886 allows 9, but a gateway that is there answers at once
SSDP_WAIT = 3.0  # seconds to wait for a gateway to answer the search (MX 2, plus slack)
HTTP_TIMEOUT = 10.0
UPNP_LEASE = 3600  # seconds asked for; renewed at half-time
RETRY_AFTER_FAILURE = 600.0  # a gateway that refused is asked again this much later
MIN_RENEWAL = 30.0  # a lease is renewed at half its lifetime, but never sooner than this
DESCRIPTION = "torrent_engine"


@dataclass(frozen=True, slots=True)
class PortMapping:
    """One port the gateway forwards to us."""

    protocol: Protocol
    internal_port: int
    external_port: int
    lifetime: int  # seconds granted (0 = permanent, UPnP only)
    method: str  # "natpmp" or "upnp"


def default_gateway() -> str | None:
    """The IPv4 default gateway from the kernel's routing table (Linux), or None."""
    try:
        with open("/proc/net/route", encoding="ascii") as table:
            lines = table.read().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and fields[1] == "00000000":
            try:
                raw = int(fields[2], 16)
            except ValueError:
                continue
            if raw:
                return socket.inet_ntoa(raw.to_bytes(4, "little"))
    return None


def local_address_towards(host: str) -> str:
    """The address of ours that ``host`` sees us by (the source address the kernel picks);
    no packet is sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host, 9))
        return str(probe.getsockname()[0])


class PortMapper:
    """Maps ``ports`` on the gateway for as long as ``run`` runs (in the owner's task group)."""

    def __init__(self, *, natpmp_gateway: tuple[str, int] | None = None,
                 ssdp_address: tuple[str, int] = upnp.SSDP_GROUP,
                 on_external_ip: Callable[[str], None] | None = None) -> None:
        self._natpmp_gateway = natpmp_gateway
        self._ssdp_address = ssdp_address
        self._on_external_ip = on_external_ip
        self.mappings: list[PortMapping] = []
        # the mapping asked for whose answer has not come (a cancelled stop removes it too: the
        # gateway may have made it)
        self._asked: PortMapping | None = None
        self.external_ip: str | None = None
        self.method = ""
        self.last_error: str | None = None
        self._igd: upnp.IgdService | None = None
        self._local: str | None = None
        self._ready = anyio.Event()

    async def wait_mapped(self) -> None:
        """Returns once the first attempt is over, whether it mapped anything or not."""
        await self._ready.wait()

    async def run(self, ports: Sequence[tuple[Protocol, int]], *,
                  task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Map ``ports`` (protocol, port), renew the leases, and remove them when cancelled."""
        task_status.started()  # mapping never holds up the start of the services
        try:
            while True:
                wait = RETRY_AFTER_FAILURE
                try:
                    lifetime = await self._map_all(ports)
                    wait = max(MIN_RENEWAL, lifetime / 2) if lifetime else math.inf
                except PortMapError as exc:
                    if str(exc) != self.last_error:  # logged once, not at every retry
                        log.warning("port mapping failed: %s", exc)
                    self.last_error = str(exc)
                finally:
                    self._ready.set()
                await anyio.sleep(wait)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
                await self._unmap_all()

    # -- one round -----------------------------------------------------------------------
    async def _map_all(self, ports: Sequence[tuple[Protocol, int]]) -> int:
        """Map every port by the method that worked before (or the first that works); returns
        the shortest lifetime granted."""
        errors: list[str] = []
        if self.method in ("", "natpmp"):
            gateway = self._natpmp_gateway
            if gateway is None:
                host = default_gateway()
                gateway = (host, natpmp.NATPMP_PORT) if host else None
            if gateway is not None:
                try:
                    return await self._map_natpmp(gateway, ports)
                except PortMapError as exc:
                    if self.method == "natpmp":
                        raise
                    errors.append(f"NAT-PMP: {exc}")
            else:
                errors.append("NAT-PMP: no default gateway")
        try:
            return await self._map_upnp(ports)
        except PortMapError as exc:
            errors.append(f"UPnP: {exc}")
        raise PortMapError("; ".join(errors))

    def _record(self, mapping: PortMapping) -> None:
        self.mappings = [m for m in self.mappings if (m.protocol, m.internal_port) !=
                         (mapping.protocol, mapping.internal_port)] + [mapping]

    def _learned(self, address: str, source: str) -> None:
        if address != self.external_ip:
            self.external_ip = address
            log.info("port mapping: external address %s (%s)", address, source)
            if self._on_external_ip is not None:
                self._on_external_ip(address)

    # -- NAT-PMP -------------------------------------------------------------------------
    async def _natpmp_exchange(self, gateway: tuple[str, int],
                               request: bytes) -> natpmp.ExternalAddress | natpmp.Mapping:
        want = request[1] + natpmp.REPLY_FLAG
        try:
            async with await anyio.create_connected_udp_socket(gateway[0], gateway[1]) as sock:
                delay = natpmp.INITIAL_RETRY
                for _ in range(NATPMP_TRIES):
                    await sock.send(request)
                    with anyio.move_on_after(delay):
                        while True:
                            data = await sock.receive()
                            if len(data) >= 2 and data[1] == want:
                                return natpmp.parse_reply(data)
                    delay *= 2
        except OSError as exc:  # no route to the gateway, or it refused (ICMP port unreachable)
            raise PortMapError(f"cannot reach the NAT-PMP gateway {gateway[0]}:{gateway[1]}: {exc}") from None
        raise PortMapError(f"no NAT-PMP answer from {gateway[0]}:{gateway[1]}")

    async def _map_natpmp(self, gateway: tuple[str, int], ports: Sequence[tuple[Protocol, int]]) -> int:
        reply = await self._natpmp_exchange(gateway, natpmp.external_address_request())
        if not isinstance(reply, natpmp.ExternalAddress):
            raise PortMapError("NAT-PMP gateway answered the address request with a mapping")
        self._natpmp_gateway = gateway  # it answers: partial mappings are removed through it
        self._learned(reply.address, "NAT-PMP")
        shortest = natpmp.RECOMMENDED_LIFETIME
        for protocol, port in ports:
            previous = next((m.external_port for m in self.mappings if (m.protocol, m.internal_port) ==
                             (protocol, port)), port)
            request = natpmp.map_request(protocol, port, previous, natpmp.RECOMMENDED_LIFETIME)
            got = await self._asking(PortMapping(protocol, port, previous, 0, "natpmp"),
                                     self._natpmp_exchange(gateway, request))
            if not isinstance(got, natpmp.Mapping) or got.internal_port != port:
                raise PortMapError(f"NAT-PMP gateway answered the {protocol} {port} request with another")
            self._record(PortMapping(protocol, port, got.external_port, got.lifetime, "natpmp"))
            shortest = min(shortest, got.lifetime)
        self.method = "natpmp"  # only once every port is mapped: else UPnP is tried too
        return shortest

    # -- UPnP IGD ------------------------------------------------------------------------
    async def _discover(self) -> upnp.IgdService:
        if self._igd is not None:
            return self._igd
        host, port = self._ssdp_address
        ipv6 = ":" in host
        reply: upnp.SsdpReply | None = None
        try:
            async with await anyio.create_udp_socket(family=socket.AF_INET6 if ipv6 else socket.AF_INET,
                                                     local_host="::" if ipv6 else "0.0.0.0") as sock:
                if not ipv6:
                    raw = sock.extra(anyio.abc.SocketAttribute.raw_socket)
                    raw.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
                await sock.sendto(upnp.search_request(), host, port)
                with anyio.move_on_after(SSDP_WAIT):
                    while reply is None:
                        data, _source = await sock.receive()
                        try:
                            reply = upnp.parse_search_reply(data)
                        except PortMapError as exc:
                            log.debug("ignoring an SSDP reply: %s", exc)
        except OSError as exc:  # e.g. no route for multicast: a host with no network but loopback
            raise PortMapError(f"cannot send the SSDP search to {host}:{port}: {exc}") from None
        if reply is None:
            raise PortMapError("no UPnP gateway answered the search")
        try:
            response = await http_get(reply.location, timeout=HTTP_TIMEOUT, max_body=upnp.MAX_DESCRIPTION)
        except HttpError as exc:
            raise PortMapError(f"cannot read the device description: {exc}") from None
        if response.status != 200:
            raise PortMapError(f"device description at {reply.location}: HTTP status {response.status}")
        self._igd = upnp.parse_description(response.body, reply.location)
        return self._igd

    async def _soap(self, request: bytes, action: str) -> dict[str, str]:
        assert self._igd is not None
        parts = anyio_url(self._igd.control_url)
        try:
            with anyio.fail_after(HTTP_TIMEOUT):
                async with await anyio.connect_tcp(*parts) as stream:
                    response = await exchange(stream, request, upnp.MAX_DESCRIPTION)
        except TimeoutError:
            raise PortMapError(f"{action}: no answer within {HTTP_TIMEOUT:g} s") from None
        except (OSError, HttpError, anyio.BrokenResourceError) as exc:
            raise PortMapError(f"{action}: {exc}") from None
        return upnp.parse_soap_reply(response.status, response.body, action)

    async def _map_upnp(self, ports: Sequence[tuple[Protocol, int]]) -> int:
        igd = await self._discover()
        if self._local is None:
            try:
                self._local = local_address_towards(anyio_url(igd.control_url)[0])
            except OSError as exc:
                raise PortMapError(f"no local address towards the gateway: {exc}") from None
        try:
            answer = await self._soap(upnp.get_external_ip_address(igd), "GetExternalIPAddress")
            address = answer.get("NewExternalIPAddress", "")
            if address:
                self._learned(address, "UPnP")
        except PortMapError as exc:
            log.debug("UPnP: no external address: %s", exc)
        shortest = UPNP_LEASE
        for protocol, port in ports:
            lease = UPNP_LEASE
            local = self._local
            asked = PortMapping(protocol, port, port, 0, "upnp")
            try:
                add = upnp.add_port_mapping(igd, protocol, port, local, port, lease, DESCRIPTION)
                await self._asking(asked, self._soap(add, "AddPortMapping"))
            except PortMapError as exc:
                if exc.code != upnp.FAULT_ONLY_PERMANENT:
                    raise
                lease = 0  # the gateway grants only permanent mappings: removed at release
                add = upnp.add_port_mapping(igd, protocol, port, local, port, 0, DESCRIPTION)
                await self._asking(asked, self._soap(add, "AddPortMapping"))
            self._record(PortMapping(protocol, port, port, lease, "upnp"))
            if lease:
                shortest = min(shortest, lease)
        self.method = "upnp"
        return shortest if any(m.lifetime for m in self.mappings) else 0

    async def _asking(self, mapping: PortMapping, exchange: Awaitable[T]) -> T:
        """``exchange``'s answer, ``mapping`` remembered as asked for while it has none: a
        gateway that answered (or refused, or never answered) says what it holds; one whose
        answer a stop cut short may hold it."""
        self._asked = mapping
        try:
            answer = await exchange
        except PortMapError:
            self._asked = None
            raise
        self._asked = None
        return answer

    # -- removal -------------------------------------------------------------------------
    async def _unmap_all(self) -> None:
        mappings, self.mappings = self.mappings, []
        asked, self._asked = self._asked, None
        if asked is not None and all((m.protocol, m.internal_port) != (asked.protocol, asked.internal_port)
                                     for m in mappings):
            mappings.append(asked)  # (its answer never came: the gateway may have made it)
        for mapping in mappings:
            try:
                if mapping.method == "natpmp" and self._natpmp_gateway is not None:
                    remove = natpmp.map_request(mapping.protocol, mapping.internal_port, 0, 0)
                    await self._natpmp_exchange(self._natpmp_gateway, remove)
                elif mapping.method == "upnp" and self._igd is not None:
                    delete = upnp.delete_port_mapping(self._igd, mapping.protocol, mapping.external_port)
                    await self._soap(delete, "DeletePortMapping")
            except PortMapError as exc:
                log.info("port mapping %s %d not removed: %s", mapping.protocol, mapping.external_port, exc)


def anyio_url(url: str) -> tuple[str, int]:
    """Host and port of an http URL."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise PortMapError(f"URL {url[:80]!r} has no host")
    try:
        return parts.hostname, parts.port or 80
    except ValueError:
        raise PortMapError(f"URL {url[:80]!r} has a bad port") from None
