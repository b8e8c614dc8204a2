"""The job service's categories (each with its own save path), its known tags and the highest
job number handed out, on disk.

Pure bookkeeping plus one JSON file, ``state_dir/categories.json``, written atomically; the
service checks save paths (confined to the download root) before anything lands here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ...jsonvalue import JSON
from ...storage.resume import write_atomic
from ..model import InvalidJobRequest, JobConflict

log = logging.getLogger("torrent_engine.jobs.categories")

CATALOGUE_FILE = "categories.json"


@dataclass(frozen=True, slots=True)
class Category:
    """A category: its name and the save path its jobs go to ("" = the download root)."""

    name: str
    save_path: str

    def to_json(self) -> dict[str, JSON]:
        """The category as JSON."""
        return {"name": self.name, "save_path": self.save_path}


class Catalogue:
    """Categories by name and the set of known tags (``None`` folder: nothing is persisted)."""

    def __init__(self, state_dir: Path | None) -> None:
        self.path = state_dir / CATALOGUE_FILE if state_dir is not None else None
        self.categories: dict[str, Category] = {}
        self.tags: set[str] = set()
        self.last_number = 0  # the highest job number handed out (never handed out again)

    def load(self) -> None:
        """Read the file (a damaged one is logged and starts empty)."""
        if self.path is None or not self.path.is_file():
            return
        try:
            raw = json.loads(self.path.read_bytes())
            cats = {str(n): Category(str(n), str(c["save_path"])) for n, c in raw["categories"].items()}
            tags = {str(t) for t in raw["tags"]}
            self.last_number = int(raw.get("last_number", 0))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("%s is unreadable; categories and tags start empty: %s", self.path, exc)
            return
        self.categories, self.tags = cats, tags

    def snapshot(self) -> tuple[dict[str, Category], set[str], int]:
        """What the catalogue holds, to put back (``restore``) when a change cannot be saved."""
        return dict(self.categories), set(self.tags), self.last_number

    def restore(self, saved: tuple[dict[str, Category], set[str], int]) -> None:
        """Put back what ``snapshot`` took."""
        self.categories, self.tags, self.last_number = dict(saved[0]), set(saved[1]), saved[2]

    def encode(self) -> bytes:
        """The file's bytes."""
        return json.dumps({"categories": {n: {"save_path": c.save_path} for n, c in self.categories.items()},
                           "tags": sorted(self.tags), "last_number": self.last_number}).encode()

    def write(self, data: bytes) -> None:
        """Write the file atomically (in a worker thread)."""
        if self.path is not None:
            write_atomic(self.path, data)

    def create(self, name: str, save_path: str) -> Category:
        """A new category; ``JobConflict`` if it exists."""
        if name == "":
            raise InvalidJobRequest("must not be empty", "category")
        if name in self.categories:
            raise JobConflict(f"category {name!r} already exists", "category")
        cat = self.categories[name] = Category(name, save_path)
        return cat

    def edit(self, name: str, save_path: str) -> Category:
        """Change a category's save path; ``JobConflict`` if there is no such category."""
        if name not in self.categories:
            raise JobConflict(f"no category {name!r}", "category")
        cat = self.categories[name] = Category(name, save_path)
        return cat

    def remove(self, names: list[str]) -> list[str]:
        """Forget these categories (and their subcategories); the names removed."""
        gone = [n for n in self.categories if any(n == x or n.startswith(x + "/") for x in names)]
        for n in gone:
            del self.categories[n]
        return gone
