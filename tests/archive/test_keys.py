from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from audit.archive.crypto import ERR_NO_KEY, DecryptError
from audit.archive.keys import KeyFileError, KeyRing, load_private_key, parse_key_spec


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def _write(path: Path, key: rsa.RSAPrivateKey, fmt: str, password: bytes | None = None) -> Path:
    enc = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    pf = (
        serialization.PrivateFormat.PKCS8
        if fmt == "pkcs8"
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, pf, enc))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("fmt", ["pkcs1", "pkcs8"])
def test_when_pem_in_either_format_then_loaded(
    tmp_path: Path, key: rsa.RSAPrivateKey, fmt: str
) -> None:
    loaded = load_private_key(_write(tmp_path / "k.pem", key, fmt))
    assert loaded.private_numbers() == key.private_numbers()


def test_when_passphrase_protected_then_needs_passphrase(
    tmp_path: Path, key: rsa.RSAPrivateKey
) -> None:
    path = _write(tmp_path / "k.pem", key, "pkcs8", b"s3cret")
    assert load_private_key(path, b"s3cret").private_numbers() == key.private_numbers()
    with pytest.raises(KeyFileError, match=r"k\.pem"):
        load_private_key(path)


def test_when_world_readable_then_refused_with_remedy(
    tmp_path: Path, key: rsa.RSAPrivateKey
) -> None:
    path = _write(tmp_path / "k.pem", key, "pkcs1")
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_private_key(path)


def test_when_not_a_key_then_error_names_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.pem"
    path.write_text("hello")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=r"bad\.pem: not a usable PEM"):
        load_private_key(path)


def test_when_version_has_no_key_then_decrypt_error_lists_versions(key: rsa.RSAPrivateKey) -> None:
    ring = KeyRing({1: key, 3: key})
    with pytest.raises(DecryptError) as exc:
        ring.random_key(2, "AAAA")
    assert exc.value.code == ERR_NO_KEY
    assert "publickey_ver 2 (have: 1, 3)" in str(exc.value)


@pytest.mark.parametrize("spec", ["1", "x=a.pem", "2=", "=a.pem"])
def test_when_key_spec_malformed_then_error(spec: str) -> None:
    with pytest.raises(KeyFileError, match="VERSION=PATH"):
        parse_key_spec(spec)


def test_key_spec_parsed() -> None:
    assert parse_key_spec("3=keys/v3.pem") == (3, Path("keys/v3.pem"))
