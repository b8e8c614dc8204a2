"""The programs of examples/ run as a user runs them (``python examples/x.py ...``), against
seeders and leechers on loopback (``--local`` keeps each off the DHT, trackers, LSD and port
mapping), so that none of them rots."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import torrent_engine as te

from .helpers import loopback_config, make_payload, make_torrent, same_files

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TIMEOUT = 120


def python_env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO)]))
    # (faulthandler: an example that hangs is aborted with every thread's stack on its stderr)
    return {**os.environ, "PYTHONPATH": path, "PYTHONFAULTHANDLER": "1"}


def run_example(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=TIMEOUT, env=python_env())


# An example started as from a terminal, where Ctrl-C interrupts: a test run started in the
# background (a non-interactive shell's `cmd &`, as a CI runner may) has SIGINT ignored, every
# child inherits that, and Python then leaves it ignored: the example would never hear Ctrl-C.
AS_FROM_A_TERMINAL = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                      "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def start_example(name: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", AS_FROM_A_TERMINAL, str(EXAMPLES / name), *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=python_env())


def read_until(process: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    """The first stdout line matching ``pattern`` (the test's timeout bounds the wait)."""
    assert process.stdout is not None
    for line in process.stdout:
        match = re.search(pattern, line)
        if match:
            return match
    err = process.stderr.read() if process.stderr else ""
    raise AssertionError(f"ended without printing {pattern!r}: {err}")


def interrupt(process: subprocess.Popen[str]) -> tuple[str, str]:
    """Ctrl-C, as a user stops the example, and its output; one that does not end within
    ``TIMEOUT`` (a loaded machine is given time) is killed, and the test fails saying so: no
    example outlives its test."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # (faulthandler prints where each thread waits)
        try:
            _, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        raise AssertionError(f"the example did not end {TIMEOUT} s after Ctrl-C (aborted; its threads "
                             f"then):\n{err[-8000:]}") from None
    except BaseException:  # (the test itself interrupted: the example still ends with it)
        process.kill()
        process.communicate()
        raise


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[te.Torrent, Path, int]]:
    """A torrent, its .torrent file and a seeder's port on loopback."""
    payload = make_payload(tmp_path / "seed")
    torrent = make_torrent(payload)
    path = tmp_path / "payload.torrent"
    path.write_bytes(torrent.to_bytes())
    with te.BackgroundDownload(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        assert seeder.wait(30)
        yield torrent, path, seeder.status().listen_port


def test_download_with_a_progress_bar(tmp_path: Path, seeded: tuple[te.Torrent, Path, int]) -> None:
    torrent, path, port = seeded
    run = run_example("download.py", str(path), str(tmp_path / "dl"), "--local",
                      "--peer", f"127.0.0.1:{port}", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "100.0%" in run.stdout and f"payload: {torrent.payload_size} bytes" in run.stdout
    assert same_files(torrent, tmp_path / "seed", tmp_path / "dl") == []


def test_download_says_what_is_wrong_with_a_bad_torrent(tmp_path: Path) -> None:
    (tmp_path / "bad.torrent").write_bytes(b"d4:infoi3ee")
    run = run_example("download.py", "bad.torrent", "dl", "--local", cwd=tmp_path)
    assert run.returncode == 1 and "error:" in run.stderr and "Traceback" not in run.stderr


def test_seed_a_folder_and_print_its_peers(tmp_path: Path) -> None:
    folder = make_payload(tmp_path, name="shared")
    seeder = start_example("seed.py", str(folder), "--local", cwd=tmp_path)
    try:
        port = int(read_until(seeder, r"on port (\d+)").group(1))
        torrent = te.Torrent.load(tmp_path / "shared.torrent")
        te.download(torrent, tmp_path / "dl", config=loopback_config(), peers=(("127.0.0.1", port),),
                    timeout=TIMEOUT)
        read_until(seeder, r"peer connected: 127\.0\.0\.1")
    finally:
        out, err = interrupt(seeder)
    assert seeder.returncode == 0, err
    assert same_files(torrent, tmp_path, tmp_path / "dl") == []


def test_many_torrents_under_one_manager_with_events(tmp_path: Path) -> None:
    torrents = []
    for n in range(3):
        payload = make_payload(tmp_path / "seed", seed=n, name=f"payload{n}")
        torrent = make_torrent(payload)
        (tmp_path / f"t{n}.torrent").write_bytes(torrent.to_bytes())
        torrents.append(torrent)
    seeders = [te.BackgroundDownload(t, tmp_path / "seed", config=loopback_config()) for t in torrents]
    try:
        for seeder in seeders:
            assert seeder.wait(30)
        peers = [arg for s in seeders for arg in ("--peer", f"127.0.0.1:{s.status().listen_port}")]
        run = run_example("many_torrents.py", str(tmp_path / "dl"), "t0.torrent", "t1.torrent", "t2.torrent",
                          "--local", *peers, cwd=tmp_path)
    finally:
        for seeder in seeders:
            seeder.close()
    assert run.returncode == 0, run.stderr
    for torrent in torrents:
        assert f"{torrent.info_hash.hex()[:8]} session.completed" in run.stdout
        assert f"done: {torrent.name} {torrent.payload_size} bytes" in run.stdout
        assert same_files(torrent, tmp_path / "seed", tmp_path / "dl") == []
    assert "piece.completed" in run.stdout and "peer.connected" in run.stdout


def test_jobs_with_a_queue_go_on_in_the_next_run_of_the_job_service(tmp_path: Path) -> None:
    torrents = []
    for n in range(3):
        payload = make_payload(tmp_path / "seed", seed=n, name=f"payload{n}")
        torrent = make_torrent(payload)
        (tmp_path / f"t{n}.torrent").write_bytes(torrent.to_bytes())
        torrents.append(torrent)
    state = str(tmp_path / "state")
    seeders = [te.BackgroundDownload(t, tmp_path / "seed", config=loopback_config()) for t in torrents]
    try:
        for seeder in seeders:
            assert seeder.wait(30)
        peers = [arg for s in seeders for arg in ("--peer", f"127.0.0.1:{s.status().listen_port}")]
        run = run_example("job_service.py", str(tmp_path / "dl"), "t0.torrent", "t1.torrent", "t2.torrent",
                          "--max-active", "1", "--state-dir", state, "--local", *peers, cwd=tmp_path)
    finally:
        for seeder in seeders:
            seeder.close()
    assert run.returncode == 0, run.stderr
    assert f"0 jobs in {state}" in run.stdout
    lines = run.stdout.splitlines()
    for torrent in torrents:
        assert f"added: {torrent.name}" in lines, run.stdout
        assert f"done: {torrent.name} completed {torrent.payload_size} bytes" in lines, run.stdout
        assert same_files(torrent, tmp_path / "seed", tmp_path / "dl") == []
    # one download slot: each job waits, queued, until the one before it has its data
    def first(name: str, change: str) -> int:
        return next(i for i, line in enumerate(lines)
                    if line.startswith(f"{name}: ") and line.endswith(change))

    for before, after in zip(torrents, torrents[1:], strict=False):
        assert first(before.name, "-> seeding") < first(after.name, "-> downloading")
    # the next run finds its jobs in the state folder (no seeder, no source: nothing to fetch)
    again = run_example("job_service.py", str(tmp_path / "dl"), "--state-dir", state, "--local", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"3 jobs in {state}" in again.stdout and "added" not in again.stdout
    assert all(f"done: {t.name} completed {t.payload_size} bytes" in again.stdout for t in torrents)


def test_stream_a_file_into_a_player(tmp_path: Path, seeded: tuple[te.Torrent, Path, int]) -> None:
    torrent, path, port = seeded
    player = "sh -c 'cat > played.bin'"  # a player that keeps what it was given
    run = run_example("stream_to_player.py", str(path), str(tmp_path / "dl"), "--player", player, "--local",
                      "--peer", f"127.0.0.1:{port}", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    largest = max(torrent.files, key=lambda f: f.length)
    assert (tmp_path / "played.bin").read_bytes() == (tmp_path / "seed").joinpath(*largest.path).read_bytes()
    assert f"sent {largest.length} bytes; the player exited with 0" in run.stderr


def test_a_custom_storage_keeps_the_pieces_in_memory(tmp_path: Path,
                                                     seeded: tuple[te.Torrent, Path, int]) -> None:
    torrent, path, port = seeded
    run = run_example("memory_storage.py", str(path), "--local", "--peer", f"127.0.0.1:{port}", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    expected = [f"{hashlib.sha256((tmp_path / 'seed').joinpath(*f.path).read_bytes()).hexdigest()} "
                f"{'/'.join(f.path)}" for f in torrent.files if not f.pad]
    assert run.stdout.splitlines() == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["payload.torrent", "seed"]  # nothing written


def test_the_job_service_in_an_asgi_app(tmp_path: Path, seeded: tuple[te.Torrent, Path, int]) -> None:
    torrent, path, port = seeded
    server = start_example("embed_asgi.py", "--port", "0", "--download-root", str(tmp_path / "dl"), "--local",
                           cwd=tmp_path)
    try:
        match = read_until(server, r"serving on (http://\S+)/ \(engine API under /torrents, token (\S+)\)")
        base, token = match.group(1), match.group(2)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            assert client.get("/torrents/api/jobs", headers={"Authorization": ""}).status_code == 401
            added = client.post("/torrents/api/jobs", json={
                "source": base64.b64encode(path.read_bytes()).decode(), "peers": [f"127.0.0.1:{port}"]})
            assert added.status_code == 201, added.text
            job_id = added.json()["id"]
            with client.stream("GET", f"/torrents/api/jobs/{job_id}/events") as events:
                for line in events.iter_lines():  # the job's events until its data is all there
                    if line.startswith("data:"):
                        data = json.loads(line[5:])
                        jobs = data["jobs"] if "jobs" in data else [data.get("job") or {}]
                        if any(job.get("progress") == 1.0 for job in jobs):
                            break
            page = client.get("/").text
        assert f"{torrent.name}\tseeding\t100%" in page
    finally:
        out, err = interrupt(server)
    assert server.returncode == 0, err
    assert same_files(torrent, tmp_path / "seed", tmp_path / "dl") == []
