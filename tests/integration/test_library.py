"""The library as its users call it: the README's example (run, and type-checked with mypy
--strict), typed events, download()'s progress and timeout, and the sync facade."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import torrent_engine as te
from torrent_engine.session import Session

from .helpers import loopback_config, make_payload, make_torrent, same_files

REPO = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    library = text[text.index("## Library"):]
    match = re.search(r"```python\n(.*?)```", library, re.S)
    assert match is not None, "the README's Library section has no python example"
    return match.group(1)


def test_the_readme_example_runs_and_type_checks(tmp_path: Path) -> None:
    example = tmp_path / "example.py"
    example.write_text(readme_example())
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    run = subprocess.run([sys.executable, str(example)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=180, env=env)
    assert run.returncode == 0, run.stderr
    assert "piece 0" in run.stdout and "1.0" in run.stdout and "MB/s" in run.stdout
    assert (tmp_path / "copy" / "shared" / "hello.txt").read_text() == "hello, swarm\n" * 10_000
    checked = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(example)],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_events_by_class_and_unknown_names_refused() -> None:
    bus = te.EventBus()
    seen: list[int] = []

    def on_piece(event: te.PieceCompleted) -> None:
        seen.append(event.index)

    bus.subscribe(te.PieceCompleted, on_piece)
    bus.subscribe("piece.completed", lambda event: seen.append(-1))
    bus.publish(te.PieceCompleted(index=7))
    bus.publish(te.PieceHashFailed(index=8))
    assert seen == [7, -1]
    with pytest.raises(te.UnknownEventError, match="no event is named 'piece.complete'"):
        bus.subscribe("piece.complete", print)
    with pytest.raises(te.UnknownEventError):
        bus.subscribe(int, print)  # type: ignore[call-overload]


def test_download_reports_progress_and_times_out_with_a_named_error(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    seen: list[float] = []
    with pytest.raises(te.DownloadTimeout, match=r"payload was not complete after 1 s \(0.0%"):
        te.download(torrent, tmp_path / "dl", config=loopback_config(), timeout=1.0,
                    progress=lambda status: seen.append(status.progress))
    assert seen and seen[0] == 0.0
    assert issubclass(te.DownloadTimeout, TimeoutError)


def test_background_download_from_any_thread(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    with te.BackgroundDownload(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        assert seeder.wait(30)  # it has the data
        port = seeder.status().listen_port
        leecher = te.BackgroundDownload(torrent, tmp_path / "dl", config=loopback_config(),
                                        peers=(("127.0.0.1", port),))
        try:
            leecher.pause()
            assert leecher.status().state == "paused"
            leecher.resume()
            leecher.wait_completed(60)
            assert leecher.status().progress == 1.0
        finally:
            leecher.close()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "dl") == []
    with te.BackgroundDownload(torrent, tmp_path / "gone", config=loopback_config()) as nobody:
        assert nobody.wait(0.5) is False
        with pytest.raises(te.DownloadTimeout):
            nobody.wait_completed(0.5)
        nobody.cancel(delete_files=True)
    assert not (tmp_path / "gone" / "payload").exists()


@pytest.mark.anyio
async def test_session_events_are_the_exported_classes(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    got: list[te.SessionStarted] = []
    seeder = Session(torrent, tmp_path / "seed", config=loopback_config())
    seeder.events.subscribe(te.SessionStarted, got.append)
    async with seeder:
        await seeder.wait_ready()
        await anyio.sleep(0.1)
    assert len(got) == 1 and isinstance(got[0], te.SessionStarted)
    assert got[0].info_hash == torrent.info_hash.hex()


def test_download_progress_ends_with_the_completed_status(tmp_path: Path) -> None:
    """The README's example: ``progress`` hears 100 % once the download is complete."""
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    seen: list[float] = []
    with te.BackgroundDownload(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        assert seeder.wait(30)
        port = seeder.status().listen_port
        te.download(torrent, tmp_path / "dl", config=loopback_config(), peers=(("127.0.0.1", port),),
                    progress=lambda status: seen.append(status.progress), timeout=60)
    assert seen and seen[-1] == 1.0


def test_a_download_under_a_plain_asyncio_loop(tmp_path: Path) -> None:
    """An application on its own asyncio loop (``asyncio.run``, ``uvicorn app:app``), not anyio's
    runner: peers' bytes arrive in protocol callbacks, where anyio found no loop
    (``NoEventLoopError`` at the first piece) and the download failed."""
    import asyncio

    payload = make_payload(tmp_path / "seed", [("a.bin", 600_000), ("b.bin", 70_000)])
    torrent = make_torrent(payload, piece_length=32 * 1024)

    async def main() -> None:
        async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
            await seeder.wait_ready()
            async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                               peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
                await asyncio.wait_for(leecher.wait_completed(), 60)

    asyncio.run(main())
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
