"""Defaults of ``download`` and ``daemon`` options that decide what reaches the network."""

from __future__ import annotations

from torrent_engine.cli import build_parser


def test_port_mapping_is_on_unless_told_otherwise() -> None:
    parser = build_parser()
    for command in (["download", "x.torrent"], ["daemon"]):
        assert parser.parse_args(command).port_mapping is True
        assert parser.parse_args([*command, "--no-port-mapping", "--no-lsd"]).port_mapping is False
        assert parser.parse_args([*command, "--port-mapping"]).port_mapping is True


def test_dht_options_are_the_same_for_download_and_daemon() -> None:
    parser = build_parser()
    for command in (["download", "x.torrent"], ["daemon"]):
        args = parser.parse_args(command)
        assert args.dht is True and args.dht_bootstrap == []
        assert parser.parse_args([*command, "--no-dht"]).dht is False
        bootstrap = ["--dht-bootstrap", "127.0.0.1:6881", "--dht-bootstrap", "[::1]:7"]
        args = parser.parse_args([*command, *bootstrap])
        assert args.dht_bootstrap == [("127.0.0.1", 6881), ("::1", 7)]
