"""``torrent-engine download``: fetch torrents and magnet links with a live display, then exit
(or seed until a ratio or a time). Resumes by default from a per-user state directory."""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ..config import DHT_ROUTERS, TRANSPORTS, Config, default_state_dir
from ..engine.addtorrent import from_text
from ..engine.resolve import resolve
from ..engine.runtime import run as run_loop
from ..engine.shared import SharedResources
from ..engine.unwind import ExitStack
from ..errors import MetainfoError, SessionError, StorageError
from ..events import Event, PieceCompleted
from ..formats.endpoint import EndpointError, split_host_port
from ..formats.magnet import Magnet
from ..formats.metainfo import MAX_TORRENT_FILE_SIZE, Torrent
from ..policy.stall import diagnose
from ..session import Session
from ..units import human_bytes
from . import COMMANDS
from .create import check_output as check_torrent_output
from .display import ProgressDisplay, RichDisplay, progress_line, status_json
from .units import parse_port, parse_rate

if TYPE_CHECKING:  # (rich is an optional dependency: its console exists when a RichDisplay is made)
    from rich.console import Console

EXIT_INTERRUPTED = 130
EXIT_STALLED = 3  # no progress for --stall-timeout seconds; the reason is printed

EXAMPLES = """examples:
  torrent-engine download ubuntu.torrent -o ~/Downloads
  torrent-engine download 'magnet:?xt=urn:btih:...' --save-torrent ubuntu.torrent
  torrent-engine download https://example.org/x.torrent --select-file '*.iso' --sequential
  torrent-engine download a.torrent b.torrent --download-limit 2M --upload-limit 500K
  torrent-engine download x.torrent --seed-ratio 1.5          # seed until uploaded = 1.5 x size
  torrent-engine download x.torrent --json | jq .progress      # one JSON object per line
An interrupted download continues where it stopped: run the same command again."""


def add_port_mapping_options(group: argparse._ActionsContainer) -> None:
    """``--port-mapping`` (the default) / ``--no-port-mapping``, for the commands that listen."""
    mapping = group.add_mutually_exclusive_group()
    mapping.add_argument("--port-mapping", dest="port_mapping", action="store_true", default=True,
                         help="ask the router (NAT-PMP, UPnP IGD) to forward the listen port (default)")
    mapping.add_argument("--no-port-mapping", dest="port_mapping", action="store_false",
                         help="do not ask the router to forward any port")


def add_lsd_options(group: argparse._ActionsContainer) -> None:
    """``--lsd`` (the default) / ``--no-lsd``, for the commands that run sessions."""
    lsd = group.add_mutually_exclusive_group()
    lsd.add_argument("--lsd", dest="lsd", action="store_true", default=True,
                     help="find peers on the local network by Local Service Discovery (BEP 14 multicast; "
                          "never for private torrents; default)")
    lsd.add_argument("--no-lsd", dest="lsd", action="store_false",
                     help="do not announce on, nor listen to, the local network's LSD groups")


def add_dht_options(group: argparse._ActionsContainer) -> None:
    """``--dht`` (the default) / ``--no-dht`` and ``--dht-bootstrap``, for the commands that run a DHT."""
    dht = group.add_mutually_exclusive_group()
    dht.add_argument("--dht", dest="dht", action="store_true", default=True,
                     help="find peers through the DHT (default)")
    dht.add_argument("--no-dht", dest="dht", action="store_false", help="do not use the DHT")
    group.add_argument("--dht-bootstrap", action="append", type=parse_peer, default=[], metavar="HOST:PORT",
                       help="DHT bootstrap node (repeatable; default: the saved routing table, then the "
                            "well-known routers)")


