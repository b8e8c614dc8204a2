"""HTTP streaming of a job's files: ``GET``/``HEAD /api/jobs/{id}/files/{index}/stream``.

A thin shell over the session's file reader (``Session.open_file``): byte ranges (RFC 9110
section 14: ``206``, ``Accept-Ranges``, ``Content-Range``, suffix ranges, ``416`` past the
end), a Content-Type from the file's extension, and bytes sent as their pieces pass the hash
check; the reader's pieces are fetched first while the response runs. A completed job's files
are read from disk as they are. A media player given only the URL cannot send the API token, so
each job has a read-only stream token (an HMAC of the job id under the API token: stable, and
changed with the API token) accepted in the ``token`` query parameter of that job's stream URLs
alone; it grants nothing else. A magnet's file exists once the metadata has come: a request
waits for it at most ``metadata_wait`` seconds, then is answered ``503`` with ``Retry-After``
and why the metadata is not coming (the session's swarm diagnosis), never left hanging.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import mimetypes
import os
import re
from pathlib import Path
from typing import Protocol

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ..errors import StreamError
from ..jobs import JobService
from ..jobs.model import JobConflict, JobNotFound
from ..policy.stall import diagnose

log = logging.getLogger(__name__)

CHUNK = 256 * 1024  # bytes per read of the reader (and per body message)
METADATA_WAIT = 5.0  # seconds a stream request of a magnet waits for its metadata before a 503
# (below the 10 s a client such as schemathesis or a media player waits for an answer)
METADATA_RETRY_AFTER = 5  # the 503's Retry-After, seconds
STREAM_PATH = re.compile(r"^/api/jobs/([^/]+)/files/(\d+)/stream$")
EXTRA_TYPES = {  # what mimetypes may not know on every system
    ".mkv": "video/x-matroska", ".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm",
    ".mka": "audio/x-matroska", ".flac": "audio/flac", ".opus": "audio/ogg", ".srt": "application/x-subrip",
    ".vtt": "text/vtt", ".ts": "video/mp2t",
}


def stream_token(api_token: str, job_id: str) -> str:
    """The read-only stream token of job ``job_id`` under ``api_token``."""
    digest = hmac.new(api_token.encode(), b"stream:" + job_id.encode(), hashlib.sha256).hexdigest()
    return digest[:40]


def is_stream_request(method: str, path: str) -> str | None:
    """The job id when ``method path`` is a stream request (the one use of a stream token)."""
    if method not in ("GET", "HEAD"):
        return None
    match = STREAM_PATH.match(path)
    return match.group(1) if match else None


def content_type(name: str) -> str:
    """The Content-Type of a file called ``name`` (by its extension)."""
    ext = os.path.splitext(name)[1].lower()
    if ext in EXTRA_TYPES:
        return EXTRA_TYPES[ext]
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


class RangeNotSatisfiable(Exception):
    """A ``Range`` no byte of the file is in (``416``)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``[start, end)`` a ``Range: bytes=...`` header asks of a ``size``-byte file; None for
    the whole file (no header, another unit, several ranges, or a malformed one: RFC 9110 says
    a server may ignore such a header). ``RangeNotSatisfiable`` when it starts past the end."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":  # a suffix: the last N bytes
        if last == "":
            return None
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable
        return (max(0, size - n), size)
    start = int(first)
    if start >= size:
        raise RangeNotSatisfiable
    end = size if last == "" else min(size, int(last) + 1)
    if end <= start:
        return None  # last < first: invalid, ignored
    return (start, end)


class ByteSource(Protocol):
    """What a stream response reads from (a session's ``FileReader``, or a file on disk)."""

    name: str

    @property
    def size(self) -> int:
        """The file's length."""
        ...

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position."""
        ...

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes from the position (fewer only at the end)."""
        ...

    async def aclose(self) -> None:
        """Release it."""
        ...


