"""``torrent-engine user``: the daemon's users in its state folder (``users.json``): add, list,
remove, a new password, a role, quotas, and API keys (made, listed, rotated, revoked).

A password is read from standard input when it is not a terminal (one line), else asked twice
without echo. A running daemon reads the file again when it changes: no restart is needed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import TextIO

from ..api.users import Scope, User, UserError, UserStore
from ..config import default_state_dir
from . import COMMANDS
from .units import parse_size

EXAMPLES = """examples:
  torrent-engine user add alice --role user --max-torrents 50 --max-bytes 500G
  printf '%s\\n' "$PASSWORD" | torrent-engine user add bob --role viewer
  torrent-engine user list
  torrent-engine user passwd alice
  torrent-engine user key add alice --scope read --scope add
  torrent-engine user key list alice
  torrent-engine user key revoke alice 3f9a0c21b7de
  torrent-engine user remove bob"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``user`` subcommand (and its own subcommands) to ``subparsers``."""
    p = subparsers.add_parser("user", help=COMMANDS["user"], epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              description="Manage the daemon's users: each sees and controls only their own "
                                          "torrents (a viewer reads all; an admin manages all).")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def state(q: argparse.ArgumentParser) -> None:
        q.add_argument("--state-dir", type=Path, default=None,
                       help=f"the daemon's state directory (default: {default_state_dir()})")

    add = sub.add_parser("add", help="add a user (the password from stdin, or asked twice)")
    add.add_argument("name")
    add.add_argument("--role", required=True, help="admin, user or viewer")
    _quota_options(add)
    state(add)
    add.set_defaults(run=run_add)

    listing = sub.add_parser("list", help="list the users (never a password or a key)")
    listing.add_argument("--json", action="store_true", help="as JSON")
    state(listing)
    listing.set_defaults(run=run_list)

    remove = sub.add_parser("remove", help="remove a user and their keys (their torrents stay, the admin's)")
    remove.add_argument("name")
    state(remove)
    remove.set_defaults(run=run_remove)

    passwd = sub.add_parser("passwd", help="a new password for a user")
    passwd.add_argument("name")
    state(passwd)
    passwd.set_defaults(run=run_passwd)

    role = sub.add_parser("role", help="a new role for a user")
    role.add_argument("name")
    role.add_argument("role", help="admin, user or viewer")
    state(role)
    role.set_defaults(run=run_role)

    quota = sub.add_parser("quota", help="a user's quotas (0: none)")
    quota.add_argument("name")
    _quota_options(quota)
    state(quota)
    quota.set_defaults(run=run_quota)

    key = sub.add_parser("key", help="a user's API keys: add, list, rotate, revoke")
    keys = key.add_subparsers(dest="key_action", metavar="KEY_ACTION", required=True)
    key_add = keys.add_parser("add", help="a new key (printed once; keep it)")
    key_add.add_argument("name")
    key_add.add_argument("--scope", action="append", required=True,
                         help=f"what the key may do (repeatable): {', '.join(s.value for s in Scope)}")
    state(key_add)
    key_add.set_defaults(run=run_key_add)
    key_list = keys.add_parser("list", help="the keys (their ids and scopes; never the key)")
    key_list.add_argument("name", nargs="?", help="one user's (default: every user's)")
    state(key_list)
    key_list.set_defaults(run=run_key_list)
    key_revoke = keys.add_parser("revoke", help="a key no longer works")
    key_revoke.add_argument("name")
    key_revoke.add_argument("key_id", metavar="KEY_ID")
    state(key_revoke)
    key_revoke.set_defaults(run=run_key_revoke)
    key_rotate = keys.add_parser("rotate", help="a new key with the same scopes; the old one no longer works")
    key_rotate.add_argument("name")
    key_rotate.add_argument("key_id", metavar="KEY_ID")
    state(key_rotate)
    key_rotate.set_defaults(run=run_key_rotate)


def _quota_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-torrents", type=int, default=None, metavar="N",
                   help="at most N torrents (0: no quota)")
    p.add_argument("--max-bytes", type=parse_size, default=None, metavar="SIZE",
                   help="at most SIZE bytes in all their torrents (500G, 2T; 0: no quota)")


def _state_folder(args: argparse.Namespace) -> Path:
    return Path(args.state_dir) if args.state_dir else default_state_dir()


