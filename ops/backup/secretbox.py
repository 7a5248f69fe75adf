"""The secrets of a backup, encrypted with a passphrase: scrypt, then AES-256-GCM.

A box is ``MAGIC || salt (16) || nonce (12) || ciphertext+tag``. The key is derived from the
passphrase with scrypt (n=2**15, r=8, p=1; about 0.1 s and 32 MiB) and a random salt, so the
same passphrase never gives the same key twice; GCM's tag detects a wrong passphrase as surely as
a changed byte, and both are refused with one line. What is inside is a JSON object of file
name -> base64 content (``secrets.json`` and the stack's ``tls/`` files).
"""

from __future__ import annotations

import base64
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ops.errors import UsageError

MAGIC = b"ops-secretbox-1\n"
#: Bound to the ciphertext: a box cut from another kind of file does not open.
_AAD = b"ops backup secrets"
N, R, P = 2**15, 8, 1


class WrongPassphrase(UsageError):
    """The passphrase does not open the box (or the box was changed)."""


def _key(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=N, r=R, p=P).derive(passphrase.encode())


def seal(files: dict[str, bytes], passphrase: str) -> bytes:
    """Encrypt ``files`` (name -> content) with ``passphrase``."""
    salt, nonce = os.urandom(16), os.urandom(12)
    plain = json.dumps({name: base64.b64encode(data).decode() for name, data in sorted(files.items())})
    return MAGIC + salt + nonce + AESGCM(_key(passphrase, salt)).encrypt(nonce, plain.encode(), _AAD)


def open_box(box: bytes, passphrase: str) -> dict[str, bytes]:
    """The files in ``box``; :class:`WrongPassphrase` when the passphrase does not open it."""
    if not box.startswith(MAGIC) or len(box) < len(MAGIC) + 28 + 16:
        raise WrongPassphrase("the archive's secrets are not an ops secret box", hint="use another copy")
    body = box[len(MAGIC) :]
    salt, nonce, cipher = body[:16], body[16:28], body[28:]
    try:
        plain = AESGCM(_key(passphrase, salt)).decrypt(nonce, cipher, _AAD)
    except InvalidTag:
        raise WrongPassphrase(
            "the passphrase does not open the archive's secrets",
            hint="give the passphrase used by `ops backup` (OPS_BACKUP_PASSPHRASE or --passphrase-file); "
            "nothing was changed",
        ) from None
    return {name: base64.b64decode(data) for name, data in json.loads(plain).items()}
