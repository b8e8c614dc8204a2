"""qBittorrent's peer turnover preferences (``peer_turnover``, ``peer_turnover_cutoff``,
``peer_turnover_interval``), read and set with qbittorrent-api: libtorrent's defaults, a change
that reaches the engine's Config at once, bad values refused naming the preference."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import qbt_client, running_api

pytestmark = pytest.mark.anyio

NAMES = ("peer_turnover", "peer_turnover_cutoff", "peer_turnover_interval")


async def test_peer_turnover_is_read_and_set_as_qbittorrent_does(tmp_path: Path) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    async with running_api(tmp_path) as api:
        def drive() -> dict[str, object]:
            client = qbt_client(api.url)
            prefs = client.app_preferences()
            assert [prefs[name] for name in NAMES] == [4, 90, 300]
            for bad in ({"peer_turnover": 101}, {"peer_turnover": -1}, {"peer_turnover_cutoff": "most"},
                        {"peer_turnover_interval": 0}):
                with pytest.raises(qbittorrentapi.InvalidRequest400Error, match=next(iter(bad))):
                    client.app_set_preferences(bad)
            client.app_set_preferences({"peer_turnover": 10, "peer_turnover_cutoff": 75,
                                        "peer_turnover_interval": 120})
            return dict(client.app_preferences())

        prefs = await anyio.to_thread.run_sync(drive)
        assert [prefs[name] for name in NAMES] == [10, 75, 120]
        assert [getattr(api.service.manager.config, name) for name in NAMES] == [10, 75, 120]
