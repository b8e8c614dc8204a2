"""Incomplete files under a suffix: while ``partial_file_suffix`` is set (qBittorrent's "append
.!qB extension to incomplete files", Transmission's ``rename-partial-files``, ``.part``), each file
of a job that is not complete is kept on disk under its name and the suffix, and takes its name once
its last piece is verified (a media library or a script watching the folder sees whole files only).

The record owns which files carry which suffix (``JobRecord.partial``, ``partial_suffix``);
``file_paths`` are where the files are on disk (what is written, moved, deleted),
``snapshot.shown_paths`` what a job's views, renames and claims name (the names without the
suffix); ``validate.check_suffix`` the suffixes taken. Which files of an add carry it, here;
``partial_names.PartialNames`` renames the files of running jobs."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from ...formats.metainfo import Torrent

__all__ = ["partial_at_add", "suffixable"]


def suffixable(paths: Sequence[Sequence[str]], sizes: Sequence[int], pads: Collection[int],
               there: Collection[str]) -> list[int]:
    """The files that carry the suffix while not complete: each that holds bytes, is no pad file
    and was not on disk before the job (``there``, "/"-joined: such a file is checked where it is
    and keeps its name, as qBittorrent's file searcher keeps it)."""
    return [i for i, (p, size) in enumerate(zip(paths, sizes, strict=True))
            if size > 0 and i not in pads and "/".join(p) not in there]


def partial_at_add(torrent: Torrent, found: Mapping[str, int], suffix: str) -> tuple[int, ...]:
    """The files of ``torrent``, added now, kept under ``suffix`` (none without one): those
    ``suffixable`` names, ``found`` the files there (as ``paths.files_found`` gives them)."""
    if not suffix:
        return ()
    files = torrent.files
    return tuple(suffixable([f.path for f in files], [f.length for f in files],
                            {i for i, f in enumerate(files) if f.pad}, found))
