"""``torrent-engine remote COMMAND``: drive a running daemon through its HTTP API (stdlib only)."""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import ssl
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from ..api.locate import API_FILE, DEFAULT_API_HOST, DEFAULT_API_PORT, TOKEN_ENV, read_token
from ..config import default_state_dir
from ..engine.addtorrent import MagnetLink, TorrentUrl, from_text
from ..errors import TorrentEngineError
from ..jsonvalue import JSON, JSONObject, JSONValue
from ..units import human_bytes
from . import COMMANDS
from .units import human_eta

URL_ENV = "TORRENT_ENGINE_API_URL"
FINISHED = ("completed", "failed", "cancelled")


class RemoteError(TorrentEngineError):
    """The daemon answered with an error, or could not be reached."""


def refusal(status: int, raw: bytes) -> RemoteError:
    """The daemon's refusal of a request (or of an event stream) as one line: its status, the
    error it says and the field it names (its JSON ``{"error", "field"}``), else its text."""
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        answer = None
    if isinstance(answer, dict) and "error" in answer:
        field = answer.get("field")
        return RemoteError(f"{status}: {answer['error']}" + (f" (field {field})" if field else ""))
    return RemoteError(f"{status}: {raw[:200].decode('utf-8', 'replace')}")


def source_of(text: str) -> str:
    """What ``add`` and ``held`` send as ``source``: a magnet link or an http(s) URL as given (the
    daemon fetches the URL), else the .torrent file's bytes in base64 (``RemoteError`` naming
    the file when it cannot be read; a URL was read as a file's name)."""
    if not text.strip():
        raise RemoteError("the source is empty: give a magnet link, an http(s) URL or a .torrent file")
    request = from_text(text)
    if isinstance(request, MagnetLink):
        return request.uri
    if isinstance(request, TorrentUrl):
        return request.url
    try:
        return base64.b64encode(Path(text).read_bytes()).decode("ascii")
    except OSError as exc:
        raise RemoteError(f"cannot read {text!r}: {exc.strerror or exc}") from None


