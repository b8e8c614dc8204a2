"""Run links in their own process (the benchmarks' way: the relays' CPU is their own).

    python -m tests.linkemu LINKS.json

LINKS.json: ``{"links": [{"name": "s0", "target": ["127.0.0.1", 6881], "tcp": true, "udp": true,
"up": {"delay": 0.05, "rate": 1e6}, "down": {...}, "seed": 1, "share": "k"}]}`` (``up``/``down``:
LinkSpec fields; links with the same ``share`` key share one Duplex). Prints ``{"ports": [...]}``
once every relay listens, runs until stdin closes, then prints ``{"stats": [...]}``; with
``"sample": SECONDS`` in the top object, also ``"samples"``: ``[time.monotonic(), [bytes each link's
up direction has carried]]`` every SECONDS (the per-link rate curve).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from .model import Duplex, Link, LinkSpec
from .relay import LinkRelays, new_event_loop, start_link


async def serve(config: dict[str, Any]) -> None:
    shared: dict[str, Duplex] = {}
    links: list[LinkRelays] = []
    for i, item in enumerate(config["links"]):
        key = item.get("share")
        duplex = shared.get(key) if key else None
        if duplex is None:
            seed = int(item.get("seed", i * 2))
            duplex = Duplex(Link(LinkSpec(**item.get("up", {})), seed),
                            Link(LinkSpec(**item.get("down", {})), seed + 1))
            if key:
                shared[key] = duplex
        links.append(await start_link(duplex, tuple(item["target"]), tcp=item.get("tcp", True),
                                      udp=item.get("udp", True), host=item.get("host", "127.0.0.1"),
                                      port=item.get("port", 0), source_host=item.get("source_host"),
                                      name=item.get("name", str(i))))
    print(json.dumps({"ports": [link.port for link in links]}), flush=True)
    samples: list[tuple[float, list[int]]] = []
    interval = config.get("sample")
    sampler = asyncio.create_task(sample(links, float(interval), samples)) if interval else None
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    if sampler is not None:
        sampler.cancel()
    stats = [link.stats() for link in links]
    for link in links:
        await link.close()
    print(json.dumps({"stats": stats, "samples": samples}), flush=True)


async def sample(links: list[LinkRelays], interval: float,
                 out: list[tuple[float, list[int]]]) -> None:
    """Bounded by the run: cancelled when stdin closes."""
    while True:
        out.append((time.monotonic(), [link.duplex.up.sent_bytes for link in links]))
        await asyncio.sleep(interval)


def main() -> int:
    config = json.loads(open(sys.argv[1]).read())
    loop = new_event_loop()
    try:
        loop.run_until_complete(serve(config))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
