"""The job service's IP filter keeper: the list file is read again when its time changes, looked
at once a minute at most; banned addresses apply with the filter off; the filter goes to the
shared resources."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from torrent_engine.jobs.tuning.blocklist import FILE_CHECK, Blocklist
from torrent_engine.jobs.tuning.settings import ServiceSettings
from torrent_engine.policy.ipfilter import IpFilter

pytestmark = pytest.mark.anyio


async def test_the_file_is_read_again_when_it_changes_at_most_once_a_minute(tmp_path: Path) -> None:
    path = tmp_path / "list.p2p"
    path.write_text("A:10.0.0.0-10.0.0.255\n")
    now = [1000.0]
    settings = ServiceSettings(ip_filter_enabled=True, ip_filter_path=str(path))
    applied: list[tuple[IpFilter, bool]] = []
    keeper = Blocklist(lambda: settings, lambda f, t: applied.append((f, t)), state_dir=None,
                       clock=lambda: now[0])
    await keeper.refresh()
    assert applied[-1][0].blocked("10.0.0.1") and not applied[-1][0].blocked("10.0.1.1")

    path.write_text("A:10.0.0.0-10.0.0.255\nB:10.0.1.0-10.0.1.255\n")
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    now[0] += FILE_CHECK / 2
    await keeper.refresh()
    assert not keeper.filter.blocked("10.0.1.1")  # (not looked at yet)
    now[0] += FILE_CHECK / 2
    await keeper.refresh()
    assert keeper.filter.blocked("10.0.1.1")
    assert keeper.status()["file"]["ranges"] == 1 and keeper.status()["file"]["rules"] == 2

    path.unlink()  # (gone: the list read last stays, the error is shown)
    now[0] += FILE_CHECK
    await keeper.refresh()
    assert keeper.filter.blocked("10.0.1.1") and "cannot be read" in keeper.status()["file"]["error"]


async def test_banned_addresses_apply_with_the_filter_off_trackers_with_it_on(tmp_path: Path) -> None:
    settings = ServiceSettings(banned_ips=("127.0.0.9", "::9"), ip_filter_trackers=True)
    applied: list[tuple[IpFilter, bool]] = []
    keeper = Blocklist(lambda: settings, lambda f, t: applied.append((f, t)), state_dir=None)
    await keeper.refresh()
    f, trackers = applied[-1]
    assert f.blocked("127.0.0.9") and f.blocked("::9") and not f.blocked("127.0.0.1")
    assert trackers is False  # (the switch counts while the filter is on)
    settings = dataclasses.replace(settings, ip_filter_enabled=True)
    await keeper.refresh()
    assert applied[-1][1] is True
