"""``torrent-engine stream``: download a torrent with priority on what a player reads, and serve
one of its files over HTTP on 127.0.0.1 while it downloads (seeking included)."""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import logging
import secrets
import shlex
import socket
import sys
from collections.abc import Generator
from pathlib import Path
from urllib.parse import quote

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..api.security import is_loopback
from ..api.stream import range_response
from ..config import DHT_ROUTERS, Config, default_state_dir
from ..engine.runtime import run as run_loop
from ..engine.shared import SharedResources
from ..engine.unwind import ExitStack
from ..errors import MetainfoError, StreamError
from ..formats.metainfo import Torrent
from ..session import Session
from ..units import human_bytes
from . import COMMANDS
from .download import (
    EXIT_INTERRUPTED,
    add_dht_options,
    add_lsd_options,
    load_source,
    parse_peer,
    until_stop_signal,
)
from .units import parse_port

log = logging.getLogger(__name__)

EXAMPLES = """examples:
  torrent-engine stream movie.torrent                      # prints the URL to open in a player
  torrent-engine stream 'magnet:?xt=urn:btih:...' --player mpv
  torrent-engine stream show.torrent --file '*E02*.mkv' --port 8888 --player 'vlc --play-and-exit'
Ctrl-C stops; what was downloaded is kept (run the same command again to go on)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``stream`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "stream", help=COMMANDS["stream"],
        description="Download TORRENT with priority on the bytes a player reads, and serve one of its "
                    "files on 127.0.0.1; print its URL, or start --player with it.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("torrent", metavar="TORRENT|MAGNET",
                   help="a .torrent file, an http(s) URL of one, or a magnet link")
    p.add_argument("--file", metavar="INDEX|GLOB",
                   help="the file to serve: its index as 'info' shows it, or a glob on its path "
                        "(default: the largest file)")
    p.add_argument("--port", type=int, default=0, metavar="P",
                   help="HTTP port on 127.0.0.1 (default: any free one)")
    p.add_argument("--player", metavar="CMD",
                   help="start this program with the URL (e.g. 'mpv', 'vlc --play-and-exit'); "
                        "stop when it exits")
    p.add_argument("-o", "--output", default=".", metavar="DIR", help="where to save (default: .)")
    p.add_argument("--peer", action="append", type=parse_peer, default=[], metavar="HOST:PORT",
                   help="connect to this peer too (repeatable)")
    net = p.add_argument_group("network")
    net.add_argument("--listen-port", type=parse_port, default=0, metavar="PORT",
                     help="TCP port for incoming peers (default: any free one)")
    net.add_argument("--listen-host", default="",
                     help="address peers connect to (default: every interface)")
    net.add_argument("--no-trackers", action="store_true", help="do not announce to the torrent's trackers")
    add_dht_options(net)
    net.add_argument("--no-port-mapping", dest="port_mapping", action="store_false", default=True,
                     help="do not ask the router to forward the listen port")
    add_lsd_options(net)
    state = p.add_mutually_exclusive_group()
    state.add_argument("--state-dir", type=Path, default=None,
                       help=f"resume data goes here (default: {default_state_dir() / 'cli'})")
    state.add_argument("--no-state", action="store_true", help="keep no resume data")
    p.set_defaults(run=run)


def choose_file(torrent: Torrent, spec: str | None) -> int:
    """The index in ``torrent.files`` of the file ``spec`` names: an index among the real files
    (as ``info`` numbers them), or a glob on the path (the first match); default the largest."""
    real = [i for i, f in enumerate(torrent.files) if not f.pad]
    if not real:
        raise MetainfoError("the torrent has no file to stream", "--file")
    if spec is None:
        return max(real, key=lambda i: torrent.files[i].length)
    if spec.isdigit():
        n = int(spec)
        if n >= len(real):
            raise MetainfoError(f"file index {n} is out of range (the torrent has {len(real)} files, "
                                "numbered from 0)", "--file")
        return real[n]
    for i in real:
        path = "/".join(torrent.files[i].path[1:] or torrent.files[i].path)
        if fnmatch.fnmatchcase(path, spec) or fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], spec):
            return i
    raise MetainfoError(f"no file matches {spec!r}", "--file")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the command handles SIGINT/SIGTERM itself


def stream_app(session: Session, index: int, secret: str) -> Starlette:
    """The HTTP app: ``GET``/``HEAD /{secret}/{name}`` serves file ``index`` of ``session`` with
    byte ranges; other paths are 404; a request whose ``Host`` is not loopback is refused (no DNS
    rebinding). The random ``secret`` keeps other local users' programs from guessing the URL."""
    async def serve(request: Request) -> Response:
        host = request.headers.get("host", "").rsplit(":", 1)[0]
        if not is_loopback(host):
            return PlainTextResponse(f"host {host!r} is not allowed", status_code=403)
        if not secrets.compare_digest(request.path_params["secret"], secret):
            return PlainTextResponse("not found", status_code=404)
        try:
            reader = await session.open_file(index).open()
        except StreamError as exc:
            return PlainTextResponse(str(exc), status_code=503)
        return await range_response(request, reader)

    return Starlette(routes=[Route("/{secret}/{name:path}", serve, methods=["GET", "HEAD"])])


