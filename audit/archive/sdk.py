"""The official WeCom archive SDK (``libWeWorkFinanceSdk_C.so``) through ctypes.

What lives here (see ``wecom-archive-format.md`` §1-3):

* :class:`SdkError`: every return code (10000-10011) and in-JSON ``errcode`` with a clear
  message and whether it is ``transient`` (retried with exponential backoff, :data:`SDK_RETRY`).
* :func:`find_sdk_library`: the binary from config, else from the optional ``pywecomarchive``
  wheel (``pip install 'wecom-audit[sdk]'``). The binary is never vendored into this repository.
* :class:`WeWorkFinanceSdk`: NewSdk/Init/GetChatData/GetMediaData/DestroySdk, one instance per
  thread (enforced), every slice and media struct freed, buffers read binary-safe.
* :func:`sdk_decrypt`: the SDK's ``DecryptData``, made safe. The binary aborts the whole process
  (uncaught C++ exception) on some malformed envelopes; :func:`check_sdk_input` replays the
  SDK's own checks first (measured on the binary) and refuses what would abort it, with the
  code the native decryptor gives for the same input.
* :class:`IsolatedSdkDecryptor` / :class:`SdkDecryptor`: the SDK in child processes (fresh
  interpreters that load the binary first) that may die without taking the caller with them
  (a crash becomes a failed envelope and the child is restarted); :class:`SdkDecryptor` is
  the pipeline's ``sdk`` decryptor.
* Loading the binary into a process that already imported opencc, scikit-learn, pandas or
  pyarrow aborts it (measured): :func:`load_sdk_library` refuses instead, and the isolated
  children load the binary before anything else.
* :func:`iter_media`: GetMediaData's chunk loop with size cap and md5 check (retried).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ctypes
import hashlib
import importlib.util
import json
import logging
import math
import mmap
import os
import platform
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from audit.archive.crypto import (
    ERR_DECRYPT,
    ERR_ENCRYPT_KEY,
    ERR_KEY_INFO,
    DecryptError,
    KeyInfo,
    aes_decrypt_b64,
    decrypt_data,
)
from audit.archive.keys import KeyRing
from audit.net import RetryPolicy, call_with_retries

if TYPE_CHECKING:
    from audit.archive.ingest import Job, Outcome

log = logging.getLogger(__name__)

T = TypeVar("T")

LIBRARY_NAME = "libWeWorkFinanceSdk_C.so"
WHEEL_PACKAGE = "pywecomarchive"
MAX_LIMIT = 1000
MEDIA_CHUNK = 512 * 1024  # GetMediaData returns at most this much per call
DEFAULT_MEDIA_MAX_BYTES = 200 * 1024 * 1024

# --------------------------------------------------------------------------- errors

RETURN_CODES: Mapping[int, str] = {
    10000: "bad parameter (also: limit 0 or above 1000, empty corpid/secret/sdkfileid)",
    10001: "network error: the archive server could not be reached "
    "(check network access, proxy and timeout)",
    10002: "response parse failure",
    10003: "system call failure",
    10004: "key error (encryption failed)",
    10005: "bad sdkfileid, or (DecryptData) key info invalid",
    10006: "decryption failed",
    10007: "no private key for the message's key version",
    10008: "bad encrypt_key: the random key does not open this message "
    "(wrong private key for its publickey_ver?)",
    10009: "IP not in the trusted list: add this server's public IP to the archive's "
    "trusted IPs in the WeCom admin console",
    10010: "data expired: the archive keeps 5 days",
    10011: "certificate (SSL) error",
}
ERRCODES: Mapping[int, str] = {
    -1: "system busy",
    40001: "invalid secret: use the conversation archive secret, not an application secret",
    45009: "API call rate limit reached",
    45033: "too many concurrent API calls",
    301042: "IP not allowed: add this server's public IP to the archive's trusted IPs",
    301052: "archive service expired: renew conversation archiving in the admin console",
    301053: "conversation archiving is not enabled for this corp",
    301058: "response too large: lower the limit",
}
# DecryptData's codes mean something narrower than the table above
DECRYPT_CODES: Mapping[int, str] = {
    10005: "key info invalid (s_len/pre_len/end_len do not fit the message)",
    10006: "message body does not decrypt",
    10008: "the random key does not open the key info (wrong private key for its version?)",
}
TRANSIENT_RETURN_CODES = frozenset({10001})
TRANSIENT_ERRCODES = frozenset({-1, 45009, 45033})
ERRCODE_TOO_LARGE = 301058


class SdkError(Exception):
    """A failed SDK call: a return code of the binary, or an ``errcode`` in its JSON response.

    ``in_json`` says which of the two; ``transient`` whether retrying later may succeed.
    """

    def __init__(self, code: int, operation: str, detail: str = "", in_json: bool = False) -> None:
        self.code = code
        self.operation = operation
        self.detail = detail
        self.in_json = in_json
        table = ERRCODES if in_json else RETURN_CODES
        self.meaning = table.get(code) or (
            "errcode from the archive server" if in_json else "unknown SDK return code"
        )
        where = "errcode" if in_json else "code"
        text = f"{operation} failed: {self.meaning} ({where} {code})"
        if detail and detail != self.meaning:
            text += f": {detail}"
        super().__init__(text)

    @property
    def transient(self) -> bool:
        return self.code in (TRANSIENT_ERRCODES if self.in_json else TRANSIENT_RETURN_CODES)


class SdkLibraryError(Exception):
    """The SDK binary cannot be found or loaded; the message says how to provide it."""


class SdkThreadError(RuntimeError):
    """An SDK instance used from a thread other than the one that created it."""


class SdkClosedError(RuntimeError):
    """An SDK instance used after :meth:`WeWorkFinanceSdk.close`."""


class MediaError(Exception):
    """A media file that could not be fetched whole: too large, or md5 never matched."""


def check_response(doc: Any, operation: str) -> dict[str, Any]:
    """A decoded response object, or :class:`SdkError` for a non-zero ``errcode``."""
    if not isinstance(doc, dict):
        raise SdkError(10002, operation, f"response is a {type(doc).__name__}, not an object")
    errcode = doc.get("errcode", 0)
    if errcode not in (0, None):
        code = errcode if isinstance(errcode, int) and not isinstance(errcode, bool) else -1
        raise SdkError(code, operation, str(doc.get("errmsg", "")), in_json=True)
    return doc


SDK_RETRY = RetryPolicy(attempts=4, backoff=0.5, backoff_max=30.0)  # the SDK's own default


# --------------------------------------------------------------------------- the binary


def wheel_library() -> Path | None:
    """The binary inside an installed ``pywecomarchive`` wheel (not imported), if any."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    machine = platform.machine().lower()
    system = platform.system()
    if system == "Linux" and machine in ("x86_64", "amd64"):
        rel = Path("lib", "linux", "x86_64", LIBRARY_NAME)
    elif system == "Linux" and machine in ("aarch64", "arm64"):
        rel = Path("lib", "linux", "arm64", LIBRARY_NAME)
    elif system == "Windows" and machine in ("x86_64", "amd64"):
        rel = Path("lib", "windows", "WeWorkFinanceSdk.dll")
    else:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / rel
        if path.is_file():
            return path
    return None


