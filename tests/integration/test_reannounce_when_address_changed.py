"""qBittorrent's ``reannounce_when_address_changed``, set with qbittorrent-api: when our gateway
(port mapping, NAT-PMP) says another external address than it said before, every torrent
announces to its trackers at once, a session's and a dormant seed's, so that they hand out the new
address (their interval is 30 minutes); off, as by default, nothing is announced."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import make_payload
from tests.integration.test_default_trackers import announced, answer
from tests.integration.test_stop_tracker_timeout import events
from tests.unit.portmap.portmap_fakes import FakeNatPmpGateway
from tests.unit.tracker._tracker_servers import http_tracker
from torrent_engine.net.portmap import service as portmap
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


async def test_a_new_external_address_is_announced_by_every_torrent_when_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    monkeypatch.setattr(portmap, "MIN_RENEWAL", 0.2)  # (the gateway's leases of 1 s: renewed each 0.5 s)
    root = tmp_path / "downloads"
    gateway = FakeNatPmpGateway(external="203.0.113.7", most=1)
    async with http_tracker(answer) as web, anyio.create_task_group() as tg:
        await tg.start(gateway.serve)
        own = f"http://127.0.0.1:{web.port}/announce"
        woken, dormant = (create_torrent(make_payload(root, ((f"{n}.bin", 40_000),), name=n), version="v1",
                                         trackers=[own]) for n in ("woken", "dormant"))
        options = {"tracker_enabled": True, "port_mapping": True,
                   "natpmp_gateway": ("127.0.0.1", gateway.port)}
        async with running_api(tmp_path, config_options=options) as api:
            qbt = qbittorrentapi.Client(host=api.url, username="admin", password=TOKEN,
                                        REQUESTS_ARGS={"timeout": 30})
            shared = api.service.manager.shared

            def add() -> None:
                name = "reannounce_when_address_changed"
                assert qbt.app_preferences()[name] is False  # (qBittorrent's default)
                with pytest.raises(qbittorrentapi.InvalidRequest400Error, match=name):
                    qbt.app_set_preferences({name: "yes"})
                for t in (woken, dormant):  # (complete: each a dormant seed, announced without a session)
                    qbt.torrents_add(torrent_files=t.to_bytes(), is_skip_checking=True)

            def call(method: str, **prefs: object) -> None:
                if prefs:
                    qbt.app_set_preferences(prefs)
                if method:
                    getattr(qbt, method)(torrent_hashes=woken.info_hash.hex())

            async def gateway_says(address: str) -> None:
                gateway.external = address
                while shared.external_ip != address:
                    await anyio.sleep(0.02)

            def counts() -> tuple[int, int]:
                return len(events(web, woken.info_hash)), len(events(web, dormant.info_hash))

            await anyio.to_thread.run_sync(add)
            with anyio.fail_after(20):
                while announced(web) != {t.info_hash.hex() for t in (woken, dormant)} \
                        or shared.external_ip != "203.0.113.7":
                    await anyio.sleep(0.02)
                await anyio.to_thread.run_sync(lambda: call("torrents_stop"))
                while b"stopped" not in events(web, woken.info_hash):
                    await anyio.sleep(0.02)
                await anyio.to_thread.run_sync(lambda: call("torrents_start"))  # (a dormant seed again)
                woken_id = next(j.id for j in api.service.list() if j.info_hash == woken.info_hash.hex())
                # (woken as soon as its started is heard, answered or not: its session goes on
                # from that round, whenever it ends)
                while len(events(web, woken.info_hash)) < 3:
                    await anyio.sleep(0.02)
                assert await api.service.stream_session(woken_id) is not None  # (a session now, as a peer's)
                assert api.service.manager.get(woken.info_hash) is not None
                assert api.service.manager.get(dormant.info_hash) is None
                before = counts()
                await gateway_says("203.0.113.8")  # off: nothing announced
                await anyio.sleep(1.5)
                assert counts() == before
                await anyio.to_thread.run_sync(lambda: call("", reannounce_when_address_changed=True))
                assert api.service.manager.config.reannounce_when_address_changed
                await anyio.sleep(1.0)  # (the same address again: no change)
                assert counts() == before
                await gateway_says("203.0.113.9")
                while counts() != (before[0] + 1, before[1] + 1):
                    await anyio.sleep(0.02)
                await anyio.sleep(1.0)  # (once each)
                assert counts() == (before[0] + 1, before[1] + 1)
                # (regular announces: each tracker takes the address the request came from)
                assert events(web, woken.info_hash)[-1] == events(web, dormant.info_hash)[-1] == b""
        tg.cancel_scope.cancel()  # (the gateway, once the service stopped)
