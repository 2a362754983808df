"""Personal data at rest: the caller's phone is sealed with AES-GCM under a configured key."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.common.config import Settings

_NONCE = 12


class PhoneVault:
    """Encrypts phone numbers for storage; the key id is the first byte of every sealed value."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the phone key must be 32 bytes (base64 in CITYOPS_PHONE_KEY)")
        self._aead = AESGCM(key)

    def seal(self, phone: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return b"\x01" + nonce + self._aead.encrypt(nonce, phone.encode(), b"phone")

    def open(self, sealed: bytes) -> str:
        if sealed[:1] != b"\x01":
            raise ValueError("unknown phone key version")
        nonce, body = sealed[1 : 1 + _NONCE], sealed[1 + _NONCE :]
        return self._aead.decrypt(nonce, body, b"phone").decode()


def load_vault(settings: Settings) -> PhoneVault:
    """The key from CITYOPS_PHONE_KEY, else a local key file (created on first use)."""
    if settings.phone_key:
        return PhoneVault(base64.b64decode(settings.phone_key))
    path = Path(settings.phone_key_file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64encode(AESGCM.generate_key(bit_length=256)))
        try:
            os.link(tmp, path)  # atomic: the first process to get here wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return PhoneVault(base64.b64decode(path.read_bytes()))
