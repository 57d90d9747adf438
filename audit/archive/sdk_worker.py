"""The official SDK in a process of its own, for GetChatData and GetMediaData.

The binary cannot share a process with the pipeline: it aborts when loaded after OpenCC or
scikit-learn (clashing C++ runtimes), and a bad input can abort it outright. So the ``sdk``
source and the media downloader talk to a fresh interpreter that loads the binary before
anything else, over its stdin/stdout in JSON lines. The secret travels over the pipe, never on
the command line. If the child dies, the call fails with a transient :class:`SdkError` and the
next call starts a new child, so one crash costs a retry, not the puller.

Protocol: one request per line, ``{"op": "init"|"chat"|"media", ...}``; one reply per line,
``{"ok": true, ...}`` or ``{"ok": false, "code": N, "in_json": bool, "operation", "detail"}``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from audit.archive.sdk import SdkError, find_sdk_library
from audit.net import RetryPolicy

CRASHED = 10003  # "system failure": reported when the child process dies


def _serve(stdin: IO[str], stdout: IO[str], lib_path: str) -> None:
    """The child's loop (runs in the fresh interpreter)."""
    from audit.archive.sdk import WeWorkFinanceSdk

    sdk: WeWorkFinanceSdk | None = None
    for line in stdin:
        req = json.loads(line)
        try:
            if req["op"] == "init":
                sdk = WeWorkFinanceSdk(
                    Path(lib_path),
                    proxy=req.get("proxy", ""),
                    passwd=req.get("passwd", ""),
                    timeout=int(req.get("timeout", 10)),
                    retry=RetryPolicy(attempts=1),  # the caller retries
                )
                sdk.init(req["corpid"], req["secret"])
                reply: dict[str, Any] = {"ok": True}
            elif sdk is None:
                raise SdkError(10000, req["op"], "init first")
            elif req["op"] == "chat":
                reply = {"ok": True, "doc": sdk.get_chat_data(int(req["seq"]), int(req["limit"]))}
            elif req["op"] == "media":
                data, outindex, finish = sdk.get_media_data(req["indexbuf"], req["sdkfileid"])
                reply = {
                    "ok": True,
                    "data": base64.b64encode(data).decode("ascii"),
                    "outindexbuf": outindex,
                    "is_finish": finish,
                }
            else:
                raise SdkError(10000, str(req["op"]), "unknown operation")
        except SdkError as exc:
            reply = {
                "ok": False,
                "code": exc.code,
                "in_json": exc.in_json,
                "operation": exc.operation,
                "detail": exc.detail,
            }
        stdout.write(json.dumps(reply) + "\n")
        stdout.flush()


# The child imports nothing but this module's SDK binding before loading the binary.
_BOOT = (
    "import sys, ctypes; ctypes.CDLL(sys.argv[1]); "
    "from audit.archive.sdk_worker import _serve; _serve(sys.stdin, sys.stdout, sys.argv[1])"
)


class IsolatedSdkClient:
    """GetChatData / GetMediaData through a child process (see the module docstring)."""

    def __init__(
        self,
        corpid: str,
        secret: str,
        lib_path: Path | None = None,
        *,
        proxy: str = "",
        passwd: str = "",
        timeout: int = 10,
    ) -> None:
        self.lib_path = find_sdk_library(lib_path)
        self._init = {
            "op": "init",
            "corpid": corpid,
            "secret": secret,
            "proxy": proxy,
            "passwd": passwd,
            "timeout": timeout,
        }
        self._proc: subprocess.Popen[str] | None = None
        self.restarts = 0

    def __repr__(self) -> str:  # no secret in any repr
        return f"IsolatedSdkClient(lib={self.lib_path.name}, restarts={self.restarts})"

    def _start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(self.lib_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # the SDK logs to stderr; nothing of ours goes there
            text=True,
            encoding="utf-8",
        )
        self._proc = proc
        try:
            self._call_on(proc, self._init)
        except SdkError:
            self.close()
            raise
        return proc

    def _call_on(self, proc: subprocess.Popen[str], req: dict[str, Any]) -> dict[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(req) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            code = proc.wait()
            self._proc = None
            self.restarts += 1
            raise SdkError(
                CRASHED, req["op"], f"SDK process died (exit {code}); restarted on retry"
            )
        reply: dict[str, Any] = json.loads(line)
        if not reply["ok"]:
            code, op, detail = int(reply["code"]), str(reply["operation"]), str(reply["detail"])
            raise SdkError(code, op, detail, bool(reply["in_json"]))
        return reply

    def _call(self, req: dict[str, Any]) -> dict[str, Any]:
        proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
        return self._call_on(proc, req)

    def open(self) -> None:
        """Start the child and Init now (SdkError when that fails), before the first call."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()

    def get_chat_data(self, seq: int, limit: int) -> dict[str, Any]:
        doc: dict[str, Any] = self._call({"op": "chat", "seq": seq, "limit": limit})["doc"]
        return doc

    def get_media_data(self, indexbuf: str, sdkfileid: str) -> tuple[bytes, str, bool]:
        r = self._call({"op": "media", "indexbuf": indexbuf, "sdkfileid": sdkfileid})
        return base64.b64decode(r["data"]), str(r["outindexbuf"]), bool(r["is_finish"])

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None

    def __enter__(self) -> IsolatedSdkClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SdkMediaFetcher:
    """:class:`audit.archive.media.MediaFetcher` over the isolated SDK: chunked, md5-checked."""

    def __init__(self, client: IsolatedSdkClient, attempts: int = 3) -> None:
        self.client = client
        self.attempts = attempts

    def fetch(self, sdkfileid: str, md5sum: str | None, max_bytes: int) -> bytes:
        from audit.archive import media
        from audit.archive.sdk import MediaError as SdkMediaError
        from audit.archive.sdk import iter_media

        try:
            return b"".join(
                iter_media(
                    self.client, sdkfileid, md5sum, max_bytes=max_bytes, attempts=self.attempts
                )
            )
        except SdkMediaError as exc:  # too large is final; a bad md5 or a stall may pass later
            raise media.MediaError(str(exc), transient="larger than" not in str(exc)) from None
        except SdkError as exc:
            raise media.MediaError(
                str(exc), transient=exc.transient or exc.code == CRASHED
            ) from None
