"""Tracker messages, sans-I/O: announce/scrape URLs and UDP packets out, typed responses in.

HTTP announce is BEP 3 with BEP 7 (``peers6``), 23 (compact), 24 (``external ip``) and 31
(``retry in``); HTTP scrape is BEP 48; UDP is BEP 15 with BEP 41's URL-data option. Every parser
takes untrusted bytes and either returns a validated value, returns None (a UDP datagram that is
not for us), or raises :class:`TrackerError` — never anything else.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, quote_from_bytes, urlsplit

from ...errors import BencodeError, TrackerError, TrackerRefused
from ...formats import compact
from ...formats.bencode import BValue, decode

__all__ = [
    "AnnounceEvent",
    "AnnounceRequest",
    "AnnounceResponse",
    "AnnounceStats",
    "MAX_RESPONSE_SIZE",
    "RETRY_NEVER",
    "ScrapeResponse",
    "ScrapeStats",
    "UDP_PROTOCOL_ID",
    "announce_url",
    "parse_announce_response",
    "parse_compact_peers",
    "parse_scrape_response",
    "parse_udp_announce",
    "parse_udp_connect",
    "parse_udp_options",
    "parse_udp_scrape",
    "scrape_url",
    "scrape_url_for",
    "udp_announce_request",
    "udp_connect_request",
    "udp_scrape_request",
    "udp_url_data",
]

AnnounceEvent = Literal["", "started", "completed", "stopped"]

MAX_RESPONSE_SIZE = 2 * 1024 * 1024  # a tracker answer larger than this is refused, not parsed
MAX_REPLY_PEERS = 2000  # peers decoded from one reply: what a session's peer pool keeps at most
RETRY_NEVER = -1  # BEP 31 "retry in": "never"
DEFAULT_NUMWANT = 50

UDP_PROTOCOL_ID = 0x41727101980  # BEP 15 magic constant of the connect request
UDP_ACTION_CONNECT = 0  # BEP 15
UDP_ACTION_ANNOUNCE = 1  # BEP 15
UDP_ACTION_SCRAPE = 2  # BEP 15
UDP_ACTION_ERROR = 3  # BEP 15
UDP_EVENTS: dict[str, int] = {"": 0, "completed": 1, "started": 2, "stopped": 3}  # BEP 15
UDP_ANNOUNCE_SIZE = 98  # BEP 15: fixed part of an announce request; BEP 41 options follow
UDP_MAX_SCRAPE_HASHES = 74  # BEP 15: "up to about 74 torrents can be scraped at once"
UDP_OPTION_END = 0  # BEP 41 EndOfOptions
UDP_OPTION_NOP = 1  # BEP 41 NOP
UDP_OPTION_URL_DATA = 2  # BEP 41 URLData

_HOSTNAME = re.compile(rb"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class AnnounceStats:
    """What we report to a tracker: bytes uploaded and downloaded so far, bytes still missing."""

    uploaded: int
    downloaded: int
    left: int


@dataclass(frozen=True, slots=True)
class AnnounceRequest:
    """One announce, as BEP 3 defines its parameters (used for HTTP and UDP alike)."""

    info_hash: bytes
    peer_id: bytes
    port: int
    uploaded: int = 0
    downloaded: int = 0
    left: int = 0
    event: AnnounceEvent = ""
    numwant: int = DEFAULT_NUMWANT
    key: int = 0  # 32-bit; lets the tracker recognise us when our IP changes
    tracker_id: bytes | None = None  # echoed back from a previous response ("trackerid")
    ip: str = ""  # the address the tracker is to hand out for us ("" = the one it sees: BEP 3's "ip")

    def __post_init__(self) -> None:
        if len(self.info_hash) != 20 or len(self.peer_id) != 20:
            raise ValueError("info_hash and peer_id must be 20 bytes")
        if not 0 <= self.port <= 0xFFFF:
            raise ValueError(f"port out of range: {self.port}")
        if self.event not in UDP_EVENTS:
            raise ValueError(f"unknown announce event {self.event!r}")


@dataclass(frozen=True, slots=True)
class AnnounceResponse:
    """A tracker's answer to an announce: interval, peers and swarm counts."""

    interval: int  # seconds until the next regular announce
    min_interval: int | None = None
    peers: list[tuple[str, int]] = field(default_factory=list)
    seeders: int | None = None  # "complete" (HTTP) / seeders (UDP)
    leechers: int | None = None  # "incomplete" (HTTP) / leechers (UDP)
    tracker_id: bytes | None = None
    warning: str | None = None
    external_ip: str | None = None  # BEP 24
    retry_in: int | None = None  # BEP 31, seconds (RETRY_NEVER: never)
    # optional fields that were malformed and left out, each with why (the shell logs them)
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScrapeStats:
    """A torrent's swarm counts from a scrape."""

    complete: int  # seeders
    downloaded: int  # completed downloads ever reported
    incomplete: int  # leechers


