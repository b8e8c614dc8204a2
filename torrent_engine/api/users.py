"""The daemon's users (``STATE_DIR/users.json``, mode 0600): a name, a role, an scrypt hash of
the password, quotas and API keys with scopes.

Nothing in the file opens the API by itself: a password is kept as ``hashlib.scrypt`` of it with a
random salt (the parameters beside it, so they can be raised later), a key as the SHA-256 of its
secret part (a key is 32 random bytes: a fast hash is enough, as for qBittorrent's key). A key is
shown once, when it is made; after that it is named by its id. The file is rewritten whole
(a temporary file, fsync, rename) and read again when it changed on disk, so ``torrent-engine
user ...`` edits a running daemon's users.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from ..errors import TorrentEngineError
from ..storage.resume import write_atomic

USERS_FILE = "users.json"
FILE_VERSION = 1
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # also a folder name: ROOT/users/NAME
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
# scrypt's cost (RFC 7914): N=2^15, r=8, p=1 takes 32 MiB and ~0.1 s; kept with each hash
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**15, 8, 1, 32
SALT_BYTES = 16
KEY_PREFIX = "te_"  # te_<id>_<secret>
KEY_ID_BYTES = 6
KEY_SECRET_BYTES = 32
_KEY = re.compile(r"te_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


class Role(enum.StrEnum):
    """What a user may do: everything, their own torrents, or read everything."""

    ADMIN = "admin"
    USER = "user"
    VIEWER = "viewer"


class Scope(enum.StrEnum):
    """What a request does: read, add a torrent, control one, or change the daemon."""

    READ = "read"
    ADD = "add"
    CONTROL = "control"
    ADMIN = "admin"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.ADMIN: frozenset(Scope),
    Role.USER: frozenset({Scope.READ, Scope.ADD, Scope.CONTROL}),
    Role.VIEWER: frozenset({Scope.READ}),
}


class UserError(TorrentEngineError):
    """A user, key or password the store refuses; ``field`` names what was wrong."""

    def __init__(self, message: str, field: str = "name") -> None:
        super().__init__(message)
        self.field = field


class UnknownUser(UserError):
    """No user of that name."""


class DuplicateUser(UserError):
    """A user of that name exists already."""


class WeakPassword(UserError):
    """A password too short, too long or empty."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "password")


class UnknownKey(UserError):
    """No key of that id (for that user)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "key")


def check_name(name: object) -> str:
    """``name`` if it is a user name (letters, digits, ``_ . -``, up to 64, not starting with
    a dot or dash: it names the user's folder too), else ``UserError``."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise UserError(f"a user name is 1-64 letters, digits, '_', '.' or '-', starting with a letter "
                        f"or digit, not {str(name)[:70]!r}")
    return name


def check_role(role: object) -> Role:
    """``role`` as a ``Role``, else ``UserError`` naming the roles."""
    try:
        return Role(str(role))
    except ValueError:
        raise UserError(f"unknown role {str(role)[:40]!r}: one of {', '.join(r.value for r in Role)}",
                        "role") from None


def check_scopes(scopes: Iterable[object]) -> frozenset[Scope]:
    """The scopes named (at least one), else ``UserError``."""
    out: set[Scope] = set()
    for s in scopes:
        try:
            out.add(Scope(str(s)))
        except ValueError:
            raise UserError(f"unknown scope {str(s)[:40]!r}: one or more of "
                            f"{', '.join(x.value for x in Scope)}", "scope") from None
    if not out:
        raise UserError("a key needs at least one scope", "scope")
    return frozenset(out)


