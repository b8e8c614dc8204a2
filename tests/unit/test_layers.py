"""Arrows point down: the sans-I/O cores import no shell, socket, clock, event loop or session
layer, neither themselves nor through the modules they import, and importing one core loads
nothing more than it needs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "torrent_engine"

# The sans-I/O cores (DESIGN.md section 1): bytes and values in, bytes and values out. A name
# may be a module (``net/peer/wire``) or a package whose every module is a core (``formats``,
# ``policy``: those two folders hold nothing else).
CORES = [
    "formats", "formats/metainfo", "version", "errors", "units",
    # (policy/ipfilter too is pure, but reads addresses with the socket module's inet_pton)
    "policy/picker", "policy/picker_parts", "policy/picker_peers", "policy/picker_endgame",
    "policy/choker", "policy/bep40", "policy/stall", "policy/superseed", "policy/dedup", "policy/bandwidth",
    "jobs/changelog",
    "net/peer/messages", "net/peer/wire", "net/peer/mse", "net/peer/extensions",
    "net/peer/metadata_fetch", "net/peer/buffer", "net/peer/peer_id", "net/peer/layer_fetch",
    "net/tracker/messages", "net/dht/krpc", "net/dht/routing", "net/dht/bep42", "net/dht/bep44",
    "net/dht/tokens",
    "net/portmap/natpmp", "net/portmap/upnp", "net/lsd/codec", "net/lsd/schedule", "net/webseed/mapping",
    "net/webseed/response", "net/httpclient/url", "net/httpclient/reader", "net/httpclient/cookies",
    "net/interface",
    "session/smart_ban", "session/requesting", "session/peer_pool", "net/proxy/settings",
    "net/proxy/handshake", "storage/read_cache", "engine/addtorrent", "engine/dialgate",
]
# What a core may not import: I/O, clocks, event loops, threads, and the layers above it.
FORBIDDEN = {
    "socket", "ssl", "select", "selectors", "asyncio", "anyio", "trio", "uvloop", "threading",
    "subprocess", "time", "datetime", "tempfile", "shutil", "urllib.request", "http",
    "torrent_engine.session", "torrent_engine.engine", "torrent_engine.storage",
    "torrent_engine.net.peer.connection", "torrent_engine.net.tracker.http",
    "torrent_engine.net.httpclient.client",
    "torrent_engine.net.tracker.udp", "torrent_engine.net.tracker.coordinator",
    "torrent_engine.net.tracker.client", "torrent_engine.net.dht.node",
    "torrent_engine.net.dht.transport", "torrent_engine.net.dht.server", "torrent_engine.net.dht.lookup",
    "torrent_engine.events", "torrent_engine.engine.runtime", "torrent_engine.cli", "torrent_engine.api",
    "torrent_engine.jobs", "torrent_engine.net.portmap.service",
}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, runtime_only: bool = False) -> set[str]:
    """Absolute names of everything ``path`` imports (relative imports resolved); with
    ``runtime_only``, not those under ``if TYPE_CHECKING:``, which never run."""
    module = "torrent_engine." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module.rsplit(".", 1)[0]
    names: set[str] = set()
    pending: list[ast.AST] = [ast.parse(path.read_text())]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif runtime_only and isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))
    return names


def _module_file(name: str) -> Path | None:
    """The file of module ``name`` in the package (None: not ours, or not a module)."""
    if not name.startswith("torrent_engine."):
        return None
    parts = name.split(".")[1:]
    for candidate in (PACKAGE.joinpath(*parts).with_suffix(".py"), PACKAGE.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def _forbidden(name: str) -> str | None:
    for banned in FORBIDDEN:
        if name == banned or name.startswith(banned + "."):
            return banned
    return None


def _violations(path: Path) -> list[str]:
    """What the module at ``path`` reaches that a core may not: its own imports (typing-only ones
    too), then, transitively, what the modules of ours it imports import when they run. A parent
    package's ``__init__`` is not followed: the packages offer their names lazily (PEP 562)."""
    bad: list[str] = []
    seen = {path}
    pending = [(path, _imports(path))]
    while pending:
        where, names = pending.pop()
        via = "" if where == path else f" (through {where.relative_to(PACKAGE)})"
        for name in sorted(names):
            if _forbidden(name):
                bad.append(name + via)
            target = _module_file(name)
            if target is not None and target not in seen:
                seen.add(target)
                pending.append((target, _imports(target, runtime_only=True)))
    return bad


def _core_files(core: str) -> list[Path]:
    package = PACKAGE / core
    if package.is_dir():
        return sorted(package.glob("*.py"))
    return [PACKAGE / f"{core}.py"]


@pytest.mark.parametrize("core", CORES)
def test_a_core_reaches_no_shell_clock_or_upper_layer(core: str) -> None:
    files = _core_files(core)
    assert files and all(f.is_file() for f in files), f"{core}: no such module or package"
    for path in files:
        bad = _violations(path)
        assert bad == [], f"{path.relative_to(PACKAGE)} imports {bad}"


