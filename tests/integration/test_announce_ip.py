"""The address told to trackers (qBittorrent's ``announce_ip``), set through the qBittorrent
dialect with qbittorrent-api: an HTTP tracker gets it as ``ip``, a UDP tracker in its IPv4 field,
from a torrent's session and from a dormant seed's announces alike; one that is neither an IP
address nor a host name is refused."""

from __future__ import annotations

import struct
from pathlib import Path

import anyio
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import make_payload
from tests.integration.test_default_trackers import answer
from tests.unit.tracker._tracker_servers import UdpTracker, http_tracker, udp_tracker
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio

ADDRESS = "203.0.113.9"


async def test_trackers_are_told_the_address_the_preference_gives(tmp_path: Path) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    root = tmp_path / "downloads"
    async with http_tracker(answer) as web, udp_tracker(UdpTracker()) as udp:
        trackers = [f"http://127.0.0.1:{web.port}/announce", f"udp://127.0.0.1:{udp.port}/announce"]
        checked, seeded = (create_torrent(make_payload(root, ((f"{n}.bin", 40_000),), name=n), version="v1",
                                          trackers=trackers) for n in ("checked", "seeded"))
        async with running_api(tmp_path, config_options={"tracker_enabled": True}) as api:
            def drive() -> str:
                qbt = qbittorrentapi.Client(host=api.url, username="admin", password=TOKEN,
                                            REQUESTS_ARGS={"timeout": 30})
                assert qbt.app_preferences()["announce_ip"] == ""
                qbt.app_set_preferences({"announce_ip": f" {ADDRESS} "})
                with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="announce_ip"):
                    qbt.app_set_preferences({"announce_ip": "not an address"})
                qbt.torrents_add(torrent_files=checked.to_bytes())  # (a session's announces)
                qbt.torrents_add(torrent_files=seeded.to_bytes(), is_skip_checking=True)  # (a dormant seed's)
                return str(qbt.app_preferences()["announce_ip"])

            assert await anyio.to_thread.run_sync(drive) == ADDRESS
            hashes = {checked.info_hash, seeded.info_hash}
            with anyio.fail_after(20):
                while {h for r in web.requests for h in r.query().get("info_hash", [])} != hashes \
                        or len(udp.announces) < 2:
                    await anyio.sleep(0.02)
            assert {ip for r in web.requests for ip in r.query().get("ip", [])} == {ADDRESS.encode()}
            fields = {struct.unpack_from(">I", p, 84)[0] for p in udp.received if len(p) >= 98}
            assert fields == {0xCB007109}  # (203.0.113.9)
            assert api.service.get_settings().announce_ip == ADDRESS
