"""``torrent-engine download`` as people use it: several sources, a .torrent URL, file selection,
--save-torrent, --json, resume by default, seed ratio, rate limits, -v/-q anywhere, and the live
display in a real pseudo-terminal."""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio

CLI = [sys.executable, "-m", "torrent_engine"]
BASE = ["--listen-host", "127.0.0.1", "--no-dht", "--no-port-mapping", "--no-lsd", "--no-trackers"]
FILES = (("a.bin", 300_001), ("b/c.bin", 200_000), ("d.txt", 5))


async def cli(*args: str, timeout: float = 120) -> tuple[int, str, str]:
    with anyio.fail_after(timeout):
        result = await anyio.run_process([*CLI, *args], check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@contextmanager
def http_server(folder: Path) -> Iterator[int]:
    """A plain HTTP server on 127.0.0.1 serving ``folder``."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


async def test_two_sources_one_a_url_with_a_file_selection(tmp_path: Path) -> None:
    one = make_torrent(make_payload(tmp_path / "s1", FILES, name="one"), piece_length=16384)
    two = make_torrent(make_payload(tmp_path / "s2", (("x.bin", 99_999),), name="two"), piece_length=16384,
                       version="v1")  # a hybrid fetched by magnet is saved without its piece layers
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "one.torrent").write_bytes(one.to_bytes())
    async with Session(one, tmp_path / "s1", config=loopback_config()) as s1, \
            Session(two, tmp_path / "s2", config=loopback_config()) as s2:
        await s1.wait_ready()
        await s2.wait_ready()
        with http_server(tmp_path / "web") as port:
            code, _out, err = await cli(
                "download", f"http://127.0.0.1:{port}/one.torrent", two.magnet_uri(),
                "-o", str(tmp_path / "out"),
                "--peer", f"127.0.0.1:{s1.listen_port}", "--peer", f"127.0.0.1:{s2.listen_port}",
                "--select-file", "0", "--select-file", "*.txt", "--no-state", "--save-torrent",
                str(tmp_path / "saved.torrent"), *BASE)
            missing_code, _, missing_err = await cli("download", f"http://127.0.0.1:{port}/absent.torrent",
                                                     "--no-state", *BASE)
    assert code == 0, err
    assert "completed one" in err and "completed two" in err
    out = tmp_path / "out"
    assert (out / "one" / "a.bin").read_bytes() == (tmp_path / "s1" / "one" / "a.bin").read_bytes()
    assert (out / "one" / "d.txt").read_bytes() == (tmp_path / "s1" / "one" / "d.txt").read_bytes()
    skipped = out / "one" / "b" / "c.bin"  # not selected: absent, or only its boundary pieces
    assert not skipped.exists() or sum(1 for b in skipped.read_bytes() if b) <= 2 * 16384
    assert same_files(two, tmp_path / "s2", out) == []
    # with two sources, --save-torrent names each by its info-hash
    saved = {Torrent.load(p).info_hash for p in tmp_path.glob("saved-*.torrent")}
    assert saved == {one.info_hash, two.info_hash}
    assert missing_code == 1 and "HTTP status 404" in missing_err and "Traceback" not in missing_err


async def test_bad_selection_is_a_one_line_error(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "s", FILES, name="one"))
    (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
    for spec, message in (("7", "out of range"), ("*.iso", "no file of 'one' is left to download")):
        code, _, err = await cli("download", str(tmp_path / "t.torrent"), "--select-file", spec,
                                 "--no-state", "-o", str(tmp_path / "o"), *BASE)
        assert code == 1 and message in err and "Traceback" not in err, err


async def test_json_progress_and_resume_by_default(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "s", FILES, name="one"), piece_length=16384)
    (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
    env_home = {"XDG_DATA_HOME": str(tmp_path / "home")}
    async with Session(torrent, tmp_path / "s", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        args = ["download", str(tmp_path / "t.torrent"), "-o", str(tmp_path / "out"),
                "--peer", f"127.0.0.1:{seeder.listen_port}", "--json", *BASE]
        with anyio.fail_after(120):
            first = await anyio.run_process([*CLI, *args], check=False, env={**os.environ, **env_home})
            again = await anyio.run_process([*CLI, *args], check=False, env={**os.environ, **env_home})
    assert first.returncode == 0, first.stderr.decode()
    events = [json.loads(line) for line in first.stdout.decode().splitlines()]
    assert {e["event"] for e in events} >= {"progress", "completed"}
    done = [e for e in events if e["event"] == "completed"][0]
    assert done["received"] >= torrent.payload_size
    last = [e for e in events[:events.index(done)] if e["event"] == "progress"][-1]
    assert last["progress"] == 1.0  # (the progress stream ends at 100 %)
    # resume data went to the per-user state directory by default: the second run checks nothing
    # from scratch, says so, and counts only what it received (nothing)
    assert list((tmp_path / "home" / "torrent_engine" / "cli" / "torrents").glob("*.resume"))
    err = again.stderr.decode()
    assert again.returncode == 0, err
    assert f"resuming one: {torrent.num_pieces} of {torrent.num_pieces} pieces verified" in err
    assert "completed one: 0 B received" in err
    assert [e for e in map(json.loads, again.stdout.decode().splitlines()) if e["event"] == "completed"][0][
        "received"] == 0


async def test_sequential_completes_pieces_in_order(tmp_path: Path) -> None:
    """--sequential, seen from outside: the --json ``piece`` events arrive in index order."""
    torrent = make_torrent(make_payload(tmp_path / "s", (("x.bin", 3_000_000),), name="one"),
                           piece_length=16384, version="v1")
    (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
    async with Session(torrent, tmp_path / "s", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        code, out, err = await cli("download", str(tmp_path / "t.torrent"), "-o", str(tmp_path / "out"),
                                   "--peer", f"127.0.0.1:{seeder.listen_port}", "--sequential", "--json",
                                   "--no-state", *BASE)
    assert code == 0, err
    order = [e["index"] for e in map(json.loads, out.splitlines()) if e["event"] == "piece"]
    assert sorted(order) == list(range(torrent.num_pieces))  # each piece once
    # in index order, give or take the pieces hashed at once in worker threads (rarest-first among
    # equals, what happens without --sequential, scatters them over all 184: in the first quarter
    # of a random order some piece comes from the second half with near certainty)
    window = torrent.num_pieces // 4
    late = [(n, index) for n, index in enumerate(order) if abs(index - n) > window]
    assert not late, (late[:10], order)
    assert same_files(torrent, tmp_path / "s", tmp_path / "out") == []


async def test_seed_ratio_stops_seeding_at_the_ratio_and_quiet_after_the_command(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "s", FILES, name="one"), piece_length=16384)
    (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
    async with await anyio.open_process(
            [*CLI, "download", str(tmp_path / "t.torrent"), "-o", str(tmp_path / "s"), "--seed-ratio", "1",
             "--listen-port", "0", "--no-state", *BASE, "-q"]) as seeder_cli:
        # the CLI seeder's port is not printed with -q: find it from the leecher side by trying it
        # through a session that dials the CLI's listen port, read from /proc
        port = 0
        with anyio.fail_after(30):
            while not port:
                port = _listen_port_of(seeder_cli.pid)
                await anyio.sleep(0.1)
        async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", port)]) as leecher:
            with anyio.fail_after(60):
                await leecher.wait_completed()
            with anyio.fail_after(60):
                code = await seeder_cli.wait()
        assert seeder_cli.stderr is not None
        err = (await seeder_cli.stderr.receive(65536)).decode() if code else ""
    assert code == 0, err
    assert same_files(torrent, tmp_path / "s", tmp_path / "leech") == []


def _listen_port_of(pid: int) -> int:
    """The TCP port a process listens on (from /proc), 0 while it has none."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                return int(fields[1].rsplit(":", 1)[1], 16)
    return 0


async def test_download_limit_is_applied(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "s", (("x.bin", 1024 * 1024),), name="one"),
                           piece_length=16384)
    (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
    async with Session(torrent, tmp_path / "s", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        started = time.monotonic()
        code, _, err = await cli("download", str(tmp_path / "t.torrent"), "-o", str(tmp_path / "out"),
                                 "--peer", f"127.0.0.1:{seeder.listen_port}", "--download-limit", "256K",
                                 "--no-state", *BASE)
        elapsed = time.monotonic() - started
    assert code == 0, err
    # 1 MiB at 256 KiB/s with a one-second burst takes at least 3 s (a lower bound only: a loaded
    # machine may take longer, never shorter)
    assert elapsed >= 3.0, elapsed
    assert same_files(torrent, tmp_path / "s", tmp_path / "out") == []


def terminal_screen(raw: str, columns: int, rows: int = 24) -> list[str]:
    """What a terminal shows (and keeps in its scrollback) after ``raw``: the few control
    sequences a live display uses (cursor moves, erase in line, carriage return, line feed),
    with the deferred wrap at the last column of a real terminal."""
    lines: list[list[str]] = [[]]
    row = col = top = 0

    def goto(new_row: int) -> None:
        nonlocal row, top
        row = max(top, new_row)
        while len(lines) <= row:
            lines.append([])
        top = max(top, row - rows + 1)

    i = 0
    while i < len(raw):
        ch = raw[i]
        match = re.match(r"\x1b\[([?0-9;]*)([A-Za-z])", raw[i:])
        if match:
            params, final = match.groups()
            n = int(params) if params.isdigit() else 0
            if final == "A":
                goto(row - max(n, 1))
            elif final == "B":
                goto(row + max(n, 1))
            elif final == "F":
                goto(row - max(n, 1))
                col = 0
            elif final == "G":
                col = max(n, 1) - 1
            elif final == "K":
                line = lines[row]
                if n == 2:
                    line.clear()
                elif n == 0:
                    del line[col:]
            i += match.end()
            continue
        if ch == "\r":
            col = 0
        elif ch == "\n":
            goto(row + 1)
        elif ch >= " ":
            if col >= columns:  # deferred wrap: only a character after the last column wraps
                goto(row + 1)
                col = 0
            line = lines[row]
            line.extend(" " * (col - len(line)))
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
        i += 1
    return ["".join(line).rstrip() for line in lines]


@contextmanager
def peer_that_breaks_the_protocol() -> Iterator[int]:
    """A plaintext peer on 127.0.0.1 that completes the handshake, then sends a message longer
    than any allowed: each connection ends in a protocol error the session logs at INFO."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    hello = b""
                    while len(hello) < 68:
                        chunk = conn.recv(68 - len(hello))
                        if not chunk:
                            break
                        hello += chunk
                    conn.sendall(hello[:48] + b"-XX0001-" + bytes(12) + b"\xff\xff\xff\xff")
                    time.sleep(0.2)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


@pytest.mark.parametrize("columns", [60, 120])
def test_live_display_in_a_terminal(tmp_path: Path, columns: int) -> None:
    pexpect = pytest.importorskip("pexpect")
    torrent = make_torrent(make_payload(tmp_path / "s", FILES, name="one"))
    (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
    raw = ""
    with peer_that_breaks_the_protocol() as port:
        args = [*CLI[1:], "download", str(tmp_path / "t.torrent"), "-o", str(tmp_path / "o"),
                "--state-dir", str(tmp_path / "state"), "--peer", f"127.0.0.1:{port}", "--encryption",
                "disable", "--transport", "tcp", *BASE, "-v"]
        child = pexpect.spawn(CLI[0], args,
                              dimensions=(24, columns), timeout=30, encoding="utf-8", codec_errors="replace",
                              env={**os.environ, "COLUMNS": str(columns)})
        try:
            child.expect("━")  # the bar
            raw += child.before + child.after
            child.expect("INFO")  # a -v log line: that peer's protocol error
            raw += child.before + child.after
            time.sleep(2.0)  # several redraws after it
            child.sendintr()
            child.expect(pexpect.EOF)
            raw += child.before
        finally:
            child.close(force=True)
    seen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw).replace("^C", "")  # ^C: the terminal's echo
    lines = [line for line in seen.replace("\r", "\n").split("\n") if line.strip()]
    assert all(len(line) <= columns for line in lines), [line for line in lines if len(line) > columns]
    assert "\x1b[" in raw  # redrawn in place, not a scrolling stream
    assert seen.count("one") >= 1 and "0.0%" in seen
    assert "run the same command again to continue" in seen
    assert child.exitstatus == 130 or child.signalstatus is None
    # on the terminal as it is left: each log line above the live bar (never overwritten by a
    # redraw, never inside the bar's line), and the way to resume below it
    screen = terminal_screen(raw.replace("^C", ""), columns)
    bars = [n for n, line in enumerate(screen) if "━" in line]
    logs = [n for n, line in enumerate(screen) if line.startswith("INFO")]
    assert len(bars) == 1 and logs, screen
    assert max(logs) < bars[0], screen
    assert "closed" in " ".join(screen[logs[0]:bars[0]]), screen
    assert "INFO" not in screen[bars[0]] and screen[bars[0]].startswith("one"), screen
    hint = next(n for n, line in enumerate(screen) if line.startswith("run the same command again"))
    assert hint > bars[0], screen


async def test_the_command_line_selection_wins_over_an_earlier_runs_resume_data(tmp_path: Path) -> None:
    """A run into A, then one into B selecting one file (by the path 'info' prints), then one into A
    selecting another: each fetches what its command line says, and B is not told it resumes."""
    payload = make_payload(tmp_path / "s", FILES, name="multi")
    torrent = make_torrent(payload, piece_length=16384, version="v1")
    (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
    state = ["--state-dir", str(tmp_path / "state")]
    async with Session(torrent, tmp_path / "s", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        peer = ["--peer", f"127.0.0.1:{seeder.listen_port}", *BASE, *state]
        code, _, err = await cli("download", str(tmp_path / "t.torrent"), "-o", str(tmp_path / "A"),
                                 "--select-file", "0", *peer)
        assert code == 0, err
        code, _, err = await cli("download", str(tmp_path / "t.torrent"), "-o", str(tmp_path / "B"),
                                 "--select-file", "multi/d.txt", *peer)
        assert code == 0 and "resuming" not in err, err
        # (the tail of c.bin shares d.txt's piece: only a.bin is surely not there)
        assert (tmp_path / "B" / "multi" / "d.txt").read_bytes() == (payload / "d.txt").read_bytes()
        assert not (tmp_path / "B" / "multi" / "a.bin").exists()
        code, _, err = await cli("download", str(tmp_path / "t.torrent"), "-o", str(tmp_path / "A"),
                                 "--select-file", "b/c.bin", *peer)
        assert code == 0, err  # (B's run holds the resume file now: A's files are checked again)
    assert (tmp_path / "A" / "multi" / "b" / "c.bin").read_bytes() == \
        (tmp_path / "s" / "multi" / "b" / "c.bin").read_bytes()
