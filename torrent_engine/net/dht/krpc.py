"""KRPC (BEP 5) messages as typed values, and their bencoded form: a sans-I/O codec.

``decode_message(packet)`` turns one UDP payload into a :class:`Query` subclass, a
:class:`Response` or an :class:`Error`, or raises :class:`KrpcDecodeError` (a ``DHTError``)
for anything malformed or oversized. ``encode_message(msg)`` is the inverse. Unknown keys are
ignored, as BEP 5 asks; unknown query methods decode to :class:`UnknownQuery`.
Extensions covered: BEP 32 (nodes6, want), BEP 33 (scrape, noseed, seed, BFsd, BFpe),
BEP 42 (ip), BEP 43 (ro), BEP 44 (get/put), BEP 51 (sample_infohashes).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypedDict

from ...errors import BencodeError, DHTError
from ...formats import compact
from ...formats.bencode import BValue, decode, encode

__all__ = [
    "AnnouncePeer",
    "Error",
    "FindNode",
    "GetItem",
    "GetPeers",
    "KrpcDecodeError",
    "MAX_PACKET_SIZE",
    "Message",
    "NodeInfo",
    "Ping",
    "PutItem",
    "Query",
    "Response",
    "SampleInfohashes",
    "UnknownQuery",
    "decode_message",
    "decode_compact_nodes",
    "decode_compact_peer",
    "encode_compact_nodes",
    "encode_compact_peer",
    "encode_message",
]

MAX_PACKET_SIZE = 1500  # DESIGN §8: larger KRPC packets are dropped unread
NODE_ID_LEN = 20  # BEP 5
COMPACT_NODE_V4 = 26  # BEP 5: 20-byte id + 4-byte IP + 2-byte port
COMPACT_NODE_V6 = 38  # BEP 32: 20-byte id + 16-byte IP + 2-byte port
MAX_TID_LEN = 32  # libtorrent sends 2..4 bytes; anything far longer is not a real node
BLOOM_SIZE = 256  # BEP 33

# BEP 5 error codes (+ BEP 44's).
ERROR_GENERIC = 201
ERROR_SERVER = 202
ERROR_PROTOCOL = 203
ERROR_METHOD_UNKNOWN = 204
ERROR_MESSAGE_TOO_BIG = 205  # BEP 44
ERROR_INVALID_SIGNATURE = 206  # BEP 44
ERROR_SALT_TOO_BIG = 207  # BEP 44
ERROR_CAS_MISMATCH = 301  # BEP 44
ERROR_SEQ_TOO_LOW = 302  # BEP 44


class KrpcDecodeError(DHTError):
    """A packet that is not valid KRPC. ``tid`` is its transaction id when one could be read
    (so a query can still be answered with error 203)."""

    def __init__(self, message: str, tid: bytes | None = None, is_query: bool = False) -> None:
        super().__init__(message)
        self.reason = message
        self.tid = tid
        self.is_query = is_query


Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A contact: node id and UDP address."""

    node_id: bytes
    host: str
    port: int

    @property
    def address(self) -> Address:
        """The node's ``(host, port)``."""
        return (self.host, self.port)


# ---------------------------------------------------------------- compact forms (BEP 5, 23, 32)


def encode_compact_peer(host: str, port: int) -> bytes:
    """6 bytes (IPv4) or 18 bytes (IPv6): address then big-endian port."""
    return compact.encode_peer(host, port)


def decode_compact_peer(data: bytes) -> Address:
    """One compact address as it is (port 0 kept: the caller decides; IPv4-mapped as IPv4)."""
    if len(data) not in (compact.PEER_V4_LEN, compact.PEER_V6_LEN):
        raise KrpcDecodeError(f"compact peer of {len(data)} bytes")
    ip = ipaddress.ip_address(data[:-2])
    return (compact.normalize_host(ip), int.from_bytes(data[-2:], "big"))


def encode_compact_nodes(nodes: Iterable[NodeInfo]) -> bytes:
    """``nodes`` in compact form (BEP 5: 26 bytes per IPv4 node; BEP 32: 38 per IPv6 node)."""
    return b"".join(n.node_id + encode_compact_peer(n.host, n.port) for n in nodes)


