"""Our API's routes for the daemon's users, an admin's alone (``/api/users``): what
``torrent-engine user`` does, for an admin in the web or a script. A key is answered once, when
it is made; a password is never answered. The store's work (an scrypt hash, a write of the
file) runs in a worker thread, off the event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..jsonvalue import JSONObject
from .users import (
    DuplicateUser,
    UnknownKey,
    UnknownUser,
    User,
    UserError,
    UserStore,
    check_password,
    check_role,
)

ReadJson = Callable[[Request, int], Awaitable[JSONObject]]
MAX_BODY = 16 * 1024


def user_json(user: User) -> dict[str, object]:
    """A user as listed: name, role, quotas, keys by id and scopes (never a secret)."""
    return {"name": user.name, "role": user.role.value, "max_torrents": user.max_torrents,
            "max_bytes": user.max_bytes, "keys": [k.to_json() for k in user.keys],
            "categories": list(user.categories), "tags": list(user.tags), "created_at": user.created_at}


class UserApi:
    """``/api/users``: list, add, change (password, role, quotas), remove; keys made and revoked."""

    def __init__(self, store: UserStore, read_json: ReadJson) -> None:
        self.store = store
        self._read_json = read_json

    def routes(self) -> list[Route]:
        """The routes (the guard lets an admin alone through: ``security.route_scope``)."""
        return [
            Route("/api/users", self.list_users, methods=["GET"]),
            Route("/api/users", self.add_user, methods=["POST"]),
            Route("/api/users/{name}", self.get_user, methods=["GET"]),
            Route("/api/users/{name}", self.change_user, methods=["PATCH"]),
            Route("/api/users/{name}", self.remove_user, methods=["DELETE"]),
            Route("/api/users/{name}/keys", self.add_key, methods=["POST"]),
            Route("/api/users/{name}/keys/{key_id}", self.revoke_key, methods=["DELETE"]),
        ]

    async def list_users(self, request: Request) -> Response:
        """``GET /api/users``: ``{"users": [...]}``."""
        return JSONResponse({"users": [user_json(u) for u in self.store.users()]})

    async def get_user(self, request: Request) -> Response:
        """``GET /api/users/{name}``."""
        return JSONResponse(user_json(self.store.get(request.path_params["name"])))

    async def add_user(self, request: Request) -> Response:
        """``POST /api/users`` ``{"name", "role", "password", "max_torrents"?, "max_bytes"?}``."""
        data = await self._read_json(request, MAX_BODY)
        name, role, password = _text(data, "name"), _text(data, "role"), _text(data, "password")
        quotas = {k: data.get(k, 0) for k in ("max_torrents", "max_bytes")}
        user = await anyio.to_thread.run_sync(lambda: self.store.add(
            name, role, password, max_torrents=quotas["max_torrents"], max_bytes=quotas["max_bytes"]))
        return JSONResponse(user_json(user), status_code=201)

    async def change_user(self, request: Request) -> Response:
        """``PATCH /api/users/{name}`` ``{"password"?, "role"?, "max_torrents"?, "max_bytes"?}``."""
        name = request.path_params["name"]
        data = await self._read_json(request, MAX_BODY)
        unknown = sorted(set(data) - {"password", "role", "max_torrents", "max_bytes"})
        if unknown:
            raise UserError("is not a field of a user's change", unknown[0])
        user = self.store.get(name)
        # (every value checked before any is made: a change is all of it or none)
        password = check_password(_text(data, "password")) if "password" in data else None
        role = check_role(_text(data, "role")) if "role" in data else None
        quotas = (data.get("max_torrents", user.max_torrents), data.get("max_bytes", user.max_bytes))
        self.store.check_quotas(*quotas)

        def change() -> User:
            if password is not None:
                self.store.set_password(name, password)
            if role is not None:
                self.store.set_role(name, role)
            if "max_torrents" in data or "max_bytes" in data:
                self.store.set_quota(name, max_torrents=quotas[0], max_bytes=quotas[1])
            return self.store.get(name)
        return JSONResponse(user_json(await anyio.to_thread.run_sync(change)))

    async def remove_user(self, request: Request) -> Response:
        """``DELETE /api/users/{name}`` (their torrents stay, the admin's)."""
        name = request.path_params["name"]
        await anyio.to_thread.run_sync(self.store.remove, name)
        return JSONResponse({"removed": name})

    async def add_key(self, request: Request) -> Response:
        """``POST /api/users/{name}/keys`` ``{"scopes": [...]}``: the key, shown this once."""
        data = await self._read_json(request, MAX_BODY)
        scopes = data.get("scopes")
        if not isinstance(scopes, list):
            raise UserError("must be a list of scopes", "scopes")
        record, key = await anyio.to_thread.run_sync(self.store.add_key, request.path_params["name"], scopes)
        return JSONResponse({**record.to_json(), "key": key}, status_code=201,
                            headers={"cache-control": "no-store"})

    async def revoke_key(self, request: Request) -> Response:
        """``DELETE /api/users/{name}/keys/{key_id}``."""
        await anyio.to_thread.run_sync(self.store.revoke_key, request.path_params["name"],
                                       request.path_params["key_id"])
        return JSONResponse({"revoked": request.path_params["key_id"]})


def _text(data: JSONObject, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise UserError("must be a string" if value is not None else "is required", name)
    return value


def user_error_status(exc: UserError) -> int:
    """The HTTP status of a refused user change: 404 for no such user or key, 409 for a
    duplicate, else 400."""
    if isinstance(exc, UnknownUser | UnknownKey):
        return 404
    if isinstance(exc, DuplicateUser):
        return 409
    return 400
