"""Real image files for the simulated archive's ``image`` messages and the image items of its
``mixed`` messages and forwarded chat records (``chatrecord``).

Each picture is drawn with Pillow (QR codes by segno) and written once under
``media/<sha256>.png``; ``media/index.json`` maps each ``sdkfileid`` to its file, which is
what :class:`SimulatedMediaFetcher` serves in place of the SDK's GetMediaData. The message's
``md5sum`` and ``filesize`` are those of the real file, so downloads are checked as in
production.

What a picture shows is drawn from a generator seeded by (seed, msgid, item), so the archive
does not depend on the order pictures are made in. Staff send the violations (personal WeChat
and group QR codes, WeChat Pay and Alipay collection codes, screenshots with a phone number,
an ID number or a bank card) besides ordinary photos, plan pages and the operator's own codes;
customers send photos, plan pages and bills, which is also what the customers' chats that
staff forward (``chatrecord``) show. ``image_truth.jsonl`` lists every picture with what it
shows (``category`` set for violations).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from audit.archive.media import MediaError
from audit.archive.messages import item_msgtype
from audit.archive.simulator import texts as T
from audit.archive.simulator.world import SURNAMES

MEDIA_DIR = "media"
MEDIA_INDEX = "index.json"
IMAGE_TRUTH_FILE = "image_truth.jsonl"
FONT_ENV = "AUDIT_CJK_FONT"
_FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
# The operator's own codes: its official account and its WeCom contact pages. The default
# ``[images] allow_payloads`` lists these prefixes, so they are never findings.
OFFICIAL_ACCOUNT = "http://weixin.qq.com/q/02LxTxOfficial"
CORP_WECOM = "https://work.weixin.qq.com/ca/cawcde-lxtx"
POOL = 12  # distinct variants per kind: pictures repeat, as forwarded pictures do

# kind -> (category if a violation, weight when staff send, weight when customers send)
KINDS: dict[str, tuple[str | None, float, float]] = {
    "photo": (None, 0.22, 0.45),
    "plan_page": (None, 0.18, 0.30),
    "bill": (None, 0.04, 0.25),
    "official_qr": (None, 0.08, 0.0),
    "wecom_qr": (None, 0.05, 0.0),
    "personal_qr": ("diversion", 0.08, 0.0),
    "group_qr": ("diversion", 0.05, 0.0),
    "pay_wechat": ("diversion", 0.06, 0.0),
    "pay_alipay": ("diversion", 0.05, 0.0),
    "shot_phone": ("privacy", 0.07, 0.0),
    "shot_id": ("privacy", 0.06, 0.0),
    "shot_bank": ("privacy", 0.06, 0.0),
}


class FontMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class ImageTruth:
    msgid: str
    item: int  # 0 for an image message, the item's index in a mixed message or chat record
    kind: str
    category: str | None
    role: str
    content: str  # the QR payload or the sensitive number drawn, "" for ordinary pictures
    sha256: str


@lru_cache(maxsize=1)
def font_path() -> str:
    configured = os.environ.get(FONT_ENV)
    for path in ((configured,) if configured else ()) + _FONT_CANDIDATES:
        if Path(path).is_file():
            return path
    raise FontMissing(
        "no CJK font to draw the simulated pictures' Chinese text: install fonts-noto-cjk, "
        f"set {FONT_ENV} to a .ttf/.ttc file, or simulate with --no-images"
    )


def unavailable() -> str | None:
    """Why pictures cannot be drawn here (a missing package or font), or None."""
    try:
        import segno  # noqa: F401

        font_path()
    except ImportError:
        return "segno is not installed (pip install 'wecom-audit[images]')"
    except FontMissing as exc:
        return str(exc)
    return None


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_path(), size)


class PictureMaker:
    """Fills in image payloads with real files under ``out/media``, and records the truth."""

    def __init__(self, seed: int, out: Path) -> None:
        self.seed = seed
        self.media = out / MEDIA_DIR
        self.media.mkdir(parents=True, exist_ok=True)
        self.index: dict[str, str] = {}
        self.rendered: dict[tuple[str, str, str], tuple[str, bytes]] = {}  # content -> file
        self.truth = (out / IMAGE_TRUTH_FILE).open("w", encoding="utf-8")
        font_path()  # fail before the first picture, not in the middle of the archive

    def close(self) -> None:
        self.truth.close()
        tmp = self.media / (MEDIA_INDEX + ".part")
        tmp.write_text(json.dumps(self.index, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.media / MEDIA_INDEX)

    def attach(self, plain: dict[str, Any]) -> list[ImageTruth]:
        """Give ``plain``'s pictures real files (in place); what they show."""
        msgtype = plain.get("msgtype")
        role = "customer" if str(plain.get("from", "")).startswith(("wm", "wo")) else "staff"
        out = []
        if msgtype == "image" and isinstance(plain.get("image"), dict):
            out.append(self._fill(plain["msgid"], 0, role, plain["image"]))
        elif msgtype == "mixed" and isinstance(plain.get("mixed"), dict):
            for index, item in enumerate(plain["mixed"].get("item", [])):
                if item.get("type") == "image":
                    payload = json.loads(item["content"])
                    out.append(self._fill(plain["msgid"], index, role, payload))
                    item["content"] = json.dumps(payload, ensure_ascii=False)
        elif msgtype == "chatrecord" and isinstance(plain.get("chatrecord"), dict):
            # a customer's chat forwarded by staff: the customer's pictures
            for index, item in enumerate(plain["chatrecord"].get("item", [])):
                if item_msgtype(item.get("type")) == "image":
                    payload = json.loads(item["content"])
                    out.append(self._fill(plain["msgid"], index, "customer", payload))
                    item["content"] = json.dumps(payload, ensure_ascii=False)
        for truth in out:
            self.truth.write(json.dumps(asdict(truth), ensure_ascii=False) + "\n")
        return out

    def _fill(self, msgid: str, item: int, role: str, payload: dict[str, Any]) -> ImageTruth:
        rng = random.Random(f"picture:{self.seed}:{msgid}:{item}")
        names = list(KINDS)
        weights = [KINDS[k][1] if role == "staff" else KINDS[k][2] for k in names]
        kind = rng.choices(names, weights)[0]
        variant = random.Random(f"variant:{self.seed}:{kind}:{rng.randrange(POOL)}")
        key, content = _content(kind, variant)
        sha, data = self._render(kind, key, content)
        payload["md5sum"] = hashlib.md5(data, usedforsecurity=False).hexdigest()
        payload["filesize"] = len(data)
        self.index[payload["sdkfileid"]] = sha
        return ImageTruth(msgid, item, kind, KINDS[kind][0], role, content, sha)

    def _render(self, kind: str, key: str, content: str) -> tuple[str, bytes]:
        cache_key = (kind, key, content)
        if cache_key not in self.rendered:
            data = render(kind, key, content)
            sha = hashlib.sha256(data).hexdigest()
            path = self.media / f"{sha}.png"
            if not path.exists():
                path.write_bytes(data)
            self.rendered[cache_key] = (sha, data)
        return self.rendered[cache_key]


