"""Sans-I/O Message Stream Encryption / Protocol Encryption (MSE/PE), initiator and responder.

The handshake (Vuze/libtorrent "MSE" spec):

1. A->B: Ya, PadA
2. B->A: Yb, PadB
3. A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
         ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
4. B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
5. A->B: ENCRYPT2(payload)

S is the Diffie-Hellman secret, SKEY the torrent's info-hash, HASH is SHA-1, ENCRYPT is RC4
keyed with HASH('keyA'|'keyB', S, SKEY) after discarding 1024 bytes of keystream; ENCRYPT2 is
that same RC4 stream or plaintext, as crypto_select says. Both classes take received bytes
(``receive_data``) and return the bytes to send; randomness (private key, padding) is handed in.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher

from ...errors import EncryptionError

try:  # GMP's modular power: 8x CPython's for MSE's 768-bit numbers (bench/bench_mse_keys.py)
    from gmpy2 import mpz as _mpz
    from gmpy2 import powmod as _gmp_powmod
except ImportError:  # (an interpreter without its wheel: CPython's arithmetic below)
    _mpz = _gmp_powmod = None

__all__ = [
    "CRYPTO_PLAINTEXT",
    "CRYPTO_RC4",
    "DH_PRIME",
    "MseInitiator",
    "MseResponder",
    "MseResult",
    "StreamCipher",
    "rc4",
    "skey_hash",
]

DH_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563",
    16,
)  # MSE: the 768-bit prime P
DH_GENERATOR = 2  # MSE: G
KEY_LENGTH = 96  # MSE: Ya, Yb and S are 768 bits, big-endian
PRIVATE_KEY_BYTES = 20  # MSE: Xa/Xb of 160 bits
MAX_PAD = 512  # MSE: PadA..PadD are 0..512 bytes
VC = bytes(8)  # MSE: verification constant, 8 zero bytes
CRYPTO_PLAINTEXT = 0x01  # MSE crypto_provide/select bit: plaintext after the handshake
CRYPTO_RC4 = 0x02  # MSE crypto_provide/select bit: RC4 for the whole stream
RC4_DISCARD = 1024  # MSE: discard the first 1024 bytes of RC4 keystream
MAX_INITIAL_PAYLOAD = 65535  # MSE: len(IA) is 2 bytes


class StreamCipher(Protocol):
    """An RC4 stream (the MSE cipher)."""

    def update(self, data: bytes) -> bytes:
        """Encrypt or decrypt ``data``, advancing the stream."""


def _sha1(*parts: bytes) -> bytes:
    return hashlib.sha1(b"".join(parts)).digest()


def rc4(key: bytes) -> StreamCipher:
    """An RC4 keystream (encrypt == decrypt) with the first 1024 bytes discarded (MSE)."""
    cipher = Cipher(ARC4(key), mode=None).encryptor()
    cipher.update(bytes(RC4_DISCARD))
    return cipher


def skey_hash(info_hash: bytes) -> bytes:
    """HASH('req2', SKEY): what a responder compares against to find the torrent."""
    return _sha1(b"req2", info_hash)


def _int_bytes(value: int) -> bytes:
    return value.to_bytes(KEY_LENGTH, "big")


_WINDOW = 4  # bits of the private key a step of ``_g_pow`` takes


@functools.cache
def _g_powers() -> tuple[tuple[int, ...], ...]:
    """G^(v * 2^(4w)) mod P for every 4-bit v and window w of a private key (640 numbers,
    about 85 KB, made once in about a millisecond)."""
    rows: list[tuple[int, ...]] = []
    base = DH_GENERATOR
    for _ in range((PRIVATE_KEY_BYTES * 8 + _WINDOW - 1) // _WINDOW):
        row, acc = [1], 1
        for _v in range(1, 1 << _WINDOW):
            acc = acc * base % DH_PRIME
            row.append(acc)
        rows.append(tuple(row))
        base = acc * base % DH_PRIME  # (G^(2^4w) for the next window)
    return tuple(rows)


def _g_pow_table(private: int) -> int:
    """G^private mod P, a public key, without GMP: 40 products with the powers of G made once,
    where ``pow`` squares 160 times (51 against 194 microseconds here: every connection pays it).
    ``private`` has at most ``PRIVATE_KEY_BYTES`` bytes (``_Side`` draws that many)."""
    result, mask = 1, (1 << _WINDOW) - 1
    for row in _g_powers():
        digit = private & mask
        if digit:
            result = result * row[digit] % DH_PRIME
        private >>= _WINDOW
    return result


def _power_builtin(base: int, exponent: int) -> int:
    return pow(base, exponent, DH_PRIME)


if _gmp_powmod is not None:
    _PRIME = _mpz(DH_PRIME)

    def _power(base: int, exponent: int) -> int:
        """base^exponent mod P (GMP: 32 against 258 microseconds here for a shared secret)."""
        return int(_gmp_powmod(base, exponent, _PRIME))

    def _g_pow(private: int) -> int:
        """G^private mod P, a public key (GMP: 26 microseconds here, the table's 52)."""
        return int(_gmp_powmod(DH_GENERATOR, private, _PRIME))
else:
    _power = _power_builtin
    _g_pow = _g_pow_table


@dataclass
class MseResult:
    """Outcome of a completed MSE handshake.

    ``encrypt``/``decrypt`` are the RC4 streams when RC4 was selected, else ``None`` (plaintext).
    ``initial_payload`` is the responder's decrypted IA (usually the BT handshake); ``remaining``
    holds payload bytes received after the handshake, already decrypted."""

    info_hash: bytes
    crypto: int
    encrypt: StreamCipher | None
    decrypt: StreamCipher | None
    initial_payload: bytes
    remaining: bytes


class _Side:
    def __init__(self, randbytes: Callable[[int], bytes], pad_max: int) -> None:
        if not 0 <= pad_max <= MAX_PAD:
            raise ValueError("pad_max must be within 0..512")
        self._randbytes = randbytes
        self._pad_max = pad_max
        self._private = int.from_bytes(randbytes(PRIVATE_KEY_BYTES), "big") or 1
        self.public_key = _int_bytes(_g_pow(self._private))
        self._buf = bytearray()
        self.result: MseResult | None = None

    @property
    def done(self) -> bool:
        return self.result is not None

    def _pad(self) -> bytes:
        n = int.from_bytes(self._randbytes(2), "big") % (self._pad_max + 1)
        return self._randbytes(n)

    def _secret(self, other: bytes) -> bytes:
        y = int.from_bytes(other, "big")
        if not 1 < y < DH_PRIME - 1:
            raise EncryptionError("invalid Diffie-Hellman public key")
        return _int_bytes(_power(y, self._private))


class MseInitiator(_Side):
    """Side A. ``start()`` gives Ya+PadA; feed what B sends to ``receive_data`` and send what it
    returns, until ``done``; then ``result`` tells the method and holds the ciphers."""

    def __init__(
        self,
        info_hash: bytes,
        *,
        crypto_provide: int,
        initial_payload: bytes = b"",
        randbytes: Callable[[int], bytes],
        pad_max: int = MAX_PAD,
    ) -> None:
        if len(info_hash) != 20:
            raise ValueError("info_hash must be 20 bytes")
        if not crypto_provide & (CRYPTO_PLAINTEXT | CRYPTO_RC4):
            raise ValueError("crypto_provide must offer plaintext and/or RC4")
        if len(initial_payload) > MAX_INITIAL_PAYLOAD:
            raise ValueError("initial payload too long")
        super().__init__(randbytes, pad_max)
        self._info_hash = info_hash
        self._provide = crypto_provide
        self._ia = initial_payload
        self._started = False
        self._step = "yb"
        self._encrypt: StreamCipher | None = None
        self._decrypt: StreamCipher | None = None
        self._vc_cipher = b""
        self._select = 0

    def start(self) -> bytes:
        """Ya, PadA: the first bytes to send."""
        if self._started:
            raise RuntimeError("start() called twice")
        self._started = True
        return self.public_key + self._pad()

    def receive_data(self, data: bytes) -> bytes:
        """Consume bytes from B; returns bytes to send to B (possibly empty)."""
        if self.result is not None:
            raise RuntimeError("the handshake is already complete")
        self._buf += data
        out = b""
        if self._step == "yb":
            if len(self._buf) < KEY_LENGTH:
                return b""
            secret = self._secret(bytes(self._buf[:KEY_LENGTH]))
            del self._buf[:KEY_LENGTH]
            self._encrypt = rc4(_sha1(b"keyA", secret, self._info_hash))
            self._decrypt = rc4(_sha1(b"keyB", secret, self._info_hash))
            self._vc_cipher = self._decrypt.update(VC)
            pad_c = b""  # MSE: PadC is zero-length in current practice
            plain = (
                VC
                + self._provide.to_bytes(4, "big")
                + len(pad_c).to_bytes(2, "big")
                + pad_c
                + len(self._ia).to_bytes(2, "big")
            )
            req2 = bytes(
                a ^ b for a, b in zip(skey_hash(self._info_hash), _sha1(b"req3", secret), strict=True)
            )
            out = _sha1(b"req1", secret) + req2 + self._encrypt.update(plain) + self._encrypt.update(self._ia)
            self._step = "vc"
        if self._step == "vc":
            # Find ENCRYPT(VC) within PadB: at most 512 bytes after Yb.
            pos = self._buf.find(self._vc_cipher)
            if pos < 0:
                if len(self._buf) >= MAX_PAD + len(VC):
                    raise EncryptionError("no verification constant from the peer (not MSE, or a wrong key)")
                return out
            if pos > MAX_PAD:
                raise EncryptionError("PadB longer than 512 bytes")
            del self._buf[: pos + len(VC)]
            self._step = "select"
        if self._step == "select":
            if len(self._buf) < 6:
                return out
            assert self._decrypt is not None
            head = self._decrypt.update(bytes(self._buf[:6]))
            select = int.from_bytes(head[:4], "big")
            pad_len = int.from_bytes(head[4:6], "big")
            if select not in (CRYPTO_PLAINTEXT, CRYPTO_RC4) or not select & self._provide:
                raise EncryptionError(
                    f"peer selected crypto method {select:#x}, we offered {self._provide:#x}"
                )
            if pad_len > MAX_PAD:
                raise EncryptionError("PadD longer than 512 bytes")
            del self._buf[:6]
            self._select = select
            self._pad_d = pad_len
            self._step = "padd"
        if self._step == "padd":
            if len(self._buf) < self._pad_d:
                return out
            assert self._decrypt is not None and self._encrypt is not None
            self._decrypt.update(bytes(self._buf[: self._pad_d]))
            rest = bytes(self._buf[self._pad_d :])
            self._buf.clear()
            if self._select == CRYPTO_RC4:
                self.result = MseResult(
                    self._info_hash, CRYPTO_RC4, self._encrypt, self._decrypt, b"", self._decrypt.update(rest)
                )
            else:
                self.result = MseResult(self._info_hash, CRYPTO_PLAINTEXT, None, None, b"", rest)
            self._step = "done"
        return out


class MseResponder(_Side):
    """Side B. Feed what A sends to ``receive_data`` and send what it returns until ``done``.

    ``info_hashes`` are the torrents we serve (an iterable, or a callable returning one, read
    when A names its torrent); alternatively ``resolve(skey_hash)`` maps HASH('req2', info_hash)
    to the info-hash, or ``None`` (see ``skey_hash``). The chosen torrent is ``result.info_hash``.
    ``crypto_allowed`` is the set of methods we accept; when A offers both, plaintext is chosen
    (the handshake stays obfuscated, the payload costs no RC4: libtorrent's default) unless
    ``prefer_rc4``."""

    def __init__(
        self,
        info_hashes: Iterable[bytes] | Callable[[], Iterable[bytes]] = (),
        *,
        resolve: Callable[[bytes], bytes | None] | None = None,
        crypto_allowed: int,
        randbytes: Callable[[int], bytes],
        prefer_rc4: bool = False,
        pad_max: int = MAX_PAD,
    ) -> None:
        if not crypto_allowed & (CRYPTO_PLAINTEXT | CRYPTO_RC4):
            raise ValueError("crypto_allowed must allow plaintext and/or RC4")
        super().__init__(randbytes, pad_max)
        self._info_hashes = info_hashes
        self._resolve = resolve
        self._allowed = crypto_allowed
        self._prefer_rc4 = prefer_rc4
        self._step = "ya"
        self._secret_s = b""
        self._req1 = b""
        self._decrypt: StreamCipher | None = None
        self._encrypt: StreamCipher | None = None
        self._info_hash = b""
        self._provide = 0

    def _find_torrent(self, wanted: bytes) -> bytes:
        if self._resolve is not None:
            found = self._resolve(wanted)
            if found is not None and len(found) == 20 and skey_hash(found) == wanted:
                return found
        source = self._info_hashes
        hashes = source() if callable(source) else source
        for info_hash in hashes:
            if skey_hash(info_hash) == wanted:
                return info_hash
        raise EncryptionError("the peer asked for a torrent we do not serve")

    def receive_data(self, data: bytes) -> bytes:
        """Consume bytes from A; returns bytes to send to A (possibly empty)."""
        if self.result is not None:
            raise RuntimeError("the handshake is already complete")
        self._buf += data
        out = b""
        if self._step == "ya":
            if len(self._buf) < KEY_LENGTH:
                return b""
            self._secret_s = self._secret(bytes(self._buf[:KEY_LENGTH]))
            del self._buf[:KEY_LENGTH]
            self._req1 = _sha1(b"req1", self._secret_s)
            out = self.public_key + self._pad()
            self._step = "req1"
        if self._step == "req1":
            pos = self._buf.find(self._req1)
            if pos < 0:
                if len(self._buf) >= MAX_PAD + len(self._req1):
                    raise EncryptionError("no req1 hash from the peer (not MSE)")
                return out
            if pos > MAX_PAD:
                raise EncryptionError("PadA longer than 512 bytes")
            del self._buf[: pos + 20]
            self._step = "req2"
        if self._step == "req2":
            if len(self._buf) < 20 + 14:
                return out
            req3 = _sha1(b"req3", self._secret_s)
            wanted = bytes(a ^ b for a, b in zip(self._buf[:20], req3, strict=True))
            self._info_hash = self._find_torrent(wanted)
            self._decrypt = rc4(_sha1(b"keyA", self._secret_s, self._info_hash))
            self._encrypt = rc4(_sha1(b"keyB", self._secret_s, self._info_hash))
            head = self._decrypt.update(bytes(self._buf[20:34]))
            del self._buf[:34]
            if head[:8] != VC:
                raise EncryptionError("bad verification constant")
            self._provide = int.from_bytes(head[8:12], "big")
            self._pad_c = int.from_bytes(head[12:14], "big")
            if self._pad_c > MAX_PAD:
                raise EncryptionError("PadC longer than 512 bytes")
            self._step = "padc"
        if self._step == "padc":
            if len(self._buf) < self._pad_c + 2:
                return out
            assert self._decrypt is not None
            tail = self._decrypt.update(bytes(self._buf[: self._pad_c + 2]))
            self._ia_len = int.from_bytes(tail[-2:], "big")
            del self._buf[: self._pad_c + 2]
            self._step = "ia"
        if self._step == "ia":
            if len(self._buf) < self._ia_len:
                return out
            assert self._decrypt is not None and self._encrypt is not None
            ia = self._decrypt.update(bytes(self._buf[: self._ia_len]))
            rest = bytes(self._buf[self._ia_len :])
            self._buf.clear()
            select = self._choose()
            pad_d = b""  # MSE: PadD is zero-length in current practice
            out += self._encrypt.update(
                VC + select.to_bytes(4, "big") + len(pad_d).to_bytes(2, "big") + pad_d
            )
            if select == CRYPTO_RC4:
                self.result = MseResult(
                    self._info_hash, CRYPTO_RC4, self._encrypt, self._decrypt, ia, self._decrypt.update(rest)
                )
            else:
                self.result = MseResult(self._info_hash, CRYPTO_PLAINTEXT, None, None, ia, rest)
            self._step = "done"
        return out

    def _choose(self) -> int:
        both = self._provide & self._allowed
        if both & CRYPTO_RC4 and (self._prefer_rc4 or not both & CRYPTO_PLAINTEXT):
            return CRYPTO_RC4
        if both & CRYPTO_PLAINTEXT:
            return CRYPTO_PLAINTEXT
        raise EncryptionError(
            f"no common crypto method: peer offers {self._provide:#x}, we allow {self._allowed:#x}"
        )
