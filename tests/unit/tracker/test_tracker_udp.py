"""UDP tracker client (BEP 15) against an in-test tracker on the loopback: connect/announce/
scrape, BEP 41 URL data, retransmission, connection-id reuse and expiry, junk replies,
error replies, overall timeout, a closed port, IPv6."""

from __future__ import annotations

import socket
import struct

import anyio
import pytest

from tests.unit.clock import FakeClock
from tests.unit.tracker._tracker_servers import UdpTracker, udp_tracker
from torrent_engine.errors import TrackerError, TrackerRefused
from torrent_engine.net.tracker.messages import AnnounceRequest
from torrent_engine.net.tracker.udp import ConnectionIds, UdpTrackerClient

pytestmark = pytest.mark.anyio

REQUEST = AnnounceRequest(
    info_hash=b"i" * 20, peer_id=b"-TE0100-" + b"p" * 12, port=6881, left=5, event="started"
)
PEERS = [("10.0.0.1", 6881), ("10.0.0.2", 6882)]


async def test_connect_then_announce_with_url_data() -> None:
    async with udp_tracker(UdpTracker(peers=PEERS)) as tracker:
        client = UdpTrackerClient()
        response = await client.announce(f"udp://127.0.0.1:{tracker.port}/announce?key=1", REQUEST, timeout=5)
    assert response.peers == PEERS
    assert (response.interval, response.leechers, response.seeders) == (1800, 2, 3)
    assert tracker.connects == 1
    assert tracker.announces == [(REQUEST.peer_id, 2, b"/announce?key=1")]


async def test_retransmits_lost_packets_on_the_bep15_schedule() -> None:
    # the first connect and the first announce are lost
    async with udp_tracker(UdpTracker(peers=PEERS, drop=1)) as tracker:
        client = UdpTrackerClient(retransmit_base=0.05)
        response = await client.announce(f"udp://127.0.0.1:{tracker.port}", REQUEST, timeout=5)
        assert response.peers == PEERS
        assert len(tracker.received) == 3  # connect, connect again, announce
        tracker.drop = 2
        client.forget(f"udp://127.0.0.1:{tracker.port}")
        await client.announce(f"udp://127.0.0.1:{tracker.port}", REQUEST, timeout=5)
        assert len(tracker.received) == 3 + 4
        assert tracker.received[3] == tracker.received[4]  # a resend is the same packet


async def test_connection_id_is_reused_for_one_minute() -> None:
    clock = FakeClock(1000.0)
    async with udp_tracker(UdpTracker(peers=PEERS)) as tracker:
        client = UdpTrackerClient(clock=clock)
        url = f"udp://127.0.0.1:{tracker.port}/announce"
        await client.announce(url, REQUEST, timeout=5)
        clock.now += 30
        await client.announce(url, REQUEST, timeout=5)
        await client.scrape(url, [b"i" * 20], timeout=5)
        assert tracker.connects == 1 and client.connects_sent == 1
        clock.now += 31  # 61 s after the connect: the id has expired
        await client.announce(url, REQUEST, timeout=5)
        assert tracker.connects == 2
        announce_ids = [struct.unpack_from(">Q", p)[0] for p in tracker.received if p[8:12] == b"\0\0\0\1"]
        assert announce_ids[0] == announce_ids[1] != announce_ids[2]


async def test_connection_id_rejected_early_reconnects_once() -> None:
    async with udp_tracker(UdpTracker(peers=PEERS)) as tracker:
        client = UdpTrackerClient()
        url = f"udp://127.0.0.1:{tracker.port}"
        await client.announce(url, REQUEST, timeout=5)
        tracker.reject_ids.add(tracker.next_connection_id)
        response = await client.announce(url, REQUEST, timeout=5)
    assert response.peers == PEERS and tracker.connects == 2


async def with_a_kept_id(tracker: UdpTracker) -> tuple[ConnectionIds, str]:
    """Ids shared by clients, holding one of ``tracker``'s after an announce; its URL."""
    ids, url = ConnectionIds(), f"udp://127.0.0.1:{tracker.port}"
    await UdpTrackerClient(ids=ids).announce(url, REQUEST, timeout=5)
    return ids, url


async def test_an_error_reply_not_about_the_id_neither_drops_it_nor_connects_again() -> None:
    # A tracker refusing one torrent ("unregistered") used to cost a connect and a second
    # announce each time, and the id every other torrent of the engine shared with it.
    async with udp_tracker(UdpTracker(peers=PEERS)) as tracker:
        ids, url = await with_a_kept_id(tracker)
        tracker.error = b"torrent not registered"
        with pytest.raises(TrackerRefused, match="not registered"):
            await UdpTrackerClient(ids=ids).announce(url, REQUEST, timeout=5)
        assert (tracker.connects, len(tracker.announces)) == (1, 2)
        assert ids.valid(("127.0.0.1", tracker.port)) == tracker.next_connection_id
        tracker.error = None
        await UdpTrackerClient(ids=ids).announce(url, REQUEST, timeout=5)
        assert tracker.connects == 1


