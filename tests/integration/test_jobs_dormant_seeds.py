"""A complete seed has no session after a restart (a dormant seed): every client view shows it
seeding from its record, a peer asking for it wakes it and is served (libtorrent downloads it
whole), its trackers hear ``started`` once across its sleep and its wake, and a wake that finds
its files gone stops the job saying why."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.conftest import require_libtorrent
from tests.integration.api_helpers import running_api
from tests.integration.test_jobs_dormant import transmission
from tests.interop.test_libtorrent_transfer import lt_add, lt_session, wait_lt
from tests.kept import kept_hashes
from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import Job, JobService, JobState
from torrent_engine.net.dht.node import DhtNode
from torrent_engine.session import Session
from torrent_engine.storage.create import create_torrent

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio

FILES = (("a.bin", 150_001), ("sub/b.bin", 70_000))


async def wait_for(get: Any, ok: Any, timeout: float = 30) -> Any:
    with anyio.fail_after(timeout):
        while True:
            value = get()
            if ok(value):
                return value
            await anyio.sleep(0.05)


def service(tmp_path: Path, **config: Any) -> JobService:
    return JobService(loopback_config(**config), download_root=tmp_path / "dl", state_dir=tmp_path / "state")


async def seeding(jobs: JobService, torrents: list[Torrent]) -> list[Job]:
    """Add each torrent (its data already in the download folder): checked, it seeds."""
    added = [(await jobs.add(t.to_bytes()))[0] for t in torrents]
    return [await wait_for(lambda j=job: jobs.get(j.id), lambda j: j.state is JobState.SEEDING)  # type: ignore[misc]
            for job in added]


def seeds_in(tmp_path: Path, n: int, trackers: tuple[str, ...] = ()) -> list[Torrent]:
    return [create_torrent(make_payload(tmp_path / "dl", FILES, seed=i, name=f"seed{i}"),
                           piece_length=16 * 1024, trackers=trackers) for i in range(n)]


async def test_complete_seeds_have_no_session_after_a_restart_and_every_client_shows_them_seeding(
        tmp_path: Path) -> None:
    torrents = [make_torrent(make_payload(tmp_path / "downloads", FILES, seed=i, name=f"seed{i}"),
                             piece_length=16 * 1024) for i in range(3)]
    async with running_api(tmp_path) as api:
        jobs = await seeding(api.service, torrents)
    async with running_api(tmp_path) as api:
        for torrent in torrents:
            assert api.service.manager.get(torrent.info_hash) is None  # dormant: no session
        listed = {j["id"]: j for j in (await api.client.get("/api/jobs")).json()["jobs"]}
        for job in jobs:
            shown = listed[job.id]
            assert (shown["state"], shown["progress"], shown["done_size"]) == ("seeding", 1.0, job.total_size)
            files = (await api.client.get(f"/api/jobs/{job.id}")).json()["files"]
            assert files and all(f["progress"] == 1.0 for f in files)
        qb = (await api.client.get("/api/v2/torrents/info")).json()
        assert {t["hash"]: (t["state"], t["progress"], t["amount_left"]) for t in qb} == {
            t.info_hash.hex(): ("stalledUP", 1, 0) for t in torrents}
        fields = ["hashString", "status", "percentDone"]
        tr = await transmission(api.client, "torrent-get", {"fields": fields})
        assert {t["hashString"]: (t["status"], t["percentDone"]) for t in tr["torrents"]} == {
            t.info_hash.hex(): (6, 1) for t in torrents}  # 6: seeding
        assert api.service.manager.sessions == []  # (looking at them starts none)


async def test_a_libtorrent_peer_downloads_a_dormant_seed_whole(tmp_path: Path) -> None:
    lt = require_libtorrent()
    torrents = seeds_in(tmp_path, 2)
    async with service(tmp_path) as jobs:
        await seeding(jobs, torrents)
    async with service(tmp_path) as jobs:
        wanted = torrents[1]
        assert jobs.manager.get(wanted.info_hash) is None
        port = jobs.manager.shared.listen_port
        assert port
        with lt_session(lt) as ses:
            handle = lt_add(lt, ses, wanted, tmp_path / "lt")
            await wait_lt(handle, seeding=True, peer=("127.0.0.1", port))
        assert not same_files(wanted, tmp_path / "dl", tmp_path / "lt")
        woken = jobs.manager.get(wanted.info_hash)
        assert woken is not None and not woken.rechecked  # (its data trusted as at any start)
        assert jobs.manager.get(torrents[0].info_hash) is None  # (the other still sleeps)
        assert jobs.list()[0].state is JobState.SEEDING and jobs.list()[1].state is JobState.SEEDING


class Tracker:
    """An HTTP tracker that answers every announce (once ``gate`` is set, when there is one),
    and records its event as it comes."""

    def __init__(self) -> None:
        self.events: list[tuple[bytes, str]] = []  # (info-hash, event)
        self.gate: anyio.Event | None = None

    async def handle(self, request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        query = request.query()
        self.events.append((query["info_hash"][0], query.get("event", [b""])[0].decode()))
        if self.gate is not None:
            await self.gate.wait()
        await stream.send(http_response(announce_body(interval=1800)))

    def of(self, torrent: Torrent) -> list[str]:
        return [event for info_hash, event in self.events if info_hash == torrent.info_hash]


@asynccontextmanager
async def tracker() -> AsyncIterator[tuple[Tracker, str]]:
    t = Tracker()
    async with http_tracker(t.handle) as server:
        yield t, f"http://127.0.0.1:{server.port}/announce"


async def test_a_dormant_seed_is_announced_started_once_across_its_wake_and_stopped_at_the_stop(
        tmp_path: Path) -> None:
    async with tracker() as (t, url):
        torrents = seeds_in(tmp_path, 2, trackers=(url,))
        async with service(tmp_path, tracker_enabled=True) as jobs:
            await seeding(jobs, torrents)
        t.events.clear()
        async with service(tmp_path, tracker_enabled=True) as jobs:
            for torrent in torrents:
                await wait_for(lambda tt=torrent: t.of(tt), lambda events: events == ["started"])  # type: ignore[misc]
                assert jobs.manager.get(torrent.info_hash) is None
            job = jobs.list()[0]
            assert [(tr.url, tr.status) for tr in job.trackers] == [(url, "working")]
            wanted = torrents[0]
            async with Session(wanted, tmp_path / "leech", config=loopback_config(seed=False),
                               peers=[("127.0.0.1", jobs.manager.shared.listen_port)]) as leech:
                with anyio.fail_after(30):
                    await leech.wait_completed()
            woken = jobs.manager.get(wanted.info_hash)
            assert woken is not None
            await anyio.sleep(0.5)  # (its session's trackers run: they were told started already)
            assert t.of(wanted) == ["started"]
        # the stop: stopped to each (the woken one's session, and the one still dormant)
        assert t.of(torrents[0]) == ["started", "stopped"]
        assert t.of(torrents[1]) == ["started", "stopped"]


async def test_a_seed_woken_while_its_started_is_unanswered_tells_its_tracker_started_once(
        tmp_path: Path) -> None:
    """A peer wakes a dormant seed while its tracker holds the round's ``started`` unanswered:
    the session's trackers wait for that round's end and go on from it (no ``started`` again,
    no announce before the interval it gave), and its stop tells the tracker ``stopped``."""
    async with tracker() as (t, url):
        torrents = seeds_in(tmp_path, 1, trackers=(url,))
        wanted = torrents[0]
        async with service(tmp_path, tracker_enabled=True) as jobs:
            await seeding(jobs, torrents)
        t.events.clear()
        t.gate = anyio.Event()
        async with service(tmp_path, tracker_enabled=True) as jobs:
            await wait_for(lambda: t.of(wanted), lambda events: events == ["started"])  # (heard, unanswered)
            async with Session(wanted, tmp_path / "leech", config=loopback_config(seed=False),
                               peers=[("127.0.0.1", jobs.manager.shared.listen_port)]) as leech:
                with anyio.fail_after(30):
                    await leech.wait_completed()
            assert jobs.manager.get(wanted.info_hash) is not None  # (woken: its session serves)
            await anyio.sleep(0.5)
            assert t.of(wanted) == ["started"]  # (its session waits for the round in flight)
            t.gate.set()
            await wait_for(lambda: jobs.list()[0].trackers, lambda trackers: trackers[0].status == "working")
            await anyio.sleep(0.5)
            assert t.of(wanted) == ["started"]  # (the interval it gave is 1800 s)
        assert t.of(wanted) == ["started", "stopped"]


async def test_a_wake_that_finds_the_files_gone_stops_the_job_saying_why(tmp_path: Path) -> None:
    torrents = seeds_in(tmp_path, 1)
    async with service(tmp_path) as jobs:
        (job,) = await seeding(jobs, torrents)
    async with service(tmp_path) as jobs:
        torrent = torrents[0]
        assert jobs.manager.get(torrent.info_hash) is None
        gone = tmp_path / "dl" / "seed0" / "sub" / "b.bin"
        gone.unlink()  # (after the start, while it sleeps)
        async with Session(torrent, tmp_path / "leech", config=loopback_config(seed=False),
                           peers=[("127.0.0.1", jobs.manager.shared.listen_port)]) as leech:
            stopped = await wait_for(lambda: jobs.get(job.id), lambda j: j.state not in (
                JobState.SEEDING, JobState.QUEUED, JobState.CHECKING))  # (woken, it checks first)
            assert leech.status().progress == 0.0  # (nothing served)
        assert stopped.state is JobState.ERROR, stopped
        assert stopped.missing_files == ("seed0/sub/b.bin",)
        assert stopped.error and "seed0/sub/b.bin" in stopped.error
        assert not gone.exists()  # nothing fetched


async def test_a_tracker_added_to_a_dormant_seed_hears_of_it_at_once(tmp_path: Path) -> None:
    async with tracker() as (first, url), tracker() as (second, other):
        torrents = seeds_in(tmp_path, 1, trackers=(url,))
        async with service(tmp_path, tracker_enabled=True) as jobs:
            (job,) = await seeding(jobs, torrents)
        async with service(tmp_path, tracker_enabled=True) as jobs:
            await wait_for(lambda: first.of(torrents[0]), lambda events: "started" in events)
            await jobs.set_trackers(job.id, [[url], [other]])
            assert jobs.manager.get(torrents[0].info_hash) is None  # (still dormant)
            await jobs.set_trackers(job.id, [[other]])
            # (the first edit's round may have told it ``started`` already, and the second's
            # round come after it: it is told ``started`` once, and then only announced to)
            heard = await wait_for(lambda: list(second.of(torrents[0])), lambda events: "started" in events)
            await jobs.reannounce(job.id)
            events = await wait_for(lambda: second.of(torrents[0]), lambda events: len(events) > len(heard))
            assert events[0] == "started" and set(events[1:]) == {""}, events


async def test_a_leecher_finds_a_dormant_seed_through_the_dht_alone(tmp_path: Path) -> None:
    torrents = seeds_in(tmp_path, 1)
    async with service(tmp_path) as jobs:
        await seeding(jobs, torrents)
    router = DhtNode(bind=("127.0.0.1", 0), enforce_bep42=False)
    async with anyio.create_task_group() as tg:
        await tg.start(router.run)
        dht = {"dht_enabled": True, "dht_bootstrap": (("127.0.0.1", router.port),), "enforce_bep42": False,
               "dht_interval": 1.0}
        async with service(tmp_path, **dht) as jobs:
            torrent = torrents[0]
            assert jobs.manager.get(torrent.info_hash) is None
            async with TorrentManager(loopback_config(**dht)) as leeches:
                leecher = await leeches.add(torrent, tmp_path / "leech")  # no peer given: the DHT alone
                with anyio.fail_after(60):
                    await leecher.wait_completed()
            assert jobs.manager.get(torrent.info_hash) is not None  # (woken by the leecher)
        tg.cancel_scope.cancel()
    assert not same_files(torrents[0], tmp_path / "dl", tmp_path / "leech")


async def test_dormant_seeds_are_announced_a_few_at_a_time(tmp_path: Path) -> None:
    """Never a storm at the start: at most ``active_tracker_limit`` announces in flight."""
    in_flight, most, answered = 0, 0, 0
    go_on = anyio.Event()

    async def slow(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        nonlocal in_flight, most, answered
        in_flight += 1
        most = max(most, in_flight)
        try:
            await go_on.wait()
            await stream.send(http_response(announce_body(interval=1800)))
            answered += 1
        finally:
            in_flight -= 1

    async def fast(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        await stream.send(http_response(announce_body(interval=1800)))

    handler = {"now": fast}

    async def handle(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        await handler["now"](request, stream)

    async with http_tracker(handle) as server:
        url = f"http://127.0.0.1:{server.port}/announce"
        torrents = seeds_in(tmp_path, 6, trackers=(url,))
        async with service(tmp_path, tracker_enabled=True) as jobs:
            await seeding(jobs, torrents)
        handler["now"] = slow
        async with service(tmp_path, tracker_enabled=True, active_tracker_limit=2) as jobs:
            await wait_for(lambda: in_flight, lambda n: n == 2)
            await anyio.sleep(0.3)  # (a third would have come by now)
            assert in_flight == 2
            go_on.set()
            await wait_for(lambda: answered, lambda n: n == 6)
            assert most == 2
            assert all(jobs.manager.get(t.info_hash) is None for t in torrents)


async def test_two_peers_asking_for_a_dormant_seed_at_once_wake_it_once_and_both_are_served(
        tmp_path: Path) -> None:
    torrents = seeds_in(tmp_path, 1)
    async with service(tmp_path) as jobs:
        (job,) = await seeding(jobs, torrents)
    async with service(tmp_path) as jobs:
        torrent = torrents[0]
        port = jobs.manager.shared.listen_port
        starts: list[object] = []
        jobs.manager.events.subscribe("session.started", starts.append)
        async with Session(torrent, tmp_path / "one", config=loopback_config(seed=False),
                           peers=[("127.0.0.1", port)]) as one, \
                Session(torrent, tmp_path / "two", config=loopback_config(seed=False),
                        peers=[("127.0.0.1", port)]) as two:
            with anyio.fail_after(30):
                await one.wait_completed()
                await two.wait_completed()
        assert len(starts) == 1 and jobs.get(job.id).state is JobState.SEEDING
    for leech in ("one", "two"):
        assert not same_files(torrent, tmp_path / "dl", tmp_path / leech)


async def test_a_seed_mode_add_writes_its_torrent_alone_and_restarts_dormant(tmp_path: Path) -> None:
    """A seed-mode add (qBittorrent's skip_checking) creates one file in the state folder, its
    torrent: its save path and seed mode are its job record's, which a restart reads (a
    placeholder resume file beside it was a second file created an add, the larger part of a
    batch's time on a disk slow to create files)."""
    torrents = seeds_in(tmp_path, 3)
    async with service(tmp_path) as jobs:
        added = [(await jobs.add(t.to_bytes(), seed_mode=True))[0] for t in torrents]
        for job in added:
            await wait_for(lambda j=job: jobs.get(j.id), lambda j: j.state is JobState.SEEDING)  # type: ignore[misc]
        saved = {p.name for p in (tmp_path / "state").rglob("*") if p.is_file()}
        kept = kept_hashes(tmp_path / "state")
        for t in torrents:
            assert t.info_hash.hex() in kept
            assert f"{t.info_hash.hex()}.resume" not in saved and f"{t.info_hash.hex()}.torrent" not in saved
    async with service(tmp_path) as jobs:
        for t, job in zip(torrents, added, strict=True):
            assert jobs.manager.get(t.info_hash) is None  # (dormant: no session)
            assert jobs.get(job.id).state is JobState.SEEDING and jobs.get(job.id).seed_mode


async def test_a_dormant_seed_in_seed_mode_is_woken_and_verifies_what_it_serves(tmp_path: Path) -> None:
    """(A seedbox's cross-seeds are added in seed mode: they sleep too.)"""
    torrents = seeds_in(tmp_path, 1)
    torrent = torrents[0]
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent.to_bytes(), seed_mode=True)
        await wait_for(lambda: jobs.get(job.id), lambda j: j.state is JobState.SEEDING)
    async with service(tmp_path) as jobs:
        assert jobs.manager.get(torrent.info_hash) is None and jobs.get(job.id).seed_mode
        async with Session(torrent, tmp_path / "leech", config=loopback_config(seed=False),
                           peers=[("127.0.0.1", jobs.manager.shared.listen_port)]) as leech:
            with anyio.fail_after(30):
                await leech.wait_completed()
        woken = jobs.get(job.id)
        assert woken.verified_pieces == torrent.num_pieces  # (each piece hashed as it was served)
    assert not same_files(torrent, tmp_path / "dl", tmp_path / "leech")


