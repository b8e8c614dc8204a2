"""Full lists read a page of jobs at a time with the loop let run between pages (issue 47: at
30 000 torrents ``torrents/info``, a full ``sync/maindata``, ``torrent-get``, ``GET /api/jobs``
and the event stream's snapshot each held the event loop 150–500 ms in one go), their answers
byte for byte what one page of every job gives, a user's as much their own as before, and made
of her own jobs alone (with what counts or acts on all of them)."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.integration.api_helpers import TOKEN, Api, running_api
from tests.integration.test_api_users import PASSWORDS, as_user, qbt_as, users
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.api import pages as paging
from torrent_engine.engine import turns as turns_module

pytestmark = pytest.mark.anyio

PAGE = 2
ADMIN_JOBS = 6
ALICE_JOBS = 3

Answer = tuple[int, dict[str, str], bytes]


def torrent_bytes(n: int) -> bytes:
    return make_torrent([(("a.bin",), payload(20000, n))], 16384, name=f"t{n}").to_bytes()


class Turns:
    """Counts the loop's turns (a task that yields at each), and notes the turn of each job read."""

    def __init__(self) -> None:
        self.count = 0
        self.reads: list[int] = []

    async def run(self) -> None:
        while True:
            await anyio.sleep(0)
            self.count += 1

    @contextmanager
    def reading(self, api: Api) -> Iterator[list[int]]:
        """The turns at which ``api``'s service made each job's list view, while inside."""
        run = api.service._run  # (the one maker of the jobs' list views: JobLifecycle.listed)
        listed = run.listed
        reads: list[int] = []

        def noted(rec: object) -> object:
            reads.append(self.count)
            return listed(rec)  # type: ignore[arg-type]

        run.listed = noted  # type: ignore[method-assign]
        try:
            yield reads
        finally:
            del run.listed


async def transmission(c: httpx.AsyncClient, arguments: dict[str, object]) -> httpx.Response:
    return await rpc_call(c, "torrent-get", arguments)


async def rpc_call(c: httpx.AsyncClient, method: str, arguments: dict[str, object]) -> httpx.Response:
    call = {"method": method, "arguments": arguments}
    r = await c.post("/transmission/rpc", json=call)
    if r.status_code == 409:
        c.headers["X-Transmission-Session-Id"] = r.headers["x-transmission-session-id"]
        r = await c.post("/transmission/rpc", json=call)
    return r


async def sse_snapshot(c: httpx.AsyncClient) -> httpx.Response:
    """``GET /api/events`` read to the end of its first event (the snapshot); its text as content."""
    async with c.stream("GET", "/api/events") as r:
        text = b""
        async for chunk in r.aiter_bytes():
            text += chunk
            if b"event: snapshot" in text and text.endswith(b"\n\n"):
                break
    return httpx.Response(r.status_code, headers=r.headers, content=text)


def normal(name: str, body: bytes) -> bytes:
    """What may differ between two asks of the same list: a full maindata's rid and the disk's
    free space (other processes write meanwhile), an event's id and time."""
    if name.startswith("sync/maindata"):
        body = re.sub(rb'"free_space_on_disk":\d+', b'"free_space_on_disk":0', body)
        return re.sub(rb'^\{"rid":\d+,', b'{"rid":0,', body)
    if name.startswith("SSE"):
        body = re.sub(rb"id: \d+\n", b"id: 0\n", body)
        return re.sub(rb',"time":[0-9.e+-]+\}\n\n$', b',"time":0}\n\n', body)
    return body


@asynccontextmanager
async def counted() -> AsyncIterator[Turns]:
    turns = Turns()
    async with anyio.create_task_group() as tg:
        tg.start_soon(turns.run)
        try:
            yield turns
        finally:
            tg.cancel_scope.cancel()