def decode_compact_nodes(data: bytes, v6: bool = False) -> list[NodeInfo]:
    """Decode a ``nodes`` (26-byte entries) or ``nodes6`` (38-byte entries) string by the rules
    of :mod:`torrent_engine.formats.compact` (port 0 skipped, IPv4-mapped as IPv4)."""
    size = COMPACT_NODE_V6 if v6 else COMPACT_NODE_V4
    if len(data) % size:
        raise KrpcDecodeError(f"{'nodes6' if v6 else 'nodes'} length {len(data)} is not a multiple of {size}")
    return [NodeInfo(node_id, host, port) for node_id, host, port in compact.decode_nodes(data, ipv6=v6)]


# ---------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """Fields every KRPC message has: transaction id, client version, the BEP 42 ``ip``."""

    tid: bytes
    version: bytes | None = None  # "v": client version
    ip: Address | None = None  # BEP 42 "ip": the receiver's address as the sender sees it


@dataclass(frozen=True, slots=True, kw_only=True)
class Query(Message):
    """A KRPC query from ``node_id``; ``read_only`` is the BEP 43 flag."""

    node_id: bytes
    read_only: bool = False  # BEP 43 "ro"
    method: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping(Query):
    """``ping`` (BEP 5)."""

    method: bytes = b"ping"


@dataclass(frozen=True, slots=True, kw_only=True)
class FindNode(Query):
    """``find_node`` (BEP 5): the nodes closest to ``target``."""

    method: bytes = b"find_node"
    target: bytes
    want: tuple[bytes, ...] = ()  # BEP 32: b"n4", b"n6"


@dataclass(frozen=True, slots=True, kw_only=True)
class GetPeers(Query):
    """``get_peers`` (BEP 5): peers of ``info_hash``, or the nodes closest to it."""

    method: bytes = b"get_peers"
    info_hash: bytes
    want: tuple[bytes, ...] = ()
    noseed: bool = False  # BEP 33
    scrape: bool = False  # BEP 33


@dataclass(frozen=True, slots=True, kw_only=True)
class AnnouncePeer(Query):
    """``announce_peer`` (BEP 5): we have ``info_hash`` on ``port`` (with a token from ``get_peers``)."""

    method: bytes = b"announce_peer"
    info_hash: bytes
    port: int
    token: bytes
    implied_port: bool = False
    seed: bool = False  # BEP 33


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleInfohashes(Query):
    """``sample_infohashes`` (BEP 51): a sample of the info-hashes a node stores."""

    method: bytes = b"sample_infohashes"  # BEP 51
    target: bytes
    want: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class GetItem(Query):
    """``get`` (BEP 44): the item stored under ``target``."""

    method: bytes = b"get"  # BEP 44
    target: bytes
    seq: int | None = None
    want: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PutItem(Query):
    """``put`` (BEP 44): store an immutable item, or a signed mutable one."""

    method: bytes = b"put"  # BEP 44
    token: bytes
    value: BValue
    key: bytes | None = None  # ed25519 public key (mutable items)
    signature: bytes | None = None
    seq: int | None = None
    salt: bytes = b""
    cas: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownQuery(Query):
    """A method we do not know. BEP 5 forward compatibility: if it carries a ``target`` or
    ``info_hash``, it is answered like find_node."""

    target: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Response(Message):
    """A KRPC response; each query's answer fields are optional."""

    node_id: bytes
    nodes: tuple[NodeInfo, ...] = ()
    nodes6: tuple[NodeInfo, ...] = ()
    values: tuple[Address, ...] = ()
    token: bytes | None = None
    # BEP 33
    bf_seeds: bytes | None = None
    bf_peers: bytes | None = None
    # BEP 51
    samples: tuple[bytes, ...] | None = None
    num: int | None = None
    interval: int | None = None
    # BEP 44
    value: BValue | None = None
    key: bytes | None = None
    signature: bytes | None = None
    seq: int | None = None
    extra: dict[bytes, BValue] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Error(Message):
    """A KRPC error (``code``, ``message``)."""

    code: int
    message: str


# ---------------------------------------------------------------- encoding


def _want(want: tuple[bytes, ...]) -> list[bytes]:
    return list(want)


