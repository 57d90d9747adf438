"""The SDK stand-in (``standin_sdk.c``: the official binary's C ABI, the WeCom service
replaced by files) and a small archive for it to serve: a staff member sends a WeChat Pay
code in a conversation with a finding, and a group code in a quiet one. Importable by the
test modules as ``standin_sdk``."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simfixtures import chat, write_file_archive

from audit.archive.simulator.pictures import _content, render

SOURCE = Path(__file__).resolve().parent / "standin_sdk.c"
STAFF, CUSTOMER, QUIET = "li.s001", "wmCUST01", "wmQUIET1"


def build_library(directory: Path) -> Path | None:
    """The stand-in built into ``directory``; None without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    out = directory / "libWeWorkFinanceSdk_C.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", str(out), str(SOURCE)], check=True)
    return out


def _picture(kind: str) -> tuple[str, bytes]:
    key, content = _content(kind, random.Random(f"sources:{kind}"))
    return content, render(kind, key, content)


# sdkfileid -> (QR payload, picture)
PICTURES = {"fid-pay": _picture("pay_wechat"), "fid-group": _picture("group_qr")}
# msgid -> (QR finding's rule, matched)
EXPECTED = {
    "i1": ("qr.payment_wechat", PICTURES["fid-pay"][0]),
    "i2": ("qr.group_invite", PICTURES["fid-group"][0]),
}


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _image(msgid: str, sender: str, to: str, minute: int, fileid: str) -> dict[str, Any]:
    data = PICTURES[fileid][1]
    return chat(
        msgid, sender, to, minute, msgtype="image", sdkfileid=fileid, md5sum=md5(data),
        filesize=len(data),
    )  # fmt: skip


@dataclass(frozen=True)
class StandInArchive:
    archive: Path  # the exported archive file (JSON lines of chatdata items)
    key: Path  # the private key of publickey_ver 1
    media: Path  # what GetMediaData serves: one file per sdkfileid
    chat: Path  # what GetChatData answers: the archive as one page

    def env(self, library: Path) -> dict[str, str]:
        """The environment of a process whose archive is the stand-in's (source sdk)."""
        return {
            "STANDIN_SDK_MEDIA": str(self.media),
            "STANDIN_SDK_CHAT": str(self.chat),
            "STANDIN_SDK_CHUNK": "2048",  # several GetMediaData calls a picture
            "AUDIT_ARCHIVE__SOURCE": "sdk",
            "AUDIT_ARCHIVE__CORPID": "ww0123456789abcdef",
            "AUDIT_ARCHIVE__SECRET": "s3cret",
            "AUDIT_ARCHIVE__SDK_LIBRARY": str(library),
            "AUDIT_ARCHIVE__KEYS__1": str(self.key),
            "AUDIT_ARCHIVE__TIMEOUT": "1",
        }


def standin_archive(directory: Path) -> StandInArchive:
    directory.mkdir(parents=True, exist_ok=True)
    plains = [
        chat("t1", STAFF, CUSTOMER, 0, "加我私人微信，发你照片"),
        _image("i1", STAFF, CUSTOMER, 1, "fid-pay"),
        chat("q1", STAFF, QUIET, 0, "您好，请问有什么可以帮您"),
        _image("i2", STAFF, QUIET, 1, "fid-group"),
    ]
    archive, key = write_file_archive(directory, plains)
    items = [json.loads(line) for line in archive.read_text("utf-8").splitlines()]
    page = directory / "chatdata.json"
    page.write_text(json.dumps({"errcode": 0, "errmsg": "ok", "chatdata": items}), "utf-8")
    media = directory / "wecom-media"
    media.mkdir()
    for fileid, (_payload, data) in PICTURES.items():
        (media / fileid).write_bytes(data)
    return StandInArchive(archive, key, media, page)
