#!/usr/bin/env bash
# Install everything the tests need, then run the checks: ruff, mypy --strict, the documentation
# site (Sphinx, warnings as errors, offline), pytest.
# The README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TE_IN_NETNS:-}" ]; then  # installing needs the network; the re-run inside the namespace skips it
PEERS="aria2 transmission-cli transmission-daemon opentracker mktorrent qbittorrent-nox rtorrent nginx chromium chromium-driver tmux ffmpeg prometheus miniupnpd nftables dante-server tinyproxy"
missing=""
for prog in aria2c transmission-cli transmission-remote transmission-daemon opentracker mktorrent qbittorrent-nox rtorrent nginx chromium chromedriver tmux ffmpeg ffprobe promtool miniupnpd nft danted tinyproxy; do
  command -v "$prog" >/dev/null 2>&1 || missing="$missing $prog"
done
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || command -v sudo >/dev/null 2>&1; }; then
    echo "installing real peers for the interop tests:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $PEERS >/dev/null
  elif [ "${CI:-}" = "true" ]; then
    echo "CI: cannot install$missing (no apt-get or no root)" >&2
    exit 1
  else
    echo "note:$missing not installed; their interop tests will be skipped" >&2
  fi
fi

# the test tools at the versions of tools/constraints.txt (tools/update-constraints.py moves them on)
python3 -m pip install -q --disable-pip-version-check -c tools/constraints.txt -e '.[test]'

# The checks run in a network namespace that has only loopback where the machine allows it
# (root and unshare): then no test can reach another host, whatever a default says.
if [ -z "${TE_IN_NETNS:-}" ] && [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1 \
    && unshare -n true 2>/dev/null; then
  echo "running the checks in a network namespace with only loopback"
  export TE_IN_NETNS=1
  exec unshare -n bash -c 'ip link set lo up && exec bash tools/test.sh "$@"' bash "$@"
fi
fi

python3 -m ruff check .
python3 -m mypy --strict
# The site: docs/ and the API reference from the docstrings; a warning (a public name without a
# docstring or not in the reference, a reference or link that leads nowhere) fails the run.
python3 -m sphinx -E -W --keep-going -n -q -b html docs build/docs
# Most tests wait (on a peer, a time-out, a real client or the browser) far more than they compute:
# one process used a third of a core and took 29 minutes on two cores; two workers used one core
# of two. So pytest-xdist runs them in one worker more than the machine has cores (at least 3, at
# most 5; TE_TEST_WORKERS=0 runs them in this process), a worker taking the next test as it frees
# (worksteal: the long ones do not queue behind each other). See bench/RESULTS.md for the times.
cores="$(nproc)"
workers="${TE_TEST_WORKERS:-$(( cores < 2 ? 3 : cores > 4 ? 5 : cores + 1 ))}"
# (the slowest tests named at the end: the run is kept under 30 minutes)
python3 -m pytest -q -p no:cacheprovider --durations=30 --numprocesses "$workers" --dist worksteal "$@"
