"""The bytes a download wasted, as the clients people run read them from a real
``torrent-engine daemon``: one peer sends random bytes for every block it is asked (its pieces fail
the hash check), an honest seeder the rest. ``qbittorrent-api``'s ``total_wasted`` (a torrent's)
and ``total_wasted_session`` (the server's), ``transmission-rpc``'s ``corrupt_ever`` and
``transmission-remote -i``'s "Corrupt DL" show them, and keep them over a restart of the daemon
(they were 0, "None", whatever came)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from anyio.from_thread import start_blocking_portal

from tests.conftest import require_module, require_program
from tests.integration.helpers import same_files
from tests.integration.test_bad_peers import FakePeer
from tests.interop.test_compat_clients import TOKEN, running_daemon, seeder, until

pytestmark = [pytest.mark.interop, pytest.mark.slow]

TIMEOUT = {"timeout": 30}


def test_the_clients_show_the_bytes_that_failed_the_hash_check(tmp_path: Path) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    transmission_rpc = require_module("transmission_rpc")
    exe = require_program("transmission-remote")
    with seeder(tmp_path, ("wasted",)) as (ses, torrents), start_blocking_portal() as portal:
        ses.ses.apply_settings({"upload_rate_limit": 1_500_000})  # (the liar gets its share of requests)
        torrent = torrents["wasted"]
        liar = FakePeer(torrent, "liar")
        serving, _ = portal.start_task(liar.serve)
        try:  # (the liar's task cancelled whatever happens: the portal waits for it)
            with running_daemon(tmp_path / "d") as d:
                qbt = qbittorrentapi.Client(host=d.url, username="me", password=TOKEN, REQUESTS_ARGS=TIMEOUT)
                qbt.auth_log_in()
                assert qbt.torrents_add(torrent_files=torrent.to_bytes())["success_count"] == 1
                h = torrent.info_hash.hex()
                peers = f"127.0.0.1:{liar.port}|127.0.0.1:{ses.listen_port()}"  # (the liar dialed first)
                qbt.torrents_add_peers(peers=peers, torrent_hashes=h)
                until(lambda: qbt.torrents_info(torrent_hashes=h)[0].progress == 1.0, "downloaded",
                      poke=lambda: qbt.torrents_add_peers(peers=peers, torrent_hashes=h))
                wasted = qbt.torrents_properties(torrent_hash=h).total_wasted
                assert wasted > 0 and qbt.sync_maindata().server_state.total_wasted_session == wasted
                tr = transmission_rpc.Client(host="127.0.0.1", port=d.port, username="me", password=TOKEN)
                corrupt = tr.get_torrent(h, arguments=["id", "corruptEver"]).corrupt_ever
                assert 0 < corrupt <= wasted  # (the failed pieces: among the bytes wasted)

                def corrupt_line() -> str:
                    done = subprocess.run([exe, f"127.0.0.1:{d.port}", "-n", f"me:{TOKEN}", "-t", h, "-i"],
                                          capture_output=True, text=True, timeout=60, check=True)
                    lines = (x.strip() for x in done.stdout.splitlines())
                    return next(x for x in lines if x.startswith("Corrupt DL:"))

                shown = corrupt_line()
                assert shown != "Corrupt DL: None" and any(c.isdigit() for c in shown), shown
                d.stop()
                d.start()  # a restart: the torrent keeps what it wasted, the daemon's run starts at 0
                qbt = qbittorrentapi.Client(host=d.url, username="me", password=TOKEN, REQUESTS_ARGS=TIMEOUT)
                qbt.auth_log_in()
                assert qbt.torrents_properties(torrent_hash=h).total_wasted == wasted
                assert qbt.sync_maindata().server_state.total_wasted_session == 0
                tr = transmission_rpc.Client(host="127.0.0.1", port=d.port, username="me", password=TOKEN)
                assert tr.get_torrent(h, arguments=["id", "corruptEver"]).corrupt_ever == corrupt
                assert corrupt_line() == shown
                d.stop()
        finally:
            serving.cancel()
        assert same_files(torrent, tmp_path / "seed", d.downloads) == []
