"""Streaming benchmark: a file reader (``Session.open_file``) on a torrent downloading from a
libtorrent seeder on 127.0.0.1 capped at ``--seed-rate`` (default 10 MB/s).

    python bench/stream.py [--size-mib 256] [--piece-kib 256] [--seed-rate 10] [--read-rate 5]
                           [--read-seconds 20] [--rounds 3]

Per round, each on a fresh download (same seeder):
- ``ttfb_torrent``: from starting a session on the .torrent to the first 64 KiB read at byte 0;
- ``ttfb_magnet``: a magnet: from the metadata's arrival to the first 64 KiB at byte 0 (and
  the metadata's own time from the start);
- ``seek80``: after that first read, from a seek to 80 % of the file to its first 64 KiB;
- ``reader``: a reader that consumes at ``--read-rate`` MB/s from byte 0 for ``--read-seconds``:
  the reads that had to wait (> 50 ms) in all and after its read-ahead was first full, the
  longest wait, and how far the verified data stayed ahead of it (min over the last three
  quarters of the run, and median, MB).
libtorrent's cap hands out quota every ``tick_interval`` (500 ms by default), its handshake
included: ``connect`` and ``ttfb_after_connect`` split the first figure; ``--lt-tick-ms 50``
smooths the cap to show our own share.
Every byte read is compared with the original file: ``bad_bytes`` must be 0.
Prints one JSON line per round and a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from torrent_engine.config import Config  # noqa: E402
from torrent_engine.formats.magnet import parse_magnet  # noqa: E402
from torrent_engine.formats.metainfo import Torrent  # noqa: E402
from torrent_engine.session import Session  # noqa: E402
from torrent_engine.session.reader import FileReader  # noqa: E402
from torrent_engine.storage.create import create_torrent  # noqa: E402

FIRST = 64 * 1024
WAIT = 0.05  # a read that took longer than this waited for the download


def config() -> Config:
    return Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                  tracker_enabled=False, lsd_enabled=False, transport="tcp")


def lt_seeder(lt: Any, torrent: Torrent, save: Path, rate: int, tick_ms: int) -> tuple[Any, Any]:
    settings = {"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                "enable_upnp": False, "enable_natpmp": False, "allow_multiple_connections_per_ip": True,
                "enable_outgoing_utp": False, "enable_incoming_utp": False}
    if tick_ms:
        settings["tick_interval"] = tick_ms  # how often libtorrent hands out rate-limit quota
    ses = lt.session(settings)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(torrent.to_bytes()))
    params.save_path = str(save)
    handle = ses.add_torrent(params)
    deadline = time.monotonic() + 120
    while not handle.status().is_seeding:
        if time.monotonic() > deadline:
            raise SystemExit("libtorrent did not find the payload complete")
        time.sleep(0.05)
    handle.set_upload_limit(rate)
    return ses, handle


def ahead(session: Session, reader: FileReader) -> int:
    """Verified bytes from the reader's position on, without a gap."""
    pl = session.torrent.piece_length
    have = session.have
    i = reader.tell() // pl  # (one file: it starts at offset 0)
    n = session.torrent.num_pieces
    j = i
    while j < n and j in have:
        j += 1
    return max(0, min(reader.size, j * pl) - reader.tell())


