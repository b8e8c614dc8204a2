"""Transmission's RPC on the daemon's API, driven by the real ``transmission-rpc`` library, by
``transmission-remote`` and by plain HTTP (auth, the session-id hand-shake), without a swarm."""

from __future__ import annotations

import base64
import socket
import subprocess
from pathlib import Path

import anyio
import httpx
import pytest

from tests.conftest import require_module, require_program
from tests.integration.api_helpers import TOKEN, running_api
from tests.unit.torrent_factory import make_torrent, payload

pytestmark = pytest.mark.anyio

MAGNET = "magnet:?xt=urn:btih:" + "e" * 40 + "&dn=from-magnet"


def torrent_bytes(name: str = "tr") -> tuple[bytes, str]:
    t = make_torrent([(("a.bin",), payload(40000, 5)), (("b.bin",), payload(30000, 6))], 16384, name=name)
    return t.to_bytes(), t.info_hash.hex()


async def test_auth_and_the_session_id_handshake(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url) as c:
            call = {"method": "session-get", "arguments": {"fields": ["version"]}, "tag": 7}
            r = await c.post("/transmission/rpc", json=call)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
            r = await c.post("/transmission/rpc", json=call, auth=("u", "wrong"))
            assert r.status_code == 401
            r = await c.post("/transmission/rpc", json=call, auth=("u", TOKEN))
            assert r.status_code == 409
            sid = r.headers["x-transmission-session-id"]
            r = await c.post("/transmission/rpc", json=call, auth=("u", TOKEN),
                             headers={"X-Transmission-Session-Id": "forged"})
            assert r.status_code == 409
            r = await c.post("/transmission/rpc", json=call, auth=("anyone", TOKEN),
                             headers={"X-Transmission-Session-Id": sid})
            assert r.status_code == 200
            version = r.json()["arguments"]["version"]
            assert r.json() == {"result": "success", "arguments": {"version": version}, "tag": 7}
            r = await c.post("/transmission/rpc", json={"method": "torrent-add-trackers"}, auth=("u", TOKEN),
                             headers={"X-Transmission-Session-Id": sid})
            assert r.json()["result"].startswith("method not supported")  # never a fake success
            for bad in ({"method": "torrent-set", "arguments": {"ids": "all", "labels": 5}},
                        {"method": "session-set",
                         "arguments": {"seedRatioLimit": "x", "seedRatioLimited": True}},
                        {"method": "torrent-get", "arguments": {"fields": "id"}}):
                r = await c.post("/transmission/rpc", json=bad, auth=("u", TOKEN),
                                 headers={"X-Transmission-Session-Id": sid})
                assert r.status_code == 200 and r.json()["result"] != "success", bad
            r = await c.post("/transmission/rpc", json={"method": "no-such"},
                             headers={"X-Transmission-Session-Id": sid, "Authorization": f"Bearer {TOKEN}"})
            assert r.json()["result"].startswith("method name not recognized")
    async with running_api(tmp_path / "named", compat_username="sonarr") as api:
        async with httpx.AsyncClient(base_url=api.url) as c:
            r = await c.post("/transmission/rpc", json={"method": "session-get"}, auth=("other", TOKEN))
            assert r.status_code == 401
            r = await c.post("/transmission/rpc", json={"method": "session-get"}, auth=("sonarr", TOKEN))
            assert r.status_code == 409


