"""Host names looked up once for many connections (``net.resolver``): a name's addresses kept for
``CACHE_FOR`` seconds, one look-up for callers at once, failures not kept, a name whose
addresses all failed looked up again; and the race of a name's addresses (``netbind._race``)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.unit.tracker._tracker_servers import HttpRequest, http_response, http_tracker
from torrent_engine.net import resolver
from torrent_engine.net.httpclient import http_get

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    resolver.clear()
    yield
    resolver.clear()


class FakeDns:
    """getaddrinfo's stand-in: ``answers`` by name (an exception is raised), counted, each
    answered after ``delay`` seconds."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answers: dict[str, Any], delay: float = 0.05) -> None:
        self.answers = answers
        self.asked: list[str] = []
        self.delay = delay
        monkeypatch.setattr(resolver.anyio, "getaddrinfo", self.getaddrinfo)

    async def getaddrinfo(self, host: str, port: int, **kw: object) -> list[tuple[Any, ...]]:
        self.asked.append(host)
        await anyio.sleep(self.delay)
        answer = self.answers[host.lower()]
        if isinstance(answer, BaseException):
            raise answer
        return [(family, socket.SOCK_STREAM, 6, "",
                 (ip, port, 0, 0) if family == socket.AF_INET6 else (ip, port)) for family, ip in answer]


async def test_a_name_is_looked_up_once_for_callers_at_once_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    dns = FakeDns(monkeypatch, {"tracker.test": [(socket.AF_INET, "127.0.0.2")]})
    now = [1000.0]
    monkeypatch.setattr(resolver, "clock", lambda: now[0])
    results: list[list[resolver.Address]] = []

    async def one() -> None:
        results.append(await resolver.resolve("Tracker.TEST", 80))

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(one)
    assert results == [[(socket.AF_INET, ("127.0.0.2", 80))]] * 10 and dns.asked == ["Tracker.TEST"]
    now[0] += resolver.CACHE_FOR - 1
    await resolver.resolve("tracker.test", 80)
    assert len(dns.asked) == 1  # (kept)
    await resolver.resolve("tracker.test", 81)
    assert len(dns.asked) == 2  # (another port: another look-up)
    now[0] += 2
    await resolver.resolve("tracker.test", 80)
    assert len(dns.asked) == 3  # (expired)
    resolver.forget("tracker.test", 80)
    await resolver.resolve("tracker.test", 80)
    assert len(dns.asked) == 4  # (forgotten)


async def test_a_failed_look_up_reaches_every_caller_and_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    dns = FakeDns(monkeypatch, {"gone.test": socket.gaierror(socket.EAI_NONAME, "Name or service not known")})
    failures: list[BaseException] = []

    async def one() -> None:
        try:
            await resolver.resolve("gone.test", 80)
        except OSError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    assert len(failures) == 3 and all(isinstance(f, socket.gaierror) for f in failures)
    assert "not known" in str(failures[1]) and dns.asked == ["gone.test"]
    with pytest.raises(socket.gaierror):
        await resolver.resolve("gone.test", 80)
    assert len(dns.asked) == 2


async def test_an_ip_address_is_not_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    dns = FakeDns(monkeypatch, {})
    assert await resolver.resolve("127.0.0.1", 80) == [(socket.AF_INET, ("127.0.0.1", 80))]
    assert await resolver.resolve("::1", 80, socket.SOCK_DGRAM) == [(socket.AF_INET6, ("::1", 80, 0, 0))]
    assert dns.asked == []


async def test_a_waiter_whose_look_up_was_cancelled_looks_up_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    dns = FakeDns(monkeypatch, {"t.test": [(socket.AF_INET, "127.0.0.3")]}, delay=0.2)
    got: list[list[resolver.Address]] = []

    async def first() -> None:
        with anyio.move_on_after(0.05):
            await resolver.resolve("t.test", 80)

    async def second() -> None:
        await anyio.sleep(0.01)
        got.append(await resolver.resolve("t.test", 80))

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        tg.start_soon(second)
    assert got == [[(socket.AF_INET, ("127.0.0.3", 80))]] and dns.asked == ["t.test", "t.test"]


