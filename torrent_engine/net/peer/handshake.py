"""The handshakes of a peer connection, then the connection: ``connect`` dials a peer as the
initiator, ``accept`` answers an incoming stream (plaintext or MSE/PE, as the encryption policy
allows); both return a ``PeerConnection`` (``connection.py``), over a ``PeerProtocol``
(``protocol.py``) where asyncio runs the stream.

Every failure surfaces as a ``PeerError``: ``PeerConnectionClosed`` for EOF, resets and time-outs;
``PeerProtocolError`` when the peer broke the protocol (``EncryptionError`` for MSE and policy
failures).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable, Iterable

import anyio
import anyio.abc

from ...errors import EncryptionError, PeerConnectionClosed, PeerError, PeerProtocolError
from .connection import DEFAULT_READ_TIMEOUT, RECEIVE_SIZE, EncryptionPolicy, PeerConnection
from .messages import PROTOCOL_HEADER, Handshake
from .mse import CRYPTO_PLAINTEXT, CRYPTO_RC4, MseInitiator, MseResponder, StreamCipher
from .protocol import take_over
from .wire import PeerWire

__all__ = ["DEFAULT_HANDSHAKE_TIMEOUT", "accept", "connect"]

DEFAULT_HANDSHAKE_TIMEOUT = 10.0
MSE_MAX_HANDSHAKE_BYTES = 96 + 512 + 20 + 20 + 14 + 512 + 2 + 65535  # Ya..IA, all at their maximum

_ENCRYPTION_POLICIES = ("prefer", "require", "disable")

log = logging.getLogger("torrent_engine.net.peer.connection")


def _remote_of(stream: anyio.abc.ByteStream) -> tuple[str, int] | None:
    try:
        addr = stream.extra(anyio.abc.SocketAttribute.remote_address)
    except (anyio.TypedAttributeLookupError, OSError):
        return None
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = str(addr[0])
        if host.startswith("::ffff:"):  # an IPv4 peer on a dual-stack listener: one name per peer
            try:
                mapped = ipaddress.IPv6Address(host).ipv4_mapped
            except ValueError:
                mapped = None
            if mapped is not None:
                host = str(mapped)
        return (host, int(addr[1]))
    return None


async def _read(stream: anyio.abc.ByteStream) -> bytes:
    try:
        return await stream.receive(RECEIVE_SIZE)
    except anyio.EndOfStream:
        raise PeerConnectionClosed("connection closed during the handshake") from None
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
        raise PeerConnectionClosed(f"connection lost during the handshake: {exc!r}") from None


async def _write(stream: anyio.abc.ByteStream, data: bytes) -> None:
    try:
        await stream.send(data)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
        raise PeerConnectionClosed(f"connection lost during the handshake: {exc!r}") from None


async def _await_handshake(
    stream: anyio.abc.ByteStream, wire: PeerWire, decrypt: StreamCipher | None
) -> Handshake:
    while True:
        event = wire.next_event()
        if event is not None:
            assert isinstance(event, Handshake)
            return event
        data = await _read(stream)
        wire.receive_data(decrypt.update(data) if decrypt is not None else data)


async def _mse_initiate(
    stream: anyio.abc.ByteStream, wire: PeerWire, provide: int, randbytes: Callable[[int], bytes]
) -> tuple[StreamCipher | None, StreamCipher | None]:
    assert wire.info_hash is not None
    mse = MseInitiator(
        wire.info_hash, crypto_provide=provide, initial_payload=wire.handshake(), randbytes=randbytes
    )
    await _write(stream, mse.start())
    while mse.result is None:
        try:
            data = await _read(stream)
        except PeerConnectionClosed as exc:  # what a peer that does not speak MSE does
            raise EncryptionError(f"the peer hung up during the encryption handshake ({exc})") from None
        out = mse.receive_data(data)
        if out:
            await _write(stream, out)
    wire.receive_data(mse.result.remaining)
    return mse.result.encrypt, mse.result.decrypt


async def connect(
    host: str,
    port: int,
    *,
    info_hash: bytes,
    peer_id: bytes,
    encryption: EncryptionPolicy = "prefer",
    reserved: bytes | None = None,
    timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    num_pieces: int | None = None,
    piece_size: Callable[[int], int] | None = None,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    randbytes: Callable[[int], bytes] = os.urandom,
    opener: Callable[[str, int, float], Awaitable[anyio.abc.ByteStream]] | None = None,
) -> PeerConnection:
    """Dial ``host:port`` and complete the handshakes as the initiator.

    ``opener(host, port, timeout)`` opens the byte stream (default: TCP; uTP passes its own).

    ``encryption``: "require" does MSE offering RC4 only; "prefer" does MSE offering RC4 and
    plaintext, and if the MSE handshake fails, reconnects once and speaks plaintext; "disable"
    speaks plaintext BitTorrent. ``timeout`` bounds each attempt (connect + handshakes)."""
    if encryption not in _ENCRYPTION_POLICIES:
        raise ValueError(f"encryption must be one of {_ENCRYPTION_POLICIES}")
    provide = (
        None
        if encryption == "disable"
        else CRYPTO_RC4
        if encryption == "require"
        else CRYPTO_RC4 | CRYPTO_PLAINTEXT
    )

    async def handshake(stream: anyio.abc.ByteStream, crypto_provide: int | None) -> PeerConnection:
        return await _initiate(
            stream, (host, port), crypto_provide, info_hash, peer_id, reserved, timeout,
            num_pieces, piece_size, read_timeout, randbytes,
        )

    open_stream = opener if opener is not None else _open
    stream = await open_stream(host, port, timeout)  # a peer we cannot reach is not dialed twice
    try:
        return await handshake(stream, provide)
    except PeerError as exc:
        if encryption != "prefer":
            raise
        log.debug("MSE with %s:%d failed (%s); retrying in plaintext", host, port, exc)
    return await handshake(await open_stream(host, port, timeout), None)


async def _open(host: str, port: int, timeout: float) -> anyio.abc.ByteStream:
    try:
        with anyio.fail_after(timeout):
            return await anyio.connect_tcp(host, port)
    except TimeoutError:
        raise PeerConnectionClosed(f"connecting to {host}:{port} timed out") from None
    except OSError as exc:
        raise PeerConnectionClosed(f"cannot connect to {host}:{port}: {exc}") from None


async def _initiate(
    stream: anyio.abc.ByteStream,
    remote: tuple[str, int],
    provide: int | None,
    info_hash: bytes,
    peer_id: bytes,
    reserved: bytes | None,
    timeout: float,
    num_pieces: int | None,
    piece_size: Callable[[int], int] | None,
    read_timeout: float,
    randbytes: Callable[[int], bytes],
) -> PeerConnection:
    """Handshakes as the initiator on an open stream (closed on failure)."""
    wire = PeerWire(
        info_hash=info_hash, peer_id=peer_id, reserved=reserved, num_pieces=num_pieces, piece_size=piece_size
    )
    encrypt: StreamCipher | None = None
    decrypt: StreamCipher | None = None
    try:
        with anyio.fail_after(timeout):
            if provide is None:
                await _write(stream, wire.handshake())
            else:
                encrypt, decrypt = await _mse_initiate(stream, wire, provide, randbytes)
            await _await_handshake(stream, wire, decrypt)
    except TimeoutError:
        await _close_quietly(stream)
        raise PeerConnectionClosed(f"handshake with {remote[0]}:{remote[1]} timed out") from None
    except BaseException:
        await _close_quietly(stream)
        raise
    return await _established(stream, wire, remote=remote, encrypt=encrypt, decrypt=decrypt,
                              read_timeout=read_timeout, mse=provide is not None)


async def _established(stream: anyio.abc.ByteStream, wire: PeerWire, *, remote: tuple[str, int] | None,
                       encrypt: StreamCipher | None, decrypt: StreamCipher | None, read_timeout: float,
                       mse: bool) -> PeerConnection:
    """The connection after both handshakes: over a ``PeerProtocol`` (``protocol.py``) for TCP and
    uTP on asyncio, over the anyio stream otherwise (memory streams)."""
    fast = await take_over(stream, wire, remote=remote, encrypt=encrypt, decrypt=decrypt,
                           read_timeout=read_timeout, mse=mse)
    if fast is not None:
        return fast
    return PeerConnection(stream, wire, remote=remote, encrypt=encrypt, decrypt=decrypt,
                          read_timeout=read_timeout, mse=mse)


async def _close_quietly(stream: anyio.abc.ByteStream) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await stream.aclose()
        except (OSError, anyio.BrokenResourceError):
            pass


async def accept(
    stream: anyio.abc.ByteStream,
    *,
    lookup: Callable[[bytes], object],
    peer_id: bytes,
    encryption: EncryptionPolicy = "prefer",
    info_hashes: Iterable[bytes] | Callable[[], Iterable[bytes]] | None = None,
    reserved: bytes | None = None,
    timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    randbytes: Callable[[int], bytes] = os.urandom,
    prefer_rc4: bool = False,
) -> PeerConnection:
    """Answer an incoming connection: detect plaintext (``\\x13BitTorrent protocol``) or MSE
    from the first bytes, find the torrent, reply with our handshake.

    ``lookup(info_hash)`` must be truthy for a torrent we serve. An MSE initiator names its
    torrent only by HASH('req2', info_hash) (``mse.skey_hash``): the responder tries each of
    ``info_hashes`` when given, and asks ``lookup(skey_hash)`` too, which may return the
    20-byte info-hash it stands for (anything else means "not ours"). ``encryption`` "require"
    refuses plaintext peers, "disable" refuses MSE; under "prefer", an MSE peer that offers both
    gets a plaintext payload after the obfuscated handshake unless ``prefer_rc4``. The returned
    connection's ``info_hash`` is the torrent asked for; set its metadata with
    ``conn.wire.set_metadata(...)``.
    Failures raise a ``PeerError``: ``PeerProtocolError`` (``EncryptionError`` for policy and MSE
    failures) or ``PeerConnectionClosed`` (EOF or ``timeout``). The stream is not closed on failure: the
    caller owns it."""
    if encryption not in _ENCRYPTION_POLICIES:
        raise ValueError(f"encryption must be one of {_ENCRYPTION_POLICIES}")
    try:
        with anyio.fail_after(timeout):
            first = b""
            while len(first) < len(PROTOCOL_HEADER) and PROTOCOL_HEADER.startswith(first):
                first += await _read(stream)
            plaintext = first.startswith(PROTOCOL_HEADER)
            encrypt: StreamCipher | None = None
            decrypt: StreamCipher | None = None
            if plaintext:
                if encryption == "require":
                    raise EncryptionError("plaintext peer refused: encryption is required")
                wire = PeerWire(info_hash=None, peer_id=peer_id, reserved=reserved)
                wire.receive_data(first)
            else:
                if encryption == "disable":
                    raise EncryptionError("not a BitTorrent handshake and encryption is disabled")
                allowed = CRYPTO_RC4 if encryption == "require" else CRYPTO_RC4 | CRYPTO_PLAINTEXT

                def resolve(wanted: bytes) -> bytes | None:
                    found = lookup(wanted)
                    return found if isinstance(found, bytes) else None

                mse = MseResponder(info_hashes or (), resolve=resolve, crypto_allowed=allowed,
                                   randbytes=randbytes, prefer_rc4=prefer_rc4)
                data = first
                received = 0
                while mse.result is None:
                    received += len(data)
                    if received > MSE_MAX_HANDSHAKE_BYTES:
                        raise EncryptionError("MSE handshake too long")
                    out = mse.receive_data(data)
                    if out:
                        await _write(stream, out)
                    if mse.result is None:
                        data = await _read(stream)
                result = mse.result
                wire = PeerWire(info_hash=result.info_hash, peer_id=peer_id, reserved=reserved)
                wire.receive_data(result.initial_payload)
                wire.receive_data(result.remaining)
                encrypt, decrypt = result.encrypt, result.decrypt
            hs = await _await_handshake(stream, wire, decrypt)
            if not lookup(hs.info_hash):
                raise PeerProtocolError(f"handshake for a torrent we do not serve ({hs.info_hash.hex()})")
            our_handshake = wire.handshake()
            await _write(stream, encrypt.update(our_handshake) if encrypt is not None else our_handshake)
    except TimeoutError:
        raise PeerConnectionClosed(f"incoming handshake not completed within {timeout:g} s") from None
    return await _established(stream, wire, remote=_remote_of(stream), encrypt=encrypt, decrypt=decrypt,
                              read_timeout=read_timeout, mse=not plaintext)
