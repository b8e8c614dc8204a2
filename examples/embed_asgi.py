"""Embed the job service in an ASGI application: a Starlette app of your own that starts the
engine with its lifespan, mounts the engine's HTTP API (and its web UI's JSON) under /torrents,
and uses the ``JobService`` directly in its own routes. FastAPI apps mount it the same way
(``app.mount("/torrents", engine_api)``).

    python examples/embed_asgi.py --download-root downloads/ --port 8000
    curl http://127.0.0.1:8000/                                       # your app's own page
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/torrents/api/jobs
    curl -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
         -d '{"source": "magnet:?xt=urn:btih:..."}' http://127.0.0.1:8000/torrents/api/jobs

Everything runs on the server's one event loop: the peers, the jobs and the HTTP requests. The
server is started here with ``te.run`` (anyio on asyncio, uvloop where present, as the daemon
runs); an app served by ``uvicorn module:app`` on uvicorn's own loop works the same.
(It needs the daemon's dependencies: ``pip install 'torrent-engine[daemon]'``.)
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

import torrent_engine as te
from torrent_engine.api import EventLog, create_app
from torrent_engine.jobs import JobNotFound, JobService


def build_app(jobs: JobService, token: str) -> Starlette:
    """Your application, with the engine's API mounted at /torrents."""

    def snapshot(job_id: str | None) -> list[dict[str, object]]:
        """The jobs an event stream starts with (all, or one)."""
        if job_id is None:
            return [job.to_json() for job in jobs.list()]
        try:
            return [jobs.get(job_id).to_json()]
        except JobNotFound:
            return []

    events = EventLog(jobs.events, snapshot)
    engine_api = create_app(jobs, token=token, events=events,
                            allowed_hosts=frozenset({"127.0.0.1", "localhost"}))

    async def home(request: Request) -> PlainTextResponse:
        """Your own page, reading the same JobService."""
        lines = [f"{job.name}\t{job.state}\t{job.progress:.0%}" for job in jobs.list()]
        return PlainTextResponse("\n".join(["name\tstate\tprogress", *lines]) + "\n")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with jobs:  # starts the engine on the server's loop; stops it (jobs saved) at the end
            try:
                yield
            finally:
                events.close()  # ends the event streams, so the server can stop

    return Starlette(routes=[Route("/", home), Mount("/torrents", engine_api)], lifespan=lifespan)


def main() -> int:
    """Parse the arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--download-root", type=Path, default=Path("downloads"))
    parser.add_argument("--state-dir", type=Path, default=None, help="keeps the jobs across restarts")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    parser.add_argument("--local", action="store_true",
                        help="loopback only: no DHT, trackers, LSD or port mapping")
    args = parser.parse_args()
    config = te.Config()
    if args.local:
        config = te.Config(listen_host="127.0.0.1", dht_enabled=False, tracker_enabled=False,
                           lsd_enabled=False, port_mapping=False)
    token = secrets.token_urlsafe(24)
    jobs = JobService(config, download_root=args.download_root, state_dir=args.state_dir)
    app = build_app(jobs, token)
    sock = socket.create_server(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    print(f"serving on http://127.0.0.1:{port}/ (engine API under /torrents, token {token})", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    try:
        te.run(server.serve, [sock])  # anyio on asyncio (uvloop where present), as the daemon runs
    except KeyboardInterrupt:  # uvicorn stopped gracefully, then passed the Ctrl-C on
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