async def test_a_seed_added_in_seed_mode_is_dormant_at_once_and_a_libtorrent_peer_downloads_it(
        tmp_path: Path) -> None:
    """(What a cross-seeding tool adds by the thousand: no session is made for it, its record
    alone, until a peer asks for it; then each piece is verified as it is first served.)"""
    lt = require_libtorrent()
    torrent = seeds_in(tmp_path, 1)[0]
    async with service(tmp_path) as jobs:
        job, created = await jobs.add(torrent.to_bytes(), seed_mode=True)
        assert created and job.state is JobState.SEEDING and job.progress == 1.0
        assert jobs.manager.get(torrent.info_hash) is None  # dormant from the add
        assert torrent.info_hash.hex() in kept_hashes(jobs.state_dir)
        port = jobs.manager.shared.listen_port
        assert port
        with lt_session(lt) as ses:
            handle = lt_add(lt, ses, torrent, tmp_path / "lt")
            await wait_lt(handle, seeding=True, peer=("127.0.0.1", port))
        assert not same_files(torrent, tmp_path / "dl", tmp_path / "lt")
        assert jobs.manager.get(torrent.info_hash) is not None  # (woken by the peer)
        assert jobs.get(job.id).verified_pieces == torrent.num_pieces  # (each piece hashed as served)