LOG_POLL = 2.0  # seconds between two asks of ``remote log --follow``


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``remote`` subcommand and its actions to ``subparsers``."""
    p = subparsers.add_parser("remote", help=COMMANDS["remote"],
                              description="Talk to a `torrent-engine daemon` over its HTTP API.")
    p.add_argument("--url", default=None,
                   help=f"the daemon's address (default: ${URL_ENV}, else what the daemon wrote in "
                        f"its state dir, else http://{DEFAULT_API_HOST}:{DEFAULT_API_PORT})")
    p.add_argument("--token", default=None,
                   help=f"the API token (default: ${TOKEN_ENV}, else the state dir's api_token)")
    p.add_argument("--state-dir", type=Path, default=None,
                   help=f"the daemon's state directory (default: {default_state_dir()})")
    p.add_argument("--json", action="store_true", help="print the API's JSON answers")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="add a magnet link, a .torrent's http(s) URL or a .torrent file")
    add.add_argument("source", metavar="MAGNET|URL|FILE.torrent")
    add.add_argument("--save-path", default=None, help="inside the daemon's download directory")
    add.add_argument("--file", dest="files", type=int, action="append", default=None, metavar="INDEX",
                     help="download only these files (repeatable)")
    add.add_argument("--peer", dest="peers", action="append", default=[], metavar="HOST:PORT",
                     help="connect to this peer too (repeatable)")
    add.add_argument("--paused", action="store_true", help="add it paused")
    add.add_argument("--sequential", action="store_true", help="download pieces in order")
    lst = sub.add_parser("list", help="list the jobs")
    lst.add_argument("--state", default=None, help="only jobs in this state")
    show = sub.add_parser("show", help="one job in detail")
    show.add_argument("job_id")
    for name, text in (("pause", "pause a job"), ("resume", "resume a job")):
        sub.add_parser(name, help=text).add_argument("job_id")
    again = sub.add_parser("reannounce", help="announce a job to its trackers now (or to some)")
    again.add_argument("job_id")
    again.add_argument("--tracker", dest="trackers", action="append", default=None, metavar="URL",
                       help="to this tracker of the job alone (repeatable)")
    log = sub.add_parser("log", help="the daemon's log (an admin's)")
    log.add_argument("--level", default=None, metavar="LEVELS",
                     help="levels, separated by commas: normal, info, warning, critical (default: all)")
    log.add_argument("--peers", action="store_true", help="the peers refused or banned instead")
    log.add_argument("--follow", "-f", action="store_true",
                     help=f"then print the lines that come, every {LOG_POLL:g} s, until interrupted")
    cancel = sub.add_parser("cancel", help="cancel a job (it stays in the history)")
    cancel.add_argument("job_id")
    cancel.add_argument("--delete-files", action="store_true", help="remove what it downloaded")
    watch = sub.add_parser("watch", help="follow the live events (of one job: until it finishes)")
    watch.add_argument("job_id", nargs="?")
    sub.add_parser("shutdown", help="stop the daemon as SIGTERM does, every job saved (an admin's)")
    held = sub.add_parser("held", help="which of a .torrent's files the daemon holds whole already, as an "
                                       "add would take them; nothing added (an admin's)")
    held.add_argument("source", metavar="FILE.torrent")
    sub.add_parser("dedup", help="what the deduplication holds: its mode, the complete jobs and indexed "
                                 "folders' files it knows, how the folders' last walk went")
    p.set_defaults(run=run)


class Client:
    """A tiny HTTP client of the API, on ``http.client``; over HTTPS the certificate is verified
    against the system's authorities, or ``cafile`` (the daemon's self-signed one) alone."""

    def __init__(self, url: str, token: str, timeout: float = 30.0, *, cafile: str | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(f"the daemon's URL must be http://HOST:PORT or https://HOST:PORT, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = ssl.create_default_context(cafile=cafile) if parts.scheme == "https" else None
        self.token = token
        self.timeout = timeout
        self.last_status = 0  # the HTTP status of the last answer (e.g. 200, not 201: already there)

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self.tls is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def request(self, method: str, path: str, body: JSON = None) -> JSONValue:
        """Send one API request (``body`` as JSON) and return the decoded JSON answer; ``RemoteError`` when
        the daemon refuses it or cannot be reached."""
        conn = self._connection(self.timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = self._headers({"Content-Type": "application/json"} if data is not None else None)
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                raw = response.read()
            except OSError as exc:
                where = f"http://{self.host}:{self.port}"
                raise RemoteError(f"cannot reach the daemon at {where}: {exc}") from exc
        finally:
            conn.close()
        self.last_status = response.status
        answer: JSONValue
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        if response.status >= 400:
            raise refusal(response.status, raw)
        return answer

    def events(self, path: str) -> Iterator[tuple[str, JSONObject]]:
        """(event name, data) of an SSE stream, reconnecting with Last-Event-ID when it drops."""
        last_id: str | None = None
        while True:
            conn = self._connection(None)
            try:
                headers = self._headers({"Accept": "text/event-stream"})
                if last_id:
                    headers["Last-Event-ID"] = last_id
                try:
                    conn.request("GET", path, headers=headers)
                    response = conn.getresponse()
                except OSError as exc:
                    raise RemoteError(f"cannot reach the daemon: {exc}") from exc
                if response.status != 200:
                    raise refusal(response.status, response.read())
                name, data = "message", list[str]()
                for raw in response:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if not line:
                        if data:
                            yield name, _obj(json.loads("\n".join(data)), f"the {name} event")
                        name, data = "message", []
                    elif line.startswith(":"):
                        continue
                    else:
                        key, _, value = line.partition(":")
                        value = value.removeprefix(" ")
                        if key == "event":
                            name = value
                        elif key == "data":
                            data.append(value)
                        elif key == "id":
                            last_id = value
            except (http.client.HTTPException, OSError):
                pass  # dropped: reconnect with Last-Event-ID
            finally:
                conn.close()


def resolve(args: argparse.Namespace) -> Client:
    """The client for the daemon named by ``--url``, ``$TORRENT_ENGINE_API_URL`` or the daemon's state
    folder."""
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    url = args.url or os.environ.get(URL_ENV)
    cafile = None
    if not url:
        try:
            written = json.loads((state_dir / API_FILE).read_text(encoding="utf-8"))
            url = written["url"]
            cafile = written.get("cafile")  # (the daemon's self-signed certificate, --https)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            url = f"http://{DEFAULT_API_HOST}:{DEFAULT_API_PORT}"
    token = args.token or os.environ.get(TOKEN_ENV) or read_token(state_dir)
    if not token:
        raise RemoteError(f"no API token: pass --token, set ${TOKEN_ENV}, or point --state-dir at the "
                          "daemon's state directory")
    return Client(str(url), token, cafile=str(cafile) if isinstance(cafile, str) else None)


def _obj(value: JSONValue, what: str) -> JSONObject:
    """The daemon's JSON object, else a ``RemoteError`` saying which answer was not one."""
    if not isinstance(value, dict):
        raise RemoteError(f"the daemon's answer: {what} is not a JSON object")
    return value