def test_the_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    assert _forbidden("anyio.abc") == "anyio" and _forbidden("torrent_engine.session.core")
    assert _forbidden("timeit") is None and _forbidden("torrent_engine.sessionx") is None


def test_the_walk_follows_imports_through_modules_that_are_not_cores() -> None:
    # pex imports nothing forbidden itself, but PeerState's module holds anyio events
    bad = _violations(PACKAGE / "session" / "pex.py")
    assert "torrent_engine.session.peer.PeerState" in bad
    assert "anyio (through session/peer.py)" in bad
    # what only type checking imports is not followed: it never runs
    wire = PACKAGE / "net" / "peer" / "wire.py"
    assert not any("(through net/peer/__init__.py)" in b for b in _violations(wire))
    peer_init = PACKAGE / "net" / "peer" / "__init__.py"
    assert "torrent_engine.net.peer.connection" in _imports(peer_init)
    assert "torrent_engine.net.peer.connection" not in _imports(peer_init, runtime_only=True)


@pytest.mark.parametrize("module", ["torrent_engine.formats.bencode", "torrent_engine.formats.metainfo",
                                    "torrent_engine.formats.magnet", "torrent_engine.net.peer.wire",
                                    "torrent_engine.net.dht.krpc", "torrent_engine.net.tracker.messages",
                                    "torrent_engine.policy.picker"])
def test_importing_a_core_loads_no_event_loop_and_no_session(module: str) -> None:
    code = (f"import sys, {module}\n"
            "bad = [m for m in sys.modules if m in ('anyio', 'asyncio', 'socket') or "
            "m.startswith(('torrent_engine.session', 'torrent_engine.engine'))]\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent, timeout=60)
    assert out.stdout.strip() == "[]", f"import {module} loaded {out.stdout.strip()}"


@pytest.mark.parametrize("module", ["torrent_engine.session.requesting", "torrent_engine.session.smart_ban",
                                    "torrent_engine.session.peer_pool"])
def test_importing_a_pure_part_of_the_session_loads_no_event_loop_and_no_facade(module: str) -> None:
    code = (f"import sys, {module}\n"
            "bad = [m for m in sys.modules if m in ('anyio', 'asyncio', 'socket') or "
            f"(m.startswith('torrent_engine.session.') and m != {module!r}) or "
            "m.startswith('torrent_engine.engine')]\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent, timeout=60)
    assert out.stdout.strip() == "[]", f"import {module} loaded {out.stdout.strip()}"


def test_the_session_package_still_offers_its_public_names() -> None:
    import torrent_engine.session as session

    for name in session.__all__:
        assert getattr(session, name) is not None
    assert session.Session.__module__ == "torrent_engine.session.core"


def test_the_package_root_still_offers_its_public_names() -> None:
    import torrent_engine as te

    for name in te.__all__:
        assert getattr(te, name) is not None
    from torrent_engine import Session, TorrentManager

    assert Session.__name__ == "Session" and TorrentManager.__name__ == "TorrentManager"
    with pytest.raises(AttributeError):
        te.NoSuchThing  # noqa: B018


def _runtime_cycles(runtime_only: bool = True, under: str = "") -> list[list[str]]:
    """Groups of the package's modules that import each other at run time (function-level
    imports included; TYPE_CHECKING imports and package ``__init__`` re-exports are not); with
    ``runtime_only`` False, type-only imports count too. ``under``: only the modules of that
    sub-package (e.g. ``session``) and the imports between them."""
    files: dict[str, Path] = {}
    for path in (PACKAGE / under).rglob("*.py"):
        if path.name != "__init__.py":
            files["torrent_engine." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)] = path
    graph = {name: {dep for imp in _imports(path, runtime_only=runtime_only)
                    for dep in (imp, imp.rsplit(".", 1)[0]) if dep in files and dep != name}
             for name, path in files.items()}
    # Tarjan's strongly connected components, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return cycles


def test_no_two_modules_import_each_other_at_run_time() -> None:
    assert _runtime_cycles() == []



def test_no_import_cycle_within_the_session_package_type_only_imports_too() -> None:
    # (issue 47) a part that names a sibling's class for its type ties the package into one
    # circle all the same (it was one of 18 modules): a part says what it needs of another as a
    # Protocol instead (``roles``, ``context``, or its own ``...Host``)
    assert _runtime_cycles(runtime_only=False, under="session") == []


# The session's parts (each owns one thing; only the facade, ``core``, imports them, to build
# them) and the small modules they share (the context, the phases, the parts' Protocols, values
# and pure helpers). A new module of the package is one or the other.
SESSION_PARTS = {"announce", "checking", "connector", "file_watch", "holepunch", "layers", "lifecycle",
                 "metadata", "peer_handler", "pieces", "rates", "reader", "stall_watch", "tick", "upload",
                 "webseeds"}
SESSION_SHARED = {"context", "phases", "roles", "state_table", "status", "extension_ids", "peer", "peer_io",
                  "peer_pool", "requesting", "smart_ban", "pex", "setup", "superseed"}


def test_the_session_parts_import_the_context_not_each_other() -> None:
    session = PACKAGE / "session"
    modules = {path.stem for path in session.glob("*.py")} - {"__init__", "core"}
    assert modules == SESSION_PARTS | SESSION_SHARED, "a session module is neither a part nor shared"
    for name in sorted(modules):
        imported = {imp.split(".")[2] for imp in _imports(session / f"{name}.py")
                    if imp.startswith("torrent_engine.session.") and imp.count(".") >= 2}
        siblings = imported & SESSION_PARTS
        assert siblings == set(), f"session/{name}.py imports the parts {sorted(siblings)}"


# (issue 47) jobs/ in layers, lowest first: the base (the job model and the values every part
# reads: records, the table, the change log, the pure checks and views), then the sub-packages
# in this order (each imports the base and the packages before it only), then the service layer
# (every other top-level module: the facade, the machinery, the parts that apply a request) on
# top. What a part needs of the service layer above it is a Protocol in its own package (e.g.
# ``RoundsHost``); type-only imports follow the order too.
JOBS_BASE = {"model", "store", "table", "changelog", "snapshot", "validate", "trackers", "webseeds",
             "exclusions"}
JOBS_ORDER = ["tuning", "queueing", "disk", "organising", "intake"]


def _jobs_layer(module: str) -> int | None:
    """The rank of a module of ``torrent_engine.jobs`` (0: the base, then the sub-packages,
    ``len(JOBS_ORDER) + 1``: the service layer); None: not a module of jobs/."""
    parts = module.split(".")
    if parts[:2] != ["torrent_engine", "jobs"] or len(parts) < 3:
        return None
    if parts[2] in JOBS_ORDER:
        return 1 + JOBS_ORDER.index(parts[2])
    return 0 if parts[2] in JOBS_BASE else len(JOBS_ORDER) + 1


def _jobs_modules() -> dict[str, Path]:
    jobs = PACKAGE / "jobs"
    return {"torrent_engine." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts): path
            for path in sorted(jobs.rglob("*.py")) if path.parent != jobs or path.name != "__init__.py"}


