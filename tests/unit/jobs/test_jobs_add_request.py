"""One add request: ``JobService.add(AddTorrent, AddOptions)`` takes every option of a job in
one checked value and acts on it in one step (file priorities, queue place, paused state in the
job's first snapshot), a URL fetched by the service."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import anyio
import anyio.abc
import pytest

from tests.unit.jobs.confines import counted_confines
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.config import Config
from torrent_engine.engine.addtorrent import MagnetLink, Parsed, TorrentBytes, TorrentUrl
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import (
    AddOptions,
    InvalidJobRequest,
    Job,
    JobAdded,
    JobConflict,
    JobService,
    JobState,
)
from torrent_engine.jobs.disk import paths
from torrent_engine.jobs.disk.claims import PathClaims

pytestmark = pytest.mark.anyio


def cfg(slots: int = 0) -> Config:
    return Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                  lsd_enabled=False, tracker_enabled=False, seed=False, max_active_downloads=slots)


def three_files() -> Torrent:
    return make_torrent([(("a",), payload(1000)), (("b",), payload(2000)), (("c",), payload(3000))], 16384)


async def _events_flushed() -> None:
    for _ in range(5):
        await anyio.sleep(0)


async def test_file_priorities_are_the_jobs_from_its_first_snapshot(tmp_path: Path) -> None:
    torrent = three_files()
    added: list[JobAdded] = []
    async with JobService(cfg(), download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        jobs.events.subscribe(JobAdded, added.append)
        options = AddOptions(files=(0, 2), file_priorities=((2, 7),), paused=True)
        job, created = await jobs.add(TorrentBytes(torrent.to_bytes()), options)
        await _events_flushed()
        assert created and [f.priority for f in job.files] == [4, 0, 7] and job.total_size == 4000
        assert [e.job.id for e in added] == [job.id]
        assert [f.priority for f in added[0].job.files] == [4, 0, 7]
        assert added[0].job.state is JobState.PAUSED
        session = jobs.manager.get(torrent.info_hash)
        assert session is not None and session.file_priorities == [4, 0, 7]


async def test_options_are_checked_where_they_are_built() -> None:
    bad: list[tuple[dict[str, object], str]] = [
        ({"files": []}, "files"), ({"files": [-1]}, "files"), ({"download_limit": -1}, "download_limit"),
        ({"peers": [("127.0.0.1", 0)]}, "peers"), ({"file_priorities": ((0, 9),)}, "file_priorities"),
        ({"files": [0], "file_priorities": ((1, 1),)}, "file_priorities"), ({"paused": 1}, "paused")]
    for kw, field in bad:
        with pytest.raises(InvalidJobRequest) as refused:
            AddOptions(**kw)  # type: ignore[arg-type]
        assert refused.value.field == field
    mapped = AddOptions(files=[2, 0, 2], file_priorities={1: 0, 0: 5})  # type: ignore[arg-type]
    assert mapped == AddOptions(files=(0, 2), file_priorities=((0, 5), (1, 0)))


async def test_priorities_out_of_range_or_for_a_magnet_are_refused_and_nothing_added(tmp_path: Path) -> None:
    link = "magnet:?xt=urn:btih:" + "a" * 40
    async with JobService(cfg(), download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        for source in (Parsed(three_files()), MagnetLink(link)):
            with pytest.raises(InvalidJobRequest) as refused:
                await jobs.add(source, AddOptions(file_priorities=((5, 1),)))
            assert refused.value.field == "file_priorities"
        assert jobs.list() == [] and jobs.manager.sessions == []


async def test_an_add_to_the_top_of_the_queue_is_first_from_its_first_snapshot(tmp_path: Path) -> None:
    torrents = [make_torrent([((f"{n}",), payload(5000, n))], 16384, name=f"t{n}") for n in range(3)]
    added: list[JobAdded] = []
    async with JobService(cfg(slots=1), download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        jobs.events.subscribe(JobAdded, added.append)
        one, _ = await jobs.add(Parsed(torrents[0]), AddOptions(paused=True))
        two, _ = await jobs.add(Parsed(torrents[1]), AddOptions(paused=True))
        top, _ = await jobs.add(Parsed(torrents[2]), AddOptions(paused=True, queue_top=True))
        await _events_flushed()
        assert [e.job.queue_position for e in added] == [1, 2, 1]
        assert top.queue_position == 1
        assert [jobs.get(j.id).queue_position for j in (top, one, two)] == [1, 2, 3]


async def test_the_setting_add_to_top_of_queue_puts_an_add_first_unless_it_says(tmp_path: Path) -> None:
    """(qBittorrent's add_to_top_of_queue: an add that says nothing takes the first place; one
    that says ``queue_top=False`` the last.)"""
    torrents = [make_torrent([((f"{n}",), payload(5000, n))], 16384, name=f"t{n}") for n in range(4)]
    async with JobService(cfg(slots=1), download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        one, _ = await jobs.add(Parsed(torrents[0]), AddOptions(paused=True))
        await jobs.update_settings(add_to_top_of_queue=True)
        top, _ = await jobs.add(Parsed(torrents[1]), AddOptions(paused=True))
        last, _ = await jobs.add(Parsed(torrents[2]), AddOptions(paused=True, queue_top=False))
        many = await jobs.add_many([Parsed(torrents[3])], AddOptions(paused=True))
        assert isinstance(many[0], tuple)
        batch = many[0][0]
        order = sorted((jobs.get(j.id).queue_position, j.name) for j in (one, top, last, batch))
        assert [name for _, name in order] == ["t3", "t1", "t0", "t2"]
        with pytest.raises(InvalidJobRequest) as refused:
            await jobs.update_settings(add_to_top_of_queue="yes")
        assert refused.value.field == "add_to_top_of_queue"


async def test_a_merge_into_a_job_that_ended_meanwhile_leaves_the_duplicate_add_as_it_was(
        tmp_path: Path) -> None:
    """(merge_trackers: the job there finished between the add's look and the merge; the edit's
    JobConflict failed the add.)"""
    torrent = make_torrent([(("x",), payload(5000, 1))], 16384, name="again")
    async with JobService(cfg(), download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        first, _ = await jobs.add(Parsed(torrent), AddOptions(paused=True))
        await jobs.update_settings(merge_trackers=True)

        async def ended(job_id: str, tiers: object, web_seeds: object) -> int:
            raise JobConflict("cannot change a job that is cancelled")

        jobs._adder.merge = ended
        again, created = await jobs.add(Parsed(torrent), AddOptions(paused=True))
        assert again.id == first.id and not created


async def test_a_merge_past_the_most_trackers_a_job_may_have_leaves_the_duplicate_add_as_it_was(
        tmp_path: Path) -> None:
    """(merge_trackers: the edit's refusal of a job's 1 001st tracker is no failed add.)"""
    torrent = make_torrent([(("x",), payload(5000, 2))], 16384, name="full")
    async with JobService(cfg(), download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        first, _ = await jobs.add(Parsed(torrent), AddOptions(paused=True))
        full = [[f"http://t{i}.example/announce"] for i in range(1000)]
        await jobs.set_trackers(first.id, full)
        await jobs.update_settings(merge_trackers=True)
        link = f"magnet:?xt=urn:btih:{torrent.info_hash.hex()}&tr=http://new.example/announce"
        again, created = await jobs.add(MagnetLink(link), AddOptions(paused=True))
        assert again.id == first.id and not created
        assert len(jobs.tracker_tiers(first.id)) == 1000


async def test_keywords_and_add_options_are_one_or_the_other(tmp_path: Path) -> None:
    async with JobService(cfg(), download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        with pytest.raises(TypeError):
            await jobs.add(three_files(), AddOptions(), paused=True)
        job, _ = await jobs.add(three_files(), files=[1], paused=True)  # (the keyword form)
        assert job.options.files == (1,) and job.options.paused


async def test_a_url_is_fetched_by_the_service(tmp_path: Path) -> None:
    torrent = three_files()

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
            body = torrent.to_bytes() if head.startswith(b"GET /t.torrent") else b"junk"
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode()
                              + b"\r\nConnection: close\r\n\r\n" + body)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    config = dataclasses.replace(cfg())
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        async with JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
            job, created = await jobs.add(TorrentUrl(f"http://127.0.0.1:{port}/t.torrent"),
                                          AddOptions(paused=True))
            assert created and job.info_hash == torrent.info_hash.hex() and job.source == "torrent"
            with pytest.raises(InvalidJobRequest) as refused:
                await jobs.add(TorrentUrl(f"http://127.0.0.1:{port}/junk"))
            assert refused.value.field == "source" and "is not a .torrent" in str(refused.value)
        tg.cancel_scope.cancel()


def test_job_ids_are_drawn_together_and_never_repeat(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job id is ``ID_BYTES`` random bytes in hex, as ``secrets.token_hex`` made it; the system's
    random source is read once for ``IDS_DRAWN`` ids (each read lets the GIL go), not once an add."""
    from torrent_engine.jobs.intake import adding

    draws: list[int] = []
    real = adding.os.urandom

    def counted(n: int) -> bytes:
        draws.append(n)
        return real(n)

    monkeypatch.setattr(adding.os, "urandom", counted)
    ids = adding.RandomIds()
    made = [ids() for _ in range(2 * adding.IDS_DRAWN + 1)]
    assert all(len(i) == 2 * adding.ID_BYTES and int(i, 16) >= 0 for i in made)
    assert len(set(made)) == len(made)
    assert draws == [adding.ID_BYTES * adding.IDS_DRAWN] * 3


