"""Our tracker clients against a real opentracker on a loopback address, over HTTP and UDP.

Debian builds opentracker with an allow-list (``-w FILE``, relative to its ``-d`` folder), so
the test writes the info-hashes it uses there; a hash off the list must give a clean error
(over UDP opentracker answers it with a bare 8-byte header).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config, make_payload
from tests.interop._opentracker import Opentracker, opentracker
from tests.spies import hold_checks
from torrent_engine.api.compat.qbittorrent_records import tracker_rows
from torrent_engine.errors import TrackerError, TrackerRefused
from torrent_engine.events import Event, EventBus
from torrent_engine.jobs import JobService, JobState
from torrent_engine.net.httpclient.kept import KeptConnections
from torrent_engine.net.tracker import AnnounceStats, TrackerCoordinator, http
from torrent_engine.net.tracker.messages import AnnounceRequest
from torrent_engine.net.tracker.udp import UdpTrackerClient
from torrent_engine.session import Session
from torrent_engine.session.state_table import State
from torrent_engine.storage.create import create_torrent

pytestmark = [pytest.mark.interop, pytest.mark.anyio]

HASHES = {name: bytes([i + 1]) * 20 for i, name in enumerate(["http", "udp", "scrape", "coord", "mixed"])}
UNLISTED = b"\xee" * 20


@pytest.fixture(scope="module")
def tracker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Opentracker]:
    with opentracker(tmp_path_factory.mktemp("opentracker"), HASHES.values()) as running:
        yield running


def request(info_hash: bytes, who: int, *, left: int = 100, event: str = "started") -> AnnounceRequest:
    return AnnounceRequest(
        info_hash=info_hash,
        peer_id=f"-TE0100-peer{who:08d}".encode(),
        port=7000 + who,
        left=left,
        event=event,  # type: ignore[arg-type]
    )


async def test_http_two_peers_see_each_other(tracker: Opentracker) -> None:
    ih = HASHES["http"]
    first = await http.announce(tracker.http_url, request(ih, 1), timeout=5)
    # opentracker lists the announcer among the peers; the coordinator filters that out
    assert first.peers == [("127.0.0.1", 7001)]
    second = await http.announce(tracker.http_url, request(ih, 2), timeout=5)
    assert ("127.0.0.1", 7001) in second.peers
    again = await http.announce(tracker.http_url, request(ih, 1, event=""), timeout=5)
    assert ("127.0.0.1", 7002) in again.peers
    assert again.interval > 0 and again.leechers == 2 and again.seeders == 0


async def test_udp_two_peers_see_each_other(tracker: Opentracker) -> None:
    ih = HASHES["udp"]
    client = UdpTrackerClient()
    await client.announce(tracker.udp_url, request(ih, 1), timeout=5)
    second = await client.announce(tracker.udp_url, request(ih, 2), timeout=5)
    assert ("127.0.0.1", 7001) in second.peers
    again = await client.announce(tracker.udp_url, request(ih, 1, event=""), timeout=5)
    assert ("127.0.0.1", 7002) in again.peers
    assert client.connects_sent == 1  # one connection id served all three announces
    assert (again.leechers, again.seeders) == (2, 0)


async def test_http_and_udp_share_one_swarm(tracker: Opentracker) -> None:
    ih = HASHES["mixed"]
    await http.announce(tracker.http_url, request(ih, 1), timeout=5)
    over_udp = await UdpTrackerClient().announce(tracker.udp_url, request(ih, 2), timeout=5)
    assert ("127.0.0.1", 7001) in over_udp.peers


async def test_scrape_numbers_match_the_swarm(tracker: Opentracker) -> None:
    ih = HASHES["scrape"]
    await http.announce(tracker.http_url, request(ih, 1, left=0), timeout=5)  # a seeder
    await http.announce(tracker.http_url, request(ih, 2), timeout=5)  # a leecher
    await http.announce(tracker.http_url, request(ih, 3), timeout=5)  # a leecher that finishes
    done = await http.announce(tracker.http_url, request(ih, 3, left=0, event="completed"), timeout=5)
    over_http = (await http.scrape(tracker.http_url, [ih], timeout=5)).files[ih]
    over_udp = (await UdpTrackerClient().scrape(tracker.udp_url, [ih], timeout=5)).files[ih]
    assert (over_http.complete, over_http.incomplete, over_http.downloaded) == (2, 1, 1)
    assert over_udp == over_http
    assert (done.seeders, done.leechers) == (over_http.complete, over_http.incomplete)


async def test_unlisted_info_hash_gives_clean_errors(tracker: Opentracker) -> None:
    with pytest.raises(TrackerError, match="does not know this torrent"):
        await UdpTrackerClient().announce(tracker.udp_url, request(UNLISTED, 1), timeout=5)
    with pytest.raises(TrackerRefused, match="not authorized"):
        await http.announce(tracker.http_url, request(UNLISTED, 1), timeout=5)


async def test_two_coordinators_find_each_other(tracker: Opentracker) -> None:
    ih = HASHES["coord"]
    found: dict[int, set[tuple[str, int]]] = {1: set(), 2: set()}
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe("*", events.append)

    def make(who: int, tiers: list[list[str]]) -> TrackerCoordinator:
        return TrackerCoordinator(
            tiers=tiers,
            info_hash=ih,
            peer_id=f"-TE0100-coord{who:07d}".encode(),
            port=7100 + who,
            stats=lambda: AnnounceStats(uploaded=0, downloaded=0, left=10),
            on_peers=lambda peers: found[who].update(peers),
            events=bus,
            min_announce_interval=0,
            announce_timeout=3,
        )

    one = make(1, [[tracker.udp_url], [tracker.http_url]])
    two = make(2, [[tracker.http_url, tracker.udp_url]])
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one.run)
            while not one.status()[0].last_success:
                await anyio.sleep(0.02)
            tg.start_soon(two.run)
            while not found[2]:
                await anyio.sleep(0.02)
            tg.cancel_scope.cancel()
        await one.announce_now()  # its next regular announce
        await one.stop(5)
        await two.stop(5)
    assert ("127.0.0.1", 7101) in found[2] and ("127.0.0.1", 7102) in found[1]
    assert ("127.0.0.1", 7101) not in found[1] and ("127.0.0.1", 7102) not in found[2]  # never ourselves
    await anyio.sleep(0.05)
    assert {e.name for e in events} == {"tracker.success"}
    stats = (await http.scrape(tracker.http_url, [ih], timeout=5)).files.get(ih)
    assert stats is None or (stats.complete, stats.incomplete) == (0, 0)  # both said 'stopped'


async def test_a_jobs_trackers_are_scraped_for_their_download_count(tmp_path: Path) -> None:
    """The job service scrapes a job's trackers when asked (BEP 48 over HTTP, BEP 15 over UDP):
    opentracker's count of completed downloads reaches the job's trackers list, and the
    qBittorrent dialect's ``num_downloaded``."""
    payload = make_payload(tmp_path / "dl", (("a.bin", 100_000),))
    info_hash = create_torrent(payload, piece_length=32 * 1024).info_hash  # (the trackers are not in it)
    with opentracker(tmp_path / "opentracker", [info_hash]) as tracker:
        torrent = create_torrent(payload, piece_length=32 * 1024,
                                 trackers=[[tracker.http_url], [tracker.udp_url]])
        assert torrent.info_hash == info_hash
        # another peer finished its download here: the count a scrape says
        await http.announce(tracker.http_url, request(info_hash, 3, left=0, event="completed"), timeout=5)
        state_dir = tmp_path / "state"
        config = loopback_config(state_dir=state_dir, tracker_enabled=True)
        async with JobService(config, download_root=tmp_path / "dl", state_dir=state_dir) as jobs:
            job, _ = await jobs.add(torrent)
            with anyio.fail_after(20):
                while jobs.get(job.id).state is not JobState.SEEDING:
                    await anyio.sleep(0.05)
                while not jobs.scrape_trackers(job.id):  # (its trackers start with its swarm)
                    await anyio.sleep(0.05)
                while any(t.downloaded is None and t.scrape_error is None for t in jobs.get(job.id).trackers):
                    await anyio.sleep(0.05)
            shown = {t.url: t for t in jobs.get(job.id).trackers}
            for url in (tracker.http_url, tracker.udp_url):
                assert shown[url].downloaded == 1 and shown[url].scrape_error is None, shown[url]
                assert shown[url].seeds is not None and shown[url].seeds >= 1  # (that peer, and us)
            rows = {r["url"]: r for r in tracker_rows(jobs.get(job.id), False, ())}
            assert rows[tracker.udp_url]["num_downloaded"] == rows[tracker.http_url]["num_downloaded"] == 1
            assert not jobs.scrape_trackers(job.id)  # (scraped a moment ago: not again before the interval)


