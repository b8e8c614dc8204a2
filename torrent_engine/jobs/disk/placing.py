"""The files being placed by the deduplication, kept where a start finds them: a crash in the
middle of a placement leaves its temporary file (``storage.dedup``'s ``.NAME.XXXXXXXX.dedup``)
beside the target, hidden, as large as the part copied; the next start removes it.

``state_dir/dedup-placing.json`` names the targets of each placement under way (those of a
job's files that something held may be placed at), written before the first file is placed and
removed when the last placement ends, so it exists only while files are placed or after a
crash. Blocking: its owner calls it from the placing worker thread (and a start's, once).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from ...storage.dedup import remove_temporaries
from .folder_index import write_json

__all__ = ["PLACING_FILE", "PlacingJournal"]

log = logging.getLogger("torrent_engine.jobs.dedup")

PLACING_FILE = "dedup-placing.json"
PLACING_VERSION = 1


class PlacingJournal:
    """The targets of the placements under way, one entry a job (``begin``, ``end``), and what
    a crash left of them removed at a start (``recover``). Thread-safe: placements of several
    adds run in worker threads at once."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._placing: dict[str, list[str]] = {}

    def begin(self, key: str, targets: Sequence[str]) -> None:
        """(Blocking.) ``key``'s files at ``targets`` may be placed from now on: written down
        before any is (``OSError`` when it cannot be: then nothing is placed)."""
        with self._lock:
            self._placing[key] = list(targets)
            try:
                self._write()
            except OSError:
                del self._placing[key]
                raise

    def end(self, key: str) -> None:
        """(Blocking.) ``key``'s placements are over (each placed whole or its temporary removed)."""
        with self._lock:
            if self._placing.pop(key, None) is None:
                return
            try:
                self._write()
            except OSError as exc:  # (the entry stays on disk: a start looks at those targets for nothing)
                log.warning("dedup: cannot update %s: %s", self._path, exc)

    def _write(self) -> None:
        path = self._path
        if path is None:
            return
        if self._placing:
            write_json(path, {"version": PLACING_VERSION, "placing": dict(self._placing)})
        else:
            path.unlink(missing_ok=True)

    def recover(self) -> list[Path]:
        """(Blocking; at a start, before any placement.) Remove what the placements written down
        by an earlier run left (it stopped in the middle of them); the paths removed. An
        unreadable file is said in the log and removed (the temporaries it named stay)."""
        path = self._path
        if path is None:
            return []
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != PLACING_VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            targets = [str(t) for files in data["placing"].values() for t in files]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("dedup: %s is unreadable (%s): files being placed by the last run are not "
                        "looked for", path, exc)
            targets = []
        removed = remove_temporaries(targets)
        for temporary in removed:
            log.info("dedup: removed %s, left by a placement the last run did not finish", temporary)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("dedup: cannot remove %s: %s", path, exc)
        return removed
