"""Installs the test suite's network guard in a Python process a test started.

``tests/conftest.py`` puts this folder first on the ``PYTHONPATH`` that child processes inherit
and names a report file in ``TE_NETGUARD_LOG`` (a process in a network namespace other than the
test process's, ``TE_NETGUARD_NETNS``, is one a test made for it: no guard there); a refused
connect or datagram is appended to that file, and the test that started the process fails at its
teardown. The guard of anyio, of the uTP socket and of LSD's group joins is applied when those
modules are first imported. Another ``sitecustomize`` later on the path is still run.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

TE_NETGUARD = True  # tells conftest.py that this guard runs in its process (it installs its own)
HERE = Path(__file__).resolve().parent


def _load_guard_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_te_netguard", HERE.parent / "netguard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_te_netguard"] = module
    spec.loader.exec_module(module)
    return module


class _PatchAfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Runs a patch on a module right after it is executed."""

    def __init__(self, patches: dict[str, Any]) -> None:
        self.patches = patches
        self.loaders: dict[str, Any] = {}

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name not in self.patches or name in self.loaders:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        self.loaders[name] = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loaders[spec.name].create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        self.loaders[module.__name__].exec_module(module)
        self.patches[module.__name__](module)


def _report(message: str) -> None:
    path = os.environ.get("TE_NETGUARD_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{message} (in process {os.getpid()}: {' '.join(sys.argv)[:120]})\n")


def disable() -> None:
    """Turn this process's child guard off (the test process has its own)."""
    if _guard is not None:
        _guard.on = False


def _own_namespace() -> bool:
    """Whether this process runs in a network namespace other than the test process's (one a
    test made for it: there it may reach what it likes, e.g. LSD's multicast group)."""
    try:
        return os.readlink("/proc/self/ns/net") != os.environ.get("TE_NETGUARD_NETNS", "")
    except OSError:
        return False


_guard = None
if os.environ.get("TE_NETGUARD_LOG") and not _own_namespace():
    _netguard = _load_guard_module()
    _guard = _netguard.Guard(_report)
    _guard.on = True
    sys.addaudithook(_guard.audit)
    sys.meta_path.insert(0, _PatchAfterImport({"anyio._backends._asyncio": _guard.patch_anyio,
                                               "torrent_engine.net.utp.socket": _guard.patch_utp,
                                               "torrent_engine.net.lsd.service": _guard.patch_lsd}))


def _chain() -> None:
    """Run the next ``sitecustomize`` on the path, if there is one (this one shadows it)."""
    rest = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None and Path(str(spec.origin)).resolve().parent != HERE:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_chain()