def check_password(password: object) -> str:
    """``password`` if it is one (MIN_PASSWORD..MAX_PASSWORD characters), else ``WeakPassword``
    (which never repeats the password)."""
    if not isinstance(password, str) or not password:
        raise WeakPassword("the password is empty")
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"the password is shorter than {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise WeakPassword(f"the password is longer than {MAX_PASSWORD} characters")
    return password


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) of ``password`` with a new random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, n, r, p, SCRYPT_LEN)
    return "$".join(("scrypt", str(n), str(r), str(p), _b64(salt), _b64(digest)))


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` (``hash_password``'s) was made from (the
    hashes compared in constant time; a malformed ``stored`` matches nothing)."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return False
    if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16 and 16 <= len(digest) <= 64):
        return False
    try:
        given = _scrypt(password[:MAX_PASSWORD], salt, n, r, p, len(digest))
    except ValueError:
        return False
    return hmac.compare_digest(given, digest)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p,
                          dklen=dklen, maxmem=256 * n * r + 2**20)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64") from exc


def _key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One API key as kept: its id (shown), its scopes, and the SHA-256 of its secret."""

    id: str
    scopes: frozenset[Scope]
    digest: str
    created_at: float

    @property
    def prefix(self) -> str:
        """What names the key in a list (its first part; the secret is never shown again)."""
        return f"{KEY_PREFIX}{self.id}_"

    def to_json(self, *, secret: bool = False) -> dict[str, object]:
        """The key as listed (``secret``: with the digest, as the file keeps it)."""
        out: dict[str, object] = {"id": self.id, "prefix": self.prefix,
                                  "scopes": sorted(s.value for s in self.scopes),
                                  "created_at": self.created_at}
        if secret:
            out["sha256"] = self.digest
        return out


@dataclass(frozen=True, slots=True)
class User:
    """One user as kept (``password``: the scrypt hash)."""

    name: str
    role: Role
    password: str
    max_torrents: int = 0  # 0: no quota
    max_bytes: int = 0  # 0: no quota (the sum of their torrents' sizes)
    keys: tuple[KeyRecord, ...] = ()
    categories: tuple[str, ...] = ()  # the categories and tags the user made (theirs alone)
    tags: tuple[str, ...] = ()
    created_at: float = field(default_factory=time.time)

    def to_json(self, *, secret: bool = False) -> dict[str, object]:
        """The user as listed (``secret``: with the password hash and key digests, as kept)."""
        out: dict[str, object] = {
            "name": self.name, "role": self.role.value, "max_torrents": self.max_torrents,
            "max_bytes": self.max_bytes, "keys": [k.to_json(secret=secret) for k in self.keys],
            "categories": list(self.categories), "tags": list(self.tags), "created_at": self.created_at}
        if secret:
            out["password"] = self.password
        return out

    @classmethod
    def from_json(cls, d: object) -> User:
        """A user of the file (``ValueError`` naming what was wrong)."""
        if not isinstance(d, dict):
            raise ValueError("a user is not a JSON object")
        try:
            keys = tuple(KeyRecord(id=str(k["id"]), scopes=check_scopes(k["scopes"]), digest=str(k["sha256"]),
                                   created_at=float(k.get("created_at", 0)))
                         for k in d.get("keys", []))
            return cls(name=check_name(d["name"]), role=check_role(d["role"]), password=str(d["password"]),
                       max_torrents=int(d.get("max_torrents", 0)), max_bytes=int(d.get("max_bytes", 0)),
                       keys=keys, categories=tuple(str(c) for c in d.get("categories", [])),
                       tags=tuple(str(t) for t in d.get("tags", [])),
                       created_at=float(d.get("created_at", 0)))
        except (KeyError, TypeError, ValueError, UserError) as exc:
            raise ValueError(f"user {str(d.get('name'))[:64]!r}: {exc}") from exc


class UserStore:
    """The users of one state folder (none: a daemon without users, whose token is the admin).
    Thread-safe: the API checks passwords in worker threads."""

    def __init__(self, state_dir: Path | None) -> None:
        self.path = state_dir / USERS_FILE if state_dir is not None else None
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        # (inode, mtime_ns, size) of the file last read: each write is a new file renamed over
        # the old, so a new inode says it changed even within the clock's granularity
        self._seen: tuple[int, int, int] | None = None
        self._verified: dict[bytes, str] = {}  # HMAC of (name, password) -> the hash it matched
        self._pepper = secrets.token_bytes(32)  # (for that cache alone: never written)

    # -- reading -------------------------------------------------------------------------------
    def _refresh(self) -> None:
        if self.path is None:
            return
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._users, self._seen = {}, None
            return
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if seen == self._seen:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.path} cannot be read: {exc}", "users") from exc
        if not isinstance(data, dict) or data.get("version") != FILE_VERSION or \
                not isinstance(data.get("users"), list):
            raise UserError(f"{self.path} is not a users file of version {FILE_VERSION}", "users")
        try:
            users = [User.from_json(u) for u in data["users"]]
        except ValueError as exc:
            raise UserError(f"{self.path}: {exc}", "users") from exc
        self._users = {u.name: u for u in users}
        self._seen = seen

    @property
    def any(self) -> bool:
        """Whether there is at least one user (else the daemon works by its token alone)."""
        with self._lock:
            self._refresh()
            return bool(self._users)

    def users(self) -> list[User]:
        """Every user, by name."""
        with self._lock:
            self._refresh()
            return sorted(self._users.values(), key=lambda u: u.name)

    def get(self, name: str) -> User:
        """The user ``name``; ``UnknownUser`` if there is none."""
        with self._lock:
            self._refresh()
            user = self._users.get(name)
        if user is None:
            raise UnknownUser(f"no user named {name[:64]!r}")
        return user

    def find(self, name: str) -> User | None:
        """The user ``name``, or None."""
        with self._lock:
            self._refresh()
            return self._users.get(name)

    # -- checking ------------------------------------------------------------------------------
    def check_password(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None (an unknown name costs a hash too, so
        a wrong name and a wrong password take as long). A match is remembered (an HMAC of the
        pair under a key of this process) so that HTTP Basic, sent with every request, costs one
        scrypt per user and password rather than one per request."""
        user = self.find(name)
        mark = hmac.new(self._pepper, f"{name}\0{password}".encode("utf-8", "surrogatepass"),
                        hashlib.sha256).digest()
        if user is not None and self._verified.get(mark) == user.password:
            return user
        stored = user.password if user is not None else _dummy_hash()
        good = verify_password(password, stored)
        if user is None or not good:
            return None
        with self._lock:
            if len(self._verified) >= 4096:
                self._verified.clear()
            self._verified[mark] = user.password
        return user

    def check_key(self, key: str) -> tuple[User, KeyRecord] | None:
        """The user and key record ``key`` is (compared in constant time), or None."""
        match = _KEY.fullmatch(key.strip())
        if match is None:
            return None
        key_id, secret = match.group(1), match.group(2)
        digest = _key_digest(secret)
        for user in self.users():
            for record in user.keys:
                if record.id == key_id and hmac.compare_digest(record.digest, digest):
                    return user, record
        return None

    # -- changing ------------------------------------------------------------------------------
    def add(self, name: str, role: str, password: str, *, max_torrents: object = 0,
            max_bytes: object = 0) -> User:
        """A new user (``DuplicateUser``, ``UserError``, ``WeakPassword``)."""
        name, checked_role = check_name(name), check_role(role)
        check_password(password)
        quotas = _quotas(max_torrents, max_bytes)
        user = User(name=name, role=checked_role, password=hash_password(password),
                    max_torrents=quotas[0], max_bytes=quotas[1])

        def change(users: dict[str, User]) -> None:
            if name in users:
                raise DuplicateUser(f"a user named {name!r} exists already")
            users[name] = user
        self._change(change)
        return user

    def remove(self, name: str) -> None:
        """Remove the user ``name`` and their keys (``UnknownUser``); their torrents stay (the
        admin's from then on)."""
        def change(users: dict[str, User]) -> None:
            if users.pop(name, None) is None:
                raise UnknownUser(f"no user named {name[:64]!r}")
        self._change(change)

    def set_password(self, name: str, password: str) -> None:
        """A new password for ``name`` (the old one no longer works)."""
        check_password(password)
        hashed = hash_password(password)
        self._update(name, lambda u: replace(u, password=hashed))

    def set_role(self, name: str, role: str) -> User:
        """A new role for ``name``."""
        checked = check_role(role)
        return self._update(name, lambda u: replace(u, role=checked))

    def set_quota(self, name: str, *, max_torrents: object = None, max_bytes: object = None) -> User:
        """New quotas for ``name`` (None: unchanged; 0: none)."""
        def edit(u: User) -> User:
            t, b = _quotas(u.max_torrents if max_torrents is None else max_torrents,
                           u.max_bytes if max_bytes is None else max_bytes)
            return replace(u, max_torrents=t, max_bytes=b)
        return self._update(name, edit)

    @staticmethod
    def check_quotas(max_torrents: object, max_bytes: object) -> None:
        """``UserError`` naming the quota that is no whole number of at least 0."""
        _quotas(max_torrents, max_bytes)

    def add_key(self, name: str, scopes: Iterable[object]) -> tuple[KeyRecord, str]:
        """A new key for ``name`` with ``scopes`` (within the user's role): its record and the
        key itself, which is never shown again."""
        wanted = check_scopes(scopes)
        user = self.get(name)
        beyond = wanted - ROLE_SCOPES[user.role]
        if beyond:
            raise UserError(f"a {user.role.value} cannot hold a key with scope "
                            f"{', '.join(sorted(s.value for s in beyond))}", "scope")
        key_id = secrets.token_hex(KEY_ID_BYTES)
        secret = secrets.token_urlsafe(KEY_SECRET_BYTES)
        record = KeyRecord(id=key_id, scopes=wanted, digest=_key_digest(secret), created_at=time.time())
        self._update(name, lambda u: replace(u, keys=(*u.keys, record)))
        return record, f"{KEY_PREFIX}{key_id}_{secret}"

    def revoke_key(self, name: str, key_id: str) -> None:
        """The key ``key_id`` of ``name`` no longer works (``UnknownKey``)."""
        key_id = key_id.removeprefix(KEY_PREFIX).rstrip("_")

        def edit(u: User) -> User:
            kept = tuple(k for k in u.keys if k.id != key_id)
            if len(kept) == len(u.keys):
                raise UnknownKey(f"user {name!r} has no key {key_id[:20]!r}")
            return replace(u, keys=kept)
        self._update(name, edit)

    def rotate_key(self, name: str, key_id: str) -> tuple[KeyRecord, str]:
        """A new key with the scopes of ``key_id``, which no longer works."""
        old = next((k for k in self.get(name).keys if k.id == key_id.removeprefix(KEY_PREFIX).rstrip("_")),
                   None)
        if old is None:
            raise UnknownKey(f"user {name!r} has no key {key_id[:20]!r}")
        made = self.add_key(name, old.scopes)
        self.revoke_key(name, old.id)
        return made

    def own_label(self, name: str, *, category: str | None = None, tag: str | None = None) -> None:
        """Note that ``name`` made ``category`` or ``tag`` (listed to them)."""
        def edit(u: User) -> User:
            cats = u.categories if category is None or category in u.categories else (*u.categories, category)
            tags = u.tags if tag is None or tag in u.tags else (*u.tags, tag)
            return replace(u, categories=cats, tags=tags)
        user = self.get(name)
        if (category is None or category in user.categories) and (tag is None or tag in user.tags):
            return
        self._update(name, edit)

    def _update(self, name: str, edit: _Edit) -> User:
        done: list[User] = []

        def change(users: dict[str, User]) -> None:
            user = users.get(name)
            if user is None:
                raise UnknownUser(f"no user named {name[:64]!r}")
            users[name] = edit(user)
            done.append(users[name])
        self._change(change)
        return done[0]

    def _change(self, change: _Change) -> None:
        if self.path is None:
            raise UserError("users need a state folder", "state_dir")
        with self._lock:
            self._seen = None
            self._refresh()
            users = dict(self._users)
            change(users)
            self._write(users)
            self._users = users

    def _write(self, users: dict[str, User]) -> None:
        assert self.path is not None
        listed = [u.to_json(secret=True) for u in sorted(users.values(), key=lambda u: u.name)]
        data = json.dumps({"version": FILE_VERSION, "users": listed}, indent=1).encode()
        write_atomic(self.path, data)  # (mkstemp's file: mode 0600 from its first byte)
        st = self.path.stat()
        self._seen = (st.st_ino, st.st_mtime_ns, st.st_size)


def _quotas(max_torrents: object, max_bytes: object) -> tuple[int, int]:
    out = []
    for value, name in ((max_torrents, "max_torrents"), (max_bytes, "max_bytes")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UserError(f"{name} must be a whole number from 0 (0: no quota), got {value!r}", name)
        out.append(value)
    return out[0], out[1]


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))

_Edit = Callable[[User], User]
_Change = Callable[[dict[str, User]], None]
