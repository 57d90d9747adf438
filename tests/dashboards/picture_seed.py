"""Two pictures with findings in a conversation, read by the real image stage.

Added to the first conversation of ``seed_chain`` (南京路店, 张伟), as image messages from
its staff member: a contact screenshot with a mobile number (an OCR privacy finding) and a
WeChat Pay collection code (a QR diversion finding). Both are served by
:class:`SimulatedMediaFetcher` from a folder laid out as the simulator lays it out, and read
(QR decoded, text by OCR) into ``media_dir``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select

from audit.archive.simulator.pictures import (
    MEDIA_DIR,
    MEDIA_INDEX,
    SimulatedMediaFetcher,
    _content,
    render,
)
from audit.config import ImagesConfig, load_settings
from audit.images.stage import ImagePolicy, read_images
from audit.pipeline import load_scanner
from audit.store.db import session_scope
from audit.store.models import Conversation, Envelope, Message, SenderKind, Staff


@dataclass(frozen=True)
class SeededPicture:
    message_id: int
    content: str  # the number drawn, or the QR payload
    data: bytes  # the picture as stored


def picture(kind: str, variant: int = 0) -> tuple[str, bytes]:
    key, content = _content(kind, random.Random(f"dash:{kind}:{variant}"))
    return content, render(kind, key, content)


def seed_pictures(engine: Engine, served: Path, media_dir: Path) -> dict[str, SeededPicture]:
    """``{"phone": ..., "pay": ...}``: the two pictures, read into findings."""
    folder = served / MEDIA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, str] = {}
    out: dict[str, SeededPicture] = {}
    with session_scope(engine) as s:
        conv = s.scalars(select(Conversation).order_by(Conversation.id)).first()
        assert conv is not None
        last = s.scalar(select(func.max(Message.msgtime)).where(Message.conversation_id == conv.id))
        staff = s.get(Staff, conv.staff_id)
        assert last is not None and staff is not None
        for n, (name, kind) in enumerate((("phone", "shot_phone"), ("pay", "pay_wechat"))):
            content, data = picture(kind)
            sha = hashlib.sha256(data).hexdigest()
            (folder / f"{sha}.png").write_bytes(data)
            index[f"pic-{name}"] = sha
            env = Envelope(source="test", seq=950 + n, msgid=f"pic{n}")
            s.add(env)
            s.flush()
            message = Message(
                envelope_id=env.id,
                msgid=env.msgid,
                seq=env.seq,
                action="send",
                msgtype="image",
                sender=staff.userid,
                sender_kind=SenderKind.STAFF,
                msgtime=last + dt.timedelta(seconds=10 * (n + 1)),
                text="",
                conversation_id=conv.id,
                staff_id=staff.id,
                raw={
                    "msgtype": "image",
                    "image": {
                        "sdkfileid": f"pic-{name}",
                        "md5sum": hashlib.md5(data, usedforsecurity=False).hexdigest(),
                        "filesize": len(data),
                    },
                },
            )
            s.add(message)
            s.flush()
            out[name] = SeededPicture(message.id, content, data)
    (folder / MEDIA_INDEX).write_text(json.dumps(index), encoding="utf-8")
    stats = read_images(
        engine,
        SimulatedMediaFetcher(served),
        load_scanner(load_settings(None, environ={})),
        ImagePolicy(directory=media_dir, allow=tuple(ImagesConfig().allow_payloads)),
    )
    assert (stats.images, stats.findings) == (2, 2), stats
    return out
