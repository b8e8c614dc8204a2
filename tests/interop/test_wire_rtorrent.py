"""Our peer wire against rtorrent 0.9 (its own library, libtorrent 0.13 "rakshasa": a third wire
implementation beside libtorrent-rasterbar and aria2, without the fast extension or uTP).

rtorrent runs headless (``system.daemon``) on an address of 127.0.0.0/8 of its own (it keeps one
connection an IP address: the peers of a test each have their own), its DHT off; it finds peers
through a real opentracker or through PEX, and says how far it is over XML-RPC on a Unix socket
(SCGI). Downloads both ways (plaintext and RC4 required on both sides), a hybrid torrent's pad
files, magnet links both ways, and a seeder rtorrent learns of only from our PEX.
"""

from __future__ import annotations

import socket
import subprocess
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import require_libtorrent, require_program
from tests.integration.helpers import keep_peers, loopback_config, make_payload, same_files
from tests.interop._opentracker import Opentracker, _free_port, opentracker
from tests.interop._programs import program
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session
from torrent_engine.storage.create import create_torrent

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

FILES = (("a.bin", 1_000_003), ("empty.txt", 0), ("sub/b.bin", 77_777), ("z.txt", 1))
LIMIT = 60.0  # seconds for any wait on rtorrent (it dials the peers it learnt every 30 s)
RC4_ONLY = "allow_incoming,try_outgoing,require,require_RC4"


def _call(rpc: Path, method: str, *params: Any) -> Any:
    """One XML-RPC call to rtorrent's socket ``rpc`` over SCGI (a netstring of CGI headers, then
    the request)."""
    body = xmlrpc.client.dumps(params, method).encode()
    headers = b"".join(k + b"\0" + v + b"\0" for k, v in (
        (b"CONTENT_LENGTH", str(len(body)).encode()), (b"SCGI", b"1"),
        (b"REQUEST_METHOD", b"POST"), (b"REQUEST_URI", b"/RPC2")))
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(rpc))
        s.sendall(str(len(headers)).encode() + b":" + headers + b"," + body)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return xmlrpc.client.loads(reply.partition(b"\r\n\r\n")[2])[0][0]


@dataclass
class Rtorrent:
    """A running rtorrent: where it listens, its XML-RPC socket and its log."""

    host: str
    port: int
    rpc: Path
    log: Path
    process: subprocess.Popen[bytes]

    def call(self, method: str, *params: Any) -> Any:
        """One XML-RPC call (``_call``)."""
        return _call(self.rpc, method, *params)

    def where(self) -> str:
        """rtorrent's downloads as it sees them, and the end of its log (for a failure)."""
        rows = self.call("d.multicall2", "", "main", "d.hash=", "d.complete=", "d.bytes_done=",
                         "d.size_bytes=", "d.peers_connected=", "d.message=")
        tail = self.log.read_text(errors="replace").splitlines()[-15:] if self.log.exists() else []
        return f"downloads {rows}; log:\n" + "\n".join(tail)

    async def wait_complete(self, size: int) -> None:
        """Until its one download is complete and ``size`` bytes large (a magnet's download is its
        metadata's until that comes)."""
        with anyio.move_on_after(LIMIT):
            while True:
                assert self.process.poll() is None, self.where()
                for _h, complete, total in self.call("d.multicall2", "", "main", "d.hash=",
                                                      "d.complete=", "d.size_bytes="):
                    if complete == 1 and total == size:
                        return
                await anyio.sleep(0.2)
        raise AssertionError(f"rtorrent did not complete in {LIMIT:g} s: {self.where()}")


