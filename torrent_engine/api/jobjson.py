"""The jobs as the API's JSON text, each job's kept while its snapshot object is the same (the
service keeps a job's snapshot until it changes: with 10 000 jobs, mostly idle, a list or the
event stream's first ``snapshot`` is the joining of kept texts, not 10 000 encodings). One cache
for the job lists (app.py) and the event stream's snapshot (sse.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from ..jobs import Job, JobNotFound, JobService


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
        kept = self._kept
        parts: list[bytes] = []
        for job in jobs:
            hit = kept.get(job.id)
            if hit is None or hit[0] is not job:
                hit = (job, dumps(job.to_json()))
                kept[job.id] = hit
            parts.append(hit[1])
        if len(kept) > 2 * len(self.service) + 1024:  # forget removed jobs now and then (only
            # ask about the kept ids: snapshotting every job would cost a page of a long list)
            for job_id in [k for k in kept if k not in self.service]:
                del kept[job_id]
        return b"[" + b",".join(parts) + b"]"

    def snapshot(self, job_id: str | None) -> bytes:
        """The event stream's snapshot: every job (``job_id`` None), or that one (none when it is
        gone), as a JSON array."""
        if job_id is None:
            return self.array(self.service.list())
        try:
            return self.array([self.service.get(job_id)])
        except JobNotFound:
            return b"[]"
