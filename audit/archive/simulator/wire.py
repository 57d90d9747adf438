"""Writing a simulated archive in the real wire format, reproducibly.

Everything random comes from the seed, including the RSA keys and the PKCS#1 v1.5 padding,
so the same seed gives a byte-identical archive. That determinism is for simulation only:
production keys come from the WeCom admin console and are never derived from a seed.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass
from typing import Any, TextIO

from cryptography.hazmat.primitives.asymmetric import rsa

from audit.archive.crypto import encrypt_data

_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]
_E = 65537


def _is_probable_prime(n: int, rng: random.Random, rounds: int = 24) -> bool:
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, rng: random.Random) -> int:
    while True:
        candidate = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
        if candidate % _E != 1 and _is_probable_prime(candidate, rng):
            return candidate


def seeded_rsa_key(bits: int, rng: random.Random) -> rsa.RSAPrivateKey:
    """An RSA key drawn from ``rng`` (Miller-Rabin primes, e = 65537)."""
    while True:
        p, q = _prime(bits // 2, rng), _prime(bits - bits // 2, rng)
        if p != q and (p * q).bit_length() == bits:
            break
    if p < q:
        p, q = q, p
    d = pow(_E, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=d % (p - 1),
        dmq1=d % (q - 1),
        iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(_E, p * q),
    )
    return numbers.private_key()


@dataclass(frozen=True)
class PublicKey:
    """The raw numbers of a public key, for fast, seeded PKCS#1 v1.5 encryption."""

    n: int
    e: int
    size: int  # bytes

    @classmethod
    def of(cls, key: rsa.RSAPrivateKey) -> PublicKey:
        nums = key.public_key().public_numbers()
        return cls(nums.n, nums.e, (nums.n.bit_length() + 7) // 8)

    def encrypt(self, message: bytes, rng: random.Random) -> bytes:
        """RFC 8017 RSAES-PKCS1-v1_5 with the padding string drawn from ``rng``."""
        ps_len = self.size - 3 - len(message)
        if ps_len < 8:
            raise ValueError("message too long for the key")
        ps = bytes(b or 1 + (i % 255) for i, b in enumerate(rng.randbytes(ps_len)))
        block = b"\x00\x02" + ps + b"\x00" + message
        c = pow(int.from_bytes(block, "big"), self.e, self.n)
        return c.to_bytes(self.size, "big")


def encrypt_item(
    plain: dict[str, Any], seq: int, ver: int, key: PublicKey, rng: random.Random
) -> dict[str, Any]:
    """One chatdata item exactly as GetChatData returns it."""
    plaintext = json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    random_key, encrypt_chat_msg = encrypt_data(plaintext, rng)
    erk = base64.b64encode(key.encrypt(random_key.encode("ascii"), rng)).decode("ascii")
    return {
        "seq": seq,
        "msgid": plain["msgid"],
        "publickey_ver": ver,
        "encrypt_random_key": erk,
        "encrypt_chat_msg": encrypt_chat_msg,
    }


def write_item(fh: TextIO, item: dict[str, Any]) -> None:
    # "seq" first: the simulated server indexes the file by reading it from each line's head
    fh.write(json.dumps(item, separators=(",", ":")))
    fh.write("\n")
