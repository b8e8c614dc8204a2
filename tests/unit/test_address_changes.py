"""Our external address as each source says it (``SharedResources.address_seen``): a source that
says another address than before makes every torrent reannounce, while
``Config.reannounce_when_address_changed`` is on; a first address, the same one again, or two
sources that differ for good (a gateway's WAN address behind a carrier's NAT, the public one the
DHT sees) are no change."""

from __future__ import annotations

from torrent_engine.config import Config
from torrent_engine.engine.shared import SharedResources


def _shared(on: bool) -> tuple[SharedResources, list[str]]:
    shared = SharedResources(Config(dht_enabled=False, lsd_enabled=False, port_mapping=False,
                                    reannounce_when_address_changed=on))
    heard: list[str] = []
    shared.watch_address(lambda: heard.append("dormant"))
    shared.watch_services(b"t" * 20, lambda: heard.append("session"))
    return shared, heard


def test_a_source_that_says_another_address_makes_every_torrent_reannounce() -> None:
    shared, heard = _shared(True)
    shared.address_seen("203.0.113.7", "gateway")  # (the first: the start)
    shared.address_seen("198.51.100.2", "dht")  # (another source's first: behind a carrier's NAT)
    shared.address_seen("203.0.113.7", "gateway")
    shared.address_seen("198.51.100.2", "dht")
    assert heard == [] and shared.address_changes == 0
    shared.address_seen("203.0.113.8", "gateway")
    assert heard == ["session", "dormant"] and shared.address_changes == 1
    shared.address_seen("198.51.100.3", "dht")
    assert shared.address_changes == 2 and len(heard) == 4


def test_off_nothing_is_announced_and_a_watcher_gone_hears_nothing() -> None:
    shared, heard = _shared(False)
    shared.address_seen("203.0.113.7", "gateway")
    shared.address_seen("203.0.113.8", "gateway")
    assert heard == [] and shared.address_changes == 0
    shared.config.reannounce_when_address_changed = True  # (read at each change)
    shared.unregister(b"t" * 20)
    shared.address_seen("203.0.113.9", "gateway")
    assert heard == ["dormant"]


def test_a_watcher_that_fails_does_not_keep_the_others_from_hearing() -> None:
    shared, heard = _shared(True)

    def broken() -> None:
        raise RuntimeError("gone")

    shared.unwatch_address(shared._address_watchers[0])
    shared.watch_address(broken)
    shared.watch_address(lambda: heard.append("after"))
    shared.address_seen("203.0.113.7", "gateway")
    shared.address_seen("203.0.113.8", "gateway")
    assert heard == ["session", "after"]
