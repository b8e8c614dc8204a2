"""``torrent-engine dht ...`` run as a real process against a small DHT of our nodes on UDP."""

from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path

import anyio
import pytest

from torrent_engine.cli import build_parser
from torrent_engine.net.dht.node import DhtNode

pytestmark = pytest.mark.anyio


async def cli(*args: str) -> tuple[int, str, str]:
    extra = [] if args[0] == "genkey" else ["--timeout", "10"]
    with anyio.fail_after(30):
        proc = await anyio.run_process(
            [sys.executable, "-m", "torrent_engine", "dht", *args, *extra], check=False
        )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


async def test_dht_cli_against_a_loopback_dht(tmp_path: Path) -> None:
    async with anyio.create_task_group() as tg:
        nodes: list[DhtNode] = []
        for i in range(8):
            boot = [nodes[0].address] if nodes else []
            n = DhtNode(bind=("127.0.0.1", 0), enforce_bep42=False, bootstrap=boot, rng=random.Random(i))
            await tg.start(n.run)
            nodes.append(n)
        for n in nodes:
            await n.wait_bootstrapped()
        boot = ["--bootstrap", f"127.0.0.1:{nodes[0].port}", "--bind", "127.0.0.1:0"]
        local = ["--bind", "127.0.0.1:0"]

        code, out, _ = await cli("ping", f"127.0.0.1:{nodes[3].port}", *local)
        assert code == 0 and out.strip() == f"127.0.0.1:{nodes[3].port} id={nodes[3].node_id.hex()}"

        info_hash = hashlib.sha1(b"cli").digest()
        await nodes[5].announce_peer(info_hash, 6881)
        await nodes[6].announce_peer(info_hash, 6882)
        code, out, err = await cli("get-peers", info_hash.hex(), *boot)
        assert code == 0, err
        assert sorted(out.split()) == ["127.0.0.1:6881", "127.0.0.1:6882"]

        code, out, err = await cli("put", "Hello World!", *boot)
        assert code == 0, err
        assert out.startswith("e5f96f6f38320f0f33959cb4d3d656452117aadb ")
        code, out, err = await cli("get", "e5f96f6f38320f0f33959cb4d3d656452117aadb", *boot)
        assert code == 0 and out.strip() == "Hello World!"

        keyfile = tmp_path / "key"
        code, pub, _ = await cli("genkey", str(keyfile))
        assert code == 0 and len(pub.strip()) == 64
        code, out, err = await cli("put", "v1", "--key", str(keyfile), "--salt", "s", *boot)
        assert code == 0 and "seq=1" in out, err
        code, out, err = await cli("get", "--public-key", pub.strip(), "--salt", "s", *boot)
        assert code == 0 and out.split() == ["v1", "seq=1"], err

        code, _, err = await cli("get", hashlib.sha1(b"none").hexdigest(), *boot)
        assert code == 1 and "not found" in err
        tg.cancel_scope.cancel()


async def test_unreachable_bootstrap_is_a_one_line_error() -> None:
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as silent:
        port = silent.extra(anyio.abc.SocketAttribute.local_port)
        with anyio.fail_after(30):
            proc = await anyio.run_process(
                [
                    sys.executable,
                    "-m",
                    "torrent_engine",
                    "dht",
                    "get-peers",
                    "00" * 20,
                    "--bootstrap",
                    f"127.0.0.1:{port}",
                    "--bind",
                    "127.0.0.1:0",
                    "--timeout",
                    "5",
                    "--query-timeout",
                    "0.3",
                ],
                check=False,
            )
    assert proc.returncode == 1
    assert proc.stderr.decode().startswith("torrent-engine dht: error: no bootstrap node answered")


def test_arguments_are_validated() -> None:
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["dht", "get-peers", "abc", "--bootstrap", "127.0.0.1:1"])
    with pytest.raises(SystemExit):
        parser.parse_args(["dht", "get-peers", "00" * 20, "--bootstrap", "nohost"])
    args = parser.parse_args(["dht", "ping", "[::1]:6881"])
    assert args.node == ("::1", 6881)
