"""Hand-made archive items for tests: real encryption with one seeded key (version 1)."""

from __future__ import annotations

import base64
import json
import random
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from audit.archive.crypto import encrypt_data
from audit.archive.keys import KeyRing, write_private_key
from audit.archive.simulator.wire import PublicKey, seeded_rsa_key

MSGTIME = 1763431200000  # 2025-11-18 02:00 UTC


@cache
def private_key() -> rsa.RSAPrivateKey:
    return seeded_rsa_key(1024, random.Random(11))


def keyring() -> KeyRing:
    return KeyRing({1: private_key()})


def write_key(path: Path) -> Path:
    write_private_key(private_key(), path)
    return path


def plaintext(msgid: str, content: Any = "您好", **fields: Any) -> bytes:
    """A text message as WeCom would encrypt it; ``fields`` override the common ones.

    ``ensure_ascii`` writes NUL and lone surrogates as JSON escapes, as a sender's client would.
    """
    plain = {
        "msgid": msgid,
        "action": "send",
        "from": "li.s001",
        "tolist": ["wmCUSTOMER1"],
        "roomid": "",
        "msgtime": MSGTIME,
        "msgtype": "text",
        "text": {"content": content},
        **fields,
    }
    return json.dumps(plain, ensure_ascii=True).encode("ascii")


def item(seq: int, msgid: str, data: bytes, rng: random.Random) -> dict[str, Any]:
    """An encrypted chatdata item carrying ``data`` as its plaintext."""
    random_key, chat_msg = encrypt_data(data, rng)
    encrypted_key = PublicKey.of(private_key()).encrypt(random_key.encode("ascii"), rng)
    return {
        "seq": seq,
        "msgid": msgid,
        "publickey_ver": 1,
        "encrypt_random_key": base64.b64encode(encrypted_key).decode("ascii"),
        "encrypt_chat_msg": chat_msg,
    }


def text_item(seq: int, msgid: str, rng: random.Random, **kw: Any) -> dict[str, Any]:
    return item(seq, msgid, plaintext(msgid, **kw), rng)


def line(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=True).encode("ascii") + b"\n"
