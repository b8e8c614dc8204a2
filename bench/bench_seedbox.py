"""A seedbox's daemon at N torrents: ours against qbittorrent-nox and transmission-daemon, in the
same run, on the same data, driven through the same APIs (the qBittorrent WebAPI and the
Transmission RPC; our daemon through both dialects and through its own job list).

    python bench/bench_seedbox.py [--torrents 1000] [--clients ours,qbittorrent,transmission]
                                  [--idle-seconds 60] [--settle 5] [--batch 25] [--samples 20]
                                  [--keep DIR] [--skip-checking] [--poll | --wait-stats] [--checking N]
                                  [--cache warm|cold|as-is]

N small single-file torrents (256 KiB, 32 KiB pieces) are made once with their data on disk; each
client gets a fresh state folder over that one data folder (read-only for them: every torrent is
complete). DHT, LSD, PEX, port mapping off everywhere; the torrents name no tracker. Per client:

- ``add``: every ``.torrent`` added through the API, ``--batch`` files per qBittorrent
  ``torrents/add`` call; Transmission's ``torrent-add`` takes one torrent per call (its RPC has no
  batch), so its dialect adds one per call, each answer awaited;
- ``seed``: from the first add until the list shows every torrent seeding (checks included; the
  data in the page cache before each client as ``--cache`` says: read once by default, so that
  no client's checks read the disk while another's read memory; seen through ``torrents/info``
  every 0.5 s, the polling client's answers with ``--poll``, or for ours with ``--wait-stats``
  the counts of ``GET /api/stats`` every 0.1 s, which lists nothing: the checks unpolled);
  with ``--skip-checking`` the qBittorrent-dialect clients (ours, qbittorrent-nox) are asked to
  add with ``skip_checking=true`` (seed mode: nothing hashed at the add, each piece verified when
  first served); Transmission's RPC has no such flag, its dialect checks as before;
- idle over ``--idle-seconds``, ``--settle`` seconds after all seed: CPU as % of one core
  (utime+stime of all threads from /proc, and of the child processes), RSS at the end, open
  descriptors, threads;
- list latency, median and p95 of ``--samples`` calls each, from the request to the answer's
  last byte (the measuring client's parse of the JSON is not counted: 10 000 torrents are 10 MB,
  50 to 80 ms of ``json.loads``): qBittorrent ``torrents/info`` and ``sync/maindata`` (full,
  rid=0; incremental, the rid of the last answer), Transmission ``torrent-get`` (the fields
  ``transmission-remote -l`` asks for), our ``GET /api/jobs``;
- ``stop``: SIGTERM until the process exits; ``restart``: from the new process's start until the
  API answers, and until every torrent seeds again; its RSS 5 s after that; with ``--ping``, the
  second client's pings from the restart's first answer until then (the jobs' restore and the
  queue's first rounds: how long the loop kept a client waiting meanwhile).

Only loopback: as root with ``unshare`` the run re-executes itself in a network namespace that
has only loopback (nothing the real clients try at start can leave). Every wait is bounded.
The machine's load average is printed beside every client's figures.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from torrent_engine.formats.bencode import encode  # noqa: E402

FILE_SIZE = 256 * 1024
PIECE = 32 * 1024
TOKEN = "seedbox-bench-token"
TICKS = os.sysconf("SC_CLK_TCK")
WAIT_LIMIT = 3600.0  # no wait of this bench is longer


def in_loopback_namespace() -> None:
    """As root with ``unshare``: run this script again in a network namespace that has only
    loopback (nothing a real client tries can leave); else go on as it is."""
    if os.geteuid() == 0 and not os.environ.get("TE_IN_NETNS") and shutil.which("unshare"):
        os.environ["TE_IN_NETNS"] = "1"
        os.execvp("unshare", ["unshare", "-n", "bash", "-c", 'ip link set lo up && exec "$@"', "bash",
                              sys.executable, *sys.argv])


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the data ----------------------------------------------------------------------------------

def make_torrents(root: Path, n: int) -> tuple[Path, list[Path]]:
    """``root/data/tNNNNN.bin`` (random, FILE_SIZE each) and ``root/torrents/tNNNNN.torrent``;
    kept from an earlier run of at least that many. What was written is synced before the
    clients start: a disk still writing back gigabytes of new data slows every sync a client
    makes (ours sync at each add, qbittorrent-nox does not), which made one run's ratio 3.41
    where the same trees gave 1.76-2.96 on a settled disk (bench/RESULTS.md)."""
    data, meta = root / "data", root / "torrents"
    data.mkdir(parents=True, exist_ok=True)
    meta.mkdir(parents=True, exist_ok=True)
    files = []
    written = False
    for i in range(n):
        name = f"t{i:05d}.bin"
        path, tpath = data / name, meta / f"t{i:05d}.torrent"
        if not (path.exists() and tpath.exists()):
            payload = os.urandom(FILE_SIZE)
            path.write_bytes(payload)
            pieces = b"".join(hashlib.sha1(payload[o:o + PIECE]).digest() for o in range(0, FILE_SIZE, PIECE))
            info = {b"name": name.encode(), b"length": FILE_SIZE, b"piece length": PIECE, b"pieces": pieces}
            tpath.write_bytes(encode({b"info": info, b"created by": b"bench_seedbox"}))
            written = True
        files.append(tpath)
    if written:
        os.sync()
    return data, files


# -- a process's figures -----------------------------------------------------------------------

def children(pid: int) -> list[int]:
    """The processes ``pid`` started that are running (ours: its check process)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out.extend(int(c) for c in f.read().split())
    except OSError:  # (it ended meanwhile)
        pass
    return out


