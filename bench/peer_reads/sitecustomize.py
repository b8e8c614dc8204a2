"""The peers' reads, the dials and the dialers' rounds in a daemon a benchmark starts: with this
folder first on ``PYTHONPATH``, every ``torrent-engine daemon`` process started counts each read
of a TCP peer's socket (``PeerProtocol.buffer_updated``: how many, and their bytes), each dial of
a peer (``Connector._dial``) and each round of the torrents' dialers (``Connector.dial_some``),
and writes them at its exit to ``PEER_READS_LOG`` (default ``peer_reads.log`` in the working
folder), as one Python dict.

    PYTHONPATH=$PWD/bench/peer_reads:$PWD python bench/bench_many_downloads.py \
        --torrents 1000 --phases many

Other processes load it and do nothing.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Any

if "daemon" in sys.argv:
    from torrent_engine.net.peer import protocol
    from torrent_engine.session import connector

    counts = {"reads": 0, "bytes": 0, "dials": 0, "rounds": 0}
    _read = protocol.PeerProtocol.buffer_updated
    _dial = connector.Connector._dial
    _round = connector.Connector.dial_some

    def buffer_updated(self: protocol.PeerProtocol, nbytes: int) -> None:
        counts["reads"] += 1
        counts["bytes"] += nbytes
        _read(self, nbytes)

    async def dial(self: connector.Connector, *args: Any, **kwargs: Any) -> None:
        counts["dials"] += 1
        await _dial(self, *args, **kwargs)

    def dial_some(self: connector.Connector) -> None:
        counts["rounds"] += 1
        _round(self)

    protocol.PeerProtocol.buffer_updated = buffer_updated  # type: ignore[method-assign]
    connector.Connector._dial = dial  # type: ignore[method-assign]
    connector.Connector.dial_some = dial_some  # type: ignore[method-assign]

    def _write() -> None:
        with open(os.path.abspath(os.environ.get("PEER_READS_LOG", "peer_reads.log")), "w") as f:
            f.write(f"{counts}\n")

    atexit.register(_write)
