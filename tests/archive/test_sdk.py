"""The official SDK binding, its safe DecryptData, the sdk decryptor and the sdk source.

Tests marked ``sdk`` run the real ``libWeWorkFinanceSdk_C.so`` (from the ``pywecomarchive``
wheel, or ``AUDIT_SDK_LIBRARY``) and are skipped, with the reason, when it is not installed.
The paging and media tests drive our code with a stand-in for the WeCom service only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from audit.archive.crypto import (
    ERR_DECRYPT,
    ERR_ENCRYPT_KEY,
    ERR_KEY_INFO,
    ERR_NO_KEY,
    DecryptError,
    KeyInfo,
    aes_encrypt_b64,
    decrypt_data,
    rsa_decrypt_random_key,
)
from audit.archive.ingest import Job, decrypt_one, get_checkpoint, pull
from audit.archive.keys import KeyRing
from audit.archive.sdk import (
    ERRCODES,
    RETURN_CODES,
    SDK_RETRY,
    IsolatedSdkDecryptor,
    MediaError,
    SdkDecryptor,
    SdkError,
    SdkLibrary,
    SdkLibraryError,
    check_response,
    check_sdk_input,
    find_sdk_library,
    iter_media,
    predict_sdk_code,
)
from audit.archive.sdk_source import SdkSource, SdkSourceError
from audit.archive.simulator.chats import KNOWN_MSGTYPES, UNKNOWN_MSGTYPES, generate_messages
from audit.archive.simulator.wire import PublicKey, encrypt_item, seeded_rsa_key
from audit.archive.simulator.world import build_world
from audit.config import SimulatorConfig
from audit.net import RetryPolicy, call_with_retries
from audit.store.db import make_engine, session_scope
from audit.store.models import Envelope

ALL_TYPES = ("switch", *KNOWN_MSGTYPES, *UNKNOWN_MSGTYPES)
# big enough to contain every msgtype (disagree is rare), still generated in a blink
CFG = SimulatorConfig(
    seed=11,
    regions=1,
    cities_per_region=1,
    stores=4,
    staff_per_store=3,
    customers_per_staff=40,
    days=1,
    messages=12000,
    key_bits=1024,
)
VER = 3


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return seeded_rsa_key(1024, random.Random("test_sdk"))


@pytest.fixture(scope="module")
def samples() -> dict[str, dict[str, Any]]:
    """The first simulated message of every msgtype (``switch`` for switch records)."""
    rng = random.Random(CFG.seed)
    world = build_world(CFG, rng)
    picked: dict[str, dict[str, Any]] = {}
    for sim in generate_messages(world, CFG, rng):
        kind = "switch" if sim.plain.get("action") == "switch" else str(sim.plain["msgtype"])
        picked.setdefault(kind, sim.plain)
    missing = set(ALL_TYPES) - set(picked)
    assert not missing, f"the simulator config produced no {sorted(missing)}"
    return picked


@pytest.fixture(scope="module")
def items(
    samples: dict[str, dict[str, Any]], private_key: rsa.RSAPrivateKey
) -> dict[str, dict[str, Any]]:
    """Each sample encrypted exactly as GetChatData delivers it."""
    rng = random.Random("encrypt")
    pub = PublicKey.of(private_key)
    return {
        kind: encrypt_item(plain, 5000 + i, VER, pub, rng)
        for i, (kind, plain) in enumerate(sorted(samples.items()))
    }


def _plaintext(plain: dict[str, Any]) -> bytes:
    return json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


CRAFTED_PLAIN = b'{"msgid":"x","action":"send"}'


def _crafted(
    pre: int, end: int, s: int, fill_pre: int, fill_s: int, fill_end: int, key: str = "K" * 32
) -> tuple[str, str]:
    """A (random_key, encrypt_chat_msg) whose key info says one thing and layout another."""
    k1 = "k" * 32
    body = aes_encrypt_b64(CRAFTED_PLAIN, k1.encode(), bytes(16))  # 64 base64 chars
    random_key = aes_encrypt_b64(KeyInfo(k1, pre, end, s).encode(), key.encode(), bytes(16))
    msg = "P" * 13 + key + "f" * fill_pre + body[:fill_s] + "F" * fill_s + body[fill_s:]
    return random_key, msg + "e" * fill_end


# key info (pre 3, end 4, s 10) and a layout that fits it: decrypts to CRAFTED_PLAIN
FITS = _crafted(3, 4, 10, 3, 10, 4)
# s_len 65 fits the checks (2*65 < 139, 30+45 <= 139) but exceeds the 64 bytes left: abort
S_LEN_PAST_LEFT = _crafted(30, 0, 65, 30, 0, 0)


def _code(result: bytes | DecryptError) -> int:
    return result.code if isinstance(result, DecryptError) else 0


# --------------------------------------------------------------------------- errors, library


def test_every_return_code_and_errcode_has_a_clear_message() -> None:
    for code in range(10000, 10012):
        err = SdkError(code, "GetChatData")
        assert err.meaning == RETURN_CODES[code] and f"(code {code})" in str(err)
        assert err.transient == (code == 10001)
    for code in (301042, 301052, 301053, 301058):
        err = SdkError(code, "GetChatData", "server says so", in_json=True)
        assert err.meaning == ERRCODES[code] and f"errcode {code}" in str(err)
        assert not err.transient
    assert "lower the limit" in str(SdkError(301058, "GetChatData", in_json=True))
    assert SdkError(-1, "GetChatData", in_json=True).transient
    assert "unknown" in str(SdkError(10099, "Init"))


def test_response_errcode_raises_and_ok_passes() -> None:
    assert check_response({"errcode": 0, "chatdata": []}, "op") == {"errcode": 0, "chatdata": []}
    with pytest.raises(SdkError) as exc:
        check_response({"errcode": 301053, "errmsg": "not open"}, "GetChatData")
    assert exc.value.code == 301053 and exc.value.in_json and "not open" in str(exc.value)
    with pytest.raises(SdkError) as exc:
        check_response(["not", "an", "object"], "GetChatData")
    assert exc.value.code == 10002


def test_retry_policy_backs_off_exponentially_on_transient_errors_only() -> None:
    slept: list[float] = []
    calls = 0

    def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise SdkError(10001, "GetChatData")
        return "ok"

    policy = RetryPolicy(attempts=4, backoff=0.5)
    assert call_with_retries(flaky, policy, sleep=slept.append, reraise=True) == "ok"
    assert slept == [0.5, 1.0]
    with pytest.raises(SdkError):
        call_with_retries(
            lambda: (_ for _ in ()).throw(SdkError(10009, "GetChatData")),
            policy,
            sleep=slept.append,
            reraise=True,
        )
    assert slept == [0.5, 1.0]  # not transient: no retry


def test_library_from_config_first_then_wheel_else_error_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = tmp_path / "libWeWorkFinanceSdk_C.so"
    configured.write_bytes(b"\x7fELF")
    assert find_sdk_library(configured) == configured
    with pytest.raises(SdkLibraryError) as exc:
        find_sdk_library(tmp_path / "missing.so")
    assert "archive.sdk_library" in str(exc.value) and "wecom-audit[sdk]" in str(exc.value)
    monkeypatch.setattr("audit.archive.sdk.wheel_library", lambda: None)
    with pytest.raises(SdkLibraryError) as exc:
        find_sdk_library(None)
    assert "archive.sdk_library" in str(exc.value) and "pywecomarchive" in str(exc.value)


# --------------------------------------------------------------------------- DecryptData


@pytest.fixture(scope="module")
def isolated(lib_path: Path) -> Iterator[IsolatedSdkDecryptor]:
    """DecryptData in a clean child: this test process has imported opencc and scikit-learn,
    after which loading the binary aborts (see ``CONFLICTING_MODULES``)."""
    with IsolatedSdkDecryptor(lib_path) as iso:
        yield iso


@pytest.mark.sdk
def test_native_and_sdk_decrypt_every_msgtype_byte_identically(
    isolated: IsolatedSdkDecryptor,
    samples: dict[str, dict[str, Any]],
    items: dict[str, dict[str, Any]],
    private_key: rsa.RSAPrivateKey,
) -> None:
    pairs = [
        (rsa_decrypt_random_key(private_key, it["encrypt_random_key"]), it["encrypt_chat_msg"])
        for it in items.values()
    ]
    official = isolated.decrypt_many(pairs)
    differ = []
    for kind, pair, sdk_out in zip(items, pairs, official, strict=True):
        native = decrypt_data(*pair)
        if not (sdk_out == native == _plaintext(samples[kind])):
            differ.append(kind)
    assert set(items) == set(ALL_TYPES) and not differ
    assert isolated.restarts == 0


@pytest.mark.sdk
def test_loading_the_binary_after_conflicting_modules_is_an_error_not_an_abort(
    lib_path: Path, private_key: rsa.RSAPrivateKey
) -> None:
    assert "opencc" in sys.modules  # imported by the simulator
    with pytest.raises(SdkLibraryError, match="opencc"):
        SdkLibrary(lib_path)
    with pytest.raises(SdkLibraryError, match="isolated"):
        SdkDecryptor(KeyRing({VER: private_key}), lib_path, isolate=False)


REPO = Path(__file__).resolve().parents[2]


def _run_clean(lib_path: Path, body: str) -> dict[str, Any]:
    """Run ``body`` in a fresh interpreter that may load the binary in-process; it fills
    ``out``, which comes back as JSON. An abort of the binary shows as a failed exit."""
    script = (
        "import json, sys\nfrom pathlib import Path\nLIB = Path(sys.argv[1])\nout = {}\n"
        + textwrap.dedent(body)
        + "\nprint(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(lib_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.sdk
def test_in_process_sdk_decrypt_refuses_inputs_that_abort_the_binary(lib_path: Path) -> None:
    out = _run_clean(
        lib_path,
        """
        import random
        from audit.archive.crypto import DecryptError, KeyInfo, aes_encrypt_b64
        from audit.archive.crypto import decrypt_data, encrypt_data
        from audit.archive.sdk import SdkLibrary, check_sdk_input, sdk_decrypt

        rk, em = encrypt_data('{"msgid":"中文\\u0000"}'.encode(), random.Random(5))
        out["ok"] = sdk_decrypt(LIB, rk, em) == decrypt_data(rk, em)
        k1, key = "k" * 32, "K" * 32
        body = aes_encrypt_b64(b'{"msgid":"x","action":"send"}', k1.encode(), bytes(16))
        crafted = aes_encrypt_b64(KeyInfo(k1, 30, 0, 65).encode(), key.encode(), bytes(16))
        cut = next(n for n in range(13, len(em)) if not check_sdk_input(rk, em[:n]).safe)
        unsafe = {
            "empty": (rk, ""),
            "short": (rk, "short"),
            "cut": (rk, em[:cut]),
            "s_len_past_left": (crafted, "P" * 13 + key + "f" * 30 + body),
        }
        calls = []
        real = SdkLibrary.decrypt_unchecked
        SdkLibrary.decrypt_unchecked = lambda self, a, b: calls.append(1) or real(self, a, b)
        for name, (a, b) in unsafe.items():
            try:
                sdk_decrypt(LIB, a, b)
                out[name] = None
            except DecryptError as exc:
                out[name] = [exc.code, exc.reason]
        out["sdk_calls"] = len(calls)
        out["still_alive"] = sdk_decrypt(LIB, rk, em) == decrypt_data(rk, em)
        import opencc  # fine once the binary is loaded
        out["opencc_after"] = opencc.OpenCC("s2t").convert("会话")
        """,
    )
    assert out["ok"] and out["still_alive"] and out["sdk_calls"] == 0  # none reached the binary
    for name in ("empty", "short", "cut", "s_len_past_left"):
        assert out[name] and "refused" in out[name][1], name
    assert out["short"][0] == ERR_ENCRYPT_KEY and out["s_len_past_left"][0] == ERR_KEY_INFO
    assert out["opencc_after"] == "會話"


def _damaged(
    items: dict[str, dict[str, Any]], key: rsa.RSAPrivateKey
) -> dict[str, tuple[str, str]]:
    text = items["text"]
    rk = rsa_decrypt_random_key(key, text["encrypt_random_key"])
    other = rsa_decrypt_random_key(key, items["image"]["encrypt_random_key"])
    em = text["encrypt_chat_msg"]
    # flip a character of the body's IV: only the first plaintext block turns to garbage, the
    # padding stays valid, and both decryptors "succeed" (AES-CBC has no MAC)
    from audit.archive.crypto import KeyInfo, aes_decrypt_b64

    info = KeyInfo.decode(aes_decrypt_b64(rk, em[13:45].encode()))
    at = 45 + info.pre_len + (2 if info.s_len > 2 else info.s_len + 2)
    flipped = em[:at] + ("A" if em[at] != "A" else "B") + em[at + 1 :]
    frk, fem = FITS
    cases = {f"truncated_{n}": (frk, fem[:n]) for n in (13, 20, 44, 45, 46, 60, len(fem) - 3)}
    cases.update(
        {
            "intact": (rk, em),
            "truncated_tail": (rk, em[:-3]),
            "wrong_random_key": (other, em),
            "corrupted_body": (rk, flipped),
            "key_section_altered": (rk, em[:20] + "x" + em[21:]),
            "s_len_zero": _crafted(0, 0, 0, 0, 0, 0),
            "s_len_negative": _crafted(0, 0, -5, 0, 0, 0),
            "s_len_huge": _crafted(0, 0, 2**31 - 1, 0, 0, 0),
            "s_len_half": _crafted(0, 0, 60, 0, 0, 0),
            "s_len_equals_body": _crafted(0, 0, 32, 0, 0, 0),
            "pre_len_negative": _crafted(-10, 0, 5, 0, 5, 0),
            "pre_len_minus_45": _crafted(-45, 0, 5, 0, 0, 0),
            "pre_len_minus_46": _crafted(-46, 0, 5, 0, 0, 0),
            "pre_len_huge": _crafted(2**31 - 1, 0, 5, 0, 5, 0),
            "end_len_negative": _crafted(0, -3, 5, 0, 5, 0),
            "end_len_past_body": _crafted(0, 65, 5, 0, 5, 0),
            "end_len_equals_body": _crafted(0, 64, 5, 0, 5, 0),
            "fits": FITS,
        }
    )
    return cases


# inputs on which the binary aborts the process (measured): refused in-process
UNSAFE = {
    "shorter_than_13": lambda rk, em: (rk, em[:12]),
    "truncated_into_the_body": lambda rk, em: (FITS[0], FITS[1][:50]),
    "s_len_past_what_is_left": lambda rk, em: S_LEN_PAST_LEFT,
}


@pytest.mark.sdk
def test_isolated_decryptor_works_from_a_main_that_imported_conflicting_modules(
    lib_path: Path,
) -> None:
    """The child is a fresh interpreter: the parent's imports (here opencc, which makes an
    in-process load abort) cannot reach it, unlike a multiprocessing spawn child."""
    out = _run_clean(
        lib_path,
        """
        import random
        import opencc
        from audit.archive.crypto import encrypt_data
        from audit.archive.sdk import IsolatedSdkDecryptor, SdkLibraryError, SdkLibrary

        rk, em = encrypt_data(b'{"msgid":"m1"}', random.Random(1))
        try:
            SdkLibrary(LIB)
        except SdkLibraryError:
            out["in_process_refused"] = True
        with IsolatedSdkDecryptor(LIB) as iso:
            out["plain"] = iso.decrypt(rk, em).decode()
        """,
    )
    assert out == {"in_process_refused": True, "plain": '{"msgid":"m1"}'}


@pytest.mark.sdk
def test_official_codes_for_damaged_inputs_equal_our_prediction(
    lib_path: Path, items: dict[str, dict[str, Any]], private_key: rsa.RSAPrivateKey
) -> None:
    cases = _damaged(items, private_key)
    predicted = {name: predict_sdk_code(*pair) for name, pair in cases.items()}
    assert all(p.safe for p in predicted.values()), {
        n: p for n, p in predicted.items() if not p.safe
    }
    # unvalidated, in a child: a wrong prediction fails this test instead of killing pytest
    with IsolatedSdkDecryptor(lib_path, validate=False) as iso:
        results = iso.decrypt_many(list(cases.values()))
        assert iso.restarts == 0
    got = {name: _code(r) for name, r in zip(cases, results, strict=True)}
    assert got == {name: p.code for name, p in predicted.items()}
    assert {got["intact"], got["fits"], got["corrupted_body"]} == {0}  # AES-CBC has no MAC
    assert got["wrong_random_key"] == ERR_ENCRYPT_KEY
    assert got["pre_len_minus_46"] == ERR_KEY_INFO and got["truncated_60"] == ERR_DECRYPT


@pytest.mark.sdk
@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_input_is_refused_and_really_aborts_the_binary(
    case: str,
    isolated: IsolatedSdkDecryptor,
    lib_path: Path,
    items: dict[str, dict[str, Any]],
    private_key: rsa.RSAPrivateKey,
) -> None:
    rk = rsa_decrypt_random_key(private_key, items["text"]["encrypt_random_key"])
    pair = UNSAFE[case](rk, items["text"]["encrypt_chat_msg"])
    assert not check_sdk_input(*pair).safe
    try:
        decrypt_data(*pair)
        expected = ERR_KEY_INFO  # native slicing tolerates s_len past the end; the SDK aborts
    except DecryptError as native:
        expected = native.code
    with pytest.raises(DecryptError) as exc:
        isolated.decrypt(*pair)  # validated: refused before the binary sees it
    assert "refused" in exc.value.reason and exc.value.code == expected
    with IsolatedSdkDecryptor(lib_path, validate=False) as raw:
        with pytest.raises(DecryptError) as exc:
            raw.decrypt(*pair)  # the prediction is right: unvalidated, the child dies
        assert "crashed" in exc.value.reason and raw.restarts == 1


@pytest.mark.sdk
def test_isolated_child_survives_an_input_that_aborts_the_sdk(
    lib_path: Path, items: dict[str, dict[str, Any]], private_key: rsa.RSAPrivateKey
) -> None:
    rk = rsa_decrypt_random_key(private_key, items["text"]["encrypt_random_key"])
    em = items["text"]["encrypt_chat_msg"]
    with IsolatedSdkDecryptor(lib_path, validate=False) as iso:
        with pytest.raises(DecryptError) as exc:
            iso.decrypt(rk, "short")  # aborts the child: std::out_of_range, uncaught
        assert "crashed" in exc.value.reason and exc.value.code == ERR_ENCRYPT_KEY
        assert iso.restarts == 1
        # a batch goes on around the item that killed the child
        out = iso.decrypt_many([(rk, em), S_LEN_PAST_LEFT, (rk, em)])
        assert out[0] == out[2] == decrypt_data(rk, em)
        assert isinstance(out[1], DecryptError) and "crashed" in out[1].reason
        assert iso.restarts == 2
        assert iso.decrypt(rk, em) == decrypt_data(rk, em)


# --------------------------------------------------------------------------- the sdk decryptor


def _jobs(items: dict[str, dict[str, Any]], key: rsa.RSAPrivateKey) -> list[Job]:
    jobs: list[Job] = [
        (
            i,
            it["msgid"],
            it["seq"],
            it["publickey_ver"],
            it["encrypt_random_key"],
            it["encrypt_chat_msg"],
        )
        for i, it in enumerate(items.values(), 1)
    ]
    text = items["text"]
    erk = text["encrypt_random_key"]
    pub = PublicKey.of(key)

    def wrap(random_key: str) -> str:
        return base64.b64encode(pub.encrypt(random_key.encode(), random.Random(1))).decode()

    crash_rk, crash_em = FITS[0], FITS[1][:50]
    jobs += [
        (900, text["msgid"], 1, VER + 1, erk, text["encrypt_chat_msg"]),  # no key: 10007
        (901, text["msgid"], 1, VER, erk, "short"),  # aborts the binary if not refused
        (902, text["msgid"], 1, VER, wrap(crash_rk), crash_em),  # aborts it too
        (903, "other-msgid", 1, VER, erk, text["encrypt_chat_msg"]),  # msgid mismatch
    ]
    return jobs


def _summary(outcomes: list[Any]) -> list[tuple[int, Any, str | None]]:
    """Rows as they are; errors reduced to their code (the wording differs by decryptor)."""
    return [
        (env, row, None if err is None else err[err.rfind("(code") :] if "(code" in err else "x")
        for env, row, err in outcomes
    ]


@pytest.mark.sdk
def test_sdk_decryptor_gives_the_same_outcomes_as_the_native_one(
    lib_path: Path,
    items: dict[str, dict[str, Any]],
    private_key: rsa.RSAPrivateKey,
) -> None:
    keys = KeyRing({VER: private_key})
    jobs = _jobs(items, private_key)
    native = [decrypt_one(keys, job) for job in jobs]
    with SdkDecryptor(keys, lib_path, workers=2) as dec:
        dec.MIN_CHUNK = 8  # use both children on a small batch
        first = dec.start(jobs[:20])
        second = dec.start(jobs[20:])  # started before the first is awaited
        outcomes = first() + second()
        assert dec.restarts == 0
    assert _summary(outcomes) == _summary(native)
    assert sum(row is not None for _, row, _ in outcomes) == len(items)
    assert f"(code {ERR_NO_KEY})" in str(outcomes[-4][2])
    assert f"(code {ERR_ENCRYPT_KEY})" in str(outcomes[-3][2])


@pytest.mark.sdk
def test_unvalidated_isolated_decryptor_turns_a_crash_into_a_failed_envelope(
    lib_path: Path, items: dict[str, dict[str, Any]], private_key: rsa.RSAPrivateKey
) -> None:
    keys = KeyRing({VER: private_key})
    jobs = _jobs(items, private_key)[-5:]
    with SdkDecryptor(keys, lib_path, workers=1, validate=False) as dec:
        outcomes = dec.run(jobs)
        assert dec.restarts == 2
    assert _summary(outcomes) == _summary([decrypt_one(keys, job) for job in jobs])
    assert "crashed" in str(outcomes[2][2]) and "crashed" in str(outcomes[3][2])


# --------------------------------------------------------------------------- the real binary


@pytest.mark.sdk
def test_sdk_instance_calls_on_the_real_binary_without_network(lib_path: Path) -> None:
    """NewSdk/Init/GetChatData/GetMediaData/DestroySdk, in a clean interpreter.

    Measured: Init is local (0, or 10000 for an empty corpid); GetChatData and GetMediaData
    return 10001 within milliseconds when the proxy (or, without network, the server) is
    unreachable; limit 0 or 1001 and an empty sdkfileid give 10000 from the binary itself.
    """
    out = _run_clean(
        lib_path,
        """
        import socket, time
        from audit.archive.sdk import SdkClosedError, SdkError, WeWorkFinanceSdk
        from audit.net import RetryPolicy

        def code(fn):
            try:
                fn()
                return None
            except SdkError as e:
                return [e.code, e.in_json, e.transient, str(e)]

        with socket.socket() as s:  # a port nobody listens on: the proxy is unreachable
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        slept = []
        retry = RetryPolicy(attempts=3, backoff=0.5, backoff_max=30.0)
        t0 = time.monotonic()
        with WeWorkFinanceSdk(
            LIB, proxy=f"http://127.0.0.1:{port}", timeout=1, retry=retry, sleep=slept.append
        ) as sdk:
            out["init_empty"] = code(lambda: sdk.init("", ""))
            out["init"] = code(lambda: sdk.init("wwtestcorp0000001", "archive-secret"))
            out["chat"] = code(lambda: sdk.get_chat_data(0, 100))
            out["slept"] = list(slept)
            out["default_route"] = code(lambda: sdk.get_chat_data(0, 10, proxy=""))
            out["media"] = code(lambda: sdk.get_media_data("", "fileid-that-does-not-exist"))
            out["media_empty"] = code(lambda: sdk.get_media_data("", ""))
            out["limit"] = code(lambda: sdk.get_chat_data(0, 1001))
            lib, handle = sdk._lib, sdk._handle
            for limit in (0, 1001):  # the binary's own check, bypassing ours
                sl = lib.NewSlice()
                out[f"raw_limit_{limit}"] = lib.GetChatData(handle, 0, limit, b"", b"", 1, sl)
                lib.FreeSlice(sl)
        sdk.close()  # idempotent
        try:
            sdk.get_chat_data(0, 1)
        except SdkClosedError:
            out["closed"] = True
        out["seconds"] = time.monotonic() - t0
        """,
    )
    assert out["init_empty"][0] == 10000 and out["init"] is None
    assert out["chat"][:3] == [10001, False, True] and "network" in out["chat"][3]
    assert out["slept"] == [0.5, 1.0]  # transient: retried with backoff, then raised
    # no network here gives 10001; with network the server refuses the fake corp: mapped too
    assert out["default_route"][1] or out["default_route"][0] in RETURN_CODES
    assert out["media"][0] == 10001 and out["media_empty"][0] == 10000
    assert out["limit"][0] == out["raw_limit_0"] == out["raw_limit_1001"] == 10000
    assert out["closed"] is True and out["seconds"] < 20


@pytest.mark.sdk
def test_one_instance_per_thread_is_enforced(lib_path: Path) -> None:
    out = _run_clean(
        lib_path,
        """
        import threading
        from audit.archive.sdk import SdkThreadError, WeWorkFinanceSdk
        from audit.net import RetryPolicy

        errors = []

        def use(fn):
            try:
                fn()
            except Exception as exc:
                errors.append(type(exc).__name__)

        with WeWorkFinanceSdk(LIB, timeout=1, retry=RetryPolicy(attempts=1)) as sdk:
            for fn in (
                lambda: sdk.get_chat_data(0, 10),
                lambda: sdk.get_media_data("", "x"),
                lambda: sdk.init("ww", "s"),
                lambda: list(sdk.iter_media("x")),
                sdk.close,
            ):
                t = threading.Thread(target=use, args=(fn,))
                t.start()
                t.join()
            sdk.init("wwtestcorp0000001", "archive-secret")  # the owner still can
            out["errors"] = errors
        """,
    )
    assert out["errors"] == ["SdkThreadError"] * 5


# --------------------------------------------------------------------------- sdk source


class StandInArchive:
    """Replaces only the external WeCom service: GetChatData semantics over simulated items.

    ``too_large_above``: errcode 301058 when asked for more; ``transient``: that many 10001s
    first; ``error_after``: an error page (errcode 301052) once asked past that seq.
    """

    def __init__(
        self,
        items: list[dict[str, Any]],
        too_large_above: int = 1000,
        transient: int = 0,
        error_after: int | None = None,
    ) -> None:
        self.items = sorted(items, key=lambda i: i["seq"])
        self.too_large_above = too_large_above
        self.transient = transient
        self.error_after = error_after
        self.calls: list[tuple[int, int]] = []

    def get_chat_data(self, seq: int, limit: int) -> dict[str, Any]:
        self.calls.append((seq, limit))
        if self.transient:
            self.transient -= 1
            raise SdkError(10001, "GetChatData")
        if not 1 <= limit <= 1000:
            raise SdkError(10000, "GetChatData")
        if limit > self.too_large_above:
            return {"errcode": 301058, "errmsg": "response too large", "chatdata": []}
        if self.error_after is not None and seq >= self.error_after:
            return {"errcode": 301052, "errmsg": "service expired"}
        page = [i for i in self.items if i["seq"] > seq][:limit]
        return {"errcode": 0, "errmsg": "ok", "chatdata": page}


@pytest.fixture(scope="module")
def archive_items(items: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The simulated envelopes with gaps in their seqs, as the real archive has."""
    out, seq = [], 100
    for i, item in enumerate(items.values()):
        seq += 1 if i % 7 else 3
        out.append({**item, "seq": seq})
    return out


