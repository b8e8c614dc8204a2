"""Compact peer and node lists decoded (``formats.compact``: a tracker's answer, PEX, the DHT's
``nodes`` and ``values``), in process, against two references measured in the same run: the
entries split by ``struct`` alone with no address made text (the floor), and every address read
through ``ipaddress`` (the plain way; the decoders' own until they took ``socket.inet_ntoa``).

    python bench/bench_compact.py [--peers 200] [--rounds 7]

Prints one JSON line: nanoseconds an entry (median of ``--rounds``), ours against each
reference, and the machine's load average.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from torrent_engine.formats import compact  # noqa: E402

REPEAT = 200  # decodes a round


def ns_an_entry(work: Callable[[], object], entries: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(REPEAT):
            work()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) / REPEAT / entries * 1e9, 1)


def floor(data: bytes, fmt: struct.Struct) -> list[tuple[bytes, ...]]:
    return [e for e in fmt.iter_unpack(data) if e[-1]]


def plain(data: bytes, size: int, skip: int) -> list[tuple[bytes, str, int]]:
    out = []
    for offset in range(0, len(data) - size + 1, size):
        entry = data[offset + skip:offset + size]
        port = int.from_bytes(entry[-2:], "big")
        if port:
            host = compact.normalize_host(ipaddress.ip_address(entry[:-2]))
            out.append((data[offset:offset + skip], host, port))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(1)
    n = args.peers
    peers = b"".join(rng.randbytes(4) + rng.randrange(1, 65536).to_bytes(2, "big") for _ in range(n))
    nodes = b"".join(rng.randbytes(24) + rng.randrange(1, 65536).to_bytes(2, "big") for _ in range(n))
    peers6 = b"".join(rng.randbytes(16) + rng.randrange(1, 65536).to_bytes(2, "big") for _ in range(n))
    assert compact.decode_peers(peers, ipv6=False) == [(h, p) for _, h, p in plain(peers, 6, 0)]
    assert compact.decode_nodes(nodes, ipv6=False) == plain(nodes, 26, 20)
    rounds = args.rounds
    out: dict[str, object] = {"entries": n}
    v4, node4, v6 = struct.Struct("!4sH"), struct.Struct("!20s4sH"), struct.Struct("!16sH")
    for name, ours, ref_floor, ref_plain in (
        ("peers_v4", lambda: compact.decode_peers(peers, ipv6=False), lambda: floor(peers, v4),
         lambda: plain(peers, 6, 0)),
        ("nodes_v4", lambda: compact.decode_nodes(nodes, ipv6=False), lambda: floor(nodes, node4),
         lambda: plain(nodes, 26, 20)),
        ("peers_v6", lambda: compact.decode_peers(peers6, ipv6=True), lambda: floor(peers6, v6),
         lambda: plain(peers6, 18, 0)),
    ):
        a, b, c = (ns_an_entry(w, n, rounds) for w in (ours, ref_floor, ref_plain))
        out[name] = {"ours_ns": a, "floor_ns": b, "ipaddress_ns": c,
                     "ours_over_floor": round(a / b, 2), "ipaddress_over_ours": round(c / a, 2)}
    out["load"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