def _objects(value: JSONValue) -> list[JSONObject]:
    """The objects of a list in an answer (none when it is absent or not a list)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _number(value: JSONValue) -> float:
    """A number of an answer (0 when it is absent or not a number)."""
    return float(value) if isinstance(value, (int, float)) else 0.0


def job_line(job: JSONObject) -> str:
    """One job as a line: name, progress, size, rates and state."""
    pct = f"{_number(job.get('progress')) * 100:5.1f}%"
    size = human_bytes(_number(job.get("total_size"))) if job.get("total_size") else "?"
    rates = ""
    if job.get("state") in ("downloading", "seeding"):
        rates = (f"  down {human_bytes(_number(job.get('download_rate')))}/s  up "
                 f"{human_bytes(_number(job.get('upload_rate')))}/s  peers {job.get('peers', 0)}")
        if job.get("state") == "downloading":
            eta = job.get("eta")
            rates += f"  eta {human_eta(eta if isinstance(eta, (int, float)) else None)}"
    stall = job.get("stall")
    why = f"  {_stuck(stall)}: {stall['message']}" if isinstance(stall, dict) and stall.get("message") else ""
    result = job.get("result")
    error = job.get("error") or (result.get("error") if isinstance(result, dict) else None)
    if error:
        why += f"  error: {error}"
    name = job.get("name") or job["info_hash"]
    return f"{job['id']}  {job['state']!s:<17} {pct}  {size:>10}  {name}{rates}{why}"


def _stuck(stall: JSONObject) -> str:
    """What a job's stall is: a download that does not move, or complete data that could not
    move to its save path (reason ``not_moved``)."""
    return "not moved" if stall.get("reason") == "not_moved" else "stalled"


def _stalled_since(stall: JSONObject) -> str:
    """When a stall began, as local time and age."""
    since = _number(stall.get("since"))
    age = max(0.0, time.time() - since)
    when = time.strftime("%H:%M:%S", time.localtime(since))
    return f"since {when} ({human_eta(age)} ago)"


def show_job(job: JSONObject) -> str:
    """One job in detail: its line, info-hash, error and files."""
    lines = [job_line(job), f"  info-hash {job['info_hash']}"]  # (the line has the error)
    stall = job.get("stall")
    if isinstance(stall, dict):
        lines.append(f"  {_stuck(stall)} {_stalled_since(stall)}: {stall.get('message')} "
                     f"({stall.get('reason')})")
    for f in _objects(job.get("files")):
        mark = "x" if f.get("selected") else " "
        lines.append(f"  [{mark}] {f['index']!s:>3} {_number(f.get('progress')) * 100:5.1f}%  "
                     f"{human_bytes(_number(f.get('size'))):>10}  {f['path']}")
    for t in _objects(job.get("trackers")):
        lines.append(f"  tracker {t['url']}: {t.get('status')} {t.get('message') or ''}".rstrip())
    for peer in _objects(job.get("peer_list")):
        via = peer.get("transport") or ""
        sources = peer.get("sources")
        found = ",".join(str(x) for x in sources) if isinstance(sources, list) else ""
        lines.append(f"  peer {peer['address']} {via} {found} {peer.get('client') or ''}".rstrip())
    return "\n".join(lines)


def log_line(entry: JSONObject, peers: bool) -> str:
    """A line of the daemon's log (or a peer event) as ``remote log`` prints it: local time,
    level, message."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(_number(entry.get("time"))))
    if peers:
        what = "blocked" if entry.get("blocked") else "banned"
        return f"{when}  {what:<8}  {entry.get('ip')}  ({entry.get('reason')})"
    return f"{when}  {entry.get('level')!s:<8}  {entry.get('message')}"