async def test_a_seed_mode_add_whose_file_is_short_gets_its_session_which_says_so(tmp_path: Path) -> None:
    torrent = seeds_in(tmp_path, 1)[0]
    with open(tmp_path / "dl" / "seed0" / "sub" / "b.bin", "r+b") as f:
        f.truncate(1000)
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent.to_bytes(), seed_mode=True)
        assert job.state is not JobState.SEEDING  # not dormant: its session looks, and says why
        job = await wait_for(lambda: jobs.get(job.id), lambda j: j.state is JobState.ERROR)
        assert job.error is not None and "sub/b.bin" in job.error


async def test_a_checked_add_of_complete_data_is_hashed_then_seeds_without_a_session(tmp_path: Path) -> None:
    torrent = seeds_in(tmp_path, 1)[0]
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent.to_bytes())
        assert job.state is JobState.CHECKING  # (its check without a session: jobs/intake/checks.py)
        job = await wait_for(lambda: jobs.get(job.id), lambda j: j.state is JobState.SEEDING)
        assert jobs.manager.get(torrent.info_hash) is None  # a dormant seed, its pieces hashed
        resume = jobs.manager.saved_resume(torrent.info_hash)  # (a row of the store: no file a check)
        assert resume is not None and len(resume.pieces()) == torrent.num_pieces and resume.files
        assert not (jobs.state_dir / "torrents" / f"{torrent.info_hash.hex()}.resume").exists()


