"""MSE/PE handshake, both sides, bytes only and deterministic (seeded randomness)."""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from torrent_engine.errors import EncryptionError
from torrent_engine.net.peer import mse
from torrent_engine.net.peer.mse import (
    CRYPTO_PLAINTEXT,
    CRYPTO_RC4,
    DH_PRIME,
    MseInitiator,
    MseResponder,
    _g_pow,
    _g_pow_table,
    _power,
    _power_builtin,
    skey_hash,
)

S = TypeVar("S", MseInitiator, MseResponder)
INFO_HASH = bytes(range(20))
OTHER = bytes(range(20, 40))
IA = b"\x13BitTorrent protocol" + bytes(48)


def rng(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def ref_rc4(key: bytes, data: bytes, discard: int = 1024) -> bytes:
    """A plain RC4 written from the algorithm, as an independent reference."""
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    i = j = 0
    out = bytearray()
    for n in range(discard + len(data)):
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        k = s[(s[i] + s[j]) % 256]
        if n >= discard:
            out.append(data[n - discard] ^ k)
    return bytes(out)


def sha1(*parts: bytes) -> bytes:
    return hashlib.sha1(b"".join(parts)).digest()


def run(a: MseInitiator, b: MseResponder, chunk: int = 1 << 20, extra_b: bytes = b"") -> None:
    """Shuttle bytes between the two sides in ``chunk``-sized pieces until both are done."""
    to_b = a.start()
    to_a = b""
    for _ in range(100_000):
        if to_b and not b.done:
            piece, to_b = to_b[:chunk], to_b[chunk:]
            out = b.receive_data(piece)
            to_a += out
            if b.done and b.result is not None:
                enc = b.result.encrypt
                to_a += enc.update(extra_b) if enc is not None else extra_b
        elif to_a and not a.done:
            piece, to_a = to_a[:chunk], to_a[chunk:]
            to_b += a.receive_data(piece)
        else:
            break
    assert a.done and b.done


@pytest.mark.parametrize("chunk", [1, 7, 100, 1 << 20])
def test_rc4_handshake_any_split(chunk: int) -> None:
    a = MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4, initial_payload=IA, randbytes=rng(1))
    b = MseResponder([OTHER, INFO_HASH], crypto_allowed=CRYPTO_RC4 | CRYPTO_PLAINTEXT, randbytes=rng(2))
    run(a, b, chunk)
    assert a.result is not None and b.result is not None
    assert b.result.info_hash == INFO_HASH and b.result.initial_payload == IA
    assert a.result.crypto == b.result.crypto == CRYPTO_RC4
    assert a.result.encrypt is not None and b.result.decrypt is not None
    assert b.result.encrypt is not None and a.result.decrypt is not None
    msg = b"payload after the handshake" * 10
    assert b.result.decrypt.update(a.result.encrypt.update(msg)) == msg
    assert a.result.decrypt.update(b.result.encrypt.update(msg)) == msg


def test_payload_arriving_with_the_handshake_is_decrypted() -> None:
    a = MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4, initial_payload=IA, randbytes=rng(3))
    b = MseResponder(lambda: [INFO_HASH], crypto_allowed=CRYPTO_RC4, randbytes=rng(4))
    run(a, b, extra_b=b"bitfield-bytes")
    assert a.result is not None and a.result.remaining == b"bitfield-bytes"


@pytest.mark.parametrize(
    ("provide", "allowed", "prefer_rc4", "selected"),
    [
        (CRYPTO_RC4 | CRYPTO_PLAINTEXT, CRYPTO_RC4 | CRYPTO_PLAINTEXT, True, CRYPTO_RC4),
        (CRYPTO_RC4 | CRYPTO_PLAINTEXT, CRYPTO_RC4 | CRYPTO_PLAINTEXT, False, CRYPTO_PLAINTEXT),
        (CRYPTO_RC4 | CRYPTO_PLAINTEXT, CRYPTO_PLAINTEXT, True, CRYPTO_PLAINTEXT),
        (CRYPTO_PLAINTEXT, CRYPTO_RC4 | CRYPTO_PLAINTEXT, True, CRYPTO_PLAINTEXT),
    ],
)
def test_crypto_selection(provide: int, allowed: int, prefer_rc4: bool, selected: int) -> None:
    a = MseInitiator(INFO_HASH, crypto_provide=provide, initial_payload=IA, randbytes=rng(5))
    b = MseResponder([INFO_HASH], crypto_allowed=allowed, prefer_rc4=prefer_rc4, randbytes=rng(6))
    run(a, b, 50, extra_b=b"reply")
    assert a.result is not None and b.result is not None
    assert a.result.crypto == b.result.crypto == selected
    assert b.result.initial_payload == IA  # IA is always RC4-encrypted on the wire
    assert a.result.remaining == b"reply"  # B's first payload, sent right after step 4
    if selected == CRYPTO_PLAINTEXT:
        assert a.result.encrypt is None and b.result.decrypt is None
        assert a.result.decrypt is None and b.result.encrypt is None


