"""Defaults of ``download`` and ``daemon`` options that decide what reaches the network; ports
read as ports, threads as threads."""

from __future__ import annotations

import pytest

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


@pytest.mark.parametrize(("option", "dest"), [
    (["download", "x.torrent", "--listen-port"], "port"),
    (["stream", "x.torrent", "--listen-port"], "listen_port"),
    (["daemon", "--listen-port"], "listen_port"), (["daemon", "--api-port"], "api_port")])
def test_a_port_out_of_range_is_refused_as_the_option_s(
        option: list[str], dest: str, capsys: pytest.CaptureFixture[str]) -> None:
    """(``--listen-port 70000`` was said by the engine as "Config.listen_port: 70000 is not a port
    number", once it started; ``--api-port 99999`` by the socket.)"""
    parser = build_parser()
    assert getattr(parser.parse_args([*option, "6881"]), dest) == 6881
    for bad in ("70000", "-1", "http"):
        with pytest.raises(SystemExit):
            parser.parse_args([*option, bad])
        assert f"expected a port from 0 (any free one) to 65535, got '{bad}'" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["create", "x", "-o", "x.torrent"], ["verify", "x.torrent"]])
def test_a_number_of_threads_below_one_is_refused(command: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """(0 and -3 were taken as 1 without a word.)"""
    parser = build_parser()
    assert parser.parse_args([*command, "--threads", "4"]).threads == 4
    for bad, said in (("0", "expected at least 1 thread, got 0"),
                      ("-3", "expected at least 1 thread, got -3"),
                      ("two", "expected a whole number of threads, got 'two'")):
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--threads", bad])
        assert said in capsys.readouterr().err