def _content(kind: str, rng: random.Random) -> tuple[str, str]:
    """(a variant key for the layout, the payload or number the picture carries)."""
    token = "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789", k=22))
    key = f"{rng.choice(SURNAMES)[0]}{rng.choice('伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚')}"
    if kind == "personal_qr":
        return key, rng.choice(("https://u.wechat.com/", "http://weixin.qq.com/r/")) + token
    if kind == "group_qr":
        return key, "https://weixin.qq.com/g/" + token
    if kind == "pay_wechat":
        return key, "wxp://f2f0" + token
    if kind == "pay_alipay":
        return key, "https://qr.alipay.com/" + token.lower()[:20]
    if kind == "official_qr":
        return key, OFFICIAL_ACCOUNT
    if kind == "wecom_qr":
        return key, f"{CORP_WECOM}{rng.randrange(10**6):06d}"
    if kind == "shot_phone":
        return key, T.random_phone(rng)
    if kind == "shot_id":
        return key, T.random_id_number(rng)
    if kind == "shot_bank":
        return key, T.random_bank_card(rng)
    # ordinary pictures: the key picks the layout's words and numbers
    return f"{key}:{rng.randrange(10**6)}", ""


def render(kind: str, key: str, content: str) -> bytes:
    """The PNG bytes of one picture (deterministic for the same arguments)."""
    rng = random.Random(f"render:{kind}:{key}:{content}")
    if kind.endswith("_qr") or kind.startswith("pay_"):
        image = _qr_card(kind, key, content, rng)
    elif kind == "photo":
        image = _photo(rng)
    else:
        image = _screenshot(kind, key, content, rng)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


