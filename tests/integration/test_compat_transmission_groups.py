"""Transmission's bandwidth groups (group-get, group-set, torrent-set/torrent-get ``group``) on the
daemon: driven by the real ``transmission-rpc`` library over the old protocol, and by plain HTTP
over JSON-RPC 2.0 (``group_get``, ``group_set``, snake_case fields)."""

from __future__ import annotations

import base64
from pathlib import Path

import anyio
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.test_compat_transmission import torrent_bytes
from tests.integration.test_compat_transmission_jsonrpc import rpc, seeded_torrent

pytestmark = pytest.mark.anyio


def drive(port: int, data: bytes) -> None:
    """What a tool does with groups through transmission-rpc (in a worker thread)."""
    transmission_rpc = require_module("transmission_rpc")
    client = transmission_rpc.Client(host="127.0.0.1", port=port, username="me", password=TOKEN, timeout=30)
    assert client.get_groups() == {}
    client.set_group("slow", speed_limit_down_enabled=True, speed_limit_down=300, honors_session_limits=True)
    client.set_group("free", speed_limit_up=50, honors_session_limits=False)
    groups = client.get_groups()
    assert sorted(groups) == ["free", "slow"]
    slow = client.get_group("slow")
    assert slow is not None
    assert (slow.speed_limit_down_enabled, slow.speed_limit_down, slow.speed_limit_up_enabled,
            slow.honors_session_limits) == (True, 300, False, True)
    free = groups["free"]
    assert (free.speed_limit_up_enabled, free.speed_limit_up, free.honors_session_limits) == (True, 50, False)
    client.set_group("slow", speed_limit_down_enabled=False)  # (off: no download limit)
    slow = client.get_group("slow")
    assert slow is not None and (slow.speed_limit_down_enabled, slow.speed_limit_down) == (False, 0)
    assert client.get_group("none") is None
    assert sorted(client.get_groups(["free", "none"])) == ["free"]

    added = client.add_torrent(data, paused=True)
    assert client.get_torrent(added.id).group == ""
    client.change_torrent(added.id, group="slow")
    assert client.get_torrent(added.id).group == "slow"
    client.change_torrent(added.id, group="made-on-use")  # (an unknown group is made, as Transmission)
    assert client.get_torrent(added.id).group == "made-on-use"
    assert "made-on-use" in client.get_groups()
    client.change_torrent(added.id, group="")
    assert client.get_torrent(added.id).group == ""
    with pytest.raises(transmission_rpc.TransmissionError, match="speed-limit-down"):
        client.set_group("slow", speed_limit_down=-5)
    with pytest.raises(transmission_rpc.TransmissionError, match="name"):
        client.set_group("")


async def test_transmission_rpc_client_drives_groups(tmp_path: Path) -> None:
    data, _ = torrent_bytes()
    async with running_api(tmp_path) as api:
        await anyio.to_thread.run_sync(drive, api.server.bound_port, data)
        slow = api.service.bandwidth_group("slow")
        assert (slow.download_limit, slow.weight, slow.honors_global) == (0, 1, True)
        assert api.service.bandwidth_group("free").upload_limit == 50_000


async def test_groups_over_jsonrpc_in_snake_case_with_the_weight(tmp_path: Path) -> None:
    data, _ = seeded_torrent()
    async with rpc(tmp_path) as (c, api):
        assert await c.result("group_set", {"name": "films", "speed_limit_down": 200,
                                            "speed_limit_down_enabled": True, "weight": 3}) == {}
        answer = await c.result("group_get", {"group": "films"})
        assert answer == {"group": [{"name": "films", "honors_session_limits": True,
                                     "speed_limit_down_enabled": True, "speed_limit_down": 200,
                                     "speed_limit_up_enabled": False, "speed_limit_up": 0, "weight": 3}]}
        assert api.service.bandwidth_group("films").download_limit == 200_000
        tid = (await c.result("torrent_add", {"metainfo": base64.b64encode(data).decode(),
                                              "paused": True}))["torrent_added"]["id"]
        await c.result("torrent_set", {"ids": [tid], "group": "films"})
        rows = await c.result("torrent_get", {"ids": [tid], "fields": ["id", "group"]})
        assert rows["torrents"] == [{"id": tid, "group": "films"}]
        await api.service.update_bandwidth_group("films", weight=2)  # (through our API: seen here)
        assert (await c.result("group_get"))["group"][0]["weight"] == 2
        for bad, word in (({"name": "films", "weight": 0}, "weight"),
                          ({"name": "films", "speed_limit_up_enabled": "yes"}, "speed-limit-up-enabled"),
                          ({"name": "films", "honors_session_limits": 1}, "honorsSessionLimits"),
                          ({"speed_limit_up": 5}, "name")):
            refused = await c.call("group_set", bad)
            assert refused["error"]["code"] == -32602, (bad, refused)
            assert word in refused["error"]["data"]["error_string"], (bad, refused)
        by_name = await c.result("group_get", {"name": ["films", "other"]})  # (libtransmission's key)
        assert [g["name"] for g in by_name["group"]] == ["films"]
        refused = await c.call("group_get", {"group": 5})
        assert refused["error"]["code"] == -32602
        assert api.service.bandwidth_group("films").weight == 2  # (nothing changed by a refusal)
