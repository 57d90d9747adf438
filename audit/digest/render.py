"""Digest content to text: HTML and plain-text e-mail, and WeCom markdown (Jinja2 templates).

The templates live in ``audit/digest/templates`` so that wording and layout can change without
touching code. HTML is autoescaped; the markdown gets an ``md`` filter that neutralises what
WeCom's markdown would read as markup in text that came from a chat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from audit.digest.content import DigestContent

TEMPLATES = Path(__file__).with_name("templates")
_MARKUP = str.maketrans({"<": "＜", ">": "＞", "[": "【", "]": "】", "*": "＊", "`": "'"})


@dataclass(frozen=True)
class RenderedDigest:
    subject: str
    text: str
    html: str
    markdown: str
    alert_count: int


def markdown_safe(value: object) -> str:
    """Chat text inside WeCom markdown: no tags, links, emphasis or line breaks of its own."""
    return re.sub(r"\s+", " ", str(value)).translate(_MARKUP)


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = markdown_safe
    env.filters["join_pair"] = lambda item: f"{item[1]} {item[2]}"  # (key, label, n) -> "label n"
    return env


def render(content: DigestContent) -> RenderedDigest:
    env = environment()
    subject = f"[合规日报] {content.day} · {content.scope} · 新告警 {content.alerts.day}"
    return RenderedDigest(
        subject=subject,
        text=env.get_template("digest.txt.j2").render(d=content),
        html=env.get_template("digest.html.j2").render(d=content),
        markdown=env.get_template("digest.md.j2").render(d=content).strip() + "\n",
        alert_count=content.alerts.day,
    )
