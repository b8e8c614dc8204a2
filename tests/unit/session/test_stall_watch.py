"""The session's stall watch on its own: a download that does not move is stalled after its
grace, with a reason from its swarm's facts; while it stays stalled, with its state and peer count
as they were, the facts (a walk of every peer, tier and web seed) are looked at again every
STALL_LOOK seconds, not at every tick of a session whose idle peers make it tick each second."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from torrent_engine.policy.stall import SwarmFacts
from torrent_engine.session.context import Totals
from torrent_engine.session.stall_watch import STALL_LOOK, StallWatch
from torrent_engine.session.state_table import State


def _watch() -> tuple[StallWatch, Any, list[object], list[int]]:
    published: list[object] = []
    ctx = SimpleNamespace(state=State.DOWNLOADING, totals=Totals(), peers={"a": object()},
                          config=SimpleNamespace(stall_after=5.0), name="t",
                          info_hash_hex="00" * 20, events=SimpleNamespace(publish=published.append))
    watch = StallWatch(ctx, given_peers=0, announcer=None, connector=None)  # type: ignore[arg-type]
    looks: list[int] = []

    def facts() -> SwarmFacts:  # (one peer connected, with nothing we want)
        looks.append(1)
        return SwarmFacts(sources=1, known=1, connected=1, failed=0, encryption_refused=0, banned=0,
                          peers_with_wanted=0)

    watch.swarm_facts = facts  # type: ignore[method-assign]
    return watch, ctx, published, looks


def test_a_stalled_download_with_idle_peers_looks_at_its_swarm_every_stall_look_not_every_tick() -> None:
    watch, ctx, published, looks = _watch()
    for second in range(6):  # (the grace: 5 s without a byte)
        watch.observe(1000.0 + second)
    assert watch.stall is not None and len(looks) == 1 and len(published) == 1
    for second in range(6, 6 + int(STALL_LOOK) - 1):  # ticks within STALL_LOOK: no look
        watch.observe(1000.0 + second)
    assert len(looks) == 1 and watch.stall is not None
    watch.observe(1000.0 + 6 + STALL_LOOK)  # STALL_LOOK after the last: looked at again
    assert len(looks) == 2 and len(published) == 1  # (the same reason: no new event)


def test_a_peer_arriving_or_a_byte_received_is_looked_at_on_the_next_tick() -> None:
    watch, ctx, _, looks = _watch()
    for second in range(6):
        watch.observe(1000.0 + second)
    assert watch.stall is not None and len(looks) == 1
    ctx.peers = {"a": object(), "b": object()}
    watch.observe(1006.0)
    assert len(looks) == 2  # (another peer: the verdict is made again at once)
    ctx.totals.downloaded += 16384
    watch.observe(1007.0)
    assert watch.stall is None and watch.stalled_since is None  # (moving again: at once)