def cpu_seconds(pid: int) -> float:
    """utime+stime of the process's threads, of its children that ended (waited for) and of
    those running, with theirs (ours checks torrents in a child process)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    total = sum(int(v) for v in fields[11:15]) / TICKS
    for child in children(pid):
        try:
            total += cpu_seconds(child)
        except OSError:  # (it ended meanwhile: counted once waited for)
            pass
    return total


def tree_kib(pid: int, key: str) -> int:
    """``proc_status``'s ``key`` (VmRSS, VmHWM) of the process and of its running children, added
    (ours: its check process)."""
    total = proc_status(pid)[key]
    for child in children(pid):
        try:
            total += tree_kib(child, key)
        except OSError:  # (it ended meanwhile)
            pass
    return total


def peak_rss_mib(pid: int) -> float:
    """The process's peak RSS and those of its running children, added."""
    return tree_kib(pid, "VmHWM") / 1024


def proc_status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def quantiles(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s), s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def wait_for(what: str, check: Callable[[], bool], limit: float = WAIT_LIMIT, every: float = 0.2) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > limit:
            raise TimeoutError(f"{what}: not within {limit:.0f} s")
        time.sleep(every)
    return time.monotonic() - start


# -- HTTP --------------------------------------------------------------------------------------

class Http:
    """One keep-alive connection to 127.0.0.1:port (reopened if the server closed it)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.headers: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None,
                timeout: float = 600.0) -> tuple[int, dict[str, str], bytes]:
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            else:  # (a kept connection: this call's timeout, not the one it was opened with)
                self.conn.timeout = timeout
                if self.conn.sock is not None:
                    self.conn.sock.settimeout(timeout)
            try:
                self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
                r = self.conn.getresponse()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def multipart(fields: list[tuple[str, str]], files: list[Path]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    head = f"--{boundary}\r\nContent-Disposition: form-data; name="
    for name, value in fields:
        parts.append(f'{head}"{name}"\r\n\r\n{value}\r\n'.encode())
    for path in files:
        parts.append(f'{head}"torrents"; filename="{path.name}"\r\n'
                     "Content-Type: application/x-bittorrent\r\n\r\n".encode() + path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class QbApi:
    """The qBittorrent WebAPI v2 calls the bench makes (qbittorrent-nox's or our dialect)."""

    def __init__(self, port: int, password: str | None) -> None:
        self.http = Http(port)
        self.password = password
        self.rid = 0

    def login(self) -> bool:
        body = urllib.parse.urlencode({"username": "admin", "password": self.password or "x"}).encode()
        try:
            form = {"Content-Type": "application/x-www-form-urlencoded",
                    "Referer": f"http://127.0.0.1:{self.http.port}"}
            status, headers, _ = self.http.request("POST", "/api/v2/auth/login", body, form, timeout=5)
        except OSError:
            return False
        if status != 200:
            return False
        cookie = headers.get("set-cookie", "")
        if cookie:
            self.http.headers["Cookie"] = cookie.split(";", 1)[0]
        return True

    def add(self, files: list[Path], save_path: Path, skip_checking: bool = False) -> None:
        fields = [("savepath", str(save_path)), ("paused", "false")]
        if skip_checking:
            fields.append(("skip_checking", "true"))
        body, ctype = multipart(fields, files)
        status, _, text = self.http.request("POST", "/api/v2/torrents/add", body, {"Content-Type": ctype})
        # "Ok." (WebAPI before 2.14, qbittorrent-nox 4.5), or 2.14's counts (our dialect at 2.16)
        ok = text.strip() == b"Ok." or (text.startswith(b"{") and json.loads(text).get("failure_count") == 0)
        if status != 200 or not ok:
            raise RuntimeError(f"torrents/add: {status} {text[:200]!r}")

    def info_answer(self) -> bytes:
        """``torrents/info``'s answer, to its last byte (what the list timings measure: the
        client's parse of 10 MB of JSON, 50 to 80 ms here, is the client's, not the answer's)."""
        status, _, body = self.http.request("GET", "/api/v2/torrents/info")
        if status != 200:
            raise RuntimeError(f"torrents/info: {status} {body[:200]!r}")
        return body

    def info(self) -> list[dict[str, Any]]:
        return json.loads(self.info_answer())  # type: ignore[no-any-return]

    def get(self, call: str) -> bytes:
        """``GET /api/v2/{call}`` (a query string in it), its answer to the last byte."""
        status, _, body = self.http.request("GET", f"/api/v2/{call}")
        if status != 200:
            raise RuntimeError(f"{call}: {status} {body[:200]!r}")
        return body

    def maindata(self, rid: int) -> int:
        status, _, body = self.http.request("GET", f"/api/v2/sync/maindata?rid={rid}")
        if status != 200:
            raise RuntimeError(f"sync/maindata: {status} {body[:200]!r}")
        found = re.search(rb'"rid":\s*(\d+)', body)  # (the answer's own rid, unparsed: as info_answer)
        self.rid = int(found.group(1)) if found else 0
        return len(body)

    def seeding(self, n: int) -> bool:
        torrents = self.info()
        return len(torrents) == n and all(t["state"] in SEEDING_STATES for t in torrents)

    def recheck_all(self) -> None:
        body = b"hashes=all"
        status, _, text = self.http.request("POST", "/api/v2/torrents/recheck", body,
                                            {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise RuntimeError(f"torrents/recheck: {status} {text[:200]!r}")


SEEDING_STATES = frozenset({"uploading", "stalledUP", "queuedUP", "forcedUP"})


class Pinger(threading.Thread):
    """A second client of our daemon, in a process of its own: ``GET /api/health`` every
    ``PING_EVERY`` s, each answer's latency kept while ``on`` (a few hundred microseconds when the
    loop is free: its latency is how long the loop kept it waiting, as any other client, peer or
    tracker waits). Its own process: in this one, the bench's parse of a 10 MB list holds the
    GIL 50-80 ms, which a thread's pings counted as the daemon's."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.samples: list[float] = []
        self.on = False
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-c", PING_CHILD, str(self.port), TOKEN, str(PING_EVERY)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        super().start()

    def run(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:  # (one a ping answered; until the child ends)
            if self.on:
                self.samples.append(float(line))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        self.join(10)

    def phase(self) -> list[float]:
        """The latencies since the last call."""
        out, self.samples = self.samples, []
        return out


# the pinging process: a line of each answer's latency in ms (an answer that is not a 200, or a
# 503 while the service starts, is left out)
PING_CHILD = """
import http.client, sys, time
port, token, every = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
headers = {"Authorization": "Bearer " + token}
while True:
    t0 = time.monotonic()
    try:
        c.request("GET", "/api/health", headers=headers)
        r = c.getresponse()
        r.read()
        ok = r.status in (200, 503)  # (503: the service starts, its jobs listed from their records)
    except (OSError, http.client.HTTPException):
        c.close()
        ok = False
    took = time.monotonic() - t0
    if ok:
        print("%.3f" % (took * 1000), flush=True)
    time.sleep(max(0.0, every - took))
"""
PING_EVERY = 0.010  # seconds between two pings of the second client


class Polling(threading.Thread):
    """A client polling the list once a second: the torrents' states as its answers say (each
    dialect's ``run``), and each answer's time to its last byte (the parse is the client's own,
    not counted)."""

    what = ""  # the call polled, as the figures name it

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.states: dict[str, str] = {}
        self.latencies: list[float] = []
        self.asked: list[float] = []  # monotonic time each was asked at
        self.fulls = 0
        self.errors: list[str] = []
        self.kept_asked = 0.0  # monotonic time the answer the states are from was asked at
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def seeding(self, n: int) -> bool:
        raise NotImplementedError

    def seeding_since(self, n: int, since: float) -> bool:
        """Whether an answer asked after ``since`` (monotonic) showed ``n`` torrents seeding."""
        with self._lock:
            if self.kept_asked < since:
                return False
        return self.seeding(n)

    def stop(self) -> None:
        self._halt.set()
        self.join(30)


class Poller(Polling):
    """A client polling ``sync/maindata`` with its ``rid`` once a second, as qbit_manage, VueTorrent,
    Flood and the *arr apps do: it keeps the torrents' states from the answers (full or deltas)."""

    what = "sync/maindata"

    def __init__(self, port: int, password: str | None) -> None:
        super().__init__()
        self.api = QbApi(port, password)

    def seeding(self, n: int) -> bool:
        with self._lock:
            return len(self.states) == n and all(s in SEEDING_STATES for s in self.states.values())

    def run(self) -> None:
        if not self.api.login():
            self.errors.append("login failed")
            return
        rid = 0
        while not self._halt.is_set():
            t0 = time.perf_counter()
            try:
                status, _, body = self.api.http.request("GET", f"/api/v2/sync/maindata?rid={rid}")
            except OSError as exc:
                self.errors.append(str(exc))
                self._halt.wait(1.0)
                continue
            self.latencies.append((time.perf_counter() - t0) * 1000)
            self.asked.append(time.monotonic() - (time.perf_counter() - t0))
            if status == 200:
                answer = json.loads(body)
                rid = int(answer.get("rid", 0))
                with self._lock:
                    if answer.get("full_update"):
                        self.fulls += 1
                        self.states = {}
                    for h, rec in (answer.get("torrents") or {}).items():
                        if "state" in rec:
                            self.states[h] = rec["state"]
                        elif h not in self.states:
                            self.states[h] = ""
                    for h in answer.get("torrents_removed") or ():
                        self.states.pop(h, None)
                    self.kept_asked = self.asked[-1]
            self._halt.wait(max(0.0, 1.0 - (time.perf_counter() - t0)))


class TrPoller(Polling):
    """A client polling Transmission's ``torrent-get`` once a second, as Transmission's own web
    client and Transmission Remote GUI do: every torrent first, then ``ids: "recently-active"``
    (the torrents active in the last 60 s, and the ids of those removed), and every torrent
    again every ``FULL_EVERY`` asks (a torrent whose check ended a minute after its add may not
    be "active" to transmission-daemon: the full list tells its state). It keeps the torrents'
    states (``status``) from the answers; ``latencies`` are the ``recently-active`` answers',
    ``full_latencies`` the full lists'."""

    what = 'torrent-get ids "recently-active"'
    FULL_EVERY = 10

    def __init__(self, port: int, path: str, password: str | None) -> None:
        super().__init__()
        self.tr = TrApi(port, path, password)
        self.full_latencies: list[float] = []

    def seeding(self, n: int) -> bool:
        with self._lock:
            return len(self.states) == n and all(s == "6" for s in self.states.values())

    def run(self) -> None:
        asks = 0
        while not self._halt.is_set():
            t0 = time.perf_counter()
            full = asks % self.FULL_EVERY == 0
            asks += 1
            arguments: dict[str, Any] = {"fields": TR_LIST_FIELDS}
            if not full:
                arguments["ids"] = "recently-active"
            try:
                answer = self.tr.call("torrent-get", arguments, timeout=60.0)
            except (OSError, RuntimeError) as exc:
                self.errors.append(str(exc))
                self._halt.wait(1.0)
                continue
            took = (time.perf_counter() - t0) * 1000
            if full:
                self.full_latencies.append(took)
            else:
                self.latencies.append(took)
                self.asked.append(time.monotonic() - took / 1000)
            with self._lock:
                if full:
                    self.fulls += 1
                    self.states = {}
                for t in answer.get("torrents") or ():
                    self.states[str(t["id"])] = str(t.get("status", ""))
                for i in answer.get("removed") or ():
                    self.states.pop(str(i), None)
                self.kept_asked = time.monotonic() - took / 1000
            self._halt.wait(max(0.0, 1.0 - (time.perf_counter() - t0)))


TR_LIST_FIELDS = ["id", "name", "status", "percentDone", "rateDownload", "rateUpload", "eta",
                  "uploadRatio", "sizeWhenDone", "leftUntilDone", "error", "errorString",
                  "peersGettingFromUs", "peersSendingToUs", "isFinished", "recheckProgress"]


class TrApi:
    """The Transmission RPC calls the bench makes (transmission-daemon's or our dialect)."""

    def __init__(self, port: int, path: str, password: str | None) -> None:
        self.http = Http(port)
        self.path = path
        if password is not None:
            basic = base64.b64encode(f"admin:{password}".encode()).decode()
            self.http.headers["Authorization"] = f"Basic {basic}"

    def call(self, method: str, arguments: dict[str, Any], timeout: float = 600.0) -> dict[str, Any]:
        body = json.dumps({"method": method, "arguments": arguments}).encode()
        for _ in range(3):
            status, headers, text = self.http.request("POST", self.path, body,
                                                      {"Content-Type": "application/json"}, timeout=timeout)
            if status == 409:
                self.http.headers["X-Transmission-Session-Id"] = headers["x-transmission-session-id"]
                continue
            if status != 200:
                raise RuntimeError(f"{method}: {status} {text[:200]!r}")
            answer = json.loads(text)
            if answer.get("result") != "success":
                raise RuntimeError(f"{method}: {answer.get('result')}")
            return answer.get("arguments", {})  # type: ignore[no-any-return]
        raise RuntimeError(f"{method}: no session id")

    def ready(self) -> bool:
        try:
            self.call("session-get", {}, timeout=5)
            return True
        except (OSError, RuntimeError):
            return False

    def add(self, file: Path, save_path: Path) -> None:
        self.call("torrent-add", {"metainfo": base64.b64encode(file.read_bytes()).decode(),
                                  "download-dir": str(save_path), "paused": False})

    def get(self) -> list[dict[str, Any]]:
        return self.call("torrent-get", {"fields": TR_LIST_FIELDS})["torrents"]  # type: ignore[no-any-return]

    def get_answer(self) -> bytes:
        """``torrent-get``'s answer, to its last byte (as ``QbApi.info_answer``: not parsed)."""
        body = json.dumps({"method": "torrent-get", "arguments": {"fields": TR_LIST_FIELDS}}).encode()
        for _ in range(3):
            status, headers, text = self.http.request("POST", self.path, body,
                                                      {"Content-Type": "application/json"})
            if status == 409:
                self.http.headers["X-Transmission-Session-Id"] = headers["x-transmission-session-id"]
                continue
            if status != 200 or not re.search(rb'"result":\s*"success"', text):
                raise RuntimeError(f"torrent-get: {status} {text[:200]!r}")
            return text
        raise RuntimeError("torrent-get: no session id")

    def seeding(self, n: int) -> bool:
        torrents = self.get()
        return len(torrents) == n and all(t["status"] == 6 for t in torrents)


# -- the clients -------------------------------------------------------------------------------

class Client:
    """One daemon under test: how to start it over a state folder, and its API."""

    name = ""
    dialect = ""

    def __init__(self, work: Path, data: Path) -> None:
        self.work = work
        self.data = data
        self.proc: subprocess.Popen[bytes] | None = None
        self.api_port = free_port()
        self.peer_port = free_port()
        self.log = work / "log.txt"
        self.skip_checking = False  # add with skip_checking=true (where the dialect has it)
        self.checking: int | None = None  # torrents checking at once (None: the client's own choice)

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write the config (before the first start)."""

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.work)

    def alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")

    def stop(self, limit: float = 120.0) -> float:
        assert self.proc is not None
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return float("inf")
        return time.monotonic() - start

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    # the API, per dialect
    def ready(self) -> bool:
        raise NotImplementedError

    def add_all(self, files: list[Path], batch: int) -> list[float]:
        """Add every file; how long each API call took to answer (ms)."""
        raise NotImplementedError

    def seeding(self, n: int) -> bool:
        raise NotImplementedError

    def latencies(self, samples: int) -> dict[str, tuple[float, float]]:
        raise NotImplementedError


def timed(samples: int, call: Callable[[], Any]) -> tuple[float, float]:
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        call()
        out.append((time.perf_counter() - t0) * 1000)
    return quantiles(out)


class QbDialect(Client):
    dialect = "qbittorrent"
    password: str | None = None

    def api(self) -> QbApi:
        if not hasattr(self, "_api") or self._api.http.port != self.api_port:
            self._api = QbApi(self.api_port, self.password)
        return self._api

    def ready(self) -> bool:
        self.alive()
        api = self.api()
        if not api.login():
            return False
        try:
            api.info_answer()
            return True
        except (OSError, RuntimeError):
            return False

    def add_all(self, files: list[Path], batch: int) -> list[float]:
        calls = []
        for i in range(0, len(files), batch):
            t0 = time.perf_counter()
            self.api().add(files[i:i + batch], self.data, self.skip_checking)
            calls.append((time.perf_counter() - t0) * 1000)
        return calls

    def seeding(self, n: int) -> bool:
        self.alive()
        return self.api().seeding(n)

    def latencies(self, samples: int) -> dict[str, tuple[float, float]]:
        api = self.api()
        out = {"torrents/info": timed(samples, api.info_answer)}
        sizes = []
        out["sync/maindata full"] = timed(samples, lambda: sizes.append(api.maindata(0)))
        out["sync/maindata incremental"] = timed(samples, lambda: api.maindata(api.rid))
        self.maindata_bytes = sizes[-1]
        # a details panel's poll, and a client asking after a torrent it added: one torrent each
        one = api.info()[0]["hash"]
        for call in (f"torrents/properties?hash={one}", f"torrents/info?hashes={one}"):
            out[call.replace(one, "(one)")] = timed(samples, lambda c=call: api.get(c))
        return out


class TrDialect(Client):
    dialect = "transmission"
    rpc_path = "/transmission/rpc"
    password: str | None = None

    def api(self) -> TrApi:
        if not hasattr(self, "_api") or self._api.http.port != self.api_port:
            self._api = TrApi(self.api_port, self.rpc_path, self.password)
        return self._api

    def ready(self) -> bool:
        self.alive()
        return self.api().ready()

    def add_all(self, files: list[Path], batch: int) -> list[float]:
        api = self.api()
        calls = []
        for f in files:
            t0 = time.perf_counter()
            api.add(f, self.data)
            calls.append((time.perf_counter() - t0) * 1000)
        return calls

    def seeding(self, n: int) -> bool:
        self.alive()
        return self.api().seeding(n)

    def latencies(self, samples: int) -> dict[str, tuple[float, float]]:
        api = self.api()
        out = {"torrent-get": timed(samples, api.get_answer)}
        one = api.call("torrent-get", {"fields": ["id"]})["torrents"][0]["id"]  # (a details panel's poll)
        out["torrent-get ids=[one]"] = timed(samples, lambda: api.call("torrent-get", {
            "ids": [one], "fields": TR_LIST_FIELDS}))
        out["session-stats"] = timed(samples, lambda: api.call("session-stats", {}))
        return out


def ours_get(port: int, path: str) -> bytes:
    """The body of our daemon's answer to ``GET path`` (on a connection of its own, with the
    API token); ``RuntimeError`` unless it is 200."""
    h = Http(port)
    h.headers["Authorization"] = f"Bearer {TOKEN}"
    try:
        status, _, body = h.request("GET", path)
    finally:
        h.close()
    if status != 200:
        raise RuntimeError(f"{path}: {status} {body[:200]!r}")
    return body


class Ours:
    """Our daemon: the command line, and the job list of our own API."""

    name = "ours"
    api_port: int
    peer_port: int
    work: Path
    data: Path

    def command(self) -> list[str]:
        return [sys.executable, "-m", "torrent_engine", "daemon", "--state-dir", str(self.work / "state"),
                "--download-dir", str(self.data), "--api-port", str(self.api_port),
                "--api-token", TOKEN, "--listen-host", "127.0.0.1", "--listen-port", str(self.peer_port),
                "--no-dht", "--no-lsd", "--no-port-mapping", "-q",
                *(["--active-checking-limit", str(self.checking)] if self.checking is not None else [])]

    def stats_seeding(self, n: int) -> bool:
        """Whether ``GET /api/stats`` counts ``n`` jobs seeding (counts the job table keeps: no
        list made, no job looked at)."""
        return int(json.loads(ours_get(self.api_port, "/api/stats"))["jobs"]["seeding"]) == n

    def loop_lag(self) -> tuple[float, int, int]:
        """The event loop's worst lag since the start (its probe wakes every 0.5 s), how many
        wake-ups it measured and how many of them were over 50 ms late, read from /metrics."""
        body = ours_get(self.api_port, "/metrics")
        worst, count, within = 0.0, 0, 0
        for line in body.decode().splitlines():
            if line.startswith("torrent_engine_event_loop_lag_max_seconds "):
                worst = float(line.split()[1])
            elif line.startswith("torrent_engine_event_loop_lag_seconds_count "):
                count = int(float(line.split()[1]))
            elif line.startswith('torrent_engine_event_loop_lag_seconds_bucket{le="0.05"}'):
                within = int(float(line.split()[1]))
        return worst, count, count - within

    def own_calls(self, samples: int) -> dict[str, tuple[float, float]]:
        """Our own API's job list and a Prometheus scrape of ``/metrics``."""
        h = Http(self.api_port)
        h.headers["Authorization"] = f"Bearer {TOKEN}"

        def get(path: str) -> None:
            status, _, body = h.request("GET", path)
            if status != 200:
                raise RuntimeError(f"{path}: {status} {body[:200]!r}")

        try:
            return {f"GET {path}": timed(samples, lambda p=path: get(p))
                    for path in ("/api/jobs", "/metrics")}
        finally:
            h.close()


class OursQb(Ours, QbDialect):
    password = TOKEN

    def latencies(self, samples: int) -> dict[str, tuple[float, float]]:
        return QbDialect.latencies(self, samples) | self.own_calls(samples)


class OursTr(Ours, TrDialect):
    password = TOKEN

    def latencies(self, samples: int) -> dict[str, tuple[float, float]]:
        return TrDialect.latencies(self, samples) | self.own_calls(samples)


def write_qbittorrent_conf(profile: Path, api_port: int, peer_port: int, save_path: Path,
                           checking: int = -1) -> None:
    """qbittorrent-nox's config in ``profile`` (its ``--profile``): the WebUI on 127.0.0.1 with no
    login from loopback, DHT, LSD, PEX, port mapping, peer country lookups and its queue off;
    ``checking`` torrents checked at once (-1: no limit; qBittorrent's own default is 1)."""
    conf = profile / "qBittorrent" / "config"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "qBittorrent.conf").write_text(f"""[LegalNotice]
Accepted=true

[BitTorrent]
Session\\DHTEnabled=false
Session\\LSDEnabled=false
Session\\PeXEnabled=false
Session\\Port={peer_port}
Session\\QueueingSystemEnabled=false
Session\\MaxActiveCheckingTorrents={checking}
Session\\DefaultSavePath={save_path}

[Preferences]
Connection\\UPnP=false
Connection\\ResolvePeerCountries=false
General\\UseRandomPort=false
WebUI\\Address=127.0.0.1
WebUI\\Port={api_port}
WebUI\\LocalHostAuth=false
WebUI\\CSRFProtection=false
WebUI\\HostHeaderValidation=false
""")


class QbittorrentNox(QbDialect):
    name = "qbittorrent-nox"

    def prepare(self) -> None:
        write_qbittorrent_conf(self.work / "profile", self.api_port, self.peer_port, self.data,
                               -1 if self.checking is None else self.checking)

    def command(self) -> list[str]:
        return ["qbittorrent-nox", f"--profile={self.work / 'profile'}"]


class TransmissionDaemon(TrDialect):
    name = "transmission-daemon"

    def prepare(self) -> None:
        conf = self.work / "config"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "settings.json").write_text(json.dumps({
            "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False, "utp-enabled": False,
            "port-forwarding-enabled": False, "peer-port": self.peer_port, "peer-port-random-on-start": False,
            "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
            "rpc-enabled": True, "rpc-port": self.api_port, "rpc-bind-address": "127.0.0.1",
            "rpc-authentication-required": False, "rpc-whitelist-enabled": False,
            "rpc-host-whitelist-enabled": False, "download-dir": str(self.data),
            "download-queue-enabled": False, "seed-queue-enabled": False, "queue-stalled-enabled": False,
            "blocklist-enabled": False, "start-added-torrents": True, "message-level": 1}))

    def command(self) -> list[str]:
        return ["transmission-daemon", "-f", "-g", str(self.work / "config")]


