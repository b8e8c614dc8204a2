"""The add request (addtorrent.py): each kind of source read into a torrent or a magnet, each
fault one ``AddTorrentError`` naming what was wrong; the resolver (resolve.py) for URLs."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.abc
import pytest

from tests.integration.helpers import loopback_config
from tests.unit.torrent_factory import make_torrent
from torrent_engine.engine.addtorrent import (
    AddTorrent,
    AddTorrentError,
    MagnetLink,
    Parsed,
    TorrentBytes,
    TorrentFile,
    TorrentUrl,
    add_torrent_of,
    from_text,
    read_add_torrent,
    recorded_source,
)
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.engine.resolve import resolve
from torrent_engine.formats.magnet import Magnet, parse_magnet
from torrent_engine.formats.metainfo import Torrent

HASH = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
pytestmark = pytest.mark.anyio

LINK = f"magnet:?xt=urn:btih:{HASH}&dn=x"


def _torrent() -> Torrent:
    return make_torrent([(("a.bin",), b"a" * 40000)], name="one")


def test_each_kind_is_read_into_a_torrent_or_a_magnet(tmp_path: Path) -> None:
    torrent = _torrent()
    path = tmp_path / "one.torrent"
    path.write_bytes(torrent.to_bytes())
    assert read_add_torrent(TorrentBytes(torrent.to_bytes())).info_hash == torrent.info_hash
    assert read_add_torrent(TorrentFile(str(path))).info_hash == torrent.info_hash
    magnet = read_add_torrent(MagnetLink(LINK))
    assert isinstance(magnet, Magnet) and magnet.info_hash.hex() == HASH
    assert read_add_torrent(Parsed(torrent)) is torrent


def test_a_front_ends_text_names_its_kind() -> None:
    assert from_text(f"  {LINK}\n") == MagnetLink(LINK)
    assert from_text("MAGNET:?xt=urn:btih:" + HASH) == MagnetLink("MAGNET:?xt=urn:btih:" + HASH)
    assert from_text("https://example.test/a.torrent") == TorrentUrl("https://example.test/a.torrent")
    assert from_text("HTTP://example.test/a.torrent") == TorrentUrl("HTTP://example.test/a.torrent")
    assert from_text("dir/a.torrent") == TorrentFile("dir/a.torrent")
    with pytest.raises(AddTorrentError) as refused:
        from_text("dir/a.torrent", files=False)
    assert refused.value.kind == "url" and "neither a magnet link nor an http(s) URL" in str(refused.value)
    with pytest.raises(AddTorrentError) as empty:
        from_text("  ")
    assert empty.value.kind == "empty"


def test_a_library_callers_source_becomes_a_request(tmp_path: Path) -> None:
    torrent = _torrent()
    magnet = parse_magnet(LINK)
    assert add_torrent_of(torrent) == Parsed(torrent)
    assert add_torrent_of(magnet) == Parsed(magnet)
    assert add_torrent_of(bytearray(b"d4:infod")) == TorrentBytes(b"d4:infod")
    assert add_torrent_of(tmp_path / "x.torrent") == TorrentFile(str(tmp_path / "x.torrent"))
    assert add_torrent_of(LINK) == MagnetLink(LINK)
    request = TorrentUrl("http://127.0.0.1:1/x.torrent")
    assert add_torrent_of(request) is request
    with pytest.raises(AddTorrentError) as refused:
        add_torrent_of(12)
    assert refused.value.kind == "type"


@pytest.mark.parametrize(("request_", "kind", "says"), [
    (TorrentBytes(b"not bencode"), "torrent", ""),
    (TorrentBytes(b"d3:foo3:bare"), "torrent", "info: missing"),
    (MagnetLink("magnet:?dn=no-hash"), "magnet", "xt"),
    (TorrentFile("/nonexistent/dir/x.torrent"), "file", "cannot read '/nonexistent/dir/x.torrent'"),
    (TorrentUrl("http://127.0.0.1:1/x.torrent"), "url", "fetched"),
])
def test_each_fault_is_one_typed_error_naming_it(request_: AddTorrent,
                                                 kind: str, says: str) -> None:
    with pytest.raises(AddTorrentError) as refused:
        read_add_torrent(request_)
    assert refused.value.kind == kind
    assert says in str(refused.value)


def test_a_torrent_file_that_cannot_be_read_or_is_not_valid_is_named(tmp_path: Path) -> None:
    """Of several files a command adds, the one at fault is named (a bad one said only "unexpected
    byte 'g' (at byte 0)"), and an unreadable one without the parser's "(file):" field."""
    bad = tmp_path / "bad.torrent"
    bad.write_bytes(b"garbage")
    with pytest.raises(AddTorrentError) as refused:
        read_add_torrent(TorrentFile(str(bad)))
    assert (refused.value.kind, str(refused.value)) == ("torrent", f"{bad}: unexpected byte 'g' (at byte 0)")
    with pytest.raises(AddTorrentError) as refused:
        read_add_torrent(TorrentFile(str(tmp_path)))
    said = f"cannot read {str(tmp_path)!r}: Is a directory"
    assert (refused.value.kind, str(refused.value)) == ("file", said)


def test_a_bad_torrent_says_what_the_metainfo_parser_says() -> None:
    # (the dialects answer with that message: "Torrent file is not valid: <it>")
    with pytest.raises(AddTorrentError) as refused:
        read_add_torrent(TorrentBytes(b"d3:foo3:bare"))
    try:
        Torrent.from_bytes(b"d3:foo3:bare")
    except ValueError as exc:
        assert str(refused.value) == str(exc)


def test_the_recorded_source_is_the_link_as_given_or_torrent() -> None:
    torrent, magnet = _torrent(), parse_magnet(LINK)
    assert recorded_source(MagnetLink(f" {LINK} "), magnet) == LINK
    assert recorded_source(Parsed(magnet), magnet) == magnet.to_uri()
    assert recorded_source(TorrentBytes(b""), torrent) == "torrent"


async def test_the_resolver_fetches_a_url_and_says_why_it_could_not() -> None:
    torrent = _torrent()
    bodies = {b"/one.torrent": (b"200 OK", torrent.to_bytes()), b"/junk": (b"200 OK", b"junk"),
              b"/gone": (b"404 Not Found", b"")}

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
            status, body = bodies[head.split(b" ")[1]]
            await stream.send(b"HTTP/1.1 " + status + b"\r\nContent-Length: " + str(len(body)).encode()
                              + b"\r\nConnection: close\r\n\r\n" + body)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        got = await resolve(TorrentUrl(f"http://127.0.0.1:{port}/one.torrent"))
        assert isinstance(got, Torrent) and got.info_hash == torrent.info_hash
        with pytest.raises(AddTorrentError) as junk:
            await resolve(TorrentUrl(f"http://127.0.0.1:{port}/junk"))
        assert junk.value.kind == "torrent" and "is not a .torrent" in str(junk.value)
        with pytest.raises(AddTorrentError) as gone:
            await resolve(TorrentUrl(f"http://127.0.0.1:{port}/gone"))
        assert gone.value.kind == "url" and "HTTP status 404" in str(gone.value)
        tg.cancel_scope.cancel()
    magnet = await resolve(MagnetLink(LINK))
    assert isinstance(magnet, Magnet)


async def test_a_manager_reads_each_kind_through_the_one_reader(tmp_path: Path) -> None:
    torrent = _torrent()
    path = tmp_path / "one.torrent"
    path.write_bytes(torrent.to_bytes())
    async with TorrentManager(loopback_config()) as manager:
        session = await manager.add(str(path), tmp_path / "dl", paused=True)
        assert session.info_hash == torrent.info_hash
        for bad, kind in ((b"not bencode", "torrent"), ("magnet:?dn=no-hash", "magnet"),
                          (str(tmp_path / "missing.torrent"), "file")):
            with pytest.raises(AddTorrentError) as refused:
                await manager.add(bad, tmp_path / "dl")
            assert refused.value.kind == kind
        assert [s.info_hash for s in manager.sessions] == [torrent.info_hash]
