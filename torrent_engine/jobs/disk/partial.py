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

from collections.abc import Mapping

from ...formats.metainfo import Torrent

__all__ = ["partial_at_add"]


def partial_at_add(torrent: Torrent, found: Mapping[str, int], suffix: str) -> tuple[int, ...]:
    """The files of ``torrent``, added now, kept under ``suffix`` (none without one): each that
    holds bytes and is not on disk under its own name (``found``: the files there, "/"-joined, as
    ``paths.files_found`` gives them); one that is there is checked where it is, as qBittorrent's
    file searcher keeps it."""
    if not suffix:
        return ()
    return tuple(i for i, f in enumerate(torrent.files)
                 if not f.pad and f.length > 0 and "/".join(f.path) not in found)
