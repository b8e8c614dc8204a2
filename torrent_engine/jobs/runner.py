"""Runs the programs of intake/autorun.py: a thin async shell over one child process per run. Each run
is a task of the job service's task group (stopping the service kills what still runs), a few
at a time; its process gets a session (a process group) of its own, killed whole at the time
limit. What a run did is logged and kept as the job's last run; a program that fails, hangs or
is missing never changes the job."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

import anyio
import anyio.abc

from .. import __version__
from ..formats.metainfo import Torrent
from .model import Job
from .tuning.autorun import OutputTail, ProgramEvent, ProgramRun, build_argv, build_env, job_context

log = logging.getLogger(__name__)

MAX_RUNNING = 4  # programs running at once; the others wait for a place
MAX_WAITING = 256  # runs waiting for a place; more are dropped, with a warning
EXIT_GRACE = 1.0  # seconds to read what is left once the program exited (a child may hold its output)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def run_program(event: ProgramEvent, argv: Sequence[str], env: Mapping[str, str], timeout: float,
                      *, clock: Callable[[], float] = time.time) -> ProgramRun:
    """Run ``argv`` (no shell) with ``env`` and at most ``timeout`` seconds, stdin closed, its
    stdout and stderr read together (the tail kept); what it did."""
    started, t0 = clock(), time.monotonic()
    try:
        process = await anyio.open_process(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, env=dict(env), start_new_session=True)
    except OSError as exc:
        return ProgramRun(event, tuple(argv), started, time.monotonic() - t0, None,
                          error=f"cannot start {argv[0]!r}: {exc.strerror or exc}")
    tail = OutputTail()
    timed_out = False
    try:
        async with process:
            with anyio.move_on_after(timeout) as limit:
                async with anyio.create_task_group() as tg:
                    async def read() -> None:
                        assert process.stdout is not None
                        async for chunk in process.stdout:
                            tail.feed(chunk)
                        tg.cancel_scope.cancel()  # (its output closed: nothing left to read)

                    async def wait() -> None:
                        await process.wait()
                        # (what a child it left behind still writes is not ours)
                        await anyio.sleep(EXIT_GRACE)
                        tg.cancel_scope.cancel()

                    tg.start_soon(read)
                    tg.start_soon(wait)
            if limit.cancelled_caught and process.returncode is None:
                timed_out = True
                _kill_group(process.pid)
                with anyio.CancelScope(shield=True):
                    await process.wait()
    except BaseException:  # (the service stops: the program goes with it)
        if process.returncode is None:
            _kill_group(process.pid)
            with anyio.CancelScope(shield=True):
                await process.wait()
        raise
    code = None if timed_out else process.returncode
    return ProgramRun(event, tuple(argv), started, time.monotonic() - t0, code, timed_out=timed_out,
                      output=tail.text())


class ProgramRunner:
    """The runs of one job service: a few at once, in its task group; each job's last run kept."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._places = anyio.CapacityLimiter(MAX_RUNNING)
        self._waiting = 0
        self.last: dict[str, ProgramRun] = {}  # job id -> the last run of a program for it

    def run_for(self, tg: anyio.abc.TaskGroup, event: ProgramEvent, command: str, job: Job,
                torrent: Torrent | None, timeout: float) -> None:
        """Run ``command`` (checked when it was set) for ``job``: its arguments and environment
        made from the job as it is now."""
        context = job_context(job, torrent)
        env = build_env(context, os.environ, app_version=__version__, now=self._clock())
        self.start(tg, job.id, event, build_argv(command, context), env, timeout)

    def start(self, tg: anyio.abc.TaskGroup, job_id: str, event: ProgramEvent, argv: Sequence[str],
              env: Mapping[str, str], timeout: float) -> None:
        """Run the program in ``tg`` (the service's): it waits for a place among ``MAX_RUNNING``."""
        if self._waiting >= MAX_WAITING:
            log.warning("job %s: %s program not run: %d runs wait already", job_id, event.value,
                        self._waiting)
            return
        self._waiting += 1
        tg.start_soon(self._run, job_id, event, tuple(argv), dict(env), timeout)

    async def _run(self, job_id: str, event: ProgramEvent, argv: tuple[str, ...], env: dict[str, str],
                   timeout: float) -> None:
        placed = False
        try:
            async with self._places:
                self._waiting -= 1
                placed = True
                run = await run_program(event, argv, env, timeout, clock=self._clock)
        finally:
            if not placed:  # (cancelled while waiting: the service stops)
                self._waiting -= 1
        self.last[job_id] = run
        if run.ok:
            log.info("job %s: %s program %s exited 0", job_id, event.value, argv[0])
        elif run.timed_out:
            log.warning("job %s: %s program %s killed after %.0f s (its time limit); output: %s",
                        job_id, event.value, argv[0], timeout, run.output[-500:])
        elif run.error is not None:
            log.warning("job %s: %s program: %s", job_id, event.value, run.error)
        else:
            log.warning("job %s: %s program %s exited %s; output: %s", job_id, event.value, argv[0],
                        run.exit_code, run.output[-500:])

    def forget(self, job_id: str) -> None:
        """Forget the job's last run (the job left the history)."""
        self.last.pop(job_id, None)
