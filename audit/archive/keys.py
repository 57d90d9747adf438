"""Private keys by ``publickey_ver``.

Every public key the company ever uploaded has a version; messages name the version they were
encrypted for, so every private key is kept. PEM files may be PKCS#1 or PKCS#8, optionally
protected by a passphrase. Key files readable by other users are refused.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from audit.archive.crypto import ERR_NO_KEY, DecryptError, rsa_decrypt_random_key


class KeyFileError(Exception):
    """A key file that cannot be used, named with its path and the remedy."""


def check_permissions(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path}: private key is readable by other users (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}`"
        )


def load_private_key(
    path: Path, passphrase: bytes | None = None, check_mode: bool = True
) -> rsa.RSAPrivateKey:
    if not path.is_file():
        raise KeyFileError(f"{path}: private key file not found")
    if check_mode:
        check_permissions(path)
    data = path.read_bytes()
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as exc:  # passphrase missing, or given for an unencrypted key
        raise KeyFileError(f"{path}: {exc}") from None
    except ValueError as exc:
        raise KeyFileError(f"{path}: not a usable PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError(f"{path}: not an RSA private key")
    return key


def parse_key_spec(spec: str) -> tuple[int, Path]:
    """``"3=keys/v3.pem"`` -> ``(3, Path("keys/v3.pem"))`` (the CLI's ``--key``)."""
    ver, sep, path = spec.partition("=")
    if not sep or not ver.strip().isdigit() or not path.strip():
        raise KeyFileError(f"--key {spec!r}: expected VERSION=PATH, e.g. 3=keys/v3.pem")
    return int(ver), Path(path.strip())


@dataclass
class KeyRing:
    """The private keys by version; answers "which random key does this envelope carry"."""

    keys: dict[int, rsa.RSAPrivateKey] = field(default_factory=dict)

    @classmethod
    def from_files(
        cls,
        files: Mapping[int, Path],
        passphrase: bytes | None = None,
        check_mode: bool = True,
    ) -> KeyRing:
        return cls({ver: load_private_key(p, passphrase, check_mode) for ver, p in files.items()})

    @property
    def versions(self) -> list[int]:
        return sorted(self.keys)

    def random_key(self, publickey_ver: int, encrypt_random_key: str) -> str:
        key = self.keys.get(publickey_ver)
        if key is None:
            have = ", ".join(map(str, self.versions)) or "none"
            raise DecryptError(
                ERR_NO_KEY, f"no private key for publickey_ver {publickey_ver} (have: {have})"
            )
        return rsa_decrypt_random_key(key, encrypt_random_key)


def write_private_key(key: rsa.RSAPrivateKey, path: Path, pkcs8: bool = False) -> None:
    """Write ``key`` as PEM readable by its owner only."""
    fmt = (
        serialization.PrivateFormat.PKCS8
        if pkcs8
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(pem)