def _jobs_upward(modules: dict[str, Path]) -> list[str]:
    """Every import of a jobs/ module, type-only ones too, that reaches a layer above its own."""
    bad = []
    for name, path in modules.items():
        layer = _jobs_layer(name.removesuffix(".__init__"))
        assert layer is not None
        for imp in sorted(_imports(path)):
            target = _jobs_layer(imp)
            if target is not None and target > layer and (imp in modules or imp.rsplit(".", 1)[0] in modules):
                bad.append(f"{name} imports {imp}")
    return bad


def test_the_jobs_sub_packages_and_layers_import_down_only() -> None:
    bad = _jobs_upward(_jobs_modules())
    assert bad == [], "\n".join(bad)


def test_every_jobs_module_has_a_declared_layer() -> None:
    jobs = PACKAGE / "jobs"
    packages = {p.name for p in jobs.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(JOBS_ORDER), "a jobs/ sub-package is not in JOBS_ORDER"
    top = {p.stem for p in jobs.glob("*.py")} - {"__init__"}
    assert JOBS_BASE <= top, f"no such base module: {sorted(JOBS_BASE - top)}"
    for name in sorted(packages):
        doc = ast.get_docstring(ast.parse((jobs / name / "__init__.py").read_text()))
        assert doc and "\n" not in doc.strip(), f"jobs/{name}/__init__.py lacks its one-line docstring"


def test_the_jobs_layer_check_catches_an_upward_import(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _jobs_layer("torrent_engine.jobs.model") == 0
    assert _jobs_layer("torrent_engine.jobs.tuning.settings") == 1
    assert _jobs_layer("torrent_engine.jobs.intake.adding.JobAdder") == len(JOBS_ORDER)
    assert _jobs_layer("torrent_engine.jobs.lifecycle.JobLifecycle") == len(JOBS_ORDER) + 1
    assert _jobs_layer("torrent_engine.session.core") is None
    modules = _jobs_modules()
    # the sub-packages in the other order: the add (intake) reaches the queue's rounds above it
    monkeypatch.setattr(sys.modules[__name__], "JOBS_ORDER", list(reversed(JOBS_ORDER)))
    assert "torrent_engine.jobs.intake.adding imports torrent_engine.jobs.queueing.rounds.QueueRounds" \
        in _jobs_upward(modules)
    monkeypatch.undo()
    # the machinery taken for the base: it reaches every sub-package; and a type-only import
    # counts (marks.py names JobLifecycle for its type only)
    monkeypatch.setattr(sys.modules[__name__], "JOBS_BASE", JOBS_BASE | {"marks"})
    assert "torrent_engine.jobs.marks imports torrent_engine.jobs.lifecycle" in _jobs_upward(modules)
