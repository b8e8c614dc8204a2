"""Serving the API with uvicorn on the engine's own event loop, inside the caller's task group.

``uvicorn.run`` would make its own loop; here ``Server.serve()`` runs as one more task of the
daemon, on a socket we bind ourselves (so port 0 works and the port is known before serving).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import anyio
import h11
import uvicorn
from anyio.abc import TaskStatus
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..beats import next_beat
from ..feeds import FeedReader
from ..jobs import JobNotFound, JobService
from ..logbook import LogBook
from .app import MAX_TORRENT_SIZE, create_app
from .history import SAMPLE_INTERVAL, StatsHistory
from .jobjson import JobJson
from .joblines import JobLines
from .locate import DEFAULT_API_HOST, DEFAULT_API_PORT
from .metrics import Metrics
from .security import allowed_host_names, is_loopback
from .shutdown import DaemonStop
from .sse import DEFAULT_BUFFER, DEFAULT_HEARTBEAT, DEFAULT_QUEUE, EventLog
from .stream import METADATA_WAIT
from .tls import TlsFiles

log = logging.getLogger(__name__)


class _JsonH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol (h11), whose own refusal of a request it cannot parse (a bad
    header, a malformed ``Transfer-Encoding``) is a JSON error like every other answer of the API
    (``{"error": ...}``, as the OpenAPI document says of a 400), not a text/plain one."""

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"error": f"bad HTTP request: {msg}"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


class _Server(uvicorn.Server):
    _exit: anyio.Event | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The daemon handles SIGINT/SIGTERM itself (and stops us); uvicorn must not take them.
        yield

    async def main_loop(self) -> None:
        """uvicorn's, waking once a second (its ``Date`` header's resolution: ``on_tick`` with a
        count that is a multiple of 10 renews it) instead of ten times: an idle daemon's loop
        sleeps; ``exit`` ends the wait at once."""
        self._exit = anyio.Event()
        while not await self.on_tick(0):
            with anyio.CancelScope(deadline=next_beat(anyio.current_time(), 1.0)):  # (the others' beat)
                await self._exit.wait()

    def exit(self) -> None:
        """Begin uvicorn's graceful stop now."""
        self.should_exit = True
        if self._exit is not None:
            self._exit.set()


@dataclass
class ApiServer:
    """The HTTP API and web UI over ``service``: ``await tg.start(server.serve)`` to run it,
    ``server.stop()`` (or cancelling the task group) to end it."""

    service: JobService
    token: str
    host: str = DEFAULT_API_HOST
    port: int = DEFAULT_API_PORT
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    heartbeat: float = DEFAULT_HEARTBEAT
    buffer_size: int = DEFAULT_BUFFER
    queue_size: int = DEFAULT_QUEUE
    max_torrent_size: int = MAX_TORRENT_SIZE
    shutdown_timeout: float = 3.0
    compat_username: str | None = None  # the user name qBittorrent/Transmission logins need (None: any)
    metrics_token: str | None = None  # a token that /metrics takes besides ``token`` (and nothing else does)
    history_interval: float = SAMPLE_INTERVAL  # seconds between the web UI's chart samples
    stream_metadata_wait: float = METADATA_WAIT  # a magnet's stream: seconds to wait for the metadata
    tls: TlsFiles | None = None  # serve HTTPS with this certificate and key (None: plain HTTP)
    # the log clients read (the daemon's, which its logging feeds); None: one of its own, which the
    # jobs' events alone write in
    logbook: LogBook | None = None
    # the daemon's stop, for a client that asks for it (which door asked); None: refused
    shutdown: Callable[[str], object] | None = None
    # told as each request begins (the daemon's collector looks at what requests make: ``Sweeper.stir``)
    on_request: Callable[[], object] | None = None
    bound_port: int = 0
    events: EventLog | None = field(default=None, init=False)
    _server: _Server | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        """The API's base address (a loopback one when it listens on every interface)."""
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{self.bound_port}"

    @property
    def ui_url(self) -> str:
        """The web UI's address with the token in its fragment."""
        return f"{self.url}/#token={self.token}"

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve the API until cancelled (``task_status`` is set once the socket is bound)."""
        if not is_loopback(self.host):
            log.warning("the API listens on %s, reachable from other machines: anyone who has the "
                        "token controls the daemon (and its downloads folder)", self.host)
        sock = self._bind()
        self.bound_port = sock.getsockname()[1]
        job_json = JobJson(self.service)
        self.events = EventLog(self.service.events, self._snapshot, buffer_size=self.buffer_size,
                               queue_size=self.queue_size, snapshot_json=job_json.snapshot,
                               snapshot_parts=job_json.snapshot_parts)
        metrics = Metrics(self.service, tokens=(self.token, self.metrics_token or ""))
        history = StatsHistory(interval=self.history_interval)
        book = self.logbook if self.logbook is not None else LogBook()
        feeds = FeedReader.of(self.service)  # (read in the service's task group, from now on)
        app = create_app(self.service, token=self.token, events=self.events,
                         allowed_hosts=allowed_host_names(self.host, self.allowed_hosts),
                         cors_origins=self.cors_origins, max_torrent_size=self.max_torrent_size,
                         heartbeat=self.heartbeat, compat_username=self.compat_username,
                         metrics=metrics, history=history, stream_metadata_wait=self.stream_metadata_wait,
                         job_json=job_json, logbook=book, feeds=feeds, daemon_stop=DaemonStop(self.shutdown),
                         on_request=self.on_request)
        # log_config=None: uvicorn's loggers go to the application's logging setup, untouched.
        config = uvicorn.Config(app, http=_JsonH11Protocol, lifespan="off", log_config=None,
                                log_level="warning", access_log=False,
                                timeout_graceful_shutdown=int(self.shutdown_timeout) or 1,
                                server_header=False, proxy_headers=False,
                                ssl_certfile=str(self.tls.certfile) if self.tls is not None else None,
                                ssl_keyfile=str(self.tls.keyfile) if self.tls is not None else None)
        self._server = _Server(config)
        job_lines = JobLines(self.service.events, book)
        feeds.ensure_running()  # (in the service's task group: from its start, when it has not started)
        try:
            async with anyio.create_task_group() as tg:  # the loop-lag probe and the charts' sampler
                tg.start_soon(metrics.watch_loop)  # live as long as we serve
                tg.start_soon(history.sample, self.service.stats)
                task_status.started()
                try:
                    await self._server.serve(sockets=[sock])
                except anyio.get_cancelled_exc_class():
                    # uvicorn's connection tasks are not ours: close them before we go.
                    with anyio.CancelScope(shield=True):
                        self.stop()
                        if self._server.started:
                            await self._server.shutdown(sockets=[sock])
                    raise
                tg.cancel_scope.cancel()
        finally:
            job_lines.close()
            self.events.close()
            sock.close()

    def stop(self) -> None:
        """Begin a graceful stop: SSE streams end, open requests get ``shutdown_timeout``."""
        if self.events is not None:
            self.events.close()
        if self._server is not None:
            self._server.exit()

    def _snapshot(self, job_id: str | None) -> list[dict[str, object]]:
        if job_id is None:
            return [job.to_json() for job in self.service.list()]
        try:
            return [self.service.get(job_id).to_json()]
        except JobNotFound:
            return []