def encode_message(msg: Message) -> bytes:
    """Bencode ``msg``. Raises DHTError for a value that cannot be sent."""
    top: dict[bytes, object] = {b"t": msg.tid}
    if msg.version is not None:
        top[b"v"] = msg.version
    if msg.ip is not None:
        top[b"ip"] = encode_compact_peer(*msg.ip)
    if isinstance(msg, Query):
        top[b"y"] = b"q"
        top[b"q"] = msg.method
        if msg.read_only:
            top[b"ro"] = 1
        top[b"a"] = _query_args(msg)
    elif isinstance(msg, Response):
        top[b"y"] = b"r"
        top[b"r"] = _response_body(msg)
    elif isinstance(msg, Error):
        top[b"y"] = b"e"
        top[b"e"] = [msg.code, msg.message.encode("utf-8", "replace")]
    else:
        raise DHTError(f"cannot encode {type(msg).__name__}")
    try:
        return encode(top)
    except BencodeError as exc:
        raise DHTError(f"cannot encode {type(msg).__name__}: {exc}") from exc


def _query_args(q: Query) -> dict[bytes, object]:
    a: dict[bytes, object] = {b"id": q.node_id}
    if isinstance(q, FindNode):
        a[b"target"] = q.target
        if q.want:
            a[b"want"] = _want(q.want)
    elif isinstance(q, GetPeers):
        a[b"info_hash"] = q.info_hash
        if q.want:
            a[b"want"] = _want(q.want)
        if q.noseed:
            a[b"noseed"] = 1
        if q.scrape:
            a[b"scrape"] = 1
    elif isinstance(q, AnnouncePeer):
        a[b"info_hash"] = q.info_hash
        a[b"port"] = q.port
        a[b"token"] = q.token
        if q.implied_port:
            a[b"implied_port"] = 1
        if q.seed:
            a[b"seed"] = 1
    elif isinstance(q, SampleInfohashes):
        a[b"target"] = q.target
        if q.want:
            a[b"want"] = _want(q.want)
    elif isinstance(q, GetItem):
        a[b"target"] = q.target
        if q.seq is not None:
            a[b"seq"] = q.seq
        if q.want:
            a[b"want"] = _want(q.want)
    elif isinstance(q, PutItem):
        a[b"token"] = q.token
        a[b"v"] = q.value
        if q.key is not None:
            a[b"k"] = q.key
            a[b"sig"] = q.signature or b""
            a[b"seq"] = q.seq if q.seq is not None else 0
            if q.salt:
                a[b"salt"] = q.salt
            if q.cas is not None:
                a[b"cas"] = q.cas
    elif isinstance(q, UnknownQuery):
        if q.target is not None:
            a[b"target"] = q.target
    return a


def _response_body(r: Response) -> dict[bytes, object]:
    body: dict[bytes, object] = dict(r.extra)
    body[b"id"] = r.node_id
    if r.nodes:
        body[b"nodes"] = encode_compact_nodes(r.nodes)
    if r.nodes6:
        body[b"nodes6"] = encode_compact_nodes(r.nodes6)
    if r.values:
        body[b"values"] = [encode_compact_peer(h, p) for h, p in r.values]
    if r.token is not None:
        body[b"token"] = r.token
    if r.bf_seeds is not None:
        body[b"BFsd"] = r.bf_seeds
    if r.bf_peers is not None:
        body[b"BFpe"] = r.bf_peers
    if r.samples is not None:
        body[b"samples"] = b"".join(r.samples)
    if r.num is not None:
        body[b"num"] = r.num
    if r.interval is not None:
        body[b"interval"] = r.interval
    if r.value is not None:
        body[b"v"] = r.value
    if r.key is not None:
        body[b"k"] = r.key
    if r.signature is not None:
        body[b"sig"] = r.signature
    if r.seq is not None:
        body[b"seq"] = r.seq
    return body


# ---------------------------------------------------------------- decoding


def _bytes(
    d: dict[bytes, BValue], key: bytes, tid: bytes | None, q: bool, *, size: int | None = None
) -> bytes:
    v = d.get(key)
    if not isinstance(v, bytes):
        raise KrpcDecodeError(f"missing or non-string {key.decode()!r}", tid, q)
    if size is not None and len(v) != size:
        raise KrpcDecodeError(f"{key.decode()!r} is {len(v)} bytes, not {size}", tid, q)
    return v


def _opt_int(d: dict[bytes, BValue], key: bytes, tid: bytes | None, q: bool) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, int):
        raise KrpcDecodeError(f"{key.decode()!r} is not an integer", tid, q)
    return v


