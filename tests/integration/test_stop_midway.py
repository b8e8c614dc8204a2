"""A job service that stops while a client's move, recheck or resume restarts a job: the restart
cannot happen (the manager has stopped), and the job is not failed for it (it was, for good). The
caller hears that the service stopped (``ServiceStopped``); the job starts again at the service's
next start, at its new place (a move committed before the stop), or checked (a recheck). An add
of a complete torrent in seed mode, written before the stop, is an add: the job seeds from the
next start (it was an untyped error, an HTTP 500, for a job that was there after the restart)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.integration.helpers import loopback_config, make_payload
from torrent_engine.jobs import JobService, JobState, ServiceStopped
from torrent_engine.storage.create import create_torrent

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

STOPPED = str(ServiceStopped())  # (the default: a dormant or paused job's start cut short)


def held_until(stopped: anyio.Event, stopping: anyio.Event,
               real: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``real``, called once the service has stopped (``stopped``); ``stopping`` set as it is
    called (the test then ends the service's block)."""
    async def later(*args: Any, **kw: Any) -> Any:
        stopping.set()
        await stopped.wait()
        return await real(*args, **kw)
    return later


@pytest.mark.parametrize("action", ["move", "recheck", "recheck-live", "resume"])
async def test_a_job_whose_restart_the_service_s_stop_cut_short_is_not_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str) -> None:
    root = tmp_path / "data"
    payload = make_payload(root, (("a.bin", 300_000),))
    torrent = create_torrent(payload, version="v1")
    data = (payload / "a.bin").read_bytes()
    live = action == "recheck-live"
    if live:  # (no data: downloading from no one, its session runs)
        (payload / "a.bin").unlink()
    config = loopback_config()
    stopping, stopped = anyio.Event(), anyio.Event()
    raised: list[str] = []
    before = JobState.DOWNLOADING if live else JobState.SEEDING
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            async with JobService(config, download_root=root, state_dir=tmp_path / "jobs") as service:
                job, _ = await service.add(torrent.to_bytes())
                while service.get(job.id).state is not before:
                    await anyio.sleep(0.02)
                if action == "resume":
                    await service.pause(job.id)
                if live:  # (a session's recheck starts another in its place through the manager)
                    monkeypatch.setattr(service.manager, "add",
                                        held_until(stopped, stopping, service.manager.add))
                elif action in ("recheck", "resume"):  # (a dormant seed: checked without a session,
                    # or resumed complete, a dormant seed again: held there)
                    monkeypatch.setattr(service._run.seeds, "add",
                                        held_until(stopped, stopping, service._run.seeds.add))
                else:  # (a dormant seed, or a paused job, gets its session through the service)
                    monkeypatch.setattr(service._run, "add_session",
                                        held_until(stopped, stopping, service._run.add_session))

                async def act() -> None:
                    try:
                        if action == "move":
                            await service.set_location(job.id, str(root / "moved"))
                        elif action == "resume":
                            await service.resume(job.id)
                        else:
                            await service.recheck(job.id)
                    except ServiceStopped as exc:  # (a JobConflict: a 409 through the APIs)
                        raised.append(str(exc))

                tg.start_soon(act)
                await stopping.wait()  # (the move committed, the recheck's session removed)
            stopped.set()
        assert raised == ([
            f"location: the service stopped before the job could start again at {root / 'moved'}: it "
            "starts there when the service starts" if action == "move" else
            "the service stopped before the job could restart for its recheck: it is checked when the "
            "service starts" if live else STOPPED] if action != "recheck" else [])  # (answered: checking)
        assert service.get(job.id).state is not JobState.FAILED  # (before: failed, for good)
        async with JobService(config, download_root=root, state_dir=tmp_path / "jobs") as service:
            while (now := service.get(job.id)).state is not before:
                assert now.state not in (JobState.FAILED, JobState.ERROR), now.error
                await anyio.sleep(0.02)
            assert now.options.save_path == str(root / "moved" if action == "move" else root)
    if not live:
        assert ((root / "moved" if action == "move" else root) / payload.name / "a.bin").read_bytes() == data


async def test_a_seed_mode_add_the_service_s_stop_overtook_is_an_add(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    payload = make_payload(root, (("a.bin", 300_000),))
    torrent = create_torrent(payload, version="v1")
    config = loopback_config()
    stopping, stopped = anyio.Event(), anyio.Event()
    added: list[tuple[str, bool]] = []
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            async with JobService(config, download_root=root, state_dir=tmp_path / "jobs") as service:
                # (its record written, it becomes a dormant seed: held there until the service stopped)
                monkeypatch.setattr(service._run.seeds, "add",
                                    held_until(stopped, stopping, service._run.seeds.add))

                async def add() -> None:
                    job, new = await service.add(torrent.to_bytes(), seed_mode=True)
                    added.append((job.id, new))

                tg.start_soon(add)
                await stopping.wait()
            stopped.set()
        [(job_id, new)] = added  # (before: SessionError "SharedResources is not entered")
        assert new
        async with JobService(config, download_root=root, state_dir=tmp_path / "jobs") as service:
            assert service.get(job_id).state is JobState.SEEDING
