"""``sync/maindata``'s kept states: a client's next ``rid`` and the one an answer was last made
from are answered with what changed; an older one with everything, as qBittorrent does; and
the states kept do not grow with the polls (each holds the records it showed)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from torrent_engine.api.compat.kept import Kept
from torrent_engine.api.compat.qbittorrent_sync import MainData, MainDataSync, Shown, Trackers

pytestmark = pytest.mark.anyio


def state(version: int) -> Shown:
    record: Any = {"hash": "aa", "progress": version}
    data: MainData = {"torrents": {"aa": record}, "categories": {}, "tags": [], "server_state": {}}
    return Shown(data, version, ())


async def ask(sync: MainDataSync, rid: int, version: int) -> dict[str, Any]:
    records: dict[str, Kept[Any]] = {}  # (a full answer is the only one that reads them: none here)
    answer = await sync.answer(rid, records, state(version))
    assert isinstance(answer, dict), "a delta, not a full answer"
    return answer


async def test_a_chain_of_polls_keeps_two_states_and_an_older_rid_gets_everything() -> None:
    sync = MainDataSync()
    await sync.answer(0, {}, state(0))  # rid 1, full
    rids = [1]
    for version in range(1, 40):
        answer = await ask(sync, rids[-1], version)
        assert answer["torrents"] == {"aa": {"progress": version}}
        rids.append(int(answer["rid"]))
    # the last answer (the client's next rid) and the one it was made from: nothing older
    assert [sync.shown(r) is not None for r in rids[-4:]] == [False, False, True, True]
    again = await ask(sync, rids[-2], 40)  # (the last answer was lost: asked again, a delta)
    assert again["torrents"] == {"aa": {"progress": 40}}
    assert sync.shown(rids[0]) is None  # (a full answer for it, as for an unknown rid)


async def test_two_clients_of_one_user_each_get_their_changes() -> None:
    sync = MainDataSync()
    await sync.answer(0, {}, state(0))
    await sync.answer(0, {}, state(0))
    a, b = 1, 2
    for version in range(1, 10):
        a = int((await ask(sync, a, version))["rid"])
        b = int((await ask(sync, b, version))["rid"])
    assert sync.shown(a) is not None and sync.shown(b) is not None


def test_a_job_that_only_moved_in_the_queue_has_its_record_moved_not_made_again() -> None:
    """A completion moves every job after it in the queue: their records are the kept ones with
    the new position, not made again (thousands of records a poll); any other change makes it."""
    from tests.unit.jobs.test_jobs_queue import record
    from torrent_engine.api.compat.kept import KeptRecords
    from torrent_engine.jobs.snapshot import record_job

    kept: KeptRecords[Any] = KeptRecords()
    made: list[int] = []

    def make(job: Any) -> Any:
        made.append(job.queue_position)
        return {"name": job.name, "priority": job.queue_position}

    def moved(rec: Any, position: int) -> Any:
        return {**rec, "priority": position}

    first = record_job(record(1), queue_position=7)
    inputs = (object(),)
    assert kept.get(first, inputs, make, moved).record == {"name": "job1", "priority": 7}
    later = record_job(record(1), queue_position=6)  # (made anew: equal but for its position)
    assert kept.get(later, inputs, make, moved).record == {"name": "job1", "priority": 6}
    renamed = dataclasses.replace(later, name="other", queue_position=5)
    assert kept.get(renamed, inputs, make, moved).record == {"name": "other", "priority": 5}
    same = record_job(record(1), queue_position=5)  # (its position as kept: another field differs)
    kept.get(same, inputs, make, moved)
    assert made == [7, 5, 5]


def test_a_kept_record_is_made_again_when_an_input_is_another_object_and_kept_for_the_same_tuple() -> None:
    from tests.unit.jobs.test_jobs_queue import record
    from torrent_engine.api.compat.kept import KeptRecords
    from torrent_engine.jobs.snapshot import record_job

    kept: KeptRecords[Any] = KeptRecords()
    made: list[str] = []

    def make(job: Any) -> Any:
        made.append(job.name)
        return {"name": job.name}

    job = record_job(record(1))
    limit = [1.0]  # (an input compared by identity: equal is not the same)
    inputs = (limit, 2)
    first = kept.get(job, inputs, make)
    assert kept.get(job, inputs, make) is first  # (the same tuple)
    assert kept.get(job, (limit, 2), make) is first  # (another tuple of the same objects)
    again = kept.get(job, ([1.0], 2), make)  # (an equal input, another object)
    assert again is not first and again.record == first.record
    assert kept.get(job, (limit,), make) is not again  # (fewer inputs)
    assert made == ["job1", "job1", "job1"]


def shown_at(record: Any, positions: dict[str, int]) -> Shown:
    data: MainData = {"torrents": {"aa": record}, "categories": {}, "tags": [], "server_state": {}}
    return Shown(data, 0, (), positions)


async def test_a_position_kept_apart_from_the_record_is_sent_alone_and_read_against_later() -> None:
    """A torrent that only moved in the queue keeps the record shown before, its position kept
    apart (no copy of the record a move): the client gets the position alone, and a record
    made again later is told against the position the client was shown, not its old record's."""
    sync = MainDataSync()
    record = {"hash": "aa", "priority": 9, "state": "queuedUP"}
    await sync.answer(0, {}, shown_at(record, {}))  # rid 1: full
    moved = await sync.answer(1, {}, shown_at(record, {"aa": 8}), ["aa"])
    assert moved["torrents"] == {"aa": {"priority": 8}}
    assert "torrents" not in await sync.answer(2, {}, shown_at(record, {"aa": 8}), ["aa"])
    moved = await sync.answer(3, {}, shown_at(record, {"aa": 7}), ["aa"])
    assert moved["torrents"] == {"aa": {"priority": 7}}
    # made again at the position its old record holds (9), not the one shown (7): both told
    remade = {"hash": "aa", "priority": 9, "state": "checkingUP"}
    answer = await sync.answer(4, {}, shown_at(remade, {}), ["aa"])
    assert answer["torrents"] == {"aa": {"priority": 9, "state": "checkingUP"}}
    # made again at the position shown: that is not told again
    await sync.answer(5, {}, shown_at(remade, {"aa": 3}), ["aa"])
    third = {"hash": "aa", "priority": 3, "state": "stalledUP"}
    changed = await sync.answer(6, {}, shown_at(third, {}), ["aa"])
    assert changed["torrents"] == {"aa": {"state": "stalledUP"}}
    # a client whose last answer was lost asks rid 6 again: told against what rid 6 showed
    assert (await sync.answer(6, {}, shown_at(record, {"aa": 3}), ["aa"]))["torrents"] == {
        "aa": {"state": "queuedUP"}}
    # every torrent looked at (no change log): the same
    assert "torrents" not in await sync.answer(8, {}, shown_at(record, {"aa": 3}), None)