_HOW_TO_PROVIDE = (
    "set archive.sdk_library to the libWeWorkFinanceSdk_C.so downloaded from the WeCom admin "
    "console, or install the optional extra: pip install 'wecom-audit[sdk]' "
    f"(the {WHEEL_PACKAGE} wheel, Linux x86_64)"
)


def find_sdk_library(configured: Path | None = None) -> Path:
    """The configured binary if set (it must exist), else the wheel's; else a clear error."""
    if configured is not None:
        path = configured.expanduser()
        if path.is_file():
            return path
        raise SdkLibraryError(
            f"archive.sdk_library = {configured}: no such file. {_HOW_TO_PROVIDE}"
        )
    wheel = wheel_library()
    if wheel is None:
        raise SdkLibraryError(
            f"the official WeCom archive SDK binary was not found: {_HOW_TO_PROVIDE}"
        )
    return wheel


_P = ctypes.c_void_p
_S = ctypes.c_char_p
_I = ctypes.c_int
_SIGNATURES: dict[str, tuple[list[Any], Any]] = {
    "NewSdk": ([], _P),
    "Init": ([_P, _S, _S], _I),
    "GetChatData": ([_P, ctypes.c_ulonglong, ctypes.c_uint, _S, _S, _I, _P], _I),
    "DecryptData": ([_S, _S, _P], _I),
    "GetMediaData": ([_P, _S, _S, _S, _S, _I, _P], _I),
    "DestroySdk": ([_P], None),
    "NewSlice": ([], _P),
    "FreeSlice": ([_P], None),
    "GetContentFromSlice": ([_P], _P),  # c_void_p, not c_char_p: read with string_at(ptr, len)
    "GetSliceLen": ([_P], _I),
    "NewMediaData": ([], _P),
    "FreeMediaData": ([_P], None),
    "GetOutIndexBuf": ([_P], _P),
    "GetData": ([_P], _P),
    "GetIndexLen": ([_P], _I),
    "GetDataLen": ([_P], _I),
    "IsMediaDataFinish": ([_P], _I),
}
_LIBS: dict[str, ctypes.CDLL] = {}
_LIBS_LOCK = threading.Lock()

