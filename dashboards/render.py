"""HTML for the transcript: chat bubbles with the findings marked at their spans.

Everything that came from a chat (text, names, matched words, explanations) is escaped here
and nowhere else is raw HTML built from data: a message saying ``<script>`` must show as
text. Pure functions, so the tests can check the output without a browser.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from html import escape

from audit.days import DEFAULT_ZONE, local_time
from audit.export.masking import Masker, masked_image_finding
from audit.images import is_image_rule
from audit.reports import FindingView, MessageView, PictureView

SEVERITY_COLORS = {
    "low": "#fff3bf",
    "medium": "#ffd8a8",
    "high": "#ffa8a8",
    "critical": "#ff6b6b",
}
_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}

MSGTYPE_LABELS = {
    "image": "🖼️ 图片 image",
    "voice": "🎤 语音 voice",
    "video": "🎬 视频 video",
    "file": "📎 文件 file",
    "emotion": "😀 表情 sticker",
    "link": "🔗 链接 link",
    "weapp": "🧩 小程序 mini program",
    "card": "👤 名片 contact card",
    "location": "📍 位置 location",
    "redpacket": "🧧 红包 red packet",
    "external_redpacket": "🧧 红包 red packet",
    "meeting_voice_call": "📞 语音通话 call",
    "voip_doc_share": "📄 文档 shared doc",
    "chatrecord": "💬 聊天记录 chat record",
    "mixed": "🧾 图文 mixed",
}

CSS = """
<style>
.tx { font-family: -apple-system, "PingFang SC", "Microsoft YaHei", sans-serif; }
.tx .row { display: flex; margin: 6px 0; }
.tx .row.staff { justify-content: flex-end; }
.tx .bubble { max-width: 70%; padding: 8px 12px; border-radius: 12px; line-height: 1.5;
  white-space: pre-wrap; word-break: break-word; }
