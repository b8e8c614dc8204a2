"""Magnet URIs (BEP 9, BEP 52 ``btmh``, BEP 53 ``so``, BEP 46 ``xs=urn:btpk``): parse and build.

Pure functions over strings. A URI that cannot be used raises :class:`MagnetError` naming the
parameter at fault; unknown parameters are ignored, as other clients do.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, unquote_plus

from ..errors import MagnetError
from .endpoint import EndpointError, split_host_port
from .infohash import wire_info_hash

__all__ = ["MAX_SELECT_RANGES", "Magnet", "MagnetError", "MutableMagnet", "is_mutable_magnet", "magnet_again",
           "parse_magnet", "parse_mutable_magnet"]

BTIH_PREFIX = "urn:btih:"  # BEP 9
BTMH_PREFIX = "urn:btmh:"  # BEP 52: a multihash, 0x12 0x20 = SHA-256, 32 bytes
SHA256_MULTIHASH = bytes([0x12, 0x20])  # BEP 52
MAX_SELECT_RANGES = 10_000  # bound on BEP 53 ``so`` items from an untrusted URI
MAX_URI_LENGTH = 64 * 1024
BTPK_PREFIX = "urn:btpk:"  # BEP 46: an ed25519 public key, 64 hex digits, in ``xs``
MAX_SALT_SIZE = 64  # BEP 44: a salt is at most 64 bytes

_KEY = re.compile(r"^(xt|dn|tr|ws|xl|x\.pe|so)(?:\.\d+)?$")


@dataclass(frozen=True)
class Magnet:
    """The parts of a magnet link a client uses."""

    info_hash_v1: bytes | None = None  # 20-byte SHA-1 (btih)
    info_hash_v2: bytes | None = None  # 32-byte SHA-256 (btmh)
    display_name: str | None = None  # dn
    trackers: tuple[str, ...] = ()  # tr, in order
    web_seeds: tuple[str, ...] = ()  # ws (BEP 19)
    peers: tuple[tuple[str, int], ...] = ()  # x.pe: host, port
    exact_length: int | None = None  # xl
    select_only: tuple[tuple[int, int], ...] = ()  # BEP 53 so: inclusive file index ranges

    def __post_init__(self) -> None:
        if self.info_hash_v1 is None and self.info_hash_v2 is None:
            raise MagnetError("a magnet needs a btih or btmh info-hash", "xt")
        if self.info_hash_v1 is not None and len(self.info_hash_v1) != 20:
            raise MagnetError("btih info-hash must be 20 bytes", "xt")
        if self.info_hash_v2 is not None and len(self.info_hash_v2) != 32:
            raise MagnetError("btmh info-hash must be 32 bytes", "xt")

    @property
    def info_hash(self) -> bytes:
        """The 20 bytes used on the wire: v1 hash if present, else v2 truncated (BEP 52)."""
        return wire_info_hash(self.info_hash_v1, self.info_hash_v2)

    def selected(self, index: int) -> bool:
        """Whether file ``index`` is selected (every file is when ``so`` is absent)."""
        if not self.select_only:
            return True
        return any(lo <= index <= hi for lo, hi in self.select_only)

    def to_uri(self) -> str:
        """The link as a ``magnet:`` URI."""
        parts: list[str] = []
        if self.info_hash_v1 is not None:
            parts.append("xt=" + BTIH_PREFIX + self.info_hash_v1.hex())
        if self.info_hash_v2 is not None:
            parts.append("xt=" + BTMH_PREFIX + (SHA256_MULTIHASH + self.info_hash_v2).hex())
        if self.display_name is not None:
            parts.append("dn=" + quote(self.display_name, safe=""))
        if self.exact_length is not None:
            parts.append(f"xl={self.exact_length}")
        parts.extend("tr=" + quote(t, safe="") for t in self.trackers)
        parts.extend("ws=" + quote(w, safe="") for w in self.web_seeds)
        for host, port in self.peers:
            shown = f"[{host}]" if ":" in host else host
            parts.append("x.pe=" + quote(f"{shown}:{port}", safe=":[]"))
        if self.select_only:
            items = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.select_only]
            parts.append("so=" + ",".join(items))
        return "magnet:?" + "&".join(parts)


def _is_decimal(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts characters such as ``²`` that ``int``
    refuses."""
    return text.isascii() and text.isdigit()


def _hash_v1(value: str) -> bytes:
    if len(value) == 40:
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise MagnetError(f"btih is not 40 hex digits: {value!r}", "xt") from None
    if len(value) == 32:
        try:
            return base64.b32decode(value.upper())
        except ValueError:  # binascii.Error, or non-ASCII text
            raise MagnetError(f"btih is not 32 base32 characters: {value!r}", "xt") from None
    raise MagnetError(f"btih must be 40 hex or 32 base32 characters, got {len(value)}", "xt")


