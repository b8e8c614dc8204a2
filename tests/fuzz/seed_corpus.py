"""Writes the starting corpus of every fuzz target into tests/testdata/fuzz/<target>/: valid
inputs of each kind (the mutator starts from them) and the inputs that once found bugs
(``regress-*``). Existing files are left as they are, so found cases are never lost.

    python -m tests.fuzz.seed_corpus
"""

from __future__ import annotations

import struct

from tests.fuzz.targets import CORPUS, HANDSHAKE, INFO_HASH, NUM_PIECES
from tests.unit.torrent_factory import make_torrent
from torrent_engine.formats.bencode import encode
from torrent_engine.net.dht import krpc
from torrent_engine.net.peer.extensions import (
    ExtensionHandshake,
    MetadataData,
    MetadataRequest,
    PexMessage,
    encode_metadata_message,
)
from torrent_engine.net.peer.messages import Bitfield, HashRequest, Have, Piece, Request, Unchoke
from torrent_engine.net.peer.mse import CRYPTO_RC4, MseInitiator
from torrent_engine.storage.resume import FileStamp, ResumeData, encode_resume

H1 = bytes(range(20))


def seeds() -> dict[str, dict[str, bytes]]:
    files = [(("a.txt",), b"a" * 40000), (("sub", "b.bin"), b"b" * 5000)]
    v1 = make_torrent(files, 16384).to_bytes()
    v1_single = make_torrent(files[:1], 16384, single=True).to_bytes()
    v2 = make_torrent(files, 16384, version="v2").to_bytes()
    hybrid = make_torrent(files, 16384, version="hybrid").to_bytes()
    node_id = bytes(range(1, 21))
    nodes = tuple(krpc.NodeInfo(bytes([i]) * 20, f"10.0.0.{i}", 6881) for i in range(1, 9))
    return {
        "bencode": {
            "valid-dict": encode({b"a": [1, b"xy", {b"k": -3}], b"b": b""}),
            "valid-deep": b"l" * 50 + b"e" * 50,
            "bad-leading-zero": b"i03e",
        },
        "metainfo": {"valid-v1.torrent": v1, "valid-v1-single.torrent": v1_single,
                     "valid-v2.torrent": v2, "valid-hybrid.torrent": hybrid},
        "magnet": {
            "valid-v1": f"magnet:?xt=urn:btih:{H1.hex()}&dn=name&tr=http%3A%2F%2F127.0.0.1%2Fa".encode(),
            "valid-v2": f"magnet:?xt=urn:btmh:1220{bytes(32).hex()}&so=0-2,4&x.pe=127.0.0.1:6881".encode(),
            # found by the magnet fuzz test (595ca47): non-ASCII base32 / digits raised ValueError
            "regress-595ca47-nonascii-base32": ("magnet:?xt=urn:btih:" + "A" * 31 + "\x80").encode(),
            "regress-595ca47-superscript-xl": f"magnet:?xt=urn:btih:{H1.hex()}&xl=\u00b2".encode(),
            "regress-595ca47-arabic-digit-so": f"magnet:?xt=urn:btih:{H1.hex()}&so=1-\u0663".encode(),
            "regress-595ca47-superscript-port":
                f"magnet:?xt=urn:btih:{H1.hex()}&x.pe=1.2.3.4:\u00b9".encode(),
            # a lone surrogate that parse_magnet accepted and to_uri() could not encode
            "regress-lone-surrogate-dn": f"magnet:?xt=urn:btih:{H1.hex()}&dn=".encode() + b"\xed\xa0\x80",
        },
        "wire": {
            "valid-messages": b"".join(m.to_bytes() for m in (
                Bitfield.from_indexes([0, 5, 36], NUM_PIECES), Unchoke(), Have(3), Request(1, 0, 16384),
                Piece(36, 0, bytes(1000)), HashRequest(bytes(32), 0, 0, 2, 1))),
            "handshake-only": HANDSHAKE,
        },
        "extension": {
            "handshake": b"\x00" + ExtensionHandshake(m={"ut_metadata": 2, "ut_pex": 1}, v="x", p=6881,
                                                      yourip="127.0.0.1", metadata_size=31235).encode(),
            "metadata-request": b"\x01" + encode_metadata_message(MetadataRequest(3)),
            "metadata-data": b"\x01" + encode_metadata_message(MetadataData(0, 10, b"0123456789")),
            "pex": b"\x02" + PexMessage(added=(("127.0.0.1", 6881),), added6=(("::1", 6882),)).encode(),
        },
        "krpc": {
            "ping": krpc.encode_message(krpc.Ping(tid=b"aa", node_id=node_id)),
            "get-peers": krpc.encode_message(krpc.GetPeers(tid=b"ab", node_id=node_id, info_hash=H1)),
            "response-nodes": krpc.encode_message(krpc.Response(tid=b"ac", node_id=node_id, nodes=nodes,
                                                                token=b"tok", values=(("10.0.0.1", 1),))),
            "error": krpc.encode_message(krpc.Error(tid=b"ad", code=201, message="x")),
        },
        "tracker": {
            "http-announce": b"\x00" + encode({b"interval": 1800, b"peers": bytes([127, 0, 0, 1, 0x1A, 0xE1]),
                                               b"peers6": bytes(15) + b"\x01\x1a\xe1"}),
            "http-announce-dict": b"\x00" + encode({b"interval": 60, b"peers": [
                {b"ip": b"127.0.0.1", b"port": 1}, {b"ip": b"localhost", b"port": 2}]}),
            "http-scrape": b"\x01" + encode({b"files": {H1: {b"complete": 1, b"downloaded": 2,
                                                              b"incomplete": 3}}}),
            "udp-connect": b"\x02" + struct.pack(">IIQ", 0, 7, 0x1234),
            "udp-announce": b"\x03" + struct.pack(">IIIII", 1, 7, 60, 1, 2) + bytes([127, 0, 0, 1, 0, 80]),
            "udp-scrape": b"\x05" + struct.pack(">II", 2, 7) + bytes(24),
        },
        "http": {
            "content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "close-delimited": b"HTTP/1.0 404 Not Found\r\n\r\nbody",
        },
        "resume": {
            "valid": encode_resume(ResumeData(info_hash=INFO_HASH, save_path="/tmp/x", have=b"\xf0",
                                              num_pieces=5, file_priorities=[4, 0],
                                              files=[FileStamp(10, 123), None])),
        },
        "mse": {
            "initiator-hello": b"\x00" + MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4,
                                                      randbytes=lambda n: bytes(n)).start(),
            "responder-reply": b"\x01" + bytes(96) + bytes(20),
        },
    }


def main() -> None:
    for target, files in seeds().items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            path = folder / name
            if not path.exists():
                path.write_bytes(data)


if __name__ == "__main__":
    main()
