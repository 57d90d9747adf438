"""The conversation page shows a picture with findings as the report drew it for the reader:
boxes drawn for compliance, filled out (and its text masked) for a store supervisor.

On ``dashboard_seed.py`` plus the two pictures of ``picture_seed.py`` in 南京路店's
conversation, read once for the module.
"""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from apptest_helpers import app_as, principal
from dashboard_seed import DashSeed, seed_dashboard
from picture_seed import SeededPicture, seed_pictures
from sqlalchemy import Engine

from audit import reports
from audit.store.db import make_engine

PAGE = "views/conversation.py"
IMG = re.compile(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')

pytestmark = pytest.mark.usefixtures("isolated_app")

Seeded = tuple[str, Path, DashSeed, dict[str, SeededPicture]]


@pytest.fixture(scope="module")
def pictured(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Seeded:
    folder = tmp_path_factory.mktemp("pictured")
    shutil.copy(sqlite_template, folder / "audit.db")
    url = f"sqlite:///{folder / 'audit.db'}"
    engine = make_engine(url)
    seed = seed_dashboard(engine)
    seeded = seed_pictures(engine, folder / "served", folder / "media")
    engine.dispose()
    return url, folder / "media", seed, seeded


@pytest.fixture
def db(pictured: Seeded, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, Seeded]]:
    url, media, _, _ = pictured
    monkeypatch.setenv("AUDIT_DATABASE__URL", url)
    monkeypatch.setenv("AUDIT_MEDIA__DIRECTORY", str(media))
    engine = make_engine(url)
    yield engine, pictured
    engine.dispose()


@pytest.mark.parametrize("user", ["officer", "nanjing"])
def test_the_page_shows_each_picture_as_drawn_for_the_reader(
    db: tuple[Engine, Seeded], user: str
) -> None:
    engine, (_, media, seed, seeded) = db
    who = principal(engine, user)
    at = app_as(who, PAGE, conversation=str(seed.conv_nanjing))
    [html] = [e.proto.body for e in at.get("html") if 'class="tx"' in e.proto.body]
    shown = [base64.b64decode(data) for data in IMG.findall(html)]
    view = reports.open_conversation(engine, who, seed.conv_nanjing, media_dir=media)
    assert view is not None
    drawn = [p.png for m in view.messages for p in m.pictures]
    assert len(shown) == len(seeded) == 2 and shown == drawn
    for picture in seeded.values():
        assert picture.data not in shown
        assert base64.b64encode(picture.data).decode() not in html
    phone, payload = seeded["phone"].content, seeded["pay"].content
    if who.may_unmask:
        assert phone in html and payload in html
        assert "privacy</b> · ocr.privacy.phone" in html
    else:
        # neither in the picture's caption nor in the finding's line beneath it
        assert phone not in html and payload not in html and payload[:20] not in html
        assert "「手机：[手机号]」 · 已遮盖 masked" in html and "「[二维码内容]」" in html
        assert html.count("masked picture") == 2
