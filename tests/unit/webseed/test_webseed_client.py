"""The web seed shell against a scripted HTTP server on 127.0.0.1: keep-alive reuse, a stale
kept-alive connection, redirects (remembered, bounded), refused connections, and a WebSeed's
loop: pieces delivered from runs, back-off and giving up on a failing server."""

from __future__ import annotations

import random

import anyio
import anyio.abc
import pytest

from tests.unit.torrent_factory import make_torrent, payload
from tests.unit.webseed._webseed_server import http_server, ranged
from torrent_engine.errors import WebSeedError, WebSeedStatusError
from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.formats.layout import FileMap
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.net.webseed import client as client_mod
from torrent_engine.net.webseed.client import RangeClient, WebSeed, WebSeedKey
from torrent_engine.net.webseed.mapping import FileRange
from torrent_engine.net.webseed.response import Backoff
from torrent_engine.policy.picker import Block, PiecePicker

pytestmark = pytest.mark.anyio

DATA = random.Random(3).randbytes(200_000)


def asked(url: str, start: int, length: int, size: int = len(DATA)) -> FileRange:
    return FileRange(url=url, file_index=0, file_offset=start, length=length, file_size=size, target=0)


async def test_ranges_share_one_kept_alive_connection() -> None:
    async with http_server(lambda path, s, e: (ranged(DATA, s, e), True)) as server:
        client = RangeClient()
        try:
            for start in (0, 70_000, 150_000):
                got = await client.fetch(asked(server.url("/f"), start, 50_000))
                assert got == DATA[start:start + 50_000]
        finally:
            await client.aclose()
    assert server.connections == 1 and client.requests == 3
    assert [r for _, r in server.requests] == ["bytes=0-49999", "bytes=70000-119999", "bytes=150000-199999"]


async def test_a_connection_the_server_closed_is_reopened_once() -> None:
    # the server closes after each answer without saying so: the next request finds it closed
    async with http_server(lambda path, s, e: (ranged(DATA, s, e), False)) as server:
        client = RangeClient()
        try:
            for start in (0, 1000, 2000):
                assert await client.fetch(asked(server.url("/f"), start, 10)) == DATA[start:start + 10]
        finally:
            await client.aclose()
    assert len(server.requests) == 3 and server.connections == 3


async def test_connection_close_header_is_honoured() -> None:
    closing = "Connection: close\r\n"
    async with http_server(lambda path, s, e: (ranged(DATA, s, e, extra=closing), False)) as server:
        client = RangeClient()
        try:
            await client.fetch(asked(server.url("/f"), 0, 10))
            await client.fetch(asked(server.url("/f"), 10, 10))
        finally:
            await client.aclose()
    assert server.connections == 2 and client.connections == 2


async def test_redirect_is_followed_and_remembered() -> None:
    def behave(path: str, s: int, e: int) -> tuple[bytes, bool]:
        if path == "/old":
            return b"HTTP/1.1 302 Found\r\nLocation: /new\r\nContent-Length: 0\r\n\r\n", True
        return ranged(DATA, s, e), True

    async with http_server(behave) as server:
        client = RangeClient()
        try:
            assert await client.fetch(asked(server.url("/old"), 0, 100)) == DATA[:100]
            assert await client.fetch(asked(server.url("/old"), 100, 100)) == DATA[100:200]
        finally:
            await client.aclose()
    assert [p for p, _ in server.requests] == ["/old", "/new", "/new"]


async def test_redirect_loop_is_bounded() -> None:
    loop = b"HTTP/1.1 301 X\r\nLocation: /loop\r\n\r\n"
    async with http_server(lambda path, s, e: (loop, False)) as server:
        client = RangeClient()
        with pytest.raises(WebSeedError, match="more than 5 redirects"):
            await client.fetch(asked(server.url("/loop"), 0, 10))
        await client.aclose()
    assert len(server.requests) == 6


async def test_refused_connection_is_a_typed_error() -> None:
    with anyio.fail_after(10):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        await listener.aclose()
        with pytest.raises(WebSeedError, match="connection refused"):
            await RangeClient().fetch(asked(f"http://127.0.0.1:{port}/f", 0, 10))


async def test_a_server_that_never_answers_times_out() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def silent(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep(30)

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, silent)
        client = RangeClient(request_timeout=0.3)
        with anyio.fail_after(10), pytest.raises(WebSeedError, match="no answer within"):
            await client.fetch(asked(f"http://127.0.0.1:{port}/f", 0, 10))
        tg.cancel_scope.cancel()


async def test_a_server_sending_more_than_asked_is_refused() -> None:
    def behave(path: str, s: int, e: int) -> tuple[bytes, bool]:
        return (f"HTTP/1.1 206 OK\r\nContent-Range: bytes {s}-{e}/{len(DATA)}\r\n\r\n".encode()
                + DATA[s:e + 1] + b"more", False)  # a body delimited by the close, too long

    async with http_server(behave) as server:
        with pytest.raises(WebSeedError, match="over the 10 byte cap"):
            await RangeClient().fetch(asked(server.url("/f"), 0, 10))