async def answer(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
    await stream.send(http_response(b"ok"))


async def test_requests_to_a_name_look_it_up_once_and_race_its_addresses(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # ::1 first (nothing listens there: refused), then 127.0.0.1, where the server is
    dns = FakeDns(monkeypatch, {"tracker.test": [(socket.AF_INET6, "::1"), (socket.AF_INET6, "::1"),
                                                 (socket.AF_INET, "127.0.0.1")]})
    async with http_tracker(answer) as server:
        for _ in range(3):
            response = await http_get(f"http://tracker.test:{server.port}/announce", timeout=5)
            assert response.body == b"ok"
        assert dns.asked == ["tracker.test"] and len(server.requests) == 3


async def test_a_name_whose_addresses_all_fail_is_looked_up_again(monkeypatch: pytest.MonkeyPatch) -> None:
    dns = FakeDns(monkeypatch, {"moved.test": [(socket.AF_INET, "127.0.0.1")]})
    async with http_tracker(answer) as server:
        port = server.port
        assert (await http_get(f"http://moved.test:{port}/a", timeout=5)).body == b"ok"
    # the server is gone from its address: refused, and the name forgotten
    with pytest.raises(Exception, match="refused"):
        await http_get(f"http://moved.test:{port}/a", timeout=5)
    assert dns.asked == ["moved.test"]
    with pytest.raises(Exception, match="refused"):
        await http_get(f"http://moved.test:{port}/a", timeout=5)
    assert dns.asked == ["moved.test", "moved.test"]


async def test_a_udp_trackers_name_is_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.unit.tracker._tracker_servers import UdpTracker, udp_tracker
    from torrent_engine.net.tracker.messages import AnnounceRequest
    from torrent_engine.net.tracker.udp import UdpTrackerClient

    dns = FakeDns(monkeypatch, {"udp.test": [(socket.AF_INET, "127.0.0.1")]})
    request = AnnounceRequest(info_hash=b"\x01" * 20, peer_id=b"-TE0100-resolver0001", port=6881, left=1)
    async with udp_tracker(UdpTracker()) as tracker:
        client = UdpTrackerClient()
        for _ in range(3):
            await client.announce(f"udp://udp.test:{tracker.port}/announce", request, timeout=5)
        assert dns.asked == ["udp.test"] and len(tracker.announces) == 3


def test_loops_of_two_threads_each_look_up_on_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    dns = FakeDns(monkeypatch, {"both.test": [(socket.AF_INET, "127.0.0.4")]}, delay=0.2)
    got: list[object] = []

    def run() -> None:
        try:
            got.append(anyio.run(resolver.resolve, "both.test", 80))
        except BaseException as exc:  # (what a wait on another loop's event raises)
            got.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert got == [[(socket.AF_INET, ("127.0.0.4", 80))]] * 2 and len(dns.asked) == 2


async def test_a_udp_trackers_name_is_looked_up_again_when_it_did_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from torrent_engine.errors import TrackerError
    from torrent_engine.net.tracker.messages import AnnounceRequest
    from torrent_engine.net.tracker.udp import UdpTrackerClient

    dns = FakeDns(monkeypatch, {"gone.test": [(socket.AF_INET, "127.0.0.1")]})
    request = AnnounceRequest(info_hash=b"\x01" * 20, peer_id=b"-TE0100-resolver0002", port=6881, left=1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # (bound, never read: no answer)
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        client = UdpTrackerClient(retransmit_base=0.05)
        for _ in range(2):
            with pytest.raises(TrackerError, match="no answer"):
                await client.announce(f"udp://gone.test:{port}/announce", request, timeout=0.3)
    assert dns.asked == ["gone.test", "gone.test"]  # (the silence forgot the name: asked again)
    with pytest.raises(TrackerError, match="refused"):  # (nothing there now: ICMP port unreachable)
        await client.announce(f"udp://gone.test:{port}/announce", request, timeout=5)
    await resolver.resolve("gone.test", port, socket.SOCK_DGRAM)
    assert len(dns.asked) == 4  # (and the refusal forgot it too)


async def test_the_oldest_name_goes_while_another_threads_loop_adds_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Busy(dict[Any, Any]):
        """The names kept, with another thread's loop keeping one more at each look-up by key."""

        def __getitem__(self, key: Any) -> Any:
            dict.__setitem__(self, (f"other{len(self)}.test", 80, socket.SOCK_STREAM), (9e9, []))
            return dict.__getitem__(self, key)

    FakeDns(monkeypatch, {f"n{i}.test": [(socket.AF_INET, "127.0.0.5")] for i in range(3)}, delay=0)
    monkeypatch.setattr(resolver, "MAX_NAMES", 2)
    monkeypatch.setattr(resolver, "_kept", Busy())
    for i in range(3):
        await resolver.resolve(f"n{i}.test", 80)
    assert ("n0.test", 80, socket.SOCK_STREAM) not in resolver._kept  # (the oldest gone)
    assert ("n2.test", 80, socket.SOCK_STREAM) in resolver._kept
