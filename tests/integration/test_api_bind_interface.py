"""The network interface through qBittorrent's WebAPI and our API: one setting, shown by both,
an interface that does not exist refused naming each one's field (nothing changed then), and
the lists qBittorrent's web UI offers. (Transmission's RPC has no such field.)"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest

from tests.conftest import _missing
from tests.integration.api_helpers import running_api

pytestmark = pytest.mark.anyio


async def test_both_apis_set_the_one_interface_and_refuse_one_that_does_not_exist(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps(
            {"current_network_interface": "nosuch0"})})
        assert r.status_code == 400 and "current_network_interface" in r.text and "nosuch0" in r.text, r.text
        r = await c.patch("/api/settings", json={"bind_interface": "nosuch0"})
        assert r.status_code == 400 and r.json()["field"] == "bind_interface", r.text
        assert "no interface 'nosuch0'" in r.json()["error"]
        r = await c.patch("/api/settings", json={"bind_interface": "lo", "bind_address": "10.9.9.9"})
        assert r.status_code == 400 and r.json()["field"] == "bind_address", r.text
        assert (await c.get("/api/settings")).json()["bind_interface"] == ""  # (nothing changed)
        assert api.service.manager.config.bind_interface == ""

        names = (await c.get("/api/v2/app/networkInterfaceList")).json()
        assert {"name": "lo", "value": "lo"} in names
        addresses = (await c.get("/api/v2/app/networkInterfaceAddressList", params={"iface": "lo"})).json()
        assert "127.0.0.1" in addresses

        r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps(
            {"current_network_interface": "lo", "current_interface_address": "127.0.0.1"})})
        assert r.status_code == 200, r.text
        prefs = (await c.get("/api/v2/app/preferences")).json()
        assert (prefs["current_network_interface"], prefs["current_interface_address"]) == ("lo", "127.0.0.1")
        ours = (await c.get("/api/settings")).json()
        assert (ours["bind_interface"], ours["bind_address"]) == ("lo", "127.0.0.1")
        config = api.service.manager.config
        assert (config.bind_interface, config.bind_address) == ("lo", "127.0.0.1")

        r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps(
            {"current_network_interface": ""})})
        assert r.status_code == 200, r.text
        assert (config.bind_interface, config.bind_address) == ("", "")


async def test_an_interface_set_at_run_time_keeps_the_port_taken_at_random(tmp_path: Path) -> None:
    """The services bound anew to the interface on the port they listened on (``listen_port`` 0:
    one taken at random at the start), not on another that peers and trackers do not know."""
    if os.geteuid() != 0:
        _missing("root (to bind to an interface)")
    async with running_api(tmp_path) as api:
        r = await api.client.post("/api/jobs", json={"source": "magnet:?xt=urn:btih:" + "c" * 40})
        assert r.status_code == 201, r.text
        shared = api.service.manager.shared
        with anyio.fail_after(20):
            while not shared.running:
                await anyio.sleep(0.02)
        port = shared.listen_port
        r = await api.client.patch("/api/settings", json={"bind_interface": "lo"})
        assert r.status_code == 200, r.text
        assert shared.running and shared.config.bind_interface == "lo"
        assert shared.listen_port == port  # (a new random one each time before)
        r = await api.client.patch("/api/settings", json={"bind_interface": ""})
        assert r.status_code == 200 and shared.listen_port == port, r.text


async def test_a_daemon_asked_for_an_interface_that_does_not_exist_stops_saying_which(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "torrent_engine", "daemon", "--state-dir", str(tmp_path / "state"),
            "--download-dir", str(tmp_path / "downloads"), "--api-port", "0", "--listen-host", "127.0.0.1",
            "--no-trackers", "--no-dht", "--no-port-mapping", "--no-lsd"]
    done = await anyio.run_process([*base, "--bind-interface", "nosuch0"], check=False)
    told = done.stderr.decode()
    assert done.returncode == 1 and "bind_interface: no interface 'nosuch0'" in told, told
    done = await anyio.run_process([*base, "--bind-interface", "lo", "--bind-address", "10.9.9.9"],
                                   check=False)
    told = done.stderr.decode()
    assert done.returncode == 1 and "bind_address: 10.9.9.9 is not an address of 'lo'" in told, told
