"""Picture findings against a simulated archive's picture truth (``audit eval --simulated``).

The simulator writes ``image_truth.jsonl``: per picture (msgid and item), what it shows (its
``kind``) and the category it is a violation of, if any. Once the archive has been run through
the pipeline, each picture the image stage read is judged by the findings recorded on it:

* a violation is **found** when the picture has a finding of its category from the reader
  that should see it: a QR finding (``qr.*``) on a personal contact, group or payment code, an
  OCR privacy finding (``ocr.privacy.*``) on a screenshot of a phone, ID or card number;
* any finding of another category, or any finding at all on a picture that is no violation
  (a photo, a plan page, a bill, the operator's own codes), is a **false alarm**.

Pictures the stage did not read (consent withheld, no conversation, not run yet) are counted
apart and not judged.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from audit.archive.simulator.pictures import IMAGE_TRUTH_FILE, KINDS
from audit.images import OCR_RULE, QR_RULE, is_image_rule
from audit.store.db import session_scope
from audit.store.models import Finding, Message, MessageImage

_IN_CHUNK = 500  # msgids per IN (...) query

# summary groups: what the issue asks to be measured, in the kinds of the simulator
QR_CODES = ("personal_qr", "group_qr", "pay_wechat", "pay_alipay")
OWN_CODES = ("official_qr", "wecom_qr")
SCREENSHOTS = ("shot_phone", "shot_id", "shot_bank")
ORDINARY = ("photo", "plan_page", "bill")


class ImageTruthError(ValueError):
    """The picture truth cannot be read."""


@dataclass(frozen=True)
class PictureTruth:
    msgid: str
    item: int
    kind: str
    category: str | None


@dataclass
class KindScore:
    kind: str
    category: str | None  # the violation the kind is, None for ordinary pictures
    pictures: int = 0  # read by the stage
    found: int = 0  # violations with a finding of their category (from the right reader)
    false_alarms: int = 0  # pictures with a finding of another category (any, if ordinary)
    alarm_categories: Counter[str] = field(default_factory=Counter)

    @property
    def recall(self) -> float | None:
        return self.found / self.pictures if self.category and self.pictures else None

    @property
    def false_alarm_rate(self) -> float | None:
        return self.false_alarms / self.pictures if self.pictures else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "category": self.category,
            "pictures": self.pictures,
            "found": self.found,
            "recall": _round(self.recall),
            "false_alarms": self.false_alarms,
            "false_alarm_rate": _round(self.false_alarm_rate),
            "false_alarm_categories": dict(sorted(self.alarm_categories.items())),
        }


@dataclass(frozen=True)
class ImageTruthReport:
    directory: str
    pictures: int  # in the truth file
    unread: int  # not read by the image stage (or their message is not in the database)
    kinds: tuple[KindScore, ...]

    def kind(self, name: str) -> KindScore:
        return next(k for k in self.kinds if k.kind == name)

    def group(self, names: tuple[str, ...]) -> KindScore:
        """The kinds ``names`` added up (category: the first's)."""
        parts = [self.kind(n) for n in names if any(k.kind == n for k in self.kinds)]
        total = KindScore("+".join(names), parts[0].category if parts else None)
        for part in parts:
            total.pictures += part.pictures
            total.found += part.found
            total.false_alarms += part.false_alarms
            total.alarm_categories.update(part.alarm_categories)
        return total

    def summary(self) -> dict[str, KindScore]:
        return {
            "qr_codes": self.group(QR_CODES),
            "own_codes": self.group(OWN_CODES),
            "screenshots": self.group(SCREENSHOTS),
            "ordinary": self.group(ORDINARY),
        }

    def format(self) -> str:
        s = self.summary()
        lines = [
            f"pictures against the picture truth of {self.directory}: {self.pictures} pictures, "
            f"{self.pictures - self.unread} read, {self.unread} not read (not judged)",
            "",
            f"{'kind':<12} {'category':<10} {'pictures':>8} {'found':>6} {'recall':>7} "
            f"{'false alarms':>12}",
        ]
        for k in self.kinds:
            recall = f"{k.recall:.3f}" if k.recall is not None else "-"
            lines.append(
                f"{k.kind:<12} {k.category or '-':<10} {k.pictures:>8} {k.found:>6} "
                f"{recall:>7} {k.false_alarms:>12}" + _categories(k, "  ({})")
            )
        lines += [
            "",
            f"QR personal contact, group and payment codes: recall {_pct(s['qr_codes'].recall)} "
            f"({s['qr_codes'].found}/{s['qr_codes'].pictures})",
            f"the operator's own codes flagged: {s['own_codes'].false_alarms} of "
            f"{s['own_codes'].pictures}",
            f"OCR privacy numbers in screenshots: recall {_pct(s['screenshots'].recall)} "
            f"({s['screenshots'].found}/{s['screenshots'].pictures})",
            f"ordinary pictures with a finding (false alarms): {s['ordinary'].false_alarms} of "
            f"{s['ordinary'].pictures} ({_pct(s['ordinary'].false_alarm_rate)})"
            + _categories(s["ordinary"], ": {}"),
        ]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "pictures": self.pictures,
            "read": self.pictures - self.unread,
            "unread": self.unread,
            "kinds": {k.kind: k.as_dict() for k in self.kinds},
            "summary": {name: k.as_dict() for name, k in self.summary().items()},
        }


