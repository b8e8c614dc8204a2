"""UDP through a SOCKS5 proxy: one UDP ASSOCIATE (RFC 1928 section 4, command 3) for the whole
engine, carrying the UDP tracker exchanges and the DHT's datagrams.

The association is a TCP control connection to the proxy, kept open for as long as the
association lives, and a UDP socket of ours that sends each datagram, behind its RFC 1928
section 7 header (``udp_header``), to the relay the proxy named. ``UdpRelay`` opens it when a
datagram first needs it, within a timeout, and again when the proxy closes the control
connection; a failure is a ``ProxyError`` naming the proxy, and for a few seconds after one the
next sends fail at once with it rather than dialing the proxy for every datagram.

Replies are handed on by the address in their header: to the tracker exchange waiting on that
address (a tracker named by host name: the exchange on that port), else to the DHT.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ...errors import ProxyError
from ..netbind import NetBind, connect_socket, open_udp
from .dial import describe, run_handshake
from .handshake import Socks5Connect
from .settings import ProxyConfig
from .udp_header import MAX_UDP_HEADER, MalformedUdpHeader, decode_udp_datagram, encode_udp_datagram

__all__ = ["ASSOCIATE_TIMEOUT", "RelayedTrackerSocket", "RelayedTransport", "UdpRelay"]

log = logging.getLogger(__name__)

ASSOCIATE_TIMEOUT = 15.0  # seconds for the connect, the handshake and the relay's answer
RETRY_AFTER = 5.0  # after a failed association, sends fail at once with its error this long
MAX_DATAGRAM = 65536
QUEUE = 256  # datagrams waiting for a reader: past it they are dropped, as a socket buffer would

Address = tuple[str, int]


@dataclass
class _Association:
    control: anyio.abc.SocketStream
    udp: anyio.abc.UDPSocket
    relay: Address


class UdpRelay:
    """The engine's SOCKS5 UDP association (see the module's docstring). ``run`` is its owner's
    task (``SharedResources`` keeps it in its task group); ``send``, ``tracker`` and
    ``dht_transport`` are how the UDP tracker client and the DHT node use it."""

    def __init__(self, proxy: ProxyConfig, *, bind: NetBind | None = None, timeout: float = ASSOCIATE_TIMEOUT,
                 retry_after: float = RETRY_AFTER, clock: Callable[[], float] = time.monotonic) -> None:
        if proxy.kind != "socks5":
            raise ProxyError(f"a {proxy.kind.upper()} proxy carries no UDP (SOCKS5 alone has UDP ASSOCIATE)",
                             proxy.name)
        self.proxy = proxy
        self.bind = bind  # the interface its sockets are bound to (None: any)
        self.timeout = timeout
        self.retry_after = retry_after
        self._clock = clock
        self._current: _Association | None = None
        self._wanted = anyio.Event()
        self._attempt: anyio.Event | None = None
        self._failure: ProxyError | None = None
        self._retry_at = 0.0
        self._closed = False
        self._scope: anyio.CancelScope | None = None
        self._send_lock = anyio.Lock()  # anyio sockets refuse concurrent writers
        self._routes: dict[Address, list[MemoryObjectSendStream[tuple[bytes, Address]]]] = {}
        self._dht: MemoryObjectSendStream[tuple[bytes, Address]] | None = None
        self.associations = 0  # how many were opened (tests: re-opened after a drop)
        self.dropped = 0  # datagrams from the relay not handed on (malformed, fragments, no reader)

    @property
    def relay_address(self) -> Address | None:
        """Where our datagrams go now (the relay the proxy named); None while not associated."""
        return self._current.relay if self._current is not None else None

    # -- the owner's task ----------------------------------------------------------------
    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Open the association each time it is wanted and none is open; serve it until its
        control connection closes; until cancelled or ``close``d."""
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                task_status.started()
                if self._closed:  # (closed before this task began)
                    return
                while True:
                    await self._wanted.wait()
                    self._wanted = anyio.Event()
                    try:
                        association = await self._associate()
                    except ProxyError as exc:
                        self._failure, self._retry_at = exc, self._clock() + self.retry_after
                        log.warning("%s", exc)
                        self._attempt_done()
                        continue
                    self._failure = None
                    try:
                        await self._serve(association)
                    finally:
                        self._current = None
                        with anyio.CancelScope(shield=True):
                            await anyio.aclose_forcefully(association.udp)
                            await anyio.aclose_forcefully(association.control)
                    log.info("proxy %s: the UDP association closed; opened again when next needed",
                             self.proxy.name)
        finally:
            self._closed = True
            self._current = None
            self._attempt_done()

    def close(self) -> None:
        """End the association and ``run`` (a proxy changed, the services stopped)."""
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()
        self._attempt_done()

    async def _associate(self) -> _Association:
        proxy = self.proxy
        try:
            with anyio.fail_after(self.timeout):
                try:
                    control = await connect_socket(proxy.host, proxy.port, self.bind)
                except OSError as exc:
                    raise ProxyError(f"cannot connect: {describe(exc)}", proxy.name) from None
                try:
                    # zeros: our datagrams' source as the proxy will see it is not known here
                    # (a NAT may stand between), as RFC 1928 section 4 allows
                    handshake = Socks5Connect(proxy, "0.0.0.0", 0, command=3)
                    await run_handshake(control, handshake)
                    assert handshake.bound is not None
                    relay = self._relay(handshake.bound, control)
                    local = str(control.extra(anyio.abc.SocketAttribute.local_address)[0])
                    # (from the control connection's own address, bound to the interface as it is)
                    udp = await open_udp(local, 0, self.bind)
                except BaseException:
                    await anyio.aclose_forcefully(control)
                    raise
        except TimeoutError:
            raise ProxyError(f"no UDP association within {self.timeout:g} s", proxy.name) from None
        except (OSError, anyio.BrokenResourceError) as exc:
            raise ProxyError(f"connection lost during the UDP association: {describe(exc)}",
                             proxy.name) from None
        self.associations += 1
        return _Association(control, udp, relay)

    @staticmethod
    def _relay(bound: Address, control: anyio.abc.SocketStream) -> Address:
        """The relay's address: BND.ADDR, or the proxy's own address when it answered zeros."""
        host, port = bound
        try:
            unspecified = ipaddress.ip_address(host).is_unspecified
        except ValueError:
            unspecified = False
        if unspecified:
            host = str(control.extra(anyio.abc.SocketAttribute.remote_address)[0])
        return host, port

    async def _serve(self, association: _Association) -> None:
        async with anyio.create_task_group() as tg:
            self._current = association
            self._attempt_done()
            tg.start_soon(self._receive, association)
            # the association lives as long as the control connection (RFC 1928 section 6);
            # the proxy says nothing on it, so anything read is ignored until it closes
            while True:
                try:
                    await association.control.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    break
            tg.cancel_scope.cancel()

    async def _receive(self, association: _Association) -> None:
        relay_ips = {association.relay[0]}
        while True:
            try:
                datagram, source = await association.udp.receive()
            except OSError:
                continue  # (ICMP unreachable surfacing on a later receive)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            if str(source[0]) not in relay_ips or int(source[1]) != association.relay[1]:
                self.dropped += 1  # only the relay speaks to this socket
                continue
            try:
                relayed = decode_udp_datagram(datagram)
            except MalformedUdpHeader as exc:
                log.debug("proxy %s: datagram dropped: %s", self.proxy.name, exc)
                self.dropped += 1
                continue
            if relayed.frag:  # RFC 1928 section 7: a client may drop fragments; we never reassemble
                self.dropped += 1
                continue
            self._hand_on(relayed.data, (relayed.host, relayed.port))

    def _hand_on(self, data: bytes, source: Address) -> None:
        readers = self._routes.get(_key(source)) or self._routes.get(("", source[1])) or (
            [self._dht] if self._dht is not None else [])
        if not readers:
            self.dropped += 1
        for reader in readers:
            try:
                reader.send_nowait((data, source))
            except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
                self.dropped += 1

    def _attempt_done(self) -> None:
        attempt, self._attempt = self._attempt, None
        if attempt is not None:
            attempt.set()

    # -- for the users -------------------------------------------------------------------
    async def _ensure(self) -> _Association:
        while self._current is None:
            if self._closed:
                raise ProxyError("the UDP association is closed", self.proxy.name)
            if self._failure is not None and self._clock() < self._retry_at:
                raise self._failure
            attempt = self._attempt
            if attempt is None:
                attempt = self._attempt = anyio.Event()
                self._wanted.set()
            await attempt.wait()
            if self._current is None and self._failure is not None:
                raise self._failure
        return self._current

    async def send(self, data: bytes, address: Address) -> None:
        """Send ``data`` to ``address`` (an IP address, or a host name the proxy looks up) by the
        relay, associating first when needed; ``ProxyError`` naming the proxy when that fails."""
        association = await self._ensure()
        datagram = encode_udp_datagram(address[0], address[1], data)
        try:
            async with self._send_lock:
                await association.udp.sendto(datagram, *association.relay)
        except (OSError, anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            raise ProxyError(f"cannot send to the UDP relay {association.relay[0]}:{association.relay[1]}: "
                             f"{describe(exc)}", self.proxy.name) from None

    @asynccontextmanager
    async def tracker(self, host: str, port: int) -> AsyncIterator[RelayedTrackerSocket]:
        """A socket-like view for one exchange with the UDP tracker at ``host:port``: the
        replies from that address come to it."""
        key = _key((host, port))
        sender, receiver = anyio.create_memory_object_stream[tuple[bytes, Address]](QUEUE)
        self._routes.setdefault(key, []).append(sender)
        try:
            yield RelayedTrackerSocket(self, (host, port), receiver)
        finally:
            readers = self._routes.get(key, [])
            if sender in readers:
                readers.remove(sender)
            if not readers:
                self._routes.pop(key, None)
            sender.close()
            receiver.close()

    def dht_transport(self) -> RelayedTransport:
        """A DHT transport (``dht.transport.DatagramTransport``) by the relay: every datagram
        no tracker exchange waits for comes to it."""
        if self._dht is not None:
            raise ProxyError("the UDP relay already carries a DHT node", self.proxy.name)
        sender, receiver = anyio.create_memory_object_stream[tuple[bytes, Address]](QUEUE)
        self._dht = sender
        return RelayedTransport(self, sender, receiver)

    def _dht_closed(self, sender: MemoryObjectSendStream[tuple[bytes, Address]]) -> None:
        if self._dht is sender:
            self._dht = None


def _key(address: Address) -> Address:
    """Routes by address; a tracker named by host name is routed by its port alone (the relay
    answers with the address the proxy looked up)."""
    host, port = address
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        return "", port


class RelayedTrackerSocket:
    """What the UDP tracker client sends and receives through for one exchange (as its own
    connected UDP socket otherwise)."""

    def __init__(self, relay: UdpRelay, address: Address,
                 receiver: MemoryObjectReceiveStream[tuple[bytes, Address]]) -> None:
        self._relay = relay
        self._address = address
        self._receiver = receiver
        # the tracker sees the proxy over IPv6 when we name it by an IPv6 address, or the relay
        # answered from one (it answers 18-byte peers then, BEP 15)
        self.ipv6 = ":" in address[0]

    async def send(self, data: bytes) -> None:
        """Send one datagram to the tracker."""
        await self._relay.send(data, self._address)

    async def receive(self) -> bytes:
        """The next datagram from the tracker."""
        data, source = await self._receiver.receive()
        self.ipv6 = ":" in source[0]
        return data


class RelayedTransport:
    """The DHT node's datagrams by the relay (``dht.transport.DatagramTransport``). Send errors
    (the proxy unreachable, the association refused) are counted, not raised, as on a UDP
    socket: the node's timeouts handle the loss, and the relay's log line says why."""

    def __init__(self, relay: UdpRelay, sender: MemoryObjectSendStream[tuple[bytes, Address]],
                 receiver: MemoryObjectReceiveStream[tuple[bytes, Address]]) -> None:
        self._relay = relay
        self._sender = sender
        self._receiver = receiver
        self.send_errors = 0

    @property
    def local_address(self) -> Address:
        """IPv4, port unknown: the port others reach us at is the relay's, which the proxy
        does not tell (a BEP 32 IPv6 node needs a socket of its own)."""
        return ("0.0.0.0", 0)

    async def send(self, data: bytes, address: Address) -> None:
        """Send one datagram to ``address`` by the relay (errors are counted, not raised)."""
        if len(data) + MAX_UDP_HEADER > MAX_DATAGRAM:
            self.send_errors += 1
            return
        try:
            await self._relay.send(data, address)
        except (ProxyError, MalformedUdpHeader):
            self.send_errors += 1

    async def receive(self) -> tuple[bytes, Address]:
        """The next datagram and its sender (as the relay's header names it)."""
        return await self._receiver.receive()

    async def aclose(self) -> None:
        """Stop taking the relay's datagrams."""
        self._relay._dht_closed(self._sender)
        self._sender.close()
        self._receiver.close()

