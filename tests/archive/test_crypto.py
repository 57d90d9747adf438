"""The native decryptor: fixed vectors checked against the official SDK, and round trips."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.archive.crypto import (
    ERR_DECRYPT,
    ERR_ENCRYPT_KEY,
    ERR_KEY_INFO,
    DecryptError,
    KeyInfo,
    decrypt_data,
    encrypt_data,
    rsa_decrypt_random_key,
)

VECTORS = json.loads(
    (Path(__file__).parent.parent / "data" / "vectors" / "decrypt_vectors.json").read_text("utf-8")
)


def _key():  # type: ignore[no-untyped-def]
    return serialization.load_pem_private_key(VECTORS["private_key_pem"].encode(), None)


@pytest.mark.parametrize("vector", VECTORS["ok"], ids=lambda v: json.loads(v["plaintext"])["msgid"])
def test_when_official_vector_then_plaintext_is_byte_identical(vector: dict[str, str]) -> None:
    random_key = rsa_decrypt_random_key(_key(), vector["encrypt_random_key"])  # type: ignore[arg-type]
    assert random_key == vector["random_key"]
    assert decrypt_data(random_key, vector["encrypt_chat_msg"]) == vector["plaintext"].encode()


@pytest.mark.parametrize("vector", VECTORS["errors"], ids=lambda v: v["name"])
def test_when_damaged_vector_then_same_outcome_as_sdk(vector: dict[str, object]) -> None:
    rk, em = str(vector["random_key"]), str(vector["encrypt_chat_msg"])
    if vector["native_code"] == 0:
        # AES-CBC has no MAC: a flipped byte "decrypts" into the same garbage the SDK returns
        assert decrypt_data(rk, em) == base64.b64decode(str(vector["sdk_output_b64"]))
        return
    with pytest.raises(DecryptError) as exc:
        decrypt_data(rk, em)
    assert exc.value.code == vector["native_code"]


def test_when_message_shorter_than_key_section_then_error_not_crash() -> None:
    with pytest.raises(DecryptError) as exc:
        decrypt_data("AAAA", "short")
    assert exc.value.code == ERR_ENCRYPT_KEY


def test_when_s_len_exceeds_message_then_key_info_error() -> None:
    rng = random.Random(3)
    rk, em = encrypt_data(b'{"msgid":"x"}', rng)
    # rebuild the random key around a key info whose s_len is far too large
    from audit.archive.crypto import aes_decrypt_b64, aes_encrypt_b64

    info = KeyInfo.decode(aes_decrypt_b64(rk, em[13:45].encode()))
    bad = KeyInfo(info.k1, info.pre_len, info.end_len, 10_000)
    bad_rk = aes_encrypt_b64(bad.encode(), em[13:45].encode(), bytes(16))
    with pytest.raises(DecryptError) as exc:
        decrypt_data(bad_rk, em)
    assert exc.value.code == ERR_KEY_INFO


def test_when_body_cut_short_then_decrypt_error() -> None:
    rk, em = encrypt_data(b'{"msgid":"x","text":{"content":"hello"}}', random.Random(5))
    with pytest.raises(DecryptError) as exc:
        decrypt_data(rk, em[:-30])
    assert exc.value.code in (ERR_DECRYPT, ERR_KEY_INFO)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=3000), st.integers(0, 2**32))
def test_round_trip_for_any_plaintext(plaintext: bytes, seed: int) -> None:
    rk, em = encrypt_data(plaintext, random.Random(seed))
    assert decrypt_data(rk, em) == plaintext


@given(
    st.text(alphabet="abcXYZ0189", min_size=0, max_size=40),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**31), 2**31 - 1),
)
def test_key_info_protobuf_round_trip(k1: str, a: int, b: int, c: int) -> None:
    info = KeyInfo(k1, a, b, c)
    assert KeyInfo.decode(info.encode()) == info


def test_key_info_decodes_protobuf_bytes_written_by_hand() -> None:
    # field 1 "ab", field 2 = 3, field 4 = 300 (varint 0xac 0x02), unknown field 9 = 1
    raw = b"\x0a\x02ab\x10\x03\x20\xac\x02\x48\x01"
    assert KeyInfo.decode(raw) == KeyInfo("ab", 3, 0, 300)


def test_when_wrong_private_key_then_error_names_the_cause() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(DecryptError) as exc:
        rsa_decrypt_random_key(other, VECTORS["ok"][0]["encrypt_random_key"])
    assert exc.value.code == ERR_ENCRYPT_KEY
