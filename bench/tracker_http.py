"""HTTP tracker announce round trips on loopback: our anyio HTTP/1.1 client against the stdlib's
urllib (the reference), both talking to the same threaded stdlib server, in a process of its
own, that answers with a compact response of 50 peers. Both parse the body with our parser, so
the difference is the HTTP client alone. Each announce's wall time and this process's CPU time
(the server's is not counted), medians of 5 interleaved rounds.

    python bench/tracker_http.py [N]
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
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


def serve(port: multiprocessing.SimpleQueue) -> None:  # type: ignore[type-arg]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port.put(server.server_address[1])
    server.serve_forever()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    told: multiprocessing.SimpleQueue = multiprocessing.SimpleQueue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=serve, args=(told,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{told.get()}/announce"

    def reference() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            with urllib.request.urlopen(announce_url(url, REQUEST), timeout=5) as response:
                assert len(parse_announce_response(response.read()).peers) == 50
        return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n

    async def ours() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            assert len((await http.announce(url, REQUEST, timeout=5)).peers) == 50
        return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n

    ref_times, our_times = [], []
    for _ in range(5):  # interleaved, so both see the same machine load
        ref_times.append(reference())
        our_times.append(run(ours))
    server.terminate()
    ref, us = (statistics.median(t for t, _ in ref_times), statistics.median(c for _, c in ref_times)), \
        (statistics.median(t for t, _ in our_times), statistics.median(c for _, c in our_times))
    print(f"{n} announces x 5 rounds, medians per announce (wall; this process's CPU)")
    print(f"urllib (reference): {ref[0] * 1e3:.3f} ms; CPU {ref[1] * 1e3:.3f} ms")
    print(f"ours (anyio/uvloop): {us[0] * 1e3:.3f} ms; CPU {us[1] * 1e3:.3f} ms")
    print(f"ratio (reference / ours, >1 = ours faster): wall {ref[0] / us[0]:.2f}x, "
          f"CPU {ref[1] / us[1]:.2f}x")


if __name__ == "__main__":
    main()