def _no_sleep(_seconds: float) -> None:
    """The sleep of sources whose waits these tests do not look at."""


def test_sdk_source_pages_with_the_stored_seq_unchanged(
    archive_items: list[dict[str, Any]],
) -> None:
    server = StandInArchive(archive_items)
    start = archive_items[9]["seq"]
    pages = list(SdkSource(server, sleep=_no_sleep).pages(start, 5))
    got = [item.msgid for page in pages for item in page.items]
    assert got == [i["msgid"] for i in archive_items[10:]]  # the one right after start included
    assert all(len(p.items) <= 5 and not any(i.problem for i in p.items) for p in pages)
    seqs = [seq for seq, _ in server.calls]
    assert seqs == [start] + [p.max_seq for p in pages]  # never max_seq + 1
    assert server.calls[-1] == (archive_items[-1]["seq"], 5)  # the empty page ends it


def test_sdk_source_halves_the_limit_on_response_too_large(
    archive_items: list[dict[str, Any]],
) -> None:
    server = StandInArchive(archive_items, too_large_above=7)
    source = SdkSource(server, sleep=_no_sleep)
    pages = list(source.pages(0, 2000))
    assert [limit for _, limit in server.calls[:4]] == [1000, 500, 250, 125]
    assert source.limit == 7 and {limit for _, limit in server.calls[-3:]} == {7}
    assert [i.msgid for p in pages for i in p.items] == [i["msgid"] for i in archive_items]


