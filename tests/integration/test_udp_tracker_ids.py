"""UDP trackers' connection ids shared by a daemon's torrents (``SharedResources.udp_ids``): the
announces of its running torrents and dormant seeds to one UDP tracker go after one connect
(BEP 15), where each torrent connected for itself before."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.integration.api_helpers import add_with_trackers, running_api
from tests.unit.tracker._tracker_servers import UdpTracker, udp_tracker

pytestmark = pytest.mark.anyio


async def test_a_daemons_torrents_connect_to_a_udp_tracker_once(tmp_path: Path) -> None:
    async with udp_tracker(UdpTracker()) as tracker:
        url = f"udp://127.0.0.1:{tracker.port}/announce"
        async with running_api(tmp_path, config_options={"tracker_enabled": True}) as api:
            for n in range(4):  # (two downloads, two dormant seeds; one after another)
                await add_with_trackers(api, tmp_path / "elsewhere", [[url]], seed=n % 2 == 1, n=n)
                with anyio.fail_after(20):
                    while len(tracker.announces) < n + 1:
                        await anyio.sleep(0.02)
            assert tracker.connects == 1 and api.service.manager.shared.udp_ids.connects_sent == 1
