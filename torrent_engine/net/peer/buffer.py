"""Receive buffer for the peer wire: bytes in, contiguous memoryviews out, with few copies.

Received chunks are kept as read-only memoryviews over immutable ``bytes``. Taking a message
that lies inside one chunk is a slice (no copy); only a message that straddles chunks is
joined, and only that message's bytes are copied, never the rest of the chunk.
Because every view refers to immutable bytes, a view handed out stays valid forever.
"""

from __future__ import annotations

from collections import deque

__all__ = ["ReceiveBuffer"]


class ReceiveBuffer:
    """A FIFO of received bytes."""

    __slots__ = ("_chunks", "_len")

    def __init__(self) -> None:
        self._chunks: deque[memoryview] = deque()
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes. ``bytes`` are kept without copying; other buffers are copied
        once, because the caller may reuse them."""
        if not data:
            return
        if type(data) is not bytes:
            data = bytes(data)
        self._chunks.append(memoryview(data))
        self._len += len(data)

    def head(self) -> memoryview:
        """The first chunk (possibly shorter than the whole buffer); empty when nothing is buffered."""
        return self._chunks[0] if self._chunks else memoryview(b"")

    def peek(self, n: int) -> memoryview:
        """The first ``n`` bytes without consuming them. Requires ``n <= len(self)``."""
        if n > self._len:
            raise ValueError(f"peek({n}) with only {self._len} bytes buffered")
        if n <= 0:
            return memoryview(b"")
        head = self._chunks[0]
        if len(head) >= n:
            return head[:n]
        return memoryview(self._gather(n, consume=False))

    def take(self, n: int) -> memoryview:
        """Remove and return the first ``n`` bytes as one contiguous view. Requires ``n <= len(self)``."""
        if n > self._len:
            raise ValueError(f"take({n}) with only {self._len} bytes buffered")
        if n <= 0:
            return memoryview(b"")
        self._len -= n
        chunks = self._chunks
        head = chunks[0]
        size = len(head)
        if size > n:
            chunks[0] = head[n:]
            return head[:n]
        if size == n:
            chunks.popleft()
            return head
        return memoryview(self._gather(n, consume=True))

    def _gather(self, n: int, *, consume: bool) -> bytes:
        parts: list[memoryview] = []
        need = n
        chunks = self._chunks
        i = 0
        while need:
            chunk = chunks[0] if consume else chunks[i]
            if len(chunk) <= need:
                parts.append(chunk)
                need -= len(chunk)
                if consume:
                    chunks.popleft()
                else:
                    i += 1
            else:
                parts.append(chunk[:need])
                if consume:
                    chunks[0] = chunk[need:]
                need = 0
        return b"".join(parts)

    def take_all(self) -> bytes:
        """Everything buffered, as bytes (used when handing the stream over, e.g. after MSE)."""
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._len = 0
        return data
