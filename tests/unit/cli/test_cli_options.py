"""Defaults of ``download`` and ``daemon`` options that decide what reaches the network."""

from __future__ import annotations

from torrent_engine.cli import build_parser


def test_port_mapping_is_on_unless_told_otherwise() -> None:
    parser = build_parser()
    for command in (["download", "x.torrent"], ["daemon"]):
        assert parser.parse_args(command).port_mapping is True
        assert parser.parse_args([*command, "--no-port-mapping"]).port_mapping is False
        assert parser.parse_args([*command, "--port-mapping"]).port_mapping is True
