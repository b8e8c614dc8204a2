"""Our peer wire against a real libtorrent session on 127.0.0.1, plaintext and MSE/RC4.

We dial a libtorrent seeder (``connect``), and a libtorrent leecher dials us (``accept``).
The seeder's bitfield/have-all and extension handshake must parse, a requested block must
carry the torrent's bytes, and the metadata fetched with ut_metadata must be the info dict.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.conftest import require_libtorrent
from torrent_engine.net.peer.connection import EncryptionPolicy, PeerConnection
from torrent_engine.net.peer.extensions import (
    ExtensionHandshake,
    MetadataData,
    MetadataRequest,
    decode_metadata_message,
    encode_metadata_message,
    metadata_piece_count,
)
from torrent_engine.net.peer.handshake import accept, connect
from torrent_engine.net.peer.messages import (
    AllowedFast,
    Bitfield,
    Extended,
    Handshake,
    HaveAll,
    Interested,
    Message,
    Piece,
    Request,
    Unchoke,
)
from torrent_engine.net.peer.peer_id import generate_peer_id

pytestmark = pytest.mark.interop

PIECE_LENGTH = 32 * 1024
PAYLOAD_SIZE = 5 * PIECE_LENGTH + 1234  # odd size: the last piece is short
OUR_PEER_ID = generate_peer_id(random.Random(1).randbytes)
# Our policy against each libtorrent encryption mode.
OUR_POLICY: dict[str, EncryptionPolicy] = {"plaintext": "disable", "forced": "require", "enabled": "prefer"}


@dataclass
class Seeder:
    lt: Any
    session: Any
    handle: Any
    info_hash: bytes
    info_bytes: bytes
    payload: bytes
    port: int

    @property
    def num_pieces(self) -> int:
        return (PAYLOAD_SIZE + PIECE_LENGTH - 1) // PIECE_LENGTH

    def piece_size(self, index: int) -> int:
        return min(PIECE_LENGTH, PAYLOAD_SIZE - index * PIECE_LENGTH)


def _enc_settings(lt: Any, mode: str) -> dict[str, Any]:
    if mode == "forced":
        return {
            "out_enc_policy": int(lt.enc_policy.pe_forced),
            "in_enc_policy": int(lt.enc_policy.pe_forced),
            "allowed_enc_level": int(lt.enc_level.pe_rc4),
        }
    if mode == "enabled":  # libtorrent's defaults: MSE accepted, plaintext too
        return {
            "out_enc_policy": int(lt.enc_policy.pe_enabled),
            "in_enc_policy": int(lt.enc_policy.pe_enabled),
            "allowed_enc_level": int(lt.enc_level.pe_both),
        }
    return {
        "out_enc_policy": int(lt.enc_policy.pe_disabled),
        "in_enc_policy": int(lt.enc_policy.pe_disabled),
        "allowed_enc_level": int(lt.enc_level.pe_plaintext),
    }


def _add(lt: Any, session: Any, info: Any, save_path: Path) -> Any:
    atp = lt.add_torrent_params()
    atp.ti = info
    atp.save_path = str(save_path)
    return session.add_torrent(atp)


def _lt_session(lt: Any, mode: str) -> Any:
    settings = {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": False,  # we speak TCP only: don't make libtorrent try uTP first
        "enable_incoming_utp": False,
        "alert_mask": 0,
        **_enc_settings(lt, mode),
    }
    return lt.session(settings)


def _wait(predicate: Any, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"libtorrent: {what} did not happen within {seconds} s")
        time.sleep(0.05)


def _make_torrent(lt: Any, directory: Path) -> tuple[bytes, bytes]:
    payload = random.Random(42).randbytes(PAYLOAD_SIZE)
    (directory / "payload.bin").write_bytes(payload)
    ct = lt.create_torrent(
        lt.list_files(str(directory / "payload.bin")), PIECE_LENGTH, lt.create_torrent.v1_only
    )
    lt.set_piece_hashes(ct, str(directory))
    entry = ct.generate()
    # An extra key makes the info dict span three BEP 9 metadata pieces (the last one short).
    entry[b"info"][b"x-padding"] = bytes(40_000)
    return lt.bencode(entry), payload


@pytest.fixture(params=["plaintext", "forced", "enabled"])
def seeder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Seeder]:
    lt = require_libtorrent()
    torrent_bytes, payload = _make_torrent(lt, tmp_path)
    info = lt.torrent_info(torrent_bytes)
    session = _lt_session(lt, request.param)
    handle = _add(lt, session, info, tmp_path)
    _wait(lambda: handle.status().is_seeding, "seeding")
    _wait(lambda: session.listen_port() > 0, "listening")
    yield Seeder(
        lt,
        session,
        handle,
        info.info_hashes().v1.to_bytes(),
        bytes(info.info_section()),
        payload,
        session.listen_port(),
    )
    session.remove_torrent(handle)


async def _receive_until(
    conn: PeerConnection, want: type[Message] | tuple[type[Message], ...]
) -> list[Message]:
    """Messages up to and including the first of type ``want`` (bounded count and time)."""
    seen: list[Message] = []
    with anyio.fail_after(20):
        for _ in range(1000):
            msg = await conn.receive()
            seen.append(msg)
            if isinstance(msg, want):
                return seen
    raise AssertionError(f"no {want} in {seen[:20]}")


@pytest.mark.anyio
async def test_we_download_a_block_from_a_libtorrent_seeder(
    request: pytest.FixtureRequest, seeder: Seeder
) -> None:
    mode = request.node.callspec.params["seeder"]
    encryption = OUR_POLICY[mode]
    conn = await connect(
        "127.0.0.1",
        seeder.port,
        info_hash=seeder.info_hash,
        peer_id=OUR_PEER_ID,
        encryption=encryption,
        num_pieces=seeder.num_pieces,
        piece_size=seeder.piece_size,
    )
    async with conn:
        assert conn.mse == (mode != "plaintext")
        if mode != "enabled":  # with both allowed, libtorrent's prefer_rc4 setting chooses
            assert conn.encrypted == (mode == "forced")
        hs = conn.peer_handshake
        assert hs.info_hash == seeder.info_hash and hs.extension and hs.fast
        assert conn.wire.fast and conn.wire.extension
        await conn.send(
            Extended(0, ExtensionHandshake(m={"ut_metadata": 2}, v="torrent_engine test").encode())
        )
        await conn.send(Interested())
        seen = await _receive_until(conn, Unchoke)
        # The seeder announced all pieces (have-all with the fast extension, or a full bitfield).
        have = [m for m in seen if isinstance(m, (HaveAll, Bitfield))]
        assert have, seen
        if isinstance(have[0], Bitfield):
            assert all(have[0].has(i) for i in range(seeder.num_pieces))
        ext = [m for m in seen if isinstance(m, Extended) and m.ext_id == 0]
        assert ext, seen
        ext_hs = ExtensionHandshake.decode(ext[0].payload)
        assert ext_hs.m.get("ut_metadata", 0) > 0 and ext_hs.metadata_size == len(seeder.info_bytes)
        assert ext_hs.yourip == "127.0.0.1"
        # One full block and the short last block of the short last piece.
        last = seeder.num_pieces - 1
        last_begin = (seeder.piece_size(last) - 1) // 16384 * 16384
        wanted = [(1, 16384, 16384), (last, last_begin, seeder.piece_size(last) - last_begin)]
        await conn.send_many([Request(*r) for r in wanted])
        got: dict[tuple[int, int], bytes] = {}
        with anyio.fail_after(20):
            while len(got) < len(wanted):
                msg = await conn.receive()
                if isinstance(msg, Piece):
                    got[(msg.index, msg.begin)] = bytes(msg.block)
                assert not isinstance(msg, (AllowedFast,)) or msg.index < seeder.num_pieces
        for index, begin, length in wanted:
            offset = index * PIECE_LENGTH + begin
            assert got[(index, begin)] == seeder.payload[offset : offset + length]


@pytest.mark.anyio
async def test_prefer_falls_back_to_plaintext_when_libtorrent_refuses_mse(tmp_path: Path) -> None:
    lt = require_libtorrent()
    torrent_bytes, _ = _make_torrent(lt, tmp_path)
    info = lt.torrent_info(torrent_bytes)
    session = _lt_session(lt, "plaintext")
    handle = _add(lt, session, info, tmp_path)
    try:
        _wait(lambda: handle.status().is_seeding, "seeding")
        conn = await connect(
            "127.0.0.1",
            session.listen_port(),
            info_hash=info.info_hashes().v1.to_bytes(),
            peer_id=OUR_PEER_ID,
            encryption="prefer",
        )
        async with conn:
            assert not conn.encrypted
            assert conn.peer_handshake.info_hash == info.info_hashes().v1.to_bytes()
            await _receive_until(conn, (HaveAll, Bitfield))
    finally:
        session.remove_torrent(handle)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["plaintext", "forced", "enabled"])
async def test_libtorrent_dials_us_and_we_accept(mode: str, tmp_path: Path) -> None:
    """A libtorrent leecher connects to our listener: we detect plaintext or MSE, answer, and
    libtorrent asks us for data after our have-all."""
    lt = require_libtorrent()
    torrent_bytes, _ = _make_torrent(lt, tmp_path)
    info = lt.torrent_info(torrent_bytes)
    info_hash = info.info_hashes().v1.to_bytes()
    num_pieces = info.num_pieces()
    session = _lt_session(lt, mode)
    empty = tmp_path / "leech"
    empty.mkdir()
    handle = _add(lt, session, info, empty)
    result: dict[str, Any] = {}

    async def serve(stream: anyio.abc.SocketStream) -> None:
        conn = await accept(
            stream,
            lookup=lambda h: h == info_hash,
            info_hashes=[info_hash],
            peer_id=OUR_PEER_ID,
            encryption="require" if mode == "forced" else "prefer",
        )
        result["encrypted"] = conn.encrypted
        result["handshake"] = conn.peer_handshake
        conn.wire.set_metadata(num_pieces, lambda i: info.piece_size(i))
        await conn.send(HaveAll())
        await conn.send(Unchoke())
        async with conn:
            seen = await _receive_until(conn, Request)
            result["request"] = seen[-1]

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    try:
        _wait(lambda: handle.status().state == lt.torrent_status.downloading, "start downloading")
        async with anyio.create_task_group() as tg:
            async with listener:
                handle.connect_peer(("127.0.0.1", port))
                with anyio.fail_after(20):
                    tcp = listener.listeners[0]
                    assert isinstance(tcp, anyio.abc.SocketListener)
                    stream = await tcp.accept()
                tg.start_soon(serve, stream)
    finally:
        session.remove_torrent(handle)
    if mode != "enabled":  # at its defaults libtorrent may pick either; both must work
        assert result["encrypted"] == (mode == "forced")
    hs = result["handshake"]
    assert isinstance(hs, Handshake) and hs.info_hash == info_hash and hs.peer_id.startswith(b"-LT")
    req = result["request"]
    assert isinstance(req, Request) and 0 <= req.index < num_pieces and 0 < req.length <= 16384


@pytest.mark.anyio
async def test_ut_metadata_from_libtorrent(request: pytest.FixtureRequest, seeder: Seeder) -> None:
    """BEP 9 against a real peer: fetch every metadata piece; they join to the info dict."""
    mode = request.node.callspec.params["seeder"]
    conn = await connect(
        "127.0.0.1", seeder.port, info_hash=seeder.info_hash, peer_id=OUR_PEER_ID, encryption=OUR_POLICY[mode]
    )
    our_ut_metadata = 7
    async with conn:
        await conn.send(Extended(0, ExtensionHandshake(m={"ut_metadata": our_ut_metadata}).encode()))
        seen = await _receive_until(conn, Extended)
        theirs = ExtensionHandshake.decode(seen[-1].payload)  # type: ignore[union-attr]
        size = theirs.metadata_size
        assert size == len(seeder.info_bytes)
        count = metadata_piece_count(size)
        await conn.send_many(
            [
                Extended(theirs.m["ut_metadata"], encode_metadata_message(MetadataRequest(i)))
                for i in range(count)
            ]
        )
        pieces: dict[int, bytes] = {}
        with anyio.fail_after(20):
            while len(pieces) < count:
                msg = await conn.receive()
                if isinstance(msg, Extended) and msg.ext_id == our_ut_metadata:
                    data = decode_metadata_message(msg.payload)
                    assert isinstance(data, MetadataData) and data.total_size == size
                    pieces[data.piece] = data.data
        assert count == 3 and b"".join(pieces[i] for i in range(count)) == seeder.info_bytes
