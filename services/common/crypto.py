"""Personal data at rest: the caller's phone is sealed with AES-GCM under a key ring.

Every sealed value starts with the id (1..255) of the key that sealed it; the newest key seals,
every key of the ring unseals, so a key can be rotated (`cityops keys rotate`) while values
sealed under the older ones stay readable until they are re-sealed. A key ring is written one
key a line, `<id>:<base64 of 32 bytes>` (CITYOPS_PHONE_KEY: the same, comma-separated); a bare
base64 key is key 1. Raw inbound copies (dead letters, parked messages) are kept with every
phone number masked and the original sealed (`redact`)."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts.common import mask_phone
from services.common.config import Settings

_NONCE = 12
_PHONE, _RAW = b"phone", b"raw"
#: a mainland mobile number or a landline with its area code, not inside a longer digit run,
#: written as people write them: `13912345678`, `139 1234 5678`, `+86 139-1234-5678`,
#: `021-66667777`, `(021) 6666-7777`
PHONE_NUMBER = re.compile(
    rb"(?<![0-9])(?:(?:\+|00)?86[- ]?)?"
    rb"(1[3-9][0-9](?:[- ]?[0-9]{4}){2}|\(?0[0-9]{2,3}\)?[- ]?[0-9]{3,4}[- ]?[0-9]{4})"
    rb"(?![0-9])"
)


class PhoneVault:
    """Seals phone numbers (and raw messages holding them) for storage under a key ring."""

    def __init__(self, keys: bytes | Mapping[int, bytes]) -> None:
        ring = {1: keys} if isinstance(keys, bytes) else dict(keys)
        if not ring or any(len(k) != 32 for k in ring.values()):
            raise ValueError("a phone key must be 32 bytes (base64 in CITYOPS_PHONE_KEY)")
        if any(not 1 <= i <= 255 for i in ring):
            raise ValueError("phone key ids run from 1 to 255")
        self._keys = {i: AESGCM(k) for i, k in ring.items()}
        self.current = max(ring)

    @property
    def key_ids(self) -> list[int]:
        return sorted(self._keys)

    def seal(self, phone: str) -> bytes:
        return self._seal(phone.encode(), _PHONE)

    def open(self, sealed: bytes) -> str:
        return self._open(sealed, _PHONE).decode()

    def seal_bytes(self, raw: bytes) -> bytes:
        """A raw message holding personal data, sealed whole."""
        return self._seal(raw, _RAW)

    def open_bytes(self, sealed: bytes) -> bytes:
        return self._open(sealed, _RAW)

    @staticmethod
    def key_id(sealed: bytes) -> int:
        return sealed[0]

    def reseal(self, sealed: bytes, *, raw: bool = False) -> bytes:
        """The same value sealed under the current key (unchanged when it already is)."""
        if self.key_id(sealed) == self.current:
            return sealed
        aad = _RAW if raw else _PHONE
        return self._seal(self._open(sealed, aad), aad)

    def _seal(self, plain: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return bytes([self.current]) + nonce + self._keys[self.current].encrypt(nonce, plain, aad)

    def _open(self, sealed: bytes, aad: bytes) -> bytes:
        key = self._keys.get(self.key_id(sealed)) if sealed else None
        if key is None:
            raise ValueError(f"unknown phone key id {sealed[:1].hex() or 'none'}")
        return key.decrypt(sealed[1 : 1 + _NONCE], sealed[1 + _NONCE :], aad)


def mask_numbers(raw: bytes) -> bytes:
    """`raw` with every phone number in it masked (`138****1234`)."""
    return PHONE_NUMBER.sub(lambda m: mask_phone(m.group(1).decode()).encode(), raw)


def mask_text(text: str) -> str:
    """Free text (an order's content, a unit's note) with every phone number in it masked;
    `text` itself when it holds none."""
    if not any(c.isdigit() for c in text):
        return text
    masked = mask_numbers(text.encode()).decode()
    return text if masked == text else masked


def redact(raw: bytes, vault: PhoneVault) -> tuple[bytes, bytes | None]:
    """(the bytes to keep in clear, the original sealed): the original itself and None when
    it holds no phone number, else the original with every number masked, and sealed."""
    masked = mask_numbers(raw)
    return (raw, None) if masked == raw else (masked, vault.seal_bytes(raw))


def parse_ring(text: str) -> dict[int, bytes]:
    """`<id>:<base64>` entries (lines or comma-separated); a bare base64 key is key 1."""
    ring: dict[int, bytes] = {}
    for entry in re.split(r"[,\n]", text):
        entry = entry.strip()
        if entry:
            key_id, sep, b64 = entry.rpartition(":")
            ring[int(key_id) if sep else 1] = base64.b64decode(b64)
    return ring


def format_ring(ring: Mapping[int, bytes]) -> str:
    return "".join(f"{i}:{base64.b64encode(k).decode()}\n" for i, k in sorted(ring.items()))


def load_vault(settings: Settings) -> PhoneVault:
    """The key ring from CITYOPS_PHONE_KEY, else a local key file (created on first use)."""
    if settings.phone_key:
        return PhoneVault(parse_ring(settings.phone_key))
    path = Path(settings.phone_key_file)
    if not path.exists():
        write_ring(path, {1: AESGCM.generate_key(bit_length=256)}, exclusive=True)
    return PhoneVault(parse_ring(path.read_text()))


def add_key(settings: Settings) -> int:
    """A new key in the key file's ring, which seals from now on; returns its id."""
    path = Path(settings.phone_key_file)
    ring = parse_ring(path.read_text()) if path.exists() else {}
    new = max(ring, default=0) + 1
    ring[new] = AESGCM.generate_key(bit_length=256)
    write_ring(path, ring)
    return new


def write_ring(path: Path, ring: Mapping[int, bytes], *, exclusive: bool = False) -> None:
    """Write the ring (mode 0600) atomically; `exclusive`: only if no file is there yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(format_ring(ring))
    try:
        if exclusive:
            try:
                os.link(tmp, path)  # atomic: the first process to get here wins
            except FileExistsError:
                pass
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
