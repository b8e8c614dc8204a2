"""A stand-in for a connected ``PeerLink`` that sends nothing and never receives: what a running
session's ``PeerHandler.serve`` needs of a link, for tests of whom it keeps and dials."""

from __future__ import annotations

from typing import Any

import anyio

from torrent_engine.net.peer.connection import hand_over


class IdleLink:
    peer_id_client = ""
    transport = "tcp"
    fast = extension = encrypted = False

    def __init__(self, peer_id: bytes) -> None:
        self.peer_id = peer_id
        self.closed = False
        self.max_buffer: int | None = None  # the receive-buffer ceiling the session gave it

    def set_metadata(self, num_pieces: int, piece_size: object) -> None:
        pass

    def set_max_buffer(self, size: int) -> None:
        self.max_buffer = size

    async def send_many(self, msgs: object) -> None:
        pass

    async def receive(self) -> object:
        await anyio.sleep_forever()

    async def run(self, fast: Any, slow: Any) -> None:
        """What ``PeerConnection.run`` does, over ``receive``: each message as one read's batch."""
        while True:
            await hand_over([await self.receive()], fast, slow)  # type: ignore[list-item]

    async def aclose(self) -> None:
        self.closed = True