@dataclass(frozen=True, slots=True)
class ScrapeResponse:
    """A tracker's answer to a scrape: counts per info-hash."""

    files: dict[bytes, ScrapeStats]  # info-hash -> stats


# --------------------------------------------------------------------------- HTTP announce


def announce_url(base_url: str, request: AnnounceRequest) -> str:
    """The GET URL of an HTTP announce: ``base_url`` (its own query kept) plus BEP 3 parameters.

    ``info_hash`` and ``peer_id`` are percent-encoded byte by byte (they are binary, not text).
    """
    params = [
        ("info_hash", quote_from_bytes(request.info_hash, safe="")),
        ("peer_id", quote_from_bytes(request.peer_id, safe="")),
        ("port", str(request.port)),
        ("uploaded", str(request.uploaded)),
        ("downloaded", str(request.downloaded)),
        ("left", str(request.left)),
        ("compact", "1"),  # BEP 23
        ("numwant", str(request.numwant)),
        ("key", f"{request.key & 0xFFFFFFFF:08x}"),
    ]
    if request.event:
        params.append(("event", request.event))
    if request.tracker_id is not None:
        params.append(("trackerid", quote_from_bytes(request.tracker_id, safe="")))
    if request.ip:
        params.append(("ip", quote(request.ip, safe="")))
    return _append_query(base_url, params)


def _append_query(base_url: str, params: Iterable[tuple[str, str]]) -> str:
    url = base_url.partition("#")[0]  # a fragment is never sent; drop it
    query = "&".join(f"{k}={v}" for k, v in params)
    if "?" not in url:
        return f"{url}?{query}"
    if url.endswith(("?", "&")):
        return f"{url}{query}"
    return f"{url}&{query}"


def parse_announce_response(body: bytes, url: str = "", *,
                            max_peers: int = MAX_REPLY_PEERS) -> AnnounceResponse:
    """Parse an HTTP announce response body (compact or dictionary peers, IPv4 and IPv6).

    A ``failure reason`` raises :class:`TrackerRefused` carrying BEP 31's ``retry in``. At most
    ``max_peers`` peers are decoded (the rest of a huge list costs nothing); a malformed optional
    field (``peers6``, ``external ip``) is left out and named in ``ignored``.
    """
    top = _decode_dict(body, url)
    retry_in = _retry_in(top.get(b"retry in"))
    failure = top.get(b"failure reason")
    if failure is not None:
        reason = _text(failure) if isinstance(failure, bytes) else "tracker refused the request"
        raise TrackerRefused(reason or "tracker refused the request", url, retry_in)
    interval = top.get(b"interval")
    if not isinstance(interval, int) or interval < 0:
        raise TrackerError("response has no valid 'interval'", url)
    peers: list[tuple[str, int]] = []
    ignored: list[str] = []
    raw_peers = top.get(b"peers", b"")
    if isinstance(raw_peers, bytes):
        if len(raw_peers) % 6:
            raise TrackerError(f"compact 'peers' length {len(raw_peers)} is not a multiple of 6", url)
        peers.extend(parse_compact_peers(raw_peers, ipv6=False, limit=max_peers))
    elif isinstance(raw_peers, list):
        peers.extend(_dict_peers(raw_peers, limit=max_peers))
    else:
        raise TrackerError("'peers' is neither a string nor a list", url)
    raw_peers6 = top.get(b"peers6")  # BEP 7
    room = max_peers - len(peers)
    if isinstance(raw_peers6, bytes):
        if len(raw_peers6) % 18:
            ignored.append(f"'peers6' length {len(raw_peers6)} is not a multiple of 18")
        else:
            peers.extend(parse_compact_peers(raw_peers6, ipv6=True, limit=room))
    elif isinstance(raw_peers6, list):
        peers.extend(_dict_peers(raw_peers6, limit=room))
    elif raw_peers6 is not None:
        ignored.append("'peers6' is neither a string nor a list")
    raw_ip = top.get(b"external ip")
    external_ip = _external_ip(raw_ip)
    if raw_ip is not None and external_ip is None:
        ignored.append("'external ip' is not a 4- or 16-byte address")
    tracker_id = top.get(b"tracker id")
    warning = top.get(b"warning message")
    return AnnounceResponse(
        interval=interval,
        min_interval=_non_negative(top.get(b"min interval")),
        peers=peers,
        seeders=_non_negative(top.get(b"complete")),
        leechers=_non_negative(top.get(b"incomplete")),
        tracker_id=tracker_id if isinstance(tracker_id, bytes) and tracker_id else None,
        warning=_text(warning) if isinstance(warning, bytes) else None,
        external_ip=external_ip,
        retry_in=retry_in,
        ignored=tuple(ignored),
    )


