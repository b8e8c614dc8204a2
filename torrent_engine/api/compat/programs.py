"""The programs run on a job's events and the watched folders, in the names the two dialects
give them: qBittorrent's ``autorun_*`` and ``scan_dirs``, Transmission's ``script-torrent-*``
and ``watch-dir``. Translation only: the settings are the job service's (jobs/tuning/settings.py).

Transmission names a script file, run with its ``TR_*`` variables (which every program gets):
it is kept as a command line of one argument (quoted, ``%`` doubled) and shown back as the file.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from ...jobs import InvalidJobRequest
from ...jobs.tuning.settings import ServiceSettings, SettingChanges, check_watch_folders
from ...jsonvalue import JSON, JSONValue

# qBittorrent's preference -> our setting
QBT_NAMES = {"autorun_on_torrent_added_enabled": "run_on_added_enabled",
             "autorun_on_torrent_added_program": "run_on_added",
             "autorun_enabled": "run_on_completed_enabled", "autorun_program": "run_on_completed"}
# Transmission's session field -> our setting
TR_NAMES = {"script-torrent-added-enabled": "run_on_added_enabled",
            "script-torrent-added-filename": "run_on_added",
            "script-torrent-done-enabled": "run_on_completed_enabled",
            "script-torrent-done-filename": "run_on_completed",
            "script-torrent-done-seeding-enabled": "run_on_seeding_done_enabled",
            "script-torrent-done-seeding-filename": "run_on_seeding_done"}
QBT_FIELDS = frozenset({*QBT_NAMES, "scan_dirs", "auto_delete_mode"})
TR_FIELDS = frozenset({*TR_NAMES, "watch-dir", "watch-dir-enabled", "trash-original-torrent-files"})


def qbt_preferences(s: ServiceSettings) -> dict[str, JSON]:
    """The fields of ``app/preferences``."""
    out: dict[str, JSON] = {theirs: getattr(s, ours) for theirs, ours in QBT_NAMES.items()}
    # as qBittorrent's appcontroller: 0 the watched folder itself, 1 the default save path, else a
    # save path
    out["scan_dirs"] = {folder: 1 if save is None else 0 if save == folder else save
                        for folder, save in s.watch_folders} if s.watch_enabled else {}
    out["auto_delete_mode"] = 1 if s.watch_delete_added else 0  # (a watched file once added: deleted)
    return out


def qbt_changes(prefs: Mapping[str, JSONValue]) -> SettingChanges:
    """Our settings' changes for the fields of ``app/setPreferences`` ``prefs`` (a new
    ``scan_dirs`` replaces the folders, and turns watching on)."""
    changes: SettingChanges = {}
    for theirs, ours in QBT_NAMES.items():
        if theirs in prefs:
            changes[ours] = _bool(prefs[theirs], theirs) if ours.endswith("_enabled") else prefs[theirs]
    if "scan_dirs" in prefs:
        dirs = prefs["scan_dirs"]
        if not isinstance(dirs, dict):
            raise InvalidJobRequest("must be an object {folder: 0 (the folder itself), 1 (the default save "
                                    "path) or a save path}", "scan_dirs")
        folders: dict[str, str | None] = {}
        for folder, target in dirs.items():
            if target == 1 and not isinstance(target, bool):
                folders[folder] = None
            elif target == 0 and not isinstance(target, bool):
                folders[folder] = folder
            elif isinstance(target, str) and target:
                folders[folder] = target
            else:
                raise InvalidJobRequest(f"{folder!r}: must be 0 (the folder itself), 1 (the default save "
                                        "path) or a save path", "scan_dirs")
        changes["watch_folders"] = _folders(folders, "scan_dirs")
        changes["watch_enabled"] = True
    if "auto_delete_mode" in prefs:  # (0 never, 1 once added; 2, even a file not added, is not done)
        mode = prefs["auto_delete_mode"]
        if mode not in (0, 1) or isinstance(mode, bool):
            raise InvalidJobRequest("must be 0 (never) or 1 (a watched file once added; 2, always, is not "
                                    "done: a file that cannot be added is kept, renamed .invalid)",
                                    "auto_delete_mode")
        changes["watch_delete_added"] = mode == 1
    return changes


def script_file(command: str) -> str:
    """A command line as Transmission shows a script's file name."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    return words[0].replace("%%", "%") if len(words) == 1 else command


def script_command(filename: object, name: str) -> str:
    """Transmission's script file name as a command line of that one argument."""
    if not isinstance(filename, str):
        raise InvalidJobRequest("must be a file name", name)
    return shlex.quote(filename.replace("%", "%%")) if filename.strip() else ""


def tr_session(s: ServiceSettings) -> dict[str, JSON]:
    """The fields of ``session-get``."""
    out: dict[str, JSON] = {theirs: getattr(s, ours) if ours.endswith("_enabled")
                           else script_file(getattr(s, ours)) for theirs, ours in TR_NAMES.items()}
    out["watch-dir"] = s.watch_folders[0][0] if s.watch_folders else ""
    out["watch-dir-enabled"] = s.watch_enabled and bool(s.watch_folders)
    out["trash-original-torrent-files"] = s.watch_delete_added  # (a watched file once added)
    return out


def tr_changes(arguments: Mapping[str, JSONValue], s: ServiceSettings) -> SettingChanges:
    """Our settings' changes for the fields of ``session-set`` ``arguments`` (``watch-dir`` is
    the first watched folder: set, it takes that place)."""
    changes: SettingChanges = {}
    for theirs, ours in TR_NAMES.items():
        if theirs in arguments:
            value = arguments[theirs]
            changes[ours] = (_bool(value, theirs) if ours.endswith("_enabled")
                             else script_command(value, theirs))
    if "watch-dir" in arguments:
        folder = arguments["watch-dir"]
        if not isinstance(folder, str):
            raise InvalidJobRequest("must be a folder", "watch-dir")
        rest = {f: save for f, save in s.watch_folders[1:] if f != folder}  # (saving in the default place)
        changes["watch_folders"] = _folders({folder: None, **rest} if folder else rest, "watch-dir")
    if "watch-dir-enabled" in arguments:
        changes["watch_enabled"] = _bool(arguments["watch-dir-enabled"], "watch-dir-enabled")
    if "trash-original-torrent-files" in arguments:
        changes["watch_delete_added"] = _bool(arguments["trash-original-torrent-files"],
                                              "trash-original-torrent-files")
    return changes


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidJobRequest("must be true or false", name)
    return value


def _folders(folders: dict[str, str | None], name: str) -> dict[str, str | None]:
    """The folders, checked now so that a refusal names the dialect's field."""
    return dict(check_watch_folders(folders, name))