async def compare(api: Api, turns: Turns, name: str, ask: Callable[[], Awaitable[httpx.Response]],
                  monkeypatch: pytest.MonkeyPatch, jobs: int) -> bytes:
    """Ask ``ask`` with every job in one page (as before pages), then ``PAGE`` jobs a page: the
    same answer and headers; one page's jobs read in one turn of the loop, the paged list's over
    at least a turn a page."""
    answers: list[tuple[int, dict[str, str], bytes]] = []
    spans = []
    for step, turn in ((10**9, 10.0**9), (PAGE, 0.0)):  # (all in one go; a turn at each step)
        monkeypatch.setattr(paging, "STEP", step)
        monkeypatch.setattr(turns_module, "TURN", turn)
        with turns.reading(api) as reads:
            r = await ask()
        assert r.status_code == 200, (name, r.text[:300])
        varying = ["date", "x-transmission-session-id"]  # (and the length of a stream: its time;
        # of a maindata: the digits of the free space)
        varying += ["content-length"] if name.startswith(("SSE", "sync/maindata")) else []
        headers = {k: v for k, v in r.headers.items() if k not in varying}
        if "content-length" in headers:
            assert int(headers["content-length"]) == len(r.content), name
        answers.append((r.status_code, headers, normal(name, r.content)))
        assert len(reads) >= jobs, (name, reads)
        spans.append(len(set(reads)))
    assert answers[0] == answers[1], name
    assert spans[0] == 1, (name, spans)  # (one page: every job read in one go, as before)
    assert spans[1] > spans[0], (name, spans)
    assert spans[1] >= -(-jobs // PAGE), (name, spans)  # (a turn of the loop between two pages)
    return answers[1][2]


async def test_full_lists_let_the_loop_run_between_pages_and_answer_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    users(tmp_path / "state")
    async with running_api(tmp_path) as api, counted() as turns:
        async with as_user(api, "alice") as alice:
            for n in range(ADMIN_JOBS + ALICE_JOBS):  # (alice's jobs between pages of the admin's)
                if n % 3 == 2:
                    source = base64.b64encode(torrent_bytes(n)).decode()
                    r = await alice.post("/api/jobs", json={"source": source, "paused": True})
                    assert r.status_code == 201, r.text
                else:
                    await api.service.add(torrent_bytes(n), paused=True)
            every = ADMIN_JOBS + ALICE_JOBS
            c = api.client
            fields = {"fields": ["id", "hashString", "name", "status", "totalSize", "labels"]}
            async with httpx.AsyncClient(base_url=api.url, timeout=30, auth=("admin", TOKEN)) as tr:
                asks: list[tuple[str, Callable[[], Awaitable[httpx.Response]]]] = [
                    ("torrents/info", lambda: c.get("/api/v2/torrents/info")),
                    ("torrents/info?filter", lambda: c.get("/api/v2/torrents/info?filter=paused&sort=name")),
                    ("sync/maindata rid=0", lambda: c.get("/api/v2/sync/maindata?rid=0")),
                    ("torrent-get", lambda: transmission(tr, fields)),
                    ("torrent-get table", lambda: transmission(tr, {**fields, "format": "table"})),
                    ("GET /api/jobs", lambda: c.get("/api/jobs")),
                    ("GET /api/jobs?state", lambda: c.get("/api/jobs?state=paused&offset=1")),
                    ("SSE snapshot", lambda: sse_snapshot(c)),
                ]
                for name, ask in asks:
                    body = await compare(api, turns, name, ask, monkeypatch, every)
                    if name in ("torrents/info", "GET /api/jobs", "SSE snapshot"):
                        assert body.count(b'"name":"t') == every, name
            # a user's lists: her own jobs alone, the same in pages as in one
            async def hers(name: str, ask: Callable[[], Awaitable[httpx.Response]]) -> None:
                body = await compare(api, turns, name, ask, monkeypatch, ALICE_JOBS)
                assert body.count(b'"name":"t') == ALICE_JOBS, name
                with turns.reading(api) as reads:  # (no view made of another's job: hers alone read)
                    assert (await ask()).status_code == 200
                assert len(reads) == ALICE_JOBS, (name, reads)

            async with qbt_as(api, "alice") as q:
                await hers("alice's torrents/info", lambda: q.get("/api/v2/torrents/info"))
                await hers("sync/maindata alice's", lambda: q.get("/api/v2/sync/maindata"))
            async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                         auth=("alice", PASSWORDS["alice"])) as tr:
                await hers("alice's torrent-get", lambda: transmission(tr, fields))
            await hers("alice's GET /api/jobs", lambda: alice.get("/api/jobs"))
            await hers("SSE alice's snapshot", lambda: sse_snapshot(alice))

            # what counts or acts on all a user's jobs: hers alone read too
            async def read_hers(ask: Callable[[], Awaitable[httpx.Response]]) -> Any:
                with turns.reading(api) as reads:
                    r = await ask()
                assert r.status_code == 200 and len(reads) == ALICE_JOBS, (r.text[:300], reads)
                return r.json() if r.headers["content-type"].startswith("application/json") else r.text

            assert len((await read_hers(lambda: alice.get("/api/jobs/active")))["jobs"]) == ALICE_JOBS
            async with qbt_as(api, "alice") as q:
                assert await read_hers(lambda: q.get("/api/v2/torrents/count")) == str(ALICE_JOBS)
                await read_hers(lambda: q.post("/api/v2/torrents/stop", data={"hashes": "all"}))
            async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                         auth=("alice", PASSWORDS["alice"])) as tr:
                stats = await read_hers(lambda: rpc_call(tr, "session-stats", {}))
                assert stats["arguments"]["torrentCount"] == ALICE_JOBS, stats
                table = {"fields": ["id"], "format": "table"}
                got = await read_hers(lambda: rpc_call(tr, "torrent-get", table))
                assert len(got["arguments"]["torrents"]) == ALICE_JOBS + 1, got  # (the table's header row)
