"""The wheel and the sdist that ``python -m build`` makes install on a machine without the source
tree: the wheel goes into a fresh venv and an example runs against a seeder on loopback.

Offline, as the tests run: the build uses the installed setuptools (``--no-isolation``), and the
venv sees the already-installed dependencies — those of the interpreter running the tests (a
``.pth`` naming its site-packages: when the suite itself runs in a venv, the base interpreter's,
which ``--system-site-packages`` gives, may have none of them) — while the wheel is installed
with ``--no-index --no-deps``; the venv's own site-packages comes first, so the example imports
the wheel's copy, not the source tree's (the test checks where it came from; the ``.pth`` files
of the running interpreter's site-packages, an editable install's among them, are not read)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import torrent_engine as te

from ..integration.helpers import loopback_config, make_payload, make_torrent, same_files

REPO = Path(__file__).resolve().parents[2]


def test_the_wheel_installs_in_a_fresh_venv_and_an_example_runs_from_it(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist),
                            str(REPO)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    shutil.rmtree(REPO / "torrent_engine.egg-info", ignore_errors=True)
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")

    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "torrent_engine/py.typed" in names and "torrent_engine/api/static/index.html" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert f"Version: {te.__version__}\n" in metadata and "Classifier: Typing :: Typed\n" in metadata
    assert "License-Expression: MIT\n" in metadata and "Provides-Extra: all\n" in metadata
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "examples/download.py",
            "torrent_engine/py.typed"} <= members

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(own) / "running-interpreter-deps.pth").write_text("".join(f"{p}\n" for p in ours))
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                                "--disable-pip-version-check", "--no-index", "--no-deps", str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr

    # no source tree: the example is copied out, and nothing of the repository is on the path
    away = tmp_path / "elsewhere"
    away.mkdir()
    shutil.copy(REPO / "examples" / "download.py", away)
    path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != REPO]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    where = subprocess.run([str(python), "-c", "import torrent_engine; print(torrent_engine.__file__)"],
                           capture_output=True, text=True, timeout=60, cwd=away, env=env)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(env_dir), where.stdout

    torrent = make_torrent(make_payload(tmp_path / "seed"))
    (away / "x.torrent").write_bytes(torrent.to_bytes())
    with te.BackgroundDownload(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        assert seeder.wait(30)
        port = seeder.status().listen_port
        run = subprocess.run([str(python), "download.py", "x.torrent", "dl", "--local",
                              "--peer", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=120,
                             cwd=away, env=env)
    assert run.returncode == 0, run.stderr
    assert same_files(torrent, tmp_path / "seed", away / "dl") == []
