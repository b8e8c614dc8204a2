"""Property tests: whatever bytes a peer sends, the wire, the extension codecs and MSE either
produce validated values or raise PeerProtocolError (EncryptionError for MSE), never anything else."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from torrent_engine.errors import EncryptionError, PeerProtocolError
from torrent_engine.net.peer.buffer import ReceiveBuffer
from torrent_engine.net.peer.extensions import (
    ExtensionHandshake,
    PexMessage,
    PexState,
    decode_metadata_message,
)
from torrent_engine.net.peer.messages import (
    AllowedFast,
    Bitfield,
    Cancel,
    Choke,
    Extended,
    Handshake,
    Hashes,
    HashReject,
    HashRequest,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    Message,
    NotInterested,
    Piece,
    Port,
    RejectRequest,
    Request,
    SuggestPiece,
    Unchoke,
    make_reserved,
)
from torrent_engine.net.peer.mse import CRYPTO_PLAINTEXT, CRYPTO_RC4, MseInitiator, MseResponder
from torrent_engine.net.peer.wire import PeerWire

INFO_HASH = bytes(range(20))
NUM_PIECES = 37
PIECE_LENGTH = 65536
LAST = 1000


def piece_size(i: int) -> int:
    return LAST if i == NUM_PIECES - 1 else PIECE_LENGTH


HANDSHAKE = Handshake(make_reserved(), INFO_HASH, b"-LT2010-xxxxxxxxxxxx").to_bytes()

indexes = st.integers(0, NUM_PIECES - 1)
blocks = st.tuples(indexes, st.integers(0, 3), st.integers(1, 16384)).map(
    lambda t: (t[0], min(t[1] * 16384, piece_size(t[0]) - 1), t[2])
)


def _fit(index: int, begin: int, length: int) -> tuple[int, int, int]:
    return index, begin, max(1, min(length, piece_size(index) - begin))


valid_messages: st.SearchStrategy[Message] = st.one_of(
    st.just(KeepAlive()),
    st.sampled_from([Choke(), Unchoke(), Interested(), NotInterested(), HaveAll(), HaveNone()]),
    indexes.map(Have),
    indexes.map(SuggestPiece),
    indexes.map(AllowedFast),
    st.lists(indexes, max_size=NUM_PIECES).map(lambda ix: Bitfield.from_indexes(ix, NUM_PIECES)),
    blocks.map(lambda t: Request(*_fit(*t))),
    blocks.map(lambda t: Cancel(*_fit(*t))),
    blocks.map(lambda t: RejectRequest(*_fit(*t))),
    blocks.map(lambda t: Piece(t[0], _fit(*t)[1], bytes(_fit(*t)[2]))),
    st.integers(0, 65535).map(Port),
    st.tuples(st.integers(0, 255), st.binary(max_size=300)).map(lambda t: Extended(*t)),
    st.tuples(
        st.binary(min_size=32, max_size=32),
        st.integers(0, 9),
        st.integers(0, 100),
        st.integers(1, 9),
        st.integers(0, 64),
    ).flatmap(
        lambda t: st.sampled_from(
            [
                HashRequest(t[0], t[1], t[2] * 2 ** t[3], 2 ** t[3], t[4]),
                HashReject(t[0], t[1], t[2] * 2 ** t[3], 2 ** t[3], t[4]),
                Hashes(t[0], t[1], t[2] * 2 ** t[3], 2 ** t[3], t[4], bytes(32 * (2 ** t[3] + t[4] // 2))),
            ]
        )
    ),
)


def new_wire() -> PeerWire:
    return PeerWire(
        info_hash=INFO_HASH, peer_id=b"-TE0100-yyyyyyyyyyyy", num_pieces=NUM_PIECES, piece_size=piece_size
    )


def feed(wire: PeerWire, data: bytes, cuts: list[int]) -> list[Message]:
    """Feed ``data`` split at ``cuts``; return messages, stopping quietly at a protocol error."""
    out: list[Message] = []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    try:
        for a, b in zip(points, points[1:], strict=False):
            wire.receive_data(data[a:b])
            out.extend(wire.events())
    except PeerProtocolError:
        pass
    return out


def check_valid(msg: Message) -> None:
    if isinstance(msg, (Have, SuggestPiece, AllowedFast)):
        assert 0 <= msg.index < NUM_PIECES
    if isinstance(msg, (Request, Cancel, RejectRequest)):
        assert 0 <= msg.index < NUM_PIECES and 0 < msg.length <= 16384
        assert msg.begin + msg.length <= piece_size(msg.index)
    if isinstance(msg, Piece):
        assert 0 <= msg.index < NUM_PIECES and msg.begin + len(msg.block) <= piece_size(msg.index)
    if isinstance(msg, Bitfield):
        assert len(msg.bits) == (NUM_PIECES + 7) // 8 and not msg.bits[-1] & 0x07


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(0, 5000), max_size=20), st.booleans())
def test_random_bytes_only_raise_protocol_errors(data: bytes, cuts: list[int], after_handshake: bool) -> None:
    stream = HANDSHAKE + data if after_handshake else data
    for msg in feed(new_wire(), stream, cuts):
        check_valid(msg)


@settings(max_examples=300, deadline=None)
@given(st.lists(valid_messages, max_size=30), st.lists(st.integers(0, 100_000), max_size=20))
def test_valid_streams_round_trip_at_any_split(msgs: list[Message], cuts: list[int]) -> None:
    stream = HANDSHAKE + b"".join(m.to_bytes() for m in msgs)
    wire = new_wire()
    out = feed(wire, stream, cuts)
    assert out[1:] == msgs and wire.buffered == 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(valid_messages, min_size=1, max_size=20),
    st.lists(
        st.tuples(st.integers(0, 100_000), st.integers(0, 255), st.sampled_from(["flip", "ins", "del"])),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.integers(0, 100_000), max_size=10),
)
def test_mutated_streams_only_raise_protocol_errors(
    msgs: list[Message], mutations: list[tuple[int, int, str]], cuts: list[int]
) -> None:
    stream = bytearray(HANDSHAKE + b"".join(m.to_bytes() for m in msgs))
    for pos, value, kind in mutations:
        pos %= len(stream) + 1
        if kind == "ins" or pos == len(stream):
            stream[pos:pos] = bytes([value])
        elif kind == "flip":
            stream[pos] ^= value or 1
        else:
            del stream[pos]
    for msg in feed(new_wire(), bytes(stream), cuts):
        check_valid(msg)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_extension_codecs_only_raise_protocol_errors(data: bytes) -> None:
    for decode in (ExtensionHandshake.decode, PexMessage.decode, decode_metadata_message):
        try:
            decode(data)
        except PeerProtocolError:
            pass


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                b"m",
                b"p",
                b"v",
                b"reqq",
                b"yourip",
                b"metadata_size",
                b"added",
                b"added.f",
                b"dropped6",
                b"msg_type",
                b"piece",
                b"total_size",
            ]
        ),
        st.one_of(
            st.integers(-5, 1 << 40),
            st.binary(max_size=40),
            st.dictionaries(st.binary(max_size=5), st.integers(-1, 300), max_size=3),
        ),
        max_size=6,
    ),
    st.binary(max_size=40),
)
def test_structured_extension_payloads(d: dict[bytes, object], tail: bytes) -> None:
    from torrent_engine.formats.bencode import encode

    raw = encode(d)
    for decode, data in (
        (ExtensionHandshake.decode, raw),
        (PexMessage.decode, raw),
        (decode_metadata_message, raw + tail),
    ):
        try:
            decode(data)
        except PeerProtocolError:
            pass


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=96, max_size=1500), st.integers(0, 2**32))
def test_mse_responder_random_input_only_raises_encryption_errors(data: bytes, seed: int) -> None:
    responder = MseResponder(
        [INFO_HASH], crypto_allowed=CRYPTO_RC4 | CRYPTO_PLAINTEXT, randbytes=random.Random(seed).randbytes
    )
    try:
        responder.receive_data(data)
    except EncryptionError:
        pass
    assert not responder.done


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=96, max_size=1500), st.integers(0, 2**32))
def test_mse_initiator_random_input_only_raises_encryption_errors(data: bytes, seed: int) -> None:
    initiator = MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4, randbytes=random.Random(seed).randbytes)
    initiator.start()
    try:
        initiator.receive_data(data)
    except EncryptionError:
        pass
    assert not initiator.done


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=50), max_size=20), st.lists(st.integers(0, 60), max_size=30))
def test_receive_buffer_is_a_fifo(chunks: list[bytes], takes: list[int]) -> None:
    buf = ReceiveBuffer()
    expected = b"".join(chunks)
    for chunk in chunks:
        buf.feed(bytearray(chunk) if len(chunk) % 2 else chunk)
    got = bytearray()
    for n in takes:
        n = min(n, len(buf))
        if n:
            assert bytes(buf.peek(n)) == expected[len(got) : len(got) + n]
        got += buf.take(n)
    assert bytes(got) + buf.take_all() == expected and len(buf) == 0


addresses = st.one_of(
    st.tuples(st.ip_addresses(v=4).map(str), st.integers(1, 65535)),
    # (an IPv4-mapped IPv6 address is the IPv4 peer it maps: the compact codec names it so)
    st.tuples(st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None).map(str), st.integers(1, 65535)),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(addresses, st.integers(0, 31), max_size=120), min_size=1, max_size=6))
def test_pex_state_diffs_rebuild_the_connected_set(rounds: list[dict[tuple[str, int], int]]) -> None:
    state = PexState()
    known: set[tuple[str, int]] = set()
    for i, connected in enumerate(rounds):
        for _ in range(10):  # enough updates for a capped diff to catch up
            msg = state.update(connected)
            if msg is None:
                break
            added = set(msg.added) | set(msg.added6)
            dropped = set(msg.dropped) | set(msg.dropped6)
            assert not added & dropped and not added & known and dropped <= known
            if i or known:
                assert len(added) <= 50 and len(dropped) <= 50
            known = (known | added) - dropped
            decoded = PexMessage.decode(msg.encode())
            assert set(decoded.added) | set(decoded.added6) == added
        assert known == set(connected)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(min_size=1, max_size=12), st.integers(0, 255), max_size=5),
    st.one_of(st.none(), st.text(max_size=30)),
    st.one_of(st.none(), st.integers(1, 65535)),
    st.one_of(st.none(), st.integers(1, 10_000)),
    st.one_of(st.none(), st.ip_addresses().map(str)),
    st.one_of(st.none(), st.integers(1, 1 << 24)),
    st.booleans(),
)
def test_extension_handshake_round_trip(
    m: dict[str, int],
    v: str | None,
    p: int | None,
    reqq: int | None,
    ip: str | None,
    size: int | None,
    seed: bool,
) -> None:
    hs = ExtensionHandshake(m=m, v=v, p=p, reqq=reqq, yourip=ip, metadata_size=size, upload_only=seed)
    assert ExtensionHandshake.decode(hs.encode()) == hs