def load_image_truth(directory: Path) -> list[PictureTruth]:
    """Every picture of ``directory``'s truth file; the error names the file and line."""
    path = directory / IMAGE_TRUTH_FILE
    if not path.is_file():
        raise ImageTruthError(f"{path}: no picture truth here (simulated with --no-images?)")
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            category = data["category"]
            out.append(
                PictureTruth(
                    str(data["msgid"]),
                    int(data["item"]),
                    str(data["kind"]),
                    None if category is None else str(category),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ImageTruthError(f"{path}:{number}: bad line ({exc!r})") from None
    return out


def image_truth_report(engine: Engine, directory: Path) -> ImageTruthReport:
    """Judge the picture findings in the database against ``directory``'s picture truth."""
    truth = load_image_truth(directory)
    ids: dict[str, int] = {}
    read: set[tuple[int, int]] = set()
    found: dict[tuple[int, int], list[tuple[str, str]]] = {}
    with session_scope(engine) as session:
        msgids = sorted({t.msgid for t in truth})
        for i in range(0, len(msgids), _IN_CHUNK):
            chunk = msgids[i : i + _IN_CHUNK]
            rows = session.execute(
                select(Message.msgid, Message.id).where(Message.msgid.in_(chunk))
            )
            ids.update((msgid, id_) for msgid, id_ in rows)
        wanted = list(ids.values())
        for i in range(0, len(wanted), _IN_CHUNK):
            chunk_ids = wanted[i : i + _IN_CHUNK]
            images = session.execute(
                select(MessageImage.message_id, MessageImage.item).where(
                    MessageImage.message_id.in_(chunk_ids), MessageImage.state == "read"
                )
            )
            read.update((message_id, item) for message_id, item in images)
            for message_id, category, rule, detail in session.execute(
                select(Finding.message_id, Finding.category, Finding.rule, Finding.detail).where(
                    Finding.message_id.in_(chunk_ids), Finding.detail.is_not(None)
                )
            ):
                if is_image_rule(rule) and isinstance(detail, dict):
                    item = int(detail.get("item") or 0)
                    found.setdefault((message_id, item), []).append((category, rule))
    kinds = {name: KindScore(name, category) for name, (category, _, _) in KINDS.items()}
    unread = 0
    for t in truth:
        message_id = ids.get(t.msgid)
        if message_id is None or (message_id, t.item) not in read:
            unread += 1
            continue
        score = kinds.setdefault(t.kind, KindScore(t.kind, t.category))
        score.pictures += 1
        hits = found.get((message_id, t.item), [])
        reader = QR_RULE if t.kind in QR_CODES else OCR_RULE
        if t.category and any(c == t.category and r.startswith(reader) for c, r in hits):
            score.found += 1
        wrong = sorted({c for c, _ in hits if c != t.category})
        if wrong:
            score.false_alarms += 1
            score.alarm_categories.update(wrong)
    return ImageTruthReport(str(directory), len(truth), unread, tuple(kinds.values()))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _categories(score: KindScore, form: str) -> str:
    """The categories of the false alarms, ``form``-atted; "" when there are none."""
    if not score.alarm_categories:
        return ""
    return form.format(", ".join(f"{c} {n}" for c, n in sorted(score.alarm_categories.items())))