def test_sdk_source_retries_transient_errors_with_backoff(
    archive_items: list[dict[str, Any]],
) -> None:
    slept: list[float] = []
    server = StandInArchive(archive_items, transient=2)
    pages = list(
        SdkSource(server, retry=replace(SDK_RETRY, attempts=3), sleep=slept.append).pages(0, 50)
    )
    assert slept == [0.5, 1.0] and sum(len(p.items) for p in pages) == len(archive_items)
    assert server.calls[:3] == [(0, 50)] * 3

    server = StandInArchive(archive_items, transient=10)
    with pytest.raises(SdkSourceError) as exc:
        list(
            SdkSource(server, retry=replace(SDK_RETRY, attempts=3), sleep=slept.append).pages(0, 50)
        )
    assert exc.value.code == 10001 and "after 3 attempts" in str(exc.value)


def test_sdk_source_error_page_stops_the_pull_at_the_last_stored_page(
    archive_items: list[dict[str, Any]], sqlite_url: str
) -> None:
    cut = archive_items[11]["seq"]
    server = StandInArchive(archive_items, error_after=cut)
    engine = make_engine(sqlite_url)
    try:
        with pytest.raises(SdkSourceError) as exc:
            pull(engine, SdkSource(server, sleep=_no_sleep), limit=6)
        assert exc.value.code == 301052 and "expired" in str(exc.value)
        assert isinstance(exc.value.__cause__, SdkError) and exc.value.__cause__.in_json
        with session_scope(engine) as session:
            assert get_checkpoint(session, "sdk") == cut
            assert session.scalar(select(func.count()).select_from(Envelope)) == 12
        server.error_after = None  # fixed: the next pull goes on from the checkpoint
        stats = pull(engine, SdkSource(server, sleep=_no_sleep), limit=6)
        assert stats.stored == len(archive_items) - 12 and stats.duplicates == 0
    finally:
        engine.dispose()