def waiting_message(session: Session) -> str | None:
    """What the stream waits for now, in words (None: nothing)."""
    st = session.status()
    if not session.has_metadata:
        return f"waiting for the torrent's metadata ({st.peers} peers connected)"
    waits = [r.waiting for r in session.readers.open_readers if r.waiting is not None]
    if not waits:
        return None
    index = waits[0]
    have = session.picker.availability(index)
    return (f"waiting for piece {index} ({have} of {st.peers} connected peers have it; "
            f"{human_bytes(int(st.download_rate))}/s in)")


async def _stream(args: argparse.Namespace) -> int:
    source = await load_source(args.torrent)
    state_dir = None if args.no_state else (args.state_dir or default_state_dir() / "cli")
    loopback = args.listen_host.startswith("127.") or args.listen_host == "::1"
    config = Config(listen_host=args.listen_host, listen_port=args.listen_port, seed=True,
                    tracker_enabled=not args.no_trackers, state_dir=state_dir, dht_enabled=args.dht,
                    dht_bootstrap=tuple(args.dht_bootstrap) or DHT_ROUTERS, port_mapping=args.port_mapping,
                    lsd_enabled=args.lsd, enforce_bep42=not loopback)
    if isinstance(source, Torrent):
        choose_file(source, args.file)  # a --file that does not fit is an error before anything starts
    resume_path = None
    if state_dir is not None:
        resume_path = Path(state_dir) / "torrents" / f"{source.info_hash.hex()}.resume"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(64)
    sock.setblocking(False)
    interrupted = False
    code = 0
    async with ExitStack() as stack:
        stack.callback(sock.close)
        shared = await stack.enter_async_context(SharedResources(config))
        session = Session(source, args.output, config=config, shared=shared, peers=args.peer,
                          resume_path=resume_path)
        await stack.enter_async_context(session)
        async with anyio.create_task_group() as tg:
            async def on_signal() -> None:
                nonlocal interrupted
                await until_stop_signal()
                interrupted = True
                tg.cancel_scope.cancel()

            async def tell_waits() -> None:
                said = None
                while True:
                    message = waiting_message(session)
                    if message is not None and message != said:
                        print(message, file=sys.stderr, flush=True)
                    said = message
                    await anyio.sleep(0.25)

            tg.start_soon(on_signal)
            tg.start_soon(tell_waits)
            while not session.has_metadata:
                if session.finished:
                    raise StreamError(f"the session of {session.name} ended before its metadata came")
                await anyio.sleep(0.05)
            torrent = session.torrent
            index = choose_file(torrent, args.file)
            entry = torrent.files[index]
            secret = secrets.token_urlsafe(16)
            name = quote(entry.path[-1])
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/{secret}/{name}"
            config_u = uvicorn.Config(stream_app(session, index, secret), lifespan="off", log_config=None,
                                      log_level="warning", access_log=False, server_header=False,
                                      proxy_headers=False, timeout_graceful_shutdown=1)
            server = _Server(config_u)

            async def serve_http() -> None:
                try:
                    await server.serve(sockets=[sock])
                except anyio.get_cancelled_exc_class():
                    with anyio.CancelScope(shield=True):
                        server.should_exit = True
                        if server.started:
                            await server.shutdown(sockets=[sock])
                    raise

            tg.start_soon(serve_http)
            print(f"streaming {'/'.join(entry.path)} ({human_bytes(entry.length)})", file=sys.stderr,
                  flush=True)
            print(url, flush=True)
            if args.player:
                command = [*shlex.split(args.player), url]
                process = await anyio.open_process(command, stdin=None, stdout=None, stderr=None)
                async with process:
                    code = await process.wait()
                print(f"the player exited ({code})", file=sys.stderr, flush=True)
                code = 0
                tg.cancel_scope.cancel()
            else:
                print("Ctrl-C to stop", file=sys.stderr, flush=True)
                await anyio.sleep_forever()
    st = session.status()
    kept = f"{st.pieces} of {st.num_pieces} pieces verified and kept in {args.output}"
    if state_dir is not None:
        kept += f" (resume data in {state_dir})"
    print(f"stopped: {kept}", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED if interrupted and st.progress < 1.0 else code


def run(args: argparse.Namespace) -> int:
    """Stream a file of ``args.torrent``; return the exit code."""
    return run_loop(_stream, args)