async def test_a_batch_of_adds_gives_each_job_its_own_id(tmp_path: Path) -> None:
    torrents = [make_torrent([((f"f{i}",), payload(100 + i))], 16384) for i in range(30)]
    async with JobService(cfg(), download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        added = await jobs.add_many(torrents, AddOptions(paused=True))
    ids = [r[0].id for r in added if isinstance(r, tuple)]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert all(len(i) == 16 for i in ids)


async def test_a_batch_of_adds_confines_its_save_path_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The adds of a batch read their grounds in one worker-thread hop, where their one save path
    is resolved once (``GroundsSeen``), not once an add; each job still has its own ground."""
    confined = counted_confines(monkeypatch, paths)
    torrents = [make_torrent([((f"f{i}",), payload(100 + i))], 16384) for i in range(12)]
    async with JobService(cfg(), download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        added = await jobs.add_many(torrents, AddOptions(save_path="new/shows", paused=True))
        assert all(isinstance(r, tuple) for r in added)
        assert {r[0].options.save_path for r in added if isinstance(r, tuple)} == {
            str((tmp_path / "dl" / "new" / "shows").resolve())}
        assert 1 <= len(confined) <= 2  # (one group, or two: not one an add)


def test_grounds_seen_answer_each_add_with_its_own_list_and_refuse_each_time(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    seen = paths.GroundsSeen()
    one = make_torrent([(("a",), payload(10))], 16384, name="a")
    first = paths.ground(root, "x/y", one, "original", seen)
    second = paths.ground(root, "x/y", one, "original", seen)
    assert first == paths.ground(root, "x/y", one, "original")  # (as without the group's)
    assert first.created_dirs == [str(root / "x"), str(root / "x" / "y")]
    first.created_dirs.append("mine")
    assert second.created_dirs == [str(root / "x"), str(root / "x" / "y")]
    for _ in range(2):
        with pytest.raises(paths.SavePathError):
            seen.confine(root, "../outside")


def test_path_claims_version_moves_on_at_each_claim_only() -> None:
    claims = PathClaims()
    claims.claim("one", ["/d/a"])
    before = claims.version
    claims.release("one")
    assert claims.version == before  # (a release cannot make a clash)
    claims.claim("two", ["/d/b"])
    assert claims.version == before + 1


async def test_of_two_adds_of_one_batch_writing_one_file_of_the_incomplete_folder_the_first_is_added(
        tmp_path: Path) -> None:
    """Two torrents of one batch write the same file of the incomplete folder. What that folder
    holds is looked at before their turns, so no wait comes between an add's turn and its
    claims: the batch's order decides, the first is added and the second refused (before, the
    first's look at its folder came between, and either could be the one refused)."""
    first = make_torrent([(("a.bin",), payload(40000, 1))], 16384, name="pair")
    other = make_torrent([(("a.bin",), payload(40000, 9))], 16384, name="pair")
    async with JobService(cfg(), download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        for batch in ([first, other], [other, first]):
            added = await jobs.add_many(batch, AddOptions(download_path="incoming", paused=True))
            assert isinstance(added[0], tuple) and added[0][0].info_hash == batch[0].info_hash.hex()
            refused = added[1]
            assert isinstance(refused, JobConflict) and refused.field == "save_path"
            assert added[0][0].id in str(refused) and "a.bin" in str(refused)
            assert [j.id for j in jobs.active()] == [added[0][0].id]
            assert added[0][0].options.download_path == str((tmp_path / "dl" / "incoming").resolve())
            await jobs.cancel(added[0][0].id, delete_files=True)


async def test_an_add_looks_at_the_claims_again_when_another_took_files_while_it_waited(
        tmp_path: Path) -> None:
    """Two adds at once (two calls) of torrents that write one file: each looks at the claims
    before its job is made, then both wait (here, each ends a look at its metadata) until both
    have looked. The first to go on takes the file; the other, whose look is older than that
    claim, looks again as it joins the table and is refused. Without that second look, both
    were added."""
    first = make_torrent([(("a.bin",), payload(40000, 1))], 16384, name="pair")
    other = make_torrent([(("a.bin",), payload(40000, 9))], 16384, name="pair")
    async with JobService(cfg(), download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        metadata = jobs._adder.metadata
        assert metadata is not None
        real_end = metadata.end
        looked: list[str] = []
        both = anyio.Event()

        async def end_when_both_looked(info_hash: str) -> None:
            looked.append(info_hash)
            if len(looked) == 2:
                both.set()
            await both.wait()
            await real_end(info_hash)

        metadata.end = end_when_both_looked  # type: ignore[method-assign]
        results: list[tuple[Job, bool] | JobConflict] = []

        async def add(torrent: Torrent) -> None:
            try:
                results.append(await jobs.add(torrent, AddOptions(paused=True)))
            except JobConflict as exc:
                results.append(exc)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(add, first)
                tg.start_soon(add, other)
        assert len(looked) == 2
        [(job, _)] = [r for r in results if isinstance(r, tuple)]
        [refused] = [r for r in results if isinstance(r, JobConflict)]
        assert refused.field == "save_path" and job.id in str(refused)
        assert [j.id for j in jobs.active()] == [job.id]


@pytest.mark.parametrize("look_during_the_add", [False, True])
async def test_an_add_ends_a_look_at_its_metadata_and_no_look_starts_while_it_is_added(
        tmp_path: Path, look_during_the_add: bool) -> None:
    """A look at a magnet's files (its metadata fetched without a job: a session of its own,
    which holds the info-hash) is under way when the same torrent is added, the look not ended
    by the caller first (as the qBittorrent dialect's add does not wait for it, or as a web UI's
    look asked again between its caller's end and the add). The add ends it, and the job's
    session takes the info-hash; before, it could not start ("already registered"). A look asked
    while the add is under way is refused."""
    key = "ab" * 20
    magnet = parse_magnet(f"magnet:?xt=urn:btih:{key}")
    refused: list[JobConflict] = []
    async with JobService(cfg(), download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        assert jobs.fetch_metadata(magnet) is None  # (nobody serves it: it runs until ended)
        with anyio.fail_after(10):
            while bytes.fromhex(key) not in jobs.manager.shared._routes:
                await anyio.sleep(0.01)
        if look_during_the_add:
            real = jobs._adder._create

            async def look_then_create(*args: object, **kwargs: object) -> object:
                try:
                    jobs.fetch_metadata(magnet)
                except JobConflict as exc:
                    refused.append(exc)
                return await real(*args, **kwargs)  # type: ignore[arg-type]

            jobs._adder._create = look_then_create  # type: ignore[method-assign]
        job, created = await jobs.add(MagnetLink(magnet.to_uri()), AddOptions())
        assert created and job.state is not JobState.FAILED and job.error is None
        assert not jobs.metadata_fetching(key)
        assert jobs.manager.get(bytes.fromhex(key)) is not None  # (the job's session runs)
    if look_during_the_add:
        assert len(refused) == 1 and "being added" in str(refused[0])
