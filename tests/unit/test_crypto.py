"""The phone key ring and the redaction of raw copies. Pure."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.common.crypto import (
    PhoneVault,
    format_ring,
    mask_numbers,
    parse_ring,
    redact,
)

K1, K2 = AESGCM.generate_key(bit_length=256), AESGCM.generate_key(bit_length=256)


def test_the_newest_key_seals_and_every_key_unseals() -> None:
    old = PhoneVault(K1)
    sealed_old = old.seal("13800000001")
    assert PhoneVault.key_id(sealed_old) == 1
    ring = PhoneVault({1: K1, 2: K2})
    sealed_new = ring.seal("13800000001")
    assert PhoneVault.key_id(sealed_new) == 2 and ring.current == 2
    assert ring.open(sealed_old) == ring.open(sealed_new) == "13800000001"
    again = ring.reseal(sealed_old)
    assert PhoneVault.key_id(again) == 2 and ring.open(again) == "13800000001"
    assert ring.reseal(again) is again
    with pytest.raises(ValueError, match="unknown phone key id"):
        PhoneVault({2: K2}).open(sealed_old)
    raw = ring.seal_bytes(b'{"phone": "13800000001"}')
    with pytest.raises(Exception):  # noqa: B017 - a raw message is not a phone: other AAD
        ring.open(raw)
    assert ring.open_bytes(ring.reseal(raw, raw=True)) == b'{"phone": "13800000001"}'


def test_a_key_ring_reads_a_bare_key_as_key_1() -> None:
    import base64

    assert parse_ring(base64.b64encode(K1).decode() + "\n") == {1: K1}
    assert parse_ring(format_ring({1: K1, 2: K2})) == {1: K1, 2: K2}
    text = f"1:{base64.b64encode(K1).decode()},2:{base64.b64encode(K2).decode()}"
    assert parse_ring(text) == {1: K1, 2: K2}


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("13800000001", "138****0001"),
        ("call 13912345678 now", "call 139****5678 now"),
        ("+8613912345678", "139****5678"),
        ("02100000005", "021****0005"),
        ("021-62345678", "021****5678"),
        ("请回电 139 1234 5678", "请回电 139****5678"),
        ("+86 139-1234-5678", "139****5678"),
        ("0086 13912345678", "139****5678"),
        ("(021) 6234-5678", "021****5678"),
        ("0512 6234 5678", "051****5678"),
        ("HL2026112700123", "HL2026112700123"),  # an order number is no phone
        ("310106-20261130-0000001", "310106-20261130-0000001"),
        ("lon 121.45309 lat 31.22692", "lon 121.45309 lat 31.22692"),
        ("2026-11-27T09:20:11+08:00", "2026-11-27T09:20:11+08:00"),
    ],
)
def test_phone_numbers_are_masked_in_raw_bytes(text: str, masked: str) -> None:
    assert mask_numbers(text.encode()).decode() == masked


def test_redact_keeps_the_original_sealed_only_when_it_holds_a_phone() -> None:
    vault = PhoneVault(K1)
    order = json.dumps({"caller": {"phone": "13800000001"}, "title": "油烟"}, ensure_ascii=False)
    clear, sealed = redact(order.encode(), vault)
    assert b"13800000001" not in clear and b"138****0001" in clear
    assert sealed is not None and vault.open_bytes(sealed) == order.encode()
    assert redact(b'{"title": "no phone"}', vault) == (b'{"title": "no phone"}', None)
    assert redact(b"\xff\xfe13800000001", vault)[0] == b"\xff\xfe138****0001"