.tx .customer .bubble { background: #f1f3f5; border-top-left-radius: 2px; }
.tx .staff .bubble { background: #d3f9d8; border-top-right-radius: 2px; }
.tx .other .bubble { background: #e7f5ff; }
.tx .meta { font-size: 12px; color: #868e96; margin-bottom: 2px; }
.tx .recalled .text { text-decoration: line-through; color: #868e96; }
.tx .flag { font-size: 12px; color: #c92a2a; margin-left: 6px; }
.tx .type { color: #495057; font-style: italic; }
.tx mark { border-radius: 3px; padding: 0 2px; }
.tx .why { font-size: 12px; color: #495057; margin-top: 4px; border-top: 1px dashed #ced4da;
  padding-top: 4px; }
.tx .focus { outline: 2px solid #f03e3e; outline-offset: 2px; }
.tx .pic { margin: 6px 0 0 0; }
.tx .pic img { max-width: 100%; max-height: 480px; border-radius: 6px; display: block; }
.tx .pic figcaption { font-size: 12px; color: #495057; }
</style>
"""


def clock_time(value: dt.datetime, tz: str) -> str:
    """``value`` as month-day and time of day in the zone ``tz`` (the configured one)."""
    return local_time(value, tz).strftime("%m-%d %H:%M:%S")


def highlight(text: str, findings: tuple[FindingView, ...] | list[FindingView]) -> str:
    """``text`` escaped, with each finding's ``[start, end)`` wrapped in a ``<mark>``.

    Overlapping spans are split into segments; a segment takes the colour of its most
    severe finding and lists every finding covering it in its tooltip. Spans outside the
    text (a rescan changed it) are clipped.
    """
    n = len(text)
    cover: list[list[FindingView]] = [[] for _ in range(n)]
    for f in findings:
        for i in range(max(0, f.start), min(n, f.end)):
            cover[i].append(f)
    out: list[str] = []
    i = 0
    while i < n:
        j = i
        while j < n and cover[j] == cover[i]:
            j += 1
        chunk = escape(text[i:j])
        if cover[i]:
            worst = max(cover[i], key=lambda f: _RANK.get(f.severity, 0))
            tip = "; ".join(f"{f.category} · {f.rule} · {f.severity}" for f in cover[i])
            out.append(
                f'<mark style="background:{SEVERITY_COLORS.get(worst.severity, "#ffe066")}" '
                f'title="{escape(tip, quote=True)}">{chunk}</mark>'
            )
        else:
            out.append(chunk)
        i = j
    return "".join(out)


def _side(kind: str) -> str:
    return kind if kind in ("staff", "customer") else "other"


def message_html(
    m: MessageView, focus_finding_ids: frozenset[int] = frozenset(), tz: str = DEFAULT_ZONE
) -> str:
    side = _side(m.sender_kind)
    classes = ["row", side, *(["recalled"] if m.recalled else [])]
    flags = []
    if m.recalled:
        flags.append('<span class="flag">已撤回 recalled</span>')
    if m.consent_withheld:
        flags.append('<span class="flag">⚠ 客户未同意存档 consent withheld</span>')
    # a picture's findings index the text read in it, not the message's: listed, not marked
    spans = [f for f in m.findings if not is_image_rule(f.rule)]
    if m.msgtype == "text" or (m.text and m.msgtype not in MSGTYPE_LABELS):
        body = highlight(m.text, spans)
        if m.msgtype != "text":
            body = f'<span class="type">[{escape(m.msgtype)}]</span> {body}'
    else:
        label = MSGTYPE_LABELS.get(m.msgtype, f"[{m.msgtype}]")
        body = f'<span class="type">{escape(label)}</span>'
        if m.text:
            body += f" {highlight(m.text, spans)}"
    why = "".join(
        f'<div class="why"><b>{escape(f.category)}</b> · {escape(f.rule)} · {escape(f.severity)}'
        f" · 「{escape(f.matched)}」"
        + (f" — {escape(f.explanation)}" if f.explanation else "")
        + (f" · 预警 #{f.alert_id} ({escape(f.alert_state or '')})" if f.alert_id else "")
        + "</div>"
        for f in m.findings
    )
    focus = " focus" if any(f.id in focus_finding_ids for f in m.findings) else ""
    return (
        f'<div class="{" ".join(classes)}"><div class="bubble{focus}">'
        f'<div class="meta">{escape(m.sender)} · {clock_time(m.at, tz)}{"".join(flags)}</div>'
        f'<div class="text">{body}</div>{"".join(map(picture_html, m.pictures))}{why}'
        "</div></div>"
    )


def picture_html(p: PictureView) -> str:
    """A picture with its findings' boxes, as the report drew it for the reader (masked
    there when they may not see personal data), inlined; or why it cannot be shown."""
    caption = "".join(
        f"<div>[{k.number}] <b>{escape(k.category)}</b> · {escape(k.rule)}"
        + (f" · 「{escape(k.text)}」" if k.text else "")
        + (" · 已遮盖 masked" if k.hidden else "")
        + "</div>"
        for k in p.marks
    )
    if p.png is None:
        return f'<figure class="pic"><figcaption>🖼️ {escape(p.note)}{caption}</figcaption></figure>'
    src = "data:image/png;base64," + base64.b64encode(p.png).decode("ascii")
    alt = "图片（已遮盖个人信息）masked picture" if p.masked else "图片 picture"
    return (
        f'<figure class="pic"><img alt="{alt}" src="{src}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def masked_message(m: MessageView, masker: Masker) -> MessageView:
    """The message as ``masker`` lets it be shown: personal data masked in the text, and each
    finding's span and matched words moved onto the masked text."""
    if not masker.enabled:
        return m
    masked = masker.mask(m.text)
    findings = []
    for f in m.findings:
        if is_image_rule(f.rule):  # read in a picture: its words are masked on their own
            matched, explanation = masked_image_finding(masker, f.rule, f.matched, f.explanation)
            findings.append(dataclasses.replace(f, matched=matched, explanation=explanation))
            continue
        if masked.text == m.text:
            findings.append(f)
            continue
        start, end = masked.span(f.start, f.end)
        findings.append(
            dataclasses.replace(
                f,
                start=start,
                end=end,
                matched=masked.text[start:end],
                explanation=masker.text(f.explanation),
            )
        )
    # pictures come drawn for the reader; one drawn in the clear is never shown masked text
    pictures = tuple(p for p in m.pictures if p.masked)
    return dataclasses.replace(m, text=masked.text, findings=tuple(findings), pictures=pictures)


def transcript_html(
    messages: tuple[MessageView, ...] | list[MessageView],
    focus_finding_ids: frozenset[int] = frozenset(),
    masker: Masker | None = None,
    tz: str = DEFAULT_ZONE,
) -> str:
    """The transcript, its times in the zone ``tz``; ``masker`` (see
    :func:`audit.export.masking.masker_for`) decides what personal data the reader's role sees."""
    if masker is not None:
        messages = [masked_message(m, masker) for m in messages]
    rows = "".join(message_html(m, focus_finding_ids, tz) for m in messages)
    return f'{CSS}<div class="tx">{rows}</div>'


def channel_name(state: str, labels: Mapping[str, str]) -> str:
    """The configured name of an acquisition channel: the label of ``state`` itself, else of
    the longest ``prefix*`` key it starts with, else the state as written ("（无）" if none)."""
    if not state:
        return "（无）"
    if state in labels:
        return labels[state]
    prefixes = [k for k in labels if k.endswith("*") and state.startswith(k[:-1])]
    return labels[max(prefixes, key=len)] if prefixes else state


def codes_html(items: list[str] | tuple[str, ...]) -> str:
    """Short values from outside (tag names, channels) as code chips, escaped: a tag named
    ``**VIP**`` or ``[x](http://...)`` shows as written, never as markup."""
    return " ".join(f"<code>{escape(item)}</code>" for item in items)


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md_text(value: str) -> str:
    """A value from outside inside Streamlit markdown (captions): every character markdown,
    Streamlit's ``:red[...]`` directives, emoji codes or LaTeX would read, backslash-escaped."""
    return _MARKDOWN.sub(r"\\\1", value)
