"""A seedbox's actions on every torrent at once, ours against qbittorrent-nox in the same run.

    python bench/bench_bulk_actions.py [--torrents 10000] [--clients ours-qb,qbittorrent] [--keep DIR]
                                       [--edits-only]

Each client adds ``--torrents`` single-file torrents (``bench_seedbox.py``'s data) in seed mode
through the qBittorrent WebAPI (``skip_checking``, 25 a request), waits until all seed, then
times ``torrents/pause``, ``torrents/resume``, ``torrents/recheck`` and ``torrents/delete``
(the data kept) with ``hashes=all``, as a user selecting every torrent in a web UI (or
qbit_manage) does: the call's own time, the daemon's CPU (its children's counted) during it, and
the time until ``torrents/info`` shows every torrent paused, seeding again, seeding after its
check, and none (the states read every 0.2 s, 0.5 s for the check's end). The recheck of a
client that answers before its checks begin is seen through its states once they show the check
begun or over (qbittorrent-nox's are refreshed from libtorrent's alerts: up to a second late).

Then the edits a client (qbit_manage, a web UI's selection of all) makes of every torrent
(``EDITS``: a category, tags, share limits, limits, toggles, force-start; and the category and
tag forgotten): each call's own time, the daemon's CPU during it, and the time until
``torrents/info`` shows every torrent changed (read every 0.2 s). ``--edits-only``: the edits
alone (no pause, resume, recheck).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_seedbox as sb  # noqa: E402

PAUSED = frozenset({"pausedUP", "stoppedUP"})
SHOWN = {"pause": "shown paused", "resume": "shown seeding", "recheck": "shown seeding after it",
         "delete": "gone from the list"}
EDITS: list[tuple[str, str, Callable[[dict[str, Any]], bool] | None]] = [
    # (the call, its form beside hashes=all, what each torrent shows once it is made: None, a call
    # that changes no torrent's record)
    ("createCategory", "category=bench&savePath=", None),
    ("setCategory", "category=bench", lambda t: t["category"] == "bench"),
    ("addTags", "tags=one,two", lambda t: t["tags"] == "one, two"),
    ("removeTags", "tags=two", lambda t: t["tags"] == "one"),
    ("setShareLimits", "ratioLimit=2&seedingTimeLimit=600&inactiveSeedingTimeLimit=-2",
     lambda t: t["ratio_limit"] == 2),
    ("setUploadLimit", "limit=100000", lambda t: t["up_limit"] == 100000),
    ("setDownloadLimit", "limit=200000", lambda t: t["dl_limit"] == 200000),
    ("toggleSequentialDownload", "", lambda t: t["seq_dl"] is True),
    ("setSuperSeeding", "value=true", lambda t: t["super_seeding"] is True),
    ("setForceStart", "value=true", lambda t: t["force_start"] is True),
    ("setForceStart", "value=false", lambda t: t["force_start"] is False),
    ("removeCategories", "categories=bench", lambda t: t["category"] == ""),
    ("deleteTags", "tags=one", lambda t: t["tags"] == ""),
]


def run(kind: str, root: Path, data: Path, files: list[Path], edits_only: bool) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix=f"{kind}-bulk-", dir=root))
    client = sb.CLIENTS[kind](work, data)
    assert isinstance(client, sb.QbDialect)
    client.prepare()
    client.skip_checking = True
    n = len(files)
    out: dict[str, float] = {}
    client.start()
    try:
        sb.wait_for(f"{kind} answers", client.ready, 60, 0.05)
        t0 = time.monotonic()
        client.add_all(files, 25)
        out["add_s"] = time.monotonic() - t0
        sb.wait_for(f"{kind}: all seeding", lambda: client.seeding(n), sb.WAIT_LIMIT, 0.5)
        time.sleep(3)
        api = client.api()

        def states_in(wanted: frozenset[str]) -> bool:
            client.alive()
            torrents = api.info()
            return len(torrents) == n and all(t["state"] in wanted for t in torrents)

        states = (("pause", PAUSED, 0.2), ("resume", sb.SEEDING_STATES, 0.2),
                  ("recheck", sb.SEEDING_STATES, 0.5))
        for call, wanted, every in () if edits_only else states:
            cpu0 = sb.cpu_seconds(client.pid)
            t0 = time.monotonic()
            status, _, text = api.http.request("POST", f"/api/v2/torrents/{call}", b"hashes=all",
                                               {"Content-Type": "application/x-www-form-urlencoded"},
                                               timeout=sb.WAIT_LIMIT)
            if status != 200:
                raise RuntimeError(f"torrents/{call}: {status} {text[:200]!r}")
            out[f"{call}_call_s"] = time.monotonic() - t0
            if call == "recheck":
                time.sleep(1.0)  # (a state refreshed from alerts shows the check begun)
            sb.wait_for(f"{kind}: {call} seen", lambda w=wanted: states_in(w), sb.WAIT_LIMIT, every)
            out[f"{call}_s"] = time.monotonic() - t0
            out[f"{call}_cpu_s"] = sb.cpu_seconds(client.pid) - cpu0
            time.sleep(2)
        def shown_all(seen: Callable[[dict[str, Any]], bool]) -> bool:
            client.alive()
            torrents = api.info()
            return len(torrents) == n and all(seen(t) for t in torrents)

        for i, (call, form, seen) in enumerate(EDITS):
            cpu0 = sb.cpu_seconds(client.pid)
            t0 = time.monotonic()
            body = f"hashes=all&{form}" if seen is not None else form
            status, _, text = api.http.request("POST", f"/api/v2/torrents/{call}", body.encode(),
                                               {"Content-Type": "application/x-www-form-urlencoded"},
                                               timeout=sb.WAIT_LIMIT)
            if status != 200:
                raise RuntimeError(f"torrents/{call}: {status} {text[:200]!r}")
            out[f"edit{i}_call_s"] = time.monotonic() - t0
            if seen is not None:
                sb.wait_for(f"{kind}: {call} seen", lambda s=seen: shown_all(s), sb.WAIT_LIMIT, 0.2)
            out[f"edit{i}_s"] = time.monotonic() - t0
            out[f"edit{i}_cpu_s"] = sb.cpu_seconds(client.pid) - cpu0
            time.sleep(1)
        cpu0 = sb.cpu_seconds(client.pid)  # (then every torrent removed, its data kept)
        t0 = time.monotonic()
        status, _, text = api.http.request("POST", "/api/v2/torrents/delete", b"hashes=all&deleteFiles=false",
                                           {"Content-Type": "application/x-www-form-urlencoded"},
                                           timeout=sb.WAIT_LIMIT)
        if status != 200:
            raise RuntimeError(f"torrents/delete: {status} {text[:200]!r}")
        out["delete_call_s"] = time.monotonic() - t0
        sb.wait_for(f"{kind}: all removed", lambda: not api.info(), sb.WAIT_LIMIT, 0.2)
        out["delete_s"] = time.monotonic() - t0
        out["delete_cpu_s"] = sb.cpu_seconds(client.pid) - cpu0
    finally:
        client.stop()
        shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--torrents", type=int, default=10000)
    p.add_argument("--clients", default="ours-qb,qbittorrent")
    p.add_argument("--keep", type=Path, help="make the data here and keep it (else a temporary folder)")
    p.add_argument("--edits-only", action="store_true", help="the edits alone: no pause, resume, recheck")
    args = p.parse_args()
    sb.in_loopback_namespace()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bulk-"))
    data, files = sb.make_torrents(root, args.torrents)
    print(f"{len(files)} torrents of {sb.FILE_SIZE // 1024} KiB in {root}; load {sb.load_avg()}", flush=True)
    try:
        for kind in args.clients.split(","):
            r = run(kind.strip(), root, data, files, args.edits_only)
            print(f"== {kind}, N = {len(files)}: seed-mode adds {r['add_s']:.2f} s")
            for call in () if args.edits_only else ("pause", "resume", "recheck"):
                print(f"  {call} all: the call {r[f'{call}_call_s']:.2f} s; all {SHOWN[call]} "
                      f"{r[f'{call}_s']:.2f} s; CPU {r[f'{call}_cpu_s']:.1f} s", flush=True)
            for i, (call, form, seen) in enumerate(EDITS):
                shown = f"; all shown changed {r[f'edit{i}_s']:.2f} s" if seen is not None else ""
                print(f"  {call} {form.split('&')[0]}: the call {r[f'edit{i}_call_s']:.2f} s{shown}; "
                      f"CPU {r[f'edit{i}_cpu_s']:.1f} s", flush=True)
            print(f"  delete all: the call {r['delete_call_s']:.2f} s; all {SHOWN['delete']} "
                  f"{r['delete_s']:.2f} s; CPU {r['delete_cpu_s']:.1f} s", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