def test_sdk_source_keeps_unreadable_items_as_problems(archive_items: list[dict[str, Any]]) -> None:
    broken = [*archive_items[:3], {"seq": 999_999, "msgid": ""}]
    pages = list(SdkSource(StandInArchive(broken), sleep=_no_sleep).pages(0, 10))
    (page,) = pages
    assert page.items[-1].problem and "msgid missing" in page.items[-1].problem


# --------------------------------------------------------------------------- media


class StandInMedia:
    """GetMediaData semantics: chunks addressed by an opaque index, ``corrupt`` bad downloads."""

    def __init__(self, data: bytes, chunk: int = 7, corrupt: int = 0) -> None:
        self.data, self.chunk, self.corrupt = data, chunk, corrupt
        self.calls: list[str] = []

    def get_media_data(self, indexbuf: str, sdkfileid: str) -> tuple[bytes, str, bool]:
        self.calls.append(indexbuf)
        start = int(indexbuf.removeprefix("Range:")) if indexbuf else 0
        part = self.data[start : start + self.chunk]
        end = start + len(part)
        if end >= len(self.data) and self.corrupt:
            self.corrupt -= 1
            part = part[:-1] + bytes([part[-1] ^ 0xFF])
        return part, f"Range:{end}", end >= len(self.data)