_QR_CAPTIONS = {
    "personal_qr": ("{name}", "扫一扫上面的二维码图案，加我为朋友"),
    "group_qr": ("群聊：{name}的福利群", "该二维码7天内有效，重新进入将更新"),
    "pay_wechat": ("二维码收款", "扫一扫，向{name}付款"),
    "pay_alipay": ("支付宝收钱码", "{name}  扫一扫付款"),
    "official_qr": ("联讯通信", "扫码关注官方服务号，查话费办业务"),
    "wecom_qr": ("联讯通信 营业厅客服", "扫一扫，添加企业微信客服"),
}
_QR_COLOURS = {
    "pay_wechat": (7, 193, 96),
    "pay_alipay": (22, 119, 255),
    "official_qr": (40, 90, 160),
}


def _qr_card(kind: str, name: str, payload: str, rng: random.Random) -> Image.Image:
    import segno

    matrix = np.array([list(row) for row in segno.make(payload, error="m").matrix], np.uint8)
    modules = (1 - matrix) * 255
    scale = max(4, 220 // matrix.shape[0])
    code = Image.fromarray(modules).resize(
        (matrix.shape[1] * scale, matrix.shape[0] * scale), Image.Resampling.NEAREST
    )
    width, height = 360, 480
    colour = _QR_COLOURS.get(kind, (245, 245, 245))
    card = Image.new("RGB", (width, height), colour)
    panel = Image.new("RGB", (320, 420), (255, 255, 255))
    card.paste(panel, (20, 30))
    draw = ImageDraw.Draw(card)
    title, line = _QR_CAPTIONS[kind]
    draw.text((40, 45), title.format(name=name), fill=(20, 20, 20), font=_font(22))
    border = 4 * scale
    framed = Image.new("L", (code.width + 2 * border, code.height + 2 * border), 255)
    framed.paste(code, (border, border))
    if framed.width > 280:
        framed = framed.resize((280, 280), Image.Resampling.NEAREST)
    card.paste(framed.convert("RGB"), ((width - framed.width) // 2, 90))
    draw.text((40, 400), line.format(name=name), fill=(110, 110, 110), font=_font(15))
    return card


_PRODUCTS = ("华为 Mate 70", "小米 15", "荣耀 Magic7", "OPPO Find X8", "vivo X200", "光猫")


def _photo(rng: random.Random) -> Image.Image:
    """A product photo: a phone or a router drawn in shapes, with its name and price."""
    bg = tuple(rng.randrange(150, 256) for _ in range(3))
    image = Image.new("RGB", (400, 400), bg)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(2, 5)):  # the background: a table, a shelf, a wall
        x0, y0 = rng.randrange(0, 300), rng.randrange(0, 300)
        colour = tuple(rng.randrange(60, 230) for _ in range(3))
        draw.ellipse((x0, y0, x0 + rng.randint(40, 140), y0 + rng.randint(40, 140)), fill=colour)
    left = rng.randint(110, 150)
    body = tuple(rng.randrange(0, 90) for _ in range(3))
    draw.rounded_rectangle((left, 60, left + 130, 320), radius=18, fill=body)
    draw.rounded_rectangle((left + 8, 75, left + 122, 300), radius=10, fill=(70, 120, 190))
    if rng.random() < 0.6:
        name = rng.choice(_PRODUCTS)
        price = rng.choice((1999, 2999, 3999, 4999, 5999, 199, 299))
        draw.text((20, 340), f"{name}  到店价 ¥{price}", fill=(10, 10, 10), font=_font(22))
    return image


def _screenshot(kind: str, name: str, content: str, rng: random.Random) -> Image.Image:
    """A phone screenshot: a title bar and lines of text."""
    image = Image.new("RGB", (360, 640), (246, 246, 246))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 360, 56), fill=(255, 255, 255))
    draw.text(
        (16, 8), f"{rng.randint(8, 21)}:{rng.randrange(60):02d}", fill=(0, 0, 0), font=_font(16)
    )
    title, lines = _screen_lines(kind, name, content, rng)
    draw.text((130, 28), title, fill=(0, 0, 0), font=_font(18))
    y = 80
    for line in lines:
        draw.rectangle((0, y - 8, 360, y + 36), fill=(255, 255, 255))
        draw.text((20, y), line, fill=(30, 30, 30), font=_font(19))
        y += 52
    return image


