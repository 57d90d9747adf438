"""The archive's encryption: RSA-wrapped random keys and the DecryptData layout.

Decryption follows the official SDK byte for byte (see ``wecom-archive-format.md`` §3), and
failures carry the SDK's own return codes so that the native and SDK decryptors report the
same thing. Encryption is the exact inverse; the simulator uses it to write real archives.

``encrypt_chat_msg`` is laid out as::

    [13 any][32-char key][pre_len filler][body[:s_len]][s_len filler][body[s_len:]][end_len filler]

with ``body = base64(IV || AES-256-CBC(k1, IV, plaintext))`` and
``random_key = base64(IV' || AES-256-CBC(msg[13:45], IV', SdkKeyInfo))``.
"""

from __future__ import annotations

import base64
import binascii
import random
import string
from dataclasses import dataclass

from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# Return codes of the official SDK, reused so both decryptors speak the same language.
ERR_KEY_INFO = 10005  # key info (SdkKeyInfo) invalid
ERR_DECRYPT = 10006  # body decryption failed
ERR_NO_KEY = 10007  # no private key for this publickey_ver
ERR_ENCRYPT_KEY = 10008  # random key unusable (RSA or AES of the key info failed)

_PREFIX = 13
_KEY_END = 45  # _PREFIX + 32
_B64 = string.ascii_letters + string.digits + "+/"
_ALNUM = string.ascii_letters + string.digits


class DecryptError(Exception):
    """A message that cannot be decrypted; ``code`` is the SDK's return code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{reason} (code {code})")
        self.code = code
        self.reason = reason


# --------------------------------------------------------------------------- AES


def _key32(key: bytes) -> bytes:
    return key[:32].ljust(32, b"\0")


def aes_decrypt_b64(b64: str | bytes, key: bytes) -> bytes:
    """AESDEC of the SDK: base64 -> IV || ciphertext, AES-256-CBC, PKCS#7. ValueError on failure."""
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64: {exc}") from None
    if len(data) < 32 or len(data) % 16:
        raise ValueError(f"ciphertext length {len(data)} is not a positive multiple of 16 plus IV")
    decryptor = Cipher(algorithms.AES(_key32(key)), modes.CBC(data[:16])).decryptor()
    padded = decryptor.update(data[16:]) + decryptor.finalize()
    unpadder = sym_padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise ValueError("bad PKCS#7 padding") from None


def aes_encrypt_b64(plaintext: bytes, key: bytes, iv: bytes) -> str:
    padder = sym_padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(_key32(key)), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode("ascii")


# --------------------------------------------------------------------------- SdkKeyInfo