def _hash_v2(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise MagnetError(f"btmh is not hex: {value!r}", "xt") from None
    if raw[:2] != SHA256_MULTIHASH or len(raw) != 34:
        raise MagnetError("btmh must be a SHA-256 multihash (1220 + 64 hex digits)", "xt")
    return raw[2:]


def _peer(value: str) -> tuple[str, int]:
    try:
        return split_host_port(value)
    except EndpointError as exc:
        raise MagnetError(f"peer {value[:80]!r}: {exc}", "x.pe") from None


def _select_only(value: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        lo_s, dash, hi_s = item.partition("-")
        if not _is_decimal(lo_s) or (dash and not _is_decimal(hi_s)):
            raise MagnetError(f"bad file index or range {item!r}", "so")
        lo = int(lo_s)
        hi = int(hi_s) if dash else lo
        if hi < lo:
            raise MagnetError(f"range {item!r} runs backwards", "so")
        out.append((lo, hi))
        if len(out) > MAX_SELECT_RANGES:
            raise MagnetError(f"more than {MAX_SELECT_RANGES} ranges", "so")
    return out


def parse_magnet(uri: str) -> Magnet:
    """Parse a ``magnet:?`` URI. Several ``xt`` are allowed (a hybrid has btih and btmh)."""
    if not isinstance(uri, str):
        raise MagnetError("a magnet URI must be a string")
    if len(uri) > MAX_URI_LENGTH:
        raise MagnetError(f"URI longer than {MAX_URI_LENGTH} characters")
    try:
        uri.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: it could never be written out again
        raise MagnetError(f"not valid Unicode at character {exc.start}") from None
    uri = uri.strip()
    if uri[:8].lower() != "magnet:?":
        raise MagnetError("not a magnet URI (must start with 'magnet:?')")
    v1: bytes | None = None
    v2: bytes | None = None
    name: str | None = None
    length: int | None = None
    trackers: list[str] = []
    seeds: list[str] = []
    peers: list[tuple[str, int]] = []
    select: list[tuple[int, int]] = []
    for pair in uri[8:].split("&"):
        if not pair:
            continue
        key, sep, raw = pair.partition("=")
        m = _KEY.match(key.lower())
        if m is None:
            continue  # unknown parameters are ignored (BEP 9 leaves room for extensions)
        param = m.group(1)
        if not sep:
            raise MagnetError("parameter has no value", param)
        if param == "xt":
            value = unquote(raw)
            low = value.lower()
            if low.startswith(BTIH_PREFIX):
                h = _hash_v1(value[len(BTIH_PREFIX) :])
                if v1 is not None and v1 != h:
                    raise MagnetError("two different btih info-hashes", "xt")
                v1 = h
            elif low.startswith(BTMH_PREFIX):
                h = _hash_v2(value[len(BTMH_PREFIX) :])
                if v2 is not None and v2 != h:
                    raise MagnetError("two different btmh info-hashes", "xt")
                v2 = h
            # other urn kinds (ed2k, sha1 ...) belong to other networks: ignored
        elif param == "dn":
            name = unquote_plus(raw)
        elif param == "tr":
            url = unquote(raw).strip()
            if url and url not in trackers:
                trackers.append(url)
        elif param == "ws":
            url = unquote(raw).strip()
            if url and url not in seeds:
                seeds.append(url)
        elif param == "xl":
            value = unquote(raw)
            if not _is_decimal(value) or len(value) > 19:
                raise MagnetError(f"not a byte count: {value!r}", "xl")
            length = int(value)
        elif param == "x.pe":
            peer = _peer(unquote(raw))
            if peer not in peers:
                peers.append(peer)
        elif param == "so":
            select.extend(_select_only(unquote(raw)))
            if len(select) > MAX_SELECT_RANGES:
                raise MagnetError(f"more than {MAX_SELECT_RANGES} ranges", "so")
    if v1 is None and v2 is None:
        if is_mutable_magnet(uri):
            raise MagnetError("a BEP 46 mutable torrent link (xs=urn:btpk) names no info-hash: it is "
                              "resolved over the DHT first", "xt")
        raise MagnetError("no urn:btih or urn:btmh exact topic", "xt")
    return Magnet(
        info_hash_v1=v1,
        info_hash_v2=v2,
        display_name=name,
        trackers=tuple(trackers),
        web_seeds=tuple(seeds),
        peers=tuple(peers),
        exact_length=length,
        select_only=tuple(select),
    )


@dataclass(frozen=True)
class MutableMagnet:
    """A BEP 46 link, ``magnet:?xs=urn:btpk:<public key hex>&s=<salt hex>``: the publisher's
    ed25519 key and the salt of the BEP 44 mutable item whose value ``{"ih": ...}`` names the
    torrent's current version."""

    public_key: bytes  # 32 bytes (BEP 44: ed25519)
    salt: bytes = b""  # at most 64 bytes (BEP 44)
    display_name: str | None = None  # dn
    trackers: tuple[str, ...] = ()  # tr
    peers: tuple[tuple[str, int], ...] = ()  # x.pe

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise MagnetError("btpk public key must be 32 bytes", "xs")
        if len(self.salt) > MAX_SALT_SIZE:
            raise MagnetError(f"salt longer than {MAX_SALT_SIZE} bytes (BEP 44)", "s")

    def to_uri(self) -> str:
        """The link as a ``magnet:`` URI (key and salt in hex, as BEP 46 writes them)."""
        parts = ["xs=" + BTPK_PREFIX + self.public_key.hex()]
        if self.salt:
            parts.append("s=" + self.salt.hex())
        if self.display_name is not None:
            parts.append("dn=" + quote(self.display_name, safe=""))
        parts.extend("tr=" + quote(t, safe="") for t in self.trackers)
        for host, port in self.peers:
            shown = f"[{host}]" if ":" in host else host
            parts.append("x.pe=" + quote(f"{shown}:{port}", safe=":[]"))
        return "magnet:?" + "&".join(parts)

    def magnet_for(self, info_hash: bytes) -> Magnet:
        """The plain magnet of the version whose info-hash is ``info_hash`` (name, trackers and
        peers kept)."""
        return Magnet(info_hash_v1=info_hash, display_name=self.display_name, trackers=self.trackers,
                      peers=self.peers)


def _pairs(uri: str) -> list[tuple[str, str]]:
    """``(lower-case key, raw value)`` of each ``key=value`` of a magnet's query."""
    out = []
    for pair in uri[8:].split("&"):
        key, sep, raw = pair.partition("=")
        if pair and sep:
            out.append((key.lower(), raw))
    return out


def is_mutable_magnet(uri: str) -> bool:
    """Whether ``uri`` is a magnet link with a BEP 46 ``xs=urn:btpk:`` and no info-hash."""
    text = uri.strip()
    if text[:8].lower() != "magnet:?":
        return False
    keys = [(k, unquote(v).lower()) for k, v in _pairs(text)]
    has_pk = any(k == "xs" and v.startswith(BTPK_PREFIX) for k, v in keys)
    has_ih = any(k.split(".")[0] == "xt" and v.startswith((BTIH_PREFIX, BTMH_PREFIX)) for k, v in keys)
    return has_pk and not has_ih


def _hex_field(value: str, param: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MagnetError(f"{what} is not hex: {value[:140]!r}", param) from None


def parse_mutable_magnet(uri: str) -> MutableMagnet:
    """Parse a BEP 46 link ``magnet:?xs=urn:btpk:<64 hex digits>&s=<salt in hex>`` (``s`` is
    optional; ``dn``, ``tr`` and ``x.pe`` are kept as in any magnet)."""
    if not isinstance(uri, str):
        raise MagnetError("a magnet URI must be a string")
    if len(uri) > MAX_URI_LENGTH:
        raise MagnetError(f"URI longer than {MAX_URI_LENGTH} characters")
    uri = uri.strip()
    if uri[:8].lower() != "magnet:?":
        raise MagnetError("not a magnet URI (must start with 'magnet:?')")
    key: bytes | None = None
    salt: bytes | None = None
    name: str | None = None
    trackers: list[str] = []
    peers: list[tuple[str, int]] = []
    for param, raw in _pairs(uri):
        if param == "xs":
            value = unquote(raw)
            if not value.lower().startswith(BTPK_PREFIX):
                continue  # another exact source (a URL): not ours to use
            text = value[len(BTPK_PREFIX):]
            if len(text) != 64:
                raise MagnetError(f"btpk public key must be 64 hex digits, got {len(text)}", "xs")
            found = _hex_field(text, "xs", "btpk public key")
            if key is not None and key != found:
                raise MagnetError("two different btpk public keys", "xs")
            key = found
        elif param == "s":
            if salt is not None:
                raise MagnetError("more than one salt", "s")
            salt = _hex_field(unquote(raw), "s", "salt")
        elif param == "dn":
            name = unquote_plus(raw)
        elif param.split(".")[0] == "tr" and _KEY.match(param):
            url = unquote(raw).strip()
            if url and url not in trackers:
                trackers.append(url)
        elif param.split(".")[0] == "x" and _KEY.match(param):
            peer = _peer(unquote(raw))
            if peer not in peers:
                peers.append(peer)
    if key is None:
        raise MagnetError("no xs=urn:btpk: public key (BEP 46)", "xs")
    return MutableMagnet(public_key=key, salt=salt or b"", display_name=name, trackers=tuple(trackers),
                         peers=tuple(peers))


def magnet_again(uri: str, info_hash: bytes) -> Magnet:
    """The magnet a job added from ``uri`` fetches its metadata by again: ``uri`` itself, or for
    a BEP 46 link the version it had (``info_hash``)."""
    if is_mutable_magnet(uri):
        return parse_mutable_magnet(uri).magnet_for(info_hash)
    return parse_magnet(uri)