def _screen_lines(kind: str, name: str, content: str, rng: random.Random) -> tuple[str, list[str]]:
    if kind == "shot_phone":
        return "联系人", [f"姓名：{name}", f"手机：{content}", "备注：老客户，办过宽带"]
    if kind == "shot_id":
        return "证件信息", [f"姓名：{name}", f"公民身份号码：{content}", "签发机关：公安局"]
    if kind == "shot_bank":
        return "银行卡", [f"户名：{name}", f"卡号：{content}", "开户行：中国建设银行"]
    if kind == "bill":
        fee = rng.randint(30, 199)
        return "我的账单", [
            f"{rng.randint(1, 12)}月账单  ¥{fee}.{rng.randrange(100):02d}",
            f"套餐月费  ¥{max(fee - 20, 8)}.00",
            f"流量包  ¥{rng.choice((10, 15, 20))}.00",
            f"号码  1{rng.randint(30, 99)}****{rng.randrange(10000):04d}",
            f"订单号  {T.innocent_order(rng, 'DD')}",
        ]
    plan, price = rng.choice(T.PLANS)
    return "套餐详情", [
        f"{plan}",
        f"月费 {price}元/月",
        f"国内通用流量 {rng.choice((10, 20, 30, 40, 60, 100))}GB",
        f"国内通话 {rng.choice((100, 200, 500, 1000))}分钟",
        f"活动时间 {rng.randint(1, 12)}月1日至12月31日",
        f"客服热线 {rng.choice(T.OPERATORS)[1]}",
    ]


class SimulatedMediaFetcher:
    """:class:`audit.archive.media.MediaFetcher` over a simulated archive's ``media`` folder."""

    def __init__(self, directory: Path) -> None:
        self.media = directory / MEDIA_DIR
        index = self.media / MEDIA_INDEX
        if not index.is_file():
            raise MediaError(f"{index}: no media index (simulated without images?)", False)
        self.index: dict[str, str] = json.loads(index.read_text(encoding="utf-8"))

    def fetch(self, sdkfileid: str, md5sum: str | None, max_bytes: int) -> bytes:
        sha = self.index.get(sdkfileid)
        if sha is None:
            raise MediaError(f"media {sdkfileid[:40]}: unknown sdkfileid", transient=False)
        path = self.media / f"{sha}.png"
        if path.stat().st_size > max_bytes:
            raise MediaError(f"media {sdkfileid[:40]}: larger than {max_bytes} bytes", False)
        return path.read_bytes()