async def test_a_seed_added_in_seed_mode_is_announced_started_once_and_stopped_at_the_stop(
        tmp_path: Path) -> None:
    async with tracker() as (t, url):
        torrent = seeds_in(tmp_path, 1, trackers=(url,))[0]
        async with service(tmp_path, tracker_enabled=True) as jobs:
            job, _ = await jobs.add(torrent.to_bytes(), seed_mode=True)
            await wait_for(lambda: t.of(torrent), lambda events: events == ["started"])
            assert jobs.manager.get(torrent.info_hash) is None
            shown = await wait_for(lambda: jobs.get(job.id).trackers,
                                   lambda trs: trs and trs[0].status == "working")
            assert [tr.url for tr in shown] == [url]
        assert t.of(torrent) == ["started", "stopped"]


async def test_a_list_of_dormant_seeds_reads_no_metainfo_and_shows_their_torrents_facts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(A seedbox lists 10 000 dormant seeds a second: their size, private flag and trackers
    come from their records, not from 10 000 .torrent files read on the loop and kept.)"""
    url = "http://127.0.0.1:9/announce"
    torrents = [create_torrent(make_payload(tmp_path / "downloads", FILES, seed=i, name=f"seed{i}"),
                               piece_length=16 * 1024, trackers=(url,), private=i == 1) for i in range(2)]
    async with running_api(tmp_path) as api:
        await seeding(api.service, torrents)
    reads: list[object] = []
    real = TorrentManager.saved_metainfo
    # (where the job layer reads a saved torrent for a job's facts; the start's other readers,
    # such as the complete jobs' files learnt for deduplication, read it once in a worker thread)
    readers = {f"torrent_engine.jobs.{module}" for module in ("lifecycle", "edits", "queueing.dormant")}

    def counted(manager: TorrentManager, info_hash: bytes | str) -> Torrent | None:
        if sys._getframe(1).f_globals.get("__name__") in readers:
            reads.append(info_hash)
        return real(manager, info_hash)

    monkeypatch.setattr(TorrentManager, "saved_metainfo", counted)
    async with running_api(tmp_path) as api:
        assert all(api.service.manager.get(t.info_hash) is None for t in torrents)  # dormant
        for _ in range(2):
            qb = {t["hash"]: t for t in (await api.client.get("/api/v2/torrents/info")).json()}
            for torrent in torrents:
                shown = qb[torrent.info_hash.hex()]
                assert (shown["total_size"], shown["private"]) == (torrent.total_length, torrent.private)
                assert "tr=http%3A%2F%2F127.0.0.1%3A9%2Fannounce" in shown["magnet_uri"]
            maindata = (await api.client.get("/api/v2/sync/maindata")).json()
            assert len(maindata["torrents"]) == 2
        assert reads == []


async def test_a_torrent_saved_for_no_job_is_forgotten_at_a_start_and_the_seeds_still_sleep(
        tmp_path: Path) -> None:
    """(One listing of the state folder serves both: the stray torrent's files go, the seeds'
    saved torrent and resume data are found there.)"""
    torrents = seeds_in(tmp_path, 2)
    async with service(tmp_path) as jobs:
        await seeding(jobs, torrents[:1])
    folder = tmp_path / "state" / "torrents"
    folder.mkdir(exist_ok=True)  # (its resume data is a row: the folder may not be there yet)
    stray = folder / f"{torrents[1].info_hash.hex()}.torrent"
    stray.write_bytes(torrents[1].to_bytes())
    (folder / "notes.txt").write_text("not the engine's")
    async with service(tmp_path) as jobs:
        assert not stray.exists() and kept_hashes(tmp_path / "state") == {torrents[0].info_hash.hex()}
        assert (folder / "notes.txt").exists()
        assert jobs.manager.get(torrents[0].info_hash) is None  # (dormant: its files were found)
        assert jobs.list()[0].state is JobState.SEEDING
