"""The proxy settings applied to a running engine: under proxy only, another proxy restarts the
shared services, so that the DHT goes by the new proxy's UDP relay and not the old one's."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from torrent_engine import Config
from torrent_engine.jobs.tuning.proxy import apply_proxy
from torrent_engine.jobs.tuning.settings import ServiceSettings

pytestmark = pytest.mark.anyio


class Shared:
    def __init__(self) -> None:
        self.restarts = 0

    async def restart_services(self, *, same_port: bool = False) -> None:
        assert same_port  # (the port listened on kept: one taken at random too)
        self.restarts += 1


@pytest.mark.parametrize(("before", "after", "restarts"), [
    (("", False), ("socks5://127.0.0.1:1080", True), 1),  # proxy only turned on
    (("socks5://127.0.0.1:1080", True), ("socks5://127.0.0.1:1081", True), 1),  # another proxy, still only
    (("socks5://127.0.0.1:1080", False), ("socks5://127.0.0.1:1081", False), 0),  # (the DHT is not proxied)
    (("socks5://127.0.0.1:1080", True), ("socks5://127.0.0.1:1080", True), 0),
])
async def test_services_restart_when_what_they_go_by_changes(before: tuple[str, bool],
                                                             after: tuple[str, bool], restarts: int) -> None:
    shared = Shared()
    manager: Any = SimpleNamespace(config=Config(), shared=shared)
    await apply_proxy(manager, ServiceSettings(proxy_url=before[0], proxy_only=before[1]))
    shared.restarts = 0
    await apply_proxy(manager, ServiceSettings(proxy_url=after[0], proxy_only=after[1]))
    assert shared.restarts == restarts
