"""How many torrents hash their data at once, as every door sets it: qBittorrent's
``max_active_checking_torrents`` (read and written, -1 for no limit as qBittorrent's ∞), our
settings' ``max_active_checking``, the daemon's ``--active-checking-limit`` and its config file
key; the shared check slots follow at once."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from tests.integration.api_helpers import running_api
from torrent_engine.cli.daemon import parse_checking_limit, register
from torrent_engine.cli.daemon_config import asked_settings
from torrent_engine.config import DEFAULT_ACTIVE_CHECKING, Config
from torrent_engine.errors import ConfigError

pytestmark = pytest.mark.anyio


async def test_the_qbittorrent_preference_and_our_setting_set_the_checks_at_once(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        c = api.client
        slots = api.service.manager.shared.check_slots
        prefs = (await c.get("/api/v2/app/preferences")).json()
        assert prefs["max_active_checking_torrents"] == DEFAULT_ACTIVE_CHECKING == slots.total_tokens
        r = await c.post("/api/v2/app/setPreferences",
                         data={"json": json.dumps({"max_active_checking_torrents": 3})})
        assert r.status_code == 200, r.text
        assert slots.total_tokens == 3
        assert (await c.get("/api/settings")).json()["max_active_checking"] == 3
        r = await c.post("/api/v2/app/setPreferences",
                         data={"json": json.dumps({"max_active_checking_torrents": -1})})
        assert r.status_code == 200 and slots.total_tokens == math.inf
        assert (await c.get("/api/v2/app/preferences")).json()["max_active_checking_torrents"] == -1
        r = await c.patch("/api/settings", json={"max_active_checking": 2})
        assert r.status_code == 200, r.text
        assert slots.total_tokens == 2
        for bad in (0, -2, "4", True, 1.5):
            r = await c.post("/api/v2/app/setPreferences",
                             data={"json": json.dumps({"max_active_checking_torrents": bad})})
            assert r.status_code == 400 and "max_active_checking" in r.text, (bad, r.text)
            r = await c.patch("/api/settings", json={"max_active_checking": bad})
            assert r.status_code == 400 and "max_active_checking" in r.text, (bad, r.text)
        assert slots.total_tokens == 2  # (nothing half-applied)


def test_the_daemon_flag_and_the_config_take_a_number_or_no_limit() -> None:
    assert parse_checking_limit("4") == 4 and parse_checking_limit("-1") == -1
    for bad in ("0", "-2", "many"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_checking_limit(bad)
    assert Config(active_checking_limit=-1).active_checking_limit == -1
    with pytest.raises(ConfigError):
        Config(active_checking_limit=0)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["daemon", "--active-checking-limit", "-1"])
    assert args.active_checking_limit == -1 and asked_settings(args)["max_active_checking"] == -1
