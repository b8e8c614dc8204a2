"""The compatibility layers' pure translations: qBittorrent state names and filters, share-limit
units, Transmission status numbers, priorities and the pieces bitfield, and form parsing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from torrent_engine.api.compat.forms import FormError, parse_form
from torrent_engine.api.compat.qbittorrent_records import (
    QbtError,
    enum_value,
    file_priority,
    parse_bool,
    parse_double,
    parse_int,
    peer_record,
    qt_json,
    ratio_limit_in,
    seeding_time_limit_in,
    seeding_time_limit_out,
    share_limit_in,
    share_limit_out,
    state_name,
    status_filter,
    torrent_record,
    tracker_rows,
    tracker_status,
)
from torrent_engine.api.compat.transmission import (
    bitfield_b64,
    finished,
    flag_str,
    peers_from,
    primary_mime_type,
    status,
    their_host,
    their_priority,
    their_scrape,
)
from torrent_engine.jobs import Job, JobFeatures, JobOptions, JobState, ServiceSettings
from torrent_engine.jobs.model import JobFile, JobPeer, JobTracker


def job(state: JobState, *, progress: float = 0.5, down: float = 0.0, up: float = 0.0,
        forced: bool = False, **features: object) -> Job:
    options = JobOptions(save_path="/dl", files=None, sequential=False, paused=False, peers=(), client=None,
                         download_limit=0, upload_limit=0)
    return Job(id="0" * 16, info_hash="ab" * 20, name="n", source="torrent", options=options, state=state,
               created_at=1.0, updated_at=2.0, completed_at=None, progress=progress, total_size=100,
               done_size=int(progress * 100), downloaded=0, uploaded=0, download_rate=down, upload_rate=up,
               peers=0, seeds=0, eta=None, files=(), peer_list=(), trackers=(), error=None, result=None,
               features=JobFeatures(force_start=forced, **features))  # type: ignore[arg-type]


@pytest.mark.parametrize(("state", "progress", "down", "up", "forced", "name"), [
    (JobState.DOWNLOADING, 0.5, 10.0, 0.0, False, "downloading"),
    (JobState.DOWNLOADING, 0.5, 0.0, 0.0, False, "stalledDL"),
    (JobState.DOWNLOADING, 0.5, 0.0, 0.0, True, "forcedDL"),
    (JobState.FETCHING_METADATA, 0.0, 0.0, 0.0, False, "metaDL"),
    (JobState.SEEDING, 1.0, 0.0, 5.0, False, "uploading"),
    (JobState.SEEDING, 1.0, 0.0, 0.0, False, "stalledUP"),
    (JobState.SEEDING, 1.0, 0.0, 0.0, True, "forcedUP"),
    (JobState.PAUSED, 0.5, 0.0, 0.0, False, "stoppedDL"),
    (JobState.PAUSED, 1.0, 0.0, 0.0, False, "stoppedUP"),
    (JobState.QUEUED, 0.5, 0.0, 0.0, False, "queuedDL"),
    (JobState.QUEUED, 1.0, 0.0, 0.0, False, "queuedUP"),
    (JobState.CHECKING, 0.2, 0.0, 0.0, False, "checkingDL"),
    (JobState.FAILED, 0.2, 0.0, 0.0, False, "error"),
])
def test_qbittorrent_state_names(state: JobState, progress: float, down: float, up: float, forced: bool,
                                 name: str) -> None:
    assert state_name(job(state, progress=progress, down=down, up=up, forced=forced)) == name


def test_qbittorrent_filters() -> None:
    paused_up = job(JobState.PAUSED, progress=1.0)
    stalled = job(JobState.DOWNLOADING)
    assert status_filter("paused")(paused_up) and status_filter("completed")(paused_up)
    assert not status_filter("seeding")(paused_up) and not status_filter("downloading")(paused_up)
    assert all(status_filter(name)(stalled) for name in ("downloading", "stalled", "inactive"))
    assert status_filter("resumed")(stalled) and not status_filter("active")(stalled)
    with pytest.raises(QbtError):
        status_filter("bogus")(stalled)
    assert status_filter("active")(job(JobState.DOWNLOADING, up=2.0))  # (stalledDL, uploading)


def test_a_filter_passes_no_job_outside_the_states_it_names() -> None:
    """``filter_states``: the states a filter's jobs may be in (the records of the others are
    passed over without a view): every job a filter passes, whatever its progress, rates,
    force-start, a move or missing files, is in one of them."""
    import itertools

    from torrent_engine.api.compat.qbittorrent_records import _FILTERS, filter_states

    jobs = [dataclasses.replace(job(state, progress=progress, down=down, up=up, forced=forced),
                                moving=moving, missing_files=missing)
            for state, progress, down, up, forced, moving, missing in itertools.product(
                JobState, (0.0, 0.5, 1.0), (0.0, 10.0), (0.0, 5.0), (False, True), (False, True),
                ((), ("x",)))]
    narrowed = 0
    for name in _FILTERS:
        states = filter_states(name)
        if states is None:
            continue
        narrowed += 1
        passed = [j for j in jobs if status_filter(name)(j)]
        assert passed, name
        assert {j.state for j in passed} <= states, (name, {j.state for j in passed} - states)
    assert narrowed == 9  # (all but all, completed, resumed, running, active, inactive, moving)


def test_share_limit_units() -> None:
    assert share_limit_out(None) == -2 and share_limit_out(-1.0) == -1
    assert share_limit_out(600.0, 60.0) == 10
    assert share_limit_in("-2", "x", 100) is None and share_limit_in("-1", "x", 100) == -1.0
    assert share_limit_in("10", "x", 100, 60.0) == 600.0
    # (at most qBittorrent's ceiling for a torrent's limit, as it takes one: setShareLimits
    # showed 1e300 back, and as many minutes in a 301-digit integer)
    assert share_limit_in("1e300", "x", 100, 60.0) == share_limit_in("inf", "x", 100, 60.0) == 6000.0
    for bad in ("-3", "lots", "nan"):
        with pytest.raises(QbtError):
            share_limit_in(bad, "x", 100)
    record = torrent_record(job(JobState.SEEDING, progress=1.0, ratio_limit=2.0, seeding_time_limit=120.0),
                            ServiceSettings(), None)
    assert (record["ratio_limit"], record["seeding_time_limit"], record["max_seeding_time"]) == (2.0, 2, 2)
    # its last activity: when it last sent or received a byte, else when it was added (as qBittorrent)
    assert record["last_activity"] == 1  # (created at 1.0, updated at 2.0: never active)
    active = dataclasses.replace(job(JobState.SEEDING, progress=1.0), active_at=1_700_000_000.5)
    assert torrent_record(active, ServiceSettings(), None)["last_activity"] == 1_700_000_000


def test_priorities() -> None:
    assert [file_priority(p) for p in range(8)] == [0, 1, 1, 1, 1, 1, 6, 7]
    assert [their_priority(p) for p in (1, 4, 7)] == [-1, 0, 1]


def test_transmission_status_and_finished() -> None:
    assert status(job(JobState.DOWNLOADING)) == 4 and status(job(JobState.SEEDING, progress=1.0)) == 6
    assert status(job(JobState.QUEUED)) == 3 and status(job(JobState.QUEUED, progress=1.0)) == 5
    assert status(job(JobState.CHECKING)) == 2 and status(job(JobState.PAUSED)) == 0
    stopped = job(JobState.PAUSED, progress=1.0, ratio_limit=0.0)
    assert finished(stopped, ServiceSettings())
    assert not finished(dataclasses.replace(stopped, features=JobFeatures()), ServiceSettings())
    idle = dataclasses.replace(stopped, features=JobFeatures(), idle_seeding_time=600.0)  # (stopped idle)
    assert finished(idle, ServiceSettings(idle_seeding_limit=600.0))
    assert not finished(idle, ServiceSettings(idle_seeding_limit=601.0))
    own = JobFeatures(idle_seeding_limit=60.0)
    assert finished(dataclasses.replace(idle, features=own), ServiceSettings())
    assert bitfield_b64([2, 0, 1, 2, 2, 2, 2, 2, 2]) == "n4A="  # 1001 1111 1000 0000


def test_forms() -> None:
    boundary = "xyz"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"urls\"\r\n\r\nmagnet:?a\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"torrents\"; filename=\"a.torrent\"\r\n"
            f"Content-Type: application/x-bittorrent\r\n\r\nd4:infoe\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"torrents\"; filename=\"b.torrent\"\r\n"
            f"\r\nd1:xe\r\n--{boundary}--\r\n").encode()
    form = parse_form(f"multipart/form-data; boundary={boundary}", body, "hash=1")
    assert form.fields == {"hash": "1", "urls": "magnet:?a"}
    assert form.files == [("torrents", b"d4:infoe"), ("torrents", b"d1:xe")]
    urlencoded = parse_form("application/x-www-form-urlencoded", b"a=1&b=x%20y", "")
    assert urlencoded.fields == {"a": "1", "b": "x y"}
    with pytest.raises(FormError):
        parse_form("application/json", b"{}", "")


def test_fields_are_read_as_qbittorrent_reads_them() -> None:
    assert [parse_bool(v) for v in ("True", "false", "1", "yes", "", None)] == [True, False] + [None] * 4
    assert [parse_int(v) for v in (" 12 ", "-2", "+3", "1.5", "1e3", "x", "1_000", None)] == [
        12, -2, 3, None, None, None, None, None]
    assert [parse_double(v) for v in ("1.5", "2", "nan", "inf", "lots", None)] == [
        1.5, 2.0, None, None, None, None]
    assert enum_value("undefined", {"original": "original"}, "original") == "original"
    assert [ratio_limit_in(v) for v in (None, -2.0, -1.0, -5.0, 2.5, 1e9)] == [
        None, None, -1, -1, 2.5, 9999.0]
    assert [seeding_time_limit_in(v) for v in (None, -2, -1, 90, 10**9)] == [
        None, None, -1, 5400.0, 525600 * 60.0]


def test_primary_mime_type_is_the_type_of_the_files_holding_the_most_bytes() -> None:
    """Transmission's ``primary-mime-type`` (its web UI's icon of a torrent): the bytes of each
    type summed, by the files' extensions, in any case; unknown or none: octets."""
    def files(*named: tuple[str, int]) -> list[JobFile]:
        return [JobFile(i, path, size, 0.0, 4, True) for i, (path, size) in enumerate(named)]

    season = files(("s/e1.MP4", 600), ("s/e2.mp4", 600), ("s/notes.txt", 1000), ("s/cover.zzz", 50))
    assert primary_mime_type(season) == "video/mp4"
    assert primary_mime_type(files(("a.txt", 10), ("b.txt", 10), ("c.mp4", 15))) == "text/plain"
    assert primary_mime_type(files(("README", 10), ("x.zzz", 5))) == "application/octet-stream"
    # (as a stream of the file is served: types some systems' tables lack, known all the same)
    assert primary_mime_type(files(("e1.MKV", 10), ("e1.srt", 1))) == "video/x-matroska"
    assert primary_mime_type([]) == "application/octet-stream"


