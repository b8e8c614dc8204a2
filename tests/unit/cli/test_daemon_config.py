"""The daemon's config file: the flags' own names and conversions, refusals that name the line,
the command line winning, and the sample file in contrib/ documenting every option's default."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import pytest

from torrent_engine.cli import build_parser
from torrent_engine.cli.daemon_config import (
    ConfigFileError,
    apply_config_file,
    asked_settings,
    file_options,
    load_config_file,
)
from torrent_engine.jobs.model import InvalidJobRequest
from torrent_engine.jobs.tuning.settings import ServiceSettings, updated

SAMPLE = Path(__file__).resolve().parents[3] / "contrib" / "torrent-engine.toml"


def daemon_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, sub.choices["daemon"]


def test_values_are_converted_as_the_flags_convert_them(tmp_path: Path) -> None:
    _, daemon = daemon_parser()
    path = tmp_path / "c.toml"
    path.write_text('api-port = 9000\ndownload-limit = "2M"\nupload-limit = 1000\ndht = false\n'
                    'allowed-host = ["nas.home", "seedbox"]\ndht-bootstrap = ["[::1]:6881"]\n'
                    'state-dir = "/var/lib/te"\nencryption = "require"\nhistory-ttl = 60\n')
    values = load_config_file(path, daemon)
    assert values == {"api_port": 9000, "download_limit": 2 * 1024 * 1024, "upload_limit": 1000, "dht": False,
                      "allowed_host": ["nas.home", "seedbox"], "dht_bootstrap": [("::1", 6881)],
                      "state_dir": Path("/var/lib/te"), "encryption": "require", "history_ttl": 60.0}


@pytest.mark.parametrize(("text", "words"), [
    ('api-port = 9000\n\napi-prot = 1\n', "c.toml:3: unknown key 'api-prot'"),
    ('dht = "no"\n', "c.toml:1: dht: expected true or false"),
    ('encryption = "maybe"\n', "c.toml:1: encryption: expected one of prefer, require, disable"),
    ('api-port = "x"\n', "c.toml:1: api-port:"),
    ('download-limit = "fast"\n', "c.toml:1: download-limit: expected a rate"),
    ('allowed-host = "a"\n', "c.toml:1: allowed-host: expected a list"),
    ('max-open-files = 0\n', "c.toml:1: max-open-files: expected at least 1 file"),
    ('[daemon]\napi-port = 1\n', "the config file has no tables"),
    ('api-port = \n', "not valid TOML"),
    ('sse-heartbeat = 1\n', "unknown key 'sse-heartbeat'"),
])
def test_a_bad_file_is_refused_naming_the_line(tmp_path: Path, text: str, words: str) -> None:
    _, daemon = daemon_parser()
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigFileError, match=words.replace("(", r"\(").replace("[", r"\[")):
        load_config_file(path, daemon)


def test_a_flag_on_the_command_line_wins_over_the_file(tmp_path: Path) -> None:
    parser, daemon = daemon_parser()
    path = tmp_path / "c.toml"
    path.write_text('api-port = 9000\nmax-active = 2\ndht = false\n')
    args = parser.parse_args(["daemon", "--api-port", "9100", "--config", str(path)])
    taken = apply_config_file(args, path, daemon)
    assert (args.api_port, args.max_active, args.dht) == (9100, 2, False)
    assert sorted(taken) == ["dht", "max_active"]


def test_the_sample_file_documents_every_option_with_its_default() -> None:
    _, daemon = daemon_parser()
    text = SAMPLE.read_text()
    assert load_config_file(SAMPLE, daemon) == {}  # every line commented out: the defaults
    for key, action in file_options(daemon).items():
        line = next((line for line in text.splitlines() if line.startswith(f"# {key} = ")), None)
        assert line is not None, f"{key} is not in {SAMPLE.name}"
        shown = tomllib.loads(line[2:].split("  #")[0])[key]
        if action.default not in (None, []) and not isinstance(action, argparse._StoreFalseAction):
            assert shown == action.default, (key, shown, action.default)


def test_the_network_keys_become_the_services_settings(tmp_path: Path) -> None:
    parser, daemon = daemon_parser()
    path = tmp_path / "c.toml"
    path.write_text('ip-filter = "/srv/lists/level1.p2p"\nbanned-ip = ["203.0.113.9"]\n'
                    'alt-download-limit = "2M"\nalt-schedule = "22:30-06:00"\nalt-schedule-days = "sat,sun"\n'
                    'max-connections = 300\nmax-uploads = -1\n')
    args = parser.parse_args(["daemon", "--config", str(path)])
    apply_config_file(args, path, daemon)
    asked = asked_settings(args)
    assert (asked["ip_filter_enabled"], asked["ip_filter_path"], asked["ip_filter_url"]) == \
        (True, "/srv/lists/level1.p2p", "")
    assert asked["banned_ips"] == ["203.0.113.9"] and asked["ip_filter_trackers"] is False
    assert (asked["alt_download_limit"], asked["alt_schedule_enabled"], asked["alt_schedule_from"],
            asked["alt_schedule_to"], asked["alt_schedule_days"]) == (2 << 20, True, 1350, 360, 1 | 64)
    limits = (asked["max_connections"], asked["max_uploads"], asked["max_connections_per_torrent"])
    assert limits == (300, -1, 60)
    assert (asked["listen_port"], asked["random_port"]) == (0, False)  # (a port chosen once, kept)
    path.write_text("random-port = true\n")
    args = parser.parse_args(["daemon", "--config", str(path)])
    apply_config_file(args, path, daemon)
    assert asked_settings(args)["random_port"] is True
    assert asked_settings(parser.parse_args(["daemon", "--random-port"]))["random_port"] is True
    bad = tmp_path / "bad.toml"
    bad.write_text('alt-schedule = "25:00-01:00"\n')
    with pytest.raises(ConfigFileError, match=r"bad.toml:1: alt-schedule: expected HH:MM-HH:MM"):
        load_config_file(bad, daemon)


def from_file(path: Path, text: str) -> argparse.Namespace:
    """The daemon's arguments with the config file ``path`` holding ``text``."""
    parser, daemon = daemon_parser()
    path.write_text(text)
    args = parser.parse_args(["daemon", "--config", str(path)])
    apply_config_file(args, path, daemon)
    return args


