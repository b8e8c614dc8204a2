"""The session's tick on its own, on an engine clock of its own, with stand-ins for the torrent and
its peers: a peer silent for 90 s gets a keep-alive (one that sent lately none), every peer's
requests are timed out and its interest updated each tick, the stats event goes out when what it
shows changed, the resume data is saved only when it changed, and a quiet session (no peer,
nothing moving) leaves the clock's round, asking only for the deadlines it has."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from torrent_engine import events as ev
from torrent_engine.engine.clock import EngineClock
from torrent_engine.net.peer import messages as m
from torrent_engine.session.context import Totals
from torrent_engine.session.rates import Rates
from torrent_engine.session.state_table import State
from torrent_engine.session.tick import KEEPALIVE_AFTER, SessionTick


@dataclass
class _Peer:
    last_sent: float
    sent: list[object] = field(default_factory=list)
    ut_pex: int = 0  # (PEX not agreed)
    closed: bool = False
    slow_start: bool = False
    down_rate: float = 0.0
    up_rate: float = 0.0
    down_window: int = 0
    up_window: int = 0

    async def send(self, msg: object) -> None:
        self.sent.append(msg)


class _Upkeep:
    def __init__(self) -> None:
        self.timed_out: list[_Peer] = []
        self.interest: list[_Peer] = []
        self.due = True  # what interest_due answers

    def check_timeouts(self, peer: Any, now: float) -> None:
        self.timed_out.append(peer)

    async def update_interest(self, peer: Any) -> None:
        self.interest.append(peer)

    def interest_due(self, peer: Any) -> bool:
        return self.due


class _Resume:
    def __init__(self, changed: bool, *, nothing_found: bool = False) -> None:
        self.changed = changed
        self.nothing_found = nothing_found
        self.saves = 0

    def unsaved(self) -> bool:
        return self.changed

    async def save(self) -> None:
        self.saves += 1
        self.changed = False


class _Stall:
    def __init__(self, look_in: float | None = None) -> None:
        self.looks = 0
        self.look_in = look_in  # seconds until the next look it asks for while quiet (None: none)

    def observe(self, now: float) -> None:
        self.looks += 1

    def next_look(self, now: float) -> float | None:
        return None if self.look_in is None else now + self.look_in


def _status() -> Any:
    return SimpleNamespace(state="downloading", downloaded=0, uploaded=0, download_rate=0.0, upload_rate=0.0,
                           peers=2, progress=0.5, eta=None)


def _tick(peers: dict[Any, _Peer], state: State, resume: _Resume, *,
          stall: _Stall | None = None) -> tuple[SessionTick, Any, _Upkeep, _Stall, EngineClock]:
    config = SimpleNamespace(stats_interval=0.01, resume_save_interval=1e-6, control_send_timeout=5.0)
    ctx = SimpleNamespace(config=config, events=ev.EventBus(), peers=peers, state=state, phase=None,
                          info_hash_hex="00" * 20, totals=Totals())
    upkeep, stall = _Upkeep(), stall or _Stall()
    tick = SessionTick(ctx, rates=Rates(ctx.totals), stall_watch=stall, resume=resume,  # type: ignore[arg-type]
                       upkeep=upkeep, status=_status)
    return tick, ctx, upkeep, stall, EngineClock(config.stats_interval)


@asynccontextmanager
async def _ten_ticks(tick: SessionTick, clock: EngineClock) -> AsyncIterator[None]:
    """``tick`` started on ``clock``, its body run once it has ticked ten times, then stopped."""
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            clock.attach(tg)
            tick.start(tg, clock)
            while tick.ticks < 10:
                await anyio.sleep(0.01)
            yield
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_each_tick_keeps_peers_alive_times_them_out_updates_interest_and_saves() -> None:
    silent, talking = _Peer(time.monotonic() - KEEPALIVE_AFTER - 1), _Peer(time.monotonic() + 3600)
    resume = _Resume(changed=True)
    tick, ctx, upkeep, stall, clock = _tick({}, State.DOWNLOADING, resume)
    updates: list[ev.StatsUpdate] = []
    ctx.events.subscribe("stats.update", updates.append)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            clock.attach(tg)
            tick.start(tg, clock)
            ctx.peers.update({"a": silent, "b": talking})  # (they connect: a stats event says so)
            tick.wake()
            while tick.ticks < 3 or not updates or not upkeep.interest:
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
    assert any(isinstance(msg, m.KeepAlive) for msg in silent.sent) and talking.sent == []
    assert {id(p) for p in upkeep.timed_out} == {id(p) for p in upkeep.interest} == {id(silent), id(talking)}
    assert stall.looks >= 3 and updates[0].peers == 2
    assert len(updates) == 1  # the numbers stood still after the first: no event each tick
    assert resume.saves == 1  # saved once: nothing changed after


@pytest.mark.anyio
async def test_a_peer_with_nothing_to_send_costs_no_task() -> None:
    """A live torrent with an idle peer (neither has a piece the other lacks, a keep-alive not
    due, PEX seen a moment ago) ticks without a task for the peers' sends: 1 000 such torrents
    spawned 1 000 task groups a second (bench_live_tick --peers). Once something is due, it is
    sent: a keep-alive after KEEPALIVE_AFTER, PEX when its minute has passed."""
    now = time.monotonic()
    idle = _Peer(now)
    tick, ctx, upkeep, _, clock = _tick({"a": idle}, State.DOWNLOADING, _Resume(changed=False))
    upkeep.due = False
    spawned: list[object] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            clock.attach(tg)
            real = tg.start_soon

            def counted(func: Any, *args: Any, **kwargs: Any) -> None:
                spawned.append(func)
                real(func, *args, **kwargs)

            tg.start_soon = counted  # type: ignore[method-assign]
            tick.start(tg, clock)
            while tick.ticks < 5:
                await anyio.sleep(0.01)
            assert upkeep.interest == [] and idle.sent == []
            assert not [f for f in spawned if "upkeep" in repr(f)]
            idle.last_sent = time.monotonic() - KEEPALIVE_AFTER - 1  # a keep-alive is due
            while not idle.sent:
                await anyio.sleep(0.01)
            assert isinstance(idle.sent[0], m.KeepAlive)
            upkeep.due = True  # (interest changed)
            while not upkeep.interest:
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_quiet_session_leaves_the_clocks_round_until_woken() -> None:
    """Quiet (no peer, nothing moving, nothing to save): the tick ticks once and leaves the engine
    clock's round (whose task then ends: nobody wants it); a wake event (a peer connected) puts it
    back."""
    tick, ctx, _, _, clock = _tick({}, State.SEEDING, _Resume(changed=False))
    assert tick.quiet()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            clock.attach(tg)
            tick.start(tg, clock)
            while tick.running or tick.ticks < 1:
                await anyio.sleep(0.01)
            ticks = tick.ticks
            await anyio.sleep(0.2)  # twenty intervals
            assert tick.ticks == ticks and not tick.running and not clock.running
            ctx.events.publish(ev.PeerConnected(info_hash="00" * 20, address="127.0.0.1", port=1))
            while tick.ticks < ticks + 1:
                await anyio.sleep(0.01)
            tick.stop()  # (the session's run ends: no event starts it again)
            while tick.running:
                await anyio.sleep(0.01)
            ticks = tick.ticks
            ctx.events.publish(ev.PeerConnected(info_hash="00" * 20, address="127.0.0.1", port=1))
            await anyio.sleep(0.1)
            assert not tick.running and tick.ticks == ticks
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_something_to_save_is_saved_then_the_tick_leaves_the_round() -> None:
    resume = _Resume(changed=True)
    tick, _, _, _, clock = _tick({}, State.SEEDING, resume)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            clock.attach(tg)
            tick.start(tg, clock)
            while tick.running or tick.ticks < 1 or resume.saves < 1:
                await anyio.sleep(0.01)
            assert resume.saves == 1
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_new_download_is_first_saved_an_interval_after_its_first_tick() -> None:
    """What the start-up check found is saved at the first tick (a restart does not check it
    again); a new download's check found nothing (no resume data, no file): its resume data is
    first saved an interval later (a thousand small downloads wrote theirs twice, at the first
    tick and at their completion)."""
    found, new = _Resume(changed=True), _Resume(changed=True, nothing_found=True)
    ticks = [_tick({"a": _Peer(time.monotonic())}, State.DOWNLOADING, r) for r in (found, new)]
    for _, ctx, _, _, _ in ticks:
        ctx.config.resume_save_interval = 3.0
    begun = time.monotonic()
    async with _ten_ticks(ticks[0][0], ticks[0][4]), _ten_ticks(ticks[1][0], ticks[1][4]):
        assert found.saves == 1
        assert new.saves == 0 or time.monotonic() - begun >= 3.0  # (ten ticks of 10 ms)
        while new.saves < 1:  # (an interval on)
            await anyio.sleep(0.01)
        assert found.saves == 1 and time.monotonic() - begun >= 3.0


@pytest.mark.anyio
async def test_an_interval_of_zero_saves_nothing_on_the_way() -> None:
    """``resume_save_interval`` 0 (qBittorrent's save_resume_data_interval 0): the resume data is
    saved at a stop, a pause, a completion (the session's own), never by the tick; it leaves the
    round with nothing due."""
    resume = _Resume(changed=True)
    tick, ctx, _, _, clock = _tick({"a": _Peer(time.monotonic())}, State.DOWNLOADING, resume)
    ctx.config.resume_save_interval = 0.0
    async with _ten_ticks(tick, clock):
        assert resume.saves == 0
        ctx.config.resume_save_interval = 1e-6  # (read at each tick: set again, it saves)
        while resume.saves < 1:
            await anyio.sleep(0.01)


@pytest.mark.anyio
async def test_a_wake_while_it_ticks_is_not_lost() -> None:
    """The last peer leaves and the torrent completes while a tick is under way: it ticks once
    more (the stats event shows the new state) before its task ends."""
    peer = _Peer(time.monotonic())
    peers: dict[Any, _Peer] = {"a": peer}
    tick, ctx, upkeep, _, clock = _tick(peers, State.DOWNLOADING, _Resume(changed=False))

    async def leave(p: Any) -> None:
        peers.clear()
        ctx.state = State.SEEDING
        tick.wake()  # (what the completion's event does)

    upkeep.update_interest = leave  # type: ignore[method-assign]
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            clock.attach(tg)
            tick.start(tg, clock)
            while tick.running or tick.ticks < 2:
                await anyio.sleep(0.01)
            assert tick.ticks == 2
            tg.cancel_scope.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize("state", [State.CHECKING, State.QUEUED, State.DOWNLOADING,
                                   State.DOWNLOADING_METADATA])
async def test_a_session_with_no_peer_and_nothing_moving_costs_no_tick(state: State) -> None:
    """Thousands of torrents checking, waiting for their turn to check, or downloading with
    nobody to download from had a tick each, publishing stats every second: without a peer and
    with nothing moving they are not in the clock's round, and a check's progress
    (``SessionChecking``, every half second of a long check) does not put them back; a peer does."""
    tick, ctx, _, _, clock = _tick({}, state, _Resume(changed=False))
    stats: list[ev.StatsUpdate] = []
    ctx.events.subscribe(ev.StatsUpdate, stats.append)
    assert tick.quiet()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            clock.attach(tg)
            tick.start(tg, clock)
            while tick.running or tick.ticks < 1:  # (the first tick, at the start: then it ends)
                await anyio.sleep(0.01)
            await anyio.sleep(0)  # (the bus delivers on the loop's next turn: the first tick's stats)
            ticks, published = tick.ticks, len(stats)
            # nothing moved since its start: no stats (a thousand paused or checked adds told
            # theirs once each, a second later, and each job was listed again by the next poll)
            assert published == 0
            for _ in range(5):
                ctx.events.publish(ev.SessionChecking(info_hash="00" * 20, progress=0.5))
                await anyio.sleep(0.03)  # (three intervals each)
            assert tick.ticks == ticks and not tick.running and len(stats) == published
            ctx.peers["a"] = _Peer(time.monotonic())
            # (a recheck with peers)
            ctx.events.publish(ev.SessionChecking(info_hash="00" * 20, progress=0.6))
            while tick.ticks < ticks + 2:
                await anyio.sleep(0.01)
            tick.stop()
            assert not tick.running
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_quiet_download_asks_only_for_its_stall_looks_and_bytes_moving_wake_it() -> None:
    """A download with no peer is visited when its stall watch asks (its grace's end, then its
    looks), not every second; bytes arriving from elsewhere (a web seed) put it back in the round."""
    stall = _Stall(look_in=0.1)  # (ten intervals)
    tick, ctx, _, _, clock = _tick({}, State.DOWNLOADING, _Resume(changed=False), stall=stall)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            clock.attach(tg)
            tick.start(tg, clock)
            await anyio.sleep(0.55)  # 55 intervals: about 5 looks, not 55 ticks
            assert 3 <= stall.looks <= 7 and 3 <= tick.ticks <= 7 and not tick.running
            assert clock.running  # (its next look is a deadline)
            tick._rates.downloaded(16384)  # (what a web seed's block does)
            assert tick.running
            while ctx.totals.downloaded and tick._rates.still:  # its rate is taken at the next round
                await anyio.sleep(0.01)
            assert tick._rates.down_rate > 0
            tick.stop()
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_whether_the_resume_data_changed_is_asked_only_when_a_save_is_due() -> None:
    """A session with peers ticks each second; asking whether its resume data changed makes that
    data whole to compare (its save path's real path among it): 7 µs a session a second with 1 000
    idle peers. It is asked when a save is due (``resume_save_interval``) or the tick leaves the
    round, not at every tick."""
    asked: list[float] = []

    class _Counted(_Resume):
        def unsaved(self) -> bool:
            asked.append(time.monotonic())
            return super().unsaved()

    resume = _Counted(changed=True)
    tick, ctx, _, _, clock = _tick({"a": _Peer(time.monotonic())}, State.DOWNLOADING, resume)
    ctx.config.resume_save_interval = 3600.0
    async with _ten_ticks(tick, clock):
        pass
    # the first tick's (a save is due at once) and the save's own two (before it, and after it
    # for what changed while it was written); none in the nine ticks after
    assert len(asked) == 3 and resume.saves == 1
