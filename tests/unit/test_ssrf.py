"""SSRF mitigation's rules (net/ssrf.py), pure: which tracker and web seed requests the engine
does not send, judged by the URL and the address its connection reached."""

from __future__ import annotations

import pytest

from torrent_engine.net.ssrf import is_local, tracker_hop_refused, tracker_url_refused, web_seed_hop_refused


@pytest.mark.parametrize(("url", "named"), [
    ("http://t.example/announce?info_hash=%00", "info_hash"),
    ("http://t.example/announce?passkey=1&PEER_ID=x&event=started", "event, peer_id"),
    ("http://127.0.0.1/announce?uploaded=&left=0", "left, uploaded"),
])
def test_a_tracker_url_whose_query_holds_announce_arguments_is_refused(url: str, named: str) -> None:
    why = tracker_url_refused(url)
    assert why is not None and why.startswith("SSRF mitigation") and f"({named})" in why


@pytest.mark.parametrize("url", [
    "http://t.example/announce", "https://t.example/abc123/announce?passkey=abc123",
    "http://t.example/announce.php?uk=1&info=2", "http://[::1/announce",  # (malformed: its client says)
])
def test_other_tracker_urls_pass(url: str) -> None:
    assert tracker_url_refused(url) is None


@pytest.mark.parametrize(("url", "address", "scrape"), [
    ("http://127.0.0.1:8080/announce", "127.0.0.1", False),
    ("http://tracker.lan/announce.php?passkey=1", "127.0.0.2", False),
    ("http://127.0.0.1/announce/secret", "127.0.0.1", False),
    ("http://127.0.0.1/scrape", "127.0.0.1", True),
    ("http://[::1]:9/scrape.php", "::1", True),
    ("http://t.example/api/v2/auth/logout", "93.184.216.34", False),  # (not this host: any path)
    ("http://10.0.0.5/admin", "10.0.0.5", False),  # (trackers are judged on loopback alone)
])
def test_a_tracker_request_passes(url: str, address: str, scrape: bool) -> None:
    assert tracker_hop_refused(url, address, scrape=scrape) is None


@pytest.mark.parametrize(("url", "address", "scrape"), [
    ("http://127.0.0.1:8080/api/v2/torrents/delete?hashes=all", "127.0.0.1", False),
    ("http://t.example/x/announce", "127.0.0.1", False),  # (a name that resolved to loopback)
    ("http://t.example/admin", "::1", False),
    ("http://t.example/admin", "::ffff:127.0.0.1", False),  # (IPv4-mapped)
    ("http://t.example/admin", "0.0.0.0", False),  # (reaches this host on most systems)
    ("http://127.0.0.1/announce", "127.0.0.1", True),  # (a scrape goes below /scrape)
    ("http://127.0.0.1/scrape", "127.0.0.1", False),
    ("http://localhost:9091/transmission/rpc", None, False),  # (through a proxy: the URL's host)
    ("http://app.localhost/admin", None, False),
    ("http://[::1]:80/", None, False),
])
def test_a_tracker_request_to_this_host_elsewhere_than_its_path_is_refused(
        url: str, address: str | None, scrape: bool) -> None:
    why = tracker_hop_refused(url, address, scrape=scrape)
    assert why is not None and why.startswith("SSRF mitigation")
    assert ("/scrape" if scrape else "/announce") in why


def test_through_a_proxy_a_named_host_is_not_judged_as_this_host() -> None:
    assert tracker_hop_refused("http://t.example/admin", None) is None


@pytest.mark.parametrize(("host", "local"), [
    ("127.0.0.1", True), ("::1", True), ("10.1.2.3", True), ("172.16.0.1", True), ("192.168.1.1", True),
    ("169.254.1.1", True), ("fe80::1", True), ("fd00::1", True), ("::ffff:192.168.0.1", True),
    ("localhost", True), ("0.0.0.0", True),
    ("93.184.216.34", False), ("8.8.8.8", False), ("2001:4860::1", False), ("mirror.example", False),
])
def test_local_addresses(host: str, local: bool) -> None:
    assert is_local(host) is local


@pytest.mark.parametrize(("url", "address", "from_global", "refused"), [
    ("http://192.168.1.2/files/a.iso?token=1", "192.168.1.2", False, "may not have a query string"),
    ("http://mirror.example/a.iso?x", "127.0.0.1", False, "may not have a query string"),
    ("http://192.168.1.2/files/a.iso", "192.168.1.2", True, "redirected to the local network"),
    ("http://10.0.0.1/a.iso", None, True, "redirected to the local network"),
    ("http://192.168.1.2/files/a.iso", "192.168.1.2", False, None),
    ("http://mirror.example/a.iso?token=1", "93.184.216.34", False, None),
    ("http://mirror.example/a.iso?token=1", "93.184.216.34", True, None),
    ("http://mirror.example/a.iso?token=1", None, False, None),  # (a proxy's: the name is judged)
])
def test_web_seed_requests(url: str, address: str | None, from_global: bool, refused: str | None) -> None:
    why = web_seed_hop_refused(url, address, redirected_from_global=from_global)
    if refused is None:
        assert why is None
    else:
        assert why is not None and why.startswith("SSRF mitigation") and refused in why