def parse_compact_peers(data: bytes, *, ipv6: bool, limit: int | None = None) -> list[tuple[str, int]]:
    """BEP 23 (6 bytes per IPv4 peer) or BEP 7 (18 bytes per IPv6 peer), by the rules of
    :mod:`torrent_engine.formats.compact` (port 0 dropped, IPv4-mapped as IPv4, a trailing partial entry
    ignored); at most ``limit`` peers."""
    return compact.decode_peers(data, ipv6=ipv6, limit=limit)


def _dict_peers(entries: list[BValue], *, limit: int) -> list[tuple[str, int]]:
    """BEP 3 dictionary peers: ``ip`` (IPv4, IPv6 or a DNS name) and ``port``; bad entries skipped."""
    peers: list[tuple[str, int]] = []
    for entry in entries:
        if len(peers) >= limit:
            break
        if not isinstance(entry, dict):
            continue
        ip, port = entry.get(b"ip"), entry.get(b"port")
        if not isinstance(ip, bytes) or not isinstance(port, int) or not 0 < port <= 0xFFFF:
            continue
        try:
            host = _normalize_ip(ipaddress.ip_address(ip.decode("ascii")))
        except (UnicodeDecodeError, ValueError):
            if not _HOSTNAME.match(ip):
                continue
            host = ip.decode("ascii").lower()
        peers.append((host, port))
    return peers


_normalize_ip = compact.normalize_host


def _external_ip(value: BValue | None) -> str | None:
    if isinstance(value, bytes) and len(value) == 4:
        return str(ipaddress.IPv4Address(value))
    if isinstance(value, bytes) and len(value) == 16:
        return _normalize_ip(ipaddress.IPv6Address(value))
    return None


def _retry_in(value: BValue | None) -> int | None:
    """BEP 31: minutes as an integer (some trackers send it as a string) or ``never``."""
    if isinstance(value, bytes):
        if value.strip().lower() == b"never":
            return RETRY_NEVER
        try:
            value = int(value)
        except ValueError:
            return None
    if isinstance(value, int) and value >= 0:
        return min(value, 366 * 24 * 60) * 60
    return None


def _non_negative(value: BValue | None) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def _text(value: bytes, limit: int = 500) -> str:
    return value[:limit].decode("utf-8", errors="replace")


def _decode_dict(body: bytes, url: str) -> dict[bytes, BValue]:
    if len(body) > MAX_RESPONSE_SIZE:
        raise TrackerError(f"response of {len(body)} bytes is larger than {MAX_RESPONSE_SIZE}", url)
    try:
        # Trackers do not always sort their keys; tolerate that, nothing else.
        value = decode(body, strict=False, max_depth=16, max_size=MAX_RESPONSE_SIZE)
    except BencodeError as exc:
        raise TrackerError(f"response is not valid bencode: {exc}", url) from None
    if not isinstance(value, dict):
        raise TrackerError("response is not a bencoded dictionary", url)
    return value


# --------------------------------------------------------------------------- HTTP scrape


def scrape_url(announce: str, *, any_scheme: bool = False) -> str | None:
    """BEP 48: the scrape URL is the announce URL whose last path component ``announce`` (or
    ``announce.php``-style ``announce...``) becomes ``scrape``; otherwise scrape is unsupported.
    An HTTP(S) URL only, unless ``any_scheme`` (the rule applied to a ``udp://`` URL too, as
    Transmission shows its trackers). None too for a URL that cannot be parsed."""
    try:
        parts = urlsplit(announce)
    except ValueError:  # e.g. "http://[::1/announce": urllib's "Invalid IPv6 URL"
        return None
    if not any_scheme and parts.scheme.lower() not in ("http", "https"):
        return None
    head, _, last = parts.path.rpartition("/")
    if not last.startswith("announce"):
        return None
    path = f"{head}/scrape{last[len('announce') :]}"
    return parts._replace(path=path).geturl()


