"""The programs run on a job's events: a command line split into arguments before placeholders
are replaced (no shell ever reads it), unknown placeholders refused when set, Transmission's
environment, and the runner's time limit, output tail and missing programs."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from torrent_engine.jobs import InvalidJobRequest
from torrent_engine.jobs.runner import ProgramRunner, run_program
from torrent_engine.jobs.tuning.autorun import (
    OutputTail,
    ProgramContext,
    ProgramEvent,
    build_argv,
    build_env,
    check_command,
    split_command,
)
from torrent_engine.jobs.tuning.settings import ServiceSettings, updated

pytestmark = pytest.mark.anyio

HOSTILE = "x; rm -rf ~ $(reboot) `id` 'q\" & | > out"


def context(name: str = "My Show S01", **kw: object) -> ProgramContext:
    values: dict[str, object] = dict(
        name=name, category="tv/hd", tags=("a", "b c"), content_path="/dl/tv/My Show S01",
        root_path="/dl/tv/My Show S01", save_path="/dl/tv", num_files=3, size=123456,
        tracker="http://t.example/announce", trackers=("http://t.example/announce", "udp://u:1"),
        info_hash_v1="a" * 40, info_hash_v2="b" * 64, torrent_id="a" * 40, number=7, downloaded=999)
    values.update(kw)
    return ProgramContext(**values)  # type: ignore[arg-type]


def test_every_placeholder_is_replaced_inside_its_own_argument() -> None:
    argv = build_argv('notify "%N" --cat=%L --tags %G %F %R %D %C %Z %T %I %J %K 100%%', context())
    assert argv == ["notify", "My Show S01", "--cat=tv/hd", "--tags", "a,b c", "/dl/tv/My Show S01",
                    "/dl/tv/My Show S01", "/dl/tv", "3", "123456", "http://t.example/announce", "a" * 40,
                    "b" * 64, "a" * 40, "100%"]


def test_a_hostile_name_arrives_as_one_literal_argument() -> None:
    assert build_argv("/bin/echo %N", context(HOSTILE)) == ["/bin/echo", HOSTILE]
    # unquoted, with text around it, and a value that looks like a placeholder: still one argument
    assert build_argv("/bin/echo pre-%N-post", context("%L $HOME")) == ["/bin/echo", "pre-%L $HOME-post"]
    assert build_argv("/bin/echo %N", context("")) == ["/bin/echo", ""]  # (an argument, empty)


async def test_a_hostile_name_reaches_the_program_unchanged(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    name = f"x; touch {marker}; $(touch {marker}) `touch {marker}` \"'"
    argv = build_argv(f"{sys.executable} -c 'import sys; print(repr(sys.argv[1:]))' %N %L", context(name))
    run = await run_program(ProgramEvent.COMPLETED, argv, dict(os.environ), 30)
    assert run.exit_code == 0, run
    assert run.output.strip() == repr([name, "tv/hd"])
    assert not marker.exists()


@pytest.mark.parametrize("command", ["run %Q", "run 50%", "run %N%x", "echo 'open"])
def test_a_bad_command_line_is_refused_naming_the_setting(command: str) -> None:
    with pytest.raises(InvalidJobRequest) as err:
        updated(ServiceSettings(), {"run_on_completed": command})
    assert err.value.field == "run_on_completed"
    with pytest.raises(InvalidJobRequest):
        split_command(command, "x")


def test_unknown_placeholder_is_named() -> None:
    with pytest.raises(InvalidJobRequest, match="unknown placeholder %Q"):
        check_command("prog %Q", "run_on_added")


def test_settings_take_programs_and_their_switches() -> None:
    s = updated(ServiceSettings(), {"run_on_added": "  /bin/prog %N ", "run_on_added_enabled": True,
                                    "run_on_completed": "/bin/other", "run_timeout": 5})
    assert s.program(ProgramEvent.ADDED) == "/bin/prog %N"
    assert s.program(ProgramEvent.COMPLETED) == ""  # (named, not turned on)
    assert s.run_timeout == 5.0
    for bad in ({"run_timeout": 0}, {"run_on_added_enabled": "yes"}, {"run_on_added": 3}):
        with pytest.raises(InvalidJobRequest):
            updated(ServiceSettings(), bad)


def test_transmission_environment() -> None:
    env = build_env(context(), {"PATH": "/bin"}, app_version="1.2", now=0)
    assert env["PATH"] == "/bin"
    assert env["TR_APP_VERSION"] == "1.2" and env["TR_TORRENT_NAME"] == "My Show S01"
    assert env["TR_TORRENT_DIR"] == "/dl/tv" and env["TR_TORRENT_HASH"] == "a" * 40
    assert env["TR_TORRENT_ID"] == "7" and env["TR_TORRENT_LABELS"] == "a,b c"
    assert env["TR_TORRENT_BYTES_DOWNLOADED"] == "999"
    assert env["TR_TORRENT_TRACKERS"] == "http://t.example/announce,udp://u:1"
    assert env["TR_TIME_LOCALTIME"]


def test_output_tail_keeps_the_end() -> None:
    tail = OutputTail(limit=10)
    tail.feed(b"0123456789")
    tail.feed(b"abcdef")
    assert tail.text() == "[6 bytes before]\n6789abcdef"


async def test_the_time_limit_kills_the_program_and_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = ("import subprocess, sys, time; "
              f"c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              f"open({str(pid_file)!r}, 'w').write(str(c.pid)); print('started', flush=True); time.sleep(60)")
    started = time.monotonic()
    run = await run_program(ProgramEvent.ADDED, [sys.executable, "-c", script], dict(os.environ), 1.5)
    assert time.monotonic() - started < 30
    assert run.timed_out and run.exit_code is None and "started" in run.output
    child = int(pid_file.read_text())
    with anyio.fail_after(10):
        while _alive(child):
            await anyio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


async def test_a_missing_or_failing_program_is_reported_not_raised() -> None:
    run = await run_program(ProgramEvent.COMPLETED, ["/no/such/program", "x"], {}, 5)
    assert run.exit_code is None and run.error is not None and "/no/such/program" in run.error
    run = await run_program(ProgramEvent.COMPLETED,
                            [sys.executable, "-c", "import sys; sys.stderr.write('bad'); sys.exit(3)"],
                            dict(os.environ), 5)
    assert run.exit_code == 3 and run.output == "bad" and not run.timed_out


async def test_stopping_the_owner_kills_a_running_program(tmp_path: Path) -> None:
    runner = ProgramRunner()
    pid_file = tmp_path / "pid"
    script = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    async with anyio.create_task_group() as tg:
        runner.start(tg, "job", ProgramEvent.ADDED, [sys.executable, "-c", script], dict(os.environ), 60)
        with anyio.fail_after(20):
            while not pid_file.exists() or not pid_file.read_text():
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert not _alive(int(pid_file.read_text()))
    assert "job" not in runner.last  # (it did not end: nothing to show)


async def _runs(log: Path, jobs: object, count: int) -> dict[str, dict[str, Any]]:
    """The runs the recorder noted, by event (the first argument), once there are ``count``."""
    import json

    from torrent_engine.jobs import JobService
    assert isinstance(jobs, JobService)
    with anyio.fail_after(20):
        while not log.exists() or len(log.read_text().splitlines()) < count:
            await jobs.enforce()
            await anyio.sleep(0.05)
    return {r["argv"][0]: r for r in map(json.loads, log.read_text().splitlines())}


RECORDER = """import json, os, sys
with open(sys.argv[1], "a") as f:
    env = {k: v for k, v in os.environ.items() if k.startswith("TR_")}
    f.write(json.dumps({"argv": sys.argv[2:], "env": env}) + "\\n")