def _store(args: argparse.Namespace) -> UserStore:
    return UserStore(_state_folder(args))


def _read_store(args: argparse.Namespace) -> UserStore:
    """``_store``, for a command that only reads it: a state folder that is not there is said
    (a mistyped ``--state-dir`` listed "no users", as a daemon without users does)."""
    folder = _state_folder(args)
    if not folder.is_dir():
        raise UserError(f"no state folder at {folder} (the daemon's --state-dir: made at its first "
                        "start, or by 'user add')", "state_dir")
    return UserStore(folder)


def read_password(name: str, *, stdin: TextIO | None = None) -> str:
    """A password: the first line of standard input when it is not a terminal, else asked
    twice without echo (``UserError`` when the two differ)."""
    stream = sys.stdin if stdin is None else stdin
    if not stream.isatty():
        return stream.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {name}: ")
    if getpass.getpass(f"again, for {name}: ") != first:
        raise UserError("the two passwords differ", "password")
    return first


def run_add(args: argparse.Namespace) -> int:
    """``user add NAME --role ROLE``."""
    store = _store(args)
    user = store.add(args.name, args.role, read_password(args.name), max_torrents=args.max_torrents or 0,
                     max_bytes=args.max_bytes or 0)
    print(f"added {user.role.value} {user.name!r} to {store.path}")
    return 0


def _line(user: User) -> str:
    quota = []
    if user.max_torrents:
        quota.append(f"max {user.max_torrents} torrents")
    if user.max_bytes:
        quota.append(f"max {user.max_bytes} bytes")
    return (f"{user.name}\t{user.role.value}\t{len(user.keys)} key{'s' if len(user.keys) != 1 else ''}"
            f"\t{', '.join(quota) or 'no quota'}")


def run_list(args: argparse.Namespace) -> int:
    """``user list``."""
    store = _read_store(args)
    users = store.users()
    if args.json:
        print(json.dumps([u.to_json() for u in users], indent=1))
    elif not users:
        print(f"no users in {store.path} (the daemon's API token is the admin)")
    else:
        for user in users:
            print(_line(user))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """``user remove NAME``."""
    _store(args).remove(args.name)
    print(f"removed {args.name!r}")
    return 0


def run_passwd(args: argparse.Namespace) -> int:
    """``user passwd NAME``."""
    store = _store(args)
    store.get(args.name)  # (an unknown user is said before a password is asked)
    store.set_password(args.name, read_password(args.name))
    print(f"new password for {args.name!r}")
    return 0


def run_role(args: argparse.Namespace) -> int:
    """``user role NAME ROLE``."""
    user = _store(args).set_role(args.name, args.role)
    print(f"{user.name!r} is now {user.role.value}")
    return 0


def run_quota(args: argparse.Namespace) -> int:
    """``user quota NAME --max-torrents N --max-bytes SIZE``."""
    user = _store(args).set_quota(args.name, max_torrents=args.max_torrents, max_bytes=args.max_bytes)
    print(_line(user))
    return 0


def run_key_add(args: argparse.Namespace) -> int:
    """``user key add NAME --scope S ...``: the key, printed once."""
    record, key = _store(args).add_key(args.name, args.scope)
    print(key)
    print(f"key {record.id} of {args.name!r} ({', '.join(sorted(record.scopes))}): shown this once",
          file=sys.stderr)
    return 0


def run_key_list(args: argparse.Namespace) -> int:
    """``user key list [NAME]``."""
    store = _read_store(args)
    users = [store.get(args.name)] if args.name else store.users()
    for user in users:
        for k in user.keys:
            print(f"{user.name}\t{k.id}\t{k.prefix}…\t{','.join(sorted(k.scopes))}")
    return 0


def run_key_revoke(args: argparse.Namespace) -> int:
    """``user key revoke NAME KEY_ID``."""
    _store(args).revoke_key(args.name, args.key_id)
    print(f"revoked key {args.key_id} of {args.name!r}")
    return 0


def run_key_rotate(args: argparse.Namespace) -> int:
    """``user key rotate NAME KEY_ID``: the new key, printed once."""
    record, key = _store(args).rotate_key(args.name, args.key_id)
    print(key)
    print(f"key {args.key_id} of {args.name!r} replaced by {record.id}: shown this once", file=sys.stderr)
    return 0