# Loading the binary *after* these extension modules aborts the whole process ("free(): invalid
# pointer" while its statically linked C++ runtime initialises). Measured on x86_64 with
# opencc 1.4, scikit-learn, pandas and pyarrow; numpy, scipy, jieba, pyahocorasick, psycopg are
# fine, and every one of them imports fine *after* the binary is loaded.
CONFLICTING_MODULES = ("opencc", "sklearn", "pandas", "pyarrow")


def conflicting_modules() -> list[str]:
    """The already imported modules that make loading the binary abort this process."""
    return [m for m in CONFLICTING_MODULES if m in sys.modules]


def load_sdk_library(path: Path) -> ctypes.CDLL:
    """Load (once per process) and declare the C ABI of the binary at ``path``."""
    key = str(path.resolve())
    with _LIBS_LOCK:
        lib = _LIBS.get(key)
        if lib is None:
            conflicts = conflicting_modules()
            if conflicts:
                raise SdkLibraryError(
                    f"cannot load the WeCom archive SDK into this process: "
                    f"{', '.join(conflicts)} already imported, and the binary aborts the process "
                    "when loaded after them. Use the isolated (child process) SDK decryptor, or "
                    "load the SDK before importing them."
                )
            try:
                lib = ctypes.CDLL(key)
                for name, (argtypes, restype) in _SIGNATURES.items():
                    fn = getattr(lib, name)
                    fn.argtypes = argtypes
                    fn.restype = restype
            except (OSError, AttributeError) as exc:
                raise SdkLibraryError(
                    f"{path}: cannot load the WeCom archive SDK ({exc}); is it the Linux "
                    f"{platform.machine()} build? {_HOW_TO_PROVIDE}"
                ) from None
            _LIBS[key] = lib
        return lib


def _read_slice(lib: ctypes.CDLL, slice_ptr: int) -> bytes:
    n = lib.GetSliceLen(slice_ptr)
    ptr = lib.GetContentFromSlice(slice_ptr)
    return ctypes.string_at(ptr, n) if n > 0 and ptr else b""


# --------------------------------------------------------------------------- DecryptData


@dataclass(frozen=True)
class SdkInputCheck:
    """What the SDK's DecryptData will do with an input, replayed without calling it.

    ``safe``: calling the binary cannot abort the process. ``code``: for a safe input, the
    SDK's return code when it fails before the body step (10008, 10005), 0 when it reaches
    the body step (then 0 or 10006); for an unsafe input, the code to report instead.
    """

    safe: bool
    code: int
    reason: str = ""


_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _native_code(random_key: str, encrypt_msg: str) -> int:
    try:
        decrypt_data(random_key, encrypt_msg)
    except DecryptError as exc:
        return exc.code
    except Exception:
        return ERR_KEY_INFO
    return ERR_KEY_INFO


def _unsafe(random_key: str, encrypt_msg: str, why: str) -> SdkInputCheck:
    return SdkInputCheck(False, _native_code(random_key, encrypt_msg), why)


def _split_body(msg: bytes, info: KeyInfo) -> bytes:
    body = msg[45 + info.pre_len :]
    s = info.s_len
    body = body[:s] + body[2 * s :]
    return body[: len(body) - info.end_len]