def test_numbers_are_written_as_qt_writes_them() -> None:
    """An integer qBittorrent sends (``seeding_time_limit``) is never ``1440.0`` here; a double
    holding a whole number is written without a fraction, as Qt writes it."""
    assert [type(seeding_time_limit_out(v)) for v in (None, -1.0, 86400.0)] == [int, int, int]
    assert seeding_time_limit_out(86400.0) == 1440
    out = qt_json({"ratio": 0.0, "max_ratio": -1.0, "progress": [0.5, 1.0], "eta": 5, "ok": True})
    assert out == {"ratio": 0, "max_ratio": -1, "progress": [0.5, 1], "eta": 5, "ok": True}
    assert [type(out["ratio"]), type(out["progress"][0]), type(out["ok"])] == [int, float, bool]


def test_a_peers_interest_choking_and_encryption_in_both_dialects() -> None:
    """(qBittorrent's flags and Transmission's flagStr said only where a peer came from, and
    Transmission's isEncrypted was false whatever the link: a GUI's peer list told nothing of who
    downloads from whom.) Each dialect's letters in its own order."""
    def peer(*wire: str, transport: str = "tcp", sources: tuple[str, ...] = ()) -> JobPeer:
        return JobPeer("10.0.0.1:6881", "lt", 0.0, 0.0, 0.5, transport, sources, wire=frozenset(wire))

    downloading = peer("am_interested", "am_choking", "mse", "rc4", transport="utp")
    assert peer_record(downloading)["flags"] == "D E P"
    assert peer_record(downloading)["flags_desc"] == \
        "D = Interested (local) and unchoked (peer)\nE = Encrypted traffic\nP = μTP"
    assert flag_str(downloading) == "TDE"
    waiting = peer("am_interested", "peer_choking", "peer_interested", "optimistic", "snubbed", "mse",
                   sources=("incoming", "pex"))
    assert peer_record(waiting)["flags"] == "d U O S I X e" and flag_str(waiting) == "OdUXI"
    idle = peer()  # (unchoked both ways, neither interested)
    assert peer_record(idle)["flags"] == "K ?" and flag_str(idle) == "K?"
    fresh = JobPeer("10.0.0.1:6881", "lt", 0.0, 0.0, 0.0)  # (a new connection: each side chokes)
    assert peer_record(fresh)["flags"] == "" and flag_str(fresh) == ""