async def test_a_kept_id_unanswered_for_the_first_interval_is_dropped_for_a_connect() -> None:
    # A tracker that restarted forgot the id and answers nothing sent with it: resending it
    # (15, 30, 60 s ...) failed every announce of the torrents sharing it until its minute ended.
    async with udp_tracker(UdpTracker(peers=PEERS)) as tracker:
        ids, url = await with_a_kept_id(tracker)
        tracker.ignore_ids.add(tracker.next_connection_id)
        with anyio.fail_after(3):
            response = await UdpTrackerClient(ids=ids, retransmit_base=0.2).announce(url, REQUEST, timeout=5)
        assert response.peers == PEERS
        assert (tracker.connects, len(tracker.announces)) == (2, 2)  # (the unanswered one not counted)
        assert ids.valid(("127.0.0.1", tracker.port)) == tracker.next_connection_id


async def test_a_kept_id_unanswered_until_the_timeout_is_dropped_and_the_next_announce_connects() -> None:
    # (the engine's announce timeout is BEP 15's first interval: the timeout ends the exchange)
    async with udp_tracker(UdpTracker(peers=PEERS)) as tracker:
        ids, url = await with_a_kept_id(tracker)
        tracker.ignore_ids.add(tracker.next_connection_id)
        with pytest.raises(TrackerError, match="no answer"):
            await UdpTrackerClient(ids=ids, retransmit_base=0.5).announce(url, REQUEST, timeout=0.3)
        assert ids.valid(("127.0.0.1", tracker.port)) is None
        response = await UdpTrackerClient(ids=ids).announce(url, REQUEST, timeout=5)
        assert response.peers == PEERS and tracker.connects == 2


async def test_clients_sharing_ids_connect_once_for_announces_at_once() -> None:
    # an engine's torrents (each its own client) announcing together to one tracker: one connect
    ids = ConnectionIds()
    async with udp_tracker(UdpTracker(peers=PEERS)) as tracker:
        url = f"udp://127.0.0.1:{tracker.port}/announce"
        clients = [UdpTrackerClient(ids=ids) for _ in range(10)]
        async with anyio.create_task_group() as tg:
            for client in clients:
                tg.start_soon(lambda c=client: c.announce(url, REQUEST, timeout=5))
        await UdpTrackerClient(ids=ids).scrape(url, [b"i" * 20], timeout=5)
        assert tracker.connects == 1 and ids.connects_sent == 1 and len(tracker.announces) == 10
        announce_ids = {struct.unpack_from(">Q", p)[0] for p in tracker.received if p[8:12] == b"\0\0\0\1"}
        assert len(announce_ids) == 1
        # clients of their own: a connect each
        for _ in range(2):
            await UdpTrackerClient().announce(url, REQUEST, timeout=5)
        assert tracker.connects == 3


async def test_a_connect_that_fails_leaves_the_next_waiter_to_connect() -> None:
    ids = ConnectionIds()
    async with udp_tracker(UdpTracker(peers=PEERS, drop=1)) as tracker:
        url = f"udp://127.0.0.1:{tracker.port}"
        results: list[object] = []

        async def announce(timeout: float) -> None:
            try:
                results.append((await UdpTrackerClient(ids=ids, retransmit_base=1).announce(
                    url, REQUEST, timeout=timeout)).peers)
            except TrackerError as exc:
                results.append(str(exc))

        async with anyio.create_task_group() as tg:
            tg.start_soon(announce, 0.2)  # connects first: its connect is lost, its time runs out
            await anyio.sleep(0.05)
            tg.start_soon(announce, 5)  # waits for that connect, then connects itself
        assert results == [f"{url}: no answer within 0.2 s", PEERS]
        assert tracker.connects == 1 and ids.connects_sent == 2


async def test_an_id_refused_is_dropped_only_if_no_fresher_one_came() -> None:
    ids = ConnectionIds()

    async def connect() -> int:
        return 7

    assert await ids.connect(("t", 1), connect) == 7
    ids.forget(("t", 1), 6)  # (an exchange refused with the id 6: another put 7 since)
    assert ids.valid(("t", 1)) == 7
    ids.forget(("t", 1), 7)
    assert ids.valid(("t", 1)) is None


async def test_junk_wrong_transaction_and_short_datagrams_are_ignored() -> None:
    junk = [
        lambda tid: b"\x00\x01",  # too short for a header
        lambda tid: struct.pack(">IIQ", 0, tid ^ 1, 7),  # another transaction
        lambda tid: struct.pack(">II", 3, tid ^ 1) + b"not yours",  # error for another transaction
        lambda tid: b"\xff" * 7,
    ]
    async with udp_tracker(UdpTracker(peers=PEERS, before=junk)) as tracker:
        response = await UdpTrackerClient().announce(f"udp://127.0.0.1:{tracker.port}", REQUEST, timeout=5)
    assert response.peers == PEERS


