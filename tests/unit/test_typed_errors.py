"""Public constructors refuse bad input with the library's typed errors, naming what was wrong."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import torrent_engine as te
from torrent_engine.config import Config


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"encryption": "bogus"}, "encryption"),
    ({"listen_port": 70000}, "listen_port"),
    ({"listen_port": -1}, "listen_port"),
    ({"dht_port": True}, "dht_port"),
    ({"upload_slots": -1}, "upload_slots"),
    ({"max_peers_per_torrent": 0}, "max_peers_per_torrent"),
    ({"request_timeout": 0}, "request_timeout"),
    ({"stats_interval": float("nan")}, "stats_interval"),
    ({"connect_timeout": "10"}, "connect_timeout"),
    ({"min_request_queue": 10, "max_request_queue": 5}, "max_request_queue"),
    ({"dht_bootstrap": (("router", 0),)}, "dht_bootstrap"),
    ({"extra_peers": (("127.0.0.1",),)}, "extra_peers"),
    ({"natpmp_gateway": ("", 5351)}, "natpmp_gateway"),
    ({"state_dir": 42}, "state_dir"),
    ({"disk_write_mode": "none"}, "disk_write_mode"),
])
def test_config_refuses_bad_values_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(te.ConfigError) as caught:
        Config(**kwargs)
    assert caught.value.field == field and f"Config.{field}" in str(caught.value)


def test_config_takes_a_state_dir_as_str_or_pathlike(tmp_path: Path) -> None:
    assert Config(state_dir=str(tmp_path)).state_dir == tmp_path  # type: ignore[arg-type]
    assert Config(state_dir=tmp_path).state_dir == tmp_path
    assert Config().state_dir is None


def test_torrent_load_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.torrent"
    with pytest.raises(te.MetainfoError, match="missing.torrent.*No such file"):
        te.Torrent.load(missing)
    with pytest.raises(te.MetainfoError, match="Is a directory"):
        te.Torrent.load(tmp_path)
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.torrent"
        locked.write_bytes(b"d4:infode")
        locked.chmod(0)
        with pytest.raises(te.MetainfoError, match="Permission denied"):
            te.Torrent.load(locked)


def test_a_magnet_that_could_not_be_written_out_again_is_refused() -> None:
    base = "magnet:?xt=urn:btih:" + "a" * 40
    with pytest.raises(te.MagnetError, match="not valid Unicode"):
        te.parse_magnet(base + "&dn=\ud800")
    for odd in ("%ff", "%ED%A0%80", "%C0%80", "caf%C3%A9"):  # undecodable bytes become U+FFFD
        magnet = te.parse_magnet(base + "&dn=" + odd)
        assert te.parse_magnet(magnet.to_uri()) == magnet


def _info_torrent(info: dict[bytes, Any]) -> bytes:
    from torrent_engine.formats.bencode import encode

    return encode({b"info": info})


def test_a_symlink_entry_takes_no_piece_space_whatever_length_it_claims() -> None:
    import hashlib

    data = b"x" * 20000
    pieces = b"".join(hashlib.sha1(data[i:i + 16384]).digest() for i in range(0, len(data), 16384))
    raw = _info_torrent({b"name": b"t", b"piece length": 16384, b"pieces": pieces, b"files": [
        {b"length": 20000, b"path": [b"a.bin"]},
        {b"length": 5000, b"path": [b"link"], b"attr": b"l", b"symlink path": [b"a.bin"]},
    ]})
    torrent = te.Torrent.from_bytes(raw)
    link = torrent.files[1]
    assert (link.path, link.length, link.symlink) == (("t", "link"), 0, ("a.bin",))
    assert torrent.payload_size == 20000 and torrent.num_pieces == 2  # as libtorrent reads it


def test_a_torrent_of_only_pad_files_is_refused() -> None:
    import hashlib

    raw = _info_torrent({b"name": b"t", b"piece length": 16384,
                         b"pieces": hashlib.sha1(b"\0" * 16384).digest(),
                         b"files": [{b"length": 16384, b"path": [b".pad", b"16384"], b"attr": b"p"}]})
    with pytest.raises(te.MetainfoError, match="only pad files"):
        te.Torrent.from_bytes(raw)


def test_the_dht_is_on_by_default_from_the_well_known_routers() -> None:
    from torrent_engine.config import DHT_ROUTERS

    config = Config()
    assert config.dht_enabled and config.dht_bootstrap == DHT_ROUTERS
    assert ("router.bittorrent.com", 6881) in DHT_ROUTERS


def test_port_mapping_is_on_by_default() -> None:
    assert Config().port_mapping and not Config(port_mapping=False, lsd_enabled=False).port_mapping
