"""Spreadsheet formula injection: text that Excel would run as a formula is kept as text.

Customers and staff type the message text, names and tags, so an export cell can begin with
``=HYPERLINK(...)`` or a DDE payload. A trainer opening the CSV in Excel would run it. The
OWASP rule: a cell whose first character, or first character after leading spaces, is one of
``= + - @``, tab or carriage return gets a single quote in front, which Excel shows as text.

XLSX cells have a type, so there the text is written as a string cell instead (openpyxl
would otherwise store any string starting with ``=`` as a formula); nothing is prefixed.
"""

from __future__ import annotations

FORMULA_START = frozenset("=+-@\t\r")


def starts_like_formula(text: str) -> bool:
    """True when a spreadsheet could read ``text`` as a formula (OWASP's triggers)."""
    if not text:
        return False
    return text[0] in FORMULA_START or text.lstrip()[:1] in FORMULA_START


def neutralise(text: str) -> str:
    """``text`` as a CSV cell Excel shows as text: a leading ``'`` when it looks like a formula."""
    return "'" + text if starts_like_formula(text) else text
