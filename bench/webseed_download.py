"""Web seed (BEP 19) download benchmark: one single-file torrent whose only source is a web seed
(Debian's nginx on 127.0.0.1), fetched by our engine and, in the same run from the same server,
by aria2 (the same .torrent, web seed only, pieces verified as it goes) and by curl (the bare
file: no torrent, no hashing — the ceiling of the HTTP path).

    python bench/webseed_download.py [--size-mib 256] [--piece-kib 1024] [--rounds 2]

Prints one line per download and the ratios (aria2's time / ours, curl's time / ours).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio  # noqa: E402

from tests.interop._nginx import nginx  # noqa: E402
from torrent_engine.config import Config  # noqa: E402
from torrent_engine.formats.metainfo import Torrent  # noqa: E402
from torrent_engine.session import Session  # noqa: E402
from torrent_engine.storage.create import create_torrent  # noqa: E402


def ours(torrent: Torrent, out: Path) -> float:
    cfg = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                 lsd_enabled=False,
                 tracker_enabled=False, seed=False)

    async def run() -> float:
        start = time.perf_counter()
        async with Session(torrent, out, config=cfg) as session:
            await session.wait_completed()
        return time.perf_counter() - start

    return anyio.run(run, backend="asyncio", backend_options={"use_uvloop": True})


def aria2(torrent_path: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["aria2c", "-q", "--seed-time=0", "--enable-dht=false", "--enable-dht6=false",
                    "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--listen-port=51413",
                    "--file-allocation=none", "--allow-overwrite=true", "--dir", str(out), str(torrent_path)],
                   check=True, timeout=900)
    return time.perf_counter() - start


def curl(url: str, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["curl", "-s", "-o", str(out / "file.bin"), url], check=True, timeout=900)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--piece-kib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="bench-webseed-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "www").mkdir()
        data = tmp / "www" / "file.bin"
        with open(data, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1024 * 1024))
        with nginx(tmp / "nginx", tmp / "www") as server:
            url = server.url + "file.bin"
            torrent = create_torrent(data, piece_length=args.piece_kib * 1024, version="v1", web_seeds=[url])
            torrent_path = tmp / "t.torrent"
            torrent_path.write_bytes(torrent.to_bytes())
            for r in range(1, args.rounds + 1):
                times: dict[str, float] = {}
                for name, fetch in (("ours", lambda out: ours(torrent, out)),
                                    ("aria2", lambda out: aria2(torrent_path, out)),
                                    ("curl", lambda out: curl(url, out))):
                    out = tmp / f"out-{name}"
                    shutil.rmtree(out, ignore_errors=True)
                    out.mkdir()
                    times[name] = fetch(out)
                    got = out / "file.bin"
                    assert got.stat().st_size == size, name
                    print(f"round {r} {name}: {times[name]:.2f} s, {size / times[name] / 1e6:.1f} MB/s",
                          flush=True)
                    shutil.rmtree(out)
                print(f"round {r}: aria2/ours {times['aria2'] / times['ours']:.2f}x, "
                      f"curl/ours {times['curl'] / times['ours']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