def drive(port: int, data: bytes, info_hash: str, root: Path) -> None:
    """What a tool does through transmission-rpc (in a worker thread)."""
    transmission_rpc = require_module("transmission_rpc")
    client = transmission_rpc.Client(host="127.0.0.1", port=port, username="me", password=TOKEN, timeout=30)
    session = client.get_session()
    assert session.download_dir == str(root.resolve()) and session.rpc_version == 17
    added = client.add_torrent(data, download_dir=str(root / "tv"), paused=True, labels=["tv", "hd"],
                               files_unwanted=[1])
    assert added.hash_string == info_hash
    dup = client.add_torrent(data)
    assert dup.id == added.id  # torrent-duplicate
    # (another folder or file selection asked: still torrent-duplicate, the torrent as it was, as
    # transmission-daemon answers any add of a torrent it has; an error before, which an *arr app
    # takes for a failed grab)
    dup = client.add_torrent(data, download_dir=str(root / "movies"), files_unwanted=[0], labels=["m"])
    assert dup.id == added.id and dup.hash_string == info_hash
    magnet = client.add_torrent(MAGNET, paused=True)
    with pytest.raises(transmission_rpc.TransmissionError):
        client.add_torrent("/etc/passwd")  # a path on the daemon's machine: refused
    with pytest.raises(transmission_rpc.TransmissionError):
        client.add_torrent(data.replace(b"tr", b"tx"), download_dir="/etc")
    t = client.get_torrent(added.id)
    assert (t.name, t.status, t.labels, t.download_dir) == ("tr", "stopped", ["hd", "tv"],
                                                             str((root / "tv").resolve()))
    assert t.total_size == 70000 and t.size_when_done == 40000 and t.piece_count == 5
    assert t.fields["activityDate"] == 0  # (nothing sent or received yet: never, not its last edit)
    assert [f.selected for f in t.get_files()] == [True, False]
    assert {x.name for x in client.get_torrents()} == {"tr", "from-magnet"}
    client.change_torrent(added.id, seed_ratio_mode=1, seed_ratio_limit=1.5, labels=["x"],
                          download_limit=100, download_limited=True, files_wanted=[1], priority_high=[0])
    t = client.get_torrent(added.id)
    assert (t.seed_ratio_mode.value, t.seed_ratio_limit, t.labels, t.download_limit) == (1, 1.5, ["x"], 100)
    assert [(f.selected, f.priority.value) for f in t.get_files()] == [(True, 1), (True, 0)]
    with pytest.raises(transmission_rpc.TransmissionError):
        client.change_torrent(added.id, bandwidth_priority=1)  # not supported: an error, not success
    # the idle seeding limit (minutes): the session's, a torrent's own, none
    s = client.get_session()
    assert (s.idle_seeding_limit_enabled, t.seed_idle_mode.value) == (False, 0)
    client.set_session(idle_seeding_limit=45, idle_seeding_limit_enabled=True)
    s = client.get_session()
    assert (s.idle_seeding_limit, s.idle_seeding_limit_enabled) == (45, True)
    assert client.get_torrent(added.id).seed_idle_limit == 45  # (the session's, in global mode)
    client.change_torrent(added.id, seed_idle_mode=1, seed_idle_limit=10)
    t = client.get_torrent(added.id)
    assert (t.seed_idle_mode.value, t.seed_idle_limit) == (1, 10)
    client.change_torrent(added.id, seed_idle_mode=2)
    assert client.get_torrent(added.id).seed_idle_mode.value == 2
    with pytest.raises(transmission_rpc.TransmissionError):
        client.change_torrent(added.id, seed_idle_mode=1, seed_idle_limit=-5)
    client.set_session(idle_seeding_limit_enabled=False)
    assert client.get_session().idle_seeding_limit_enabled is False
    client.move_torrent_data(added.id, str(root / "moved"))
    assert client.get_torrent(added.id).download_dir == str((root / "moved").resolve())
    with pytest.raises(transmission_rpc.TransmissionError):
        client.move_torrent_data(added.id, "/tmp")
    client.queue_bottom(added.id)  # queueing is off: the order is kept all the same (as Transmission)
    assert client.get_torrent(added.id).queue_position == 1
    assert client.get_torrent(magnet.id).queue_position == 0
    client.queue_top(added.id)
    client.set_session(download_queue_enabled=True, download_queue_size=1, speed_limit_down=500,
                       speed_limit_down_enabled=True)
    s = client.get_session()
    assert (s.download_queue_enabled, s.download_queue_size, s.speed_limit_down) == (True, 1, 500)
    assert (s.queue_stalled_enabled, s.queue_stalled_minutes) == (False, 1)  # (the settings' defaults)
    client.set_session(queue_stalled_enabled=True, queue_stalled_minutes=30)  # (stalled: not counted)
    s = client.get_session()
    assert (s.queue_stalled_enabled, s.queue_stalled_minutes) == (True, 30)
    with pytest.raises(transmission_rpc.TransmissionError, match="queue-stalled-minutes"):
        client.set_session(queue_stalled_minutes=0)
    with socket.socket() as taken:  # (the port is a run-time setting: one in use is refused)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(transmission_rpc.TransmissionError):
            client.set_session(peer_port=taken.getsockname()[1])
    client.queue_bottom(added.id)
    assert client.get_torrent(added.id).queue_position == 1
    client.start_torrent(added.id)
    client.stop_torrent(added.id)
    assert client.get_torrent(added.id).status == "stopped"
    stats = client.session_stats()
    assert stats.torrent_count == 2
    assert client.free_space(str(root)) > 0
    client.remove_torrent(magnet.id, delete_data=True)
    assert [x.id for x in client.get_torrents()] == [added.id]
    recent = client.get_recently_active_torrents()
    assert recent[1] == [magnet.id]  # the removed ones, as Transmission says


