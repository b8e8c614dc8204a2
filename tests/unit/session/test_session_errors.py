"""A failure inside a running session ends it with a typed error naming what failed, published
as an event; never as an 'internal error' with a traceback, however deep in its task groups the
error was raised."""

from __future__ import annotations

import errno
import hashlib
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config
from torrent_engine import events as ev
from torrent_engine.errors import MetainfoError, SessionError, StorageError, typed_failure
from torrent_engine.formats.bencode import encode
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session
from torrent_engine.session.state_table import State

DATA = b"x" * 1000


def _too_deep() -> bytes:
    """A torrent whose file path is longer than the file system allows (20 folders of 240 bytes:
    each name is legal, the whole path is not)."""
    info = {b"name": b"t", b"piece length": 16384, b"pieces": hashlib.sha1(DATA).digest(),
            b"files": [{b"length": len(DATA), b"path": [b"d" * 240] * 20 + [b"f"]}]}
    return encode({b"info": info})


def test_typed_failure_looks_inside_exception_groups() -> None:
    oserror = OSError(errno.ENAMETOOLONG, "File name too long", "/x/y")
    found = typed_failure(ExceptionGroup("g", [ExceptionGroup("h", [oserror])]))
    assert isinstance(found, StorageError) and str(found) == "File name too long: /x/y"
    assert isinstance(typed_failure(OSError(errno.ECONNRESET, "reset")), SessionError)
    metainfo = MetainfoError("bad", "info")
    assert typed_failure(ExceptionGroup("g", [metainfo, oserror])) is metainfo
    assert typed_failure(ExceptionGroup("g", [ValueError("bug"), metainfo])) is None  # the bug shows
    assert typed_failure(ExceptionGroup("g", [ValueError("bug")])) is None
    assert typed_failure(KeyError("bug")) is None


@pytest.mark.anyio
async def test_a_path_too_long_for_the_file_system_ends_the_session_typed(tmp_path: Path) -> None:
    torrent = Torrent.from_bytes(_too_deep())
    seen: list[ev.Event] = []
    async with Session(torrent, tmp_path, config=loopback_config()) as session:
        session.events.subscribe("session.error", seen.append)
        with anyio.fail_after(20):
            await session.wait_ready()
        await anyio.sleep(0.05)  # event delivery is on the next loop tick
        error = session.status().error
    assert "File name too long" in error and "dddd/f (while " in error
    assert "internal error" not in error
    assert [e.name for e in seen] == ["session.error"]


def test_the_cli_shows_it_as_one_line(tmp_path: Path) -> None:
    (tmp_path / "deep.torrent").write_bytes(_too_deep())
    result = subprocess.run(
        [sys.executable, "-m", "torrent_engine", "download", str(tmp_path / "deep.torrent"), "-o",
         str(tmp_path / "out"), "--listen-host", "127.0.0.1", "--no-dht", "--no-port-mapping", "--no-lsd",
         "--no-trackers", "--no-state"],
        capture_output=True, timeout=120)
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "File name too long" in err and "Traceback" not in err and "internal error" not in err


@pytest.mark.anyio
async def test_a_failed_task_of_a_standalone_session_surfaces_and_leaves_no_scope_open(
        tmp_path: Path) -> None:
    """A task of the session's own groups fails: the caller's task is cancelled, and leaving the
    ``async with`` still closes the groups the session entered on it, raising what failed (not a
    cancel-scope mismatch from the caller's enclosing scope)."""
    info = {b"name": b"t", b"piece length": 16384, b"length": len(DATA),
            b"pieces": hashlib.sha1(DATA).digest()}
    torrent = Torrent.from_bytes(encode({b"info": info}))

    async def fail() -> None:
        raise RuntimeError("a task of the session failed")

    with pytest.raises(BaseExceptionGroup) as caught:
        async with anyio.create_task_group():  # a scope of the caller's, outside the session's
            async with Session(torrent, tmp_path, config=loopback_config()) as session:
                shared = session.shared
                assert shared is not None and shared._tg is not None
                shared._tg.start_soon(fail)
                await anyio.sleep(30)
    failed = caught.value.subgroup(lambda e: isinstance(e, RuntimeError))
    assert failed is not None
    assert [str(e) for e in _leaves(failed)] == ["a task of the session failed"]
    assert session.state is State.STOPPED
    with anyio.CancelScope():  # this task's scopes are in order again
        await anyio.sleep(0)


def _leaves(group: BaseException) -> list[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        return [leaf for e in group.exceptions for leaf in _leaves(e)]
    return [group]