MEDIA = bytes(range(256)) * 3 + b"\0\0end"  # NULs included: binary-safe throughout


def test_media_chunk_loop_passes_outindexbuf_and_checks_md5() -> None:
    client = StandInMedia(MEDIA)
    got = b"".join(iter_media(client, "fileid", hashlib.md5(MEDIA).hexdigest().upper()))
    assert got == MEDIA
    assert client.calls[0] == "" and client.calls[1] == "Range:7"
    assert len(client.calls) == -(-len(MEDIA) // 7)


def test_media_md5_mismatch_is_retried_then_reported() -> None:
    client = StandInMedia(MEDIA, chunk=100, corrupt=1)
    assert b"".join(iter_media(client, "fileid", hashlib.md5(MEDIA).hexdigest())) == MEDIA
    assert client.calls.count("") == 2  # downloaded again from the start

    client = StandInMedia(MEDIA, chunk=100, corrupt=5)
    with pytest.raises(MediaError, match="md5"):
        list(iter_media(client, "fileid", hashlib.md5(MEDIA).hexdigest(), attempts=3))
    assert client.calls.count("") == 3


def test_media_size_cap_and_stuck_index_are_errors() -> None:
    with pytest.raises(MediaError, match="larger than"):
        list(iter_media(StandInMedia(MEDIA, chunk=100), "fileid", max_bytes=500))

    class Stuck:
        def get_media_data(self, indexbuf: str, sdkfileid: str) -> tuple[bytes, str, bool]:
            return b"", indexbuf, False

    with pytest.raises(MediaError, match="no progress"):
        list(iter_media(Stuck(), "fileid"))
