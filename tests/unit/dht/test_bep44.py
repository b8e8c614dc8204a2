"""BEP 44: targets, signing buffers and Ed25519 signatures from the BEP's test vectors, and the
storing node's rules (seq, CAS, salt, size, signature)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from torrent_engine.net.dht import bep44, krpc

PUBLIC = bytes.fromhex("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")
# The BEP gives the 64-byte expanded secret key (clamped scalar || nonce prefix).
SECRET = bytes.fromhex(
    "e06d3183d14159228433ed599221b80bd0a5ce8352e4bdf0262f76786ef1c74d"
    "b7e7a9fea2c0eb269d61e3b38e450a22e754941ac78479d6c54e1faf6037881d"
)
SIG1 = bytes.fromhex(
    "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff"
    "1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01"
)
SIG2 = bytes.fromhex(
    "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17d"
    "df9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08"
)
VALUE = b"Hello World!"


# --- a minimal Ed25519 signer over an *expanded* secret key (RFC 8032 arithmetic), used only to
# reproduce the BEP's signatures byte for byte: `cryptography` takes 32-byte seeds, not this form.
_Q = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _Q - 2, _Q) % _Q
_I = pow(2, (_Q - 1) // 4, _Q)


def _xrecover(y: int) -> int:
    xx = (y * y - 1) * pow(_D * y * y + 1, _Q - 2, _Q)
    x = pow(xx, (_Q + 3) // 8, _Q)
    if (x * x - xx) % _Q:
        x = x * _I % _Q
    return _Q - x if x % 2 else x


_BY = 4 * pow(5, _Q - 2, _Q) % _Q
_B = (_xrecover(_BY), _BY)


def _add(p: tuple[int, int], q: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = p, q
    t = _D * x1 * x2 * y1 * y2
    return (
        (x1 * y2 + x2 * y1) * pow(1 + t, _Q - 2, _Q) % _Q,
        (y1 * y2 + x1 * x2) * pow(1 - t, _Q - 2, _Q) % _Q,
    )


def _mul(p: tuple[int, int], e: int) -> tuple[int, int]:
    result = (0, 1)
    while e:
        if e & 1:
            result = _add(result, p)
        p = _add(p, p)
        e >>= 1
    return result


def _enc(p: tuple[int, int]) -> bytes:
    return (p[1] | ((p[0] & 1) << 255)).to_bytes(32, "little")


def _sign_expanded(secret: bytes, public: bytes, msg: bytes) -> bytes:
    a = int.from_bytes(secret[:32], "little")
    r = int.from_bytes(hashlib.sha512(secret[32:] + msg).digest(), "little") % _L
    big_r = _enc(_mul(_B, r))
    h = int.from_bytes(hashlib.sha512(big_r + public + msg).digest(), "little") % _L
    return big_r + ((r + h * a) % _L).to_bytes(32, "little")


def test_vector_key_pair_matches() -> None:
    assert _enc(_mul(_B, int.from_bytes(SECRET[:32], "little"))) == PUBLIC


def test_vector_1_mutable() -> None:
    buf = bep44.signing_buffer(VALUE, 1)
    assert buf == b"3:seqi1e1:v12:Hello World!"
    assert bep44.mutable_target(PUBLIC) == bytes.fromhex("4a533d47ec9c7d95b1ad75f576cffc641853b750")
    assert _sign_expanded(SECRET, PUBLIC, buf) == SIG1
    assert bep44.verify(PUBLIC, SIG1, VALUE, 1)


def test_vector_2_mutable_with_salt() -> None:
    buf = bep44.signing_buffer(VALUE, 1, b"foobar")
    assert buf == b"4:salt6:foobar3:seqi1e1:v12:Hello World!"
    assert bep44.mutable_target(PUBLIC, b"foobar") == bytes.fromhex(
        "411eba73b6f087ca51a3795d9c8c938d365e32c1"
    )
    assert _sign_expanded(SECRET, PUBLIC, buf) == SIG2
    assert bep44.verify(PUBLIC, SIG2, VALUE, 1, b"foobar")


def test_vector_3_immutable() -> None:
    assert bep44.immutable_target(VALUE) == bytes.fromhex("e5f96f6f38320f0f33959cb4d3d656452117aadb")


def test_verification_fails_on_any_change() -> None:
    assert not bep44.verify(PUBLIC, SIG1, VALUE, 2)
    assert not bep44.verify(PUBLIC, SIG1, b"Hello World?", 1)
    assert not bep44.verify(PUBLIC, SIG2, VALUE, 1)  # salt missing
    assert not bep44.verify(PUBLIC, SIG1[:-1] + b"\x00", VALUE, 1)
    assert not bep44.verify(PUBLIC[:31], SIG1, VALUE, 1)


def test_sign_and_verify_with_a_fresh_key() -> None:
    key = Ed25519PrivateKey.generate()
    pub = bep44.public_key_bytes(key)
    sig = bep44.sign(key, {b"a": [1, 2]}, 5, b"s")
    assert bep44.verify(pub, sig, {b"a": [1, 2]}, 5, b"s")


def _put(value: object = VALUE, **kw: object) -> krpc.PutItem:
    return krpc.PutItem(tid=b"t", node_id=b"i" * 20, token=b"x", value=value, **kw)  # type: ignore[arg-type]


def test_store_immutable_and_expiry() -> None:
    store = bep44.ItemStore()
    target, err = store.put(_put(), now=0)
    assert err is None and target == bep44.immutable_target(VALUE)
    item = store.get(target, now=10)
    assert item is not None and item.value == VALUE
    assert store.get(target, now=bep44.ITEM_TTL + 1) is None


def test_store_mutable_rules() -> None:
    store = bep44.ItemStore()
    # The BEP's vector 1 is accepted as is.
    target, err = store.put(_put(key=PUBLIC, signature=SIG1, seq=1), now=0)
    assert err is None and target == bytes.fromhex("4a533d47ec9c7d95b1ad75f576cffc641853b750")
    key = Ed25519PrivateKey.generate()
    pub = bep44.public_key_bytes(key)

    def signed(value: bytes, seq: int, salt: bytes = b"", cas: int | None = None) -> krpc.PutItem:
        return _put(value, key=pub, signature=bep44.sign(key, value, seq, salt), seq=seq, salt=salt, cas=cas)

    assert store.put(signed(b"v2", 2), 0)[1] is None
    assert store.put(signed(b"v1", 1), 0)[1] == (302, "sequence number less than current")
    assert store.put(signed(b"v3", 3, cas=1), 0)[1][0] == 301  # type: ignore[index]
    assert store.put(signed(b"v3", 3, cas=2), 0)[1] is None
    item = store.get(bep44.mutable_target(pub), 0)
    assert item is not None and item.value == b"v3" and item.seq == 3
    bad = _put(b"v4", key=pub, signature=bep44.sign(key, b"other", 4), seq=4)
    assert store.put(bad, 0)[1][0] == 206  # type: ignore[index]
    assert store.put(signed(b"x", 5, salt=b"s" * 65), 0)[1][0] == 207  # type: ignore[index]
    assert store.put(_put(b"x" * 1001), 0)[1][0] == 205  # type: ignore[index]
    # A salted item lives under its own target.
    assert store.put(signed(b"salted", 1, salt=b"foo"), 0)[1] is None
    assert store.get(bep44.mutable_target(pub, b"foo"), 0) is not None


@pytest.mark.parametrize("seq", [-1, 2**63])
def test_store_rejects_seq_out_of_range(seq: int) -> None:
    key = Ed25519PrivateKey.generate()
    pub = bep44.public_key_bytes(key)
    put = _put(b"v", key=pub, signature=bep44.sign(key, b"v", seq), seq=seq)
    assert bep44.ItemStore().put(put, 0)[1][0] == 203  # type: ignore[index]
