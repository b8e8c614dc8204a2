"""Command-line interface: ``torrent-engine COMMAND ...``. No protocol logic lives here.

Each command is a module of this package with ``register(subparsers)``; it sets ``run`` on its
parser, a function of the parsed arguments returning the exit code. Only the module of the
command being run is imported (the others are named in ``--help`` from ``COMMANDS``), so
``--version`` or ``info`` does not pay for the HTTP API, uvicorn or the session layer that
``daemon`` and ``download`` load.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ..errors import TorrentEngineError
from ..version import __version__

# Each command and its line in ``--help`` (in this order); its module passes the same line.
COMMANDS = {
    "info": "show what a .torrent file or magnet link holds",
    "create": "make a .torrent from a file or folder",
    "verify": "check downloaded files against a .torrent's hashes (nothing written)",
    "download": "download torrents or magnet links (then seed with --seed)",
    "stream": "play a file of a torrent while it downloads (HTTP on 127.0.0.1, with seeking)",
    "demo": "seed and download a generated payload over loopback",
    "scrape": "ask a torrent's trackers for its seeders, leechers and completed downloads",
    "dht": "query the DHT: ping, get-peers, announce, put, get",
    "publish": "put a new version of a BEP 46 mutable torrent in the DHT; prints its btpk link",
    "daemon": "run the job service with its HTTP API and web UI",
    "remote": "control a running daemon (add, list, watch, ...)",
    "user": "manage the daemon's users, their passwords, quotas and API keys",
}


# Shown at the end of each command's --help (download has its own, longer list).
EXAMPLES = {
    "info": """  torrent-engine info ubuntu.torrent            # name, hashes, files with their indices
  torrent-engine info 'magnet:?xt=urn:btih:...'
  torrent-engine info ubuntu.torrent --json | jq '.files[].path'""",
    "create": """  torrent-engine create ~/photos -o photos.torrent --tracker udp://tracker.example:6969/announce
  torrent-engine create big.iso -o big.torrent --piece-length 4M --hybrid
  torrent-engine create notes/ -o notes.torrent --private --web-seed https://example.org/notes/""",
    "verify": """  torrent-engine verify ubuntu.torrent -d ~/Downloads   # exit status 0: every piece verifies
  torrent-engine verify season.torrent -d /data --all     # every file, the complete ones too
  torrent-engine verify season.torrent -d /data --json | jq '.files[] | select(.state != "complete")'""",
    "scrape": """  torrent-engine scrape ubuntu.torrent""",
    "dht": """  torrent-engine dht ping router.example:6881
  torrent-engine dht get-peers 3f481fc25cda983e3374e16c93d8f8e9502682f7 --bootstrap HOST:PORT
  torrent-engine dht genkey key.hex
  torrent-engine dht put 'hello' --key key.hex --bootstrap HOST:PORT""",
    "publish": """  torrent-engine publish v2.torrent --key publisher.key --bootstrap HOST:PORT
  torrent-engine publish 3f481fc25cda983e3374e16c93d8f8e9502682f7 --key publisher.key --salt dumps \\
      --bootstrap HOST:PORT""",
    "demo": """  torrent-engine demo                 # 256 MiB between two sessions on 127.0.0.1
  torrent-engine demo --size 1024 --encryption require""",
    "daemon": """  torrent-engine daemon --download-dir ~/Downloads/torrents
  torrent-engine daemon --api-port 9000 --api-token "$TOKEN" --dht
  then open the printed http://127.0.0.1:8686/#token=... address in a browser""",
    "remote": """  torrent-engine remote add 'magnet:?xt=urn:btih:...'
  torrent-engine remote list
  torrent-engine remote watch
  torrent-engine remote cancel JOB_ID --delete-files""",
}


def _verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    """-v/-q on ``parser`` (the ones it lacks), so they work before or after the command."""
    taken = {option for action in parser._actions for option in action.option_strings}
    if "--verbose" not in taken:
        parser.add_argument("-v", "--verbose", action="count", default=default,
                            help="log more (-vv for debug)")
    if "--quiet" not in taken:
        parser.add_argument("-q", "--quiet", action="store_true",
                            default=False if default == 0 else default,
                            help="no progress display; only errors")


def command_named(argv: Sequence[str]) -> str | None:
    """The command ``argv`` runs: its first argument that is not an option (the top-level
    options take no value), if it is one of ``COMMANDS``."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``torrent-engine`` argument parser: every command fully registered, or with ``argv``
    only the one it runs (the others by name and help line, enough for ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="torrent-engine", description="A BitTorrent engine in pure Python.",
        epilog="Run 'torrent-engine COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _verbosity(parser, 0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    running = command_named(argv) if argv is not None else None
    for name, line in COMMANDS.items():
        if argv is None or name == running:
            importlib.import_module(f"{__name__}.{name}").register(sub)
        else:
            sub.add_parser(name, help=line)
    for name, command in sub.choices.items():
        _verbosity(command, argparse.SUPPRESS)  # -v and -q after the command too
        if command.epilog is None and name in EXAMPLES:
            command.epilog = "examples:\n" + EXAMPLES[name]
            command.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


# What only the command line and the daemon use: the extras [cli] and [daemon] (pyproject.toml).
EXTRA_MODULES = {"rich": "cli", "starlette": "daemon", "uvicorn": "daemon", "prometheus_client": "daemon"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        return _main(argv)
    except ModuleNotFoundError as exc:  # installed without the extra the command needs
        top = (exc.name or "").split(".")[0]
        if top not in EXTRA_MODULES:
            raise
        print(f"torrent-engine: this command needs {top}, which the library alone does not install: "
              f"pip install 'torrent-engine[{EXTRA_MODULES[top]}]' (or '[all]')", file=sys.stderr)
        return 1


def _main(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    args.quiet = bool(getattr(args, "quiet", False))
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    if args.quiet:
        level = logging.ERROR
    root = logging.getLogger()
    before = list(root.handlers)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:  # the console's own level: a logger lowered for the daemon's
        if handler not in before:  # log book (``LogBook.capturing``) prints no more for it
            handler.setLevel(level)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (TorrentEngineError, OSError) as exc:
        print(f"torrent-engine {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BaseExceptionGroup as group:  # what a task group wraps: the first typed error says it
        typed, rest = group.split((TorrentEngineError, OSError))
        if typed is None or rest is not None:
            raise
        first: BaseException = typed
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        print(f"torrent-engine {args.command}: error: {first}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