def scrape_url_for(announce: str, info_hashes: Sequence[bytes]) -> str:
    """The GET URL scraping ``info_hashes`` at the tracker of ``announce``."""
    base = scrape_url(announce)
    if base is None:
        try:
            urlsplit(announce)
        except ValueError:
            raise TrackerError("malformed tracker URL", announce) from None
        raise TrackerError("tracker does not support scrape (no 'announce' in its path)", announce)
    return _append_query(base, (("info_hash", quote_from_bytes(h, safe="")) for h in info_hashes))


def parse_scrape_response(body: bytes, url: str = "") -> ScrapeResponse:
    """Parse an HTTP scrape answer; ``TrackerError`` on a failure reason or malformed body."""
    top = _decode_dict(body, url)
    failure = top.get(b"failure reason")
    if isinstance(failure, bytes):
        retry_in = _retry_in(top.get(b"retry in"))
        raise TrackerRefused(_text(failure) or "tracker refused the scrape", url, retry_in)
    files = top.get(b"files")
    if not isinstance(files, dict):
        raise TrackerError("scrape response has no 'files' dictionary", url)
    result: dict[bytes, ScrapeStats] = {}
    for info_hash, stats in files.items():
        if len(info_hash) != 20 or not isinstance(stats, dict):
            continue
        result[info_hash] = ScrapeStats(
            complete=_non_negative(stats.get(b"complete")) or 0,
            downloaded=_non_negative(stats.get(b"downloaded")) or 0,
            incomplete=_non_negative(stats.get(b"incomplete")) or 0,
        )
    return ScrapeResponse(result)


# --------------------------------------------------------------------------- UDP (BEP 15)


def udp_connect_request(transaction_id: int) -> bytes:
    """A UDP tracker connect request (BEP 15)."""
    return struct.pack(">QII", UDP_PROTOCOL_ID, UDP_ACTION_CONNECT, transaction_id & 0xFFFFFFFF)


def udp_announce_request(
    connection_id: int, transaction_id: int, request: AnnounceRequest, url_data: bytes = b""
) -> bytes:
    """98-byte BEP 15 announce, then BEP 41 URLData options carrying ``url_data`` (path?query)."""
    packet = struct.pack(
        ">QII20s20sQQQIIIiH",
        connection_id & 0xFFFFFFFFFFFFFFFF,
        UDP_ACTION_ANNOUNCE,
        transaction_id & 0xFFFFFFFF,
        request.info_hash,
        request.peer_id,
        _u64(request.downloaded),
        _u64(request.left),
        _u64(request.uploaded),
        UDP_EVENTS[request.event],
        _udp_ip(request.ip),  # 0: the packet's source address
        request.key & 0xFFFFFFFF,
        min(request.numwant, 0x7FFFFFFF) if request.numwant >= 0 else -1,  # -1: tracker's default
        request.port,
    )
    options = bytearray()
    for start in range(0, len(url_data), 255):
        chunk = url_data[start : start + 255]
        options += bytes((UDP_OPTION_URL_DATA, len(chunk))) + chunk
    return packet + bytes(options)


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def announce_ip_refusal(ip: object) -> str | None:
    """Why ``ip`` cannot be the address announced to trackers (None: it can): "" (none), an IP
    address, or a host name (BEP 3 allows one; UDP trackers are told none then)."""
    if not isinstance(ip, str):
        return "must be an IP address or a host name (\"\": none)"
    if not ip:
        return None
    try:
        ipaddress.ip_address(ip)
        return None
    except ValueError:
        pass
    labels = ip.removesuffix(".").split(".")
    if len(ip) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        return f"{ip[:80]!r} is neither an IP address nor a host name"
    return None


def _udp_ip(ip: str) -> int:
    """BEP 15's IP address field for ``ip``: an IPv4 address, as a number; 0 for none, or for
    what the field cannot hold (an IPv6 address, a host name: the tracker takes the source's)."""
    try:
        return int(ipaddress.IPv4Address(ip)) if ip else 0
    except ValueError:
        return 0


def _u64(value: int) -> int:
    return min(max(0, value), 0xFFFFFFFFFFFFFFFF)


