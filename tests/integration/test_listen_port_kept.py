"""The listening port as qBittorrent and Transmission keep it: a free one chosen at the first
start (outside the system's ports for outgoing connections) and kept across restarts, a new one
at each start only when ``random_port`` asks; a kept port another program took meanwhile given
up for a free one and said; a port the configuration names kept as asked. Through the service,
our API and both dialects."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import httpx
import pytest

from tests.integration.api_helpers import TOKEN, running_api
from torrent_engine.engine.shared import outgoing_ports
from torrent_engine.jobs import JobService

from .helpers import loopback_config

pytestmark = pytest.mark.anyio


def service(tmp_path: Path, **config: object) -> JobService:
    return JobService(loopback_config(**config), download_root=tmp_path / "dl", state_dir=tmp_path / "state")


def held(port: int) -> socket.socket:
    """A listener of another program on ``port`` (loopback, as the service listens)."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", port))
    taken.listen()
    return taken


async def listened_on(jobs: JobService) -> int:
    """The port the engine listens on once a session holds its services."""
    shared = jobs.manager.shared
    await shared.acquire()
    try:
        return shared.listen_port
    finally:
        await shared.release()


def left_in_time_wait(port: int) -> None:
    """A connection to ``port`` closed first by the side on ``port`` (as the engine closes a
    peer's): that side stays in TIME_WAIT on the port a while, which a start's check of the
    port must not take for another program holding it."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        with socket.create_connection(("127.0.0.1", port)) as client:
            ours, _ = listener.accept()
            ours.close()  # (this side first: its TIME_WAIT is on the port)
            client.recv(1)


async def test_a_port_is_chosen_at_the_first_start_and_kept_across_restarts(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        settings = jobs.get_settings()
        port = settings.listen_port
        low, high = outgoing_ports()
        assert port >= 1024 and not low <= port <= high and settings.random_port is False
        assert await listened_on(jobs) == port
        assert await listened_on(jobs) == port  # (the services stopped and started again: the same)
    left_in_time_wait(port)  # (peers came and went)
    for _ in range(2):
        async with service(tmp_path) as again:
            assert again.get_settings().listen_port == port
            assert await listened_on(again) == port


async def test_random_port_chooses_a_new_one_at_each_start(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        first = jobs.get_settings().listen_port
        assert (await jobs.update_settings(random_port=True)).listen_port == first  # (from the next start)
    ports = {first}
    for _ in range(3):  # (a draw may meet an earlier one: four starts, not all on one port)
        async with service(tmp_path) as again:
            settings = again.get_settings()
            assert settings.random_port and await listened_on(again) == settings.listen_port
            ports.add(settings.listen_port)
    assert len(ports) > 1
    async with service(tmp_path, listen_port=first) as named:  # (the configuration names one: kept)
        assert named.get_settings().listen_port == first and named.get_settings().random_port


async def test_a_kept_port_another_program_holds_is_given_up_for_a_free_one_and_said(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with service(tmp_path) as jobs:
        port = jobs.get_settings().listen_port
    with held(port), caplog.at_level(logging.WARNING, logger="torrent_engine.jobs.configure"):
        async with service(tmp_path) as again:
            moved = again.get_settings().listen_port
            assert moved not in (0, port) and await listened_on(again) == moved
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"port {port} cannot be listened on" in warning and "given up" in warning
    async with service(tmp_path) as last:  # (the new one kept)
        assert last.get_settings().listen_port == moved


async def test_a_port_the_configuration_names_is_kept_as_asked_even_when_taken(tmp_path: Path) -> None:
    """The daemon's ``--listen-port``: not moved behind the user's back; a session says the port
    is in use."""
    with held(0) as taken:
        port = int(taken.getsockname()[1])
        async with service(tmp_path, listen_port=port) as jobs:
            assert jobs.get_settings().listen_port == port
            with pytest.raises(OSError, match="in use"):
                await jobs.manager.shared.acquire()


async def test_port_zero_asks_for_a_free_one_now(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        shared = jobs.manager.shared
        await shared.acquire()
        try:
            before = shared.listen_port
            chosen = (await jobs.update_settings(listen_port=0)).listen_port
            assert chosen not in (0, before) and shared.listen_port == chosen
        finally:
            await shared.release()
    async with service(tmp_path) as again:
        assert again.get_settings().listen_port == chosen


async def test_the_dialects_read_and_set_random_port(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        port = api.service.get_settings().listen_port
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            prefs = (await c.get("/api/v2/app/preferences")).json()
            assert (prefs["listen_port"], prefs["random_port"]) == (port, False)
            r = await c.post("/api/v2/app/setPreferences", data={"json": '{"random_port": true}'})
            assert r.status_code == 200
            prefs = (await c.get("/api/v2/app/preferences")).json()
            assert (prefs["listen_port"], prefs["random_port"]) == (port, True)  # (from the next start)
            r = await c.post("/api/v2/app/setPreferences", data={"json": '{"random_port": "yes"}'})
            assert r.status_code == 400 and "random_port" in r.text

            r = await c.post("/transmission/rpc", json={"method": "session-get"})
            sid = r.headers["x-transmission-session-id"]

            async def tr(method: str, arguments: dict[str, object]) -> dict[str, object]:
                answer = await c.post("/transmission/rpc", json={"method": method, "arguments": arguments},
                                      headers={"X-Transmission-Session-Id": sid})
                return dict(answer.json())

            got = await tr("session-get", {"fields": ["peer-port", "peer-port-random-on-start"]})
            assert got["arguments"] == {"peer-port": port, "peer-port-random-on-start": True}
            assert (await tr("session-set", {"peer-port-random-on-start": False}))["result"] == "success"
            assert api.service.get_settings().random_port is False
            refused = await tr("session-set", {"peer-port-random-on-start": 1})
            assert "peer-port-random-on-start" in str(refused["result"])
            assert (await tr("session-set", {"peer-port": port}))["result"] == "success"  # (as shown)
            r = await c.patch("/api/settings", json={"listen_port": 0})
            chosen = r.json()["listen_port"]
            assert r.status_code == 200 and chosen not in (0, port)
            got = await tr("session-get", {"fields": ["peer-port"]})
            assert got["arguments"] == {"peer-port": chosen}
