"""A UDP tracker with nothing allowed outside the proxy: asked by the SOCKS5 proxy's UDP relay
when there is one, refused (and not tried again) through a proxy that carries no UDP, with the
reason in the tracker's error."""

from __future__ import annotations

import re

import pytest

from torrent_engine.errors import TrackerNotUsed
from torrent_engine.net.proxy import ProxyConfig
from torrent_engine.net.tracker import client
from torrent_engine.net.tracker.messages import AnnounceRequest
from torrent_engine.net.tracker.udp import UdpTrackerClient

pytestmark = pytest.mark.anyio

URL = "udp://127.0.0.2:6969/announce"
REQUEST = AnnounceRequest(info_hash=bytes(20), peer_id=bytes(20), port=0)


@pytest.mark.parametrize(("kind", "reason"), [
    ("socks4", "a SOCKS4 proxy carries no UDP (SOCKS5 alone does)"),
    ("http", "an HTTP proxy carries no UDP (SOCKS5 alone does)"),
])
async def test_a_proxy_without_udp_refuses_udp_trackers_saying_which(kind: str, reason: str) -> None:
    proxy = ProxyConfig(kind, "127.0.0.1", 1080, only=True)  # type: ignore[arg-type]
    for call in (client.announce(URL, REQUEST, timeout=5, proxy=proxy),
                 client.scrape(URL, [bytes(20)], timeout=5, proxy=proxy)):
        with pytest.raises(TrackerNotUsed, match=re.escape(f"only the proxy may be used, and {reason}")):
            await call


async def test_socks5_without_a_relay_at_hand_is_refused_too() -> None:
    proxy = ProxyConfig("socks5", "127.0.0.1", 1080, only=True)
    for udp in (None, UdpTrackerClient(), UdpTrackerClient(relay=lambda: None)):
        with pytest.raises(TrackerNotUsed, match="no UDP relay of it is open here"):
            await client.announce(URL, REQUEST, timeout=5, proxy=proxy, udp=udp)
