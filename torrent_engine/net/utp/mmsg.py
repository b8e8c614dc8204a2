"""Many datagrams per system call: ``recvmmsg(2)`` through ctypes (Linux), into buffers read in place.

A uTP download arrives as one ~1 450-byte datagram per packet. Read one by one with
``socket.recvfrom``, each costs a system call, a 64 KiB bytes object cut down to size and an
address tuple with a new host string. ``MultiReceiver.receive`` reads up to ``slots`` datagrams
in one call into fixed slots of one buffer; the caller looks at each in place (``view``, the
sender's raw address ``name_key``) and makes Python objects only for what it keeps.

Slot ``i`` starts at ``i * STRIDE``: the sender's socket address (``NAME_SIZE`` bytes, zero
padded), then the datagram (up to ``MAX_DATAGRAM`` bytes, so nothing is cut short).

With ``coalesce`` the socket may hand over a run of datagrams from one sender in one slot
(Linux ``UDP_GRO``): those a peer sent in one segmented send (``gso.py``), which then never
get cut apart in the kernel. ``segment_size(i)`` says how: slot ``i`` holds datagrams of that
many bytes laid end to end, the last possibly shorter (0: one datagram).
"""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import mmap
import socket
import struct
import sys
from typing import Any  # Any: a ctypes function; socket addresses of any family

NAME_SIZE = 32  # room for a sockaddr_in6 (28 bytes); the key is read as four 64-bit words
MAX_DATAGRAM = 65536
STRIDE = NAME_SIZE + MAX_DATAGRAM
_MSG_DONTWAIT = 0x40  # Linux
_NAME_KEY = struct.Struct("=4Q")
UDP_GRO = getattr(socket, "UDP_GRO", 104)  # Linux >= 5.0 (netinet/udp.h)
SOL_UDP = getattr(socket, "SOL_UDP", 17)
CONTROL_SIZE = 32  # room for one cmsghdr (16 bytes) and its int: the UDP_GRO segment size
_CMSG = struct.Struct("=QiiI")  # cmsg_len, cmsg_level, cmsg_type, the segment size
_CONTROLLEN = 5  # msg_controllen's index in an _Mmsghdr read as 64-bit words


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_Iovec)), ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint32)]


def _libc_recvmmsg() -> Any:  # Any: a ctypes foreign function, its type made at run time
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.recvmmsg
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    fn.restype = ctypes.c_int
    return fn


_RECVMMSG = _libc_recvmmsg()


def available() -> bool:
    """Whether this platform has ``recvmmsg`` (Linux)."""
    return _RECVMMSG is not None


