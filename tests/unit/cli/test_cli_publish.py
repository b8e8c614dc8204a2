"""``torrent-engine publish`` run as a real process against a small DHT of our nodes on UDP: the
key file made (0600), the btpk link printed, each version one seq more, read back verified."""

from __future__ import annotations

import random
import stat
import sys
from pathlib import Path

import anyio
import pytest

from torrent_engine.engine.mutable import latest_version
from torrent_engine.formats.magnet import parse_mutable_magnet
from torrent_engine.net.dht.node import DhtNode
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


async def publish(*args: str) -> tuple[int, str, str]:
    with anyio.fail_after(30):
        proc = await anyio.run_process(
            [sys.executable, "-m", "torrent_engine", "publish", *args, "--timeout", "10"], check=False)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


async def test_publish_against_a_loopback_dht(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f.bin").write_bytes(b"x" * 40_000)
    torrent = create_torrent(tmp_path / "data", piece_length=16 * 1024)
    (tmp_path / "v1.torrent").write_bytes(torrent.to_bytes())
    async with anyio.create_task_group() as tg:
        nodes: list[DhtNode] = []
        for i in range(6):
            boot = [nodes[0].address] if nodes else []
            n = DhtNode(bind=("127.0.0.1", 0), enforce_bep42=False, bootstrap=boot, rng=random.Random(i))
            await tg.start(n.run)
            nodes.append(n)
        for n in nodes:
            await n.wait_bootstrapped()
        boot = ["--bootstrap", f"127.0.0.1:{nodes[0].port}", "--bind", "127.0.0.1:0"]
        key = tmp_path / "publisher.key"

        code, out, err = await publish(str(tmp_path / "v1.torrent"), "--key", str(key), "--salt", "dumps",
                                       "--name", "dumps", *boot)
        assert code == 0, err
        assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_text().strip()) == 64
        link_text, summary = out.strip().splitlines()
        link = parse_mutable_magnet(link_text)
        assert link.salt == b"dumps" and link.display_name == "dumps"
        assert summary.startswith(f"seq=1 info_hash={torrent.info_hash.hex()} stored on ")
        version = await latest_version(nodes[4], link)
        assert (version.info_hash, version.seq) == (torrent.info_hash, 1)

        other = "ab" * 20  # the next version, by info-hash; the same key file
        code, out, err = await publish(other, "--key", str(key), "--salt", "dumps", *boot)
        assert code == 0, err
        assert out.splitlines()[0] == link.to_uri().replace("&dn=dumps", "")
        assert "seq=2 " in out
        version = await latest_version(nodes[5], link)
        assert (version.info_hash.hex(), version.seq) == (other, 2)
        tg.cancel_scope.cancel()


async def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    boot = ["--bootstrap", "127.0.0.1:9"]
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("not a key\n")
    code, _, err = await publish("ab" * 20, "--key", str(bad_key), *boot)
    assert code == 1 and "not a key file (expected 64 hex digits)" in err
    code, _, err = await publish("ab" * 20, "--key", str(tmp_path / "k"), "--salt", "s" * 65, *boot)
    assert code == 1 and "--salt is 65 bytes; BEP 44 allows 64" in err
    code, _, err = await publish(str(tmp_path / "missing.torrent"), "--key", str(tmp_path / "k"), *boot)
    assert code == 1 and "not an info-hash nor a .torrent" in err and "No such file" in err
    assert not (tmp_path / "k").exists()  # (nothing made for a publish refused before it began)
