"""Bandwidth groups against two libtorrent seeders: two torrents, each from its own seeder, in two
groups of weights 3 and 1, under a global download limit that both want more than: over a
steady window the download rates share the limit 3:1 (within 10 %)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.integration.helpers import loopback_config, make_payload, make_torrent
from tests.interop.test_libtorrent_transfer import lt_add, lt_session
from torrent_engine.jobs import JobService
from torrent_engine.session import Session

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

MIB = 1024 * 1024
LIMIT = 2 * MIB  # the global download limit, bytes/s
WEIGHTS = {"heavy": 3, "light": 1}
SIZES = {"heavy": 32 * MIB, "light": 16 * MIB}  # (neither finishes within the test at its share)
WARM_UP = 3.0  # seconds after both receive before the window opens (TCP, the first shares)
WINDOW = 8.0  # seconds the rates are measured over


async def measure_shares(tmp_path: Path, limits: dict[str, int] | None = None,
                         sizes: dict[str, int] = SIZES) -> dict[str, float]:
    """Each group's download rate (bytes/s) over the steady window (``limits``: groups' own
    download limits; ``sizes``: each group's torrent's, large enough to last the test)."""
    lt = require_libtorrent()
    root, state = tmp_path / "dl", tmp_path / "state"
    torrents = {name: make_torrent(make_payload(tmp_path / f"seed-{name}", (("data.bin", size),),
                                                seed=len(name)), piece_length=256 * 1024, version="v1")
                for name, size in sizes.items()}
    with ExitStack() as stack:
        seeders = {name: stack.enter_context(lt_session(lt)) for name in sizes}
        handles = {name: lt_add(lt, seeders[name], t, tmp_path / f"seed-{name}")
                   for name, t in torrents.items()}
        with anyio.fail_after(30):
            while not all(h.status().is_seeding for h in handles.values()):
                await anyio.sleep(0.05)
        async with JobService(loopback_config(state_dir=state), download_root=root, state_dir=state) as jobs:
            await jobs.update_settings(download_limit=LIMIT)
            sessions: dict[str, Session] = {}
            for name, weight in WEIGHTS.items():
                own = (limits or {}).get(name, 0)
                await jobs.create_bandwidth_group(name, weight=weight, download_limit=own)
                job, _ = await jobs.add(torrents[name].to_bytes(), save_path=name,
                                        peers=[("127.0.0.1", seeders[name].listen_port())])
                await jobs.set_job_group(job.id, name)
                with anyio.fail_after(10):
                    while (session := jobs.manager.get(job.info_hash)) is None:
                        await anyio.sleep(0.01)
                sessions[name] = session
            with anyio.fail_after(20):
                while not all(s.status().downloaded > 0 for s in sessions.values()):
                    await anyio.sleep(0.05)
            await anyio.sleep(WARM_UP)
            assert {s.bandwidth_group for s in sessions.values()} == set(WEIGHTS)
            before = {name: s.status().downloaded for name, s in sessions.items()}
            began = time.monotonic()
            await anyio.sleep(WINDOW)
            after = {name: s.status().downloaded for name, s in sessions.items()}
            seconds = time.monotonic() - began
            for name, s in sessions.items():
                assert s.status().progress < 1.0, f"{name} finished inside the window: too small"
    return {name: (after[name] - before[name]) / seconds for name in WEIGHTS}


async def test_two_groups_share_the_global_limit_by_weight(tmp_path: Path) -> None:
    rates = await measure_shares(tmp_path)
    ratio = rates["heavy"] / rates["light"]
    total = sum(rates.values())
    measured = (f"heavy {rates['heavy'] / MIB:.4f} MiB/s, light {rates['light'] / MIB:.4f} MiB/s: "
                f"ratio {ratio:.3f} (weights 3:1), total {total / MIB:.4f} MiB/s of {LIMIT / MIB:g}")
    print(measured)
    assert 3 * 0.9 <= ratio <= 3 * 1.1, measured
    assert total <= LIMIT * 1.1, measured  # (the global limit holds)


async def test_a_group_that_wants_less_leaves_the_rest_to_the_other(tmp_path: Path) -> None:
    """The heavier group's own limit is below its share: the lighter one takes the rest."""
    own = LIMIT // 4
    rates = await measure_shares(tmp_path, {"heavy": own}, {"heavy": 16 * MIB, "light": 32 * MIB})
    measured = (f"heavy (own limit {own / MIB:g} MiB/s) {rates['heavy'] / MIB:.4f} MiB/s, "
                f"light {rates['light'] / MIB:.4f} MiB/s, total {sum(rates.values()) / MIB:.4f} MiB/s "
                f"of {LIMIT / MIB:g}")
    print(measured)
    assert rates["heavy"] <= own * 1.1, measured
    assert rates["light"] >= (LIMIT - own) * 0.9, measured
