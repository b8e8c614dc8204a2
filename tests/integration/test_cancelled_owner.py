"""A library user's task group cancelled around a running engine: a session's, the manager's
and the job service's blocks end, their sessions stopped, and the cancellation stays the owner's
(it ends at its own scope). The manager's and the service's exits unwind nested task groups that
re-raise the cancellation they were handed: with port mapping on and a session running, CPython
3.11's ``AsyncExitStack`` made that exception its own ``__context__`` there and spun for ever."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config, make_payload, task_count
from tests.unit.portmap.portmap_fakes import FakeNatPmpGateway
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.jobs import JobService, JobState
from torrent_engine.session import Session
from torrent_engine.storage.create import create_torrent

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.mark.parametrize("owner", ["session", "manager", "service"])
async def test_an_owner_cancelled_around_a_running_engine_ends_it(tmp_path: Path, owner: str) -> None:
    payload = make_payload(tmp_path / "seed", (("a.bin", 40_000),))
    torrent = create_torrent(payload, version="v1")  # (nowhere to download from: its session runs on)
    gateway = FakeNatPmpGateway()
    before = task_count()
    sessions: list[Session] = []
    async with anyio.create_task_group() as outer:
        await outer.start(gateway.serve)
        config = loopback_config(port_mapping=True, natpmp_gateway=("127.0.0.1", gateway.port),
                                 state_dir=str(tmp_path / "state"))
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                if owner == "session":
                    async with Session(torrent, tmp_path / "downloads", config=config) as session:
                        sessions.append(session)
                        while session.shared is None or session.shared.port_mapper is None:
                            await anyio.sleep(0.02)
                        await session.shared.port_mapper.wait_mapped()
                        tg.cancel_scope.cancel()
                        await anyio.sleep(5)
                elif owner == "manager":
                    async with TorrentManager(config) as manager:
                        sessions.append(await manager.add(torrent, tmp_path / "downloads"))
                        await mapped(manager)
                        tg.cancel_scope.cancel()
                        await anyio.sleep(5)  # (cancelled here: the manager's exit runs inside it)
                else:
                    async with JobService(config, download_root=tmp_path / "downloads",
                                          state_dir=tmp_path / "jobs") as service:
                        job, _ = await service.add(torrent.to_bytes())
                        while service.get(job.id).state is not JobState.DOWNLOADING:
                            await anyio.sleep(0.02)
                        sessions.extend(service.manager.sessions)
                        await mapped(service.manager)
                        tg.cancel_scope.cancel()
                        await anyio.sleep(5)
                pytest.fail("the owner's cancellation did not end its block")  # (unreached)
        assert [s.finished for s in sessions] == [True]
        assert gateway.mappings == {}  # (the mappings removed as the services stopped)
        outer.cancel_scope.cancel()
    assert task_count() <= before


async def mapped(manager: TorrentManager) -> None:
    while manager.shared.port_mapper is None:
        await anyio.sleep(0.02)
    await manager.shared.port_mapper.wait_mapped()
    assert manager.shared.port_mapper.mappings
