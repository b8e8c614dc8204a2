"""Command-line interface: ``torrent-engine COMMAND ...``. No protocol logic lives here.

Each command is a module of this package with ``register(subparsers)``; it sets ``run`` on its
parser, a function of the parsed arguments returning the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ..errors import TorrentEngineError
from ..version import __version__

# Order here is the order in ``--help``.
COMMANDS = ["info", "create", "download", "stream", "demo", "scrape", "dht", "daemon", "remote"]


# Shown at the end of each command's --help (download has its own, longer list).
EXAMPLES = {
    "info": """  torrent-engine info ubuntu.torrent            # name, hashes, files with their indices
  torrent-engine info 'magnet:?xt=urn:btih:...'
  torrent-engine info ubuntu.torrent --json | jq '.files[].path'""",
    "create": """  torrent-engine create ~/photos -o photos.torrent --tracker udp://tracker.example:6969/announce
  torrent-engine create big.iso -o big.torrent --piece-length 4M --hybrid
  torrent-engine create notes/ -o notes.torrent --private --web-seed https://example.org/notes/""",
    "scrape": """  torrent-engine scrape ubuntu.torrent""",
    "dht": """  torrent-engine dht ping router.example:6881
  torrent-engine dht get-peers 3f481fc25cda983e3374e16c93d8f8e9502682f7 --bootstrap HOST:PORT
  torrent-engine dht genkey key.hex
  torrent-engine dht put 'hello' --key key.hex --bootstrap HOST:PORT""",
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


def build_parser() -> argparse.ArgumentParser:
    """The ``torrent-engine`` argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="torrent-engine", description="A BitTorrent engine in pure Python.",
        epilog="Run 'torrent-engine COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _verbosity(parser, 0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(sub)
    for name, command in sub.choices.items():
        _verbosity(command, argparse.SUPPRESS)  # -v and -q after the command too
        if command.epilog is None and name in EXAMPLES:
            command.epilog = "examples:\n" + EXAMPLES[name]
            command.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.quiet = bool(getattr(args, "quiet", False))
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    if args.quiet:
        level = logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
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
