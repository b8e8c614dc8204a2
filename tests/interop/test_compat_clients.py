"""The clients people already run, against a real ``torrent-engine daemon`` that downloads from a
real libtorrent seeder on 127.0.0.1: ``qbittorrent-api`` (qBittorrent's WebAPI), ``transmission-rpc``
and ``transmission-remote`` (Transmission's RPC). Add by upload and by magnet into a category, list
by category and tag, pause and resume, a share limit reached, a restart that keeps categories and
tags, delete with files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import require_libtorrent, require_module, require_program
from tests.integration.helpers import make_payload, make_torrent, same_files
from tests.interop.test_libtorrent_transfer import lt_add, lt_session, wait_lt
from torrent_engine.formats.metainfo import Torrent

pytestmark = [pytest.mark.interop, pytest.mark.slow]

TOKEN = "compat-test-token-0123456789abcdef"
LIMIT = 90.0  # seconds for any wait below
REDIAL = 10.0  # seconds without the download done before the peers are dialled again


class Daemon:
    """A ``torrent-engine daemon`` process on loopback (no trackers, DHT or port mapping)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        self.downloads = root / "downloads"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        api_file = self.state / "api.json"
        api_file.unlink(missing_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "daemon.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "torrent_engine", "daemon", "--state-dir", str(self.state),
                 "--download-dir", str(self.downloads), "--api-port", "0", "--api-token", TOKEN,
                 "--listen-host", "127.0.0.1", "--no-trackers", "--no-dht", "--no-port-mapping", "--no-lsd"],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 60
        while not api_file.exists():
            assert self.proc.poll() is None, (self.root / "daemon.log").read_text()
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.05)
        self.url = json.loads(api_file.read_text())["url"]

    def stop(self) -> None:
        """SIGTERM: the daemon saves every job and exits."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=60) == 0, (self.root / "daemon.log").read_text()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def running_daemon(root: Path) -> Iterator[Daemon]:
    d = Daemon(root)
    d.start()
    try:
        yield d
    finally:
        d.kill()


def until(check: Callable[[], bool], what: str, limit: float = LIMIT,
          poke: Callable[[], object] | None = None) -> None:
    """Wait for ``check``; ``poke`` (e.g. dial the seeder again) every ``REDIAL`` seconds meanwhile."""
    deadline = time.monotonic() + limit
    poked = time.monotonic()
    while not check():
        assert time.monotonic() < deadline, f"not {what} after {limit:g} s"
        if poke is not None and time.monotonic() - poked > REDIAL:
            poke()
            poked = time.monotonic()
        time.sleep(0.1)


class Seeder:
    """A libtorrent session seeding some torrents, and their handles by name."""

    def __init__(self, ses: Any, handles: dict[str, Any]) -> None:
        self.ses = ses
        self.handles = handles

    def listen_port(self) -> int:
        return int(self.ses.listen_port())


@contextmanager
def seeder(tmp_path: Path, names: tuple[str, ...]) -> Iterator[tuple[Seeder, dict[str, Torrent]]]:
    """A libtorrent session seeding one torrent per name (v1 torrents of three files)."""
    lt = require_libtorrent()
    torrents = {}
    for n, name in enumerate(names):
        files = (("a.bin", 300_001 + n), ("sub/b.bin", 150_000), ("c.txt", 10))
        payload = make_payload(tmp_path / "seed", files, seed=n + 1, name=name)
        torrents[name] = make_torrent(payload, version="v1")
    with lt_session(lt) as ses:
        handles = {name: lt_add(lt, ses, t, tmp_path / "seed") for name, t in torrents.items()}

        async def all_seeding() -> None:
            for h in handles.values():
                await wait_lt(h, seeding=True)
        anyio.run(all_seeding)
        yield Seeder(ses, handles), torrents


def seed_to(ses: Seeder, torrent: Torrent, port: int) -> None:
    """Make the libtorrent seeder dial the daemon for ``torrent`` (the daemon has no tracker)."""
    ses.handles[torrent.name].connect_peer(("127.0.0.1", port))


# -- qbittorrent-api ---------------------------------------------------------------------------
def test_qbittorrent_api_against_the_daemon(tmp_path: Path) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    with seeder(tmp_path, ("show-one", "show-two")) as (ses, torrents):
        one, two = torrents["show-one"], torrents["show-two"]
        peer = f"127.0.0.1:{ses.listen_port()}"
        with running_daemon(tmp_path / "d") as d:
            qbt = qbittorrentapi.Client(host=d.url, username="sonarr", password=TOKEN,
                                        REQUESTS_ARGS={"timeout": 30})
            qbt.auth_log_in()
            qbt.torrents_create_category(name="tv", save_path="shows")
            added = qbt.torrents_add(torrent_files=one.to_bytes(), category="tv", tags="hd,new")
            assert added["success_count"] == 1
            assert qbt.torrents_add(urls=two.magnet_uri(), category="tv", tags="new")["success_count"] == 1
            h1, h2 = one.info_hash.hex(), two.info_hash.hex()
            qbt.torrents_add_peers(peers=peer, torrent_hashes=f"{h1}|{h2}")
            until(lambda: all(t.progress == 1.0 for t in qbt.torrents_info(category="tv")) and
                  len(qbt.torrents_info(category="tv")) == 2, "downloaded",
                  poke=lambda: qbt.torrents_add_peers(peers=peer, torrent_hashes=f"{h1}|{h2}"))
            assert {t.hash for t in qbt.torrents_info(tag="hd")} == {h1}
            assert {t.hash for t in qbt.torrents_info(tag="new")} == {h1, h2}
            assert {t.hash for t in qbt.torrents_info(status_filter="completed")} == {h1, h2}
            t1 = qbt.torrents_info(torrent_hashes=h1)[0]
            assert t1.state in ("uploading", "stalledUP") and t1.completion_on > 0
            assert t1.save_path == str((d.downloads / "shows").resolve())
            qbt.torrents_pause(torrent_hashes=h1)
            until(lambda: qbt.torrents_info(torrent_hashes=h1)[0].state == "stoppedUP", "paused")
            qbt.torrents_resume(torrent_hashes=h1)
            until(lambda: qbt.torrents_info(torrent_hashes=h1)[0].state in ("uploading", "stalledUP"),
                  "resumed")
            # a share limit: seeding time 0 minutes, the default action (pause) stops it
            qbt.torrents_set_share_limits(ratio_limit=-2, seeding_time_limit=0, torrent_hashes=h2)
            until(lambda: qbt.torrents_info(torrent_hashes=h2)[0].state == "stoppedUP",
                  "stopped at its limit")
            d.stop()
            d.start()  # the same torrents, categories and tags after a restart
            qbt = qbittorrentapi.Client(host=d.url, username="sonarr", password=TOKEN,
                                        REQUESTS_ARGS={"timeout": 30})
            qbt.auth_log_in()
            assert qbt.torrents_categories()["tv"]["savePath"] == str((d.downloads / "shows").resolve())
            after = {t.hash: t for t in qbt.torrents_info(category="tv")}
            assert set(after) == {h1, h2}
            assert (after[h1].tags, after[h2].tags) == ("hd, new", "new")
            assert after[h2].state == "stoppedUP" and after[h2].seeding_time_limit == 0
            until(lambda: qbt.torrents_info(torrent_hashes=h1)[0].state in ("uploading", "stalledUP"),
                  "seeding again")
            assert same_files(one, tmp_path / "seed", d.downloads / "shows") == []
            qbt.torrents_delete(delete_files=True, torrent_hashes=h1)
            assert [t.hash for t in qbt.torrents_info()] == [h2]
            assert not (d.downloads / "shows" / "show-one").exists()
            assert (d.downloads / "shows" / "show-two" / "a.bin").is_file()
            d.stop()


# -- transmission-rpc --------------------------------------------------------------------------
def test_transmission_rpc_against_the_daemon(tmp_path: Path) -> None:
    transmission_rpc = require_module("transmission_rpc")
    with seeder(tmp_path, ("film-one", "film-two")) as (ses, torrents):
        one, two = torrents["film-one"], torrents["film-two"]
        with running_daemon(tmp_path / "d") as d:
            tr = transmission_rpc.Client(host="127.0.0.1", port=d.port, username="radarr", password=TOKEN)
            films = str(d.downloads / "films")
            a = tr.add_torrent(one.to_bytes(), download_dir=films, labels=["hd"])
            magnet = two.magnet_uri() + f"&x.pe=127.0.0.1:{ses.listen_port()}"
            b = tr.add_torrent(magnet, download_dir=films, labels=["new"])
            seed_to(ses, one, tr.get_session().peer_port)
            until(lambda: all(t.percent_done == 1.0 for t in tr.get_torrents()), "downloaded",
                  poke=lambda: (seed_to(ses, one, tr.get_session().peer_port),
                                seed_to(ses, two, tr.get_session().peer_port)))
            assert {t.status for t in tr.get_torrents()} == {"seeding"}
            assert {t.name for t in tr.get_torrents() if "hd" in t.labels} == {"film-one"}
            tr.stop_torrent(a.id)
            until(lambda: tr.get_torrent(a.id).status == "stopped", "stopped")
            tr.start_torrent(a.id)
            until(lambda: tr.get_torrent(a.id).status == "seeding", "started")
            tr.change_torrent(b.id, seed_ratio_mode=1, seed_ratio_limit=0)  # reached at once
            until(lambda: tr.get_torrent(b.id).status == "stopped", "stopped at its ratio limit")
            assert tr.get_torrent(b.id).is_finished and not tr.get_torrent(a.id).is_finished
            d.stop()
            d.start()
            tr = transmission_rpc.Client(host="127.0.0.1", port=d.port, username="radarr", password=TOKEN)
            after = {t.id: t for t in tr.get_torrents()}
            assert set(after) == {a.id, b.id}
            assert (after[a.id].labels, after[b.id].labels) == (["hd"], ["new"])
            assert after[b.id].status == "stopped" and after[b.id].seed_ratio_limit == 0
            assert after[a.id].download_dir == str(Path(films).resolve())
            assert same_files(one, tmp_path / "seed", Path(films)) == []
            tr.remove_torrent(a.id, delete_data=True)
            assert [t.id for t in tr.get_torrents()] == [b.id]
            assert not (Path(films) / "film-one").exists()
            d.stop()


# -- transmission-remote -----------------------------------------------------------------------
def test_transmission_remote_against_the_daemon(tmp_path: Path) -> None:
    exe = require_program("transmission-remote")
    with seeder(tmp_path, ("cli-one", "cli-two")) as (ses, torrents):
        one, two = torrents["cli-one"], torrents["cli-two"]
        (tmp_path / "one.torrent").write_bytes(one.to_bytes())
        with running_daemon(tmp_path / "d") as d:
            def remote(*args: str) -> str:
                done = subprocess.run([exe, f"127.0.0.1:{d.port}", "-n", f"me:{TOKEN}", *args],
                                      capture_output=True, text=True, timeout=60, check=False)
                assert done.returncode == 0 and "Error" not in done.stdout, done.stdout + done.stderr
                return done.stdout

            def line(name: str) -> str:
                return next(x for x in remote("-l").splitlines() if x.endswith(name))

            cli = d.downloads / "cli"
            remote("-a", str(tmp_path / "one.torrent"), "-w", str(cli))
            remote("-a", two.magnet_uri() + f"&x.pe=127.0.0.1:{ses.listen_port()}", "-w", str(cli))
            remote("-t", "1", "-L", "hd,new")
            remote("-t", "2", "-L", "new")
            port = next(int(x.split(":")[1]) for x in remote("-si").splitlines()
                        if x.strip().startswith("Listenport:"))
            seed_to(ses, one, port)
            until(lambda: "100%" in line("cli-one") and "100%" in line("cli-two"), "downloaded",
                  poke=lambda: (seed_to(ses, one, port), seed_to(ses, two, port)))
            info = remote("-t", "1", "-i")
            assert f"Hash: {one.info_hash.hex()}" in info and "Percent Done: 100%" in info
            assert "Labels: hd, new" in info or "Labels: hd,new" in info
            remote("-t", "1", "-S")
            until(lambda: "Stopped" in line("cli-one"), "stopped")
            remote("-t", "1", "-s")
            until(lambda: "Stopped" not in line("cli-one"), "started")
            found = d.downloads / "found"  # (a copy of cli-two's data: --find looks for it there)
            shutil.copytree(cli / "cli-two", found / "cli-two")
            remote("-t", "2", "--find", str(found))  # (nothing moves: a move would find the copy in its way)
            assert f"Location: {found.resolve()}" in remote("-t", "2", "-i")
            def verified() -> bool:
                now = line("cli-two")
                return "100%" in now and ("Seeding" in now or "Idle" in now)
            until(verified, "verified where it was found")
            assert (cli / "cli-two" / "a.bin").is_file()  # (left where it was)
            remote("-t", "2", "-sr", "0")  # a share limit reached at once
            until(lambda: "Finished" in line("cli-two"), "finished at its limit")  # (isFinished)
            assert same_files(one, tmp_path / "seed", cli) == []
            d.stop()
            d.start()  # the same torrents and labels after a restart
            assert "cli-one" in remote("-l") and "cli-two" in remote("-l")
            assert "new" in remote("-t", "2", "-i").split("Labels:")[1].splitlines()[0]
            until(lambda: "Seeding" in line("cli-one") or "Idle" in line("cli-one"), "seeding again")
            remote("-t", "1", "--remove-and-delete")
            assert "cli-one" not in remote("-l")
            assert not (cli / "cli-one").exists() and (cli / "cli-two" / "a.bin").is_file()
            d.stop()


# -- renamed files and edited trackers across a restart of the daemon --------------------------------
def test_renamed_files_and_edited_trackers_survive_a_restart_of_the_daemon(tmp_path: Path) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    transmission_rpc = require_module("transmission_rpc")
    with running_daemon(tmp_path / "d") as d:
        payload = make_payload(d.downloads, (("a.bin", 100_001), ("sub/b.bin", 20_000)), name="show")
        torrent = make_torrent(payload, version="v1")
        h = torrent.info_hash.hex()
        qbt = qbittorrentapi.Client(host=d.url, username="sonarr", password=TOKEN,
                                    REQUESTS_ARGS={"timeout": 30})
        qbt.auth_log_in()
        assert qbt.torrents_add(torrent_files=torrent.to_bytes())["success_count"] == 1
        until(lambda: qbt.torrents_info(torrent_hashes=h)[0].state in ("uploading", "stalledUP"), "seeding")
        qbt.torrents_rename_file(torrent_hash=h, old_path="show/a.bin", new_path="show/Season 1/a.bin")
        tr = transmission_rpc.Client(host="127.0.0.1", port=d.port, username="sonarr", password=TOKEN)
        tid = tr.get_torrent(h).id
        tr.rename_torrent_path(tid, "show/sub", "extras")
        qbt.torrents_add_trackers(torrent_hash=h, urls=["udp://127.0.0.1:9/announce"])
        tr.change_torrent(tid, tracker_add=["http://127.0.0.1:9/announce"])
        d.stop()
        d.start()
        qbt = qbittorrentapi.Client(host=d.url, username="sonarr", password=TOKEN,
                                    REQUESTS_ARGS={"timeout": 30})
        qbt.auth_log_in()
        until(lambda: qbt.torrents_info(torrent_hashes=h)[0].state in ("uploading", "stalledUP"),
              "seeding again")
        assert [f.name for f in qbt.torrents_files(torrent_hash=h)] == ["show/Season 1/a.bin",
                                                                       "show/extras/b.bin"]
        assert (d.downloads / "show" / "Season 1" / "a.bin").stat().st_size == 100_001
        tr = transmission_rpc.Client(host="127.0.0.1", port=d.port, username="sonarr", password=TOKEN)
        assert tr.get_torrent(h).tracker_list == ["udp://127.0.0.1:9/announce", "http://127.0.0.1:9/announce"]
        d.stop()


# -- a client stops the daemon -------------------------------------------------------------------
def test_a_client_stops_the_daemon_as_it_stops_qbittorrent_or_transmission(tmp_path: Path) -> None:
    """qBittorrent's ``app/shutdown`` (qbittorrent-api's ``app_shutdown``) and Transmission's
    ``session-close`` (``transmission-remote --exit``) stop the daemon as its SIGTERM does: the
    answer given, every job saved, exit status 0 (they were refused: not supported)."""
    qbittorrentapi = require_module("qbittorrentapi")
    exe = require_program("transmission-remote")
    payload = make_payload(tmp_path / "d" / "downloads", (("a.bin", 100_001),), name="kept")
    torrent = make_torrent(payload, version="v1")
    h = torrent.info_hash.hex()
    with running_daemon(tmp_path / "d") as d:
        assert d.proc is not None
        qbt = qbittorrentapi.Client(host=d.url, username="admin", password=TOKEN,
                                    REQUESTS_ARGS={"timeout": 30})
        qbt.auth_log_in()
        assert qbt.torrents_add(torrent_files=torrent.to_bytes(), is_paused=True)["success_count"] == 1
        qbt.app_shutdown()
        assert d.proc.wait(timeout=60) == 0
        log = (d.root / "daemon.log").read_text()
        assert "qBittorrent's app/shutdown asked for the stop" in log and "stopped" in log, log
        d.start()
        qbt = qbittorrentapi.Client(host=d.url, username="admin", password=TOKEN,
                                    REQUESTS_ARGS={"timeout": 30})
        assert [t.hash for t in qbt.torrents_info()] == [h]  # (saved at the stop)
        done = subprocess.run([exe, f"127.0.0.1:{d.port}", "-n", f"admin:{TOKEN}", "--exit"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0 and "Error" not in done.stdout, done.stdout + done.stderr
        assert d.proc.wait(timeout=60) == 0
        assert "Transmission's session-close asked for the stop" in (d.root / "daemon.log").read_text()
