"""The jobs as the API's JSON text, each job's kept while its snapshot object is the same (the
service keeps a job's snapshot until it changes: with 10 000 jobs, mostly idle, a list or the
event stream's first ``snapshot`` is the joining of kept texts, not 10 000 encodings). One cache
for the job lists (app.py) and the event stream's snapshot (sse.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from ..jobs import Job, JobNotFound, JobService
from . import pages as paging
from .pages import array_parts, gather, joined_pages


def dumps(value: object) -> bytes:
    """The API's JSON encoding (UTF-8, no spaces)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class JobJson:
    """Each job's JSON text by id, with the snapshot object it was made from."""

    def __init__(self, service: JobService) -> None:
        self.service = service
        self._kept: dict[str, tuple[Job, bytes]] = {}

    def array(self, jobs: Iterable[Job]) -> bytes:
        """The JSON array of ``jobs``, reusing the text of each whose snapshot has not changed."""
        parts = [self._text(job) for job in jobs]
        self._prune()
        return b"[" + b",".join(parts) + b"]"

    async def array_parts(self, jobs: Sequence[Job]) -> list[bytes]:
        """``array(jobs)`` in parts (their join is it), ``LIST_PAGE`` jobs' texts joined at a
        time, the loop let run as they are made."""
        pages = await joined_pages(jobs, self._text)
        self._prune()
        return array_parts(pages)

    def _text(self, job: Job) -> bytes:
        """The job's JSON text: the one kept while its snapshot is the same object."""
        hit = self._kept.get(job.id)
        if hit is None or hit[0] is not job:
            hit = self._kept[job.id] = (job, dumps(job.to_json()))
        return hit[1]

    def _prune(self) -> None:
        """Forget removed jobs' texts now and then (only ask about the kept ids: snapshotting
        every job would cost a page of a long list)."""
        kept = self._kept
        if len(kept) > 2 * len(self.service) + 1024:
            for job_id in [k for k in kept if k not in self.service]:
                del kept[job_id]

    async def snapshot_parts(self, only: str | None) -> list[bytes]:
        """The event stream's snapshot of every job (``only``: user ``only``'s jobs alone, each
        written as ``json.dumps`` writes it, as the stream writes a user's) as the parts of a JSON
        array, read ``STEP`` jobs at a time with the loop let run as they are read."""
        if only is None:
            return await self.array_parts(await gather(self.service.list_pages(paging.STEP), list))
        mine = await gather(self.service.list_pages(paging.STEP, owner=only), list)
        return array_parts(await joined_pages(
            mine, lambda job: json.dumps(job.to_json(), separators=(",", ":")).encode()))

    def snapshot(self, job_id: str | None) -> bytes:
        """The event stream's snapshot: every job (``job_id`` None), or that one (none when it is
        gone), as a JSON array."""
        if job_id is None:
            return self.array(self.service.list())
        try:
            return self.array([self.service.get(job_id)])
        except JobNotFound:
            return b"[]"