@contextmanager
def rtorrent(folder: Path, data: Path, load: str, *, host: str = "127.0.0.3",
             encryption: str | None = None) -> Iterator[Rtorrent]:
    """rtorrent saving into (or seeding from) ``data``, started on ``load`` (a .torrent file's
    path or a magnet link), listening on ``host``; ``encryption``: its ``protocol.encryption``."""
    session = folder / "session"
    session.mkdir(parents=True)
    data.mkdir(parents=True, exist_ok=True)  # (it creates no parent folder of a download)
    port = _free_port(host, socket.SOCK_STREAM)
    rc, rpc = folder / "rtorrent.rc", folder / "rpc.socket"
    lines = [
        f"directory.default.set = {data}", f"session.path.set = {session}",
        f"network.port_range.set = {port}-{port}", "network.port_random.set = no",
        f"network.bind_address.set = {host}", f"network.local_address.set = {host}",
        "dht.mode.set = disable", "trackers.use_udp.set = no", "protocol.pex.set = yes",
        f"network.scgi.open_local = {rpc}",
        f'log.open_file = "main", {folder / "rtorrent.log"}', 'log.add_output = "debug", "main"',
        "system.daemon.set = true",
    ]
    if encryption is not None:
        lines.append(f"protocol.encryption.set = {encryption}")
    lines.append(f'load.start_verbose = "{load}"')
    rc.write_text("\n".join(lines) + "\n")

    def ready() -> bool:  # (its socket answers, and it has taken the download)
        try:
            return rpc.exists() and bool(_call(rpc, "download_list", "", "main"))
        except OSError:  # (the socket made, not yet listened on)
            return False

    argv = [require_program("rtorrent"), "-n", "-o", f"import={rc}"]
    with program(argv, folder / "rtorrent.out", ready, "rtorrent", 20) as process:
        yield Rtorrent(host, port, rpc, folder / "rtorrent.log", process)


@contextmanager
def tracked(root: Path, version: str = "v1") -> Iterator[tuple[Torrent, Opentracker]]:
    """``FILES`` made in ``root/seed`` and a torrent of them announced to a real opentracker
    (rtorrent loads no torrent without a tracker)."""
    payload = make_payload(root / "seed", FILES)
    bare = create_torrent(payload, version=version, piece_length=64 * 1024)  # type: ignore[arg-type]
    with opentracker(root / "tracker", [bare.info_hash]) as tracker:
        yield create_torrent(payload, version=version, piece_length=64 * 1024,  # type: ignore[arg-type]
                             trackers=[tracker.http_url]), tracker