def test_where_peers_came_from_in_both_dialects() -> None:
    lsd = JobPeer("10.0.0.1:6881", "lt", 0.0, 0.0, 1.0, "utp", ("tracker", "lsd"))
    incoming = JobPeer("[fd00::2]:51413", "qB", 0.0, 0.0, 0.5, "tcp", ("incoming",))
    dht_pex = JobPeer("10.0.0.3:1", "", 0.0, 0.0, 0.0, "tcp", ("dht", "pex"))
    given = JobPeer("10.0.0.4:1", "", 0.0, 0.0, 0.0, "tcp", ("user",))
    record = peer_record(lsd)
    assert (record["ip"], record["port"], record["connection"]) == ("10.0.0.1", 6881, "μTP")
    assert record["flags"] == "L P" and record["flags_desc"] == "L = Peer from LSD\nP = μTP"
    assert (record["contribution"], record["host_name"]) == (0, "")  # (2.16, 2.15.1)
    assert peer_record(incoming)["flags"] == "I" and peer_record(incoming)["ip"] == "fd00::2"
    assert peer_record(dht_pex)["flags"] == "H X" and peer_record(given)["flags"] == ""
    assert [flag_str(p) for p in (lsd, incoming, dht_pex, given)] == ["T", "I", "HX", ""]
    # 2.15.1's peer_id_client, as qBittorrent's: its first 8 bytes printable, else Unknown; "" none
    ids = {b"-qB5100-" + b"\xff" * 12: "-qB5100-", b"M7-4-0--" + bytes(12): "M7-4-0--",
           b"\x00\x01" + b"A" * 18: "Unknown", b"-lt20B0\n" + b"x" * 12: "Unknown", bytes(20): ""}
    assert {pid: peer_record(dataclasses.replace(lsd, peer_id=pid.hex()))["peer_id_client"]
            for pid in ids} == ids
    assert peer_record(given)["peer_id_client"] == ""  # (a peer whose id is not known)
    peers = (lsd, incoming, dht_pex, given)
    counted = peers_from(dataclasses.replace(job(JobState.DOWNLOADING), peer_list=peers))
    assert counted == {"fromCache": 0, "fromDht": 1, "fromIncoming": 1, "fromLpd": 0, "fromLtep": 0,
                       "fromPex": 0, "fromTracker": 1}


