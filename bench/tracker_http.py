"""HTTP(S) tracker announce round trips on loopback, a connection each and over a kept one: our
anyio HTTP/1.1 client (``http.announce``, without and with ``KeptConnections``) against the
standard library (the reference: ``urllib`` a connection each, ``http.client.HTTPConnection``
kept), all talking to the same threaded stdlib server, in a process of its own, that answers with
a compact response of 50 peers and keeps connections the client does not close. Both parse the
body with our parser, so the difference is the HTTP client alone. HTTPS: a self-signed
certificate the clients trust through ``SSL_CERT_FILE``, beside the system's trusted ones (the
default context, as a tracker's announce uses it). Each announce's wall time and this process's
CPU time (the server's is not counted), medians of 5 interleaved rounds.

    python bench/tracker_http.py [N] [--tls] [--name]   (--name: the tracker at "localhost")
"""

from __future__ import annotations

import http.client as stdlib_http
import multiprocessing
import os
import ssl
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from torrent_engine.api.tls import SELF_SIGNED_KEY
from torrent_engine.engine.runtime import run
from torrent_engine.formats.bencode import encode
from torrent_engine.net.tracker import http

try:
    from torrent_engine.net.httpclient.kept import KeptConnections
except ImportError:  # (a tree before them)
    KeptConnections = None  # type: ignore[assignment,misc]
from torrent_engine.net.tracker.messages import AnnounceRequest, announce_url, parse_announce_response

BODY = encode({"interval": 1800, "complete": 10, "incomplete": 40, "peers": bytes(range(6)) * 50})
REQUEST = AnnounceRequest(info_hash=b"\x12" * 20, peer_id=b"-TE0100-benchmarking", port=6881, left=1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # (a connection kept unless the client asks to close it)
    disable_nagle_algorithm = True  # (its head and body are two writes: as a tracker's server, no wait)

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass


def serve(port: multiprocessing.SimpleQueue, cert: str | None) -> None:  # type: ignore[type-arg]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, str(Path(cert).with_name(SELF_SIGNED_KEY)))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    port.put(server.server_address[1])
    server.serve_forever()


def trusted_certificate(folder: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost (the daemon's ``--https`` one) in
    ``folder``, and ``trust.pem``: it beside the system's trusted certificates, so that loading
    the trust costs what it costs. (The certificate's path, the trust's.)"""
    from torrent_engine.api.tls import self_signed

    made = self_signed(folder, ["127.0.0.1", "localhost"])
    system = ssl.get_default_verify_paths().cafile
    bundle = Path(system).read_bytes() if system and Path(system).is_file() else b""
    (folder / "trust.pem").write_bytes(made.certfile.read_bytes() + b"\n" + bundle)
    return str(made.certfile), str(folder / "trust.pem")


def timed(work: Callable[[], None], n: int) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    work()
    return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n


def main() -> None:
    n = int(next((a for a in sys.argv[1:] if a.isdigit()), "300"))
    use_tls = "--tls" in sys.argv
    host = "localhost" if "--name" in sys.argv else "127.0.0.1"  # (a name: looked up, or kept)
    folder = Path(tempfile.mkdtemp(prefix="tracker_http"))
    cert, trust = trusted_certificate(folder) if use_tls else (None, None)
    if trust is not None:
        os.environ["SSL_CERT_FILE"] = trust  # (the default context trusts it)
    told: multiprocessing.SimpleQueue = multiprocessing.SimpleQueue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=serve, args=(told, cert), daemon=True)
    server.start()
    port = told.get()
    scheme = "https" if use_tls else "http"
    url = f"{scheme}://{host}:{port}/announce"
    target = announce_url(url, REQUEST).split(f":{port}", 1)[1]

    def urllib_each() -> None:
        for _ in range(n):
            with urllib.request.urlopen(announce_url(url, REQUEST), timeout=5) as response:
                assert len(parse_announce_response(response.read()).peers) == 50

    def stdlib_kept() -> None:
        connection: stdlib_http.HTTPConnection = (
            stdlib_http.HTTPSConnection(host, port, timeout=5, context=ssl.create_default_context())
            if use_tls else stdlib_http.HTTPConnection(host, port, timeout=5))
        try:
            for _ in range(n):
                connection.request("GET", target)
                assert len(parse_announce_response(connection.getresponse().read()).peers) == 50
        finally:
            connection.close()

    def ours(kept: bool) -> Callable[[], None]:
        async def announces() -> None:
            options = {"kept": KeptConnections(30.0)} if kept else {}
            for _ in range(n):
                assert len((await http.announce(url, REQUEST, timeout=5, **options)).peers) == 50  # type: ignore[arg-type]
        return lambda: run(announces)

    clients = {"urllib, a connection each (reference)": urllib_each,
               "ours, a connection each": ours(False),
               "http.client, one connection kept (reference)": stdlib_kept,
               "ours, kept (KeptConnections)": ours(True)}
    if KeptConnections is None:  # (a tree before them: its a connection each alone)
        del clients["ours, kept (KeptConnections)"]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    for _ in range(5):  # interleaved, so all see the same machine load
        for name, work in clients.items():
            times[name].append(timed(work, n))
    server.terminate()
    print(f"{scheme} to {host}: {n} announces x 5 rounds, medians per announce (wall; this process's CPU); "
          f"load {os.getloadavg()[0]:.2f}")
    medians = {name: (statistics.median(t for t, _ in ts), statistics.median(c for _, c in ts))
               for name, ts in times.items()}
    for name, (wall, cpu) in medians.items():
        print(f"  {name}: {wall * 1e3:.3f} ms; CPU {cpu * 1e3:.3f} ms")
    each, ref_each = medians["ours, a connection each"], medians["urllib, a connection each (reference)"]
    print(f"  CPU, reference / ours (>1: ours cheaper): a connection each {ref_each[1] / each[1]:.2f}x")
    if KeptConnections is not None:
        kept, ref_kept = medians["ours, kept (KeptConnections)"], \
            medians["http.client, one connection kept (reference)"]
        print(f"  CPU, reference / ours: kept {ref_kept[1] / kept[1]:.2f}x; ours kept / ours each: "
              f"{kept[1] / each[1]:.2f}")


if __name__ == "__main__":
    main()
