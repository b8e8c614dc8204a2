"""The package's public names are the same objects whatever was imported first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "torrent_engine"

_CHECK = """
import importlib, pkgutil, sys, types
import torrent_engine as te
{before}
for info in pkgutil.walk_packages(te.__path__, "torrent_engine."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
bad = []
for name in sorted(m for m in sys.modules if m == "torrent_engine" or m.startswith("torrent_engine.")):
    module = sys.modules[name]
    for public in getattr(module, "__all__", ()):
        if isinstance(getattr(module, public), types.ModuleType):
            bad.append(f"{{name}}.{{public}}")
from torrent_engine.formats.bencode import decode, encode
assert te.bencode is encode and te.bdecode is decode, (te.bencode, te.bdecode)
assert te.bdecode(te.bencode({{b"a": [1, b"x"]}})) == {{b"a": [1, b"x"]}}
print(bad)
"""


def _run(before: str) -> str:
    out = subprocess.run([sys.executable, "-c", _CHECK.format(before=before)], capture_output=True,
                         text=True, cwd=PACKAGE.parent, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_bencode_and_bdecode_stay_the_functions_after_every_submodule_is_imported() -> None:
    # metainfo imports the bencode submodule: it used to rebind te.bencode to the module
    assert _run("te.Torrent") == "[]"


def test_the_public_names_hold_when_the_codec_submodule_is_imported_first() -> None:
    assert _run("import torrent_engine.formats.bencode; import torrent_engine.formats.metainfo") == "[]"