CLIENTS: dict[str, type[Client]] = {
    "ours-qb": OursQb, "ours-tr": OursTr, "qbittorrent": QbittorrentNox, "transmission": TransmissionDaemon}


# -- one client's run --------------------------------------------------------------------------

def idle(client: Client, seconds: float) -> dict[str, float]:
    pid = client.pid
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    client.alive()
    st = proc_status(pid)
    return {"cpu_pct": 100 * (c1 - c0) / (t1 - t0), "rss_mib": tree_kib(pid, "VmRSS") / 1024,
            "fds": st["fds"], "threads": st["Threads"]}


def page_cache(data: Path, n: int, how: str) -> None:
    """The page cache as ``--cache`` asks, before a client starts: ``warm``, the first ``n`` data
    files read once (all in memory, as just written); ``cold``, every cached page dropped (root:
    the checks read from the disk); ``as-is``, untouched."""
    if how == "warm":
        for i in range(n):
            with open(data / f"t{i:05d}.bin", "rb") as f:
                while f.read(1 << 20):
                    pass
    elif how == "cold":
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def run_client(kind: str, work: Path, data: Path, files: list[Path],
               args: argparse.Namespace) -> dict[str, Any]:
    page_cache(data, len(files), args.cache)
    client = CLIENTS[kind](work, data)
    work.mkdir(parents=True, exist_ok=True)
    client.prepare()
    n = len(files)
    client.skip_checking = args.skip_checking and isinstance(client, QbDialect)
    client.checking = args.checking
    out: dict[str, Any] = {"client": client.name, "dialect": client.dialect, "n": n,
                           "skip_checking": client.skip_checking}
    started = time.monotonic()
    client.start()
    try:
        out["first_answer_s"] = wait_for(f"{client.name} answers", client.ready, 60, 0.05)
        poller: Polling | None = None
        if args.poll:
            poller = (Poller(client.api_port, client.password) if isinstance(client, QbDialect)
                      else TrPoller(client.api_port, client.rpc_path, client.password)
                      if isinstance(client, TrDialect) else None)
        if poller is not None:
            poller.start()
        pinger = Pinger(client.api_port) if args.ping and isinstance(client, Ours) else None
        if pinger is not None:
            pinger.on = True
            pinger.start()
        cpu0 = cpu_seconds(client.pid)
        t0 = time.monotonic()
        calls = client.add_all(files, args.batch)
        out["add_call_ms"] = quantiles(calls)
        fifth = max(1, len(calls) // 5)  # (what a call costs as the client fills: each fifth's median)
        out["add_call_fifths_ms"] = [statistics.median(calls[i:i + fifth]) for i in range(0, fifth * 5, fifth)
                                     if calls[i:i + fifth]]
        out["add_s"] = time.monotonic() - t0
        added_at = time.monotonic()
        out["add_load"] = load_avg()
        if poller is not None:
            def all_seeding() -> bool:
                client.alive()
                return poller.seeding(n)
            try:
                wait_for(f"{client.name}: all seeding (polled)", all_seeding, WAIT_LIMIT, 0.1)
            finally:
                poller.stop()
            out["poll_ms"] = (*quantiles(poller.latencies), max(poller.latencies))
            during = [ms for ms, at in zip(poller.latencies, poller.asked, strict=True) if at < added_at]
            after = poller.latencies[len(during):]
            out["poll_phases_ms"] = (quantiles(during)[0] if during else 0.0, len(during),
                                     quantiles(after)[0] if after else 0.0, len(after))
            out["polls"] = len(poller.latencies)
            out["polled"] = poller.what
            if isinstance(poller, TrPoller) and poller.full_latencies:
                out["poll_full_ms"] = (*quantiles(poller.full_latencies), len(poller.full_latencies))
            out["poll_errors"] = poller.errors[:5]
        elif args.wait_stats and isinstance(client, Ours):
            ours = client
            wait_for(f"{ours.name}: all seeding (counted)", lambda: ours.stats_seeding(n), WAIT_LIMIT, 0.1)
        else:
            wait_for(f"{client.name}: all seeding", lambda: client.seeding(n), WAIT_LIMIT, 0.5)
        out["seed_s"] = time.monotonic() - t0
        if pinger is not None:
            pinger.stop()
            pings = sorted(pinger.phase())
            if pings:  # (none answered: no figure, rather than one made up)
                late = sum(ms > 50 for ms in pings)
                out["ping_ms"] = (pings[-1], pings[int(0.99 * (len(pings) - 1))], late, len(pings))
        out["seed_cpu_s"] = cpu_seconds(client.pid) - cpu0
        out["peak_rss_mib"] = peak_rss_mib(client.pid)
        if isinstance(client, Ours):
            out["loop_lag"] = client.loop_lag()
        time.sleep(args.settle)  # what the start set off settles
        out["idle"] = idle(client, args.idle_seconds)
        out["idle_load"] = load_avg()
        out["latency_ms"] = client.latencies(args.samples)
        if isinstance(client, QbDialect):
            out["maindata_bytes"] = getattr(client, "maindata_bytes", 0)
        if args.recheck and isinstance(client, QbDialect):
            out["recheck"] = recheck_all(client, n, args)
        out["stop_s"] = client.stop()
        client.start()
        pinger = Pinger(client.api_port) if args.ping and isinstance(client, Ours) else None
        if pinger is not None:  # (from its first answer on: the jobs' restore and the queue's first round)
            pinger.on = True
            pinger.start()
        out["restart_answer_s"] = wait_for(f"{client.name} answers after restart", client.ready, 120, 0.05)
        out["restart_seed_s"] = wait_for(f"{client.name}: all seeding after restart",
                                         lambda: client.seeding(n), WAIT_LIMIT, 0.2) + out["restart_answer_s"]
        time.sleep(5)  # (what the restart set off settles: then what it holds)
        client.alive()
        if pinger is not None:
            pinger.stop()
            pings = sorted(pinger.phase())
            if pings:
                out["restart_ping_ms"] = (pings[-1], pings[int(0.99 * (len(pings) - 1))],
                                          sum(ms > 50 for ms in pings), len(pings))
        out["restart_rss_mib"] = proc_status(client.pid)["VmRSS"] / 1024
        out["stop2_s"] = client.stop()
    finally:
        if client.proc is not None and client.proc.poll() is None:
            client.proc.kill()
            client.proc.wait()
    out["wall_s"] = time.monotonic() - started
    return out


def recheck_all(client: QbDialect, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every torrent checked again (``torrents/recheck`` with ``hashes=all``), as a user does
    after moving a library's data: the call's own time, and the time and CPU until an answer
    asked after the call returned shows all seeding again — seen as the adds' were (``--poll``:
    a client polling ``sync/maindata`` from before the call, as one would be; ``--wait-stats``:
    our counts; else ``torrents/info`` every 0.5 s). qbittorrent-nox's states may show a check
    begun up to a second late (its status is refreshed from libtorrent's alerts)."""
    poller = Poller(client.api_port, client.password) if args.poll else None
    if poller is not None:
        poller.start()
        wait_for(f"{client.name}: a first answer before the recheck", lambda: poller.seeding(n), 60, 0.05)
    cpu0 = cpu_seconds(client.pid)
    t0 = time.monotonic()
    client.api().recheck_all()
    called = time.monotonic()
    out: dict[str, Any] = {"call_s": called - t0}
    if poller is not None:
        def all_seeding() -> bool:
            client.alive()
            return poller.seeding_since(n, called)
        try:
            wait_for(f"{client.name}: all seeding after the recheck (polled)", all_seeding, WAIT_LIMIT, 0.1)
        finally:
            poller.stop()
        during = [ms for ms, at in zip(poller.latencies, poller.asked, strict=True) if at >= t0]
        out["poll_ms"] = (*quantiles(during), max(during), len(during)) if during else None
    elif args.wait_stats and isinstance(client, Ours):
        ours = client
        wait_for(f"{ours.name}: all seeding after the recheck (counted)", lambda: ours.stats_seeding(n),
                 WAIT_LIMIT, 0.1)
    else:
        wait_for(f"{client.name}: all seeding after the recheck", lambda: client.seeding(n), WAIT_LIMIT, 0.5)
    out["seed_s"] = time.monotonic() - t0
    out["cpu_s"] = cpu_seconds(client.pid) - cpu0
    return out


def print_row(r: dict[str, Any]) -> None:
    i = r["idle"]
    print(f"\n== {r['client']} ({r['dialect']} API), N = {r['n']}"
          + (", added with skip_checking=true" if r.get("skip_checking") else ""))
    med, p95 = r["add_call_ms"]
    per = "batch" if r["dialect"] == "qbittorrent" else "torrent"
    print(f"  add all: {r['add_s']:.2f} s (load {r['add_load']}); one call (a {per}): median "
          f"{med:.1f} ms, p95 {p95:.1f} ms; all seeding: {r['seed_s']:.2f} s after the first add")
    if r.get("add_call_fifths_ms"):
        print("  one call, median of each fifth of the adds: "
              + ", ".join(f"{m:.1f}" for m in r["add_call_fifths_ms"]) + " ms")
    if "poll_ms" in r:
        pm, pp, px = r["poll_ms"]
        errors = f"; errors {r['poll_errors']}" if r["poll_errors"] else ""
        print(f"  polled {r.get('polled', 'sync/maindata')} once a second until all seeding: {r['polls']} "
              f"answers, median {pm:.1f} ms, p95 {pp:.1f} ms, max {px:.1f} ms{errors}")
        dm, dn, am, an = r["poll_phases_ms"]
        print(f"    of those, while the adds went on: {dn}, median {dm:.1f} ms; after the last add: {an}, "
              f"median {am:.1f} ms")
        if r.get("poll_full_ms"):
            fm, fp, fn = r["poll_full_ms"]
            print(f"    and every torrent every {TrPoller.FULL_EVERY} asks: {fn}, median {fm:.1f} ms, "
                  f"p95 {fp:.1f} ms")
    print(f"  CPU from the first add until all seeding: {r['seed_cpu_s']:.1f} s; "
          f"peak RSS {r['peak_rss_mib']:.0f} MiB")
    if "loop_lag" in r:
        worst, wakes, late = r["loop_lag"]
        print(f"  event loop from the start until all seeding: worst lag {worst * 1000:.0f} ms; "
              f"{late} of {wakes} probe wake-ups over 50 ms late")
    if "ping_ms" in r:
        worst, p99, late, pings = r["ping_ms"]
        print(f"  pings every {PING_EVERY * 1000:.0f} ms from the first add until all seeding: worst "
              f"{worst:.0f} ms, p99 {p99:.1f} ms; {late} of {pings} over 50 ms")
    print(f"  idle: CPU {i['cpu_pct']:.2f} % of a core, RSS {i['rss_mib']:.0f} MiB, {i['fds']} descriptors, "
          f"{i['threads']} threads (load {r['idle_load']})")
    for name, (med, p95) in r["latency_ms"].items():
        print(f"  {name}: median {med:.1f} ms, p95 {p95:.1f} ms")
    if r.get("maindata_bytes"):
        print(f"  sync/maindata full: {r['maindata_bytes'] / 1024:.0f} KiB")
    if "recheck" in r:
        c = r["recheck"]
        print(f"  recheck all: the call {c['call_s']:.2f} s; all seeding again {c['seed_s']:.2f} s after "
              f"it was made; CPU {c['cpu_s']:.1f} s")
        if c.get("poll_ms"):
            pm, pp, px, pn = c["poll_ms"]
            print(f"    polled sync/maindata meanwhile: {pn} answers, median {pm:.1f} ms, p95 {pp:.1f} ms, "
                  f"max {px:.1f} ms")
    print(f"  stop: {r['stop_s']:.2f} s; restart: API answers in {r['restart_answer_s']:.2f} s, "
          f"all seeding in {r['restart_seed_s']:.2f} s, RSS then {r['restart_rss_mib']:.0f} MiB; "
          f"stop again {r['stop2_s']:.2f} s")
    if "restart_ping_ms" in r:
        worst, p99, late, pings = r["restart_ping_ms"]
        print(f"  pings every {PING_EVERY * 1000:.0f} ms from the restart's first answer until 5 s after all "
              f"seed: worst {worst:.0f} ms, p99 {p99:.1f} ms; {late} of {pings} over 50 ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--torrents", type=int, default=1000)
    p.add_argument("--clients", default="ours-qb,ours-tr,qbittorrent,transmission",
                   help=f"comma-separated, of {', '.join(CLIENTS)}")
    p.add_argument("--idle-seconds", type=float, default=60.0)
    p.add_argument("--cache", choices=("warm", "cold", "as-is"), default="warm",
                   help="the data in the page cache before each client starts: read once (warm, the "
                        "default), dropped (cold: root), or as it is")
    p.add_argument("--settle", type=float, default=5.0,
                   help="seconds from all seeding until the idle CPU is measured (default 5)")
    p.add_argument("--batch", type=int, default=25)
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--keep", type=Path, help="make the data here and keep it (else a temporary folder)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--poll", action="store_true",
                   help="a client polls once a second from the first add until all seed: sync/maindata "
                        "with its rid (the qBittorrent dialect), torrent-get with ids recently-active (the "
                        "Transmission dialect); all seeding is then seen through it")
    p.add_argument("--checking", type=int, default=None,
                   help="torrents checking at once: ours' --active-checking-limit (default: its own "
                        "default), qbittorrent-nox's MaxActiveCheckingTorrents (default -1, no limit)")
    p.add_argument("--ping", action="store_true",
                   help="ours: a second client asks GET /api/health every 10 ms from the first add until "
                        "all seed, and from the restart's first answer until all seed again, each answer "
                        "timed (how long the event loop kept it waiting)")
    p.add_argument("--wait-stats", action="store_true",
                   help="ours, without --poll: all seeding seen through GET /api/stats's counts every 0.1 s "
                        "(no list asked: the adds and checks with no client polling, to compare with --poll)")
    p.add_argument("--recheck", action="store_true",
                   help="the qBittorrent dialect: once all seed and the lists are timed, every torrent "
                        "checked again (torrents/recheck hashes=all), timed until all seed again (seen as "
                        "--poll or --wait-stats say)")
    p.add_argument("--skip-checking", action="store_true",
                   help="add with skip_checking=true through the qBittorrent dialect (seed mode)")
    args = p.parse_args()

    in_loopback_namespace()

    kinds = [k.strip() for k in args.clients.split(",") if k.strip()]
    for k in kinds:
        if k not in CLIENTS:
            p.error(f"unknown client {k!r}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="seedbox-"))
    t0 = time.monotonic()
    data, files = make_torrents(root, args.torrents)
    print(f"{len(files)} torrents of {FILE_SIZE // 1024} KiB in {root} ({time.monotonic() - t0:.1f} s); "
          f"load {load_avg()}", flush=True)
    results = []
    works: list[Path] = []
    try:
        for k in kinds:
            work = Path(tempfile.mkdtemp(prefix=f"{k}-", dir=root))
            works.append(work)
            r = run_client(k, work, data, files, args)
            results.append(r)
            print_row(r)
            sys.stdout.flush()
    finally:
        # (removed at the end, not between two clients: on a file system without a journal, as
        # this machine's, creating files right after many were removed cost several times as
        # much, which the next client would pay for the last one's state folder)
        for work in works:
            shutil.rmtree(work, ignore_errors=True)
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