"""


def recorder(tmp_path: Path) -> tuple[str, Path]:
    """A program that notes its arguments and Transmission's variables in a file, one line a run."""
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER)
    log = tmp_path / "runs.jsonl"
    return f"{sys.executable} {script} {log}", log


async def test_the_service_runs_programs_on_add_completion_and_share_limit(tmp_path: Path) -> None:

    from tests.unit.jobs.test_jobs_features import seed_data, service, two_files
    from torrent_engine.jobs import JobFeatures

    torrent = two_files("show")
    seed_data(tmp_path / "dl", torrent)
    write, log = recorder(tmp_path)
    async with service(tmp_path, seed=True) as jobs:
        await jobs.update_settings(
            run_on_added=write + " added %N %L %G", run_on_added_enabled=True,
            run_on_completed=write + " completed %N %C %Z %I", run_on_completed_enabled=True,
            run_on_seeding_done=write + " done %K", run_on_seeding_done_enabled=True)
        job, _ = await jobs.add(torrent, features=JobFeatures(category="tv", tags=("x", "y")))
        runs = await _runs(log, jobs, 2)
        assert sorted(runs) == ["added", "completed"]
        await jobs.update_settings(ratio_limit=0.0)  # (reached at once: the seeding is done)
        runs = await _runs(log, jobs, 3)
        with anyio.fail_after(10):
            while (last := jobs.get(job.id).last_program) is None or last.argv[-2] != "done":
                await anyio.sleep(0.05)  # (the run is shown once it ended)
        assert last.exit_code == 0 and last.event is ProgramEvent.SEEDING_DONE and not last.timed_out
    assert sorted(runs) == ["added", "completed", "done"]  # (each once)
    assert len(log.read_text().splitlines()) == 3
    assert runs["added"]["argv"] == ["added", "show", "tv", "x,y"]
    assert runs["completed"]["argv"] == ["completed", "show", "2", str(torrent.payload_size),
                                         torrent.info_hash.hex()]
    assert runs["done"]["argv"] == ["done", torrent.info_hash.hex()]
    env = runs["completed"]["env"]
    assert env["TR_TORRENT_NAME"] == "show" and env["TR_TORRENT_HASH"] == torrent.info_hash.hex()
    assert env["TR_TORRENT_DIR"] == str((tmp_path / "dl").resolve()) and env["TR_TORRENT_LABELS"] == "x,y"


