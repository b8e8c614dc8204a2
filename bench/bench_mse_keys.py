"""MSE's Diffie-Hellman on the CPU, each against CPython's ``pow`` in the same run: a public key
(GMP's ``powmod`` where gmpy2 is installed, the powers of G made once where it is not), a shared
secret (GMP's against ``pow(Y, X, P)``), and a whole handshake (both sides, RC4 selected, bytes
only) with the module's arithmetic against the same with ``pow`` for both keys. Every outgoing
connection that offers encryption pays one public key and one shared secret, every incoming one
too.

Run: python bench/bench_mse_keys.py [--keys 3000] [--handshakes 1000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from torrent_engine.net.peer import mse
from torrent_engine.net.peer.mse import CRYPTO_RC4, DH_GENERATOR, DH_PRIME, MseInitiator, MseResponder

INFO_HASH = bytes(range(20))
IA = b"\x13BitTorrent protocol" + bytes(48)


def per_call(func: Callable[[int], object], args: list[int], rounds: int = 5) -> float:
    """The median over ``rounds`` of the mean time of one call, in microseconds."""
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        for a in args:
            func(a)
        times.append((time.perf_counter() - began) / len(args) * 1e6)
    return statistics.median(times)


def handshake(seed: int) -> None:
    rng = random.Random(seed).randbytes
    a = MseInitiator(INFO_HASH, crypto_provide=CRYPTO_RC4, initial_payload=IA, randbytes=rng, pad_max=0)
    b = MseResponder([INFO_HASH], crypto_allowed=CRYPTO_RC4, randbytes=rng, pad_max=0)
    to_b = a.start()
    while not (a.done and b.done):
        to_a = b.receive_data(to_b)
        to_b = a.receive_data(to_a) if to_a else b""
        if not to_a and not to_b:
            break
    assert a.done and b.done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=3000)
    parser.add_argument("--handshakes", type=int, default=1000)
    args = parser.parse_args()
    r = random.Random(1)
    keys = [r.getrandbits(mse.PRIVATE_KEY_BYTES * 8) for _ in range(args.keys)]
    others = [pow(DH_GENERATOR, r.getrandbits(160), DH_PRIME) for _ in range(args.keys)]
    began = time.perf_counter()
    mse._g_powers()
    made = (time.perf_counter() - began) * 1000
    gmp = mse._power is not mse._power_builtin
    assert all(mse._g_pow(x) == mse._g_pow_table(x) == pow(DH_GENERATOR, x, DH_PRIME) for x in keys[:100])
    ref = per_call(lambda x: pow(DH_GENERATOR, x, DH_PRIME), keys)
    table = per_call(mse._g_pow_table, keys)
    print(f"public key: pow {ref:.1f} us; the powers of G {table:.1f} us ({ref / table:.2f}x; "
          f"made once in {made:.1f} ms)", end="")
    if gmp:
        ours = per_call(mse._g_pow, keys)
        print(f"; GMP {ours:.1f} us ({ref / ours:.2f}x)")
    else:
        print("; GMP: gmpy2 is not installed")
    pairs = list(zip(others, keys, strict=True))
    ref = per_call(lambda i: pow(pairs[i][0], pairs[i][1], DH_PRIME), list(range(len(pairs))))
    print(f"shared secret: pow {ref:.1f} us", end="")
    if gmp:
        assert all(mse._power(y, x) == pow(y, x, DH_PRIME) for y, x in pairs[:100])
        ours = per_call(lambda i: mse._power(pairs[i][0], pairs[i][1]), list(range(len(pairs))))
        print(f"; GMP {ours:.1f} us ({ref / ours:.2f}x)")
    else:
        print("; GMP: gmpy2 is not installed")
    seeds = list(range(args.handshakes))
    now = per_call(handshake, seeds, rounds=3)
    real = mse._g_pow, mse._power
    mse._g_pow = lambda x: pow(DH_GENERATOR, x, DH_PRIME)  # (CPython's pow for both keys)
    mse._power = mse._power_builtin
    try:
        before = per_call(handshake, seeds, rounds=3)
    finally:
        mse._g_pow, mse._power = real
    print(f"a handshake, both sides: {now:.0f} us, with pow for both keys {before:.0f} us: "
          f"{before / now:.2f}x")

if __name__ == "__main__":
    main()