def _flag(d: dict[bytes, BValue], key: bytes) -> bool:
    v = d.get(key)
    return isinstance(v, int) and v == 1


def _want_list(d: dict[bytes, BValue]) -> tuple[bytes, ...]:
    v = d.get(b"want")
    if not isinstance(v, list):
        return ()
    return tuple(w for w in v if isinstance(w, bytes) and w in (b"n4", b"n6"))


def decode_message(packet: bytes) -> Message:
    """Decode one KRPC packet. Raises :class:`KrpcDecodeError` for anything malformed."""
    if len(packet) > MAX_PACKET_SIZE:
        raise KrpcDecodeError(f"packet of {len(packet)} bytes exceeds {MAX_PACKET_SIZE}")
    try:
        top = decode(packet, strict=False, max_depth=16)
    except BencodeError as exc:
        raise KrpcDecodeError(f"not bencoded: {exc}") from exc
    if not isinstance(top, dict):
        raise KrpcDecodeError("top level is not a dict")
    tid = top.get(b"t")
    if not isinstance(tid, bytes) or len(tid) > MAX_TID_LEN:
        raise KrpcDecodeError("missing or bad transaction id")
    y = top.get(b"y")
    version = top.get(b"v")
    common: _Common = {"tid": tid, "version": version if isinstance(version, bytes) else None}
    ip = top.get(b"ip")
    if isinstance(ip, bytes) and len(ip) in (6, 18):
        common["ip"] = decode_compact_peer(ip)
    if y == b"q":
        return _decode_query(top, common, tid)
    if y == b"r":
        return _decode_response(top, common, tid)
    if y == b"e":
        e = top.get(b"e")
        if not isinstance(e, list) or len(e) < 2 or not isinstance(e[0], int) or not isinstance(e[1], bytes):
            raise KrpcDecodeError("malformed error list", tid)
        return Error(code=e[0], message=e[1].decode("utf-8", "replace"), **common)
    raise KrpcDecodeError(f"unknown message type {y!r}", tid)


class _Common(TypedDict, total=False):
    """The fields every message has, as decoded."""

    tid: bytes
    version: bytes | None
    ip: Address | None


class _QueryCommon(_Common, total=False):
    """The fields every query has, as decoded."""

    node_id: bytes
    read_only: bool


class ResponseFields(TypedDict, total=False):
    """A ``Response``'s own fields (those absent keep their defaults)."""

    nodes: tuple[NodeInfo, ...]
    nodes6: tuple[NodeInfo, ...]
    values: tuple[Address, ...]
    token: bytes | None
    bf_seeds: bytes | None
    bf_peers: bytes | None
    samples: tuple[bytes, ...] | None
    num: int | None
    interval: int | None
    seq: int | None
    value: BValue | None
    key: bytes | None
    signature: bytes | None


