"""HTTP tracker announce round trips on loopback: our anyio HTTP/1.1 client against the stdlib's
urllib (the reference), both talking to the same threaded stdlib server that answers with a
compact response of 50 peers. Both parse the body with our parser, so the difference is the
HTTP client alone.

    python bench/tracker_http.py [N]
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from torrent_engine.engine.runtime import run
from torrent_engine.formats.bencode import encode
from torrent_engine.net.tracker import http
from torrent_engine.net.tracker.messages import AnnounceRequest, announce_url, parse_announce_response

BODY = encode({"interval": 1800, "complete": 10, "incomplete": 40, "peers": bytes(range(6)) * 50})
REQUEST = AnnounceRequest(info_hash=b"\x12" * 20, peer_id=b"-TE0100-benchmarking", port=6881, left=1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/announce"

    def reference() -> float:
        start = time.perf_counter()
        for _ in range(n):
            with urllib.request.urlopen(announce_url(url, REQUEST), timeout=5) as response:
                assert len(parse_announce_response(response.read()).peers) == 50
        return (time.perf_counter() - start) / n

    async def ours() -> float:
        start = time.perf_counter()
        for _ in range(n):
            assert len((await http.announce(url, REQUEST, timeout=5)).peers) == 50
        return (time.perf_counter() - start) / n

    ref_times, our_times = [], []
    for _ in range(5):  # interleaved, so both see the same machine load
        ref_times.append(reference())
        our_times.append(run(ours))
    server.shutdown()
    ref, us = statistics.median(ref_times), statistics.median(our_times)
    print(f"{n} announces x 5 rounds, medians per announce")
    print(f"urllib (reference): {ref * 1e3:.3f} ms")
    print(f"ours (anyio/uvloop): {us * 1e3:.3f} ms")
    print(f"ratio (reference / ours, >1 = ours faster): {ref / us:.2f}x")


if __name__ == "__main__":
    main()