def dedup_lines(answer: JSONObject) -> list[str]:
    """``GET /api/dedup``'s answer as ``remote dedup`` prints it: the mode and the jobs known,
    a line an indexed folder (why it could not be read), the folders' files and their walk."""
    lines = [f"dedup {answer.get('mode')}: the files of {answer.get('jobs')} complete jobs known"]
    folders = _objects(answer.get("folders"))
    for f in folders:
        lines.append(f"  folder {f.get('folder')}" + (f"  (cannot be read: {f.get('error')})"
                                                      if f.get("error") else ""))
    if folders:
        walked = answer.get("walked_at")
        walk = "walking now" if answer.get("walking") else "not walked yet" if walked is None else (
            "last walked " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(_number(walked))))
        hashing = answer.get("hashing")
        if isinstance(hashing, dict):
            walk += f", hashing {hashing.get('done')} of {hashing.get('total')} new or changed files"
        lines.append(f"  {answer.get('files')} files in them, {answer.get('hashed')} hashed; {walk}"
                     + ("; stopped at 100 000 files" if answer.get("truncated") else ""))
    else:
        lines.append("  no indexed folder")
    return lines


def held_lines(answer: JSONObject) -> list[str]:
    """``POST /api/dedup/match``'s answer as ``remote held`` prints it: a line a file (where it
    is held and how it was found, or why not), then the bytes held of the torrent's."""
    lines = []
    for f in _objects(answer.get("files")):
        held = f.get("held")
        size = human_bytes(_number(f.get("length")))
        if isinstance(held, dict):
            whose = f"job {held.get('job_id')}" if held.get("job_id") else "an indexed folder"
            lines.append(f"  held {size:>10}  {f.get('path')}  <- {held.get('path')} "
                         f"({whose}; by {held.get('by')})")
        else:
            lines.append(f"  not  {size:>10}  {f.get('path')}  ({f.get('why')})")
    total = _number(answer.get("total_bytes"))
    got = _number(answer.get("held_bytes"))
    share = f" ({100 * got / total:.1f} %)" if total else ""
    lines.append(f"{human_bytes(got)} of {human_bytes(total)} held{share}; dedup {answer.get('mode')}")
    return lines


def _log(client: Client, args: argparse.Namespace) -> int:
    path = "/api/log/peers" if args.peers else "/api/log"
    level = "" if args.peers or not args.level else f"&level={urllib.parse.quote(args.level)}"
    after = -1
    while True:
        answer = _obj(client.request("GET", f"{path}?after={after}{level}"), "the log")
        for entry in _objects(answer.get("peers" if args.peers else "lines")):
            print(json.dumps(entry) if args.json else log_line(entry, args.peers), flush=True)
            after = int(_number(entry.get("id")))
        if not args.follow:
            return 0
        time.sleep(LOG_POLL)


