"""A leecher killed with SIGKILL mid-download: its resume data never claims an unverified piece."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from torrent_engine.session import Session
from torrent_engine.storage import Storage
from torrent_engine.storage.resume import load_resume
from torrent_engine.storage.verify import piece_ok

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio

LEECHER = textwrap.dedent("""
    import sys
    import anyio
    from torrent_engine.config import Config
    from torrent_engine.formats.metainfo import Torrent
    from torrent_engine.session import Session
    from pathlib import Path

    torrent_file, dest, resume, port = sys.argv[1:5]

    async def main():
        cfg = Config(listen_host="127.0.0.1", tracker_enabled=False,
                     dht_enabled=False, port_mapping=False, lsd_enabled=False, resume_save_interval=0.2,
                     stats_interval=0.1)
        async with Session(Torrent.load(torrent_file), dest, config=cfg, resume_path=Path(resume),
                           peers=[("127.0.0.1", int(port))]) as s:
            await s.wait_completed()

    anyio.run(main)
""")


@pytest.mark.slow
async def test_sigkill_mid_download_then_restart(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", [("big.bin", 3_000_000), ("x.txt", 5)]),
                           piece_length=16 * 1024)
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    resume_path = tmp_path / "state" / "t.resume"
    slow = loopback_config(upload_rate_limit=500_000)
    async with Session(torrent, tmp_path / "seed", config=slow) as seeder:
        await seeder.wait_ready()
        proc = subprocess.Popen([sys.executable, "-c", LEECHER, str(torrent_file), str(tmp_path / "leech"),
                                 str(resume_path), str(seeder.listen_port)])
        try:
            with anyio.fail_after(60):
                while True:  # wait for a resume file that already holds some pieces
                    data = load_resume(resume_path)
                    if data is not None and 5 < len(data.pieces()) < torrent.num_pieces // 2:
                        break
                    await anyio.sleep(0.05)
            proc.send_signal(signal.SIGKILL)  # no shutdown code runs: a crash
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        saved = load_resume(resume_path)
        assert saved is not None and 0 < len(saved.pieces()) < torrent.num_pieces
        # every piece the resume data claims is really on disk and verifies
        storage = Storage(torrent, tmp_path / "leech")
        try:
            for index in saved.pieces():
                assert piece_ok(torrent, index, await storage.read_piece(index)), index
        finally:
            await storage.close()
        # restart from the same state: files were written after the last save -> recheck; done
        async with Session(torrent, tmp_path / "leech", config=loopback_config(), resume_path=resume_path,
                           peers=[("127.0.0.1", seeder.listen_port)]) as again:
            await again.wait_ready()
            # (trusted only if no file changed after the last save, which the kill makes unlikely)
            assert again.rechecked or set(again.have) == saved.pieces()
            assert len(again.have) >= len(saved.pieces())
            with anyio.fail_after(60):
                await again.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