async def test_an_argument_of_the_wrong_type_is_refused_naming_it(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            r = await c.post("/transmission/rpc", json={"method": "session-get"})
            headers = {"X-Transmission-Session-Id": r.headers["x-transmission-session-id"]}
            for call, name in (
                    ({"method": "session-set",
                      "arguments": {"seedRatioLimited": True, "seedRatioLimit": [1]}}, "seedRatioLimit"),
                    ({"method": "torrent-set", "arguments": {"seedRatioMode": 1, "seedRatioLimit": {}}},
                     "seedRatioLimit"),
                    ({"method": "torrent-add", "arguments": {"filename": MAGNET, "download-dir": 5}},
                     "download-dir")):
                r = await c.post("/transmission/rpc", json=call, headers=headers)
                result = r.json()["result"]
                assert result != "success" and name in result, (call, result)
            listed = {"method": "torrent-get", "arguments": {"fields": ["id"]}}
            r = await c.post("/transmission/rpc", json=listed, headers=headers)
            assert r.json()["arguments"]["torrents"] == []  # (the add with a bad folder added nothing)
            # a value the service refuses, named as the request named it (it was "save_path", "tags")
            outside = "'/etc' is outside the download root"
            for method, arguments, said in (
                    ("torrent-add", {"download-dir": "/etc"}, f"download-dir: {outside}"),
                    ("torrent-add", {"labels": ["a,b"]}, "labels: 'a,b' is not a valid tag"),
                    ("torrent-set", {"labels": ["a,b"]}, "labels: 'a,b' is not a valid tag"),
                    ("torrent-set-location", {"location": "/etc"}, f"location: {outside}")):
                if method != "torrent-add":  # (of a torrent there)
                    call = {"method": "torrent-add", "arguments": {"filename": MAGNET, "paused": True}}
                    await c.post("/transmission/rpc", json=call, headers=headers)
                    arguments = {"ids": [MAGNET[20:60]], **arguments}
                else:
                    arguments = {"filename": MAGNET, **arguments}
                call = {"method": method, "arguments": arguments}
                result = (await c.post("/transmission/rpc", json=call, headers=headers)).json()["result"]
                assert result.startswith(said), (method, result)


async def test_transmission_rpc_client_drives_the_daemon(tmp_path: Path) -> None:
    data, info_hash = torrent_bytes()
    async with running_api(tmp_path) as api:
        await anyio.to_thread.run_sync(drive, api.server.bound_port, data, info_hash, api.download_root)
        assert api.service.get_settings().download_limit == 500_000


def remote(port: int, *args: str) -> str:
    exe = require_program("transmission-remote")
    done = subprocess.run([exe, f"127.0.0.1:{port}", "-n", f"user:{TOKEN}", *args], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_start_added_torrents_off_adds_torrents_stopped_unless_the_add_says(tmp_path: Path) -> None:
    transmission_rpc = require_module("transmission_rpc")

    def drive(port: int) -> tuple[bool, bool, str, str]:
        client = transmission_rpc.Client(host="127.0.0.1", port=port, username="admin", password=TOKEN)
        before = client.get_session().start_added_torrents
        client.set_session(start_added_torrents=False)  # (an add that says nothing: added stopped)
        idle = client.add_torrent(f"magnet:?xt=urn:btih:{'e' * 40}")
        busy = client.add_torrent(f"magnet:?xt=urn:btih:{'f' * 40}", paused=False)
        with pytest.raises(transmission_rpc.TransmissionError, match="start-added-torrents"):
            client.set_session(start_added_torrents="no")
        return (before, client.get_session().start_added_torrents, client.get_torrent(idle.id).status,
                client.get_torrent(busy.id).status)

    async with running_api(tmp_path) as api:
        before, after, idle, busy = await anyio.to_thread.run_sync(drive, api.server.bound_port)
        assert (before, after, idle) == (True, False, "stopped") and busy != "stopped"
        assert api.service.get_settings().add_paused


async def test_transmission_remote_lists_shows_and_changes(tmp_path: Path) -> None:
    data, info_hash = torrent_bytes("remote")
    (tmp_path / "x.torrent").write_bytes(data)
    async with running_api(tmp_path) as api:
        port = api.server.bound_port
        job, _ = await api.service.add(data, paused=True)
        run = anyio.to_thread.run_sync
        listing: str = await run(remote, port, "-l")
        assert "remote" in listing and "Stopped" in listing and "Sum:" in listing
        info: str = await run(remote, port, "-t", str(job.number), "-i")
        assert f"Hash: {info_hash}" in info and "Name: remote" in info and "Piece Count: 5" in info
        files: str = await run(remote, port, "-t", str(job.number), "-f")
        assert "remote/a.bin" in files and "remote/b.bin" in files
        peers: str = await run(remote, port, "-t", str(job.number), "-pi")
        assert peers.split() == ["Address", "Flags", "Done", "Down", "Up", "Client"]  # none yet
        pieces: str = await run(remote, port, "-t", str(job.number), "-ic")
        assert pieces.replace(" ", "").strip() == "00000"
        trackers: str = await run(remote, port, "-t", str(job.number), "-it")
        assert trackers.strip() == ""  # the torrent has none
        await run(remote, port, "-t", str(job.number), "-G", "1")  # file 1: do not download
        assert [f.selected for f in api.service.get(job.id).files] == [True, False]
        await run(remote, port, "-t", str(job.number), "-s")
        assert api.service.get(job.id).options.paused is False
        session: str = await run(remote, port, "-si")
        assert "RPC version: 17" in session
        await run(remote, port, "-t", str(job.number), "--remove-and-delete")
        assert api.service.get(job.id).state.value == "cancelled"




async def test_torrent_file_is_the_kept_copy_as_flexget_reads_it(tmp_path: Path) -> None:
    """``torrentFile`` is the absolute path of the .torrent the daemon keeps (Transmission's own
    copy in its state folder), which FlexGet turns into a file URI; a magnet's is where its
    .torrent goes once the metadata comes (Transmission names it before it exists too).
    ``availability`` (4.1's, RPC 18) is answered as the other 4.1 fields are."""
    data, info_hash = torrent_bytes("kept")
    magnet = "magnet:?xt=urn:btih:" + "c" * 40 + "&dn=m"
    async with running_api(tmp_path) as api:
        c = api.client
        sid = (await c.post("/transmission/rpc", json={"method": "session-get"})).headers[
            "x-transmission-session-id"]
        head = {"X-Transmission-Session-Id": sid}
        for add in ({"metainfo": base64.b64encode(data).decode(), "paused": True},
                    {"filename": magnet, "paused": True}):
            rpc = {"method": "torrent-add", "arguments": add}
            r = await c.post("/transmission/rpc", headers=head, json=rpc)
            assert r.json()["result"] == "success", r.text
        fields = ["hashString", "torrentFile", "availability", "pieces", "magnetLink"]
        rpc = {"method": "torrent-get", "arguments": {"fields": fields}}
        made: list[str] = []  # (each torrent's piece states made once for both fields, not three times)
        real_states = api.service.piece_states

        def piece_states(job_id: str) -> list[int] | None:
            made.append(job_id)
            return real_states(job_id)

        api.service.piece_states = piece_states  # type: ignore[method-assign]
        r = await c.post("/transmission/rpc", headers=head, json=rpc)
        del api.service.piece_states
        assert sorted(made) == sorted({j.id for j in api.service.list()}), made
        rows = {t["hashString"]: t for t in r.json()["arguments"]["torrents"]}
        kept = Path(rows[info_hash]["torrentFile"])
        assert kept.is_absolute() and kept.read_bytes() == data
        assert kept.as_uri().startswith("file:///")  # what FlexGet's from_transmission does with it
        later = Path(rows["c" * 40]["torrentFile"])
        assert later.is_absolute() and later.name == "c" * 40 + ".torrent" and later.parent == kept.parent
        # (4.1's availability, answered here as the other 4.1 fields are: paused, no peer has a
        # piece; a magnet without its metadata has no pieces yet)
        assert rows[info_hash]["availability"] == [0] * len(rows[info_hash]["availability"]) != []
        assert rows["c" * 40]["availability"] == []
        assert rows[info_hash]["magnetLink"] == f"magnet:?xt=urn:btih:{info_hash}&dn=kept"
        assert rows["c" * 40]["magnetLink"] == magnet
        # the copy goes with its torrent, and a torrent added again has it written again
        remove = {"method": "torrent-remove", "arguments": {"ids": [info_hash]}}
        assert (await c.post("/transmission/rpc", headers=head, json=remove)).json()["result"] == "success"
        assert not kept.exists()
        add = {"metainfo": base64.b64encode(data).decode(), "paused": True}
        r = await c.post("/transmission/rpc", headers=head, json={"method": "torrent-add", "arguments": add})
        assert r.json()["result"] == "success"
        r = await c.post("/transmission/rpc", headers=head, json=rpc)
        again = {t["hashString"]: t for t in r.json()["arguments"]["torrents"]}[info_hash]
        assert Path(again["torrentFile"]) == kept and kept.read_bytes() == data


async def _many_added(c: httpx.AsyncClient, count: int, *, paused: bool) -> dict[str, str]:
    """``count`` one-file torrents added through ``torrent-add`` (``paused`` or not); the
    session header the calls that follow send."""
    sid = (await c.post("/transmission/rpc", json={"method": "session-get"})).headers[
        "x-transmission-session-id"]
    head = {"X-Transmission-Session-Id": sid}
    for i in range(count):
        torrent = make_torrent([((f"m{i}.bin",), payload(20_000, i))], 16384, single=True, name=f"m{i}.bin")
        add = {"metainfo": base64.b64encode(torrent.to_bytes()).decode(), "paused": paused}
        r = await c.post("/transmission/rpc", headers=head, json={"method": "torrent-add", "arguments": add})
        assert r.json()["result"] == "success", r.text
    return head


@pytest.mark.parametrize("change, field, value", [
    ({"uploadLimit": 50, "uploadLimited": True}, "uploadLimit", 50),
    ({"seedRatioLimit": 2.5, "seedRatioMode": 1}, "seedRatioLimit", 2.5),
    ({"labels": ["a", "b"]}, "labels", ["a", "b"]),
    ({"peer-limit": 7}, "peer-limit", 7),
])
async def test_a_set_of_many_torrents_writes_their_records_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, object], field: str,
        value: object) -> None:
    """``torrent-set`` of every torrent (no ``ids``) changes them many at a time: their records
    are written a few dozen a transaction, not one a torrent after the other."""
    from tests.spies import records_written

    async with running_api(tmp_path) as api:
        c = api.client
        head = await _many_added(c, 16, paused=True)
        groups = records_written(monkeypatch)
        r = await c.post("/transmission/rpc", headers=head,
                         json={"method": "torrent-set", "arguments": change})
        assert r.json()["result"] == "success", r.text
        assert sum(groups) >= 16 and len(groups) < 8, groups
        r = await c.post("/transmission/rpc", headers=head,
                         json={"method": "torrent-get", "arguments": {"fields": [field]}})
        assert [t[field] for t in r.json()["arguments"]["torrents"]] == [value] * 16


@pytest.mark.parametrize("method", ["torrent-stop", "torrent-start", "torrent-verify", "torrent-remove"])
async def test_a_method_on_many_torrents_makes_one_round_of_the_queue(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """A method on every torrent (no ``ids``) changes them together (``JobService.each``): the
    queue's rounds each change asks for are one, after all of them."""
    from tests.spies import queue_rounds

    async with running_api(tmp_path) as api:
        c = api.client
        head = await _many_added(c, 12, paused=method == "torrent-start")
        rounds = queue_rounds(monkeypatch)
        r = await c.post("/transmission/rpc", headers=head, json={"method": method, "arguments": {}})
        assert r.json()["result"] == "success", r.text
        assert 1 <= len(rounds) <= 2  # (the one after them; the service's tick may fall in between)
        r = await c.post("/transmission/rpc", headers=head,
                         json={"method": "torrent-get", "arguments": {"fields": ["status"]}})
        statuses = {t["status"] for t in r.json()["arguments"]["torrents"]}
        if method == "torrent-remove":
            assert statuses == set()
        elif method == "torrent-stop":
            assert statuses == {0}
        else:
            assert 0 not in statuses
