"""Typed errors of the engine: each says what was wrong and where."""

from __future__ import annotations

import errno
from collections.abc import Sequence

# the errors that say a file system has no room: full (ENOSPC) or over a quota (EDQUOT)
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT})


class TorrentEngineError(Exception):
    """Base of every error the engine raises on bad input or failed I/O."""


class BencodeError(TorrentEngineError, ValueError):
    """Malformed bencoded data; ``offset`` is the byte where decoding stopped."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.reason = message
        self.offset = offset


class MetainfoError(TorrentEngineError, ValueError):
    """A .torrent file that is not valid; ``field`` names the offending key path."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.reason = message
        self.field = field


class MagnetError(TorrentEngineError, ValueError):
    """A magnet URI that cannot be used; ``param`` names the offending parameter."""

    def __init__(self, message: str, param: str = "") -> None:
        super().__init__(f"{param}: {message}" if param else message)
        self.reason = message
        self.param = param


class PeerError(TorrentEngineError):
    """A peer connection failed, for whichever reason: catch this to drop the peer."""


class PeerProtocolError(PeerError):
    """A peer broke the wire protocol (bad handshake, oversized message, bad index...)."""


class EncryptionError(PeerProtocolError):
    """MSE/PE negotiation failed or was refused by policy."""


class PeerConnectionClosed(PeerError):
    """The link to a peer ended: closed by the peer, reset, unreachable, or a read timeout.
    Not the peer's fault as far as we know (unlike ``PeerProtocolError``)."""


class HttpError(TorrentEngineError):
    """An HTTP(S) request failed (DNS, refused, TLS, timeout, a malformed or oversized answer, a
    redirect loop); ``url`` is the one first asked for, ``reason`` what went wrong."""

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(f"{url}: {message}" if url else message)
        self.reason = message
        self.url = url


class TrackerError(TorrentEngineError):
    """A tracker request failed or the tracker sent an unusable response."""

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(f"{url}: {message}" if url else message)
        self.reason = message
        self.url = url


class TrackerRefused(TrackerError):
    """The tracker answered with a ``failure reason`` (BEP 3). ``retry_in`` is BEP 31's advice
    in seconds: None when not given, -1 for "never"."""

    def __init__(self, message: str, url: str = "", retry_in: int | None = None) -> None:
        super().__init__(message, url)
        self.retry_in = retry_in


class TrackerNotUsed(TrackerError):
    """A tracker the settings forbid asking (a UDP tracker while nothing may leave outside the
    proxy): not tried again until the settings change."""


class WebSeedError(TorrentEngineError):
    """A web seed (BEP 19) request failed or its server answered something unusable; ``url``
    names the file asked for."""

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(f"{url}: {message}" if url else message)
        self.reason = message
        self.url = url


class WebSeedStatusError(WebSeedError):
    """The web seed answered with an HTTP error status (404, 503, ...). ``retry_after`` is the
    server's ``Retry-After`` in seconds when it sent one."""

    def __init__(self, message: str, url: str = "", *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message, url)
        self.status = status
        self.retry_after = retry_after


class WebSeedRefused(WebSeedError):
    """A web seed request the engine does not send (SSRF mitigation: net/ssrf.py); the web seed
    is given up on."""


class WebSeedRangeError(WebSeedError):
    """The web seed's answer does not hold the bytes asked for: a ``Content-Range`` or length
    other than the request's, a file of another size than the torrent's, or Range ignored."""


class DHTError(TorrentEngineError):
    """A DHT operation failed (malformed KRPC, remote error, bad signature...)."""


class StorageError(TorrentEngineError):
    """Reading or writing torrent data on disk failed (our disk, not a peer or the network).

    Not an ``OSError``: a handler of socket errors never swallows it (the failed call's
    ``OSError`` is its ``__cause__``)."""