async def test_an_answer_of_thousands_of_changes_is_written_in_pages_its_whole_records_as_kept() -> None:
    """A poll during a mass check tells thousands of torrents: the answer is written a page at a
    time (the loop let run between pages), each record sent whole as its kept JSON, the rest
    written as qBittorrent writes it (a whole float as an int), and it reads as the answer in
    one piece would; fewer than a page: the answer itself, as before."""
    import json

    from torrent_engine.api.pages import LIST_PAGE, PartsResponse

    n = LIST_PAGE * 4 + 7  # (pages of 2 000: mostly positions)
    before = {f"{i:040x}": {"hash": f"{i:040x}", "priority": i + 1, "ratio": 0} for i in range(n)}
    new = {"hash": "f" * 40, "priority": n + 1, "ratio": 0.5}
    now = {**before, "f" * 40: new}

    def state(torrents: dict[str, Any], positions: dict[str, int], speed: float) -> Shown:
        data: MainData = {"torrents": torrents, "categories": {}, "tags": [],
                          "server_state": {"dl_info_speed": speed}}
        return Shown(data, 0, (), positions)

    sync = MainDataSync()
    await sync.answer(0, {}, state(before, {}, 1))
    kept = Kept(Any, (), new)  # type: ignore[arg-type]
    kept._json = b'{"hash":"' + b"f" * 40 + b'","priority":%d,"ratio":0.5,"kept":true}' % (n + 1)
    moved = {h: i for i, h in enumerate(before)}  # (each up one)
    answer = await sync.answer(1, {"f" * 40: kept}, state(now, moved, 2.0), [*moved, "f" * 40])
    assert isinstance(answer, PartsResponse) and len(answer.parts) > 3
    assert answer.whole.endswith(b'},"server_state":{"dl_info_speed":2}}')
    body = json.loads(answer.whole)
    assert list(body) == ["rid", "torrents", "server_state"] and body["rid"] == 2
    assert body["torrents"]["f" * 40] == {**new, "kept": True}
    assert {h: t for h, t in body["torrents"].items() if h != "f" * 40} == \
        {h: {"priority": i} for h, i in moved.items()}
    few = await sync.answer(2, {}, state(now, {**moved, "0" * 40: 7}, 2.0), ["0" * 40])
    assert few == {"rid": 3, "torrents": {"0" * 40: {"priority": 7}}}
    same = await sync.answer(3, {}, state(now, {**moved, "0" * 40: 7}, 2.0), list(now))
    assert same == {"rid": 4}  # (nothing changed: no torrents, and no parts)


