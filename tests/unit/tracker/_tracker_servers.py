"""Small trackers on 127.0.0.1 for tests: a raw HTTP/1.1 server whose handler writes whatever
bytes it likes, a UDP (BEP 15) tracker with knobs for dropping and mangling replies, and a
self-signed certificate for HTTPS."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

import anyio
import anyio.abc
from anyio.streams.tls import TLSListener

from torrent_engine.formats.bencode import encode
from torrent_engine.net.tracker.messages import UDP_PROTOCOL_ID, parse_udp_options

Handler = Callable[["HttpRequest", anyio.abc.ByteStream], Awaitable[None]]


@dataclass
class HttpRequest:
    head: bytes
    target: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    def query(self) -> dict[str, list[bytes]]:
        result: dict[str, list[bytes]] = {}
        for pair in urlsplit(self.target).query.split("&"):
            if pair:
                name, _, value = pair.partition("=")
                result.setdefault(name, []).append(unquote_to_bytes(value))
        return result


@dataclass
class HttpServer:
    port: int
    requests: list[HttpRequest] = field(default_factory=list)


def compact(peers: list[tuple[str, int]]) -> bytes:
    return b"".join(ipaddress.IPv4Address(ip).packed + struct.pack(">H", port) for ip, port in peers)


def http_response(body: bytes, status: str = "200 OK", headers: tuple[str, ...] = ()) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers, "", ""]
    return "\r\n".join(head).encode() + body


def announce_body(interval: int = 1800, peers: list[tuple[str, int]] | None = None, **extra: object) -> bytes:
    return encode({"interval": interval, "peers": compact(peers or []), **extra})


@asynccontextmanager
async def serving(handler: Callable[[anyio.abc.SocketStream], Awaitable[None]]) -> AsyncIterator[int]:
    """Serve each TCP connection to 127.0.0.1 with ``handler`` until the block ends: the port."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        yield listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.cancel_scope.cancel()


@asynccontextmanager
async def http_tracker(handler: Handler, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[HttpServer]:
    """Serve ``handler`` on 127.0.0.1 (port chosen by the OS) until the block ends."""
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    server = HttpServer(port=tcp.extra(anyio.abc.SocketAttribute.local_port))
    listener: anyio.abc.Listener[anyio.abc.ByteStream] = (
        TLSListener(tcp, tls, standard_compatible=False) if tls is not None else tcp
    )

    async def serve(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    data += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return
            head = data.split(b"\r\n\r\n")[0]
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            request = HttpRequest(head, lines[0].split(" ")[1], headers)
            server.requests.append(request)
            try:
                await handler(request, stream)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        yield server
        tg.cancel_scope.cancel()


def self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for a certificate valid for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


@dataclass
class UdpTracker:
    """A BEP 15 tracker. ``drop`` = number of requests to ignore before answering; ``before``
    = junk datagrams sent ahead of each real reply; ``peers`` returned on announce."""

    port: int = 0
    host: str = "127.0.0.1"
    peers: list[tuple[str, int]] = field(default_factory=list)
    peers_raw: bytes | None = None
    drop: int = 0
    before: list[Callable[[int], bytes]] = field(default_factory=list)
    error: bytes | None = None  # answer announces with this error message
    reject_ids: set[int] = field(default_factory=set)  # connection ids answered with an error
    ignore_ids: set[int] = field(default_factory=set)  # connection ids not answered (a restart forgot them)
    received: list[bytes] = field(default_factory=list)
    connects: int = 0
    announces: list[tuple[bytes, int, bytes]] = field(default_factory=list)  # (peer_id, event, url_data)
    next_connection_id: int = 0x1000

    def reply(self, packet: bytes) -> list[bytes]:
        self.received.append(packet)
        if self.drop > 0:
            self.drop -= 1
            return []
        if len(packet) < 16:
            return []
        conn_id, action, tid = struct.unpack_from(">QII", packet)
        junk = [make(tid) for make in self.before]
        if action == 0 and conn_id == UDP_PROTOCOL_ID:
            self.connects += 1
            self.next_connection_id += 1
            return [*junk, struct.pack(">IIQ", 0, tid, self.next_connection_id)]
        if conn_id in self.ignore_ids:
            return []
        if conn_id in self.reject_ids:
            return [*junk, struct.pack(">II", 3, tid) + b"Connection ID missmatch."]
        if action == 1 and len(packet) >= 98:
            peer_id = packet[36:56]
            (event,) = struct.unpack_from(">I", packet, 80)
            self.announces.append((peer_id, event, parse_udp_options(packet[98:])))
            if self.error is not None:
                return [*junk, struct.pack(">II", 3, tid) + self.error]
            body = self.peers_raw if self.peers_raw is not None else compact(self.peers)
            return [*junk, struct.pack(">IIIII", 1, tid, 1800, 2, 3) + body]
        if action == 2:
            n = (len(packet) - 16) // 20
            return [
                *junk,
                struct.pack(">II", 2, tid) + b"".join(struct.pack(">III", 5, 6, 7) for _ in range(n)),
            ]
        return []


@asynccontextmanager
async def udp_tracker(
    tracker: UdpTracker, *, family: socket.AddressFamily = socket.AF_INET
) -> AsyncIterator[UdpTracker]:
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    async with await anyio.create_udp_socket(family=family, local_host=host, local_port=0) as sock:
        tracker.host = host
        tracker.port = sock.extra(anyio.abc.SocketAttribute.local_port)

        async def loop() -> None:
            async for packet, address in sock:
                for answer in tracker.reply(packet):
                    await sock.sendto(answer, address[0], address[1])

        async with anyio.create_task_group() as tg:
            tg.start_soon(loop)
            yield tracker
            tg.cancel_scope.cancel()
