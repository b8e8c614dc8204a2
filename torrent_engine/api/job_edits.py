"""Our API's routes for renaming a job's files and folders, editing its trackers and web seeds,
reading its torrent's facts, .torrent and piece map, and banning peers (the same JSON and errors
as the rest of the API: see app.py and docs/api.md)."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..jobs import InvalidJobRequest, JobConflict, JobState
from ..jobs.trackers import check_tiers
from ..jobs.tuning.blocklist import check_addresses
from ..jobs.webseeds import check_web_seeds
from ..jsonvalue import JSON
from .features import JsonRoutes, torrent_file_response

RENAME_KINDS = {"file": False, "folder": True, "any": None}
MAX_BANNED_AT_ONCE = 1000  # peers in one ban request (a selection of a peer list, not a block list)


def bitfield_b64(states: Sequence[int], state: int) -> str:
    """The pieces in ``state`` as a BEP 3 bitfield (piece 0 the high bit of the first byte), in base64."""
    out = bytearray((len(states) + 7) // 8)
    for i, s in enumerate(states):
        if s == state:
            out[i >> 3] |= 0x80 >> (i & 7)
    return base64.b64encode(bytes(out)).decode()


def distributed_copies(availability: Sequence[int]) -> float | None:
    """How many whole copies of the torrent the connected peers hold (libtorrent's
    ``distributed_copies``: the rarest piece's count, plus the share of pieces above it), None
    when there is nothing to say (no metainfo, or every piece had: no picker counts them)."""
    if not availability:
        return None
    least = min(availability)
    return least + sum(1 for a in availability if a > least) / len(availability)


class JobEditApi(JsonRoutes):
    """Renaming a job's files and folders, editing its trackers and web seeds."""

    async def rename(self, request: Request) -> Response:
        """``POST /api/jobs/{id}/rename`` ``{"old_path", "new_path", "kind"?}``: give a file or a
        folder of the job a new path (``kind``: "file", "folder" or "any", the default)."""
        data = await self._body(request)
        kind = data.get("kind", "any")
        if not isinstance(kind, str) or kind not in RENAME_KINDS:
            raise InvalidJobRequest(f"must be one of {', '.join(RENAME_KINDS)}", "kind")
        unknown = sorted(set(data) - {"old_path", "new_path", "kind"})
        if unknown:
            raise InvalidJobRequest("unknown field (known: old_path, new_path, kind)", unknown[0])
        paths = []
        for name in ("old_path", "new_path"):
            value = data.get(name)
            if not isinstance(value, str):
                raise InvalidJobRequest("must be a string" if value is not None else "is required", name)
            paths.append(value)
        job = await self.service.rename_path(request.path_params["job_id"], *paths, folder=RENAME_KINDS[kind])
        return JSONResponse(job.to_json(detail=True))

    async def trackers(self, request: Request) -> Response:
        """``GET /api/jobs/{id}/trackers``: ``{"tiers": [[url, ...], ...]}`` (BEP 12 tiers)."""
        tiers = self.service.tracker_tiers(request.path_params["job_id"])
        return JSONResponse({"tiers": [list(tier) for tier in tiers]})

    async def set_trackers(self, request: Request) -> Response:
        """``PUT /api/jobs/{id}/trackers`` ``{"tiers": [[url, ...], ...]}``: the job's trackers
        from now on (every URL checked first: one bad URL and nothing changes)."""
        data = await self._body(request)
        unknown = sorted(set(data) - {"tiers"})
        if unknown:
            raise InvalidJobRequest("unknown field (known: tiers)", unknown[0])
        tiers = data.get("tiers")
        if not isinstance(tiers, list) or not all(isinstance(t, list) for t in tiers):
            raise InvalidJobRequest("must be a list of tiers, each a list of announce URLs", "tiers")
        checked = check_tiers([t for t in tiers if isinstance(t, list)], "tiers")
        job = await self.service.set_trackers(request.path_params["job_id"], checked, "tiers")
        return JSONResponse(job.to_json(detail=True))

    async def reannounce(self, request: Request) -> Response:
        """``POST /api/jobs/{id}/reannounce`` (body optional): announce the job to its trackers
        now, or ``{"trackers": [url, ...]}`` to these of them alone (each must be one of its
        trackers: ``400`` naming ``trackers[i]`` otherwise, nothing announced)."""
        job_id = request.path_params["job_id"]
        data = await self._body(request)
        unknown = sorted(set(data) - {"trackers"})
        if unknown:
            raise InvalidJobRequest("unknown field (known: trackers)", unknown[0])
        urls: list[str] | None = None
        if "trackers" in data:
            asked = data["trackers"]
            if not isinstance(asked, list) or not asked:
                raise InvalidJobRequest("must be a list of one or more of its announce URLs", "trackers")
            known = {url for tier in self.service.tracker_tiers(job_id) for url in tier}
            for i, url in enumerate(asked):
                if not isinstance(url, str) or url not in known:
                    raise InvalidJobRequest(f"{url!r} is not one of the job's trackers", f"trackers[{i}]")
            urls = [url for url in asked if isinstance(url, str)]
        await self.service.reannounce(job_id, urls)
        return JSONResponse(self.service.get(job_id).to_json(detail=True))

    async def web_seeds(self, request: Request) -> Response:
        """``GET /api/jobs/{id}/webseeds``: ``{"urls": [url, ...]}`` (BEP 19 web seeds)."""
        return JSONResponse({"urls": self.service.web_seeds(request.path_params["job_id"])})

    async def set_web_seeds(self, request: Request) -> Response:
        """``PUT /api/jobs/{id}/webseeds`` ``{"urls": [url, ...]}``: the job's web seeds from now
        on (every URL checked first: one that is not http(s) and nothing changes)."""
        data = await self._body(request)
        unknown = sorted(set(data) - {"urls"})
        if unknown:
            raise InvalidJobRequest("unknown field (known: urls)", unknown[0])
        urls = data.get("urls")
        if not isinstance(urls, list):
            raise InvalidJobRequest("must be a list of web seed URLs (http or https)", "urls")
        checked = check_web_seeds(urls, "urls")
        job = await self.service.set_web_seeds(request.path_params["job_id"], checked, "urls")
        return JSONResponse(job.to_json(detail=True))

    async def pieces(self, request: Request) -> Response:
        """``GET /api/jobs/{id}/pieces``: the piece map, ``{"num_pieces", "have", "downloading",
        "availability"}`` (``have``/``downloading``: base64 bitfields; ``num_pieces`` null and the
        bitfields empty before a magnet's metadata; ``availability``: distributed copies among the
        connected peers and us, null when not known)."""
        job_id = request.path_params["job_id"]
        states = self.service.piece_states(job_id)
        if states is None:
            return JSONResponse({"num_pieces": None, "have": "", "downloading": "", "availability": None})
        return JSONResponse({"num_pieces": len(states), "have": bitfield_b64(states, 2),
                             "downloading": bitfield_b64(states, 1),
                             "availability": distributed_copies(
                                 [a + (s == 2) for a, s in zip(  # (ours counted, as libtorrent's)
                                     self.service.piece_availability(job_id), states, strict=False)])})

    async def torrent(self, request: Request) -> Response:
        """``GET /api/jobs/{id}/torrent``: what the job's metainfo says (its v1 and v2 info-hashes,
        piece length and count, size, private flag, creator, creation date, comment); the fields
        null but the info-hash the job is known by before a magnet's metadata, or once it ended."""
        job = self.service.get(request.path_params["job_id"])
        torrent = self.service.metainfo(job.id)
        out: dict[str, JSON] = {"has_metadata": torrent is not None,
                                "info_hash_v1": job.info_hash if len(job.info_hash) == 40 else None,
                                "info_hash_v2": job.info_hash if len(job.info_hash) == 64 else None,
                                "piece_length": None, "num_pieces": None, "total_length": None,
                                "private": None, "created_by": None, "creation_date": None, "comment": None}
        if torrent is not None:
            v1, v2 = torrent.info_hash_v1, torrent.info_hash_v2
            out.update(info_hash_v1=None if v1 is None else v1.hex(),
                       info_hash_v2=None if v2 is None else v2.hex(),
                       piece_length=torrent.piece_length, num_pieces=torrent.num_pieces,
                       total_length=torrent.total_length, private=torrent.private,
                       created_by=torrent.created_by or None, creation_date=torrent.creation_date,
                       comment=torrent.comment or None)
        return JSONResponse(out)

    async def torrent_file(self, request: Request) -> Response:
        """``GET /api/jobs/{id}/torrent/file``: the job's .torrent, to save (qBittorrent's Export
        .torrent); ``409`` before a magnet's metadata, or once the job ended."""
        job = self.service.get(request.path_params["job_id"])
        torrent = self.service.metainfo(job.id)
        if torrent is None:
            ended = job.state in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)
            raise JobConflict(f"it is {job.state.value}: no metainfo is kept for it" if ended else
                              "its metadata is not known yet: a magnet's comes from its peers", "job_id")
        return torrent_file_response(torrent)

    async def ban_peers(self, request: Request) -> Response:
        """``POST /api/peers/ban`` ``{"peers": ["host:port" or "host", ...]}``: their addresses join
        the banned ones (the ``banned_ips`` setting; peers connected from them are dropped);
        answers ``{"banned_ips": [...]}``, every banned address."""
        data = await self._body(request)
        unknown = sorted(set(data) - {"peers"})
        if unknown:
            raise InvalidJobRequest("unknown field (known: peers)", unknown[0])
        peers = data.get("peers")
        if not isinstance(peers, list) or not peers:
            raise InvalidJobRequest("must be a non-empty list of peers (\"host:port\" or an IP address)",
                                    "peers")
        if len(peers) > MAX_BANNED_AT_ONCE:
            raise InvalidJobRequest(f"at most {MAX_BANNED_AT_ONCE} peers at once", "peers")
        hosts: list[object] = []
        for peer in peers:
            if not isinstance(peer, str):
                raise InvalidJobRequest(f"{peer!r} is not a peer (\"host:port\" or an IP address)", "peers")
            text = peer.strip()
            if text.startswith("["):  # [v6]:port
                text = text[1:].partition("]")[0]
            elif text.count(":") == 1:  # v4:port (a bare v6 address has several colons)
                text = text.partition(":")[0]
            hosts.append(text)
        added = check_addresses(hosts, "peers")
        banned = check_addresses([*self.service.get_settings().banned_ips, *added], "peers")
        settings = await self.service.update_settings(banned_ips=banned)
        return JSONResponse({"banned_ips": list(settings.banned_ips)})

    def routes(self) -> list[Route]:
        """The routes, to add to the API's."""
        return [
            Route("/api/jobs/{job_id}/rename", self.rename, methods=["POST"]),
            Route("/api/jobs/{job_id}/trackers", self.trackers, methods=["GET"]),
            Route("/api/jobs/{job_id}/trackers", self.set_trackers, methods=["PUT"]),
            Route("/api/jobs/{job_id}/reannounce", self.reannounce, methods=["POST"]),
            Route("/api/jobs/{job_id}/webseeds", self.web_seeds, methods=["GET"]),
            Route("/api/jobs/{job_id}/webseeds", self.set_web_seeds, methods=["PUT"]),
            Route("/api/jobs/{job_id}/pieces", self.pieces, methods=["GET"]),
            Route("/api/jobs/{job_id}/torrent", self.torrent, methods=["GET"]),
            Route("/api/jobs/{job_id}/torrent/file", self.torrent_file, methods=["GET"]),
            Route("/api/peers/ban", self.ban_peers, methods=["POST"]),
        ]