@pytest.mark.parametrize("encryption", ["plain", "rc4"])
async def test_we_download_from_an_rtorrent_seeder(tmp_path: Path, encryption: str) -> None:
    with tracked(tmp_path) as (torrent, _tracker):
        (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
        with rtorrent(tmp_path / "rt", tmp_path / "seed", str(tmp_path / "t.torrent"),
                      encryption=RC4_ONLY if encryption == "rc4" else None) as rt:
            await rt.wait_complete(torrent.payload_size)  # (its check of the data)
            config = loopback_config(encryption="require" if encryption == "rc4" else "disable")
            async with Session(torrent, tmp_path / "ours", config=config, peers=[(rt.host, rt.port)]) as ours:
                met = keep_peers(ours)
                with anyio.fail_after(LIMIT):
                    await ours.wait_completed()
            assert len(met) == 1 and met[0].client.startswith("libTorrent ")
            assert met[0].link.encrypted is (encryption == "rc4")
            assert not met[0].fast  # (rtorrent has no BEP 6: our choke drops its requests)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "ours") == []


@pytest.mark.parametrize(("version", "encryption"), [("v1", "plain"), ("v1", "rc4"), ("hybrid", "plain")])
async def test_rtorrent_downloads_from_our_seeder_it_found_through_the_tracker(
        tmp_path: Path, version: str, encryption: str) -> None:
    with tracked(tmp_path, version) as (torrent, _tracker):
        (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
        config = loopback_config(tracker_enabled=True, encryption="prefer")
        async with Session(torrent, tmp_path / "seed", config=config) as seeder:
            await seeder.wait_ready()
            with rtorrent(tmp_path / "rt", tmp_path / "theirs", str(tmp_path / "t.torrent"),
                          encryption=RC4_ONLY if encryption == "rc4" else None) as rt:
                await rt.wait_complete(sum(f.length for f in torrent.files))  # (a hybrid's pad files too)
            assert seeder.uploaded >= torrent.payload_size
    # rtorrent knows no BEP 47: it asks for a hybrid torrent's pad files too, and writes them
    pads = {"/".join(f.path): f.length for f in torrent.files if f.pad}
    written = same_files(torrent, tmp_path / "seed", tmp_path / "theirs")
    assert written == [f"{p} (pad file written)" for p in pads]
    for path, length in pads.items():
        assert (tmp_path / "theirs" / path).read_bytes() == bytes(length)


async def test_magnet_links_both_ways_with_rtorrent(tmp_path: Path) -> None:
    """We fetch the metadata (BEP 9) from an rtorrent seeder; rtorrent fetches it from ours."""
    with tracked(tmp_path) as (torrent, tracker):
        uri = f"{torrent.magnet_uri()}&tr={tracker.http_url}"
        (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
        with rtorrent(tmp_path / "rt-seed", tmp_path / "seed", str(tmp_path / "t.torrent")) as rt:
            await rt.wait_complete(torrent.payload_size)
            async with Session(parse_magnet(uri), tmp_path / "ours", config=loopback_config(),
                               peers=[(rt.host, rt.port)]) as ours:
                with anyio.fail_after(LIMIT):
                    await ours.wait_completed()
                assert ours.torrent.info_bytes == torrent.info_bytes
        assert same_files(torrent, tmp_path / "seed", tmp_path / "ours") == []
        config = loopback_config(tracker_enabled=True)
        async with Session(torrent, tmp_path / "ours", config=config) as seeder:
            await seeder.wait_ready()
            with rtorrent(tmp_path / "rt-leech", tmp_path / "theirs", uri) as rt:
                await rt.wait_complete(torrent.payload_size)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "theirs") == []


async def test_rtorrent_finds_a_seeder_through_our_peer_exchange(tmp_path: Path) -> None:
    """A libtorrent seeder on 127.0.0.2 that announces nowhere; ours dials it and announces
    itself; rtorrent hears of ours alone from the tracker, of the seeder from our PEX (BEP 11),
    and dials it (it dials the peers it learnt every 30 s). Ours uploads too slowly to give
    rtorrent the whole torrent in that time."""
    lt = require_libtorrent()
    with tracked(tmp_path) as (torrent, _tracker):
        (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
        ses = lt.session({"listen_interfaces": "127.0.0.2:0", "enable_dht": False, "enable_lsd": False,
                          "enable_upnp": False, "enable_natpmp": False})
        bare = create_torrent(tmp_path / "seed" / "payload", version="v1", piece_length=64 * 1024)
        assert bare.info_hash == torrent.info_hash and not bare.trackers  # (the tracker never lists it)
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(bare.to_bytes()))
        params.save_path = str(tmp_path / "seed")
        handle = ses.add_torrent(params)
        try:
            with anyio.fail_after(LIMIT):
                while not handle.status().is_seeding:
                    await anyio.sleep(0.05)
            config = loopback_config(tracker_enabled=True, download_rate_limit=100_000,
                                     upload_rate_limit=20_000)
            seeder = ("127.0.0.2", ses.listen_port())
            async with Session(torrent, tmp_path / "ours", config=config, peers=[seeder]) as ours:
                with rtorrent(tmp_path / "rt", tmp_path / "theirs", str(tmp_path / "t.torrent")) as rt:
                    with anyio.fail_after(LIMIT):
                        while not any(p.host == "127.0.0.2" for p in ours.peers):
                            await anyio.sleep(0.05)
                    await rt.wait_complete(torrent.payload_size)
                    log = rt.log.read_text(errors="replace")
                    assert "handshake_manager->127.0.0.2: Handshake success." in log, rt.where()
        finally:
            ses.remove_torrent(handle)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "theirs") == []
