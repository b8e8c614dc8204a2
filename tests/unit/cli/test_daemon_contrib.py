"""What contrib/ ships for running the daemon as a service, and the daemon's bounded stop."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONTRIB = Path(__file__).resolve().parents[3] / "contrib"


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    program = shutil.which("torrent-engine")
    if analyze is None or program is None:
        pytest.skip("systemd-analyze (or the installed torrent-engine) is not here")
    unit = tmp_path / "torrent-engine.service"
    text = (CONTRIB / "torrent-engine.service").read_text()
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text and "--config /etc/torrent-engine/" in text
    unit.write_text(text.replace("/usr/local/bin/torrent-engine", program))
    out = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not (out.stdout + out.stderr).strip(), out.stdout + out.stderr


def test_the_systemd_unit_gives_the_daemon_room_for_descriptors() -> None:
    """systemd's default soft limit (1024) is what the daemon would otherwise run with."""
    text = (CONTRIB / "torrent-engine.service").read_text()
    values = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("LimitNOFILE=")]
    assert len(values) == 1 and int(values[0]) >= 65536


def test_the_container_file_runs_the_daemon_on_its_volumes() -> None:
    text = (CONTRIB / "Containerfile").read_text()
    assert ('ENTRYPOINT ["torrent-engine", "daemon", "--state-dir", "/state", '
            '"--download-dir", "/downloads"') in text
    assert "STOPSIGNAL SIGTERM" in text and "USER torrent-engine" in text


def test_a_stop_that_hangs_past_the_shutdown_timeout_ends_the_process() -> None:
    code = ("import time\nfrom torrent_engine.cli.daemon import _watchdog\n"
            "_watchdog(0.3)\ntime.sleep(30)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    # (without the watchdog the sleep would end and the process exit 0, saying nothing)
    assert out.returncode == 1 and "not stopped within 0.3 s (--shutdown-timeout)" in out.stderr


def test_data_files_are_fitted_to_what_the_descriptor_limit_leaves() -> None:
    from torrent_engine.cli.daemon import fit_open_files

    assert fit_open_files(256, 65536) == 256
    assert fit_open_files(256, 200) == 29  # (200 less a reserve of 12 + 40 worker threads) / 5
    assert fit_open_files(10, 200) == 10