async def test_a_paused_job_leaves_opentrackers_swarm(tmp_path: Path) -> None:
    """A paused job's trackers are told ``stopped``, a dormant seed's as a session's: opentracker
    counts our seed, then none once it is paused (it counted it until its own timeout before),
    then again once it is resumed (a dormant seed again), then none once it is paused again."""
    payload = make_payload(tmp_path / "dl", (("a.bin", 100_000),))
    info_hash = create_torrent(payload, piece_length=32 * 1024).info_hash  # (the trackers are not in it)
    with opentracker(tmp_path / "opentracker", [info_hash]) as tracker:
        torrent = create_torrent(payload, piece_length=32 * 1024, trackers=[[tracker.http_url]])

        async def seeds_counted(count: int) -> None:
            with anyio.fail_after(20):
                while True:
                    stats = (await http.scrape(tracker.http_url, [info_hash], timeout=5)).files.get(info_hash)
                    if (stats.complete if stats is not None else 0) == count:
                        return
                    await anyio.sleep(0.1)

        state_dir = tmp_path / "state"
        config = loopback_config(state_dir=state_dir, tracker_enabled=True)
        async with JobService(config, download_root=tmp_path / "dl", state_dir=state_dir) as jobs:
            job, _ = await jobs.add(torrent)  # (its data there: checked, then a dormant seed)
            await seeds_counted(1)
            assert job.id in jobs._run.seeds
            await jobs.pause(job.id)
            await seeds_counted(0)
            await jobs.resume(job.id)  # (complete, its file there: a dormant seed again, announced)
            await seeds_counted(1)
            assert job.id in jobs._run.seeds and jobs.manager.get(torrent.info_hash) is None
            await jobs.pause(job.id)
            await seeds_counted(0)


