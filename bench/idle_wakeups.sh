#!/bin/bash
# An empty daemon's idle cost, for one or more trees side by side: each tree's daemon is started
# (loopback, no DHT, LSD or port mapping), its event loop's wake-ups are counted for 10 s
# (strace, epoll waits), then its CPU ticks (10 ms each, /proc/PID/stat) over SECONDS.
#     bench/idle_wakeups.sh [SECONDS] TREE...      e.g. bench/idle_wakeups.sh 100 . /tmp/before
set -euo pipefail
seconds=${1:-100}; shift
trees=("$@"); [ ${#trees[@]} -gt 0 ] || trees=(.)
pids=(); work=$(mktemp -d)
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
for i in "${!trees[@]}"; do
  tree=$(cd "${trees[$i]}" && pwd)
  (cd "$tree" && PYTHONPATH=$tree exec python3 -m torrent_engine daemon --state-dir "$work/$i/state" \
      --download-dir "$work/$i/dl" --api-port 0 --api-token tok --listen-host 127.0.0.1 \
      --listen-port 0 --no-dht --no-lsd --no-port-mapping -q >/dev/null 2>&1) &
  pids+=($!)
done
sleep 10
start=()
for i in "${!trees[@]}"; do
  start+=("$(awk '{print $14+$15}' "/proc/${pids[$i]}/stat")")
  wakes=$(timeout 10 strace -f -e trace=epoll_pwait,epoll_wait -p "${pids[$i]}" 2>&1 | grep -c epoll || true)
  echo "${trees[$i]}: $wakes event-loop wake-ups in 10 s"
done
sleep "$seconds"
for i in "${!trees[@]}"; do
  now=$(awk '{print $14+$15}' "/proc/${pids[$i]}/stat")
  echo "${trees[$i]}: $((now - start[i])) ticks of 10 ms of CPU in about $((seconds + 10)) s"
done