@pytest.mark.parametrize("in_the_way", [False, True])
async def test_a_completion_through_the_incomplete_folder_runs_its_program_once_the_files_are_placed(
        tmp_path: Path, in_the_way: bool) -> None:
    """A download complete in its incomplete folder: its completion's program runs once its move
    to the save path ended, its content path where the files are then (the save path; the
    incomplete folder when a file of other data at the save path kept them there). It ran as the
    download completed, its content path the save path, where nothing was yet."""
    from tests.unit.jobs.test_jobs_features import seed_data, service, two_files

    torrent = two_files("show")
    dl = (tmp_path / "dl").resolve()
    seed_data(dl / "part", torrent)
    if in_the_way:
        (dl / "done" / "show").mkdir(parents=True)
        (dl / "done" / "show" / "b.bin").write_bytes(b"other")
    script = tmp_path / "probe.sh"  # (notes whether the files are at %F as it runs)
    log = tmp_path / "runs"
    script.write_text(f'#!/bin/sh\n[ -f "$1/a.bin" ] && echo "there $1" >> {log} '
                      f'|| echo "missing $1" >> {log}\n')
    os.chmod(script, 0o755)
    async with service(tmp_path, seed=True) as jobs:
        await jobs.update_settings(run_on_completed=f"{script} %F", run_on_completed_enabled=True)
        job, _ = await jobs.add(torrent, save_path="done", download_path="part")
        with anyio.fail_after(20):
            while (last := jobs.get(job.id).last_program) is None:
                await anyio.sleep(0.05)
        assert last.exit_code == 0
    where = dl / ("part" if in_the_way else "done") / "show"
    assert log.read_text().splitlines() == [f"there {where}"]  # (once)


@pytest.mark.parametrize("stopped", ["moving", "moved"])
async def test_a_completion_program_due_when_the_service_stopped_runs_once_at_the_next_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stopped: str) -> None:
    """A download complete in its incomplete folder, the service stopped before its completion's
    program ran: while its data was moving to the save path ("moving": the move held, then
    undone by the stop) or once it had moved ("moved": as a kill between the two). At the next
    start the program runs, once, with the files at the save path."""
    from tests.unit.jobs.test_jobs_features import seed_data, service, two_files
    from torrent_engine.jobs.disk.relocate import Mover

    torrent = two_files("show")
    dl = (tmp_path / "dl").resolve()
    seed_data(dl / "part", torrent)
    script = tmp_path / "probe.sh"  # (notes whether the files are at %F as it runs)
    log = tmp_path / "runs"
    script.write_text(f'#!/bin/sh\n[ -f "$1/a.bin" ] && echo "there $1" >> {log} '
                      f'|| echo "missing $1" >> {log}\n')
    os.chmod(script, 0o755)
    reached = anyio.Event()
    if stopped == "moving":
        async def held(self: Mover, *args: object, **kwargs: object) -> None:
            reached.set()
            await anyio.sleep_forever()
        monkeypatch.setattr(Mover, "_relocate", held)
    else:
        async def lost(self: Mover, rec: object) -> None:  # (killed before the program started)
            reached.set()
        monkeypatch.setattr(Mover, "_run_due_program", lost)
    async with service(tmp_path, seed=True) as jobs:
        await jobs.update_settings(run_on_completed=f"{script} %F", run_on_completed_enabled=True)
        job, _ = await jobs.add(torrent, save_path="done", download_path="part")
        with anyio.fail_after(20):
            await reached.wait()
        assert jobs.get(job.id).completed_at is not None
    assert not log.exists()  # (not run: the service stopped first)
    monkeypatch.undo()
    async with service(tmp_path, seed=True) as jobs:
        with anyio.fail_after(20):
            while (last := jobs.get(job.id).last_program) is None:
                await anyio.sleep(0.05)
        assert last.exit_code == 0 and last.event is ProgramEvent.COMPLETED
        with anyio.fail_after(20):
            while jobs.get(job.id).options.download_path is not None:
                await anyio.sleep(0.05)
        await anyio.sleep(0.3)  # (nothing more runs)
    async with service(tmp_path, seed=True) as jobs:  # (done: not run again at a start after)
        await anyio.sleep(0.5)
    assert log.read_text().splitlines() == [f"there {dl / 'done' / 'show'}"]  # (once)


async def test_a_missing_program_leaves_the_job_as_it_was(tmp_path: Path) -> None:
    from tests.unit.jobs.test_jobs_features import seed_data, service, two_files
    from torrent_engine.jobs import JobState

    torrent = two_files("show")
    seed_data(tmp_path / "dl", torrent)
    async with service(tmp_path, seed=True) as jobs:
        await jobs.update_settings(run_on_completed=f"{tmp_path}/no-such-program %N",
                                   run_on_completed_enabled=True)
        job, _ = await jobs.add(torrent)
        with anyio.fail_after(20):
            while (last := jobs.get(job.id).last_program) is None:
                await anyio.sleep(0.05)
        assert last.exit_code is None and last.error is not None and "no-such-program" in last.error
        assert jobs.get(job.id).state is JobState.SEEDING and jobs.get(job.id).error is None
