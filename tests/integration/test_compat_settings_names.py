"""A settings change through a dialect that the service refuses names the field the client sent
(qBittorrent's preference, Transmission's key), with the service's setting in brackets: before,
the refusal named only the service's setting, which the client never sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.api_helpers import Api, running_api

pytestmark = pytest.mark.anyio


async def _rpc(api: Api, arguments: dict[str, object]) -> str:
    """A Transmission ``session-set`` of ``arguments``: its ``result``."""
    call = {"method": "session-set", "arguments": arguments}
    r = await api.client.post("/transmission/rpc", json=call)
    assert r.status_code == 409
    r = await api.client.post("/transmission/rpc", json=call,
                              headers={"X-Transmission-Session-Id": r.headers["x-transmission-session-id"]})
    assert r.status_code == 200, r.text
    return str(r.json()["result"])


async def test_a_refused_setting_is_named_as_the_client_named_it(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        for prefs, said in (
                ({"slow_torrent_inactive_timer": 0},
                 "slow_torrent_inactive_timer: must be a number of seconds >= 1 (the setting "
                 "slow_torrent_inactive_time)"),
                ({"web_ui_ban_duration": 0, "max_active_downloads": 7},
                 "web_ui_ban_duration: must be a number of seconds >= 1 (the setting login_ban_time)"),
                ({"export_dir": "/etc"}, "export_dir: "),
                ({"announce_ip": "not an address!"}, "announce_ip: ")):  # (the same name: as it was)
            r = await api.client.post("/api/v2/app/setPreferences", data={"json": json.dumps(prefs)})
            assert r.status_code == 400 and r.text.startswith(said), (prefs, r.text)
        assert "(the setting torrent_export_dir)" in (await api.client.post(
            "/api/v2/app/setPreferences", data={"json": json.dumps({"export_dir": "/etc"})})).text
        assert api.service.get_settings().max_active_downloads != 7  # (nothing of a refused change made)
        result = await _rpc(api, {"incomplete-dir": "/etc", "speed-limit-down": 77,
                                  "speed-limit-down-enabled": True})
        assert result.startswith("incomplete-dir: "), result
        assert result.endswith("(the setting incomplete_dir)"), result
        assert api.service.get_settings().download_limit == 0
        assert await _rpc(api, {"speed-limit-down": 77, "speed-limit-down-enabled": True}) == "success"
        assert api.service.get_settings().download_limit > 0
