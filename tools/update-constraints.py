"""Write ``tools/constraints.txt``: the exact versions of everything ``pip install '.[test]'``
installed in this environment (the project's dependencies and its test tools, each with what it
needs), read from the installed distributions. ``tools/test.sh`` installs with ``-c`` that file,
so a new release of a test tool cannot turn CI red on a fresh machine while it is green on
yours. To move to newer versions: in a fresh virtual environment, ``pip install -e '.[test]'``
(without ``-c``), run this, run ``bash tools/test.sh``, and commit the file with the result.

    python tools/update-constraints.py
"""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

from packaging.requirements import Requirement

HERE = Path(__file__).resolve().parent
ROOT_EXTRAS = ("test", "all", "cli", "daemon")


def key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(name: str, extras: tuple[str, ...], found: dict[str, str]) -> None:
    """Every installed distribution ``name`` (with ``extras``) needs, with its version, into ``found``."""
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:  # (a marker-excluded or missing one: not pinned)
        return
    found[key(name)] = dist.version
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            continue
        if key(req.name) in found and not req.extras:
            continue
        closure(req.name, tuple(req.extras), found)


def main() -> None:
    found: dict[str, str] = {}
    closure("torrent-engine", ROOT_EXTRAS, found)
    found.pop("torrent-engine", None)
    lines = [f"{name}=={version}\n" for name, version in sorted(found.items())]
    header = ("# What the tests install, pinned (tools/test.sh: pip install -c tools/constraints.txt).\n"
              "# Made by tools/update-constraints.py from the environment it ran in; see that file.\n")
    (HERE / "constraints.txt").write_text(header + "".join(lines))
    print(f"{len(lines)} distributions pinned in {HERE / 'constraints.txt'}")


if __name__ == "__main__":
    main()