def test_the_dedup_keys_are_read_and_checked(tmp_path: Path) -> None:
    parser, daemon = daemon_parser()
    path = tmp_path / "c.toml"
    args = from_file(path, 'dedup = "hardlink"\ndedup-folder = ["/srv/media", "/srv/isos"]\n')
    assert (args.dedup, args.dedup_folder) == ("hardlink", ["/srv/media", "/srv/isos"])
    assert parser.parse_args(["daemon"]).dedup == "reflink"
    path.write_text('dedup = "symlink"\n')
    with pytest.raises(ConfigFileError, match="c.toml:1: dedup: expected one of off, reflink, hardlink"):
        load_config_file(path, daemon)


def test_a_connection_speed_of_0_is_asked_as_no_outgoing_connection(tmp_path: Path) -> None:
    """``connection-speed = 0`` in the file (or ``--connection-speed 0``) is asked of the job
    service as it is: no outgoing connection, not "no limit" (that is -1)."""
    parser, daemon = daemon_parser()
    path = tmp_path / "c.toml"
    path.write_text("connection-speed = 0\n")
    args = parser.parse_args(["daemon", "--config", str(path)])
    apply_config_file(args, path, daemon)
    asked = asked_settings(args)
    assert asked["connection_speed"] == 0
    assert updated(ServiceSettings(), asked).connection_speed == 0  # (taken, as the start takes it)
    args = parser.parse_args(["daemon", "--connection-speed", "-1"])
    assert updated(ServiceSettings(), asked_settings(args)).connection_speed == -1
    args = parser.parse_args(["daemon", "--connection-speed", "-2"])
    with pytest.raises(InvalidJobRequest, match="0 \\(no outgoing connections\\)"):
        updated(ServiceSettings(), asked_settings(args))


def test_the_disk_reserve_is_read_as_a_size_and_asked_of_the_service(tmp_path: Path) -> None:
    parser, daemon = daemon_parser()
    path = tmp_path / "c.toml"
    args = from_file(path, 'disk-reserve = "20G"\n')
    assert args.disk_reserve == 20 * 1024**3
    assert asked_settings(args)["disk_reserve"] == 20 * 1024**3
    assert updated(ServiceSettings(), {"disk_reserve": args.disk_reserve}).disk_reserve == 20 * 1024**3
    assert asked_settings(parser.parse_args(["daemon"]))["disk_reserve"] == 0
    assert parser.parse_args(["daemon", "--disk-reserve", "512M"]).disk_reserve == 512 * 1024**2
    path.write_text('disk-reserve = "lots"\n')
    with pytest.raises(ConfigFileError, match="c.toml:1: disk-reserve: expected a size"):
        load_config_file(path, daemon)
    with pytest.raises(InvalidJobRequest, match="from 0 \\(none\\)"):
        updated(ServiceSettings(), {"disk_reserve": -1})