async def until_stop_signal() -> None:
    """Return at the first SIGINT or SIGTERM (what ends ``download`` and ``stream``)."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


def parse_peer(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (IPv6 hosts in brackets, ``formats.endpoint``);
    ``argparse.ArgumentTypeError`` otherwise."""
    try:
        return split_host_port(text)
    except EndpointError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``download`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "download", help=COMMANDS["download"],
        description="Download each TORRENT into DIR with a live display; exit 0 when all are complete "
                    "and verified.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("torrents", nargs="+", metavar="TORRENT",
                   help="a .torrent file, an http(s) URL of one, or a magnet link (several allowed)")
    p.add_argument("-o", "--output", default=".", metavar="DIR", help="where to save (default: .)")
    p.add_argument("--peer", action="append", type=parse_peer, default=[], metavar="HOST:PORT",
                   help="connect to this peer too (repeatable)")
    files = p.add_argument_group("what to download")
    files.add_argument("--select-file", action="append", default=[], metavar="SPEC",
                       help="download only these files: indices as 'info' shows them (0,2-4) or a glob "
                            "on the path ('*.iso'); repeatable")
    files.add_argument("--exclude-file", action="append", default=[], metavar="SPEC",
                       help="skip these files (same forms as --select-file); repeatable")
    files.add_argument("--sequential", action="store_true",
                       help="fetch pieces in order (to play a file while it arrives)")
    files.add_argument("--save-torrent", type=Path, metavar="FILE",
                       help="write the torrent's metainfo here (for a magnet: once fetched from peers)")
    seed = p.add_argument_group("seeding")
    seed.add_argument("--seed", dest="seed", action="store_true", help="seed after completion until Ctrl-C")
    seed.add_argument("--no-seed", dest="seed", action="store_false", help="exit when complete (default)")
    seed.add_argument("--seed-ratio", type=_non_negative, metavar="RATIO",
                      help="seed until uploaded = RATIO x the torrent's size, then exit")
    seed.add_argument("--seed-time", type=_non_negative, metavar="MINUTES",
                      help="seed for MINUTES after completion, then exit")
    p.set_defaults(seed=False)
    net = p.add_argument_group("network")
    net.add_argument("--download-limit", type=parse_rate, default=0, metavar="RATE",
                     help="at most this many bytes/s in (500K, 2M, 1.5MiB/s; default: no limit)")
    net.add_argument("--upload-limit", type=parse_rate, default=0, metavar="RATE",
                     help="at most this many bytes/s out (default: no limit)")
    net.add_argument("--encryption", choices=["prefer", "require", "disable"], default="prefer",
                     help="MSE/PE policy (default: prefer)")
    net.add_argument("--transport", choices=TRANSPORTS, default="any",
                     help="peer transport: uTP first with TCP fallback (any, default), TCP first with uTP "
                          "fallback (tcp_first), uTP only, TCP only")
    net.add_argument("--listen-port", "--port", dest="port", type=parse_port, default=0, metavar="PORT",
                     help="TCP port for incoming peers (default: any free one)")
    net.add_argument("--listen-host", default="",
                     help="address to listen on (default: every interface, IPv4 and IPv6)")
    net.add_argument("--no-trackers", action="store_true", help="do not announce to the torrent's trackers")
    net.add_argument("--no-web-seeds", action="store_true",
                     help="do not fetch from the torrent's web seeds (BEP 19 url-list, magnet ws=)")
    add_dht_options(net)
    add_port_mapping_options(net)
    add_lsd_options(net)
    state = p.add_mutually_exclusive_group()
    state.add_argument("--state-dir", type=Path, default=None,
                       help=f"resume data goes here (default: {default_state_dir() / 'cli'})")
    state.add_argument("--no-state", action="store_true",
                       help="keep no resume data (an interrupted download is checked again from scratch)")
    p.add_argument("--json", action="store_true",
                   help="print progress as one JSON object per line on stdout, for scripts")
    p.add_argument("--stall-timeout", type=_non_negative, default=180.0, metavar="SECONDS",
                   help="give up (exit 3, saying why) after this long without progress; 0 = wait forever "
                        "(default: 180)")
    p.set_defaults(run=run)


# -- sources -------------------------------------------------------------------------------------
async def load_source(text: str) -> Torrent | Magnet:
    """A magnet link, an http(s) URL of a .torrent, or a .torrent file (read by the one resolver)."""
    return await resolve(from_text(text), max_size=MAX_TORRENT_FILE_SIZE)


def _spec_parts(specs: list[str]) -> list[str]:
    return [part.strip() for spec in specs for part in spec.split(",")]


def _index_range(part: str) -> tuple[int, int] | None:
    lo, dash, hi = part.partition("-")
    if lo.isascii() and lo.isdigit() and (not dash or (hi.isascii() and hi.isdigit())):
        return int(lo), int(hi) if dash else int(lo)
    return None


def _glob_matches(torrent: Torrent, part: str) -> set[int]:
    """The real files (numbered as ``info`` lists them) whose path matches the glob ``part``: the
    path as ``info`` prints it (with the torrent's folder), the path inside that folder, or the
    file's name."""
    real = [f for f in torrent.files if not f.pad]
    chosen: set[int] = set()
    for n, f in enumerate(real):
        full = "/".join(f.path)
        inner = "/".join(f.path[1:] or f.path)
        if any(fnmatch.fnmatchcase(path, part) for path in (full, inner, f.path[-1])):
            chosen.add(n)
    return chosen


def unmatched_specs(torrents: list[Torrent], specs: list[str]) -> list[str]:
    """The glob parts of ``specs`` that match no file of any of ``torrents``."""
    return [part for part in _spec_parts(specs)
            if _index_range(part) is None and not any(_glob_matches(t, part) for t in torrents)]


def check_specs(torrents: list[Torrent], select: list[str], exclude: list[str]) -> None:
    """``MetainfoError`` for a --select-file/--exclude-file pattern that matches no file of
    ``torrents`` (a typo would otherwise download everything, or nothing it meant)."""
    for flag, specs in (("--select-file", select), ("--exclude-file", exclude)):
        missing = unmatched_specs(torrents, specs)
        if missing:
            names = ", ".join(repr(t.name) for t in torrents)
            raise MetainfoError(f"{missing[0]!r} matches no file of {names} (the paths 'info' lists, "
                                "or their file names, are matched)", flag)


def select_files(torrent: Torrent, select: list[str], exclude: list[str]) -> list[int] | None:
    """Priorities for ``set_file_priorities`` (None: every file). Specs name files by their index
    among the real files (pad files are not counted, as ``info`` lists them) or by a glob on the
    path as ``info`` prints it, on the path inside the torrent's folder, or on the file's name."""
    if not select and not exclude:
        return None
    real = [i for i, f in enumerate(torrent.files) if not f.pad]

    def matching(spec: str) -> set[int]:
        chosen: set[int] = set()
        for part in _spec_parts([spec]):
            span = _index_range(part)
            if span is not None:
                first, last = span
                if last >= len(real) or first > last:
                    raise MetainfoError(f"file index {part} is out of range (the torrent has {len(real)} "
                                        "files, numbered from 0)", "--select-file")
                chosen.update(range(first, last + 1))
            else:  # a glob may match nothing here (with several torrents, it may be for another)
                chosen |= _glob_matches(torrent, part)
        return chosen

    wanted = set(range(len(real))) if not select else set().union(*(matching(s) for s in select))
    for spec in exclude:
        wanted -= matching(spec)
    if not wanted:
        specs = ", ".join(repr(s) for s in select) if select else "the exclusions"
        raise MetainfoError(f"no file of {torrent.name!r} is left to download by {specs}", "--select-file")
    priorities = [0] * len(torrent.files)
    for n in wanted:
        priorities[real[n]] = 1
    return priorities


# -- one torrent -----------------------------------------------------------------------------------
@dataclass
class Download:
    """One torrent or magnet of a ``download`` command: its session and how it is going."""

    label: str
    session: Session
    resume_path: Path | None
    note: str = ""
    done: bool = False
    error: str | None = None
    stalled: bool = False
    started: float = field(default_factory=time.monotonic)
    completed_at: float | None = None


def _say(text: str, console: Console | None) -> None:
    if console is not None:
        console.print(text, highlight=False, markup=False)
    else:
        print(text, file=sys.stderr, flush=True)


async def _follow(item: Download, args: argparse.Namespace, console: Console | None) -> None:
    """Wait for one torrent: selection once its metadata is known, resume news, completion, then
    seeding until its ratio or time is reached."""
    session = item.session
    base = 0

    async def until_complete() -> None:
        nonlocal base
        await session.wait_ready()
        if item.error is not None:  # the selection did not fit the fetched metadata
            return
        base = session.downloaded  # resume data carries earlier runs' totals: this run counts from here
        st = session.status()
        if session.resumed and st.num_pieces:
            _say(f"resuming {item.label}: {st.pieces} of {st.num_pieces} pieces verified", console)
        await session.wait_completed()

    try:
        await _complete_or_stall(item, args, until_complete)
        if item.stalled:
            return
        if item.error is not None:
            await session.pause()
            item.done = True
            _say(f"{item.label}: failed: {item.error}", console)
            return
    except SessionError as exc:
        item.error = str(exc)
        item.done = True
        _say(f"{item.label}: failed: {exc}", console)
        return
    item.completed_at = time.monotonic()
    if console is None and not args.json and not args.quiet:  # plain output: the final state too
        _say(progress_line(item.label, session.status()), None)
    elapsed = item.completed_at - item.started
    got = max(0, session.downloaded - base)
    size = session.status().total_wanted
    already = f"; {human_bytes(max(0, size - got))} were already there" if size > got else ""
    _say(f"completed {session.torrent.name}: {human_bytes(got)} received in {elapsed:.1f} s "
         f"({got / max(elapsed, 1e-6) / 1e6:.1f} MB/s){already}, every piece verified", console)
    if args.json:  # the last progress object says 100 %, as the plain output's last line does
        print(status_json(item.label, session.status()), flush=True)
        print(json.dumps({"event": "completed", "label": item.label, "info_hash": session.info_hash_hex,
                          "received": got, "seconds": round(elapsed, 3)}), flush=True)
    if args.seed_ratio is not None or args.seed_time is not None:
        item.note = "seeding until " + " or ".join(
            ([f"ratio {args.seed_ratio:g}"] if args.seed_ratio is not None else [])
            + ([f"{args.seed_time:g} min"] if args.seed_time is not None else []))
        limit = size * (args.seed_ratio if args.seed_ratio is not None else float("inf"))
        until = item.completed_at + 60 * (args.seed_time if args.seed_time is not None else float("inf"))
        while session.uploaded < limit and time.monotonic() < until:
            await anyio.sleep(0.5)
        _say(f"{item.label}: seeding done (uploaded {human_bytes(session.uploaded)})", console)
        item.done = True
    elif not args.seed:
        item.done = True
    else:
        item.note = "seeding; Ctrl-C to stop"


async def _complete_or_stall(item: Download, args: argparse.Namespace,
                             until_complete: Callable[[], Awaitable[None]]) -> None:
    """Wait for ``until_complete``; show the stall reason while there is one (a magnet's metadata
    included), and give up with it after --stall-timeout seconds without progress."""
    session = item.session
    async with anyio.create_task_group() as tg:
        async def watch() -> None:
            since: float | None = None
            while True:
                await anyio.sleep(0.5)
                st = session.status()
                if args.stall_timeout and _no_peer_source(session):
                    # nothing can ever bring a peer (only one that already knows us could come):
                    # waiting out --stall-timeout would not change that
                    item.stalled = True
                    item.done = True
                    item.error = f"{diagnose(session.stall_watch.swarm_facts())[1]}; nothing to wait for"
                    tg.cancel_scope.cancel()
                    return
                if st.stall_message is None:
                    since = None
                    item.note = ""
                    continue
                item.note = f"stalled: {st.stall_message}"
                now = time.monotonic()
                since = now if since is None else since
                # the session reports a stall after config.stall_after seconds without progress
                if args.stall_timeout and now - since >= args.stall_timeout - session.config.stall_after:
                    item.stalled = True
                    item.done = True
                    item.error = f"no progress for {args.stall_timeout:g} s: {st.stall_message}"
                    tg.cancel_scope.cancel()

        tg.start_soon(watch)
        await until_complete()
        tg.cancel_scope.cancel()
    if item.stalled:
        await session.pause()


def make_folder(folder: Path, option: str) -> None:
    """``folder`` made if it is not there (its parents too); ``StorageError`` naming ``option``
    when it cannot be (a file there said "[Errno 17] File exists")."""
    try:
        if folder.exists() and not folder.is_dir():
            raise StorageError(f"{option} {folder}: is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"{option} {folder}: cannot create the folder: {exc.strerror or exc}") from None


def check_output(output: str, torrents: list[Torrent]) -> None:
    """``StorageError`` (one line, said once) when ``-o`` cannot hold the download: it names an
    existing file, cannot be created, or a name in it or in a torrent is too long for its file
    system. The folder is created here (the first write would create it anyway)."""
    folder = Path(output)
    make_folder(folder, "-o")
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return
    for torrent in torrents:
        for f in torrent.files:
            for part in f.path:
                if len(part.encode("utf-8", "surrogateescape")) > name_max:
                    raise StorageError(f"{torrent.name!r}: the name {part[:40]!r}... is longer than the "
                                       f"{name_max} bytes a name may have in {output}")


def _not_said_below(record: logging.LogRecord) -> bool:
    """A log filter: not the record of a session's failure (the command prints the failure)."""
    return not getattr(record, "owner_hears", False)


def _no_peer_source(session: Session) -> bool:
    """Whether a download has no way at all to find a peer: no tracker, DHT, local discovery,
    web seed or peer given, and nobody known or connected."""
    if session.state.value not in ("downloading", "downloading_metadata"):
        return False
    facts = session.stall_watch.swarm_facts()
    return facts.sources == 0 and facts.known == 0 and facts.connected == 0


async def _download(args: argparse.Namespace) -> int:
    sources = [await load_source(text) for text in args.torrents]
    for source in sources:  # a selection that does not fit is an error before anything starts
        if isinstance(source, Torrent):
            select_files(source, args.select_file, args.exclude_file)
    torrents = [s for s in sources if isinstance(s, Torrent)]
    if len(torrents) == len(sources):
        check_specs(torrents, args.select_file, args.exclude_file)
    check_output(args.output, torrents)
    if args.save_torrent is not None:  # (written once the metainfo is there: where it cannot be, said now)
        check_torrent_output(args.save_torrent, force=True, option="--save-torrent")
    state_dir = None if args.no_state else (args.state_dir or default_state_dir() / "cli")
    loopback = args.listen_host.startswith("127.") or args.listen_host == "::1"
    seeding = args.seed or args.seed_ratio is not None or args.seed_time is not None
    config = Config(listen_host=args.listen_host, listen_port=args.port, encryption=args.encryption,
                    seed=seeding, tracker_enabled=not args.no_trackers, web_seeds=not args.no_web_seeds,
                    state_dir=state_dir,
                    dht_enabled=args.dht, dht_bootstrap=tuple(args.dht_bootstrap) or DHT_ROUTERS,
                    port_mapping=args.port_mapping, lsd_enabled=args.lsd, enforce_bep42=not loopback,
                    download_rate_limit=args.download_limit,
                    upload_rate_limit=args.upload_limit, transport=args.transport,
                    stall_after=min(30.0, args.stall_timeout) if args.stall_timeout else 30.0)
    for handler in logging.getLogger().handlers:  # a session's failure is said once, below
        handler.addFilter(_not_said_below)
    console = None
    rich_display: RichDisplay | None = None
    if not args.json and not args.quiet and sys.stderr.isatty():
        rich_display = RichDisplay(lambda: [(d.label, d.session.status(), d.note) for d in downloads])
        console = rich_display.console
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        handler = rich_display.log_handler()
        handler.addFilter(_not_said_below)
        root.addHandler(handler)
    downloads: list[Download] = []
    interrupted = False
    async with ExitStack() as stack:
        shared = await stack.enter_async_context(SharedResources(config))
        seen: set[bytes] = set()
        for source in sources:
            if source.info_hash in seen:
                continue
            seen.add(source.info_hash)
            resume_path = None
            if state_dir is not None:
                resume_path = Path(state_dir) / "torrents" / f"{source.info_hash.hex()}.resume"
            label = source.name if isinstance(source, Torrent) else \
                source.display_name or source.info_hash.hex()
            session = Session(source, args.output, config=config, shared=shared, peers=args.peer,
                              resume_path=resume_path)
            item = Download(label[:40], session, resume_path)
            _prepare(item, args)
            if args.json:
                _print_pieces(item)
            await stack.enter_async_context(session)
            downloads.append(item)
        async with anyio.create_task_group() as tg:
            async def on_signal() -> None:
                nonlocal interrupted
                await until_stop_signal()
                interrupted = True
                tg.cancel_scope.cancel()

            async def watch() -> None:
                async with anyio.create_task_group() as inner:
                    for item in downloads:
                        inner.start_soon(_follow, item, args, console)
                if not any(args.seed and d.error is None and not d.done for d in downloads):
                    tg.cancel_scope.cancel()

            tg.start_soon(on_signal)
            tg.start_soon(_show, downloads, args, rich_display)
            await watch()
    if interrupted:
        _say("stopped", console)
        if state_dir is not None and not all(d.done for d in downloads):
            _say(f"run the same command again to continue (resume data in {state_dir})", console)
        return 0 if all(d.session.complete for d in downloads) else EXIT_INTERRUPTED
    for d in downloads:
        if d.stalled:
            _say(f"{d.label}: gave up: {d.error}", console)
    if any(d.error and not d.stalled for d in downloads):
        return 1
    return EXIT_STALLED if any(d.stalled for d in downloads) else 0


def _prepare(item: Download, args: argparse.Namespace) -> None:
    """File selection, sequential mode and --save-torrent, applied as soon as the metainfo is known
    (before the first request: for a magnet, when the metadata arrives)."""
    session = item.session

    def apply() -> None:
        torrent = session.torrent
        if session.magnet is not None and len(args.torrents) == 1:
            check_specs([torrent], args.select_file, args.exclude_file)
        priorities = select_files(torrent, args.select_file, args.exclude_file)
        if priorities is None and not (session.magnet is not None and session.magnet.select_only):
            priorities = [0 if f.pad else 4 for f in torrent.files]  # every file, whatever was stored
        if priorities is not None:  # what the command line says wins over the resume data's
            session.set_file_priorities(priorities)
        if args.sequential:
            session.set_sequential(True)
        save_torrent()

    def save_torrent(_event: Event | None = None) -> None:
        # (again when v2 piece layers the metainfo lacked arrive from peers: BEP 52)
        if args.save_torrent is None:
            return
        torrent = session.torrent
        target = args.save_torrent if len(args.torrents) == 1 else \
            args.save_torrent.with_name(f"{args.save_torrent.stem}-{torrent.info_hash.hex()[:8]}.torrent")
        tmp = target.with_name(target.name + ".part")
        try:
            tmp.write_bytes(torrent.to_bytes())
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)

    session.events.subscribe("session.piece_layers_received", save_torrent)

    if session.has_metadata:
        apply()
    else:
        def on_metadata(_event: Event) -> None:
            subscription.cancel()
            try:
                apply()
            except MetainfoError as exc:  # a selection that does not fit: _follow ends the download
                item.error = str(exc)

        subscription = session.events.subscribe("session.metadata_received", on_metadata)


def _print_pieces(item: Download) -> None:
    """``--json``: one ``piece`` object per verified piece, in the order they complete (what a
    player streaming a ``--sequential`` download waits for)."""
    label = item.label

    def on_piece(event: PieceCompleted) -> None:
        print(json.dumps({"event": "piece", "time": round(time.time(), 3), "label": label,
                          "info_hash": event.info_hash, "index": event.index}, separators=(",", ":")),
              flush=True)

    item.session.events.subscribe(PieceCompleted, on_piece)


async def _show(downloads: list[Download], args: argparse.Namespace,
                rich_display: RichDisplay | None) -> None:
    if args.json:
        while True:
            for d in downloads:
                print(status_json(d.label, d.session.status()), flush=True)
            await anyio.sleep(1.0)
    if args.quiet:
        return
    if rich_display is not None:
        await rich_display.run()
        return
    await ProgressDisplay().run(lambda: [progress_line(d.label, d.session.status()) for d in downloads])


def run(args: argparse.Namespace) -> int:
    """Download every source of ``args``; return the exit code (3 when one stalled)."""
    return run_loop(_download, args)

