"""A job fetched by magnet from a libtorrent seeder on 127.0.0.1, with a file selection."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.interop.test_libtorrent_transfer import lt_add, lt_session, wait_lt
from torrent_engine.jobs import FINISHED_STATES, JobService, JobState

from .helpers import loopback_config, make_payload, make_torrent

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

FILES = (("a.bin", 700_001), ("b.bin", 300_000), ("sub/c.dat", 150_003))


async def test_magnet_job_from_libtorrent_with_a_file_selection(tmp_path: Path) -> None:
    lt = require_libtorrent()
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=32 * 1024)
    names = ["/".join(f.path) for f in torrent.files]
    wanted = [names.index("payload/a.bin"), names.index("payload/sub/c.dat")]
    with lt_session(lt) as ses:
        handle = lt_add(lt, ses, torrent, tmp_path / "seed")
        await wait_lt(handle, seeding=True)
        cfg = loopback_config(seed=False)
        async with JobService(cfg, download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
            magnet = f"magnet:?xt=urn:btih:{torrent.info_hash.hex()}&dn=payload"
            job, created = await jobs.add(magnet, files=wanted, peers=[("127.0.0.1", ses.listen_port())])
            assert created and job.state not in FINISHED_STATES
            with anyio.fail_after(90):
                while (job := jobs.get(job.id)).state not in FINISHED_STATES:
                    await anyio.sleep(0.05)
            assert job.state is JobState.COMPLETED, job.error
            assert job.name == "payload" and job.progress == 1.0
            selected = {f.path: f.selected for f in job.files}
            assert selected == {"payload/a.bin": True, "payload/b.bin": False, "payload/sub/c.dat": True}
            assert job.total_size == 700_001 + 150_003
    for rel in ("a.bin", "sub/c.dat"):
        got, sent = tmp_path / "dl" / "payload" / rel, tmp_path / "seed" / "payload" / rel
        assert got.read_bytes() == sent.read_bytes()