# -- the WebSeed loop --------------------------------------------------------------------------

class Host:
    """A WebSeedHost over a real picker; delivered pieces are kept."""

    def __init__(self, torrent: Torrent) -> None:
        self.torrent = torrent
        self.picker = PiecePicker(torrent, random.Random(1))
        self.pieces: dict[int, bytes] = {}
        self.bytes = 0
        self.banned: set[WebSeedKey] = set()

    def downloading(self) -> bool:
        return not self.picker.is_complete()

    def is_banned(self, key: WebSeedKey) -> bool:
        return key in self.banned

    def pick_run(self, key: WebSeedKey, max_pieces: int, *, lowest: bool = False) -> list[int]:
        return self.picker.pick_run(key, max_pieces, lowest=lowest)

    def set_have(self, key: WebSeedKey, pieces: Bitfield) -> None:
        self.picker.peer_bitfield(key, pieces)

    def release(self, key: WebSeedKey) -> None:
        self.picker.release_requests(key)

    async def received(self, key: WebSeedKey, nbytes: int) -> None:
        self.bytes += nbytes

    async def deliver(self, key: WebSeedKey, index: int, data: memoryview) -> None:
        for begin in range(0, len(data), 16384):
            block = data[begin:begin + 16384]
            self.picker.block_received(key, Block(index, begin, len(block)))
        self.pieces[index] = bytes(data)
        self.picker.piece_passed(index)


async def test_web_seed_delivers_every_piece_of_a_multi_file_torrent_in_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"a": payload(70_000), "b": payload(5, 1), "c": payload(90_000, 2)}
    torrent = make_torrent([((n,), d) for n, d in files.items()], 32 * 1024, pad=True, name="n")
    blob = b"".join(bytes(f.length) if f.pad else files[f.path[-1]] for f in torrent.files)
    monkeypatch.setattr(client_mod, "IDLE_POLL", 0.01)

    def behave(path: str, s: int, e: int) -> tuple[bytes, bool]:
        return ranged(files[path.rsplit("/", 1)[1]], s, e), True

    async with http_server(behave) as server:
        host = Host(torrent)
        host.picker.peer_have_all(("u", 0))
        seed = WebSeed(server.url("/pub"), host, run_bytes=64 * 1024)
        seed.key = ("u", 0)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(seed.run)
                while not host.picker.is_complete():
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
    assert sorted(host.pieces) == list(range(torrent.num_pieces))
    for i, data in host.pieces.items():
        assert data == blob[i * torrent.piece_length:(i + 1) * torrent.piece_length]
    assert host.bytes == sum(len(d) for d in files.values())  # pad bytes never travelled
    assert all(p.startswith("/pub/n/") and ".pad" not in p for p, _ in server.requests)
    assert server.connections == 1
    assert seed.state.downloaded == host.bytes and not seed.state.gave_up


async def test_failing_web_seed_backs_off_then_gives_up_and_returns_its_pieces() -> None:
    torrent = make_torrent([(("f",), payload(100_000))], 32 * 1024, single=True, name="f")
    async with http_server(lambda path, s, e: (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", True)
                           ) as server:
        host = Host(torrent)
        host.picker.peer_have_all(("u", 0))
        seed = WebSeed(server.url("/f"), host, backoff=Backoff(base=0.01, give_up_after=3))
        seed.key = ("u", 0)
        with anyio.fail_after(10):
            await seed.run()
    assert len(server.requests) == 3
    assert seed.state.gave_up.startswith("3 failures in a row") and "HTTP 404" in seed.state.gave_up
    assert host.picker.requests_of(("u", 0)) == []  # every piece free again for peers
    host.picker.peer_have_all(("peer", 1))
    assert len(host.picker.pick(("peer", 1), None, 100)) == 7


async def test_banned_web_seed_stops() -> None:
    torrent = make_torrent([(("f",), payload(100_000))], 32 * 1024, single=True, name="f")
    host = Host(torrent)
    seed = WebSeed("http://127.0.0.1:1/f", host)
    host.banned.add(seed.key)
    with anyio.fail_after(5):
        await seed.run()
    assert seed.state.gave_up.startswith("banned")


async def test_status_error_carries_the_status() -> None:
    busy = b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\n\r\n"
    async with http_server(lambda path, s, e: (busy, False)) as server:
        with pytest.raises(WebSeedStatusError) as info:
            await RangeClient().fetch(asked(server.url("/f"), 0, 10))
    assert info.value.status == 503 and info.value.retry_after == 7.0


async def test_a_web_seed_lacking_a_file_serves_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"a": payload(70_000), "b": payload(40_000, 1), "c": payload(60_000, 2)}
    torrent = make_torrent([((n,), d) for n, d in files.items()], 32 * 1024, pad=True, name="n")
    monkeypatch.setattr(client_mod, "IDLE_POLL", 0.01)

    def behave(path: str, s: int, e: int) -> tuple[bytes, bool]:
        name = path.rsplit("/", 1)[1]
        if name == "b":
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", True
        return ranged(files[name], s, e), True

    file_map = FileMap(torrent)
    b_index = next(i for i, f in enumerate(torrent.files) if f.path == ("n", "b"))
    lacking = set(file_map.file_pieces(b_index))
    async with http_server(behave) as server:
        host = Host(torrent)
        host.picker.peer_have_all(("u", 0))
        seed = WebSeed(server.url("/pub"), host, run_bytes=32 * 1024)
        seed.key = ("u", 0)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(seed.run)
                while len(host.pieces) < torrent.num_pieces - len(lacking):
                    await anyio.sleep(0.01)
                await anyio.sleep(0.1)  # (it would ask for b again here if it were going to)
                tg.cancel_scope.cancel()
    assert set(host.pieces) == set(range(torrent.num_pieces)) - lacking
    assert [p for p, _ in server.requests].count("/pub/n/b") == 1  # asked once, never again
    assert seed.state.missing_files == (b_index,) and not seed.state.gave_up
    assert "HTTP 404" in seed.state.last_error
    assert host.picker.peer_has(("u", 0)) is not None and not any(i in host.picker.peer_has(("u", 0))
                                                                  for i in lacking)


