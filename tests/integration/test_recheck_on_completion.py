"""A download whose completion waits for a check of its files (``Config.recheck_on_completion``,
qBittorrent's "recheck torrents on completion"): the check comes between the last piece and
seeding; a piece its files lost meanwhile is downloaded again, then it completes without another
check; its trackers hear ``completed`` once, after the check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.test_default_trackers import answer
from tests.spies import hold_checks
from tests.unit.tracker._tracker_servers import http_tracker
from torrent_engine.jobs import JobState
from torrent_engine.session import Session
from torrent_engine.session.state_table import State
from torrent_engine.storage.create import create_torrent

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio

FILES = (("a.bin", 300_007), ("b/c.bin", 170_001))
PL = 32 * 1024


def _states(session: Session) -> list[State]:
    """The states ``session`` goes through from now on (its machine's transitions)."""
    seen: list[State] = []
    machine = session._life.machine
    to = machine.to

    def noted(state: State, **kwargs: Any) -> Any:
        made = to(state, **kwargs)
        seen.append(state)
        return made

    machine.to = noted  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("lose", [True, False])
async def test_the_completion_waits_for_a_check_of_the_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lose: bool) -> None:
    """``lose``: a piece of its files is lost before the check (downloaded again, then complete);
    else the check finds all and the torrent completes from it (its next swarm's coordinator
    tells the trackers ``completed``: the one its check ended had stopped)."""
    held = hold_checks(monkeypatch)
    async with http_tracker(answer) as web:
        torrent = create_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL,
                                 trackers=[f"http://127.0.0.1:{web.port}/announce"])
        config = loopback_config(tracker_enabled=True)
        async with Session(torrent, tmp_path / "seed", config=config) as seed:
            await seed.wait_ready()
            held.names.add(torrent.name)  # (the leech's checks from now on: not the seed's start-up one)
            leech = Session(torrent, tmp_path / "leech", config=loopback_config(tracker_enabled=True,
                                                                                recheck_on_completion=True),
                            peers=[("127.0.0.1", seed.listen_port)])
            async with leech:
                states = _states(leech)
                port = str(leech.listen_port).encode()
                with anyio.fail_after(60):
                    await held.checking.wait()  # every piece came; its completion's check begins
                    assert leech.state is State.CHECKING and not leech._life.completed.is_set()
                    if lose:
                        lost = tmp_path / "leech" / torrent.name / "a.bin"
                        with lost.open("r+b") as f:  # (a piece its disk lost meanwhile)
                            f.seek(PL + 5)
                            byte = f.read(1)
                            f.seek(PL + 5)
                            f.write(bytes([byte[0] ^ 0xFF]))
                    held.release.set()
                    await leech.wait_completed()
                assert leech.state is State.SEEDING
                # checked (the lost piece downloaded again), complete without a second check
                assert states[-3:] == ([State.CHECKING, State.DOWNLOADING, State.SEEDING] if lose
                                       else [State.DOWNLOADING, State.CHECKING, State.SEEDING])
                assert states.count(State.CHECKING) == 1
                size = sum(f.length for f in torrent.files)
                assert leech.status().downloaded == size + (PL if lose else 0)
                with anyio.fail_after(20):  # (its new swarm's coordinator says it)
                    while not any(r.query().get("event") == [b"completed"] for r in web.requests):
                        await anyio.sleep(0.02)
        assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    events = [r.query().get("event", [b""])[0] for r in web.requests]
    assert events.count(b"completed") == 1
    # the leech's: its swarm ended for the check (a stopped: it serves nobody meanwhile), and the
    # next one started after it (a started twice without a stopped between was a defect)
    leech_events = [e for r in web.requests if r.query().get("port") == [port]
                    if (e := r.query().get("event", [b""])[0])]
    assert leech_events == [b"started", b"stopped", b"started", b"completed", b"stopped"]


async def test_off_the_completion_comes_with_the_last_piece(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(The reference for the test above: no check between the last piece and seeding.)"""
    held = hold_checks(monkeypatch)
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seed:
        await seed.wait_ready()
        held.names.add(torrent.name)
        async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", seed.listen_port)]) as leech:
            states = _states(leech)
            with anyio.fail_after(60):
                await leech.wait_completed()
            assert State.CHECKING not in states and leech.state is State.SEEDING
            assert not held.checking.is_set()


async def test_qbittorrents_recheck_completed_torrents_makes_a_jobs_completion_wait_for_the_check(
        tmp_path: Path) -> None:
    """Set through the qBittorrent dialect with qbittorrent-api: a job downloading from a loopback
    seeder is checked between its last piece and seeding, complete only after it."""
    qbittorrentapi = require_module("qbittorrentapi")
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seed, \
            running_api(tmp_path) as api:
        await seed.wait_ready()
        qbt = qbittorrentapi.Client(host=api.url, username="admin", password=TOKEN,
                                    REQUESTS_ARGS={"timeout": 30})

        def turn_on() -> bool:
            assert qbt.app_preferences()["recheck_completed_torrents"] is False
            with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="recheck_completed_torrents"):
                qbt.app_set_preferences({"recheck_completed_torrents": "yes"})
            qbt.app_set_preferences({"recheck_completed_torrents": True})
            return bool(qbt.app_preferences()["recheck_completed_torrents"])

        assert await anyio.to_thread.run_sync(turn_on)
        assert api.service.manager.config.recheck_on_completion
        changes: list[tuple[JobState, JobState, float | None]] = []
        api.service.events.subscribe("job.state",
                                     lambda e: changes.append((e.old, e.new, e.job.completed_at)))
        job, _ = await api.service.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
        with anyio.fail_after(60):  # (the state, then its event: it comes on the loop's next turn)
            while api.service.get(job.id).state is not JobState.SEEDING \
                    or all(new is not JobState.SEEDING for _, new, _ in changes):
                await anyio.sleep(0.02)
        moves = [(old, new) for old, new, _ in changes]
        assert (JobState.DOWNLOADING, JobState.CHECKING) in moves
        assert moves[-1] == (JobState.CHECKING, JobState.SEEDING)
        # (complete once checked, not before)
        assert all(done is None for _, new, done in changes if new is not JobState.SEEDING)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "downloads") == []