def _decode_query(top: dict[bytes, BValue], common: _Common, tid: bytes) -> Query:
    method = top.get(b"q")
    a = top.get(b"a")
    if not isinstance(method, bytes):
        raise KrpcDecodeError("query without method", tid, True)
    if not isinstance(a, dict):
        raise KrpcDecodeError("query without arguments", tid, True)
    node_id = _bytes(a, b"id", tid, True, size=NODE_ID_LEN)
    query: _QueryCommon = {**common, "node_id": node_id, "read_only": _flag(top, b"ro")}
    if method == b"ping":
        return Ping(**query)
    if method == b"find_node":
        return FindNode(target=_bytes(a, b"target", tid, True, size=20), want=_want_list(a), **query)
    if method == b"get_peers":
        return GetPeers(
            info_hash=_bytes(a, b"info_hash", tid, True, size=20),
            want=_want_list(a),
            noseed=_flag(a, b"noseed"),
            scrape=_flag(a, b"scrape"),
            **query,
        )
    if method == b"announce_peer":
        port = _opt_int(a, b"port", tid, True)
        implied = _flag(a, b"implied_port")
        if port is None and not implied:
            raise KrpcDecodeError("announce_peer without port", tid, True)
        port = port or 0
        if not implied and not 0 < port < 65536:
            raise KrpcDecodeError(f"announce_peer port {port} out of range", tid, True)
        return AnnouncePeer(
            info_hash=_bytes(a, b"info_hash", tid, True, size=20),
            port=port if 0 <= port < 65536 else 0,
            token=_bytes(a, b"token", tid, True),
            implied_port=implied,
            seed=_flag(a, b"seed"),
            **query,
        )
    if method == b"sample_infohashes":
        return SampleInfohashes(target=_bytes(a, b"target", tid, True, size=20), want=_want_list(a), **query)
    if method == b"get":
        return GetItem(
            target=_bytes(a, b"target", tid, True, size=20),
            seq=_opt_int(a, b"seq", tid, True),
            want=_want_list(a),
            **query,
        )
    if method == b"put":
        if b"v" not in a:
            raise KrpcDecodeError("put without 'v'", tid, True)
        key = a.get(b"k")
        if key is not None:
            key = _bytes(a, b"k", tid, True, size=32)
            sig = _bytes(a, b"sig", tid, True, size=64)
            seq = _opt_int(a, b"seq", tid, True)
            if seq is None:
                raise KrpcDecodeError("mutable put without 'seq'", tid, True)
            salt = a.get(b"salt", b"")
            if not isinstance(salt, bytes):
                raise KrpcDecodeError("'salt' is not a string", tid, True)
        else:
            sig, seq, salt = None, None, b""
        return PutItem(
            token=_bytes(a, b"token", tid, True),
            value=a[b"v"],
            key=key,
            signature=sig,
            seq=seq,
            salt=salt,
            cas=_opt_int(a, b"cas", tid, True),
            **query,
        )
    target = a.get(b"target", a.get(b"info_hash"))
    return UnknownQuery(
        method=method,
        target=target if isinstance(target, bytes) and len(target) == 20 else None,
        **query,
    )


def _decode_response(top: dict[bytes, BValue], common: _Common, tid: bytes) -> Response:
    r = top.get(b"r")
    if not isinstance(r, dict):
        raise KrpcDecodeError("response without body", tid)
    node_id = _bytes(r, b"id", tid, False, size=NODE_ID_LEN)
    fields: ResponseFields = {}
    try:
        nodes = r.get(b"nodes")
        if isinstance(nodes, bytes):
            fields["nodes"] = tuple(decode_compact_nodes(nodes))
        nodes6 = r.get(b"nodes6")
        if isinstance(nodes6, bytes):
            fields["nodes6"] = tuple(decode_compact_nodes(nodes6, v6=True))
    except KrpcDecodeError as exc:
        raise KrpcDecodeError(exc.reason, tid) from None
    values = r.get(b"values")
    if isinstance(values, list):
        peers = []
        for v in values:
            # Malformed entries are skipped, not fatal: the rest of the list is still useful.
            if isinstance(v, bytes) and len(v) in (compact.PEER_V4_LEN, compact.PEER_V6_LEN):
                peer = compact.decode_peer(v)
                if peer is not None:
                    peers.append(peer)
        fields["values"] = tuple(peers)
    token = r.get(b"token")
    if isinstance(token, bytes):
        fields["token"] = token
    bf_seeds, bf_peers = r.get(b"BFsd"), r.get(b"BFpe")  # BEP 33
    if isinstance(bf_seeds, bytes) and len(bf_seeds) == BLOOM_SIZE:
        fields["bf_seeds"] = bf_seeds
    if isinstance(bf_peers, bytes) and len(bf_peers) == BLOOM_SIZE:
        fields["bf_peers"] = bf_peers
    samples = r.get(b"samples")
    if isinstance(samples, bytes):
        if len(samples) % 20:
            raise KrpcDecodeError("'samples' is not a multiple of 20 bytes", tid)
        fields["samples"] = tuple(samples[i : i + 20] for i in range(0, len(samples), 20))
    num, interval, seq = r.get(b"num"), r.get(b"interval"), r.get(b"seq")
    if isinstance(num, int):
        fields["num"] = num
    if isinstance(interval, int):
        fields["interval"] = interval
    if isinstance(seq, int):
        fields["seq"] = seq
    if b"v" in r:
        fields["value"] = r[b"v"]
    k = r.get(b"k")
    if isinstance(k, bytes) and len(k) == 32:
        fields["key"] = k
    sig = r.get(b"sig")
    if isinstance(sig, bytes) and len(sig) == 64:
        fields["signature"] = sig
    return Response(node_id=node_id, **fields, **common)
