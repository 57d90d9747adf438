"""QR codes in an image: decoded with OpenCV, their payload classified.

The payload says what a code is for: a personal WeChat contact card, a group invitation, a
WeChat Pay or Alipay collection code, an official account, a WeCom contact, or some other
link. Which of these are findings, and the corp's own codes that are not (allow-listed by
prefix), is decided in :func:`classify`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from audit.domain import Severity
from audit.images import Box


@dataclass(frozen=True)
class QrCode:
    payload: str
    box: Box


@dataclass(frozen=True)
class PayloadKind:
    kind: str  # personal_contact, group_invite, payment_wechat, payment_alipay, ...
    label: str  # what a reviewer reads
    severity: Severity | None  # None: recorded, not a finding


# Checked in order, on the payload lower-cased with the scheme's "http(s)://" kept.
_KINDS: tuple[tuple[tuple[str, ...], PayloadKind], ...] = (
    (("wxp://",), PayloadKind("payment_wechat", "微信个人收款码", Severity.HIGH)),
    (
        ("https://qr.alipay.com/", "http://qr.alipay.com/"),
        PayloadKind("payment_alipay", "支付宝收款码", Severity.HIGH),
    ),
    (
        (
            "https://u.wechat.com/",
            "http://u.wechat.com/",
            "http://weixin.qq.com/r/",
            "https://weixin.qq.com/r/",
        ),
        PayloadKind("personal_contact", "个人微信名片二维码", Severity.HIGH),
    ),
    (
        ("https://weixin.qq.com/g/", "http://weixin.qq.com/g/"),
        PayloadKind("group_invite", "微信群二维码", Severity.MEDIUM),
    ),
    (
        (
            "http://weixin.qq.com/q/",
            "https://weixin.qq.com/q/",
            "https://mp.weixin.qq.com/",
            "http://mp.weixin.qq.com/",
        ),
        PayloadKind("official_account", "公众号二维码", Severity.LOW),
    ),
    (
        ("https://work.weixin.qq.com/", "http://work.weixin.qq.com/", "wxwork://"),
        PayloadKind("wecom_contact", "企业微信联系人二维码", Severity.LOW),
    ),
)
OTHER_URL = PayloadKind("other_url", "其他链接", None)
OTHER_TEXT = PayloadKind("other", "其他内容", None)
ALLOWED = PayloadKind("allowed", "本企业的二维码（白名单）", None)


def classify(payload: str, allow: Sequence[str] = ()) -> PayloadKind:
    """What a QR payload is; ``allow`` prefixes (the corp's own codes) are never findings."""
    text = payload.strip()
    if any(text.startswith(prefix) for prefix in allow if prefix):
        return ALLOWED
    low = text.lower()
    for prefixes, kind in _KINDS:
        if low.startswith(prefixes):
            return kind
    if low.startswith(("http://", "https://")):
        return OTHER_URL
    return OTHER_TEXT


def decode(image: NDArray[np.uint8]) -> list[QrCode]:
    """Every QR code OpenCV can read in a BGR or grey image, left to right."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    found: dict[str, QrCode] = {}
    # the ArUco-based detector finds small and several codes; the classic one is the fallback
    for detector in (cv2.QRCodeDetectorAruco(), cv2.QRCodeDetector()):
        ok, texts, points, _ = detector.detectAndDecodeMulti(grey)
        if ok and points is not None:
            for text, quad in zip(texts, points, strict=False):
                if text and text not in found:
                    found[text] = QrCode(text, _box(quad))
        if found:
            break
    return sorted(found.values(), key=lambda q: (q.box[0], q.box[1]))


def _box(quad: NDArray[np.float32]) -> Box:
    xs, ys = quad[:, 0], quad[:, 1]
    return int(xs.min()), int(ys.min()), int(np.ceil(xs.max())), int(np.ceil(ys.max()))