def test_no_common_method_is_refused() -> None:
    a = MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4, randbytes=rng(7))
    b = MseResponder([INFO_HASH], crypto_allowed=CRYPTO_PLAINTEXT, randbytes=rng(8))
    with pytest.raises(EncryptionError, match="no common crypto method"):
        run(a, b)


def test_unknown_torrent_is_refused() -> None:
    a = MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4, randbytes=rng(9))
    b = MseResponder([OTHER], crypto_allowed=CRYPTO_RC4, randbytes=rng(10))
    with pytest.raises(EncryptionError, match="do not serve"):
        run(a, b)


def test_wire_bytes_match_an_independent_derivation() -> None:
    """Recompute S, the hashes and the RC4 stream outside the module and read step 3 with them."""
    xa = random.Random(11).randbytes(20)
    a = MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4, initial_payload=IA, randbytes=rng(11), pad_max=0)
    ya = a.start()
    assert ya == pow(2, int.from_bytes(xa, "big"), DH_PRIME).to_bytes(96, "big")  # no PadA with pad_max=0
    xb = 12345678901234567890
    yb = pow(2, xb, DH_PRIME).to_bytes(96, "big")
    step3 = a.receive_data(yb)
    s = pow(int.from_bytes(ya, "big"), xb, DH_PRIME).to_bytes(96, "big")
    assert step3[:20] == sha1(b"req1", s)
    assert bytes(x ^ y for x, y in zip(step3[20:40], sha1(b"req3", s), strict=True)) == skey_hash(INFO_HASH)
    plain = ref_rc4(sha1(b"keyA", s, INFO_HASH), step3[40:])
    assert plain[:8] == bytes(8)  # VC
    assert int.from_bytes(plain[8:12], "big") == CRYPTO_RC4
    assert plain[12:14] == b"\x00\x00"  # len(PadC)
    assert int.from_bytes(plain[14:16], "big") == len(IA) and plain[16:] == IA
    # B's answer built by hand with the reference RC4 completes the handshake.
    answer = ref_rc4(
        sha1(b"keyB", s, INFO_HASH), bytes(8) + CRYPTO_RC4.to_bytes(4, "big") + b"\x00\x00" + b"hi"
    )
    assert a.receive_data(b"padB" * 3 + answer) == b""
    assert a.result is not None and a.result.crypto == CRYPTO_RC4 and a.result.remaining == b"hi"


def test_public_keys_from_the_powers_made_once_are_those_pow_gives() -> None:
    """A public key is G^X mod P taken from the powers of G made once: the same as ``pow`` for
    any 160-bit private key (all-zero and all-one windows too)."""
    r = random.Random(5)
    keys = [1, 2, 15, 16, 2**160 - 1, 2**159, 0xF0F0F << 100, *(r.getrandbits(160) for _ in range(300))]
    for x in keys:
        assert _g_pow(x) == pow(2, x, DH_PRIME), hex(x)
        assert _g_pow_table(x) == pow(2, x, DH_PRIME), hex(x)


def test_the_powers_are_gmps_where_it_is_installed() -> None:
    """gmpy2 is a dependency: the shared secret and the public keys are GMP's modular powers
    (8x CPython's here), equal to ``pow``'s for any key, the extremes too."""
    import gmpy2  # noqa: F401  (a dependency of the package: its absence is a failure)

    assert _power is not _power_builtin and _g_pow is not _g_pow_table
    r = random.Random(6)
    for _ in range(300):
        y, x = r.randrange(2, DH_PRIME - 1), r.getrandbits(160)
        assert _power(y, x) == pow(y, x, DH_PRIME)
    for y, x in ((2, 1), (DH_PRIME - 2, 2**160 - 1), (DH_PRIME - 2, 2), (3, 0)):
        assert _power(y, x) == pow(y, x, DH_PRIME)
        assert isinstance(_power(y, x), int) and isinstance(_g_pow(x), int)