def test_programs_and_watched_folders_in_both_dialects(tmp_path: Path) -> None:
    from torrent_engine.api.compat.programs import (
        qbt_changes,
        qbt_preferences,
        script_command,
        script_file,
        tr_changes,
        tr_session,
    )
    from torrent_engine.jobs import InvalidJobRequest
    from torrent_engine.jobs.tuning.settings import ServiceSettings, updated

    a, b = tmp_path / "a", tmp_path / "b dir"
    a.mkdir()
    b.mkdir()
    changes = qbt_changes({"autorun_enabled": True, "autorun_program": "/bin/x \"%N\"",
                           "scan_dirs": {str(a): 0, str(b): 1}})
    s = updated(ServiceSettings(), changes)
    # as qBittorrent reads them: 0 saves into the watched folder itself, 1 into the default save path
    assert dict(s.watch_folders) == {str(a): str(a), str(b): None}
    assert s.run_on_completed_enabled and s.run_on_completed == "/bin/x \"%N\""
    prefs = qbt_preferences(s)
    assert prefs["scan_dirs"] == {str(a): 0, str(b): 1} and prefs["autorun_program"] == "/bin/x \"%N\""
    for bad in ({"scan_dirs": {str(a): 2}}, {"scan_dirs": [str(a)]}, {"scan_dirs": {str(a / "no"): 0}},
                {"autorun_enabled": "yes"}):
        with pytest.raises(InvalidJobRequest) as err:
            qbt_changes(bad)
        assert err.value.field in ("scan_dirs", "autorun_enabled")
    # Transmission names a script file: one argument, spaces and % kept as they are
    assert script_file(script_command("/opt/my scripts/done 100%.sh", "f")) == "/opt/my scripts/done 100%.sh"
    s = updated(s, tr_changes({"script-torrent-done-seeding-filename": "/opt/a b.sh",
                               "script-torrent-done-seeding-enabled": True, "watch-dir": str(b)}, s))
    session = tr_session(s)
    assert session["script-torrent-done-seeding-filename"] == "/opt/a b.sh"
    assert session["script-torrent-done-seeding-enabled"] is True
    assert session["script-torrent-done-filename"] == "/bin/x \"%N\""  # (a command line, as it is)
    assert session["watch-dir"] == str(b) and session["watch-dir-enabled"] is True
    assert dict(s.watch_folders) == {str(b): None}  # (the first folder's place, taken)
    s = updated(s, tr_changes({"watch-dir-enabled": False}, s))
    assert tr_session(s)["watch-dir-enabled"] is False and qbt_preferences(s)["scan_dirs"] == {}


