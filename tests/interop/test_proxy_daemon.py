"""The daemon's proxy, set through both dialects and our API: qBittorrent's ``proxy_*``
preferences (4.6's names and 4.5's numbers) and Transmission 4.1's ``proxy_url`` are one setting;
a download from a libtorrent seeder then reaches it through Dante only; a bad value is refused
naming its field, nothing saved; proxy only turned on at run time stops the listener; a restart
keeps it all."""

from __future__ import annotations

import base64
import json
import sys
from contextlib import ExitStack
from pathlib import Path

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.integration.helpers import make_payload
from tests.integration.test_api_daemon import Daemon, daemon
from tests.integration.test_daemon_programs_watch import rpc
from tests.interop._proxies import OUTSIDE, SOCKS_PASSWORD, SOCKS_USER, dante
from tests.interop.test_libtorrent_transfer import wait_lt
from tests.interop.test_proxy import incoming_addresses, lt_seeder
from torrent_engine.storage.create import create_torrent

pytestmark = [pytest.mark.anyio, pytest.mark.interop, pytest.mark.slow]


async def set_prefs(d: Daemon, prefs: dict[str, object]) -> tuple[int, str]:
    r = await d.client.post("/api/v2/app/setPreferences", data={"json": json.dumps(prefs)})
    return r.status_code, r.text


async def prefs(d: Daemon) -> dict[str, object]:
    return (await d.client.get("/api/v2/app/preferences")).json()  # type: ignore[no-any-return]


async def proxy_url(d: Daemon) -> str:
    return (await rpc(d, "session-get", {"fields": ["proxy_url"]}))["arguments"]["proxy_url"]  # type: ignore[no-any-return]


async def test_both_dialects_set_the_one_proxy_and_a_download_goes_through_it(tmp_path: Path) -> None:
    lt = require_libtorrent()
    with ExitStack() as stack:
        socks = stack.enter_context(dante(tmp_path))
        payload = make_payload(tmp_path / "seed", (("a.bin", 400_000),))
        torrent = create_torrent(payload, piece_length=32 * 1024)
        ses = lt_seeder(lt, stack)
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(torrent.to_bytes()))
        params.save_path = str(tmp_path / "seed")
        await wait_lt(ses.add_torrent(params), seeding=True)
        async with daemon(tmp_path) as d:
            # qBittorrent 4.6's names (answered as 4.5 answers: SOCKS5 is 2)
            status, text = await set_prefs(d, {"proxy_type": "SOCKS5", "proxy_ip": "127.0.0.1",
                                               "proxy_port": socks.port, "proxy_hostname_lookup": True,
                                               "proxy_peer_connections": True})
            assert status == 200, text
            shown = await prefs(d)
            assert (shown["proxy_type"], shown["proxy_ip"], shown["proxy_port"]) == (2, "127.0.0.1",
                                                                                     socks.port)
            assert await proxy_url(d) == f"socks5h://127.0.0.1:{socks.port}"
            assert (await d.client.get("/api/settings")).json()["proxy_url"] == f"socks5h://127.0.0.1:{socks.port}"
            source = base64.b64encode(torrent.to_bytes()).decode()
            r = await d.client.post("/api/jobs", json={"source": source,
                                                       "peers": [f"127.0.0.2:{ses.listen_port()}"]})
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            with anyio.fail_after(60):
                while (await d.client.get(f"/api/jobs/{job_id}")).json()["progress"] < 1:
                    await anyio.sleep(0.1)
            assert incoming_addresses(lt, ses) == {OUTSIDE}

            # Transmission 4.1's proxy_url, credentials in it; qBittorrent shows the same proxy
            url = f"socks5://{SOCKS_USER}:{SOCKS_PASSWORD}@127.0.0.1:{socks.port}"
            answer = await rpc(d, "session-set", {"proxy_url": url})
            assert answer["result"] == "success", answer
            shown = await prefs(d)
            assert (shown["proxy_type"], shown["proxy_auth_enabled"], shown["proxy_username"],
                    shown["proxy_password"], shown["proxy_hostname_lookup"]) == (
                4, True, SOCKS_USER, SOCKS_PASSWORD, False)
            # qBittorrent 4.5's numbers: 3 is HTTP with a username and password, 0 none
            status, text = await set_prefs(d, {"proxy_type": 3, "proxy_port": 3128})
            assert status == 200, text
            assert await proxy_url(d) == f"http://{SOCKS_USER}:{SOCKS_PASSWORD}@127.0.0.1:3128"
            # bad values: refused naming the field, nothing saved
            for bad, field in (({"proxy_type": "SOCKS9"}, "proxy_type"), ({"proxy_port": 0}, "proxy_port"),
                               ({"proxy_ip": "a b"}, "proxy_ip")):
                status, text = await set_prefs(d, bad)
                assert status == 400 and field in text, (bad, status, text)
            answer = await rpc(d, "session-set", {"proxy_url": "ftp://127.0.0.1:21"})
            assert answer["result"] != "success" and "proxy_url" in answer["result"], answer
            r = await d.client.patch("/api/settings", json={"proxy_url": "socks5://127.0.0.1:99999"})
            assert r.status_code == 400 and r.json()["field"] == "proxy_url", r.text
            assert await proxy_url(d) == f"http://{SOCKS_USER}:{SOCKS_PASSWORD}@127.0.0.1:3128"
            # proxy only, at run time: the listener stops (nothing answers on the peer port)
            before = (await d.client.get("/api/stats")).json()["listen_port"]
            assert before
            r = await d.client.patch("/api/settings", json={"proxy_only": True})
            assert r.status_code == 200, r.text
            assert (await d.client.get("/api/stats")).json()["listen_port"] == 0
            status, text = await set_prefs(d, {"proxy_type": 0})
            assert status == 400 and "proxy_only" in text  # (proxy only needs a proxy)
        async with daemon(tmp_path) as d:  # a restart keeps it
            assert await proxy_url(d) == f"http://{SOCKS_USER}:{SOCKS_PASSWORD}@127.0.0.1:3128"
            assert (await d.client.get("/api/settings")).json()["proxy_only"] is True
            assert (await d.client.get("/api/stats")).json()["listen_port"] == 0
            r = await d.client.patch("/api/settings", json={"proxy_only": False})
            assert r.status_code == 200, r.text
            status, text = await set_prefs(d, {"proxy_type": "None"})
            assert status == 200, text
            assert await proxy_url(d) == "" and (await prefs(d))["proxy_type"] == 0


async def test_a_bad_proxy_url_or_proxy_only_without_one_stops_the_start_saying_which(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "torrent_engine", "daemon", "--state-dir", str(tmp_path / "state"),
            "--download-dir", str(tmp_path / "downloads"), "--api-port", "0", "--listen-host", "127.0.0.1",
            "--no-trackers", "--no-dht", "--no-port-mapping", "--no-lsd"]
    done = await anyio.run_process([*base, "--proxy-url", "socks6://127.0.0.1:1080"], check=False)
    told = done.stderr.decode()
    assert done.returncode == 1 and "proxy_url: scheme 'socks6'" in told, told
    done = await anyio.run_process([*base, "--proxy-only"], check=False)
    told = done.stderr.decode()
    assert done.returncode == 1 and "proxy_only: needs a proxy" in told, told
