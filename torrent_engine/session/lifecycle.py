"""A session's life (``Session.run``) and what steers it (pause, resume, stop, completion).

``run()`` acquires the shared resources, fetches a magnet's metadata, opens the files, checks,
then runs the swarm until it is stopped, moving the session through the phases of ``phases``
(``FetchingMetadata`` -> ``Loaded`` -> ``Checking`` -> ``Live`` <-> ``Paused`` -> ``Loaded``). It
owns the session-level task group (the tick, verification, resume saving); each ``Live`` phase
(and a magnet's fetch) owns a swarm group inside it, which ``pause()`` and ``stop()`` cancel, so
stopping leaves no task behind.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.abc
import anyio.lowlevel

from ..engine.shared import SharedResources
from ..engine.unwind import ExitStack
from ..errors import NO_ROOM, MissingFiles, SessionError, StorageError, TorrentEngineError, typed_failure
from ..formats.metainfo import Torrent
from ..net.peer import messages as m
from ..storage import PieceStorage, StorageFactory
from .peer import fan_out
from .peer_io import handshaker_for
from .phases import Checking, FetchingMetadata, Live, Loaded, Opened, Paused, Phase, Swarm, TorrentParts
from .state_table import SessionStateMachine, State

if TYPE_CHECKING:
    from ..engine.clock import EngineClock
    from .context import TorrentContext

log = logging.getLogger("torrent_engine.session")

# Marks the log record of a session's failure: its owner hears of it too (the error state, a
# SessionError from wait_completed), so a program that says it itself (the CLI) can leave it out.
OWNER_HEARS = {"owner_hears": True}


class Dialing(Protocol):
    """The connector as the run registers, wakes and resets it (``connector.Connector``)."""

    def register(self, shared: SharedResources) -> None:
        """Have the shared listener hand this torrent's incoming peers over."""

    def register_other_hashes(self) -> None:
        """A hybrid's peers that came by its other info-hash are taken too."""

    def unregister(self, shared: SharedResources) -> None:
        """Incoming peers of this torrent are no longer ours."""

    def wake(self) -> None:
        """The swarm started: dial now."""

    def reset(self) -> None:
        """The swarm stopped: nothing is being dialed."""


class Announcing(Protocol):
    """Trackers, DHT and LSD as the run starts and stops them (``announce.Announcer``)."""

    def start(self, swarm: anyio.abc.TaskGroup) -> None:
        """Start announcing in the swarm's task group."""

    def completed(self) -> None:
        """The download completed: the trackers hear it."""

    def forget(self) -> None:
        """The metadata phase ended: the full session announces afresh."""

    def hand_over(self) -> None:
        """The session stops without telling its trackers: keep what they know for the next."""

    async def stop(self) -> None:
        """Tell the trackers the torrent stopped (bounded)."""


class StartCheck(Protocol):
    """Checking and resume data as the run uses them (``checking.Checker``)."""

    completed_time: int  # when the download completed (epoch seconds; 0: not yet)

    async def check(self, checking: Checking) -> None:
        """Find the verified pieces (from resume data, else by hashing what is on disk)."""

    async def check_again(self, checking: Checking) -> None:
        """Hash the whole torrent while it runs (seed mode found a piece that fails)."""

    async def save(self) -> None:
        """Write the resume file."""

    async def delete_files(self) -> None:
        """Remove the torrent's files and its resume data."""


class Ticking(Protocol):
    """The once-a-second tick as the run starts and stops it (``tick.SessionTick``)."""

    def start(self, group: anyio.abc.TaskGroup, clock: EngineClock) -> None:
        """The session runs, in ``group``: tick on ``clock``."""

    def stop(self) -> None:
        """The session's run ended: no more visits."""