class MultiReceiver:
    """Reads batches of datagrams from one socket with ``recvmmsg`` into reusable slots.

    ``receive(fd)`` returns how many datagrams it read (0 when none wait) and raises ``OSError``
    for an error the socket reports (an ICMP error with ``IP_RECVERR``). The slots stay valid
    until the next ``receive``: whatever is kept must be copied out first."""

    def __init__(self, family: int, slots: int, *, coalesce: bool = False) -> None:
        if _RECVMMSG is None:
            raise OSError("recvmmsg is not available on this platform")
        self.family = family
        self.slots = slots
        self.coalesce = coalesce
        self._control = (ctypes.c_char * (CONTROL_SIZE * slots if coalesce else 1))()
        # anonymous memory: pages are only touched where datagrams land (a slot's first few KB)
        self.memory = mmap.mmap(-1, slots * STRIDE)  # (slicing it copies: cheap for a few bytes)
        self.buffer = memoryview(self.memory)  # (slicing it does not copy)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self.memory))
        self._iovecs = (_Iovec * slots)()
        self._hdrs = (_Mmsghdr * slots)()
        for i in range(slots):
            start = base + i * STRIDE
            self._iovecs[i].iov_base = start + NAME_SIZE
            self._iovecs[i].iov_len = MAX_DATAGRAM
            hdr = self._hdrs[i].msg_hdr
            hdr.msg_name = start
            # The kernel writes the sender's address and sets this to its length, which for one
            # socket is always its family's (16 for AF_INET; 28 for AF_INET6, IPv4 peers mapped):
            # it never shrinks below what the next datagram needs, so it is set once.
            hdr.msg_namelen = NAME_SIZE
            hdr.msg_iov = ctypes.pointer(self._iovecs[i])
            hdr.msg_iovlen = 1
            if coalesce:
                hdr.msg_control = ctypes.addressof(self._control) + i * CONTROL_SIZE
        words = memoryview(self._hdrs).cast("B").cast("I")
        self._lengths = words
        self._len_stride = ctypes.sizeof(_Mmsghdr) // 4
        self._len_offset = _Mmsghdr.msg_len.offset // 4
        self._hdrs_address = ctypes.addressof(self._hdrs)
        # the kernel sets each msg_controllen to what it wrote: reset before every call
        self._words = memoryview(self._hdrs).cast("B").cast("Q")
        self._q_stride = ctypes.sizeof(_Mmsghdr) // 8
        self._full = memoryview(array.array("Q", [CONTROL_SIZE] * slots))
        self._control_view = memoryview(self._control).cast("B")

    def receive(self, fd: int) -> int:
        """Read up to ``slots`` waiting datagrams without blocking; how many were read."""
        if self.coalesce:
            self._words[_CONTROLLEN::self._q_stride] = self._full
        n = _RECVMMSG(fd, self._hdrs_address, self.slots, _MSG_DONTWAIT, None)
        if n >= 0:
            return int(n)
        err = ctypes.get_errno()
        if err in (11, 4):  # EAGAIN / EWOULDBLOCK, EINTR
            return 0
        raise OSError(err, "recvmmsg failed")

    def length(self, i: int) -> int:
        """The size of datagram ``i`` of the last ``receive``."""
        return int(self._lengths[i * self._len_stride + self._len_offset])

    def lengths(self, count: int) -> list[int]:
        """The sizes of the first ``count`` datagrams of the last ``receive``."""
        return list(self._lengths[self._len_offset:count * self._len_stride:self._len_stride])

    def coalesced(self, count: int) -> bool:
        """Whether any of the first ``count`` slots of the last ``receive`` holds several datagrams."""
        return self.coalesce and any(self._words[_CONTROLLEN:count * self._q_stride:self._q_stride])

    def segment_size(self, i: int) -> int:
        """The size of the datagrams laid end to end in slot ``i`` (0: the slot holds one)."""
        if not self._words[i * self._q_stride + _CONTROLLEN]:
            return 0
        _, level, kind, size = _CMSG.unpack_from(self._control_view, i * CONTROL_SIZE)
        return size if level == SOL_UDP and kind == UDP_GRO else 0

    def name_key(self, i: int) -> tuple[int, int, int, int]:
        """The sender of datagram ``i`` as four integers (its raw socket address, padded)."""
        return _NAME_KEY.unpack_from(self.buffer, i * STRIDE)

    def address(self, i: int) -> tuple[str, int] | tuple[str, int, int, int]:
        """The sender of datagram ``i`` as ``recvfrom`` gives it: ``(host, port)``, or for an
        IPv6 socket ``(host, port, flowinfo, scope_id)``."""
        name = self.buffer[i * STRIDE:i * STRIDE + NAME_SIZE]
        port = int.from_bytes(name[2:4], "big")
        if self.family == socket.AF_INET6:
            return (socket.inet_ntop(socket.AF_INET6, bytes(name[8:24])), port,
                    int.from_bytes(name[4:8], "big"), int.from_bytes(name[24:28], sys.byteorder))
        return (socket.inet_ntop(socket.AF_INET, bytes(name[4:8])), port)

    def datagram(self, i: int) -> memoryview:
        """Datagram ``i`` of the last ``receive``, in place (valid until the next ``receive``)."""
        start = i * STRIDE + NAME_SIZE
        return self.buffer[start:start + self.length(i)]

    def close(self) -> None:
        """Release the buffers (no ``receive`` afterwards). A view still held elsewhere keeps
        the memory alive until it goes."""
        for view in (self._lengths, self._words, self._control_view, self.buffer):
            try:
                view.release()
            except BufferError:
                pass
