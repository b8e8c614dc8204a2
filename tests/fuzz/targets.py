"""One fuzz target per parser of untrusted input: ``TARGETS[name](data)`` runs the parser on
``data`` and may raise only the engine's typed errors (``TorrentEngineError``); anything else is
a bug. The corpus of each target lives in ``tests/testdata/fuzz/<name>/``."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from pathlib import Path

from torrent_engine.formats.bencode import decode
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.net.dht import krpc
from torrent_engine.net.httpclient import ResponseReader
from torrent_engine.net.peer.extensions import ExtensionHandshake, PexMessage, decode_metadata_message
from torrent_engine.net.peer.messages import Handshake, make_reserved
from torrent_engine.net.peer.mse import CRYPTO_PLAINTEXT, CRYPTO_RC4, MseInitiator, MseResponder
from torrent_engine.net.peer.wire import PeerWire
from torrent_engine.net.tracker.messages import (
    parse_announce_response,
    parse_scrape_response,
    parse_udp_announce,
    parse_udp_connect,
    parse_udp_scrape,
)
from torrent_engine.storage.resume import decode_resume

CORPUS = Path(__file__).resolve().parents[1] / "testdata" / "fuzz"
INFO_HASH = bytes(range(20))
NUM_PIECES = 37
HANDSHAKE = Handshake(make_reserved(), INFO_HASH, b"-LT2010-xxxxxxxxxxxx").to_bytes()


def _piece_size(i: int) -> int:
    return 1000 if i == NUM_PIECES - 1 else 65536


def bencode_target(data: bytes) -> None:
    decode(data)


def metainfo_target(data: bytes) -> None:
    t = Torrent.from_bytes(data)
    t.to_bytes()  # what was accepted can be written back


def magnet_target(data: bytes) -> None:
    m = parse_magnet(data.decode("utf-8", "surrogateescape"))
    again = parse_magnet(m.to_uri())  # what was accepted can be written and read back
    assert again.info_hash == m.info_hash


def wire_target(data: bytes) -> None:
    """The bytes after a valid handshake; ``data`` that starts like a handshake is taken whole."""
    wire = PeerWire(info_hash=INFO_HASH, peer_id=b"-TE0100-yyyyyyyyyyyy", num_pieces=NUM_PIECES,
                    piece_size=_piece_size)
    wire.receive_data(data if data[:20] == HANDSHAKE[:20] else HANDSHAKE + data)
    for _ in wire.events():
        pass


def extension_target(data: bytes) -> None:
    """The first byte picks the message: 0 handshake, 1 ut_metadata, 2 ut_pex."""
    kind, payload = (data[0] % 3, data[1:]) if data else (0, b"")
    if kind == 0:
        ExtensionHandshake.decode(payload)
    elif kind == 1:
        decode_metadata_message(payload)
    else:
        PexMessage.decode(payload)


def krpc_target(data: bytes) -> None:
    msg = krpc.decode_message(data)
    krpc.encode_message(msg)  # what was accepted can be answered / re-encoded


def tracker_target(data: bytes) -> None:
    """The first byte picks the reply: 0 HTTP announce, 1 HTTP scrape, 2 UDP connect,
    3 UDP announce (v4), 4 UDP announce (v6), 5 UDP scrape of 2 hashes."""
    kind, body = (data[0] % 6, data[1:]) if data else (0, b"")
    tid = struct.unpack(">I", body[4:8])[0] if len(body) >= 8 else 0
    if kind == 0:
        parse_announce_response(body)
    elif kind == 1:
        parse_scrape_response(body)
    elif kind == 2:
        parse_udp_connect(body, tid)
    elif kind in (3, 4):
        parse_udp_announce(body, tid, ipv6=kind == 4)
    else:
        parse_udp_scrape(body, tid, [bytes(20), bytes([1]) * 20])


def http_target(data: bytes) -> None:
    reader = ResponseReader(max_body=4096)
    for i in range(0, len(data), 7):  # in small pieces: the reader keeps state between feeds
        reader.feed(data[i:i + 7])
    reader.feed_eof()
    assert reader.response is not None and len(reader.response.body) <= 4096


def resume_target(data: bytes) -> None:
    decode_resume(data)


def mse_target(data: bytes) -> None:
    """The first byte picks the side: even responder, odd initiator."""
    side, stream = (data[0] % 2, data[1:]) if data else (0, b"")
    rand = random.Random(len(data)).randbytes
    party: MseResponder | MseInitiator
    if side == 0:
        party = MseResponder([INFO_HASH], crypto_allowed=CRYPTO_RC4 | CRYPTO_PLAINTEXT, randbytes=rand)
    else:
        party = MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4 | CRYPTO_PLAINTEXT, randbytes=rand)
        party.start()
    for i in range(0, len(stream), 200):
        party.receive_data(stream[i:i + 200])


TARGETS: dict[str, Callable[[bytes], None]] = {
    "bencode": bencode_target,
    "metainfo": metainfo_target,
    "magnet": magnet_target,
    "wire": wire_target,
    "extension": extension_target,
    "krpc": krpc_target,
    "tracker": tracker_target,
    "http": http_target,
    "resume": resume_target,
    "mse": mse_target,
}
