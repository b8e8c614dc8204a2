"""The indexed folders of the deduplication (``dedup.py``): the files below them walked (no
symbolic link followed), each known by its size once walked and by its BEP 52 pieces root once
hashed, each hashed once per (size, mtime) (``state_dir/dedup-folders.json``). Blocking: a
worker thread's."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...policy.dedup import Known
from ...storage.dedup import file_pieces_root

__all__ = ["FOLDER", "FOLDERS_FILE", "MAX_FOLDER_FILES", "FolderIndex", "json_text", "write_json"]

log = logging.getLogger("torrent_engine.jobs.dedup")

FOLDERS_FILE = "dedup-folders.json"
FOLDERS_VERSION = 1
MAX_FOLDER_FILES = 100_000  # files looked at in one walk of the indexed folders, all together
FOLDER = "folder"  # the origin of an indexed folder's file (a job's file: its job id)
# the file systems a walk does not enter: the kernel's views, none holding data (/proc's kcore
# says it is 128 TiB long), as locate's updatedb prunes them (PRUNEFS)
PSEUDO_FILE_SYSTEMS = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs", "debugfs", "tracefs",
    "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "autofs", "binfmt_misc",
    "efivarfs", "rpc_pipefs", "nsfs", "selinuxfs"})
MOUNTINFO = "/proc/self/mountinfo"


def pseudo_mounts(mountinfo: str = MOUNTINFO) -> frozenset[str]:
    """Where the ``PSEUDO_FILE_SYSTEMS`` are mounted (none where ``mountinfo`` cannot be read:
    not Linux)."""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return frozenset()
    out = set()
    for line in lines:
        fields = line.split()
        if "-" in fields:
            cut = fields.index("-")
            if len(fields) > cut + 1 and len(fields) > 4 and fields[cut + 1] in PSEUDO_FILE_SYSTEMS:
                # (the mount point, its spaces and the like written as octal escapes)
                out.add(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class _FolderFile:
    size: int
    mtime_ns: int
    root: bytes


class FolderIndex:
    """The pieces roots of the files below the indexed folders (blocking: a worker thread's)."""

    def __init__(self, cache_path: Path | None) -> None:
        self._cache_path = cache_path
        self.files: dict[str, _FolderFile] = {}
        self.by_root: dict[bytes, list[str]] = {}
        self.by_size: dict[int, list[str]] = {}
        self.sizes: dict[str, tuple[int, int]] = {}  # path -> (size, mtime) as last walked (or cached)
        self.hashed = 0  # files hashed by the walks so far (a file unchanged is not hashed again)
        self.truncated = False  # the last walk stopped at MAX_FOLDER_FILES
        # what a walk says of itself (``status``): under way, its files hashed of those to hash
        # (new or changed since hashed), when the last ended (time.time()), why a folder could
        # not be read
        self.walking = False
        self.hashing = (0, 0)
        self.walked_at: float | None = None
        self.errors: dict[str, str] = {}

    def load(self) -> None:
        """Read the cache of an earlier run (nothing when there is none or it is unreadable)."""
        if self._cache_path is None:
            return
        try:
            data = json.loads(self._cache_path.read_text(encoding="utf-8"))
            files = {str(p): _FolderFile(int(v[0]), int(v[1]), bytes.fromhex(v[2]))
                     for p, v in data["files"].items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            log.warning("ignoring the indexed folders' cache %s: %s", self._cache_path, exc)
            return
        self._set(files)

    def scan(self, folders: Sequence[str], max_files: int = MAX_FOLDER_FILES,
             sized: Callable[[], None] | None = None) -> int:
        """Walk ``folders`` (no symbolic link followed), then hash each regular, non-empty file
        not hashed before at its size and mtime; keep the result, saved. The files are known by
        their sizes once walked (``of_length``: what a v1 file is looked for by; ``sized`` is
        called then), before the hashing, which on a large library takes hours the first time.
        The files indexed."""
        self.truncated, self.walking, self.hashing = False, True, (0, 0)
        errors: dict[str, str] = {}

        def unread(exc: OSError) -> None:
            log.warning("indexed folder: cannot read %s: %s", exc.filename, exc.strerror)
            if exc.filename in folders:  # (the folder itself: said in its status)
                errors[exc.filename] = exc.strerror or str(exc)

        try:
            return self._scan(folders, max_files, sized, unread)
        finally:
            self.walking, self.walked_at, self.errors = False, time.time(), errors

    def _scan(self, folders: Sequence[str], max_files: int, sized: Callable[[], None] | None,
              unread: Callable[[OSError], None]) -> int:
        walked: dict[str, tuple[int, int]] = {}
        pruned = pseudo_mounts(MOUNTINFO)
        for folder in folders:
            if any(folder == p or folder.startswith(p.rstrip("/") + "/") for p in pruned):
                unread(OSError(0, "a file system of the kernel's, not walked", folder))
                continue
            for top, dirs, names in os.walk(folder, onerror=unread):
                dirs[:] = sorted(d for d in dirs if os.path.join(top, d) not in pruned)
                for name in sorted(names):
                    if name.endswith(".dedup"):  # (a file being placed)
                        continue
                    if len(walked) >= max_files:
                        self.truncated = True
                        break
                    path = os.path.join(top, name)
                    found = _stat(path)
                    if found is not None:
                        walked[path] = found
                if self.truncated:
                    break
            if self.truncated:
                log.warning("indexed folders: more than %d files, the rest not indexed", max_files)
                break
        self._set_sizes(walked)
        if sized is not None:
            sized()
        files: dict[str, _FolderFile] = {}
        kept = self.files
        total = sum(1 for path, found in walked.items()
                    if (f := kept.get(path)) is None or (f.size, f.mtime_ns) != found)
        done = 0
        for path, (size, mtime_ns) in walked.items():
            if (f := kept.get(path)) is None or (f.size, f.mtime_ns) != (size, mtime_ns):
                done += 1
                self.hashing = (done, total)  # (the one being hashed)
            hashed = self._look(path, size, mtime_ns)
            if hashed is not None:
                files[path] = hashed
        self._set(files)
        self._save(files)
        return len(files)

    def forget(self) -> None:
        """Know no file (no folder is indexed now); the cache stays, for when one is again."""
        self._set({})
        self.errors, self.hashing, self.walked_at = {}, (0, 0), None

    def _look(self, path: str, size: int, mtime_ns: int) -> _FolderFile | None:
        kept = self.files.get(path)
        if kept is not None and (kept.size, kept.mtime_ns) == (size, mtime_ns):
            return kept
        try:
            root = file_pieces_root(path, size)
            self.hashed += 1
        except OSError as exc:
            log.warning("indexed folder: cannot hash %s: %s", path, exc.strerror or exc)
            return None
        if _stat(path) != (size, mtime_ns):
            return None  # (written since it was walked: the next walk sees it settled)
        return _FolderFile(size, mtime_ns, root)

    def _set(self, files: dict[str, _FolderFile]) -> None:
        by_root: dict[bytes, list[str]] = {}
        for path, f in files.items():
            by_root.setdefault(f.root, []).append(path)
        self.files, self.by_root = files, by_root
        self._set_sizes({path: (f.size, f.mtime_ns) for path, f in files.items()})

    def _set_sizes(self, walked: dict[str, tuple[int, int]]) -> None:
        by_size: dict[int, list[str]] = {}
        for path, (size, _mtime) in walked.items():
            by_size.setdefault(size, []).append(path)
        self.sizes, self.by_size = walked, by_size

    def _save(self, files: dict[str, _FolderFile]) -> None:
        if self._cache_path is None:
            return
        data = {"version": FOLDERS_VERSION,
                "files": {p: [f.size, f.mtime_ns, f.root.hex()] for p, f in files.items()}}
        try:
            write_json(self._cache_path, data)
        except OSError as exc:
            log.warning("cannot save the indexed folders' cache %s: %s", self._cache_path, exc)

    def known(self, root: bytes) -> list[Known]:
        """The indexed files of pieces root ``root``."""
        return [Known(path=p, length=self.files[p].size, origin=FOLDER) for p in self.by_root.get(root, ())]

    def of_length(self, length: int) -> list[Known]:
        """The indexed files ``length`` bytes long."""
        return [Known(path=p, length=length, origin=FOLDER) for p in self.by_size.get(length, ())]

    def unchanged(self, path: str) -> bool:
        """Whether the file at ``path`` is as it was when hashed: its pieces root known is its
        own (blocking)."""
        f = self.files.get(path)
        return f is not None and _stat(path) == (f.size, f.mtime_ns)

    def as_walked(self, path: str) -> bool:
        """Whether the file at ``path`` is as the last walk saw it (its length known is its own;
        it may not be hashed yet) (blocking)."""
        known = self.sizes.get(path)
        return known is not None and _stat(path) == known


def _stat(path: str) -> tuple[int, int] | None:
    """(size, mtime) of a regular, non-empty file that is no symbolic link at ``path`` (None
    otherwise, or when it cannot be read)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) and st.st_size > 0 else None


def write_json(path: Path, data: dict[str, object]) -> None:
    """Write ``data`` to ``path`` whole or not at all (a temporary file renamed over it)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json_text(data))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


JSON_CHUNK = 1000  # a large mapping's entries encoded together (``json_text``)


def json_text(data: dict[str, object]) -> str:
    """``data`` as ``json.dumps(data, separators=(",", ":"))`` writes it, made by the C encoder
    ``JSON_CHUNK`` entries of each large mapping at a time. ``json.dump`` to a file takes the
    pure-Python encoder: 96 ms for an index of 30 000 jobs against 35, each write of the index
    (every ``INDEX_SAVE_PAUSE`` while adds come) taking the GIL from the loop; one ``dumps`` of
    it all would hold the GIL those 35 ms at once."""
    def dumps(value: object) -> str:
        return json.dumps(value, separators=(",", ":"))

    members = []
    for key, value in data.items():
        if isinstance(value, dict) and len(value) > JSON_CHUNK:
            entries = list(value.items())
            text = "{" + ",".join(dumps(dict(entries[at:at + JSON_CHUNK]))[1:-1]
                                  for at in range(0, len(entries), JSON_CHUNK)) + "}"
        else:
            text = dumps(value)
        members.append(f"{dumps(key)}:{text}")
    return "{" + ",".join(members) + "}"
