"""Our API's ``GET /api/folders``: the folders (and files) of one folder inside the download root,
and the space free there, for a client that picks a path (the web UI's save paths and a
creation's source, as qBittorrent's WebUI completes them with ``app/getDirectoryContent``). An
admin lists the download root, a user their own folder (where their paths lead); a viewer, who
picks no path, none."""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..engine import fdlimit
from ..jobs import InvalidJobRequest, JobNotFound, JobService, SavePathError
from ..jobs.disk.listing import FolderEntry, folder_entries, free_bytes
from ..jobs.disk.paths import confine
from ..jsonvalue import JSON
from .access import Gate, current
from .features import query_count, query_flag
from .users import Scope

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "MAX_PREFIX", "FolderApi"]

DEFAULT_LIMIT = 200  # entries a listing shows unless asked for more
MAX_LIMIT = 1000
MAX_PREFIX = 255  # a name's length (NAME_MAX)


def _listing(root: Path, base: Path, path: str, prefix: str, files: bool, limit: int) -> dict[str, JSON]:
    """(Blocking.) The answer for ``path`` (relative: from ``base``) inside ``base``, itself
    inside the download ``root``."""
    folder = confine(base, path or None)
    entries: list[FolderEntry] = []
    truncated = False
    if folder.is_dir():
        entries, truncated = folder_entries(base, folder, files=files, prefix=prefix, limit=limit)
    elif folder.exists():
        raise InvalidJobRequest(f"{path[:200]!r} is a file, not a folder", "path")
    elif folder != base:  # (a user's own folder, made with their first torrent, is there empty)
        raise JobNotFound(f"no folder {path[:200]!r} in {str(base)!r}", "path")
    records: list[JSON] = []
    for e in entries:
        record: dict[str, JSON] = {"name": e.name, "path": str(e.path), "type": "dir" if e.is_dir else "file",
                                   "modified": int(e.st.st_mtime)}
        if not e.is_dir:
            record["size"] = e.st.st_size
        records.append(record)
    return {"path": str(folder), "root": str(base),
            "parent": str(folder.parent) if folder != base else None,
            "entries": records, "truncated": truncated, "free_bytes": free_bytes(root, folder)}


class FolderApi:
    """``GET /api/folders``."""

    def __init__(self, service: JobService, gate: Gate) -> None:
        self.service = service
        self.gate = gate

    def routes(self) -> list[Route]:
        """The group's routes."""
        return [Route("/api/folders", self.listing, methods=["GET"])]

    async def listing(self, request: Request) -> Response:
        """``GET /api/folders?path=&prefix=&files=&limit=``: ``{"path", "root", "parent",
        "entries": [{"name", "path", "type", "size"?, "modified"}], "truncated", "free_bytes"}``,
        the entries of ``path`` (absolute, or relative to the root: the download root, a user's
        own folder) whose names begin with ``prefix`` (any case), folders alone unless
        ``files=true``, sorted by name, hidden ones left out, at most ``limit`` (200; up to
        1 000; ``truncated`` when more were there). Picking a path is part of adding one: a
        viewer is refused (``403``)."""
        self.gate.require(Scope.ADD, "list the folders")
        path = request.query_params.get("path", "")
        prefix = request.query_params.get("prefix", "")
        if len(prefix) > MAX_PREFIX or "/" in prefix or "\x00" in prefix:
            raise InvalidJobRequest(f"must be the start of one name (no '/', at most {MAX_PREFIX} "
                                    "characters)", "prefix")
        files = query_flag(request, "files")
        limit = query_count(request, "limit", least=1, most=MAX_LIMIT) or DEFAULT_LIMIT
        root = self.service.download_root
        p = current()
        base = root
        if not p.admin and p.name:  # (a user: their folder, their wording of a path out of it)
            base = self.gate.user_root(p.name)
            path = self.gate.confine(path, "path") or ""
        try:
            answer = await anyio.to_thread.run_sync(_listing, root, base, path, prefix, files, limit)
        except SavePathError as exc:
            raise SavePathError(str(exc), "path") from exc
        except FileNotFoundError as exc:  # (gone in the moment between)
            raise JobNotFound(f"no folder {path[:200]!r} in {str(base)!r}", "path") from exc
        except OSError as exc:
            if fdlimit.exhausted(exc):
                raise  # (a 503 saying why)
            raise InvalidJobRequest(f"{path[:200]!r} cannot be read: {exc.strerror or exc}", "path") from exc
        return JSONResponse(answer)
