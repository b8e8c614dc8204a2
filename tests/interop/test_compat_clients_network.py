"""The listening port, PEX and encryption (and qBittorrent's outgoing connections a second)
changed at run time by the clients people run against a real ``torrent-engine daemon``:
``qbittorrent-api`` (``app/setPreferences``) and ``transmission-rpc`` (``session-set``). The
daemon listens on the new port at once and keeps the values across a restart. (DHT and LSD are
not turned on here: the daemon would reach the public routers or join a multicast group;
tests/integration/test_runtime_network.py turns them.)"""

from __future__ import annotations

import socket
from functools import partial
from pathlib import Path
from typing import Any

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
        assert (before.encryption, before.pex, before.random_port) == (0, True, False)
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


def test_the_port_chosen_at_the_first_start_is_kept_unless_random_port(tmp_path: Path) -> None:
    """As qBittorrent (its first start draws the port it keeps; "use a different port on each
    start" off) and Transmission (``peer-port-random-on-start`` false): the daemon started with no
    ``--listen-port`` listens on the same port after a restart; with ``random_port`` set through
    qbittorrent-api, on another one, which both clients read."""
    qbittorrentapi = require_module("qbittorrentapi")
    transmission_rpc = require_module("transmission_rpc")
    with running_daemon(tmp_path / "d") as d:
        def qbt() -> object:
            client = qbittorrentapi.Client(host=d.url, username="sonarr", password=TOKEN,
                                           REQUESTS_ARGS={"timeout": 30})
            client.auth_log_in()
            return client

        client: Any = qbt()
        client.torrents_add(torrent_files=a_torrent(tmp_path))
        until(lambda: answers(client.app_preferences().listen_port), "listening")
        first = client.app_preferences()
        assert first.random_port is False and first.listen_port > 0
        d.stop()
        d.start()
        client = qbt()
        until(partial(answers, first.listen_port), "listening on the kept port")
        assert client.app_preferences().listen_port == first.listen_port
        client.app_set_preferences({"random_port": True})
        ports = {first.listen_port}
        for _ in range(3):  # (a draw may meet an earlier one: four starts, not all on one port)
            d.stop()
            d.start()
            client = qbt()
            prefs = client.app_preferences()
            port = int(prefs.listen_port)
            assert prefs.random_port is True
            until(partial(answers, port), "listening on the new port")
            ports.add(port)
        assert len(ports) > 1
        tr = transmission_rpc.Client(host="127.0.0.1", port=d.port, username="radarr", password=TOKEN)
        session = tr.get_session()
        assert (session.peer_port, session.peer_port_random_on_start) == (port, True)
        d.stop()