async def test_a_seed_whose_data_fails_leaves_opentrackers_swarm_while_it_is_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed mode found a piece that fails its hash: the swarm ends for a check of the whole
    torrent, during which it serves nobody, so its trackers are told ``stopped`` (opentracker
    counts no seed then; before, it went on counting one), and after it ``started`` as the
    leecher of the piece it lacks now."""
    held = hold_checks(monkeypatch)
    payload = make_payload(tmp_path / "seed", (("a.bin", 200_000),))
    held.names.add(payload.name)
    piece = 32 * 1024
    info_hash = create_torrent(payload, piece_length=piece).info_hash  # (the trackers are not in it)
    with (payload / "a.bin").open("r+b") as f:  # (piece 2 on disk is not what the torrent says)
        f.seek(2 * piece + 10)
        f.write(b"\x00" * 100)
    with opentracker(tmp_path / "opentracker", [info_hash]) as tracker:
        torrent = create_torrent(make_payload(tmp_path / "clean", (("a.bin", 200_000),)), piece_length=piece,
                                 trackers=[[tracker.http_url]])
        assert torrent.info_hash == info_hash

        async def counted(seeds: int, leechers: int) -> None:
            with anyio.fail_after(20):
                while True:
                    stats = (await http.scrape(tracker.http_url, [info_hash], timeout=5)).files.get(info_hash)
                    if stats is not None and (stats.complete, stats.incomplete) == (seeds, leechers):
                        return
                    await anyio.sleep(0.1)

        config = loopback_config(tracker_enabled=True)
        async with Session(torrent, tmp_path / "seed", config=config, seed_mode=True) as seed:
            await seed.wait_ready()
            await counted(1, 0)
            async with seed.open_file(0) as reader:
                with anyio.move_on_after(1):  # (the piece that fails: never returned)
                    await reader.read(3 * piece)
            with anyio.fail_after(30):
                await held.checking.wait()
            assert seed.state is State.CHECKING
            await counted(0, 0)  # (told stopped: it serves nobody while it is checked)
            held.release.set()
            await counted(0, 1)  # (started again, lacking the piece that failed)
            assert 2 not in seed.have and not seed.seed_mode


async def test_http_announces_with_connections_kept(tracker: Opentracker) -> None:
    """opentracker answers as HTTP/1.1 without ``Connection: close``, then closes: the kept
    connections' client finds each connection closed — before it sends on it, or (its close not
    come yet on a loaded machine) when nothing answers, and then sends again on a new one — and
    every announce is answered."""
    ih = HASHES["mixed"]
    kept = KeptConnections(30.0)
    for who in (11, 12, 13):
        response = await http.announce(tracker.http_url, request(ih, who), timeout=5, kept=kept)
        assert ("127.0.0.1", 7000 + who) in response.peers
    assert len(kept) <= 1