@dataclass(frozen=True)
class KeyInfo:
    """``SdkKeyInfo { string k1 = 1; int32 pre_len = 2; int32 end_len = 3; int32 s_len = 4; }``"""

    k1: str
    pre_len: int
    end_len: int
    s_len: int

    def encode(self) -> bytes:
        k1 = self.k1.encode("utf-8")
        out = bytearray(b"\x0a")
        out += _varint(len(k1)) + k1
        for tag, value in ((0x10, self.pre_len), (0x18, self.end_len), (0x20, self.s_len)):
            if value:  # proto3 omits zero scalars
                out.append(tag)
                out += _varint(value & 0xFFFFFFFFFFFFFFFF if value < 0 else value)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> KeyInfo:
        fields: dict[int, int | bytes] = {}
        pos = 0
        while pos < len(data):
            key, pos = _read_varint(data, pos)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = _read_varint(data, pos)
                fields[number] = value
            elif wire == 2:
                length, pos = _read_varint(data, pos)
                if pos + length > len(data):
                    raise ValueError("truncated length-delimited field")
                fields[number] = data[pos : pos + length]
                pos += length
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                raise ValueError(f"unsupported wire type {wire}")
        if pos != len(data):
            raise ValueError("truncated field")
        k1 = fields.get(1, b"")
        if not isinstance(k1, bytes):
            raise ValueError("k1 is not a string")
        ints = [_int32(fields.get(n, 0)) for n in (2, 3, 4)]
        return cls(k1.decode("utf-8"), *ints)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _int32(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise ValueError("expected an integer field")
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


# --------------------------------------------------------------------------- DecryptData


def decrypt_data(random_key: str, encrypt_msg: str) -> bytes:
    """The SDK's ``DecryptData``: returns the plaintext bytes or raises :class:`DecryptError`."""
    if len(encrypt_msg) < _KEY_END:
        raise DecryptError(
            ERR_ENCRYPT_KEY, f"encrypt_chat_msg too short ({len(encrypt_msg)} characters)"
        )
    try:
        info_bytes = aes_decrypt_b64(random_key, encrypt_msg[_PREFIX:_KEY_END].encode("utf-8"))
    except ValueError as exc:
        raise DecryptError(
            ERR_ENCRYPT_KEY, f"random key does not open the key info: {exc}"
        ) from None
    try:
        info = KeyInfo.decode(info_bytes)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecryptError(ERR_KEY_INFO, f"key info is not a valid SdkKeyInfo: {exc}") from None
    n = len(encrypt_msg)
    if info.s_len <= 0 or 2 * info.s_len >= n:
        raise DecryptError(ERR_KEY_INFO, f"key info s_len={info.s_len} invalid for length {n}")
    if info.pre_len < 0 or info.pre_len + _KEY_END > n:
        raise DecryptError(ERR_KEY_INFO, f"key info pre_len={info.pre_len} invalid for length {n}")
    body = encrypt_msg[_KEY_END + info.pre_len :]
    s = info.s_len
    if s > len(body):  # the SDK aborts here; we refuse
        raise DecryptError(ERR_KEY_INFO, f"key info s_len={s} exceeds the body ({len(body)})")
    body = body[:s] + body[2 * s :]
    if info.end_len < 0 or info.end_len > len(body):
        raise DecryptError(ERR_KEY_INFO, f"key info end_len={info.end_len} exceeds the body")
    if info.end_len:
        body = body[: -info.end_len]
    try:
        return aes_decrypt_b64(body, info.k1.encode("utf-8"))
    except ValueError as exc:
        raise DecryptError(ERR_DECRYPT, f"message body does not decrypt: {exc}") from None


def encrypt_data(plaintext: bytes, rng: random.Random) -> tuple[str, str]:
    """Inverse of :func:`decrypt_data`: returns ``(random_key, encrypt_chat_msg)``.

    ``rng`` drives every choice (keys, IVs, lengths, filler) so that output is reproducible.
    """
    k1 = "".join(rng.choices(_ALNUM, k=32))
    body = aes_encrypt_b64(plaintext, k1.encode("ascii"), rng.randbytes(16))
    info = KeyInfo(
        k1=k1, pre_len=rng.randint(0, 15), end_len=rng.randint(0, 15), s_len=rng.randint(1, 24)
    )
    msg_key = "".join(rng.choices(_ALNUM, k=32))
    random_key = aes_encrypt_b64(info.encode(), msg_key.encode("ascii"), rng.randbytes(16))

    def filler(k: int) -> str:
        return "".join(rng.choices(_B64, k=k))

    s = info.s_len
    encrypt_msg = (
        filler(_PREFIX)
        + msg_key
        + filler(info.pre_len)
        + body[:s]
        + filler(s)
        + body[s:]
        + filler(info.end_len)
    )
    return random_key, encrypt_msg


# --------------------------------------------------------------------------- RSA


def rsa_decrypt_random_key(private_key: rsa.RSAPrivateKey, encrypt_random_key: str) -> str:
    """Step 1: PKCS#1 v1.5. A wrong key may "succeed" into garbage: require base64 text."""
    try:
        blob = base64.b64decode(encrypt_random_key, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptError(ERR_ENCRYPT_KEY, "encrypt_random_key is not base64") from None
    try:
        raw = private_key.decrypt(blob, padding.PKCS1v15())
    except ValueError:
        raise DecryptError(ERR_ENCRYPT_KEY, "RSA decryption of encrypt_random_key failed") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    if not text or any(c not in _B64 + "=" for c in text):
        raise DecryptError(
            ERR_ENCRYPT_KEY,
            "RSA output is not a base64 random key: wrong private key for this version?",
        )
    return text


def rsa_encrypt_random_key(public_key: rsa.RSAPublicKey, random_key: str) -> str:
    return base64.b64encode(
        public_key.encrypt(random_key.encode("ascii"), padding.PKCS1v15())
    ).decode("ascii")


def new_private_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)