async def test_wrong_action_for_our_transaction_is_an_error() -> None:
    junk = [lambda tid: struct.pack(">IIIII", 2, tid, 0, 0, 0)]
    async with udp_tracker(UdpTracker(before=junk)) as tracker:
        with pytest.raises(TrackerError, match="action 2, expected 0"):
            await UdpTrackerClient().announce(f"udp://127.0.0.1:{tracker.port}", REQUEST, timeout=5)


async def test_error_reply_is_tracker_refused() -> None:
    async with udp_tracker(UdpTracker(error=b"torrent not registered")) as tracker:
        url = f"udp://127.0.0.1:{tracker.port}"
        with pytest.raises(TrackerRefused, match="torrent not registered") as info:
            await UdpTrackerClient().announce(url, REQUEST, timeout=5)
    assert info.value.url == url


async def test_overall_timeout_cuts_the_retransmission_schedule() -> None:
    async with udp_tracker(UdpTracker(drop=10**6)) as tracker:
        client = UdpTrackerClient()  # BEP 15 schedule: 15 s, 30 s, 60 s, ...
        with anyio.fail_after(5), pytest.raises(TrackerError, match="no answer within 0.2 s"):
            await client.announce(f"udp://127.0.0.1:{tracker.port}", REQUEST, timeout=0.2)
    assert len(tracker.received) == 1


async def test_closed_port_fails_at_once() -> None:
    async with udp_tracker(UdpTracker()) as tracker:
        port = tracker.port  # closed when the block ends
    # (resent every 0.2 s, 0.4 s, ...: an ICMP the kernel withheld, by its rate limit of ICMP
    # errors, comes with the next datagram)
    with anyio.fail_after(5), pytest.raises(TrackerError, match="refused"):
        await UdpTrackerClient(retransmit_base=0.2).announce(f"udp://127.0.0.1:{port}", REQUEST, timeout=60)


async def test_scrape() -> None:
    hashes = [b"a" * 20, b"b" * 20]
    async with udp_tracker(UdpTracker()) as tracker:
        response = await UdpTrackerClient().scrape(f"udp://127.0.0.1:{tracker.port}", hashes, timeout=5)
    assert {h: (s.complete, s.downloaded, s.incomplete) for h, s in response.files.items()} == {
        h: (5, 6, 7) for h in hashes
    }


async def test_ipv6_tracker_returns_18_byte_peers() -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    raw = bytes(15) + b"\x01\x1a\xe1" + bytes(10) + b"\xff\xff\x0a\x00\x00\x01\x00\x50"
    async with udp_tracker(UdpTracker(peers_raw=raw), family=socket.AF_INET6) as tracker:
        response = await UdpTrackerClient().announce(f"udp://[::1]:{tracker.port}", REQUEST, timeout=5)
    assert response.peers == [("::1", 6881), ("10.0.0.1", 80)]


async def test_bad_udp_urls() -> None:
    for url in ("udp://127.0.0.1/announce", "http://127.0.0.1:1/announce", "udp://:80", "udp://h:bad", "udp://[::1:80/a"):
        with pytest.raises(TrackerError):
            await UdpTrackerClient().announce(url, REQUEST, timeout=1)
        with pytest.raises(TrackerError):
            await UdpTrackerClient().scrape(url, [b"i" * 20], timeout=1)


async def test_scrape_of_many_hashes_is_split_into_bep15_batches() -> None:
    hashes = [bytes([i]) * 20 for i in range(100)]
    async with udp_tracker(UdpTracker()) as tracker:
        response = await UdpTrackerClient().scrape(f"udp://127.0.0.1:{tracker.port}", hashes, timeout=5)
        empty = await UdpTrackerClient().scrape(f"udp://127.0.0.1:{tracker.port}", [], timeout=5)
    assert set(response.files) == set(hashes) and empty.files == {}
    scrapes = [p for p in tracker.received if p[8:12] == b"\0\0\0\2"]
    assert [(len(p) - 16) // 20 for p in scrapes] == [74, 26]
    with pytest.raises(TrackerError, match="20 bytes"):
        await UdpTrackerClient().scrape(f"udp://127.0.0.1:{tracker.port}", [b"short"], timeout=1)


async def test_unencodable_host_name_is_a_tracker_error() -> None:
    # anyio's IDNA encoding of the host raised idna.IDNAError (a UnicodeError) out of announce.
    for url in ("udp://bücher..de:80/announce", "udp://" + "ü" * 70 + ".de:80"):
        with pytest.raises(TrackerError):
            await UdpTrackerClient().announce(url, REQUEST, timeout=2)