def check_sdk_input(random_key: str, encrypt_msg: str) -> SdkInputCheck:
    """Replay DecryptData's checks (byte lengths, as the C code sees them) up to the body.

    Measured on the x86_64 binary: it aborts when the message is shorter than 13 bytes, and
    when ``s_len`` exceeds the body left after ``pre_len`` once its other checks passed
    (``std::string::erase`` out of range). Whatever this replay cannot decide with certainty
    (non-strict base64, a protobuf our decoder reads differently, a key section shorter than
    32 bytes that still opens the key info) is treated as unsafe.
    """
    try:
        rk = random_key.encode("utf-8")
        msg = encrypt_msg.encode("utf-8")
    except UnicodeEncodeError:
        return _unsafe(random_key, encrypt_msg, "input is not encodable as UTF-8")
    if b"\0" in rk or b"\0" in msg:
        return _unsafe(random_key, encrypt_msg, "input contains a NUL character")
    n = len(msg)
    if n < 13:
        return _unsafe(random_key, encrypt_msg, f"encrypt_chat_msg has {n} bytes (< 13)")
    if not rk or any(b not in _B64_ALPHABET for b in rk):
        return _unsafe(random_key, encrypt_msg, "random key is not strict base64")
    try:
        base64.b64decode(rk, validate=True)
    except (binascii.Error, ValueError):
        return _unsafe(random_key, encrypt_msg, "random key is not strict base64")
    try:
        info_bytes = aes_decrypt_b64(rk, msg[13:45])
    except ValueError as exc:
        return SdkInputCheck(True, ERR_ENCRYPT_KEY, f"random key does not open the key info: {exc}")
    if n < 45:
        return _unsafe(random_key, encrypt_msg, "short key section opens the key info (untested)")
    try:
        info = KeyInfo.decode(info_bytes)
    except (ValueError, UnicodeDecodeError) as exc:
        return _unsafe(random_key, encrypt_msg, f"key info not readable here ({exc})")
    s, pre, end = info.s_len, info.pre_len, info.end_len
    if s <= 0 or 2 * s >= n:
        return SdkInputCheck(True, ERR_KEY_INFO, f"key info s_len={s} invalid for {n} bytes")
    if pre < -45 or pre + 45 > n:
        return SdkInputCheck(True, ERR_KEY_INFO, f"key info pre_len={pre} invalid for {n} bytes")
    left = n - 45 - pre
    if s > left:
        return _unsafe(random_key, encrypt_msg, f"key info s_len={s} exceeds the {left} bytes left")
    after = left - min(s, left - s)
    if end < 0 or end > after:
        return SdkInputCheck(True, ERR_KEY_INFO, f"key info end_len={end} exceeds the body")
    return SdkInputCheck(True, 0)


def predict_sdk_code(random_key: str, encrypt_msg: str) -> SdkInputCheck:
    """:func:`check_sdk_input` carried through the body step: the SDK's full outcome."""
    check = check_sdk_input(random_key, encrypt_msg)
    if not check.safe or check.code:
        return check
    msg = encrypt_msg.encode("utf-8")
    info = KeyInfo.decode(aes_decrypt_b64(random_key, msg[13:45]))
    try:
        aes_decrypt_b64(_split_body(msg, info), info.k1.encode("utf-8"))
    except ValueError as exc:
        return SdkInputCheck(True, ERR_DECRYPT, f"message body does not decrypt: {exc}")
    return check


class SdkLibrary:
    """A loaded binary, for the calls that need no SDK instance (DecryptData)."""

    _cache: dict[Path | None, SdkLibrary] = {}  # noqa: RUF012 - process-wide cache

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lib = load_sdk_library(path)

    @classmethod
    def load(cls, configured: Path | None = None) -> SdkLibrary:
        found = cls._cache.get(configured)
        if found is None:
            found = cls._cache[configured] = cls(find_sdk_library(configured))
        return found

    def decrypt(self, random_key: str, encrypt_msg: str) -> bytes:
        """DecryptData, refusing (``DecryptError``) inputs that would abort the process."""
        check = check_sdk_input(random_key, encrypt_msg)
        if not check.safe:
            raise DecryptError(check.code, f"refused, would abort the official SDK: {check.reason}")
        return self.decrypt_unchecked(random_key, encrypt_msg)

    def decrypt_unchecked(self, random_key: str, encrypt_msg: str) -> bytes:
        """DecryptData as is: may abort the process. Only for isolated children."""
        lib = self.lib
        slice_ptr = lib.NewSlice()
        if not slice_ptr:
            raise DecryptError(10003, "official SDK: NewSlice returned NULL")
        try:
            rc = lib.DecryptData(random_key.encode("utf-8"), encrypt_msg.encode("utf-8"), slice_ptr)
            if rc != 0:
                meaning = DECRYPT_CODES.get(rc) or RETURN_CODES.get(rc, "unknown return code")
                raise DecryptError(rc, f"official SDK DecryptData: {meaning}")
            return _read_slice(lib, slice_ptr)
        finally:
            lib.FreeSlice(slice_ptr)


def sdk_decrypt(lib_path: Path | None, random_key: str, encrypt_msg: str) -> bytes:
    """The SDK's DecryptData (no SDK instance needed), validated so it cannot abort us."""
    return SdkLibrary.load(lib_path).decrypt(random_key, encrypt_msg)


# --------------------------------------------------------------------------- GetChatData & co


