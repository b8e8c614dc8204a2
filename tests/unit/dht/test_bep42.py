"""BEP 42: CRC32-C and node ids bound to IP addresses, checked against the BEP's vectors."""

from __future__ import annotations

import random

import pytest

from torrent_engine.net.dht.bep42 import crc32c, generate_node_id, is_exempt, is_valid_node_id, node_id_prefix

# BEP 42 test vectors: IP, rand, node id (first 21 bits fixed by the IP, last byte = rand).
VECTORS = [
    ("124.31.75.21", 1, "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"),
    ("21.75.31.124", 86, "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"),
    ("65.23.51.170", 22, "a5d43220bc8f112a3d426c84764f8c2a1150e616"),
    ("84.124.73.14", 65, "1b0321dd1bb1fe518101ceef99462b947a01ff41"),
    ("43.213.53.83", 90, "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"),
]


def test_crc32c_check_value() -> None:
    # The standard CRC-32C check value.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


@pytest.mark.parametrize(("ip", "rand", "node_id"), VECTORS)
def test_bep42_vectors_are_valid(ip: str, rand: int, node_id: str) -> None:
    nid = bytes.fromhex(node_id)
    assert nid[19] == rand
    assert is_valid_node_id(nid, ip)
    crc = node_id_prefix(ip, rand & 7)
    assert nid[0] == crc >> 24 and nid[1] == (crc >> 16) & 0xFF
    assert nid[2] & 0xF8 == (crc >> 8) & 0xF8


@pytest.mark.parametrize(("ip", "rand", "node_id"), VECTORS)
def test_vector_ids_fail_for_other_addresses_and_when_tampered(ip: str, rand: int, node_id: str) -> None:
    nid = bytes.fromhex(node_id)
    assert not is_valid_node_id(nid, "8.8.8.8")
    tampered = bytes([nid[0] ^ 0x80]) + nid[1:]
    assert not is_valid_node_id(tampered, ip)
    # Changing r (last byte's low bits) changes the expected prefix.
    other_r = nid[:19] + bytes([(nid[19] & 0xF8) | ((nid[19] + 1) & 7)])
    assert not is_valid_node_id(other_r, ip)


def test_generated_ids_are_valid_for_their_address() -> None:
    rng = random.Random(42)
    for ip in ("124.31.75.21", "203.0.113.9", "2001:db8::5"):
        for _ in range(20):
            nid = generate_node_id(ip, rng)
            assert len(nid) == 20
            assert is_valid_node_id(nid, ip)


def test_local_addresses_are_exempt() -> None:
    for ip in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.1.1", "::1"):
        assert is_exempt(ip)
        assert is_valid_node_id(b"\x00" * 20, ip)
    assert not is_exempt("124.31.75.21")
    assert not is_valid_node_id(b"\x00" * 19, "127.0.0.1")