async def test_an_answer_that_lets_the_loop_run_keeps_its_own_rid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two clients of one user share the rids: an answer made in pages names its own rid, though
    another answer was made while it let the loop run (it named the next one's)."""
    import json

    import anyio

    from torrent_engine.api.pages import LIST_PAGE, PartsResponse
    from torrent_engine.engine import turns

    monkeypatch.setattr(turns, "TURN", 0.0)  # (a turn at each step)

    many = {f"{i:040x}": {"hash": f"{i:040x}", "priority": i + 1} for i in range(LIST_PAGE * 8)}
    sync = MainDataSync()
    await sync.answer(0, {}, shown_at_all(many, {}))  # rid 1
    answers: dict[str, Any] = {}

    async def big() -> None:
        answers["big"] = await sync.answer(1, {}, shown_at_all(many, {h: 0 for h in many}), list(many))

    async def small() -> None:
        await anyio.sleep(0)
        answers["small"] = await sync.answer(1, {}, shown_at_all(many, {}), [])

    async with anyio.create_task_group() as tg:
        tg.start_soon(big)
        tg.start_soon(small)
    assert isinstance(answers["big"], PartsResponse)
    assert json.loads(answers["big"].whole)["rid"] == 2 and answers["small"] == {"rid": 3}


def shown_at_all(torrents: dict[str, Any], positions: dict[str, int]) -> Shown:
    data: MainData = {"torrents": torrents, "categories": {}, "tags": [], "server_state": {}}
    return Shown(data, 0, (), positions)


def test_an_answers_trackers_are_its_own_when_a_later_answer_changes_them() -> None:
    """Each answer keeps which torrents announced to each tracker then: a later answer shares its
    maps and sets until it changes them (a client that asks an earlier ``rid`` again is told
    from that answer's, not from what a later one made of them)."""
    first = Trackers()
    for h, urls in (("a", ("http://t/1", "udp://t/2")), ("b", ("http://t/1",)), ("c", ())):
        first.track(h, urls)
    assert first.shown() == {"http://t/1": ["a", "b"], "udp://t/2": ["a"]}
    quiet = first.copy()
    quiet.track("a", ("http://t/1", "udp://t/2"))  # (the same: nothing copied)
    assert quiet.by_url is first.by_url and quiet.changes(first) == ({}, [])
    second = quiet.copy()
    second.track("b", ("udp://t/2",))
    second.track("a", ())
    assert second.shown() == {"udp://t/2": ["b"]}
    assert second.changes(first) == ({"udp://t/2": ["b"]}, ["http://t/1"])
    assert first.shown() == {"http://t/1": ["a", "b"], "udp://t/2": ["a"]}  # (unchanged)
    assert first.of == {"a": ("http://t/1", "udp://t/2"), "b": ("http://t/1",)}


@pytest.mark.parametrize("h", ["0123456789abcdef" * 2 + "01234567", "AbC", 'a"b', "a\\b", "hé", "a\nb", ""])
def test_a_torrents_key_in_an_answer_is_its_json_string(h: str) -> None:
    from torrent_engine.api.compat.qbittorrent_sync import _key

    assert json.loads(b"{" + _key(h) + b"1}") == {h: 1}


def test_the_inputs_read_of_the_settings_are_one_tuple_while_the_settings_are_the_same_object() -> None:
    from torrent_engine.api.compat.kept import SameInputs
    from torrent_engine.jobs import ServiceSettings

    reads: list[float | None] = []

    def read(s: ServiceSettings) -> tuple[object, ...]:
        reads.append(s.ratio_limit)
        return (s.ratio_limit, s.seeding_time_limit)

    inputs = SameInputs(read)
    settings = ServiceSettings()
    first = inputs(settings)
    assert inputs(settings) is first
    changed = dataclasses.replace(settings, ratio_limit=2.5)
    assert inputs(changed) == (2.5, settings.seeding_time_limit)
    assert inputs(changed) is not first
    inputs(dataclasses.replace(changed))  # (an equal object, another one: read again)
    assert reads == [settings.ratio_limit, 2.5, 2.5]


@pytest.mark.parametrize("delta", [{"priority": 7}, {"priority": 0}, {"priority": -1}, {"priority": True},
                                   {"priority": 1.5}, {"priority": 3, "state": "uploading"}, {"state": "x"}])
def test_a_torrents_change_is_written_as_the_encoder_writes_it_a_move_alone_without_it(
        delta: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A poll during a check of 10 000 tells up to 8 000 torrents that only moved in the queue:
    each is written without the encoder (0.5 us, not 1.8), the same bytes."""
    from torrent_engine.api.compat import qbittorrent_sync
    from torrent_engine.api.compat.kept import encode

    encoded: list[object] = []

    def counted(value: object) -> bytes:
        encoded.append(value)
        return encode(value)

    monkeypatch.setattr(qbittorrent_sync, "encode", counted)
    h = "ab" * 20
    assert qbittorrent_sync._changed_json({}, {h: delta}, h) == b'"' + h.encode() + b'":' + encode(delta)
    a_move = list(delta) == ["priority"] and type(delta["priority"]) is int
    assert encoded == ([] if a_move else [delta])