class DiskFile:
    """A whole file of a completed job, read in a worker thread."""

    def __init__(self, path: Path, name: str, size: int) -> None:
        self.path = path
        self.name = name
        self._size = size
        self._pos = 0
        self._fd: int | None = None

    @property
    def size(self) -> int:
        """The file's length."""
        return self._size

    async def open(self) -> DiskFile:
        """Open the file (``StreamError`` if it is gone)."""
        try:
            self._fd = await anyio.to_thread.run_sync(os.open, self.path, os.O_RDONLY)
        except OSError as exc:
            raise StreamError(f"{self.name}: {exc.strerror or exc}") from exc
        return self

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position (whence 0 only is needed here)."""
        self._pos = offset
        return offset

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes from the position."""
        assert self._fd is not None
        fd, pos = self._fd, self._pos
        n = self._size - pos if n < 0 else min(n, self._size - pos)
        data = await anyio.to_thread.run_sync(os.pread, fd, n, pos)
        if len(data) < n:
            raise StreamError(f"{self.name}: shorter on disk than the torrent says")
        self._pos += len(data)
        return data

    async def aclose(self) -> None:
        """Close the file."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class ReaderResponse(Response):
    """Sends ``[start, end)`` of a ``ByteSource`` as it becomes readable, then closes it (also
    when the client goes away mid-way: its pieces stop being deadlines at once)."""

    def __init__(self, source: ByteSource, start: int, end: int, status: int,
                 headers: dict[str, str], head: bool) -> None:
        super().__init__(status_code=status, headers=headers)
        self.source = source
        self.start = start
        self.end = end
        self.head = head

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Headers, then the bytes in chunks (none for ``HEAD``)."""
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            if self.head:
                await send({"type": "http.response.body", "body": b""})
                return
            async with anyio.create_task_group() as tg:
                async def watch_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(watch_disconnect)
                self.source.seek(self.start)
                pos = self.start
                try:
                    while pos < self.end:
                        data = await self.source.read(min(CHUNK, self.end - pos))
                        if not data:
                            break
                        pos += len(data)
                        await send({"type": "http.response.body", "body": data, "more_body": pos < self.end})
                except StreamError as exc:  # the headers are out: the connection ends short
                    log.warning("stream of %s ended at byte %d: %s", self.source.name, pos, exc)
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.source.aclose()


async def range_response(request: Request, source: ByteSource) -> Response:
    """The answer to a ``GET``/``HEAD`` of ``source``: all of it (``200``), the range asked
    for (``206``), or ``416``; the response closes ``source`` when done (so does a ``416``)."""
    size = source.size
    headers = {"Accept-Ranges": "bytes", "Content-Type": content_type(source.name),
               "Cache-Control": "no-store"}
    try:
        wanted = parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiable:
        await source.aclose()
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}",
                                                  "Content-Type": "text/plain"})
    if wanted is None:
        start, end, status = 0, size, 200
    else:
        start, end = wanted
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    return ReaderResponse(source, start, end, status, headers, request.method == "HEAD")


class StreamApi:
    """The stream routes (``create_app`` mounts them)."""

    def __init__(self, service: JobService, token: str, *, metadata_wait: float = METADATA_WAIT) -> None:
        self.service = service
        self.token = token
        self.metadata_wait = metadata_wait

    async def stream_token(self, request: Request) -> Response:
        """``GET /api/jobs/{id}/stream-token``: the job's read-only stream token and the URL of
        each file's stream."""
        job = self.service.get(request.path_params["job_id"])
        token = stream_token(self.token, job.id)
        files = [{"index": f.index, "path": f.path,
                  "url": f"/api/jobs/{job.id}/files/{f.index}/stream?token={token}"} for f in job.files]
        return JSONResponse({"token": token, "files": files}, headers={"Cache-Control": "no-store"})

    async def stream(self, request: Request) -> Response:
        """``GET``/``HEAD /api/jobs/{id}/files/{index}/stream``: the file's bytes (a range of
        them with ``Range``), sent as they pass the hash check. Starts a queued or paused job."""
        job_id = request.path_params["job_id"]
        try:
            index = int(request.path_params["index"])
        except ValueError:
            return JSONResponse({"error": "file index must be a number", "field": "index"}, status_code=400)
        try:
            session = await self.service.stream_session(job_id)
        except JobNotFound as exc:
            return JSONResponse({"error": str(exc), "field": "id"}, status_code=404)
        except JobConflict as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        source: ByteSource
        try:
            if session is None:  # a completed job: the whole file is on disk
                job = self.service.get(job_id)
                entry = next((f for f in job.files if f.index == index), None)
                if entry is None:
                    raise StreamError(f"{job.name} has no file {index}")
                # (where its data is: a completion that could not reach its save path left it
                # in its incomplete folder; a rename the disk refused, under its suffix)
                path = self.service.file_on_disk(job_id, index)
                if path is None:
                    raise StreamError(f"{job.name} has no file {index}")
                source = await DiskFile(path, entry.path, entry.size).open()
            else:
                opened: ByteSource | None = None
                with anyio.move_on_after(self.metadata_wait):
                    opened = await session.open_file(index).open()
                if opened is None:  # (a reader is registered only once open: nothing to undo)
                    why = diagnose(session.stall_watch.swarm_facts())[1]
                    return JSONResponse(
                        {"error": f"the metadata of {session.name} has not arrived after "
                                  f"{self.metadata_wait:g} s: {why}", "retry_after": METADATA_RETRY_AFTER},
                        status_code=503, headers={"Retry-After": str(METADATA_RETRY_AFTER)})
                source = opened
        except StreamError as exc:
            return JSONResponse({"error": str(exc), "field": "index"}, status_code=404)
        return await range_response(request, source)