@pytest.mark.parametrize(("announce", "scrape"), [
    ("http://t.example:8080/announce", "http://t.example:8080/scrape"),
    ("https://t.example/x/announce.php?passkey=k", "https://t.example/x/scrape.php?passkey=k"),
    ("udp://t.example:6969/announce", "udp://t.example:6969/scrape"),
    ("udp://t.example:6969", "udp://t.example:6969"),  # (scraped at its announce address)
    ("udp://announce.example:1", "udp://announce.example:1"),  # (a host named so is no path)
    ("http://t.example/tracker", ""),  # (no scrape convention: none)
    ("http://[::1/announce", ""),  # (a URL that cannot be parsed: none, no server error)
])
def test_a_trackers_scrape_url_is_given_as_transmission_gives_it(announce: str, scrape: str) -> None:
    assert their_scrape(announce) == scrape


@pytest.mark.parametrize(("announce", "host", "sitename"), [
    ("udp://tracker.opentrackr.org:1337/announce", "tracker.opentrackr.org:1337", "opentrackr"),
    ("https://t.example.org/a/announce", "t.example.org:443", "example"),  # (the scheme's port)
    ("http://bt.t-ru.org/ann?magnet", "bt.t-ru.org:80", "t-ru"),
    ("http://tracker.example.co.uk:6969/announce", "tracker.example.co.uk:6969", "example"),
    ("udp://127.0.0.1:2/announce", "127.0.0.1:2", "127.0.0.1"),  # (an address: as it is)
    ("http://[::1]:6969/announce", "::1:6969", "::1"),
    ("http://localhost/announce", "localhost:80", "localhost"),
    ("http://t.example:port/announce", "", ""),  # (no host and port to say: none, no server error)
])
def test_a_trackers_host_and_site_name_are_given_as_transmission_4_gives_them(
        announce: str, host: str, sitename: str) -> None:
    """(``host`` was the announce URL, ``sitename`` ""; Transmission's Qt and GTK clients list
    the trackers to filter by by site name: one nameless tracker.)"""
    assert their_host(announce) == (host, sitename)