class WeWorkFinanceSdk:
    """One SDK instance (NewSdk ... DestroySdk), usable only from the thread that made it.

    ``proxy``, ``passwd`` and ``timeout`` (seconds) are the defaults of every network call.
    Transient failures are retried per ``retry``.
    """

    def __init__(
        self,
        lib_path: Path | None = None,
        *,
        proxy: str = "",
        passwd: str = "",
        timeout: int = 10,
        retry: RetryPolicy = SDK_RETRY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.library = SdkLibrary.load(lib_path)
        self._lib = self.library.lib
        self.proxy, self.passwd, self.timeout = proxy, passwd, timeout
        self.retry, self.sleep = retry, sleep
        self._owner = threading.get_ident()
        handle = self._lib.NewSdk()
        if not handle:
            raise SdkError(10003, "NewSdk", "returned NULL")
        self._handle: int | None = handle

    def __enter__(self) -> WeWorkFinanceSdk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sdk(self, operation: str) -> int:
        if threading.get_ident() != self._owner:
            raise SdkThreadError(
                f"{operation}: this WeWorkFinanceSdk belongs to thread {self._owner}; "
                "create one instance per thread"
            )
        if self._handle is None:
            raise SdkClosedError(f"{operation}: the SDK instance is closed")
        return self._handle

    def close(self) -> None:
        """DestroySdk (idempotent; only from the owning thread)."""
        if self._handle is None:
            return
        handle = self._sdk("DestroySdk")
        self._handle = None
        self._lib.DestroySdk(handle)

    def init(self, corpid: str, secret: str) -> None:
        """Init with the corp id and the *conversation archive* secret."""
        rc = self._lib.Init(self._sdk("Init"), corpid.encode("utf-8"), secret.encode("utf-8"))
        if rc != 0:
            detail = "corpid and archive secret must be set" if not (corpid and secret) else ""
            raise SdkError(rc, "Init", detail)

    def _opts(
        self, proxy: str | None, passwd: str | None, timeout: int | None
    ) -> tuple[bytes, bytes, int]:
        return (
            (self.proxy if proxy is None else proxy).encode("utf-8"),
            (self.passwd if passwd is None else passwd).encode("utf-8"),
            self.timeout if timeout is None else timeout,
        )

    def get_chat_data(
        self,
        seq: int,
        limit: int,
        proxy: str | None = None,
        passwd: str | None = None,
        timeout: int | None = None,
    ) -> dict[str, Any]:
        """One GetChatData call: the response object (``errcode`` 0), messages after ``seq``."""
        handle = self._sdk("GetChatData")
        if not 1 <= limit <= MAX_LIMIT:
            raise SdkError(10000, "GetChatData", f"limit {limit} outside 1..{MAX_LIMIT}")
        if seq < 0:
            raise SdkError(10000, "GetChatData", f"seq {seq} is negative")
        opts = self._opts(proxy, passwd, timeout)

        def once() -> dict[str, Any]:
            lib = self._lib
            slice_ptr = lib.NewSlice()
            if not slice_ptr:
                raise SdkError(10003, "GetChatData", "NewSlice returned NULL")
            try:
                rc = lib.GetChatData(handle, seq, limit, *opts, slice_ptr)
                if rc != 0:
                    raise SdkError(rc, "GetChatData")
                raw = _read_slice(lib, slice_ptr)
            finally:
                lib.FreeSlice(slice_ptr)
            try:
                doc = json.loads(raw.decode("utf-8"), strict=False)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise SdkError(10002, "GetChatData", f"response is not JSON ({exc})") from None
            return check_response(doc, "GetChatData")

        return call_with_retries(once, self.retry, sleep=self.sleep, reraise=True)

    def get_media_data(
        self,
        indexbuf: str,
        sdkfileid: str,
        proxy: str | None = None,
        passwd: str | None = None,
        timeout: int | None = None,
    ) -> tuple[bytes, str, bool]:
        """One GetMediaData chunk: ``(data, outindexbuf, is_finish)``; data may contain NULs."""
        handle = self._sdk("GetMediaData")
        opts = self._opts(proxy, passwd, timeout)
        index_b, fileid_b = indexbuf.encode("utf-8"), sdkfileid.encode("utf-8")

        def once() -> tuple[bytes, str, bool]:
            lib = self._lib
            media = lib.NewMediaData()
            if not media:
                raise SdkError(10003, "GetMediaData", "NewMediaData returned NULL")
            try:
                rc = lib.GetMediaData(handle, index_b, fileid_b, *opts, media)
                if rc != 0:
                    raise SdkError(rc, "GetMediaData")
                n, ptr = lib.GetDataLen(media), lib.GetData(media)
                data = ctypes.string_at(ptr, n) if n > 0 and ptr else b""
                n, ptr = lib.GetIndexLen(media), lib.GetOutIndexBuf(media)
                out_index = ctypes.string_at(ptr, n) if n > 0 and ptr else b""
                finished = bool(lib.IsMediaDataFinish(media))
            finally:
                lib.FreeMediaData(media)
            return data, out_index.decode("utf-8", "surrogateescape"), finished

        return call_with_retries(once, self.retry, sleep=self.sleep, reraise=True)

    def iter_media(
        self,
        sdkfileid: str,
        md5sum: str | None = None,
        max_bytes: int = DEFAULT_MEDIA_MAX_BYTES,
        attempts: int = 3,
    ) -> Iterator[bytes]:
        """The whole file, verified, in chunks (see :func:`iter_media`)."""
        self._sdk("GetMediaData")
        return iter_media(self, sdkfileid, md5sum, max_bytes, attempts)


# --------------------------------------------------------------------------- media


class MediaClient(Protocol):
    def get_media_data(self, indexbuf: str, sdkfileid: str) -> tuple[bytes, str, bool]: ...


def iter_media(
    client: MediaClient,
    sdkfileid: str,
    md5sum: str | None = None,
    max_bytes: int = DEFAULT_MEDIA_MAX_BYTES,
    attempts: int = 3,
    spool_bytes: int = 8 * 1024 * 1024,
) -> Iterator[bytes]:
    """Fetch ``sdkfileid`` chunk by chunk (indexbuf "" first, then each ``outindexbuf`` until
    ``is_finish``), spooled (to disk past ``spool_bytes``) and checked against ``md5sum``
    before anything is yielded; a mismatch downloads again, up to ``attempts`` times.

    Raises :class:`MediaError` beyond ``max_bytes``, when the server stops making progress,
    or when no attempt matched the md5.
    """
    if not sdkfileid:
        raise SdkError(10000, "GetMediaData", "empty sdkfileid")
    want = md5sum.lower() if md5sum else None
    got = ""
    for attempt in range(1, attempts + 1):
        with tempfile.SpooledTemporaryFile(max_size=spool_bytes) as spool:
            digest = hashlib.md5(usedforsecurity=False)
            index, total = "", 0
            while True:
                data, out_index, finished = client.get_media_data(index, sdkfileid)
                total += len(data)
                if total > max_bytes:
                    raise MediaError(f"media {sdkfileid[:40]}: larger than {max_bytes} bytes")
                digest.update(data)
                spool.write(data)
                if finished:
                    break
                if not data and out_index == index:
                    raise MediaError(f"media {sdkfileid[:40]}: no progress at index {index!r}")
                index = out_index
            got = digest.hexdigest()
            if want is None or got == want:
                spool.seek(0)
                while chunk := spool.read(MEDIA_CHUNK):
                    yield chunk
                return
        log.warning(
            "media %s: md5 %s != %s (attempt %d/%d)", sdkfileid[:40], got, want, attempt, attempts
        )
    raise MediaError(f"media {sdkfileid[:40]}: md5 {got} != {want} after {attempts} attempts")


# --------------------------------------------------------------------------- isolation


def sdk_decrypt_one(keys: KeyRing, decrypt: Callable[[str, str], bytes], job: Job) -> Outcome:
    """``ingest.decrypt_one`` with another DecryptData: RSA (ours), ``decrypt``, then parse."""
    from audit.archive.ingest import decrypt_one

    return decrypt_one(keys, job, decrypt)


def _keyring_from_pems(pems: Mapping[int, bytes]) -> KeyRing:
    keys = {}
    for ver, pem in pems.items():
        key = serialization.load_pem_private_key(pem, None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError(f"key version {ver} is not an RSA private key")
        keys[ver] = key
    return KeyRing(keys)


def _pems_of(keys: KeyRing | None) -> dict[int, bytes]:
    return {
        v: k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        for v, k in (keys.keys.items() if keys else ())
    }


_CHILD_CODE = "from audit.archive.sdk import _child_entry; _child_entry()"


def _child_entry() -> None:
    """The isolated process: ``python -c _CHILD_CODE READ_FD WRITE_FD PROGRESS_FD``.

    A plain interpreter rather than a ``multiprocessing`` child: spawn re-imports the parent's
    ``__main__`` before running anything, and a main that imported opencc/sklearn/pandas would
    make the binary abort on load (see :data:`CONFLICTING_MODULES`). Here the binary is loaded
    first, before anything but this module is imported.
    """
    rfd, wfd, mfd = (int(a) for a in sys.argv[1:4])
    reader = Connection(rfd, writable=False)
    writer = Connection(wfd, readable=False)
    with mmap.mmap(mfd, 8) as progress:
        _child_main(reader, writer, progress)


def _child_main(reader: Connection, writer: Connection, progress: mmap.mmap) -> None:
    """Answer ("pairs", [(rk, em)]) and ("jobs", [Job]) requests until EOF or "close"."""
    try:
        _kind, lib_path, pems, validate = reader.recv()
        library = SdkLibrary(Path(lib_path))  # first: before any other C++ extension
        keys = _keyring_from_pems(pems)
    except Exception as exc:
        writer.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    decrypt = library.decrypt if validate else library.decrypt_unchecked
    writer.send(("ready", os.getpid()))
    while True:
        try:
            kind, items = reader.recv()
        except (EOFError, OSError):
            return
        if kind == "close":
            return
        results: list[Any] = []
        for i, item in enumerate(items):
            _PROGRESS.pack_into(progress, 0, i)
            if kind == "jobs":
                results.append(sdk_decrypt_one(keys, decrypt, item))
                continue
            try:
                results.append(("ok", decrypt(*item)))
            except DecryptError as exc:
                results.append(("err", exc.code, exc.reason))
            except Exception as exc:
                results.append(("err", 10003, f"{type(exc).__name__}: {exc}"))
        writer.send(results)


_PROGRESS = struct.Struct("q")  # index of the item the child is working on


@dataclass
class _Ticket:
    kind: str
    items: list[Any]
    result: list[Any] | None = None


def _crash_error(kind: str, item: Any, exitcode: int | None, keys: KeyRing) -> Any:
    """The outcome of the item a child died on, with the code the native decryptor gives."""
    how = f"signal {-exitcode}" if exitcode and exitcode < 0 else f"exit code {exitcode}"
    reason = f"SDK process crashed ({how}) on this envelope; it was restarted"
    if kind == "jobs":
        env_id, _msgid, _seq, ver, erk, ecm = item
        try:
            code = _native_code(keys.random_key(ver, erk), ecm)
        except DecryptError as exc:
            code = exc.code
        return env_id, None, str(DecryptError(code, reason))
    return ("err", _native_code(*item), reason)


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    to_child: Connection
    from_child: Connection
    progress: mmap.mmap
    progress_file: IO[bytes]

    def close(self) -> int | None:
        for conn in (self.to_child, self.from_child):
            conn.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.progress.close()
        self.progress_file.close()
        return self.proc.returncode


class IsolatedSdkDecryptor:
    """DecryptData (and whole decrypt jobs) in a child process that may die (POSIX).

    A child that dies (the binary aborts) costs the item it was working on, which comes back
    as a ``DecryptError`` ("SDK process crashed"); the child is restarted and the rest of the
    batch goes on. ``validate`` (default) also refuses unsafe inputs in the child, so crashes
    should not happen at all; isolation is the second line. The child is a fresh interpreter
    that loads the binary before anything else, so it works whatever this process imported.
    """

    START_TIMEOUT = 60.0

    def __init__(
        self,
        lib_path: Path | None = None,
        keys: KeyRing | None = None,
        validate: bool = True,
    ) -> None:
        self.lib_path = find_sdk_library(lib_path)
        self.validate = validate
        self.restarts = 0
        self.keys = keys or KeyRing()
        self._pems = _pems_of(keys)
        self._child: _Child | None = None
        self._pending: _Ticket | None = None

    def __enter__(self) -> IsolatedSdkDecryptor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._child.proc.pid if self._child else None

    def _start(self) -> _Child:
        if self._child is not None:
            return self._child
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        progress_file = tempfile.TemporaryFile()  # noqa: SIM115 - owned by _Child, closed there
        progress_file.truncate(_PROGRESS.size)
        mfd = progress_file.fileno()
        root = str(Path(__file__).resolve().parents[2])  # the directory holding `audit`
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD_CODE, str(down_r), str(up_w), str(mfd)],
                pass_fds=(down_r, up_w, mfd),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            os.close(down_r)
            os.close(up_w)  # the child's death now reads as EOF here
        child = _Child(
            proc,
            Connection(down_w, readable=False),
            Connection(up_r, writable=False),
            mmap.mmap(mfd, _PROGRESS.size),
            progress_file,
        )
        self._child = child
        try:
            child.to_child.send(("init", str(self.lib_path), self._pems, self.validate))
            if child.from_child.poll(self.START_TIMEOUT):
                ready = child.from_child.recv()
            else:
                ready = ("failed", f"no answer within {self.START_TIMEOUT:.0f}s")
        except (EOFError, OSError):
            ready = ("failed", "the process died while loading the SDK")
        if ready[0] != "ready":
            exitcode = self._reap()
            raise SdkLibraryError(
                f"{self.lib_path}: isolated SDK process did not start ({ready[1]}, exit {exitcode})"
            )
        return child

    def _reap(self) -> int | None:
        child, self._child = self._child, None
        return child.close() if child is not None else None

    def close(self) -> None:
        if self._pending is not None:
            self._collect(self._pending)
        if self._child is not None:
            with contextlib.suppress(OSError):
                self._child.to_child.send(("close", []))
        self._reap()

    def _send(self, ticket: _Ticket, items: list[Any]) -> None:
        child = self._start()
        _PROGRESS.pack_into(child.progress, 0, 0)
        child.to_child.send((ticket.kind, items))

    def _submit(self, kind: str, items: list[Any]) -> _Ticket:
        if self._pending is not None:
            self._collect(self._pending)
        ticket = _Ticket(kind, items)
        if not items:
            ticket.result = []
            return ticket
        self._send(ticket, items)
        self._pending = ticket
        return ticket

    def _collect(self, ticket: _Ticket) -> list[Any]:
        if ticket.result is not None:
            return ticket.result
        if self._pending is ticket:
            self._pending = None
        done: list[Any] = []
        remaining = ticket.items
        while True:
            child = self._child
            assert child is not None
            try:
                done.extend(child.from_child.recv())
                break
            except (EOFError, OSError):
                (crashed,) = _PROGRESS.unpack_from(child.progress, 0)
                exitcode = self._reap()
                self.restarts += 1
                log.error(
                    "official SDK child died (exit %s) on item %d of %d; restarting",
                    exitcode,
                    crashed,
                    len(remaining),
                )
                # results before the crash died with the child: redo them, skip the culprit
                redo, culprit, remaining = (
                    remaining[:crashed],
                    remaining[crashed],
                    remaining[crashed + 1 :],
                )
                if redo:
                    again = _Ticket(ticket.kind, redo)
                    self._send(again, redo)
                    done.extend(self._collect(again))
                done.append(_crash_error(ticket.kind, culprit, exitcode, self.keys))
                if not remaining:
                    break
                self._send(ticket, remaining)
        ticket.result = done
        return done

    def decrypt_many(self, pairs: Sequence[tuple[str, str]]) -> list[bytes | DecryptError]:
        out: list[bytes | DecryptError] = []
        for res in self._collect(self._submit("pairs", list(pairs))):
            out.append(res[1] if res[0] == "ok" else DecryptError(res[1], res[2]))
        return out

    def decrypt(self, random_key: str, encrypt_msg: str) -> bytes:
        (res,) = self.decrypt_many([(random_key, encrypt_msg)])
        if isinstance(res, DecryptError):
            raise res
        return res

    def start_jobs(self, jobs: Sequence[Job]) -> Callable[[], list[Outcome]]:
        ticket = self._submit("jobs", list(jobs))
        return lambda: self._collect(ticket)


class SdkDecryptor:
    """The pipeline's ``sdk`` decryptor: same interface as ``ingest.Decryptor``.

    Per job: the random key by RSA with our :class:`KeyRing` (DecryptData takes it already
    decrypted), then the SDK's DecryptData, then the same parsing as ``ingest.decrypt_one``.
    With ``isolate`` (default) the work runs in ``workers`` child processes that may crash
    without harm; otherwise in this process, always validated.
    """

    MIN_CHUNK = 64

    def __init__(
        self,
        keys: KeyRing,
        lib_path: Path | None = None,
        workers: int = 0,
        *,
        isolate: bool = True,
        validate: bool = True,
    ) -> None:
        self.keys = keys
        self.lib_path = find_sdk_library(lib_path)  # loaded in the children only, if isolated
        self.workers = workers or os.cpu_count() or 1
        self.isolate = isolate
        self.validate = validate or not isolate
        self._children: list[IsolatedSdkDecryptor] = []
        if not isolate:
            SdkLibrary.load(self.lib_path)  # fail now, not at the first batch

    def __enter__(self) -> SdkDecryptor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        children, self._children = self._children, []
        for child in children:
            child.close()

    @property
    def restarts(self) -> int:
        return sum(c.restarts for c in self._children)

    def run(self, jobs: Sequence[Job]) -> list[Outcome]:
        return self.start(jobs)()

    def start(self, jobs: Sequence[Job]) -> Callable[[], list[Outcome]]:
        """Begin decrypting ``jobs``; the returned function waits for the outcomes."""
        if not jobs:
            return lambda: []
        if not self.isolate:
            decrypt = SdkLibrary.load(self.lib_path).decrypt
            return lambda: [sdk_decrypt_one(self.keys, decrypt, job) for job in jobs]
        n = max(1, min(self.workers, math.ceil(len(jobs) / self.MIN_CHUNK)))
        while len(self._children) < n:
            self._children.append(IsolatedSdkDecryptor(self.lib_path, self.keys, self.validate))
        size = math.ceil(len(jobs) / n)
        waiters = [self._children[i].start_jobs(jobs[i * size : (i + 1) * size]) for i in range(n)]
        return lambda: [outcome for wait in waiters for outcome in wait()]
