"""BEP 46: the jobs added from a ``magnet:?xs=urn:btpk:`` link follow the link's newer versions.

Every ``Config.mutable_poll_interval`` seconds (and when asked: ``JobService.follow_mutable``) the
newest signed item of each link some unfinished or completed job was added from is read over the
DHT. A higher ``seq`` naming another info-hash replaces the job: it is cancelled, its files kept,
and the new version is added with the same save path (no incomplete folder), category, tags and
limits, so the new torrent's check finds the files that did not change and downloads only the
rest. A higher ``seq`` naming the same info-hash is only recorded. Each round puts the newest
item it read again, as signed (BEP 46: consumers keep the items alive). See docs/mutable.md.
"""

from __future__ import annotations

import logging

import anyio

from ...engine.mutable import resolve_with
from ...errors import TorrentEngineError
from ...formats.magnet import parse_mutable_magnet
from ...net.dht.bep46 import TorrentVersion
from ..model import JobError, JobState
from ..store import JobRecord
from .adding import JobAdder
from .addoptions import AddOptions
from .host import IntakeHost

log = logging.getLogger(__name__)

# the jobs that follow their link: every one but those cancelled or failed (a completed
# download of a published archive takes its next version too)
FOLLOWED_STATES = frozenset(JobState) - {JobState.CANCELLED, JobState.FAILED}


class MutableFollower:
    """Looks for newer versions of the BEP 46 links ``run``'s jobs came from; ``adder`` adds them."""

    def __init__(self, run: IntakeHost, adder: JobAdder, interval: float) -> None:
        self.run = run
        self.adder = adder
        self.interval = interval
        self._lock = anyio.Lock()  # (one round at a time: a poll asked during the timer's waits)

    async def run_forever(self) -> None:
        """The timer (in the service's task group): a round every ``interval`` seconds."""
        while True:
            await anyio.sleep(self.interval)
            await self.poll()

    def followed(self) -> dict[str, list[JobRecord]]:
        """The jobs that follow a link, by the link they came from."""
        out: dict[str, list[JobRecord]] = {}
        for rec in self.run.jobs:
            if rec.mutable_seq is not None and rec.state in FOLLOWED_STATES:
                out.setdefault(rec.source, []).append(rec)
        return out

    async def poll(self) -> int:
        """One round: each link looked up once (bounded by ``RESOLVE_TIMEOUT``); returns how many
        jobs moved to a new version. A link that cannot be read now is logged and tried again
        next round."""
        async with self._lock:
            moved = 0
            for link, recs in self.followed().items():
                try:
                    version = await resolve_with(self.run.manager.shared, parse_mutable_magnet(link),
                                                 keep_alive=True)
                except (TorrentEngineError, OSError) as exc:  # (a bad item, no answer, the DHT off)
                    log.warning("mutable torrent %s: no version read: %s", link[:100], exc)
                    continue
                for rec in recs:
                    if await self._follow(rec, version):
                        moved += 1
            return moved

    async def _follow(self, rec: JobRecord, version: TorrentVersion) -> bool:
        if rec.mutable_seq is None or version.seq <= rec.mutable_seq or rec.state not in FOLLOWED_STATES:
            return False  # (an older or the same version: a node that has not heard of the newest)
        if version.info_hash.hex() == rec.info_hash:
            rec.mutable_seq = version.seq  # (the same torrent: nothing to fetch)
            await self.run.save(rec)
            return False
        o = rec.options
        options = AddOptions(save_path=o.save_path, files=None, sequential=o.sequential, paused=o.paused,
                             peers=o.peers, features=rec.features, download_limit=o.download_limit,
                             upload_limit=o.upload_limit, download_path="", max_peers=o.max_peers,
                             owner=o.owner)
        reason = f"replaced by version {version.seq} of its BEP 46 link (info-hash {version.info_hash.hex()})"
        log.info("job %s (seq %d, %s): %s", rec.id, rec.mutable_seq, rec.info_hash, reason)
        if rec.state is not JobState.COMPLETED:  # (its files stay: the new version's check reads them)
            await self.run.cancel_job(rec, delete_files=False, error=reason)
        try:
            job, _ = await self.adder.add_version(rec.source, version, options)
        except JobError as exc:
            log.error("job %s: version %d of its link could not be added: %s", rec.id, version.seq, exc)
            return False
        if rec.state is JobState.COMPLETED:  # (its successor follows the link from now on)
            rec.mutable_seq = None
            await self.run.save(rec)
        log.info("job %s follows job %s's link at version %d", job.id, rec.id, version.seq)
        return True