def udp_url_data(url: str) -> bytes:
    """The BEP 41 URLData of a ``udp://`` URL: its path and query (empty for a bare host)."""
    parts = urlsplit(url)
    data = parts.path + (f"?{parts.query}" if parts.query else "")
    return b"" if data in ("", "/") else data.encode("utf-8")


def parse_udp_options(options: bytes) -> bytes:
    """The tracker's side of BEP 41: the URLData an announce's options block carries (what
    ``udp_url_data`` made of the URL), its chunks joined."""
    url_data = bytearray()
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == UDP_OPTION_END:
            break
        if kind == UDP_OPTION_NOP:
            i += 1
            continue
        if i + 1 >= len(options):
            break
        length = options[i + 1]
        if kind == UDP_OPTION_URL_DATA:
            url_data += options[i + 2 : i + 2 + length]
        i += 2 + length
    return bytes(url_data)


def udp_scrape_request(connection_id: int, transaction_id: int, info_hashes: Sequence[bytes]) -> bytes:
    """A UDP tracker scrape request for up to 74 info-hashes (BEP 15)."""
    if not 0 < len(info_hashes) <= UDP_MAX_SCRAPE_HASHES:
        raise ValueError(f"a UDP scrape takes 1..{UDP_MAX_SCRAPE_HASHES} info-hashes")
    header = struct.pack(">QII", connection_id & 0xFFFFFFFFFFFFFFFF, UDP_ACTION_SCRAPE, transaction_id)
    return header + b"".join(info_hashes)


def _udp_header(data: bytes, transaction_id: int, action: int, url: str) -> bool:
    """True when ``data`` is a reply of ``action`` to ``transaction_id``; False when the datagram
    is not ours (ignore it); TrackerError for an error reply or a reply of the wrong kind."""
    if len(data) < 8:
        return False
    got_action, got_tid = struct.unpack_from(">II", data)
    if got_tid != transaction_id & 0xFFFFFFFF:
        return False
    if got_action == UDP_ACTION_ERROR:
        message = _text(data[8:]).strip("\x00 ") or "tracker error"
        raise TrackerRefused(message, url)
    if got_action != action:
        raise TrackerError(f"UDP reply has action {got_action}, expected {action}", url)
    return True


def parse_udp_connect(data: bytes, transaction_id: int, url: str = "") -> int | None:
    """The connection id of a connect reply, or None when the datagram is not our reply."""
    if not _udp_header(data, transaction_id, UDP_ACTION_CONNECT, url):
        return None
    if len(data) < 16:
        raise TrackerError(f"UDP connect reply of {len(data)} bytes is truncated", url)
    (connection_id,) = struct.unpack_from(">Q", data, 8)
    return int(connection_id)


def parse_udp_announce(
    data: bytes, transaction_id: int, *, ipv6: bool = False, url: str = ""
) -> AnnounceResponse | None:
    """An announce reply; peers are 6-byte (IPv4) or, when we talk to the tracker over IPv6,
    18-byte entries (BEP 15). A bare header is how opentracker says it does not know the hash."""
    if not _udp_header(data, transaction_id, UDP_ACTION_ANNOUNCE, url):
        return None
    if len(data) < 20:
        raise TrackerError("tracker does not know this torrent (UDP announce reply has no body)", url)
    interval, leechers, seeders = struct.unpack_from(">III", data, 8)
    return AnnounceResponse(
        interval=interval,
        peers=parse_compact_peers(data[20:], ipv6=ipv6, limit=MAX_REPLY_PEERS),
        seeders=seeders,
        leechers=leechers,
    )


def parse_udp_scrape(
    data: bytes, transaction_id: int, info_hashes: Sequence[bytes], url: str = ""
) -> ScrapeResponse | None:
    """A scrape reply: 12 bytes (seeders, completed, leechers) per requested hash, in order."""
    if not _udp_header(data, transaction_id, UDP_ACTION_SCRAPE, url):
        return None
    body = data[8:]
    if len(body) < 12 * len(info_hashes):
        raise TrackerError(
            f"UDP scrape reply has {len(body) // 12} entries for {len(info_hashes)} info-hashes", url
        )
    files: dict[bytes, ScrapeStats] = {}
    for i, info_hash in enumerate(info_hashes):
        seeders, completed, leechers = struct.unpack_from(">III", body, 12 * i)
        files[info_hash] = ScrapeStats(complete=seeders, downloaded=completed, incomplete=leechers)
    return ScrapeResponse(files)
