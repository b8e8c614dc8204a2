"""Our peer wire against aria2 (a second, independent MSE and BEP 6 implementation).

aria2 seeds a small torrent bound to 127.0.0.1, accepting plaintext or RC4, or requiring RC4;
we dial it with each of our encryption policies, announce have-none, and fetch the short last
block of the short last piece. A plaintext dial to an RC4-only aria2 must be refused.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from tests.conftest import require_libtorrent, require_program
from torrent_engine.errors import PeerError
from torrent_engine.net.peer.connection import EncryptionPolicy
from torrent_engine.net.peer.extensions import ExtensionHandshake
from torrent_engine.net.peer.handshake import connect
from torrent_engine.net.peer.messages import (
    Bitfield,
    Extended,
    HaveAll,
    HaveNone,
    Interested,
    Piece,
    Request,
    Unchoke,
)
from torrent_engine.net.peer.peer_id import client_name, generate_peer_id

pytestmark = pytest.mark.interop

PIECE_LENGTH = 32 * 1024
PAYLOAD_SIZE = 6 * PIECE_LENGTH + 3392


@dataclass
class Aria2Seeder:
    port: int
    info_hash: bytes
    payload: bytes
    rc4_required: bool

    def piece_size(self, index: int) -> int:
        return min(PIECE_LENGTH, PAYLOAD_SIZE - index * PIECE_LENGTH)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"aria2c exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"aria2c did not listen on {port} within {seconds} s")


@pytest.fixture(params=["plain-or-rc4", "rc4-required"])
def aria2_seeder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Aria2Seeder]:
    aria2c = require_program("aria2c")
    lt = require_libtorrent()  # only to create the .torrent file
    payload = random.Random(7).randbytes(PAYLOAD_SIZE)
    (tmp_path / "payload.bin").write_bytes(payload)
    ct = lt.create_torrent(
        lt.list_files(str(tmp_path / "payload.bin")), PIECE_LENGTH, lt.create_torrent.v1_only
    )
    lt.set_piece_hashes(ct, str(tmp_path))
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(lt.bencode(ct.generate()))
    info_hash = lt.torrent_info(str(torrent)).info_hashes().v1.to_bytes()
    port = _free_port()
    crypto = (
        ["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"] if request.param == "rc4-required" else []
    )
    proc = subprocess.Popen(
        [
            aria2c,
            "--interface=127.0.0.1",  # loopback only
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            f"--listen-port={port}",
            "--seed-ratio=0.0",
            "--check-integrity=true",
            "--summary-interval=0",
            "--console-log-level=warn",
            f"--dir={tmp_path}",
            *crypto,
            str(torrent),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, proc)
        yield Aria2Seeder(port, info_hash, payload, request.param == "rc4-required")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.anyio
@pytest.mark.parametrize("encryption", ["disable", "prefer", "require"])
async def test_we_fetch_a_block_from_aria2(aria2_seeder: Aria2Seeder, encryption: EncryptionPolicy) -> None:
    num_pieces = (PAYLOAD_SIZE + PIECE_LENGTH - 1) // PIECE_LENGTH
    dial = connect(
        "127.0.0.1",
        aria2_seeder.port,
        info_hash=aria2_seeder.info_hash,
        peer_id=generate_peer_id(random.Random(3).randbytes),
        encryption=encryption,
        num_pieces=num_pieces,
        piece_size=aria2_seeder.piece_size,
    )
    if aria2_seeder.rc4_required and encryption == "disable":
        with pytest.raises(PeerError):  # aria2 drops plaintext peers (the link closes)
            await dial
        return
    conn = await dial
    async with conn:
        assert client_name(conn.peer_id).startswith("aria2 ")
        assert conn.wire.fast and conn.wire.extension
        assert conn.mse == (encryption != "disable")
        if encryption == "require" or aria2_seeder.rc4_required:
            assert conn.encrypted
        if encryption == "disable":
            assert not conn.encrypted
        await conn.send_many([HaveNone(), Interested()])
        last = num_pieces - 1
        wanted = (last, 0, aria2_seeder.piece_size(last))
        seen_have = seen_ext = False
        with anyio.fail_after(20):
            while True:
                msg = await conn.receive()
                if isinstance(msg, (HaveAll, Bitfield)):
                    seen_have = True
                elif isinstance(msg, Extended) and msg.ext_id == 0:
                    seen_ext = ExtensionHandshake.decode(msg.payload).metadata_size is not None
                elif isinstance(msg, Unchoke):
                    await conn.send(Request(*wanted))
                elif isinstance(msg, Piece):
                    assert (msg.index, msg.begin) == wanted[:2]
                    assert bytes(msg.block) == aria2_seeder.payload[last * PIECE_LENGTH :]
                    break
        assert seen_have and seen_ext
