"""CLI info/create: what a user sees, exit codes, and errors on stderr without a traceback."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from torrent_engine.cli import create, main
from torrent_engine.cli.create import piece_length_arg
from torrent_engine.formats.metainfo import Torrent

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sample.torrent"


def test_info_text(capsys: pytest.CaptureFixture[str]) -> None:
    t = Torrent.load(SAMPLE)
    assert main(["info", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert f"info-hash v1: {t.info_hash_v1.hex()}" in out  # type: ignore[union-attr]
    assert f"info-hash v2: {t.info_hash_v2.hex()}" in out  # type: ignore[union-attr]
    assert "pieces:       9 x 32.0 KiB" in out
    assert "tier 0: http://127.0.0.1:6969/announce" in out
    assert "http://127.0.0.1:8000/" in out
    assert "private:      no" in out
    assert "  [3] 150000  sample/pictures/big.bin" in out  # the index --select-file takes
    assert ".pad" not in out


def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json", str(SAMPLE)]) == 0
    doc = json.loads(capsys.readouterr().out)
    t = Torrent.load(SAMPLE)
    assert doc["info_hash_v1"] == t.info_hash_v1.hex()  # type: ignore[union-attr]
    assert doc["version"] == "hybrid" and doc["num_pieces"] == 9 and doc["private"] is False
    assert [f["path"] for f in doc["files"]] == [
        "sample/README.txt",
        "sample/data/empty.dat",
        "sample/data/numbers.bin",
        "sample/pictures/big.bin",
    ]
    assert doc["total_size"] == 1234 + 70001 + 150000


def test_info_magnet(capsys: pytest.CaptureFixture[str]) -> None:
    uri = "magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=Hello&tr=http://t/a&so=1,3-4&xl=99"
    assert main(["info", "--json", uri]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "magnet" and doc["name"] == "Hello" and doc["info_hash"] == "ab" * 20
    assert doc["select_only"] == [[1, 1], [3, 4]] and doc["exact_length"] == 99
    assert main(["info", uri]) == 0
    assert "info-hash v1: " + "ab" * 20 in capsys.readouterr().out


@pytest.mark.parametrize(
    "source",
    ["magnet:?dn=nohash", "{missing}", "{garbage}", "{bad_torrent}"],
)
def test_info_errors_go_to_stderr(source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "garbage").write_bytes(b"this is not bencode")
    (tmp_path / "bad_torrent").write_bytes(b"d4:infod4:name1:xee")
    source = source.format(
        missing=tmp_path / "missing", garbage=tmp_path / "garbage", bad_torrent=tmp_path / "bad_torrent"
    )
    assert main(["info", source]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("torrent-engine info: error: ") and captured.err.count("\n") == 1


def test_create_then_info_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "stuff"
    src.mkdir()
    (src / "a").write_bytes(b"a" * 50000)
    (src / "b").write_bytes(b"b" * 10)
    out = tmp_path / "out.torrent"
    args = [
        "create",
        str(src),
        "-o",
        str(out),
        "--tracker",
        "http://t/1,http://t/2",
        "--tracker",
        "udp://u/1",
    ]
    args += ["--piece-length", "32K", "--v2", "--private", "--web-seed", "http://ws/", "--comment", "hello"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    t = Torrent.load(out)
    assert f"info-hash v2: {t.info_hash_v2.hex()}" in printed  # type: ignore[union-attr]
    assert t.is_v2 and not t.is_v1 and t.piece_length == 32768 and t.private
    assert t.trackers == (("http://t/1", "http://t/2"), ("udp://u/1",))
    assert t.web_seeds == ("http://ws/",) and t.comment == "hello" and t.creation_date is not None
    assert [f.path for f in t.files] == [("stuff", "a"), ("stuff", "b")]
    assert not (tmp_path / "out.torrent.part").exists()


@pytest.mark.parametrize(
    ("flag", "v1", "v2"),
    [("--v1", True, False), ("--hybrid", True, True), ("--v2", False, True), (None, True, False)],
)
def test_create_versions(tmp_path: Path, flag: str | None, v1: bool, v2: bool) -> None:
    (tmp_path / "f").write_bytes(b"z" * 100)
    out = tmp_path / "f.torrent"
    assert main(["create", str(tmp_path / "f"), "-o", str(out), "--no-date", *([flag] if flag else [])]) == 0
    t = Torrent.load(out)
    assert (t.is_v1, t.is_v2, t.creation_date) == (v1, v2, None)


@pytest.mark.parametrize("flag", ["--v2", "--hybrid", "--v1"])
def test_create_of_a_folder_of_one_file_says_where_a_v2_torrent_is_seeded_from(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "only.bin").write_bytes(b"z" * 100)
    out = tmp_path / "one.torrent"
    assert main(["create", str(tmp_path / "one"), "-o", str(out), flag]) == 0
    said = capsys.readouterr().out
    alone = [f.path for f in Torrent.load(out).files if not f.pad] == [("only.bin",)]
    assert alone == (flag == "--v2")  # (the v1 view's file list keeps the folder)
    assert ("it holds only.bin alone, so it is seeded from " + str(tmp_path / "one") in said) == alone


def test_create_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_bytes(b"z")
    assert main(["create", str(tmp_path / "nope"), "-o", str(tmp_path / "x.torrent")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert (
        main(["create", str(tmp_path / "f"), "-o", str(tmp_path / "x.torrent"), "--piece-length", "3000"])
        == 1
    )
    assert "piece length" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["create", str(tmp_path / "f"), "-o", "x", "--piece-length", "big"])
    with pytest.raises(SystemExit):
        main(["create", str(tmp_path / "f"), "-o", "x", "--v1", "--v2"])
    assert not (tmp_path / "x.torrent").exists()
    (tmp_path / "adir").mkdir()
    assert main(["create", str(tmp_path / "f"), "-o", str(tmp_path / "adir")]) == 1
    assert "adir is a folder: give the name of the .torrent file" in capsys.readouterr().err
    assert not (tmp_path / "adir.part").exists()


def test_create_checks_its_output_and_urls_before_hashing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "f").write_bytes(b"z" * 100)
    hashed: list[str] = []
    real = create.create_torrent

    def counting(*args: object, **kw: object) -> object:
        hashed.append("yes")
        return real(*args, **kw)  # type: ignore[arg-type]

    out = tmp_path / "x.torrent"
    assert main(["create", str(tmp_path / "f"), "-o", str(out), "--tracker", "notaurl"]) == 1
    assert "'notaurl' is not a http/https/udp URL" in capsys.readouterr().err and not out.exists()
    assert main(["create", str(tmp_path / "f"), "-o", str(out), "--web-seed", "ftp://h/x"]) == 1
    assert "url-list" in capsys.readouterr().err
    out.write_bytes(b"precious")
    monkeypatch.setattr(create, "create_torrent", counting)
    assert main(["create", str(tmp_path / "f"), "-o", str(out)]) == 1
    assert "exists (use --force to overwrite it)" in capsys.readouterr().err
    assert out.read_bytes() == b"precious" and hashed == []
    assert main(["create", str(tmp_path / "f"), "-o", str(tmp_path / "no" / "x.torrent")]) == 1
    assert "the folder" in capsys.readouterr().err and hashed == []
    assert main(["create", str(tmp_path / "f"), "-o", str(out), "--force"]) == 0
    assert Torrent.load(out).payload_size == 100 and hashed == ["yes"]


def test_piece_length_arg() -> None:
    assert piece_length_arg("16384") == 16384
    assert piece_length_arg("256K") == 256 * 1024
    assert piece_length_arg("4MiB") == 4 * 1024 * 1024
    assert piece_length_arg("1m") == 1024 * 1024
    assert piece_length_arg("1G") == 1024**3  # (a size: too long a piece, which the creator says)
    with pytest.raises(argparse.ArgumentTypeError, match="expected bytes or a size such as 256K"):
        piece_length_arg("big")


def test_a_piece_length_of_a_size_too_large_is_said_as_such(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_bytes(b"z")
    out = str(tmp_path / "x.torrent")
    assert main(["create", str(tmp_path / "f"), "-o", out, "--piece-length", "1G"]) == 1
    assert "1073741824 is not a power of two in 16384.." in capsys.readouterr().err


@pytest.mark.slow
def test_create_shows_progress_on_large_input(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with big.open("wb") as fh:
        fh.truncate(40 * 1024 * 1024)  # sparse: cheap to make, still 40 MiB to hash
    out = tmp_path / "big.torrent"
    proc = subprocess.run(
        [sys.executable, "-m", "torrent_engine", "create", str(big), "-o", str(out), "--v1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "hashing 100.0%" in proc.stderr and "Traceback" not in proc.stderr
    assert "\r" not in proc.stderr  # (a pipe gets plain lines, not a line redrawn in place)
    assert Torrent.load(out).payload_size == 40 * 1024 * 1024


def test_cli_error_has_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "torrent_engine", "info", str(tmp_path / "missing.torrent")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr


COMMANDS = ["download", "info", "create", "scrape", "dht", "demo", "daemon", "remote"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_shows_examples_and_takes_v_and_q_after_it(command: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"torrent-engine {command}" in out.split("examples:")[1]
    assert "-q, --quiet" in out and "-v, --verbose" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import torrent_engine

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"torrent-engine {torrent_engine.__version__}"
