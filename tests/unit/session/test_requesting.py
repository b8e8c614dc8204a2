"""Requesting rules (pure): batches, slow start and its end, snubbing, request timeouts."""

from __future__ import annotations

import pytest

from torrent_engine.config import Config
from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.net.peer.messages import BLOCK_SIZE
from torrent_engine.session import requesting
from torrent_engine.session.peer import PeerState


def _peer(**kw: object) -> PeerState:
    peer = PeerState(host="127.0.0.1", port=1, link=None, incoming=False, have=Bitfield(4))  # type: ignore[arg-type]
    for k, v in kw.items():
        setattr(peer, k, v)
    return peer


@pytest.mark.parametrize(("depth", "in_flight", "expected"), [
    (100, 0, 100),  # an empty pipeline is filled at once
    (100, 75, 0),  # 25 free slots: wait for a batch, half of the queue (50)
    (100, 50, 50),
    (500, 375, 0),  # a long queue: batches of 128, or half of it when that is less
    (500, 372, 128),
    (1000, 872, 128),
    (8, 6, 0),  # a short queue: half of it (4) is a batch
    (8, 4, 4),
    (4, 4, 0),
    (4, 9, 0),  # over (the depth fell): nothing
])
def test_requests_go_out_in_batches(depth: int, in_flight: int, expected: int) -> None:
    assert requesting.requests_wanted(depth, in_flight) == expected


def test_slow_start_grows_by_a_block_and_ends_when_the_rate_stops_growing() -> None:
    peer = _peer(queue_target=4)
    requesting.on_block(peer, BLOCK_SIZE, now=5.0)
    assert peer.queue_target == 5 and peer.last_block == 5.0 and peer.downloaded == BLOCK_SIZE
    peer.down_window = 100_000
    requesting.update_rates(peer, 1.0)
    assert peer.slow_start and peer.down_rate == 50_000
    peer.down_window = 50_000  # no longer growing by 10 %
    requesting.update_rates(peer, 1.0)
    assert not peer.slow_start and peer.down_window == 0


def test_one_reads_blocks_are_counted_at_once() -> None:
    """A read's blocks counted in one call: what one call a block would have counted."""
    one, many = _peer(queue_target=4, snubbed=True), _peer(queue_target=4, snubbed=True)
    for _ in range(3):
        requesting.on_block(one, BLOCK_SIZE, now=7.0)
    requesting.on_block(many, 3 * BLOCK_SIZE, now=7.0, blocks=3)
    for peer in (one, many):
        assert (peer.queue_target, peer.downloaded, peer.down_window, peer.last_block, peer.snubbed) == \
            (7, 3 * BLOCK_SIZE, 3 * BLOCK_SIZE, 7.0, False)


def test_a_silent_peer_is_snubbed_and_its_old_requests_time_out() -> None:
    cfg = Config(dht_enabled=False, port_mapping=False,
                 lsd_enabled=False, snub_timeout=60.0, request_timeout=30.0)
    peer = _peer(last_block=1000.0)
    assert requesting.timeout_cutoff(peer, 1020.0, cfg) is None
    assert requesting.timeout_cutoff(peer, 1031.0, cfg) == 1001.0 and not peer.snubbed
    requesting.timeout_cutoff(peer, 1060.0, cfg)
    assert peer.snubbed and not peer.slow_start
    assert requesting.queue_depth(peer, cfg) == 1
    requesting.on_block(peer, BLOCK_SIZE, now=1061.0)
    assert not peer.snubbed


def test_block_seconds_is_known_from_the_rate_unless_snubbed() -> None:
    """What the picker's endgame weighs a peer by: seconds per block at its measured rate."""
    assert requesting.block_seconds(_peer(down_rate=0.0)) == 0.0  # nothing measured yet
    assert requesting.block_seconds(_peer(down_rate=2 * BLOCK_SIZE)) == 0.5
    assert requesting.block_seconds(_peer(down_rate=2 * BLOCK_SIZE, snubbed=True)) == 0.0
