"""The incomplete folder: where a new job's data goes while it downloads, to be moved to its save
path once every wanted piece is verified (by the service's one mover, ``move.py``). The add's
own choice beats the service's setting; a job whose data is complete already needs none.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...formats.magnet import Magnet
from ...formats.metainfo import Torrent
from ..model import SavePathError
from ..tuning.settings import ServiceSettings
from .paths import confine

DEFAULT_INCOMPLETE = "incomplete"  # under the download root, when the setting names no folder


def incomplete_folder(root: Path, settings: ServiceSettings) -> Path:
    """The service's incomplete folder (``SavePathError`` naming ``incomplete_dir`` when it is
    outside the download root)."""
    try:
        return confine(root, settings.incomplete_dir or DEFAULT_INCOMPLETE)
    except SavePathError as exc:
        raise SavePathError(exc.reason, "incomplete_dir") from exc


def shown_folder(root: Path, settings: ServiceSettings) -> str:
    """The incomplete folder as the settings name it (kept absolute once checked), for a client
    to show: never raises, even for a saved folder a changed download root no longer holds (an
    add then says why)."""
    return settings.incomplete_dir or str(root / DEFAULT_INCOMPLETE)


def download_path_for(root: Path, settings: ServiceSettings, asked: str | None, save: Path,
                      torrent: Torrent | Magnet, selected: tuple[int, ...] | None, *,
                      seed_mode: bool) -> Path | None:
    """The incomplete folder of a new job saving into ``save``; None when its data goes straight
    there. ``asked`` (the add's ``download_path``): "" none, a folder that one (confined to
    ``root``), None the service's setting. None as well for data added as complete (seed mode),
    or whose wanted files are all at the save path already, each of its full size (they are
    checked there and seeded from there, as a client finds a download done)."""
    if asked is None:
        if not settings.incomplete_dir_enabled:
            return None
        folder = incomplete_folder(root, settings)
    elif asked == "":
        return None
    else:
        try:
            folder = confine(root, asked)
        except SavePathError as exc:
            raise SavePathError(exc.reason, "download_path") from exc
    if seed_mode or folder == save:
        return None
    if isinstance(torrent, Torrent) and _whole_at(save, torrent, selected):
        return None
    return folder


def _whole_at(save: Path, torrent: Torrent, selected: tuple[int, ...] | None) -> bool:
    """Whether every wanted file of ``torrent`` is at ``save`` with its full size."""
    wanted = [f for i, f in enumerate(torrent.files)
              if not f.pad and f.symlink is None and (selected is None or i in selected)]
    if not wanted:
        return False
    for f in wanted:
        try:
            if os.stat(save.joinpath(*f.path)).st_size != f.length:
                return False
        except OSError:
            return False
    return True