def _watch(client: Client, job_id: str | None, as_json: bool) -> int:
    path = f"/api/jobs/{urllib.parse.quote(job_id)}/events" if job_id else "/api/events"
    for name, data in client.events(path):
        if as_json:
            print(json.dumps({"event": name, **data}), flush=True)
        elif name == "snapshot":
            for job in _objects(data.get("jobs")):
                print(job_line(job), flush=True)
        elif name == "service.stats":
            continue
        elif name == "job.removed":
            print(f"{data['job_id']}  removed", flush=True)
        elif name == "job.state":
            print(f"{job_line(_obj(data.get('job'), name))}  ({data['old']} -> {data['new']})", flush=True)
        else:
            print(job_line(_obj(data.get("job"), name)), flush=True)
        if job_id:
            jobs = _objects(data.get("jobs")) or ([_obj(data["job"], name)] if "job" in data else [])
            for job in jobs:
                if job["state"] in FINISHED or job["state"] == "seeding":
                    return 0 if job["state"] in ("completed", "seeding") else 1
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one ``remote`` action against the daemon; return the exit code."""
    client = resolve(args)
    answer: JSONValue
    if args.action == "add":
        body: dict[str, JSON] = {}
        body["source"] = source_of(args.source)
        if args.save_path:
            body["save_path"] = args.save_path
        if args.files is not None:
            body["files"] = args.files
        if args.peers:
            body["peers"] = args.peers
        if args.paused:
            body["paused"] = True
        if args.sequential:
            body["sequential"] = True
        answer = client.request("POST", "/api/jobs", body)
        if client.last_status == 200 and isinstance(answer, dict):  # (201: added)
            print(f"torrent-engine remote: a job of this torrent exists already ({answer.get('id')}); "
                  "nothing was added", file=sys.stderr)
    elif args.action == "list":
        query = f"?state={urllib.parse.quote(args.state)}" if args.state else ""
        answer = client.request("GET", f"/api/jobs{query}")
        if not args.json:
            for job in _objects(_obj(answer, "the list of jobs").get("jobs")):
                print(job_line(job))
            return 0
    elif args.action == "watch":
        try:
            return _watch(client, args.job_id, args.json)
        except KeyboardInterrupt:
            return 0
    elif args.action == "log":
        try:
            return _log(client, args)
        except KeyboardInterrupt:
            return 0
    elif args.action == "held":
        answer = _obj(client.request("POST", "/api/dedup/match", {"source": source_of(args.source)}),
                      "the files held")
        if not args.json:
            print("\n".join(held_lines(answer)))
            return 0
    elif args.action == "dedup":
        answer = _obj(client.request("GET", "/api/dedup"), "the deduplication's status")
        if not args.json:
            print("\n".join(dedup_lines(answer)))
            return 0
    elif args.action == "shutdown":
        answer = client.request("POST", "/api/shutdown")
        if not args.json:
            print("torrent-engine remote: the daemon is stopping (every job saved)")
            return 0
    else:
        job_path = f"/api/jobs/{urllib.parse.quote(args.job_id, safe='')}"
        if args.action == "show":
            answer = client.request("GET", job_path)
        elif args.action in ("pause", "resume"):
            answer = client.request("POST", f"{job_path}/{args.action}")
        elif args.action == "reannounce":
            answer = client.request("POST", f"{job_path}/reannounce",
                                    None if args.trackers is None else {"trackers": list(args.trackers)})
        else:  # cancel
            answer = client.request("DELETE", f"{job_path}?delete_files={str(args.delete_files).lower()}")
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        job = _obj(answer, "the job")
        print(show_job(job) if args.action == "show" else job_line(job))
    return 0