class LifeHost(Protocol):
    """What the run needs of its torrent beside the context: the parts it starts, stops and tells
    (they need the run too, so the session is given as this)."""

    @property
    def context(self) -> TorrentContext:
        """What every part reads and calls (``context``; made once the run exists)."""

    @property
    def connector(self) -> Dialing:
        """Registered with the shared listener; dials in the swarm."""

    @property
    def announcer(self) -> Announcing:
        """Started with the swarm; told of completion and stop."""

    @property
    def checker(self) -> StartCheck:
        """Checks at start, saves the resume data."""

    @property
    def tick(self) -> Ticking:
        """The once-a-second tick (started with the run, in its group; it ends while idle)."""

    async def save_metainfo(self) -> None:
        """Write the metainfo where the owner asked (a magnet's info dict arrived)."""


class LazyEvent:
    """An ``anyio.Event`` made only once something waits for it (``set``, ``is_set`` and
    ``wait`` as anyio's): most of a session's are set or looked at, seldom waited for, and ten
    thousand idle torrents need not hold four asyncio events each."""

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: anyio.Event | None = None

    def set(self) -> None:
        """Set it: every waiter goes on, and every later wait returns at once."""
        self._set = True
        if self._event is not None:
            self._event.set()

    def is_set(self) -> bool:
        """Whether it was set."""
        return self._set

    async def wait(self) -> None:
        """Until it is set (a checkpoint if it is already)."""
        if self._set:
            await anyio.lowlevel.checkpoint()
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()