async def test_a_web_seed_lacking_every_file_is_given_up() -> None:
    torrent = make_torrent([(("a",), payload(10_000)), (("b",), payload(10_000, 1))], 32 * 1024, name="n")
    not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    async with http_server(lambda path, s, e: (not_found, True)) as server:
        host = Host(torrent)
        host.picker.peer_have_all(("u", 0))
        seed = WebSeed(server.url("/pub"), host)
        seed.key = ("u", 0)
        with anyio.fail_after(10):
            await seed.run()
    assert seed.state.gave_up.startswith("it has none of the torrent's files")


def whole_file(data: bytes) -> bytes:
    """What a server that ignores Range answers: 200 and the whole file."""
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data


async def test_ranges_of_a_run_are_pipelined_on_one_connection() -> None:
    sizes = {"/a": 40_000, "/b": 30_000, "/c": 50_000}
    files = {p: DATA[:n] for p, n in sizes.items()}
    async with http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as server:
        client = RangeClient()
        ranges = [FileRange(server.url(p), 0, off, 1000 + off % 7, len(files[p]), 0)
                  for p, off in [("/a", 0), ("/a", 20_000), ("/b", 100), ("/c", 2000), ("/c", 49_000),
                                 ("/b", 28_000)]]
        try:
            got = [data async for data in client.fetch_run(ranges)]
        finally:
            await client.aclose()
    assert got == [files[r.url[-2:]][r.file_offset:r.file_offset + r.length] for r in ranges]
    assert server.connections == 1 and client.requests == 6
    assert client.pipelined == 5  # the first opens the connection; the rest go out together


async def test_a_pipelined_404_is_the_error_of_its_own_range_and_the_others_still_arrive() -> None:
    not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope"

    def behave(path: str, s: int, e: int) -> tuple[bytes, bool]:
        return (not_found, True) if path == "/gone" else (ranged(DATA, s, e), True)

    async with http_server(behave) as server:
        client = RangeClient()
        ranges = [asked(server.url("/f"), 0, 100), asked(server.url("/f"), 500, 100),
                  asked(server.url("/f"), 900, 100), asked(server.url("/gone"), 0, 100)]
        got: list[bytes] = []
        try:
            with pytest.raises(WebSeedStatusError) as info:
                async for data in client.fetch_run(ranges):
                    got.append(data)
        finally:
            await client.aclose()
    assert info.value.status == 404 and info.value.url.endswith("/gone")
    assert got == [DATA[0:100], DATA[500:600], DATA[900:1000]]


async def test_a_server_that_ignores_range_is_skimmed_and_asked_for_larger_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole file comes for every range (HTTP 200): the range is taken as it passes, the rest
    is not read, and the web seed asks for larger runs from then on."""
    files = {"a": payload(300_000), "b": payload(70_000, 1)}
    torrent = make_torrent([((n,), d) for n, d in files.items()], 16 * 1024, name="n")
    monkeypatch.setattr(client_mod, "IDLE_POLL", 0.01)
    async with http_server(lambda path, s, e: (whole_file(files[path.rsplit("/", 1)[1]]), True)) as server:
        host = Host(torrent)
        host.picker.peer_have_all(("u", 0))
        seed = WebSeed(server.url("/pub"), host, run_bytes=32 * 1024)
        seed.key = ("u", 0)
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(seed.run)
                while not host.picker.is_complete():
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
    blob = files["a"] + files["b"]
    assert all(data == blob[i * 16384:(i + 1) * 16384] for i, data in host.pieces.items())
    assert sorted(host.pieces) == list(range(torrent.num_pieces))
    assert seed.client.whole_files and not seed.state.gave_up and not seed.state.last_error
    # one run of 2 pieces (32 KiB) at first; then runs of up to 16 MiB from the lowest fresh
    # piece, one range per file: at most two runs (before and after the first), not 12
    assert len(server.requests) <= 5