async def one_round(torrent: Torrent, original: bytes, port: int, work: Path,
                    args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    bad = 0
    size = len(original)
    peers = [("127.0.0.1", port)]

    # 1. from a .torrent: first byte, then a seek to 80 %
    t0 = time.monotonic()
    connected: list[float] = []
    s = Session(torrent, work / "t", config=config(), peers=peers)
    s.events.subscribe("peer.connected", lambda _e: connected.append(time.monotonic()))
    async with s:
        async with s.open_file(0) as r:
            data = await r.read(FIRST)
            first = time.monotonic()
            out["ttfb_torrent"] = round(first - t0, 3)
            if connected:  # (the seeder's cap delays its handshake too: libtorrent's tick)
                out["connect"] = round(connected[0] - t0, 3)
                out["ttfb_after_connect"] = round(first - connected[0], 3)
            bad += data != original[:FIRST]
            at = size * 8 // 10
            t1 = time.monotonic()
            r.seek(at)
            data = await r.read(FIRST)
            out["seek80"] = round(time.monotonic() - t1, 3)
            bad += data != original[at:at + FIRST]
            out["had_at_seek80"] = round(len(s.have) / torrent.num_pieces, 3)

    # 2. from a magnet: metadata, then the first byte
    magnet = parse_magnet(torrent.magnet_uri())
    t0 = time.monotonic()
    async with Session(magnet, work / "m", config=config(), peers=peers) as s:
        meta_at: list[float] = []
        s.events.subscribe("session.metadata_received", lambda _e: meta_at.append(time.monotonic()))
        async with s.open_file(0) as r:
            data = await r.read(FIRST)
            done = time.monotonic()
        meta = meta_at[0] if meta_at else done
        out["metadata"] = round(meta - t0, 3)
        out["ttfb_magnet"] = round(done - meta, 3)
        bad += data != original[:FIRST]

    # 3. a reader at --read-rate MB/s
    rate = args.read_rate * 1e6
    chunk = 256 * 1024
    waits: list[float] = []
    waits_full: list[float] = []
    leads: list[int] = []
    full = False
    async with Session(torrent, work / "r", config=config(), peers=peers) as s:
        async with s.open_file(0) as r:
            start = time.monotonic()
            pos = 0
            while pos < size and time.monotonic() - start < args.read_seconds:
                due = start + pos / rate
                now = time.monotonic()
                if due > now:
                    await anyio.sleep(due - now)
                lead = ahead(s, r)
                leads.append(lead)
                window = len(r.window()) * torrent.piece_length
                if not full and lead >= min(window, size - pos):
                    full = True
                t = time.monotonic()
                data = await r.read(chunk)
                took = time.monotonic() - t
                if took > WAIT:
                    waits.append(took)
                    if full:
                        waits_full.append(took)
                bad += data != original[pos:pos + len(data)]
                pos += len(data)
            out["read_mb"] = round(pos / 1e6, 1)
            out["read_rate"] = round(pos / 1e6 / (time.monotonic() - start), 2)
    out["waits"] = len(waits)
    out["waits_after_full"] = len(waits_full)
    out["longest_wait"] = round(max(waits, default=0.0), 3)
    out["lead_mb_min_after_full"] = round(min(leads[len(leads) // 4:], default=0) / 1e6, 1)
    out["lead_mb_median"] = round(statistics.median(leads) / 1e6, 1) if leads else 0
    out["bad_reads"] = bad
    return out


async def run(args: argparse.Namespace) -> int:
    import libtorrent as lt

    work = Path(tempfile.mkdtemp(prefix="te-stream-bench-"))
    payload = work / "seed" / "movie.bin"
    payload.parent.mkdir(parents=True)
    original = os.urandom(args.size_mib << 20)
    payload.write_bytes(original)
    torrent = create_torrent(payload, piece_length=args.piece_kib * 1024, version="v1")
    ses, _handle = lt_seeder(lt, torrent, payload.parent, int(args.seed_rate * 1e6), args.lt_tick_ms)
    rows = []
    try:
        # a capped libtorrent seeder's first connection gets its first blocks late (about 0.85 s
        # here, while later connections to it get theirs in milliseconds; uncapped it answers at
        # once): a throwaway reader takes that before the rounds
        peers = [("127.0.0.1", ses.listen_port())]
        async with Session(torrent, work / "warmup", config=config(), peers=peers) as s:
            async with s.open_file(0) as r:
                await r.read(FIRST)
        for n in range(args.rounds):
            round_dir = work / f"round{n}"
            row = await one_round(torrent, original, ses.listen_port(), round_dir, args)
            print(json.dumps({"round": n + 1, **row}), flush=True)
            rows.append(row)
    finally:
        del ses

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)
    print(json.dumps({"summary": True, "size_mib": args.size_mib, "piece_kib": args.piece_kib,
                      "seed_rate_mb": args.seed_rate, "read_rate_mb": args.read_rate,
                      "lt_tick_ms": args.lt_tick_ms or 500,
                      **{f"median_{k}": med(k) for k in ("ttfb_torrent", "ttfb_magnet", "metadata", "seek80",
                                                         "waits_after_full", "lead_mb_median")},
                      "max_ttfb_magnet": max(r["ttfb_magnet"] for r in rows),
                      "max_seek80": max(r["seek80"] for r in rows),
                      "bad_reads": sum(r["bad_reads"] for r in rows)}), flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--piece-kib", type=int, default=256)
    ap.add_argument("--seed-rate", type=float, default=10.0, help="the libtorrent seeder's cap, MB/s")
    ap.add_argument("--read-rate", type=float, default=5.0, help="the paced reader's rate, MB/s")
    ap.add_argument("--read-seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lt-tick-ms", type=int, default=0,
                    help="the seeder's tick_interval, its rate-limit quota period (default 500)")
    args = ap.parse_args()
    return anyio.run(run, args, backend="asyncio", backend_options={"use_uvloop": True})


if __name__ == "__main__":
    sys.exit(main())
