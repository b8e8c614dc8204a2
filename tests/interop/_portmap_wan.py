"""The WAN side of the router tests: a libtorrent peer that knows only the router's external
address and the port it forwards, and downloads the torrent through that mapping.

``python -m tests.interop._portmap_wan TORRENT SAVE_DIR HOST PORT`` prints one JSON line:
``{"done": bool, "seconds": float, "state": str, "error": str}``.
"""

from __future__ import annotations

import json
import sys
import time

import libtorrent as lt

TIMEOUT = 60.0


def main() -> int:
    torrent, save, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ses = lt.session({
        "listen_interfaces": "11.22.33.2:0", "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False, "alert_mask": 0,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,  # the TCP mapping is the one tried
    })
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = save
    handle = ses.add_torrent(params)
    handle.connect_peer((host, port))
    start = dialed = time.monotonic()
    status = handle.status()
    while time.monotonic() - start < TIMEOUT and not status.is_seeding:
        time.sleep(0.2)
        status = handle.status()
        if status.num_peers == 0 and time.monotonic() - dialed > 5:  # at most every 5 s
            handle.connect_peer((host, port))
            dialed = time.monotonic()
    print(json.dumps({"done": bool(status.is_seeding), "seconds": round(time.monotonic() - start, 2),
                      "state": str(status.state), "error": str(status.errc.message())
                      if status.errc.value() else ""}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
