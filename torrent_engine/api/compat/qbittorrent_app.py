"""qBittorrent's ``app/getDirectoryContent``, ``app/getFreeSpaceAtPath``, ``app/processInfo``,
``app/cookies``/``setCookies`` and ``clientdata/load``/``store`` (WebAPI 2.11-2.15.2), as
qBittorrent's appcontroller.cpp and clientdatastorage.cpp answer them, but within the download
root: a path outside it is refused (qBittorrent lists any folder of the host; the daemon shows
none outside the root, as it saves none there). Blocking file work: the caller runs these in a
worker thread.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ...engine import fdlimit
from ...jobs import SavePathError
from ...jobs.disk.listing import folder_entries, free_bytes
from ...jobs.disk.paths import confine
from ...jsonvalue import JSON, JSONObject
from ...net.httpclient.cookies import MAX_COOKIES, Cookie, CookieError, check_cookie
from .. import jsontext
from .qbittorrent_records import QbtError, form_json

CLIENT_DATA_FILE = "qbittorrent_clientdata.json"
CLIENT_DATA_MAX = 1024 * 1024  # qBittorrent's CLIENT_DATA_FILE_MAX_SIZE
_MODES = {"all": (True, True), "dirs": (True, False), "files": (False, True)}


def _confined(root: Path, text: str) -> Path:
    try:
        return confine(root, text)
    except SavePathError as exc:
        raise QbtError(400, f"Invalid directory path: {exc}") from exc


def directory_content(root: Path, dir_path: str, mode: str, with_metadata: bool) -> list[JSON]:
    """``app/getDirectoryContent``: the entries of ``dir_path`` (absolute, inside ``root``) but
    ``.`` and ``..`` and hidden ones (QDir's filters), their full paths, or with ``with_metadata``
    their ``name``, ``type``, ``size`` (files) and dates (epoch seconds; ``-1`` for a birth time
    the file system does not give). Sorted by name (QDirIterator's order is the file system's)."""
    if not dir_path or dir_path.startswith(":") or not Path(dir_path).is_absolute():
        raise QbtError(400, "Invalid directory path")
    folder = _confined(root, dir_path)
    if not folder.is_dir():
        raise QbtError(404, "Directory does not exist")
    wanted = _MODES.get(mode)
    if wanted is None:
        raise QbtError(400, "Invalid mode, allowed values: all, dirs, files")
    dirs, files = wanted
    try:
        entries = folder_entries(root, folder, dirs=dirs, files=files)[0]
    except FileNotFoundError as exc:  # (gone in the moment between)
        raise QbtError(404, "Directory does not exist") from exc
    except OSError as exc:
        if fdlimit.exhausted(exc):
            raise  # (a 503 saying why)
        raise QbtError(400, f"Invalid directory path: it cannot be read: {exc.strerror or exc}") from exc
    out: list[JSON] = []
    for entry in entries:
        if not with_metadata:
            out.append(str(entry.path))
            continue
        st = entry.st
        record: dict[str, JSON] = {
            "name": entry.name,
            "creation_date": int(getattr(st, "st_birthtime", -1)),
            "last_access_date": int(st.st_atime), "last_modification_date": int(st.st_mtime),
            "type": "dir" if entry.is_dir else "file"}
        if not entry.is_dir:
            record["size"] = st.st_size
        out.append(record)
    return out


def free_space(root: Path, path: str) -> int:
    """``app/getFreeSpaceAtPath``: the bytes free to us at ``path`` (inside ``root``; relative to
    it when relative), or at its nearest folder that exists (``-1``, qBittorrent's answer when it
    cannot tell)."""
    return free_bytes(root, _confined(root, path))


def launch_time() -> int:
    """When this process started (epoch seconds): from /proc on Linux, else when this module was
    loaded (at the daemon's start)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # (field 22: start time after boot)
        with open("/proc/stat", encoding="ascii") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return int(boot + started)
    except (OSError, ValueError, IndexError, StopIteration):
        return _LOADED


_LOADED = int(time.time())


def cookie_records(cookies: list[Cookie]) -> list[JSON]:
    """``app/cookies``: qBittorrent's records (``expirationDate`` ``-1`` for a session cookie)."""
    return [{"name": c.name, "domain": c.domain, "path": c.path, "value": c.value,
             "expirationDate": -1 if c.expires is None else c.expires} for c in cookies]


def read_cookies(text: str) -> list[Cookie]:
    """``app/setCookies``'s ``cookies``: a JSON array of qBittorrent's records (a field left out
    is empty, ``expirationDate`` left out (or ``-1``, as ``app/cookies`` shows one) a session
    cookie, other fields passed over, as qBittorrent reads them), each checked: a ``400`` naming
    the first that is wrong (``cookies[2].domain: …``), where qBittorrent would keep a cookie it
    never sends."""
    rows = form_json(text.strip(), "cookies")
    if not isinstance(rows, list):
        raise QbtError(400, "cookies must be array")
    if len(rows) > MAX_COOKIES:
        raise QbtError(400, f"cookies: at most {MAX_COOKIES} cookies")
    out: list[Cookie] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise QbtError(400, f"cookies[{i}]: must be an object")
        expires = row.get("expirationDate")
        if expires == -1 and not isinstance(expires, bool):
            expires = None  # (what app/cookies shows for a session cookie: one read and written back stays)
        try:
            out.append(check_cookie(row.get("name", ""), row.get("value", ""), row.get("domain", ""),
                                    row.get("path", ""), expires))
        except CookieError as exc:
            raise QbtError(400, f"cookies[{i}].{exc.field}: {exc.reason}") from exc
    return out


class ClientData:
    """A web client's own settings (``clientdata/store``), kept as one JSON object in
    ``STATE_DIR/qbittorrent_clientdata.json`` (in memory without a state folder)."""

    def __init__(self, state_dir: Path | None) -> None:
        self.path = state_dir / CLIENT_DATA_FILE if state_dir is not None else None
        self.data: JSONObject = self._read()

    def _read(self) -> JSONObject:
        if self.path is None:
            return {}
        try:
            with open(self.path, "rb") as f:
                raw = f.read(CLIENT_DATA_MAX + 1)
            value = jsontext.loads(raw)
        except (OSError, ValueError):
            return {}  # (none yet, or not ours: qBittorrent starts empty and says so in its log)
        return value if isinstance(value, dict) else {}

    def load(self, keys: str) -> JSONObject:
        """``clientdata/load`` ``keys`` (a JSON array of strings; empty: everything)."""
        if not keys:
            return dict(self.data)
        names = form_json(keys, "keys")
        if not isinstance(names, list):
            raise QbtError(400, "`keys` must be an array")
        if not all(isinstance(n, str) for n in names):
            raise QbtError(400, "Items of `keys` must be strings")
        return {n: self.data[n] for n in names if isinstance(n, str) and n in self.data}

    def store(self, data: str) -> None:
        """``clientdata/store`` ``data`` (a JSON object): its keys set, those with ``null``
        removed; ``409`` when the whole would be over 1 MiB, nothing changed then."""
        changes = form_json(data, "data")
        if not isinstance(changes, dict):
            raise QbtError(400, "`data` must be an object")
        merged = dict(self.data)
        for key, value in changes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        if merged == self.data:
            return
        text = json.dumps(merged, ensure_ascii=False, separators=(",", ":")).encode()
        if len(text) > CLIENT_DATA_MAX:
            raise QbtError(409, f"Total web client data must not be larger than {CLIENT_DATA_MAX} bytes")
        if self.path is not None:
            try:
                self._write(text)
            except OSError as exc:
                raise QbtError(409, f"Failed to save web client data. Error: \"{exc.strerror}\"") from exc
        self.data = merged

    def _write(self, text: bytes) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{CLIENT_DATA_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