class MissingFiles(StorageError):
    """Files that held verified data are gone or shorter (deleted, a drive not mounted): nothing
    is downloaded again until the owner says so; ``paths`` names them (relative to the save path)."""

    def __init__(self, paths: list[str], files: Sequence[tuple[int, int]] = ()) -> None:
        shown = ", ".join(paths[:10]) + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")
        super().__init__(f"missing files: {shown} (relocate, recheck or resume once they are back)")
        self.paths = tuple(paths)
        # found while the torrent ran: (file index, bytes of it still there: 0 when it is gone or
        # its path leads to another file), for the pieces it held to be no longer had
        self.files = tuple(files)


class FileChanged(StorageError):
    """Files that held verified data were changed since (their size or modification time is not
    what it was when their data was verified or written by us): what they hold must be verified
    again before it is served. ``files``: their indices in the torrent. Raised by every read of
    them until the reader says it took note (``Storage.changes_seen``)."""

    def __init__(self, path: str, files: Sequence[int]) -> None:
        super().__init__(f"{path} was changed since its data was verified")
        self.files = tuple(files)


class DescriptorLimitReached(TorrentEngineError):
    """The process has (nearly) no file descriptor left: new work is refused until some are free
    (the message names the limit and what to change)."""


class SessionError(TorrentEngineError):
    """An operation is not valid in the session's current state."""


class StreamError(SessionError):
    """A file reader cannot go on: its session ended or failed, the file does not exist, or
    the reader was closed."""


class UtpError(TorrentEngineError):
    """A uTP (BEP 29) packet or connection failed: malformed packet, reset, or timed out."""


class PortMapError(TorrentEngineError):
    """A port mapping request (NAT-PMP, UPnP IGD) failed or the gateway answered nonsense.

    ``code`` is the gateway's own result or fault code where it sent one (0 otherwise)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(f"{message} (code {code})" if code else message)
        self.reason = message
        self.code = code


class LsdError(TorrentEngineError, ValueError):
    """A Local Service Discovery (BEP 14) announce that cannot be used; ``field`` names the
    offending part (the request line, a header, or the datagram's size)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.reason = message
        self.field = field


class ProxyError(TorrentEngineError):
    """A connection through the proxy failed: the proxy is unreachable, silent, refused our
    credentials or the destination; ``proxy`` names it (its URL without the password)."""

    def __init__(self, message: str, proxy: str) -> None:
        super().__init__(f"proxy {proxy}: {message}")
        self.reason = message
        self.proxy = proxy


class InterfaceBindError(TorrentEngineError, OSError):
    """A socket could not be bound to ``Config.bind_interface`` (it does not exist now, or the
    process may not bind to it): nothing is sent by another interface instead."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(code, f"Config.bind_interface: {message}")
        self.reason = message
        self.field = "bind_interface"


class DownloadTimeout(TorrentEngineError, TimeoutError):
    """A download did not complete within the time it was given; the message says which and
    how far it got."""


class ConfigError(TorrentEngineError, ValueError):
    """A ``Config`` value that cannot work; ``field`` names the setting."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"Config.{field}: {message}")
        self.reason = message
        self.field = field


def typed_failure(exc: BaseException) -> TorrentEngineError | None:
    """The engine's typed error for ``exc``, looking inside exception groups (what a task group
    raises): a ``TorrentEngineError`` as it is, an ``OSError`` about a file as a ``StorageError``
    naming the file (another ``OSError`` as a ``SessionError``); None for anything else (a bug),
    and for a group holding any such bug, so that it is reported as one."""
    if isinstance(exc, BaseExceptionGroup):  # typed only if every error in it is: else a bug hides
        found = [typed_failure(inner) for inner in exc.exceptions]
        if not found or any(f is None for f in found):
            return None
        return found[0]
    if isinstance(exc, TorrentEngineError):
        return exc
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename is not None:
            return StorageError(f"{reason}: {exc.filename}")
        return SessionError(reason)
    return None