def _without_gmp(monkeypatch: pytest.MonkeyPatch, make: Callable[[], S], used: list[str]) -> S:
    """A side made and run with CPython's arithmetic (``used`` counts its powers)."""

    def power(base: int, exponent: int) -> int:
        used.append("power")
        return _power_builtin(base, exponent)

    def g_pow(private: int) -> int:
        used.append("g_pow")
        return _g_pow_table(private)

    @contextlib.contextmanager
    def patched() -> Iterator[None]:
        with monkeypatch.context() as patch:
            patch.setattr(mse, "_power", power)
            patch.setattr(mse, "_g_pow", g_pow)
            yield

    with patched():
        side = make()
    receive = side.receive_data

    def receive_data(data: bytes) -> bytes:
        with patched():
            return receive(data)

    side.receive_data = receive_data  # type: ignore[method-assign]
    return side


@pytest.mark.parametrize("without", ["initiator", "responder"])
def test_a_side_without_gmp_meets_a_side_with_it(monkeypatch: pytest.MonkeyPatch, without: str) -> None:
    """An interpreter without gmpy2's wheel falls back to CPython's arithmetic: its handshake
    with a side that has GMP completes, with the same keys both ways."""
    used: list[str] = []

    def initiator() -> MseInitiator:
        return MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4, initial_payload=IA, randbytes=rng(21))

    def responder() -> MseResponder:
        return MseResponder([INFO_HASH], crypto_allowed=CRYPTO_RC4, randbytes=rng(22))

    a = _without_gmp(monkeypatch, initiator, used) if without == "initiator" else initiator()
    b = _without_gmp(monkeypatch, responder, used) if without == "responder" else responder()
    run(a, b)
    assert sorted(used) == ["g_pow", "power"]  # its public key and its shared secret
    assert a.result is not None and b.result is not None and b.result.initial_payload == IA
    assert a.result.encrypt is not None and b.result.decrypt is not None
    assert b.result.decrypt.update(a.result.encrypt.update(b"both ways")) == b"both ways"


def test_responder_rejects_garbage_after_bounded_search() -> None:
    b = MseResponder([INFO_HASH], crypto_allowed=CRYPTO_RC4, randbytes=rng(13))
    b.receive_data(pow(2, 99, DH_PRIME).to_bytes(96, "big"))
    with pytest.raises(EncryptionError, match="no req1"):
        b.receive_data(bytes(600))


def test_initiator_rejects_a_peer_that_is_not_mse() -> None:
    a = MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4, randbytes=rng(14))
    a.start()
    with pytest.raises(EncryptionError):
        a.receive_data(b"\x13BitTorrent protocol" + bytes(48) + bytes(600))


@pytest.mark.parametrize("y", [0, 1, DH_PRIME - 1, DH_PRIME])
def test_degenerate_public_keys_are_refused(y: int) -> None:
    b = MseResponder([INFO_HASH], crypto_allowed=CRYPTO_RC4, randbytes=rng(15))
    with pytest.raises(EncryptionError, match="public key"):
        b.receive_data(y.to_bytes(96, "big"))


def test_tampered_verification_constant() -> None:
    a = MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4, randbytes=rng(16), pad_max=0)
    b = MseResponder([INFO_HASH], crypto_allowed=CRYPTO_RC4, randbytes=rng(17), pad_max=0)
    step2 = b.receive_data(a.start())
    step3 = bytearray(a.receive_data(step2))
    step3[40] ^= 1  # first byte of ENCRYPT(VC)
    with pytest.raises(EncryptionError, match="verification constant"):
        b.receive_data(bytes(step3))


def test_padding_is_random_and_bounded() -> None:
    lengths = {
        len(MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4, randbytes=rng(i)).start()) for i in range(40)
    }
    assert min(lengths) >= 96 and max(lengths) <= 96 + 512 and len(lengths) > 10
    with pytest.raises(ValueError):
        MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4, randbytes=rng(0), pad_max=513)


def test_responder_resolves_the_torrent_through_a_callback() -> None:
    table = {skey_hash(h): h for h in (OTHER, INFO_HASH)}
    a = MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4, initial_payload=IA, randbytes=rng(18))
    b = MseResponder(resolve=table.get, crypto_allowed=CRYPTO_RC4, randbytes=rng(19))
    run(a, b)
    assert b.result is not None and b.result.info_hash == INFO_HASH
    # A resolver that answers with a hash that does not match is not believed.
    a2 = MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4, randbytes=rng(20))
    b2 = MseResponder(resolve=lambda wanted: OTHER, crypto_allowed=CRYPTO_RC4, randbytes=rng(21))
    with pytest.raises(EncryptionError, match="do not serve"):
        run(a2, b2)