def test_torrents_info_sorts_by_a_field_of_one_type_and_by_type_then_value_when_mixed() -> None:
    from typing import Any, cast

    from torrent_engine.api.compat.kept import Kept
    from torrent_engine.api.compat.qbittorrent import sorted_by

    def rows(values: list[Any]) -> list[Kept[Any]]:
        return [Kept(cast(Job, None), (), {"name": f"t{n}", "v": v}) for n, v in enumerate(values)]

    assert [k.record["v"] for k in sorted_by(rows([3, 1, 2]), "v")] == [1, 2, 3]
    assert [k.record["v"] for k in sorted_by(rows(["b", "c", "a"]), "v", reverse=True)] == ["c", "b", "a"]
    # (None beside numbers: grouped by type, each group in order, as before; nothing raised)
    mixed = [k.record["v"] for k in sorted_by(rows([2, None, 1, None]), "v")]
    assert mixed == [None, None, 1, 2]
    # (equal values keep the list's order: a stable sort either way)
    assert [k.record["name"] for k in sorted_by(rows([1, 1, 0]), "v")] == ["t2", "t0", "t1"]


def test_a_tracker_s_state_is_qbittorrent_5_s_and_the_torrent_s_announce_flags_follow() -> None:
    """Working 2, not contacted 1; a failure: the tracker's own refusal 5 (Tracker error), not
    asked 6 (Unreachable: libtorrent's announce_skipped), anything else 4 (Not working)."""
    def tracker(status: str, failure: str | None = None) -> JobTracker:
        return JobTracker(url="http://127.0.0.1:9/announce", status=status, message="", peers=0,
                          failure=failure)

    cases = (("working",), ("unknown",), ("failed", "refused"), ("failed", "skipped"), ("failed", "error"),
             ("failed",))
    assert [tracker_status(tracker(*t)) for t in cases] == [2, 1, 5, 6, 4, 4]


def test_the_peer_sources_rows_count_the_connected_peers_heard_of_each_way() -> None:
    """qBittorrent's DHT, PeX and LSD rows of ``torrents/trackers`` count the connected peers
    heard of that way, seeds and not (they were 0 whatever was connected)."""
    peers = (JobPeer("127.0.0.1:1", "a", 0.0, 0.0, 1.0, sources=("dht", "pex")),
             JobPeer("127.0.0.1:2", "b", 0.0, 0.0, 0.5, sources=("dht",)),
             JobPeer("127.0.0.1:3", "c", 0.0, 0.0, 0.5, sources=("tracker", "incoming")))
    shown = dataclasses.replace(job(JobState.DOWNLOADING), peer_list=peers)
    rows = {r["url"]: r for r in tracker_rows(shown, False, [("DHT", True), ("PeX", True), ("LSD", False)])}
    assert [(rows[f"** [{n}] **"]["num_seeds"], rows[f"** [{n}] **"]["num_leeches"])
            for n in ("DHT", "PeX", "LSD")] == [(1, 1), (1, 0), (0, 0)]
    assert rows["** [LSD] **"]["status"] == 0 and all("endpoints" not in r for r in rows.values())
