"""The job service driven by random sequences of what its users do, checked against a model.

A hypothesis state machine adds (alone, in a batch, twice at once), pauses, resumes, rechecks,
moves (a save path, a download's incomplete folder), points at data elsewhere (a location set
without a move), renames a file or folder of, and cancels jobs of four small torrents (two with
their data on disk, one without, one with half of it), runs two calls on the same job at once,
turns the incomplete folder on and off, and restarts the service between steps. A peer on
loopback has the torrent without data: its jobs added alone download it from there (and, from
an incomplete folder, move to their save path).

After each step: every refusal is a typed ``JobError``; the unfinished jobs are the model's,
with its save paths and incomplete folders, paused as they were across a restart; deleting a
job's files removes those it did not find there and keeps those it found (at its add, or at the
new place of a move). Once the checks and downloads have run, a job shows its data complete
only when it is whole where the job keeps it, and a job whose data is whole there seeds unless
paused. Data that is whole stays byte for byte as it was.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.from_thread
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.integration.fake_seed import FakeSeed, block_of
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.config import Config
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import FINISHED_STATES, AddOptions, Job, JobError, JobService, JobState
from torrent_engine.net.peer import messages as m
from torrent_engine.net.peer.wire import PeerWire

# where a job's data may be: the download root itself, or a folder of it
PLACES = ("", "here", "there")


@dataclasses.dataclass(frozen=True)
class Payload:
    torrent: Torrent
    files: tuple[tuple[str, bytes], ...]  # (path under the save path, contents)


def _payloads() -> tuple[Payload, ...]:
    def one(name: str, size: int, seed: int) -> Payload:
        data = payload(size, seed)
        return Payload(make_torrent([((name,), data)], 16384, single=True, name=name), ((name, data),))

    def many(name: str, sizes: tuple[int, ...], seed: int) -> Payload:
        files = [((f"f{i}.bin",), payload(n, seed * 10 + i)) for i, n in enumerate(sizes)]
        torrent = make_torrent(files, 16384, name=name)
        return Payload(torrent, tuple((f"{name}/{path[0]}", data) for path, data in files))

    return (one("a.bin", 70_000, 1), many("multi", (20_000, 50_000, 3), 2), one("c.bin", 40_000, 3),
            many("half", (32_768, 32_768), 4))


PAYLOADS = _payloads()
ON_DISK = {0: len(PAYLOADS[0].files), 1: len(PAYLOADS[1].files), 3: 1}  # torrent -> its files written
SERVED = 2  # the torrent a peer on loopback has: its jobs added alone are given that peer
# what a job of each torrent renames (as its file list shows it), and back
RENAMES = {0: ("a.bin", "a-renamed.bin"), 1: ("multi", "multi-renamed"), 2: ("c.bin", "c-renamed.bin"),
           3: ("half/f0.bin", "half/g0.bin")}
RENAMED = 10  # a layout's key: the torrent's index, plus this when its job renamed its files


def layout(key: int) -> tuple[tuple[str, bytes], ...]:
    """The files (path under the data's place, contents) of a torrent's layout: as the torrent
    names them (``key`` its index), or as its job renamed them (``RENAMED`` more)."""
    files = PAYLOADS[key % RENAMED].files
    if key < RENAMED:
        return files
    old, new = RENAMES[key % RENAMED]
    return tuple((new + path[len(old):] if path == old or path.startswith(old + "/") else path, data)
                 for path, data in files)


class Giver(FakeSeed):
    """Has every piece of its torrent and answers each request with its block."""

    def __init__(self, index: int) -> None:
        super().__init__(PAYLOADS[index].torrent)
        self.data = b"".join(data for _, data in PAYLOADS[index].files)

    async def on_message(self, msg: m.Message, wire: PeerWire, stream: anyio.abc.SocketStream) -> None:
        if isinstance(msg, m.Request):
            await stream.send(wire.send(block_of(self.torrent, self.data, msg)))


def _config() -> Config:
    return Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                  lsd_enabled=False, tracker_enabled=False, seed=True, encryption="disable")


@dataclasses.dataclass
class Expected:
    """What the model knows of one torrent's unfinished job."""

    job_id: str
    place: str
    claimed: bool  # added in seed mode: the job says its data is whole until a check says not
    # its files that were there before it, or where a move took it: deleting its files leaves
    # them (they are the user's)
    preexisting: frozenset[str]
    incomplete: str | None = None  # the folder it downloads into (its data's place), if not ``place``
    # files the model cannot tell found by a move or not (two moves at once): neither asked of
    maybe: frozenset[str] = frozenset()
    key: int = 0  # its files' layout (``layout``): the torrent's index, or its renamed one

    @property
    def data(self) -> str:
        """Where its files are: its incomplete folder, or its save path."""
        return self.place if self.incomplete is None else self.incomplete


class _Steps(list[str]):
    """The steps of one example; also written to ``$JOBS_MACHINE_LOG`` when set (a failure that does
    not repeat is not shrunk, and its steps are the file's last)."""

    def __init__(self) -> None:
        super().__init__()
        self._log = os.environ.get("JOBS_MACHINE_LOG")
        if self._log:
            with open(self._log, "a") as f:
                f.write("--- an example\n")

    def append(self, step: str) -> None:
        super().append(step)
        if self._log:
            with open(self._log, "a") as f:
                f.write(step + "\n")


class JobsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="jobs-machine-"))
        self.root = self.tmp / "dl"
        self.state = self.tmp / "state"
        self.portal_cm = anyio.from_thread.start_blocking_portal("asyncio")
        self.portal = self.portal_cm.__enter__()
        self.service_cm: Any = None
        self.jobs: JobService
        self.expected: dict[int, Expected] = {}
        # where each torrent's files are whole, as the model knows it: torrent -> places
        self.whole: dict[int, set[str]] = {}
        self.steps: list[str] = _Steps()
        self.giving: Any = None
        self.moving_back: set[int] = set()  # torrents whose whole data a download's move took away
        self.peers: tuple[tuple[str, int], ...] = ()

    @initialize()
    def start(self) -> None:
        for index, count in ON_DISK.items():
            for path, data in PAYLOADS[index].files[:count]:
                target = self.root / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            if count == len(PAYLOADS[index].files):
                self.whole[index] = {""}
        giver = Giver(SERVED)
        self.giving, _ = self.portal.start_task(giver.serve)
        self.peers = (("127.0.0.1", giver.port),)
        self._open()

    def _open(self) -> None:
        service = JobService(_config(), download_root=self.root, state_dir=self.state)
        self.service_cm = self.portal.wrap_async_context_manager(service)
        self.jobs = self.service_cm.__enter__()

    def _close(self) -> None:
        if self.service_cm is not None:
            cm, self.service_cm = self.service_cm, None
            cm.__exit__(None, None, None)

    def teardown(self) -> None:
        try:
            self._close()
        finally:
            if self.giving is not None:
                self.giving.cancel()
            self.portal_cm.__exit__(None, None, None)
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- running the service's calls -------------------------------------------------------------
    def _call(self, work: Callable[[], Awaitable[Any]]) -> Any:
        """Run one call in the service's loop; a ``JobError`` is returned, anything else raised."""
        async def run() -> Any:
            with anyio.fail_after(20):
                try:
                    return await work()
                except JobError as exc:
                    return exc
        return self.portal.call(run)

    def _together(self, first: Callable[[], Awaitable[Any]],
                  second: Callable[[], Awaitable[Any]]) -> list[Any]:
        results: list[Any] = [None, None]

        async def one(i: int, work: Callable[[], Awaitable[Any]]) -> None:
            try:
                results[i] = await work()
            except JobError as exc:
                results[i] = exc

        async def run() -> None:
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(one, 0, first)
                    tg.start_soon(one, 1, second)
        self.portal.call(run)
        return results

    def _save_path(self, place: str) -> str | None:
        return str(self.root / place) if place else None

    # -- what users do ---------------------------------------------------------------------------
    @rule(index=st.integers(0, len(PAYLOADS) - 1), place=st.sampled_from(PLACES), paused=st.booleans(),
          seed_mode=st.booleans())
    def add(self, index: int, place: str, paused: bool, seed_mode: bool) -> None:
        self.steps.append(f"add {index=} {place=} {paused=} {seed_mode=}")
        torrent = PAYLOADS[index].torrent
        peers = self.peers if index == SERVED else ()
        seen = self._files()
        result = self._call(lambda: self.jobs.add(torrent, save_path=self._save_path(place), paused=paused,
                                                  seed_mode=seed_mode, peers=peers))
        self._added(index, place, seed_mode, result, seen)

    def _files(self) -> set[Path]:
        """The files under the download root now (before an add: those the new job finds). A
        walk, which passes over a folder the service removes meanwhile (a move's emptied one)."""
        return {(Path(top) / name).relative_to(self.root) for top, _, names in os.walk(self.root)
                for name in names}

    def _added(self, index: int, place: str, seed_mode: bool, result: Any, seen: set[Path]) -> None:
        expected = self.expected.get(index)
        if isinstance(result, JobError):
            # refused: only because its files are another job's (or its own job exists)
            assert expected is not None or self._clashes(index, place), (index, place, result)
            return
        job, created = result
        if expected is not None:
            assert not created and job.id == expected.job_id, (index, job, expected)
            return
        assert created, (index, job)
        incomplete = self._incomplete(job)
        data = place if incomplete is None else incomplete
        there = frozenset(path for path, _ in PAYLOADS[index].files if Path(data) / path in seen)
        self.expected[index] = Expected(job.id, place, seed_mode, there, incomplete, key=index)
        if incomplete is not None and incomplete in self.whole.get(index, set()):
            # (its whole data, which a cancelled job of it left in the incomplete folder: the new
            # job finds it there, verifies it and moves it to its save path, as qBittorrent takes
            # what its temp folder holds; found, it stays the user's at the save path)
            self.whole[index].discard(incomplete)
            self.moving_back.add(index)

    def _incomplete(self, job: Job) -> str | None:
        folder = job.options.download_path
        return None if folder is None else str(Path(folder).relative_to(self.root.resolve()))

    def _clashes(self, index: int, place: str) -> bool:
        mine = {str(Path(place) / path) for path, _ in PAYLOADS[index].files}
        for expected in self.expected.values():
            theirs = {str(Path(expected.place) / path) for path, _ in layout(expected.key)}
            if mine & theirs:
                return True
        return False

    @rule(indexes=st.lists(st.integers(0, len(PAYLOADS) - 1), min_size=1, max_size=4),
          place=st.sampled_from(PLACES), seed_mode=st.booleans())
    def add_many(self, indexes: list[int], place: str, seed_mode: bool) -> None:
        self.steps.append(f"add_many {indexes=} {place=} {seed_mode=}")
        sources = [PAYLOADS[i].torrent for i in indexes]
        options = AddOptions(save_path=self._save_path(place), seed_mode=seed_mode)
        seen = self._files()
        results = self._call(lambda: self.jobs.add_many(sources, options))
        assert not isinstance(results, JobError), results
        for index, result in zip(indexes, results, strict=True):
            self._added(index, place, seed_mode, result, seen)

    @rule(index=st.integers(0, len(PAYLOADS) - 1),
          action=st.sampled_from(["pause", "resume", "recheck"]))
    def control(self, index: int, action: str) -> None:
        self.steps.append(f"control {index=} {action=}")
        expected = self.expected.get(index)
        if expected is None:
            return
        result = self._call(lambda: getattr(self.jobs, action)(expected.job_id))
        if action == "recheck" and not isinstance(result, JobError):
            expected.claimed = False

    @rule(index=st.integers(0, len(PAYLOADS) - 1), place=st.sampled_from(PLACES), find=st.booleans())
    def move(self, index: int, place: str, find: bool) -> None:
        """A move of the job's files, or (``find``) its data looked for at the new place."""
        self.steps.append(f"move {index=} {place=} {find=}")
        expected = self.expected.get(index)
        if expected is None:
            return
        seen = self._files()
        result = self._call(lambda: self.jobs.set_location(expected.job_id, str(self.root / place),
                                                           move=not find))
        if isinstance(result, JobError):
            event(f"a {'find' if find else 'move'} refused: {' '.join(str(result).split()[:6])}")
            return
        if find:
            self._looked_for(index, expected, place, result, seen)
        else:
            self._moved(index, expected, place, result, seen)

    def _looked_for(self, index: int, expected: Expected, place: str, job: Job, seen: set[Path]) -> None:
        """Nothing moved: the job's data is at ``place`` (no incomplete folder), verified there
        (not taken as complete); the files of it there are the user's; the old place's stay."""
        assert Path(job.options.save_path) == (self.root / place).resolve(), (job.options.save_path, place)
        assert job.options.download_path is None and not job.options.seed_mode, job.options
        old = expected.data
        if old == place:  # (its data is there already: its files stay its own, nothing is checked)
            return
        if self._whole_on_disk(expected.key, old):  # (downloaded since the model looked: the user's now)
            self.whole.setdefault(expected.key, set()).add(old)
        # (complete in its incomplete folder since the model looked, its data may have moved to
        # this, its save path, by itself: the files there may be its own)
        itself = expected.incomplete is not None and place == expected.place
        expected.place, expected.incomplete, expected.claimed = place, None, False
        there = frozenset(path for path, _ in layout(expected.key) if Path(place) / path in seen)
        expected.preexisting, expected.maybe = (frozenset(), there) if itself else (there, frozenset())

    def _moved(self, index: int, expected: Expected, place: str, job: Job, seen: set[Path] | None) -> None:
        """A move of a job downloading into its incomplete folder changes its save path alone
        (its download may have completed and moved to its save path since the model looked).
        ``seen``: the files before the move (None: not known), of which those the job had not at
        its old place and finds at its new one are the user's."""
        assert Path(job.options.save_path) == (self.root / place).resolve(), (job.options.save_path, place)
        old = expected.data
        expected.incomplete = self._incomplete(job)
        if place != expected.place and expected.incomplete is None:
            whole = self.whole.get(expected.key, set())
            if expected.place in whole:
                whole.discard(expected.place)
                whole.add(place)
        expected.place = place
        if seen is not None:
            self._found(index, expected, old, seen)

    def _found(self, index: int, expected: Expected, old: str, seen: set[Path]) -> None:
        """The job's data moved from ``old`` to ``expected.data``: the files it had not there that
        were at the new place already it found there (the user's, as an add finds them)."""
        if old == expected.data:
            return
        found = {path for path, _ in layout(expected.key)
                 if Path(old) / path not in seen and Path(expected.data) / path in seen}
        expected.preexisting |= found

    @rule(index=st.integers(0, len(PAYLOADS) - 1), folder=st.sampled_from(["", "incomplete", "partial"]))
    def move_download(self, index: int, folder: str) -> None:
        """The data of a job still downloading moves to another incomplete folder ("" none: its
        save path); a complete job's is refused."""
        self.steps.append(f"move_download {index=} {folder=}")
        expected = self.expected.get(index)
        if expected is None:
            return
        old = expected.data
        seen = self._files()
        result = self._call(lambda: self.jobs.set_download_path(
            expected.job_id, str(self.root / folder) if folder else ""))
        if isinstance(result, JobError):
            event(f"a download's move refused: {' '.join(str(result).split()[:6])}")
            return
        expected.incomplete = self._incomplete(result)
        assert expected.data == (folder or expected.place), (result, expected)
        self._found(index, expected, old, seen)
        if old != expected.data and old in self.whole.get(expected.key, set()):
            self.whole[expected.key].discard(old)  # (whole there, not verified yet: it moves back once it is)
            self.moving_back.add(index)

    @rule(index=st.integers(0, len(PAYLOADS) - 1))
    def rename(self, index: int) -> None:
        """A file or folder of the job renamed (or named back): its files move on disk, where
        its data is; those it found there stay the user's under their new names."""
        self.steps.append(f"rename {index=}")
        expected = self.expected.get(index)
        if expected is None:
            return
        old, new = RENAMES[index] if expected.key < RENAMED else RENAMES[index][::-1]
        result = self._call(lambda: self.jobs.rename_path(expected.job_id, old, new))
        if isinstance(result, JobError):
            event(f"a rename refused: {' '.join(str(result).split()[:6])}")
            return
        event("a job's files renamed")
        key = (expected.key + RENAMED) % (2 * RENAMED)
        names = dict(zip((p for p, _ in layout(expected.key)), (p for p, _ in layout(key)), strict=True))
        assert sorted(f.path for f in result.files) == sorted(names.values()), (result.files, names)
        if expected.data in self.whole.get(expected.key, set()):  # (its whole data, renamed)
            self.whole[expected.key].discard(expected.data)
            self.whole.setdefault(key, set()).add(expected.data)
        expected.preexisting = frozenset(names[p] for p in expected.preexisting)
        expected.maybe = frozenset(names[p] for p in expected.maybe)
        expected.key = key

    @rule(index=st.integers(0, len(PAYLOADS) - 1), delete=st.booleans())
    def cancel(self, index: int, delete: bool) -> None:
        self.steps.append(f"cancel {index=} {delete=}")
        expected = self.expected.get(index)
        if expected is None:
            return
        result = self._call(lambda: self.jobs.cancel(expected.job_id, delete_files=delete))
        assert not isinstance(result, JobError), result
        self._cancelled(index, expected, delete)

    def _cancelled(self, index: int, expected: Expected, delete: bool) -> None:
        del self.expected[index]
        key, data = expected.key, expected.data
        # (complete in its incomplete folder since the last settle, it may have moved to its save path)
        shown = Path(self.jobs.get(expected.job_id).options.data_path)
        if expected.incomplete is not None and shown == (self.root / expected.place).resolve():
            self.whole.get(key, set()).discard(data)
            data = expected.place
        if not delete and self._whole_on_disk(key, data):  # (downloaded: the user's now)
            self.whole.setdefault(key, set()).add(data)
        if delete:
            for path, _ in layout(key):
                target = self.root / data / path
                if path in expected.preexisting:  # (the user's: kept)
                    assert target.exists(), ("\n".join(self.steps), target, expected)
                elif path in expected.maybe:
                    if not target.exists():
                        self.whole.get(key, set()).discard(data)
                else:
                    self.whole.get(key, set()).discard(data)
                    assert not target.exists(), ("\n".join(self.steps), target, expected)

    @rule(index=st.integers(0, len(PAYLOADS) - 1), delete=st.booleans(),
          other=st.sampled_from(["pause", "resume", "recheck", "move", "cancel"]),
          place=st.sampled_from(PLACES))
    def cancel_beside(self, index: int, delete: bool, other: str, place: str) -> None:
        """A cancel and another call on the same job at once: the cancel wins, whatever order."""
        self.steps.append(f"cancel_beside {index=} {delete=} {other=} {place=}")
        expected = self.expected.get(index)
        if expected is None:
            return
        job_id = expected.job_id
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "pause": lambda: self.jobs.pause(job_id), "resume": lambda: self.jobs.resume(job_id),
            "recheck": lambda: self.jobs.recheck(job_id),
            "move": lambda: self.jobs.set_location(job_id, str(self.root / place)),
            "cancel": lambda: self.jobs.cancel(job_id),
        }
        seen = self._files()
        done, beside = self._together(lambda: self.jobs.cancel(job_id, delete_files=delete), calls[other])
        assert not isinstance(done, JobError), done
        assert self.jobs.get(job_id).state is JobState.CANCELLED, self.jobs.get(job_id)
        if other == "move" and not isinstance(beside, JobError):
            self._moved(index, expected, place, beside, seen)
        self._cancelled(index, expected, delete)

    @rule(index=st.integers(0, len(PAYLOADS) - 1),
          verbs=st.lists(st.sampled_from(["pause", "resume", "recheck", "move"]), min_size=2, max_size=2),
          places=st.lists(st.sampled_from(PLACES), min_size=2, max_size=2))
    def two_at_once(self, index: int, verbs: list[str], places: list[str]) -> None:
        """Two calls on the same job at once: each is taken or refused as a whole (the job's
        files are where its save path says, moved whole or not at all)."""
        self.steps.append(f"two_at_once {index=} {verbs=} {places=}")
        expected = self.expected.get(index)
        if expected is None:
            return
        job_id = expected.job_id

        def call(verb: str, place: str) -> Callable[[], Awaitable[Any]]:
            if verb == "move":
                return lambda: self.jobs.set_location(job_id, str(self.root / place))
            return lambda: getattr(self.jobs, verb)(job_id)
        seen = self._files()
        old = expected.data
        results = self._together(call(verbs[0], places[0]), call(verbs[1], places[1]))
        if any(v == "recheck" and not isinstance(r, JobError) for v, r in zip(verbs, results, strict=True)):
            expected.claimed = False
        job = self.jobs.get(job_id)
        place = str(Path(job.options.save_path).relative_to(self.root.resolve()))
        key = expected.key
        before = set(self.whole.get(key, set()))
        self._moved(index, expected, "" if place == "." else place, job, None)
        # (which of the places it went through it found files at, the model cannot tell)
        moves = [p for v, p in zip(verbs, places, strict=True) if v == "move"]
        expected.maybe |= {path for path, _ in layout(key) for p in moves
                           if Path(old) / path not in seen and Path(p) / path in seen}
        # (two moves: the first may have taken the job to whole data it then carried on with
        # the second; a move carries all of a job's files or none, so no copy is lost or made,
        # but the peer's torrent may have finished downloading meanwhile)
        after = {p for p in (*PLACES, "incomplete", "partial") if self._whole_on_disk(key, p)}
        if expected.incomplete is not None:  # (complete there, it moves to its save path soon)
            after.discard(expected.incomplete)
        # (or a download's move took whole data to its incomplete folder, and it came back)
        gains = index == SERVED or index in self.moving_back
        assert len(after) == len(before) or gains and len(after) == len(before) + 1, \
            ("\n".join(self.steps), before, after)
        self.whole[key] = after

    @rule(place=st.sampled_from(PLACES))
    def download(self, place: str) -> None:
        """The peer's torrent added alone and left to run: it downloads (into the incomplete
        folder, when that is on) and seeds from where it was asked to save."""
        self.steps.append(f"download {place=}")
        if SERVED in self.expected:
            return
        seen = self._files()
        result = self._call(lambda: self.jobs.add(PAYLOADS[SERVED].torrent, save_path=self._save_path(place),
                                                  peers=self.peers))
        self._added(SERVED, place, False, result, seen)
        if isinstance(result, JobError):
            return
        self.settle()
        job = self.jobs.get(result[0].id)
        assert job.state is JobState.SEEDING and self.expected[SERVED].data == place, \
            ("\n".join(self.steps), job)

    @rule(index=st.integers(0, len(PAYLOADS) - 1), place=st.sampled_from(PLACES), paused=st.booleans())
    def add_twice(self, index: int, place: str, paused: bool) -> None:
        """Two adds of one torrent at once share one job."""
        self.steps.append(f"add_twice {index=} {place=} {paused=}")
        torrent = PAYLOADS[index].torrent
        peers = self.peers if index == SERVED else ()
        seen = self._files()
        first, second = self._together(
            lambda: self.jobs.add(torrent, save_path=self._save_path(place), paused=paused, peers=peers),
            lambda: self.jobs.add(torrent, save_path=self._save_path(place), paused=paused, peers=peers))
        if isinstance(first, JobError) or isinstance(second, JobError):
            assert isinstance(first, JobError) and isinstance(second, JobError), (first, second)
            self._added(index, place, False, first, seen)
            return
        assert first[0].id == second[0].id and first[1] + second[1] <= 1, (first, second)  # (one job)
        self._added(index, place, False, first if first[1] else second, seen)

    @rule(on=st.booleans())
    def incomplete_folder(self, on: bool) -> None:
        """New jobs download into the incomplete folder (its default, ``incomplete``), or not."""
        self.steps.append(f"incomplete_folder {on=}")
        result = self._call(lambda: self.jobs.update_settings(incomplete_dir_enabled=on))
        assert not isinstance(result, JobError), result

    @rule()
    def restart(self) -> None:
        self.steps.append("restart")
        before = {job.id: (job.options.paused, job.options.save_path)
                  for job in self.jobs.list() if job.state not in FINISHED_STATES}
        self._close()
        self._open()
        jobs = [job for job in self.jobs.list() if job.state not in FINISHED_STATES]
        after = {job.id: (job.options.paused, job.options.save_path) for job in jobs}
        # (a job whose files are missing may stop again at any time: stopped, it is paused)
        stopped = {job.id for job in jobs if job.state is JobState.ERROR}
        assert {k: v for k, v in after.items() if k not in stopped} == \
            {k: v for k, v in before.items() if k not in stopped}, ("\n".join(self.steps), before, after)
        assert set(after) == set(before)

    @rule()
    @precondition(lambda self: bool(self.expected))
    def settle(self) -> None:
        """Let the checks run, then what each job shows must be true of its files."""
        self.steps.append("settle")
        def busy(job: Job) -> bool:  # (checking, downloading from the peer, moving or to move)
            return (job.state in (JobState.CHECKING, JobState.QUEUED) or job.moving
                    or (job.state is JobState.DOWNLOADING and bool(job.options.peers))
                    or (job.state is JobState.SEEDING and job.options.download_path is not None
                        and not held(job)))

        def held(job: Job) -> bool:  # (its save path has a file of its name, other bytes: it stays)
            if job.stall is None or job.stall.reason != "not_moved":
                return False
            assert any((Path(job.options.save_path) / f.path).exists() for f in job.files), \
                ("\n".join(self.steps), job)  # (nothing else keeps it from moving here)
            return True

        async def settled() -> None:
            with anyio.fail_after(15):
                while any(busy(job) for job in self.jobs.list()):
                    await self.jobs.tick()
                    await anyio.sleep(0.02)
            await self.jobs.tick()
        self.portal.call(settled)
        for index, expected in self.expected.items():
            job = self.jobs.get(expected.job_id)
            was, data = expected.incomplete, expected.data
            expected.incomplete = self._incomplete(job)  # (complete there: moved to its save path)
            key = expected.key
            if data != expected.data and data in self.whole.get(key, set()):
                self.whole[key].discard(data)
            if job.state in (JobState.SEEDING, JobState.COMPLETED) and not expected.claimed:
                assert job.progress == 1.0 and self._whole_on_disk(key, expected.data), \
                    ("\n".join(self.steps), index, expected, job)
                if expected.data not in self.whole.get(key, set()):
                    event("a job downloaded its data" if was is None
                          else "a job downloaded into its incomplete folder and moved it to its save path")
                self.whole.setdefault(key, set()).add(expected.data)
                self.moving_back.discard(index)
            whole = expected.data in self.whole.get(key, set())
            if whole and job.state is not JobState.PAUSED:  # (nor stopped for files it has)
                assert job.state is JobState.SEEDING, ("\n".join(self.steps), index, expected, job)

    def _whole_on_disk(self, key: int, place: str) -> bool:
        """Whether the files of layout ``key`` are whole at ``place``."""
        for path, data in layout(key):
            try:
                if (self.root / place / path).read_bytes() != data:
                    return False
            except OSError:  # (not there, or moved away meanwhile)
                return False
        return True

    # -- what must hold after every step -----------------------------------------------------------
    @invariant()
    def unfinished_jobs_are_the_models(self) -> None:
        if self.service_cm is None:
            return
        shown = {job.id: job for job in self.jobs.list() if job.state not in FINISHED_STATES}
        missing = {e.job_id for e in self.expected.values()} - set(shown)
        assert not missing, ("\n".join(self.steps), [self.jobs.get(m) for m in missing])
        assert set(shown) == {e.job_id for e in self.expected.values()}, (shown, self.expected)
        for expected in self.expected.values():
            assert Path(shown[expected.job_id].options.save_path) == (self.root / expected.place).resolve()

    @invariant()
    def whole_data_is_untouched(self) -> None:
        for key, places in self.whole.items():
            for place in places:
                for path, data in layout(key):
                    target = self.root / place / path
                    assert target.is_file() and target.read_bytes() == data, ("\n".join(self.steps), target)


# (JOBS_MACHINE_EXAMPLES, JOBS_MACHINE_STEPS: more, to look for trouble beyond the suite's run;
# JOBS_MACHINE_SHRINK=0: a failure is reported as found, not shrunk, which can take longer than
# the suite's timeout when each try waits out a step that hangs)
JobsMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("JOBS_MACHINE_EXAMPLES", "40")),
    stateful_step_count=int(os.environ.get("JOBS_MACHINE_STEPS", "12")),
    phases=[p for p in Phase if os.environ.get("JOBS_MACHINE_SHRINK", "1") != "0" or p is not Phase.shrink],
    deadline=None, database=None, suppress_health_check=list(HealthCheck))
TestJobsMachine = JobsMachine.TestCase
