"""Seed mode with a libtorrent leecher: a job added as complete (a cross-seed) serves libtorrent
every piece, verifying each as it is first asked for; one whose data is wrong in a piece never
sends that piece (libtorrent sees no hash failure from us, so it never bans us), and the job
checks its whole data, then downloads what failed."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from tests.interop.test_libtorrent_transfer import lt_add, lt_session, wait_lt
from torrent_engine.events import Event
from torrent_engine.jobs import JobService, JobState, JobStateChanged

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

PL = 64 * 1024
FILES = (("a.bin", 1_000_003), ("b.bin", 300_001))
BAD = 5  # a piece inside a.bin


async def test_libtorrent_downloads_everything_from_a_seed_mode_job(tmp_path: Path) -> None:
    lt = require_libtorrent()
    root, state = tmp_path / "dl", tmp_path / "state"
    torrent = make_torrent(make_payload(root / "x", FILES), piece_length=PL)
    async with JobService(loopback_config(state_dir=state), download_root=root, state_dir=state) as jobs:
        job, _ = await jobs.add(torrent.to_bytes(), save_path="x", seed_mode=True)
        with anyio.fail_after(10):
            while (job := jobs.get(job.id)).state is not JobState.SEEDING:
                await anyio.sleep(0.01)
        assert job.seed_mode and job.verified_pieces is None  # (dormant: no session until a peer asks)
        with lt_session(lt) as ses:
            handle = lt_add(lt, ses, torrent, tmp_path / "lt")
            await wait_lt(handle, seeding=False, peer=("127.0.0.1", jobs.stats().listen_port))
        job = jobs.get(job.id)
        assert job.state is JobState.SEEDING and job.seed_mode
        assert job.verified_pieces == job.num_pieces == torrent.num_pieces  # each verified as it was served
    assert same_files(torrent, root / "x", tmp_path / "lt") == []


async def test_a_seed_mode_job_never_sends_a_piece_that_fails_and_checks_its_data(tmp_path: Path) -> None:
    lt = require_libtorrent()
    root, state = tmp_path / "dl", tmp_path / "state"
    payload = make_payload(root / "x", FILES)
    torrent = make_torrent(payload, piece_length=PL)
    with (payload / "a.bin").open("r+b") as f:  # the data on disk is wrong in one piece
        f.seek(BAD * PL + 100)
        f.write(b"\xa5" * 1000)
    async with JobService(loopback_config(state_dir=state), download_root=root, state_dir=state) as jobs:
        states: list[JobState] = []

        def note(event: Event) -> None:
            if isinstance(event, JobStateChanged):
                states.append(event.new)

        jobs.events.subscribe("job.state", note)
        job, _ = await jobs.add(torrent.to_bytes(), save_path="x", seed_mode=True)
        with anyio.fail_after(10):
            while (job := jobs.get(job.id)).state is not JobState.SEEDING:
                await anyio.sleep(0.01)
        port = jobs.stats().listen_port
        with lt_session(lt) as ses:
            ses.apply_settings({"alert_mask": lt.alert.category_t.all_categories})
            handle = lt_add(lt, ses, torrent, tmp_path / "lt")
            handle.connect_peer(("127.0.0.1", port))
            hash_failures: list[int] = []

            def alerts() -> None:
                for alert in ses.pop_alerts():
                    if isinstance(alert, lt.hash_failed_alert):
                        hash_failures.append(alert.piece_index)

            with anyio.fail_after(60):  # it asks for the bad piece sooner or later: we check our data
                while (job := jobs.get(job.id)).state is not JobState.DOWNLOADING \
                        or JobState.DOWNLOADING not in states:  # (its event comes on the loop's next turn)
                    alerts()
                    await anyio.sleep(0.05)
            assert JobState.CHECKING in states
            assert states.index(JobState.CHECKING) < states.index(JobState.DOWNLOADING)
            assert not job.seed_mode and not job.options.seed_mode
            assert job.progress < 1.0 and job.verified_pieces == torrent.num_pieces - 1
            with anyio.fail_after(60):  # every other piece still comes from us (dialed again if need be)
                while handle.status().num_pieces < torrent.num_pieces - 1:
                    alerts()
                    if not handle.status().num_peers:
                        handle.connect_peer(("127.0.0.1", port))
                    await anyio.sleep(0.1)
            await anyio.sleep(0.5)  # (a bad piece on its way would be hashed by now)
            alerts()
            st = handle.status()
            assert hash_failures == []  # nothing we sent failed its hash
            assert st.num_pieces == torrent.num_pieces - 1 and not st.pieces[BAD]
        assert jobs.get(job.id).state is JobState.DOWNLOADING