class Life:
    """The running of one session: its phase (``phase``: what the torrent holds now, with the
    public state and the error), its task group, the events its waiters wait for. Only ``Life``
    moves the phase and the state, through ``machine`` (the table of ``state_table``)."""

    def __init__(self, session: LifeHost, *, paused: bool, shared: SharedResources | None,
                 make_storage: StorageFactory, make_parts: Callable[[Torrent], TorrentParts],
                 before_check: Callable[[Torrent], Awaitable[None]] | None = None) -> None:
        self._s = session
        self._make_storage = make_storage  # (torrent, save path) -> PieceStorage: opens the files
        self._make_parts = make_parts  # a torrent's parts, once it is known (its metadata came)
        self._before_check = before_check  # the owner's, awaited once a magnet's metadata is in
        self.shared = shared  # borrowed (a manager's), or made by start_standalone
        # the phase and, carried by it, the public state and the error: moved by the table (``begin``)
        self.machine: SessionStateMachine[Phase]
        self.tg: anyio.abc.TaskGroup | None = None  # the session-level group, while run() runs
        self.stop_requested = False
        self.delete_on_stop = False
        self.hand_over_on_stop = False  # the stop tells no tracker ``stopped`` (``Session.suspend``)
        self.start_paused = paused  # paused before it ran (e.g. restored paused): stays paused
        self.hold_after_check = False  # pauses once its start-up check is over (resumed so)
        self.ran = False
        # the failure that ended the run is of the torrent's files on our disk (full, a
        # permission, a file gone): its cause can go away, and the data verified so far is kept
        self.disk_failure = False
        self.disk_full = False  # ... and it was a full disk (no room, a quota): room may come back
        self.missing_files: tuple[str, ...] = ()  # the files it found gone (a ``MissingFiles`` failure)
        self.finished = LazyEvent()  # run() has ended (or stop() came before it ran)
        self.completed = LazyEvent()  # every wanted piece is verified
        self.ready = LazyEvent()  # checking is over
        self.serving = LazyEvent()  # a swarm with the torrent's data ran: incoming peers are taken
        self.check_wanted = False  # the data must be checked again (seed mode found a bad piece)
        # its download's completion waited for a check of its files (Config.recheck_on_completion:
        # once a session; what that check finds missing is downloaded, then it completes)
        self.completion_checked = False
        self._wakeup = LazyEvent()  # resume() or stop() while paused
        self._own_stack: ExitStack | None = None  # standalone: its own SharedResources and group

    @property
    def _ctx(self) -> TorrentContext:
        return self._s.context

    def begin(self, phase: FetchingMetadata | Loaded) -> None:
        """The phase the session is created in: a magnet's fetch, or its torrent's parts (queued)."""
        ctx = self._ctx
        self.machine = SessionStateMachine(ctx.events, ctx.info_hash_hex, phase)

    @property
    def phase(self) -> Phase:
        """What the session holds now; it carries the public state and the error."""
        return self.machine.current

    @property
    def state(self) -> State:
        """The public state (carried by the phase)."""
        return self.machine.current.state

    @property
    def paused(self) -> bool:
        """Whether the session is paused, or will be once it has started (added or restored
        paused: it pauses after its start-up check)."""
        return self.machine.current.state is State.PAUSED or self.start_paused

    async def start_standalone(self) -> None:
        """``async with Session(...)``: a private ``SharedResources`` if none was given, and
        ``run()`` in a task group of our own; once it has started (errors reach the caller)."""
        ctx = self._ctx
        stack = ExitStack()
        try:
            if self.shared is None:
                self.shared = await stack.enter_async_context(SharedResources(ctx.config, events=ctx.events))
            tg = await stack.enter_async_context(anyio.create_task_group())
            await tg.start(self.run)
        except BaseException:
            await stack.aclose()
            raise
        self._own_stack = stack

    async def until(self, event: LazyEvent) -> None:
        """Wait for ``event``, or for the session to end."""
        async with anyio.create_task_group() as tg:
            async def watch_finish() -> None:
                await self.finished.wait()
                tg.cancel_scope.cancel()
            tg.start_soon(watch_finish)
            await event.wait()
            tg.cancel_scope.cancel()

    async def wait_completed(self) -> None:
        """Until every wanted piece is verified; ``SessionError`` if the session ends first."""
        if not self.completed.is_set():
            await self.until(self.completed)
        if not self.completed.is_set():
            error, state = self.machine.error, self.machine.state
            raise SessionError(f"session {self._ctx.name} ended ({state.value}) before completing"
                               + (f": {error}" if error else ""))

    # -- steering ------------------------------------------------------------------------
    def pause(self) -> None:
        """Disconnect peers and cancel the swarm; the phase keeps picker and files. A session that
        failed has nothing to pause (its owner hears of the failure): nothing happens."""
        if self.machine.state in (State.PAUSED, State.ERROR):
            return
        self.machine.to(State.PAUSED)
        for peer in self._ctx.peers.values():
            peer.close("paused")
        swarm = _swarm_of(self.phase)
        if swarm is not None:
            swarm.scope.cancel()

    async def resume(self, *, pause_after_check: bool = False) -> None:
        """Back to the state the torrent is in (``SessionError`` if not paused); with
        ``pause_after_check``, paused again once the start-up check to come is over."""
        start_paused, self.start_paused = self.start_paused, False  # (added or restored paused)
        # (set in the same step as the resume: no check can end in between)
        held, self.hold_after_check = self.hold_after_check, pause_after_check and not self.ready.is_set()
        if self.machine.state is not State.PAUSED:
            if start_paused or held:
                return  # (it has not started, or not been checked, yet: it will run on after)
            self.hold_after_check = False
            raise SessionError(f"resume() in state {self.machine.state.value}")
        state = self._active_state()
        if state is State.SEEDING and not self.completed.is_set():
            # the last piece passed while paused: complete now (event, tracker, wait_completed),
            # in the run's task group: completing may hash a hybrid's data for its v2 layers, and
            # the caller (e.g. a job service holding the job's lock) must not wait for that
            self.machine.to(State.DOWNLOADING)
            self._wakeup.set()
            if self.tg is not None:
                self.tg.start_soon(self.on_complete)
            else:
                await self.on_complete()
            return
        self.machine.to(state)
        if state is State.SEEDING and not self._ctx.config.seed:
            self.stop_requested = True  # complete already and not asked to seed: done (as in run())
        self._wakeup.set()

    async def stop(self) -> None:
        """Cancel everything and wait until run() has cleaned up (at once if it never ran)."""
        self.stop_requested = True
        self._wakeup.set()
        if self.tg is not None:
            self.tg.cancel_scope.cancel()
        try:
            if self.ran:
                await self.finished.wait()
            elif not self.finished.is_set():  # never ran (e.g. queued): nothing to stop, end its waiters
                if self.machine.can(State.STOPPED):
                    self.machine.to(State.STOPPED)
                self.finished.set()
        finally:
            # Standalone, the session's task groups were entered on the caller's task: they are
            # closed here even when that task is being cancelled (a task of the session's failed,
            # and the wait above was cut short), or they would stay open on it. Closing them waits
            # for the run to end and raises what failed.
            if self._own_stack is not None:
                stack, self._own_stack = self._own_stack, None
                await stack.aclose()

    def wanted_changed(self) -> None:
        """The file priorities changed: seeding may need pieces again, or what is left may all
        be in skipped files now (complete, as when the last piece passes)."""
        complete = self._active_state() is State.SEEDING
        if self.machine.state is State.SEEDING and not complete:
            self.machine.to(State.DOWNLOADING)
        elif self.machine.state is State.DOWNLOADING and complete and self.tg is not None:
            self.tg.start_soon(self.on_complete)

    def check_again(self) -> None:
        """The data cannot be trusted (seed mode found a piece that fails): the swarm ends (as for
        a pause, its peers closed) and ``_live`` checks the whole torrent, then goes on."""
        if self.check_wanted:
            return
        self.check_wanted = True
        self._wakeup.set()  # (paused: the check comes now, the torrent stays paused after it)
        swarm = _swarm_of(self.phase)
        if swarm is not None:
            swarm.scope.cancel()

    def fail(self, exc: TorrentEngineError) -> None:
        """A failure of the torrent itself (e.g. its disk): error state, and the run ends."""
        log.warning("session %s: %s", self._ctx.name, exc, extra=OWNER_HEARS)
        self._failed_by(exc)
        self.machine.fail(str(exc))
        self._end()

    def _failed_by(self, exc: TorrentEngineError) -> None:
        """Note what ended the run: a failure of our disk (a cause that can go away), the files
        found missing, and what they held is not had any more (found while it ran)."""
        self.disk_failure = isinstance(exc, StorageError)
        cause = exc.__cause__
        self.disk_full = self.disk_failure and isinstance(cause, OSError) and cause.errno in NO_ROOM
        self.missing_files = exc.paths if isinstance(exc, MissingFiles) else ()
        phase = self.phase
        if isinstance(exc, MissingFiles) and exc.files and isinstance(phase, Loaded):
            phase.parts.uploader.files_gone(exc.files)

    def recheck_begins(self, checked: float = 0.0) -> bool:
        """The start-up check hashes the data: ``CHECKING`` (``checked``: the share an earlier
        check hashed already); whether it was paused before (a session paused before its check
        began is paused after it)."""
        paused = self.machine.state is State.PAUSED
        if self.machine.state is not State.CHECKING:  # (a magnet is from its metadata's coming on)
            self.machine.to(State.CHECKING, checked=checked)
        return paused

    def recheck_ended(self, paused: bool) -> None:
        """The start-up recheck is over: back to ``PAUSED`` if it was paused before it."""
        if paused and self.machine.state is State.CHECKING:
            self.machine.to(State.PAUSED)

    def _end(self) -> None:
        self.stop_requested = True
        if self.tg is not None:
            self.tg.cancel_scope.cancel()

    def _active_state(self) -> State:
        phase = self.phase
        if not isinstance(phase, Loaded):
            return State.DOWNLOADING_METADATA
        return State.SEEDING if phase.parts.picker.is_complete() else State.DOWNLOADING

    # -- completion ----------------------------------------------------------------------
    async def maybe_complete(self) -> None:
        """A piece passed: complete once every wanted piece is in."""
        if self.machine.state is State.DOWNLOADING and self._active_state() is State.SEEDING:
            await self.on_complete()

    async def on_complete(self) -> None:
        """Every wanted piece is verified: seeding (or done, when not asked to seed), once its
        files are hashed again when ``Config.recheck_on_completion`` says so (``_check_again``
        completes it then)."""
        if not self._still(State.DOWNLOADING):
            return  # (set_file_priorities started it, and a last piece or a new priority came first)
        if self._ctx.config.recheck_on_completion and not self.completion_checked:
            self.completion_checked = True
            self.check_again()
            return
        await self._complete(State.DOWNLOADING)

    def _still(self, state: State) -> bool:
        """Whether the session is in ``state`` and every wanted piece is had (it may complete)."""
        return self.machine.state is state and self._active_state() is State.SEEDING

    async def _complete(self, state: State) -> None:
        """Complete from ``state`` (downloading, or the check a completion waited for), unless
        something else changed it meanwhile."""
        ctx = self._ctx
        s = self._s

        def still() -> bool:
            return self._still(state)

        phase = self.phase
        assert isinstance(phase, Loaded)
        parts = phase.parts
        s.checker.completed_time = int(time.time())
        await parts.layers.learn_rest()  # (a hybrid without its v2 layers builds them from its data)
        if not still():
            return
        parts.pieces.drop_spares()
        await self._create_empty_files()
        if not still():  # (another completion got here first while the empty files were made)
            return
        self.machine.to(State.SEEDING)
        self.completed.set()
        s.announcer.completed()
        await s.checker.save()
        for peer in list(ctx.peers.values()):
            if peer.is_seed:
                peer.close("both seeds")
        interested = [p for p in ctx.peers.values() if p.am_interested and not p.closed]
        for peer in interested:
            peer.am_interested = False
        await fan_out(interested, lambda peer: peer.send(m.NotInterested()), ctx.config.control_send_timeout)
        if not ctx.config.seed:
            self._end()

    # -- the run -------------------------------------------------------------------------
    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Acquire shared resources, fetch the metadata (a magnet), check, download/seed until stopped."""
        ctx = self._ctx
        s = self._s
        if self.ran:
            raise SessionError("a Session runs once; create a new one to restart")
        if self.shared is None:
            raise SessionError("Session.run() needs a SharedResources (or use 'async with Session')")
        self.ran = True
        shared = self.shared
        acquired = started = False
        try:
            await shared.acquire()
            acquired = True
            shared.set_handshaker(handshaker_for(shared))
            s.connector.register(shared)
            s.connector.register_other_hashes()
            phase = self.phase
            # a .torrent's files are opened before started(): a bad path is the caller's error
            opened = self._open(phase.parts) if isinstance(phase, Loaded) else None
            task_status.started()
            started = True
            try:
                async with anyio.create_task_group() as tg:
                    self.tg = tg
                    if self.stop_requested:
                        tg.cancel_scope.cancel()
                    s.tick.start(tg, shared.clock)  # (in the clock's round while it has work)
                    if opened is None:
                        assert isinstance(phase, FetchingMetadata)
                        opened = self._open(await self._fetch_metadata(phase))
                    await self._check(opened)
                    paused = self.start_paused or self.hold_after_check  # (added so, or resumed so)
                    if paused and self.machine.state is not State.PAUSED:
                        self.machine.to(State.PAUSED)
                    self.start_paused = self.hold_after_check = False
                    self.ready.set()
                    if self.machine.state is State.SEEDING and not ctx.config.seed:
                        self.stop_requested = True  # complete already and not asked to seed: done
                    await self._live(opened.parts, opened.storage)
                    tg.cancel_scope.cancel()  # _live returns once a stop was asked for: end the loops too
            finally:
                # the group is closed: what outlives it (a write's callback from the storage's
                # thread, an API call) sees no group rather than starting a task in a closed one
                self.tg = None
                s.tick.stop()
        except Exception as exc:
            typed = typed_failure(exc)
            if typed is None:  # a bug must not take the manager down with it
                error = f"internal error: {exc!r}"
                log.exception("session %s crashed", ctx.name)
            else:  # bad input or failed I/O, however deep in the task groups it was raised
                error = f"{typed} (while {self.machine.state.value})"
                log.warning("session %s failed: %s", ctx.name, error, extra=OWNER_HEARS)
                self._failed_by(typed)
            self.machine.fail(error)
            if not started:
                raise  # to the caller of start/__aenter__ (e.g. the listen port is in use)
        finally:
            with anyio.CancelScope(shield=True):
                await self._shutdown(acquired)

    def _open(self, parts: TorrentParts) -> Checking:
        """The torrent is known and the run begins: open its files; checking comes next."""
        checking = Checking(parts, self._make_storage(parts.torrent, self._ctx.save_path))
        self.machine.enter(checking)
        return checking

    async def _shutdown(self, acquired: bool) -> None:
        s = self._s
        shared = self.shared
        phase = self.phase
        try:
            if self.hand_over_on_stop:
                s.announcer.hand_over()
            else:
                await s.announcer.stop()
            if isinstance(phase, Opened):
                if self.delete_on_stop:
                    await s.checker.delete_files()
                else:
                    try:
                        await s.checker.save()  # (flushes the files first: before they are closed)
                    finally:
                        await phase.storage.close()
        finally:
            if isinstance(phase, Opened):
                phase.parts.uploader.release_cache()  # (a run's pieces are not kept past it)
                phase.parts.pieces.drop_spares()  # (nor its place among the pool's users)
                self.machine.enter(Loaded(phase.parts))  # files closed; the picker keeps what was verified
            if shared is not None:
                s.connector.unregister(shared)
                if acquired:
                    await shared.release()
            if self.machine.can(State.STOPPED):
                self.machine.to(State.STOPPED)
            self.tg = None
            self.finished.set()

    async def _swarm_until(self, done: anyio.Event | None, install: Callable[[Swarm | None], None],
                           parts: TorrentParts | None) -> None:
        """Run a swarm (connector, trackers, DHT; with the torrent's ``parts``: web seeds and the
        choker) until ``done`` is set, or until a pause or stop cancels it; ``install`` hands it
        to the phase (and None once it ended). Then close its peers."""
        s = self._s
        try:
            with anyio.CancelScope() as scope:  # pause() cancels it
                async with anyio.create_task_group() as group:
                    install(Swarm(group, scope))
                    if parts is not None:
                        self.serving.set()
                    # (the dialer and the choker run in it while they have work, and end when
                    # idle: new addresses, a peer's interest start them again, in ``ctx.swarm``)
                    s.connector.wake()
                    s.announcer.start(group)
                    if parts is not None:
                        parts.uploader.swarm_started()
                        parts.webseeds.start(group)
                    if done is None:
                        await anyio.sleep(math.inf)
                    await done.wait()  # type: ignore[union-attr]
                    scope.cancel()
        finally:  # (a stop cancels from outside: the phase must not keep a swarm that is gone)
            install(None)
            for peer in list(self._ctx.peers.values()):
                peer.close("paused")
            s.connector.reset()
            # (its trackers hear stopped, as at a stop, bounded: paused, or ended for a check of
            # its data, during which it serves nobody; the next swarm's coordinator says started)
            if self.machine.state is State.PAUSED or self.check_wanted:
                with anyio.CancelScope(shield=True):
                    await s.announcer.stop()

    async def _wait_while_paused(self) -> bool:
        """Block while paused; True if it was paused (the caller looks at the state again)."""
        if self.machine.state is not State.PAUSED:
            return False
        self._wakeup = LazyEvent()
        await self._wakeup.wait()
        return True

    async def _fetch_metadata(self, phase: FetchingMetadata) -> TorrentParts:
        """A magnet: find peers (given, trackers, DHT), fetch the info dict, become a full session."""
        ctx = self._ctx
        s = self._s
        if self.machine.state is not State.PAUSED:  # (paused before it ran, e.g. while queued: stays paused)
            self.machine.to(State.PAUSED if self.start_paused else State.DOWNLOADING_METADATA)
        self.start_paused = False  # applied
        metadata = phase.metadata

        def install(swarm: Swarm | None) -> None:
            phase.swarm = swarm

        while not metadata.done.is_set():
            if not await self._wait_while_paused():
                await self._swarm_until(metadata.done, install, None)
        s.announcer.forget()  # the full session announces afresh
        ctx.pool.forgive_all()  # the metadata peers are dialed again for the data
        assert metadata.result is not None
        magnet = ctx.magnet
        trackers = magnet.trackers if magnet is not None else ()
        web_seeds = magnet.web_seeds if magnet is not None else ()
        torrent = Torrent.from_info_bytes(metadata.result, trackers=trackers, web_seeds=web_seeds)
        parts = self._make_parts(torrent)
        self.machine.enter(Loaded(parts))
        s.connector.register_other_hashes()
        await s.save_metainfo()
        if self._before_check is not None:  # (no file opened yet: the owner may place some there)
            if self.machine.state is State.DOWNLOADING_METADATA:  # (its metadata is in: its check is
                self.machine.to(State.CHECKING)  # what it waits for, a copy of a placed file first)
            await self._before_check(torrent)
        return parts

    async def _check(self, checking: Checking) -> None:
        s = self._s
        await s.checker.check(checking)
        complete = checking.parts.picker.is_complete()
        if complete:
            await self._create_empty_files()
            self.completed.set()
        if self.machine.state is State.PAUSED:
            return  # paused while checking: resume() picks the state
        if self.machine.state is State.DOWNLOADING and complete:
            self.machine.to(State.SEEDING)  # resumed while checking, and the data was all there
        elif self.machine.state is not State.DOWNLOADING:
            self.machine.to(self._active_state())

    async def _create_empty_files(self) -> None:
        """Complete: the zero-length files exist too (no piece writes them; with only such
        files selected, nothing else would)."""
        phase = self.phase
        if isinstance(phase, Opened):
            await phase.storage.create_empty_files()

    async def _live(self, parts: TorrentParts, storage: PieceStorage) -> None:
        """Checked: a ``Live`` phase (with its swarm) while not paused, ``Paused`` while paused,
        until a stop is asked for."""

        def install(swarm: Swarm | None) -> None:
            self.machine.enter(Live(parts, storage, swarm=swarm) if swarm is not None
                               else Paused(parts, storage))

        while not self.stop_requested:
            install(None)
            if self.check_wanted:
                await self._check_again(parts, storage)
                continue
            if not await self._wait_while_paused():
                await self._swarm_until(None, install, parts)

    async def _check_again(self, parts: TorrentParts, storage: PieceStorage) -> None:
        """Check the whole torrent while it runs (seed mode found a piece that fails, or its
        completion waits for it: ``on_complete``), then on in the state it is in: seeding (complete
        now), downloading what failed, or paused as it was."""
        checking = Checking(parts, storage)
        self.machine.enter(checking)
        await self._s.checker.check_again(checking)
        self.check_wanted = False
        if self.completion_checked and not self.completed.is_set() and self._still(State.CHECKING):
            await self._complete(State.CHECKING)  # (a completion's check, all there: the trackers
        if self.machine.state is State.CHECKING:  # told on the next swarm's start)
            self.machine.to(self._active_state())
        if self.machine.state is State.SEEDING and not self._ctx.config.seed:
            self.stop_requested = True  # (complete after all and not asked to seed: done)
        await self._s.checker.save()


def _swarm_of(phase: object) -> Swarm | None:
    if isinstance(phase, (FetchingMetadata, Live)):
        return phase.swarm
    return None
