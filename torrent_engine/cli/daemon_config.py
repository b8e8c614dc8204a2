"""The daemon's config file: TOML whose keys are the daemon's flags (``api-port = 8686``,
``dht = false``, ``allowed-host = ["nas.home"]``), checked against the flags themselves so the
two cannot drift. A flag given on the command line wins over the file; an unknown key, a value of
the wrong kind or a table is refused, naming the file and the line."""

from __future__ import annotations

import argparse
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

from ..errors import TorrentEngineError
from ..jobs.tuning.altspeed import parse_days, parse_window
from ..jobs.tuning.settings import SettingChanges

__all__ = ["ConfigFileError", "apply_config_file", "asked_settings", "file_options", "load_config_file"]

NOT_IN_FILE = {"help", "config", "run", "parser", "sse_heartbeat", "verbose", "quiet", "command"}


class ConfigFileError(TorrentEngineError):
    """The config file cannot be used as it is: says which file, which line and what."""


def file_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The keys a config file may set (each flag's destination, ``-`` for ``_``) and their
    actions; a ``--x``/``--no-x`` pair is one key ``x`` (true or false)."""
    out: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if not action.option_strings or action.dest in NOT_IN_FILE or action.help == argparse.SUPPRESS:
            continue
        key = action.dest.replace("_", "-")
        if key not in out or action.option_strings[0] == f"--{key}":
            out[key] = action
    return out


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*=""")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return number
    return None


def _convert(key: str, value: object, action: argparse.Action) -> object:
    """``value`` from the file as the flag's own parsing makes it; ``ValueError`` saying why not."""
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    items: Iterable[object]
    if isinstance(action, argparse._AppendAction):
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {value!r}")
        items = value
    else:
        items = [value]
    out: list[object] = []
    for item in items:
        if isinstance(item, (dict, list)) or isinstance(item, bool):
            raise ValueError(f"expected a single value, got {item!r}")
        if action.type is not None:
            try:
                item = action.type(str(item))  # type: ignore[operator]
            except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
                raise ValueError(str(exc) or f"not a valid value: {item!r}") from None
        elif not isinstance(item, str):
            raise ValueError(f"expected a string, got {item!r}")
        if action.choices is not None and item not in action.choices:
            raise ValueError(f"expected one of {', '.join(map(str, action.choices))}, got {item!r}")
        out.append(item)
    return out if isinstance(action, argparse._AppendAction) else out[0]


def load_config_file(path: Path, parser: argparse.ArgumentParser) -> dict[str, object]:
    """``{dest: value}`` of what ``path`` sets, converted as the flags are; ``ConfigFileError``
    naming the file and line of the first fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"cannot read the config file {str(path)!r}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None
    options = file_options(parser)
    out: dict[str, object] = {}  # (each value as its flag's own type makes it)
    for key, value in data.items():
        line = _line_of(text, key)
        where = f"{path}:{line}" if line is not None else str(path)
        if isinstance(value, dict):
            raise ConfigFileError(f"{where}: [{key}]: the config file has no tables; every key is a flag "
                                  "of `torrent-engine daemon`")
        action = options.get(key)
        if action is None:
            raise ConfigFileError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(options))})")
        try:
            out[action.dest] = _convert(key, value, action)
        except ValueError as exc:
            raise ConfigFileError(f"{where}: {key}: {exc}") from None
    return out


def asked_settings(args: argparse.Namespace) -> SettingChanges:
    """What the flags and the config file ask of the job service's run-time settings besides the
    rate limits and download slots: the programs run on jobs' events, the watched folders and
    the IP filter, the alternative rate limits and their schedule, the connection limits, the
    listening port (and a new one at each start), DHT, PEX, LSD, encryption and transports, the
    deduplication's mode and indexed folders, the disk's reserve (``JobService.configure``: one
    the configuration changed since it was last applied is changed, as the API would change it;
    one it did not change stays as the API left it)."""
    out: SettingChanges = {}
    for event in ("added", "completed", "seeding_done"):
        command = getattr(args, f"run_on_{event}")
        out[f"run_on_{event}"] = command
        out[f"run_on_{event}_enabled"] = bool(command.strip())
    out["run_timeout"] = args.run_timeout
    out["watch_folders"] = {str(Path(f).expanduser().absolute()): None for f in args.watch_folder}
    out["watch_interval"] = args.watch_interval
    out["proxy_url"] = args.proxy_url
    out["proxy_only"] = args.proxy_only
    out["ip_filter_path"] = str(Path(args.ip_filter).expanduser().absolute()) if args.ip_filter else ""
    out["ip_filter_url"] = args.ip_filter_url
    out["ip_filter_enabled"] = bool(args.ip_filter or args.ip_filter_url)
    out["ip_filter_trackers"] = args.ip_filter_trackers
    out["banned_ips"] = list(args.banned_ip)
    out["alt_download_limit"] = args.alt_download_limit
    out["alt_upload_limit"] = args.alt_upload_limit
    out["alt_schedule_enabled"] = bool(args.alt_schedule)
    if args.alt_schedule:
        out["alt_schedule_from"], out["alt_schedule_to"] = parse_window(args.alt_schedule)
    out["alt_schedule_days"] = parse_days(args.alt_schedule_days)
    for name in ("max_connections", "max_connections_per_torrent", "max_uploads", "max_uploads_per_torrent",
                 "connection_speed"):
        out[name] = getattr(args, name)
    out["max_active_checking"] = args.active_checking_limit
    out["bind_interface"] = args.bind_interface
    out["bind_address"] = args.bind_address
    out["listen_port"] = args.listen_port
    out["random_port"] = args.random_port
    out["dht_enabled"] = args.dht
    out["pex_enabled"] = args.pex
    out["lsd_enabled"] = args.lsd
    out["encryption"] = args.encryption
    out["transport"] = args.transport
    out["dedup"] = args.dedup
    out["dedup_folders"] = [str(Path(f).expanduser().absolute()) for f in args.dedup_folder]
    out["disk_reserve"] = args.disk_reserve
    return out


def apply_config_file(args: argparse.Namespace, path: Path, parser: argparse.ArgumentParser) -> list[str]:
    """Set on ``args`` what the file sets and the command line left at its default; the keys taken."""
    taken = []
    for dest, value in load_config_file(path, parser).items():
        if getattr(args, dest, None) == parser.get_default(dest):
            setattr(args, dest, value)
            taken.append(dest)
    return taken
