"""The listening port, PEX and encryption (and qBittorrent's outgoing connections a second)
changed at run time by the clients people run against a real ``torrent-engine daemon``:
``qbittorrent-api`` (``app/setPreferences``) and ``transmission-rpc`` (``session-set``). The
daemon listens on the new port at once and keeps the values across a restart. (DHT and LSD are
not turned on here: the daemon would reach the public routers or join a multicast group;
tests/integration/test_runtime_network.py turns them.)"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import require_module
from tests.integration.helpers import make_payload, make_torrent
from tests.interop.test_compat_clients import TOKEN, running_daemon, until

pytestmark = [pytest.mark.interop]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def a_torrent(tmp_path: Path) -> bytes:
    """A torrent whose data the daemon lacks: added, it downloads, and the daemon listens."""
    return make_torrent(make_payload(tmp_path / "elsewhere")).to_bytes()


def test_qbittorrent_api_changes_the_port_pex_and_encryption(tmp_path: Path) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    port = free_port()
    with running_daemon(tmp_path / "d") as d:
        qbt = qbittorrentapi.Client(host=d.url, username="sonarr", password=TOKEN,
                                    REQUESTS_ARGS={"timeout": 30})
        qbt.auth_log_in()
        qbt.torrents_add(torrent_files=a_torrent(tmp_path))
        until(lambda: qbt.app_preferences().listen_port > 0, "listening")
        before = qbt.app_preferences()
        assert (before.encryption, before.pex, before.random_port) == (0, True, True)
        qbt.app_set_preferences({"listen_port": port, "encryption": 1, "pex": False})
        prefs = qbt.app_preferences()
        assert (prefs.listen_port, prefs.random_port, prefs.encryption, prefs.pex) == (port, False, 1, False)
        assert answers(port)
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            busy = taken.getsockname()[1]
            with pytest.raises(qbittorrentapi.exceptions.HTTP400Error, match="listen_port"):
                qbt.app_set_preferences({"listen_port": busy})
        assert qbt.app_preferences().listen_port == port
        # "outgoing connections per second" 0: none at all, as libtorrent takes it (not "no limit")
        qbt.app_set_preferences({"connection_speed": 0})
        assert qbt.app_preferences().connection_speed == 0
        d.stop()
        d.start()
        qbt = qbittorrentapi.Client(host=d.url, username="sonarr", password=TOKEN,
                                    REQUESTS_ARGS={"timeout": 30})
        qbt.auth_log_in()
        prefs = qbt.app_preferences()
        assert (prefs.listen_port, prefs.encryption, prefs.pex, prefs.connection_speed) == (port, 1, False, 0)
        d.stop()


def test_transmission_rpc_changes_the_port_pex_and_encryption(tmp_path: Path) -> None:
    transmission_rpc = require_module("transmission_rpc")
    port = free_port()
    with running_daemon(tmp_path / "d") as d:
        tr = transmission_rpc.Client(host="127.0.0.1", port=d.port, username="radarr", password=TOKEN)
        tr.add_torrent(a_torrent(tmp_path))
        until(lambda: tr.get_session().peer_port > 0, "listening")
        before = tr.get_session()
        assert (before.encryption, before.pex_enabled) == ("preferred", True)
        tr.set_session(peer_port=port, encryption="required", pex_enabled=False)
        after = tr.get_session()
        assert (after.peer_port, after.encryption, after.pex_enabled) == (port, "required", False)
        assert answers(port)
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            with pytest.raises(transmission_rpc.TransmissionError, match="listen_port"):
                tr.set_session(peer_port=taken.getsockname()[1])
        assert tr.get_session().peer_port == port and answers(port)
        d.stop()
