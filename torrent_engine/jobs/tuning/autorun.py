"""The programs the service runs when a job is added, completes or is done seeding, as plain
values: a command line checked when it is set, its arguments built for one job, the environment
Transmission's scripts read, and what a run did. No process is started here (runner.py does).

No shell ever reads a command line: it is split into arguments (``shlex``, as a POSIX shell
would split it) when it is set, and each placeholder is replaced inside its own argument, so a
torrent named ``x; rm -rf ~`` or ``$(reboot)`` reaches the program as one literal argument.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from ...formats.metainfo import Torrent
from ..model import InvalidJobRequest, Job, ProgramEvent, ProgramRun

__all__ = ["PLACEHOLDERS", "OUTPUT_TAIL", "ProgramContext", "ProgramEvent", "ProgramRun", "OutputTail",
           "build_argv", "build_env", "check_command", "job_context", "split_command"]

# qBittorrent's placeholders (its "Run external program" options), and %% for a literal %.
PLACEHOLDERS: dict[str, str] = {
    "N": "torrent name", "L": "category", "G": "tags (separated by commas)",
    "F": "content path (the file of a one-file torrent, else its top folder)",
    "R": "root path (the torrent's top folder, \"\" for a single file)", "D": "save path",
    "C": "number of files", "Z": "size in bytes", "T": "current tracker",
    "I": "info-hash v1", "J": "info-hash v2", "K": "torrent id",
}
_PLACEHOLDER = re.compile(r"%(.?)", re.DOTALL)
OUTPUT_TAIL = 4096  # bytes of a program's output (stdout and stderr together) kept and shown


def split_command(command: str, name: str) -> list[str]:
    """``command`` split into arguments as a POSIX shell splits words (quotes, backslashes), no
    more: no variables, no ``;``, no globbing. ``InvalidJobRequest`` naming ``name`` when it
    cannot be split (an open quote) or has an unknown placeholder."""
    try:
        words = shlex.split(command, comments=False, posix=True)
    except ValueError as exc:
        raise InvalidJobRequest(f"cannot be split into arguments: {exc}", name) from None
    for word in words:
        for match in _PLACEHOLDER.finditer(word):
            letter = match.group(1)
            if letter != "%" and letter not in PLACEHOLDERS:
                shown = f"%{letter}" if letter else "a lone % at the end of an argument"
                known = " ".join(f"%{k}" for k in PLACEHOLDERS)
                raise InvalidJobRequest(f"unknown placeholder {shown} in {word!r} (known: {known}; "
                                        "%% for a literal %)", name)
    return words


def check_command(value: object, name: str) -> str:
    """A command line a setting may hold ("" = none), checked (see ``split_command``)."""
    if not isinstance(value, str):
        raise InvalidJobRequest("must be a command line (a string)", name)
    if "\x00" in value:
        raise InvalidJobRequest("must not contain a NUL character", name)
    if value.strip() and not split_command(value, name):
        raise InvalidJobRequest("names no program", name)
    return value.strip()


@dataclass(frozen=True, slots=True)
class ProgramContext:
    """What a program is told of one job (placeholders and Transmission's environment)."""

    name: str
    category: str
    tags: tuple[str, ...]
    content_path: str
    root_path: str
    save_path: str
    num_files: int
    size: int
    tracker: str  # the tracker that answered last ("" when none did)
    trackers: tuple[str, ...]
    info_hash_v1: str  # hex, "" for a v2-only torrent
    info_hash_v2: str  # hex, "" for a v1-only torrent (or a magnet before its metadata)
    torrent_id: str  # the job's info-hash as the dialects name it
    number: int  # the job's small number (Transmission's torrent id)
    downloaded: int

    def values(self) -> dict[str, str]:
        """Each placeholder's text."""
        return {"N": self.name, "L": self.category, "G": ",".join(self.tags), "F": self.content_path,
                "R": self.root_path, "D": self.save_path, "C": str(self.num_files), "Z": str(self.size),
                "T": self.tracker, "I": self.info_hash_v1, "J": self.info_hash_v2, "K": self.torrent_id,
                "%": "%"}


def job_context(job: Job, torrent: Torrent | None) -> ProgramContext:
    """What a program is told of ``job`` (``torrent``: its metainfo, None before a magnet's)."""
    save = job.options.save_path.rstrip("/") or "/"
    data = job.options.data_path.rstrip("/") or "/"  # (where its files are: the content's paths)
    paths = [f.path for f in job.files]
    if len(paths) == 1:
        content, root = f"{data}/{paths[0]}", ""
    elif paths:
        top = paths[0].split("/")[0]
        content = root = f"{data}/{top}"
    else:
        content, root = data, ""
    urls = tuple(t.url for t in job.trackers)
    working = [t.url for t in job.trackers if t.status == "working"]
    v1 = torrent.info_hash_v1.hex() if torrent is not None and torrent.info_hash_v1 is not None else (
        job.info_hash if len(job.info_hash) == 40 and torrent is None else "")
    v2 = torrent.info_hash_v2.hex() if torrent is not None and torrent.info_hash_v2 is not None else ""
    return ProgramContext(name=job.name, category=job.features.category, tags=job.features.tags,
                          content_path=content, root_path=root, save_path=save, num_files=len(paths),
                          size=job.total_size, tracker=working[0] if working else "", trackers=urls,
                          info_hash_v1=v1, info_hash_v2=v2, torrent_id=job.info_hash, number=job.number,
                          downloaded=job.downloaded)


def build_argv(command: str, context: ProgramContext) -> list[str]:
    """The program's arguments for one job: ``command`` split first, then each placeholder
    replaced inside its argument (a value never splits an argument nor joins two)."""
    values = context.values()
    words = split_command(command, "command")
    return [_PLACEHOLDER.sub(lambda m: values[m.group(1)], word) for word in words]


def build_env(context: ProgramContext, base: Mapping[str, str], *, app_version: str,
              now: float | None = None) -> dict[str, str]:
    """``base`` (the daemon's environment) plus the variables Transmission's scripts read."""
    local = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(now))
    return {**base, "TR_APP_VERSION": app_version, "TR_TIME_LOCALTIME": local,
            "TR_TORRENT_DIR": context.save_path, "TR_TORRENT_HASH": context.torrent_id,
            "TR_TORRENT_ID": str(context.number), "TR_TORRENT_NAME": context.name,
            "TR_TORRENT_LABELS": ",".join(context.tags),
            "TR_TORRENT_BYTES_DOWNLOADED": str(context.downloaded),
            "TR_TORRENT_TRACKERS": ",".join(context.trackers)}


@dataclass(slots=True)
class OutputTail:
    """The last ``limit`` bytes of what a program wrote (the rest is counted, not kept)."""

    limit: int = OUTPUT_TAIL
    data: bytearray = field(default_factory=bytearray)
    total: int = 0

    def feed(self, chunk: bytes) -> None:
        """Keep the tail of ``chunk`` too."""
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > self.limit:
            del self.data[:len(self.data) - self.limit]

    def text(self) -> str:
        """The tail as text (undecodable bytes replaced), saying how much came before it."""
        shown = self.data.decode("utf-8", errors="replace")
        cut = self.total - len(self.data)
        return f"[{cut} bytes before]\n{shown}" if cut > 0 else shown
