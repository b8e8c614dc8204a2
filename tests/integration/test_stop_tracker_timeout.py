"""How long a stop waits for its trackers (qBittorrent's ``stop_tracker_timeout``), how often a
running torrent's resume data is saved (its ``save_resume_data_interval``) and how many HTTP
announces go at once (its ``max_concurrent_http_announces``), set through the qBittorrent dialect
with qbittorrent-api. At 0 a paused torrent and the service's stop (its dormant
seeds) send no ``stopped``; set again, they do; bad values are refused naming the field."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import make_payload
from tests.integration.test_default_trackers import announced, answer
from tests.unit.tracker._tracker_servers import http_tracker
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


def events(server: object, info_hash: bytes) -> list[bytes]:
    """The ``event`` of each announce of ``info_hash`` a fake tracker got, in order (b"" none)."""
    out = []
    for request in server.requests:  # type: ignore[attr-defined]
        query = request.query()
        if info_hash in query.get("info_hash", []):
            out.append(query.get("event", [b""])[0])
    return out


async def test_a_stop_timeout_of_zero_sends_no_stopped_and_the_resume_interval_is_set(tmp_path: Path) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    root = tmp_path / "downloads"
    async with http_tracker(answer) as web:
        own = f"http://127.0.0.1:{web.port}/announce"
        a, b, c = (create_torrent(make_payload(root, ((f"{n}.bin", 40_000),), name=n), version="v1",
                                  trackers=[own]) for n in ("a", "b", "c"))
        async with running_api(tmp_path, config_options={"tracker_enabled": True}) as api:
            qbt = qbittorrentapi.Client(host=api.url, username="admin", password=TOKEN,
                                        REQUESTS_ARGS={"timeout": 30})
            config = api.service.manager.config

            def first() -> None:
                prefs = qbt.app_preferences()
                assert prefs["stop_tracker_timeout"] == 5 and prefs["save_resume_data_interval"] == 1
                assert prefs["max_concurrent_http_announces"] == 50
                assert prefs["validate_https_tracker_certificate"] is True  # (always: no switch)
                for bad in ({"stop_tracker_timeout": -1}, {"stop_tracker_timeout": 301},
                            {"stop_tracker_timeout": "soon"}, {"save_resume_data_interval": -1},
                            {"save_resume_data_interval": "often"}, {"max_concurrent_http_announces": 0},
                            {"max_concurrent_http_announces": 1.5},
                            {"validate_https_tracker_certificate": False}):
                    name = next(iter(bad))
                    with pytest.raises(qbittorrentapi.InvalidRequest400Error, match=name):
                        qbt.app_set_preferences(bad)
                qbt.app_set_preferences({"stop_tracker_timeout": 0, "save_resume_data_interval": 15,
                                         "max_concurrent_http_announces": 2})
                for t in (a, b, c):  # (complete: each a dormant seed, announced without a session)
                    qbt.torrents_add(torrent_files=t.to_bytes(), is_skip_checking=True)

            def call(method: str, t: object, **prefs: object) -> None:
                if prefs:
                    qbt.app_set_preferences(prefs)
                getattr(qbt, method)(torrent_hashes=t.info_hash.hex())  # type: ignore[attr-defined]

            async def until(t: object, state: str) -> None:
                job = next(j for j in api.service.list() if j.info_hash == t.info_hash.hex())  # type: ignore[attr-defined]
                while api.service.get(job.id).state.value != state:
                    await anyio.sleep(0.02)

            await anyio.to_thread.run_sync(first)
            assert config.stop_tracker_timeout == 0 and config.resume_save_interval == 900
            assert config.max_concurrent_http_announces == 2
            settings = api.service.get_settings()
            assert settings.stop_tracker_timeout == 0 and settings.resume_save_interval == 900
            with anyio.fail_after(20):
                while announced(web) != {t.info_hash.hex() for t in (a, b, c)}:
                    await anyio.sleep(0.02)
                await anyio.to_thread.run_sync(lambda: call("torrents_stop", a))  # (dormant, 0: nothing)
                await until(a, "paused")
                await anyio.to_thread.run_sync(lambda: call("torrents_stop", b, stop_tracker_timeout=5))
                while b"stopped" not in events(web, b.info_hash):  # (dormant, 5)
                    await anyio.sleep(0.02)
                await anyio.to_thread.run_sync(lambda: call("torrents_start", a))  # (a session now)
                while len(events(web, a.info_hash)) < 2:
                    await anyio.sleep(0.02)
                await anyio.to_thread.run_sync(lambda: call("torrents_stop", a))
                while b"stopped" not in events(web, a.info_hash):  # (a session, 5)
                    await anyio.sleep(0.02)
                await anyio.to_thread.run_sync(lambda: call("torrents_start", a, stop_tracker_timeout=0))
                while len(events(web, a.info_hash)) < 4:
                    await anyio.sleep(0.02)
                await anyio.to_thread.run_sync(lambda: call("torrents_stop", a))  # (a session, 0)
                await until(a, "paused")
            assert config.stop_tracker_timeout == 0
        # (after the service's stop, whatever it sent is in: its dormant seed c hears nothing at 0)
        assert events(web, a.info_hash) == [b"started", b"started", b"stopped", b"started"]
        assert events(web, b.info_hash) == [b"started", b"stopped"]
        assert events(web, c.info_hash) == [b"started"]
