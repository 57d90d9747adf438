"""The company directory from CSV or XLSX files, for companies that keep it outside WeCom.

Each import returns a :class:`~audit.directory.World` for
:func:`~audit.store.directory.load_directory`; re-importing the same file changes nothing
(generated ids are hashes of the names, never counters).

Files: ``.csv`` (UTF-8, with or without the BOM Excel writes; GBK/GB18030 is accepted as a
fallback with a warning) or ``.xlsx`` (the first sheet). Row 1 holds the column names, English
or Chinese as listed below, in any order; other columns are refused so that a misspelt column
is not silently ignored. Blank rows are skipped. Every problem is collected and reported at
once as ``file:row: column X ...`` (row numbers as Excel shows them).

**Org file** (:func:`import_org`), one row per staff member (or per store, without staff):

=============  ==================  ========  ==========================================
column         also accepted       required  notes
=============  ==================  ========  ==========================================
region         大区, 区域            no        region name; stores may hang off a city or the root
region_code    大区编码              no        default: ``R-`` + hash of the name
city           城市                 no        city name (inside the region)
city_code      城市编码              no        default: ``C-`` + hash of region and city
store_code     门店编码              yes       the store's own code
store_name     门店名称, 门店         yes       same name on every row of a store
staff_userid   员工账号, userid      no        WeCom userid; empty for a store-only row
staff_name     员工姓名, 姓名         with id   the member's name
position       岗位, 职位            no        店长, 营业员, ...
=============  ==================  ========  ==========================================

**Tag file** (:func:`import_tags` with a ``group_name`` / ``tag_name`` header): one tag a row,
columns ``group_name`` (标签组), ``tag_name`` (标签), optional ``group_id`` / ``tag_id``
(WeCom's ``et...`` ids, generated as ``et`` + a hash of the names when absent) and
``group_order`` / ``tag_order`` (integers; default: the order of first appearance).

**Customer-tag file** (:func:`import_tags` with an ``external_userid`` header): one row per
customer and staff member: ``external_userid`` (客户ID, ``wo...``/``wm...``), ``staff_userid``
(员工账号), and optional ``customer_name`` (客户名称), ``tags`` (标签; several separated by
``;`` ``,`` ``|`` or ``、``, each ``组名:标签名`` or a tag name unique among the known groups),
``group_name`` (the group of bare tag names on that row), ``state`` (渠道, the acquisition
channel) and ``remark`` (备注). Cells left empty keep what the directory already holds.
Tags are only added, never removed, by this import.

The staff and tags that customer-tag rows refer to are checked against a
:class:`DirectorySnapshot` of the database (``DirectorySnapshot.from_session``), so a row
naming a member who is not in the directory is reported with its row number instead of
failing the load.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from audit.directory import (
    CustomerSpec,
    CustomerTagSpec,
    FollowSpec,
    OrgUnitSpec,
    StaffSpec,
    TagGroupSpec,
    TagSpec,
    World,
)
from audit.store.models import Customer, Follow, OrgUnit, Staff, Tag, TagGroup

log = logging.getLogger(__name__)

MAX_SHOWN = 100  # problems listed in one error message
EXTERNAL_ID = re.compile(r"^w[om][A-Za-z0-9_-]{6,}$")
TAG_SEPARATORS = re.compile(r"[;；,，|、\n]")
DEFAULT_TAG_GROUP_ORDER = 1000


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    file: str
    row: int  # 0: the file as a whole
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.row}" if self.row else self.file
        what = f"column {self.column} {self.message}" if self.column else self.message
        return f"{where}: {what}"


class ImportFileError(ValueError):
    """One or more problems in an import file; ``problems`` lists them all."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        lines = [str(p) for p in problems[:MAX_SHOWN]]
        if len(problems) > MAX_SHOWN:
            lines.append(f"... and {len(problems) - MAX_SHOWN} more")
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------- reading tables


@dataclass(frozen=True)
class Row:
    number: int  # as Excel shows it: the header is row 1
    cells: Mapping[str, str]  # canonical column name -> stripped text ("" when empty)

    def get(self, column: str) -> str:
        return self.cells.get(column, "")


@dataclass(frozen=True)
class Table:
    name: str  # the file name, for messages
    columns: tuple[str, ...]  # canonical names found in the header
    rows: tuple[Row, ...]
    encoding: str  # "utf-8", "gb18030" or "xlsx"


ORG_COLUMNS: dict[str, tuple[str, ...]] = {
    "region": ("大区", "区域"),
    "region_code": ("大区编码", "区域编码"),
    "city": ("城市",),
    "city_code": ("城市编码",),
    "store_code": ("门店编码", "门店代码"),
    "store_name": ("门店名称", "门店"),
    "staff_userid": ("员工账号", "userid", "员工userid"),
    "staff_name": ("员工姓名", "姓名"),
    "position": ("岗位", "职位"),
}
TAG_COLUMNS: dict[str, tuple[str, ...]] = {
    "group_name": ("标签组", "标签组名称"),
    "tag_name": ("标签", "标签名", "标签名称"),
    "group_id": ("标签组id",),
    "tag_id": ("标签id",),
    "group_order": ("标签组排序",),
    "tag_order": ("标签排序",),
}
CUSTOMER_TAG_COLUMNS: dict[str, tuple[str, ...]] = {
    "external_userid": ("客户id", "外部联系人id"),
    "staff_userid": ("员工账号", "userid", "员工userid"),
    "customer_name": ("客户名称", "客户昵称", "客户"),
    "tags": ("tag_names", "tag_name", "标签"),
    "group_name": ("标签组",),
    "state": ("渠道", "渠道码"),
    "remark": ("备注",),
}


def _norm_header(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lstrip("\ufeff")).lower()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():  # Excel keeps numeric codes as floats
        value = int(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value).replace("\u3000", " ").strip()


def _decode(data: bytes, name: str) -> tuple[str, str]:
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        raise ImportFileError(
            [Problem(name, 0, None, "is neither UTF-8 nor GBK text: save it as 'CSV UTF-8'")]
        ) from None
    log.warning(
        "%s is not UTF-8: read as GBK (GB18030), the encoding Excel on Chinese Windows uses for "
        "plain 'CSV'. Check the names below look right, or save the file as 'CSV UTF-8'.",
        name,
    )
    return text, "gb18030"


def _csv_records(text: str) -> Iterator[list[str]]:
    first = text.split("\n", 1)[0]
    delimiter = ","
    if "," not in first:
        delimiter = "\t" if "\t" in first else ";" if ";" in first else ","
    yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _xlsx_records(path: Path) -> Iterator[list[Any]]:
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - depends on the install
        raise ImportFileError(
            [Problem(path.name, 0, None, "needs openpyxl to read .xlsx: pip install openpyxl")]
        ) from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, ... for a damaged file
        raise ImportFileError(
            [Problem(path.name, 0, None, f"is not a readable .xlsx file ({exc})")]
        ) from None
    try:
        sheet = book.worksheets[0]
        for values in sheet.iter_rows(values_only=True):
            yield list(values)
    finally:
        book.close()


def read_table(path: Path | str, columns: Mapping[str, tuple[str, ...]]) -> Table:
    """The rows of ``path`` keyed by canonical column names (``columns``: name -> aliases)."""
    path = Path(path)
    name = path.name
    suffix = path.suffix.lower()
    records: Iterator[list[Any]]
    if suffix == ".csv":
        text, encoding = _decode(path.read_bytes(), name)
        records = _csv_records(text)
    elif suffix in (".xlsx", ".xlsm"):
        records, encoding = _xlsx_records(path), "xlsx"
    elif suffix == ".xls":
        raise ImportFileError([Problem(name, 0, None, "is an old .xls file: save it as .xlsx")])
    else:
        raise ImportFileError([Problem(name, 0, None, "must be a .csv or .xlsx file")])

    aliases = {_norm_header(a): c for c, names in columns.items() for a in (c, *names)}
    problems: list[Problem] = []
    header = next(records, None)
    if header is None:
        raise ImportFileError([Problem(name, 0, None, "is empty")])
    positions: list[tuple[int, str]] = []
    for i, raw in enumerate(header):
        label = _cell(raw)
        if not label:
            continue
        canonical = aliases.get(_norm_header(label))
        if canonical is None:
            known = ", ".join(columns)
            problems.append(Problem(name, 1, label, f"is not a known column (known: {known})"))
        elif canonical in (c for _, c in positions):
            problems.append(Problem(name, 1, label, f"repeats column {canonical}"))
        else:
            positions.append((i, canonical))
    rows: list[Row] = []
    for number, record in enumerate(records, start=2):
        values = [_cell(v) for v in record]
        if not any(values):
            continue
        extra = [v for i, v in enumerate(values) if v and i not in {p for p, _ in positions}]
        if extra and len(values) > len(header):
            problems.append(
                Problem(name, number, None, f"has {len(values)} cells, the header {len(header)}")
            )
        cells = {c: values[i] if i < len(values) else "" for i, c in positions}
        rows.append(Row(number, cells))
    if problems:
        raise ImportFileError(problems)
    return Table(name, tuple(c for _, c in positions), tuple(rows), encoding)


def _require(
    table: Table, required: tuple[str, ...], columns: Mapping[str, tuple[str, ...]]
) -> None:
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ImportFileError(
            [
                Problem(table.name, 1, None, f"missing column {c} ({', '.join(columns[c])})")
                for c in missing
            ]
        )


# --------------------------------------------------------------------------- ids


def stable_id(prefix: str, *parts: str, length: int = 30) -> str:
    """``prefix`` + the first ``length`` hex digits of a hash of ``parts`` (stable across runs)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return prefix + digest[:length]


def tag_group_id(group_name: str) -> str:
    return stable_id("et", "group", group_name)


def tag_id(group_name: str, tag_name: str) -> str:
    return stable_id("et", "tag", group_name, tag_name)


# --------------------------------------------------------------------------- org


def import_org(path: Path | str) -> World:
    """Regions, cities, stores and staff from an org file (layout in the module docstring)."""
    table = read_table(path, ORG_COLUMNS)
    _require(table, ("store_code", "store_name"), ORG_COLUMNS)
    problems: list[Problem] = []
    units: dict[str, OrgUnitSpec] = {}
    unit_row: dict[str, int] = {}
    staff: dict[str, StaffSpec] = {}
    staff_row: dict[str, int] = {}

    def add_unit(spec: OrgUnitSpec, row: Row, column: str) -> None:
        have = units.get(spec.code)
        if have is None:
            units[spec.code], unit_row[spec.code] = spec, row.number
        elif have != spec:
            first = unit_row[spec.code]
            problems.append(
                Problem(
                    table.name,
                    row.number,
                    column,
                    f"{spec.code}: {spec.kind} {spec.name!r} under {spec.parent_code or 'the root'}"
                    f" differs from row {first} ({have.name!r} under "
                    f"{have.parent_code or 'the root'})",
                )
            )

    for row in table.rows:
        bad = len(problems)
        for column in ("store_code", "store_name"):
            if not row.get(column):
                problems.append(Problem(table.name, row.number, column, "is empty"))
        if row.get("city_code") and not row.get("city"):
            problems.append(Problem(table.name, row.number, "city", "is empty (city_code is set)"))
        if row.get("region_code") and not row.get("region"):
            problems.append(
                Problem(table.name, row.number, "region", "is empty (region_code is set)")
            )
        userid, name = row.get("staff_userid"), row.get("staff_name")
        if name and not userid:
            problems.append(Problem(table.name, row.number, "staff_userid", "is empty"))
        if userid and not name:
            problems.append(Problem(table.name, row.number, "staff_name", "is empty"))
        if userid and re.search(r"\s", userid):
            problems.append(Problem(table.name, row.number, "staff_userid", "contains spaces"))
        if len(problems) > bad:
            continue

        parent: str | None = None
        region = row.get("region")
        if region:
            parent = row.get("region_code") or stable_id("R-", region, length=8)
            add_unit(OrgUnitSpec(parent, region, "region", None), row, "region")
        city = row.get("city")
        if city:
            code = row.get("city_code") or stable_id("C-", region, city, length=8)
            add_unit(OrgUnitSpec(code, city, "city", parent), row, "city")
            parent = code
        store = row.get("store_code")
        add_unit(OrgUnitSpec(store, row.get("store_name"), "store", parent), row, "store_code")
        if userid:
            if userid in staff:
                problems.append(
                    Problem(
                        table.name,
                        row.number,
                        "staff_userid",
                        f"{userid} is already on row {staff_row[userid]}",
                    )
                )
            else:
                staff[userid] = StaffSpec(userid, name, store, row.get("position"))
                staff_row[userid] = row.number
    if problems:
        raise ImportFileError(problems)
    return World(
        corpid="",
        org_units=tuple(units.values()),
        staff=tuple(staff.values()),
        customers=(),
        follows=(),
        tag_groups=(),
        customer_tags=(),
        rooms=(),
    )


# --------------------------------------------------------------------------- what the DB holds


@dataclass(frozen=True)
class DirectorySnapshot:
    """The directory as stored, so that imports and syncs keep what a file does not say."""

    store_codes: frozenset[str] = frozenset()  # every org unit code
    staff: Mapping[str, StaffSpec] = field(default_factory=dict)
    customers: Mapping[str, CustomerSpec] = field(default_factory=dict)
    follows: Mapping[tuple[str, str], FollowSpec] = field(default_factory=dict)
    tag_groups: tuple[TagGroupSpec, ...] = ()

    @classmethod
    def from_session(cls, session: Session) -> DirectorySnapshot:
        codes = {u.id: u.code for u in session.scalars(select(OrgUnit))}
        staff = {
            s.userid: StaffSpec(s.userid, s.name, codes.get(s.org_unit_id or -1, ""), s.position)
            for s in session.scalars(select(Staff))
        }
        customers = {
            c.external_userid: CustomerSpec(c.external_userid, c.name, c.type, c.gender, False)
            for c in session.scalars(select(Customer))
        }
        s_alias, c_alias = aliased(Staff), aliased(Customer)
        follows = {
            (u, e): FollowSpec(
                u, e, f.remark, int(f.added_at.timestamp()) if f.added_at else 0, f.add_way, f.state
            )
            for f, u, e in session.execute(
                select(Follow, s_alias.userid, c_alias.external_userid)
                .join(s_alias, Follow.staff_id == s_alias.id)
                .join(c_alias, Follow.customer_id == c_alias.id)
            )
        }
        tags: dict[str, list[TagSpec]] = {}
        for t in session.scalars(select(Tag).order_by(Tag.order, Tag.id)):
            tags.setdefault(t.group_id, []).append(TagSpec(t.id, t.name, t.order))
        groups = tuple(
            TagGroupSpec(g.id, g.name, g.order, tuple(tags.get(g.id, ())))
            for g in session.scalars(select(TagGroup).order_by(TagGroup.order, TagGroup.id))
        )
        return cls(frozenset(codes.values()), staff, customers, follows, groups)


# --------------------------------------------------------------------------- tags


class _TagBook:
    """Known groups and tags by name, plus the ones a file adds."""

    def __init__(self, known: tuple[TagGroupSpec, ...]) -> None:
        self.groups: dict[str, TagGroupSpec] = {}  # by name
        self.group_names: dict[str, str] = {}  # group id -> name
        self.tags: dict[str, dict[str, TagSpec]] = {}  # group name -> tag name -> spec
        self.tag_names: dict[str, tuple[str, str]] = {}  # tag id -> (group, tag)
        self.new: dict[str, list[TagSpec]] = {}  # group name -> tags added or re-ordered
        for g in known:
            self.groups[g.name] = g
            self.group_names[g.group_id] = g.name
            self.tags[g.name] = {t.name: t for t in g.tags}
            for t in g.tags:
                self.tag_names[t.id] = (g.name, t.name)

    def groups_of(self, tag_name: str) -> list[str]:
        return [g for g, tags in self.tags.items() if tag_name in tags]

    def add(
        self,
        group: str,
        tag: str,
        group_id: str = "",
        tag_id_: str = "",
        group_order: int | None = None,
        tag_order: int | None = None,
    ) -> str | TagSpec:
        """The tag (added when new), or a message saying why the ids conflict."""
        have_group = self.groups.get(group)
        if have_group is None:
            gid = group_id or tag_group_id(group)
            if gid in self.group_names:
                return f"group id {gid} already names group {self.group_names[gid]!r}"
            order = group_order if group_order is not None else len(self.groups) + 1
            have_group = TagGroupSpec(gid, group, order, ())
            self.groups[group], self.group_names[gid] = have_group, group
            self.tags[group] = {}
            self.new[group] = []
        elif group_id and group_id != have_group.group_id:
            return f"group {group!r} has id {have_group.group_id}, not {group_id}"
        elif group_order is not None and group_order != have_group.order:
            self.groups[group] = TagGroupSpec(have_group.group_id, group, group_order, ())
            self.new.setdefault(group, [])
        have = self.tags[group].get(tag)
        if have is not None:
            if tag_id_ and tag_id_ != have.id:
                return f"tag {group}:{tag} has id {have.id}, not {tag_id_}"
            if tag_order is not None and tag_order != have.order:
                have = TagSpec(have.id, tag, tag_order)
                self.tags[group][tag] = have
                self.new.setdefault(group, []).append(have)
            return have
        tid = tag_id_ or tag_id(group, tag)
        if tid in self.tag_names:
            return f"tag id {tid} already names {':'.join(self.tag_names[tid])}"
        spec = TagSpec(tid, tag, tag_order if tag_order is not None else len(self.tags[group]) + 1)
        self.tags[group][tag] = spec
        self.tag_names[tid] = (group, tag)
        self.new.setdefault(group, []).append(spec)
        return spec

    def changed_groups(self) -> tuple[TagGroupSpec, ...]:
        """New or changed groups, each with its new or changed tags only, for the World."""
        return tuple(
            TagGroupSpec(
                g.group_id, name, g.order, tuple({t.id: t for t in self.new[name]}.values())
            )
            for name, g in self.groups.items()
            if name in self.new
        )


def _int_cell(table: Table, row: Row, column: str, problems: list[Problem]) -> int | None:
    text = row.get(column)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        problems.append(Problem(table.name, row.number, column, f"is not an integer: {text!r}"))
        return None


def import_tags(path: Path | str, known: DirectorySnapshot | None = None) -> World:
    """Tag groups and tags, or customer tags: the file's header says which (module docstring)."""
    path = Path(path)
    probe = read_table(path, {**TAG_COLUMNS, **CUSTOMER_TAG_COLUMNS})
    if "external_userid" in probe.columns:
        return import_customer_tags(path, known)
    return import_tag_list(path, known)


def import_tag_list(path: Path | str, known: DirectorySnapshot | None = None) -> World:
    table = read_table(path, TAG_COLUMNS)
    _require(table, ("group_name", "tag_name"), TAG_COLUMNS)
    book = _TagBook(known.tag_groups if known else ())
    problems: list[Problem] = []
    for row in table.rows:
        bad = len(problems)
        for column in ("group_name", "tag_name"):
            if not row.get(column):
                problems.append(Problem(table.name, row.number, column, "is empty"))
        for column in ("group_id", "tag_id"):
            value = row.get(column)
            if value and not re.fullmatch(r"et[A-Za-z0-9_-]+", value):
                problems.append(
                    Problem(table.name, row.number, column, f"{value!r} is not a WeCom id (et...)")
                )
        group_order = _int_cell(table, row, "group_order", problems)
        tag_order = _int_cell(table, row, "tag_order", problems)
        if len(problems) > bad:
            continue
        result = book.add(
            row.get("group_name"),
            row.get("tag_name"),
            row.get("group_id"),
            row.get("tag_id"),
            group_order,
            tag_order,
        )
        if isinstance(result, str):
            column = "tag_id" if result.startswith("tag") else "group_id"
            problems.append(Problem(table.name, row.number, column, result))
    if problems:
        raise ImportFileError(problems)
    return World("", (), (), (), (), book.changed_groups(), (), ())


def import_customer_tags(path: Path | str, known: DirectorySnapshot | None = None) -> World:
    table = read_table(path, CUSTOMER_TAG_COLUMNS)
    _require(table, ("external_userid", "staff_userid"), CUSTOMER_TAG_COLUMNS)
    check_staff = known is not None  # without a snapshot the load itself will complain
    known = known or DirectorySnapshot()
    book = _TagBook(known.tag_groups)
    problems: list[Problem] = []
    customers: dict[str, CustomerSpec] = {}
    follows: dict[tuple[str, str], FollowSpec] = {}
    links: dict[tuple[str, str, str], None] = {}

    def problem(row: Row, column: str | None, message: str) -> None:
        problems.append(Problem(table.name, row.number, column, message))

    for row in table.rows:
        bad = len(problems)
        ext, userid = row.get("external_userid"), row.get("staff_userid")
        if not ext:
            problem(row, "external_userid", "is empty")
        elif not EXTERNAL_ID.match(ext):
            problem(row, "external_userid", f"{ext!r} is not a WeCom external userid (wo.../wm...)")
        if not userid:
            problem(row, "staff_userid", "is empty")
        elif check_staff and userid not in known.staff:
            problem(row, "staff_userid", f"{userid} is not in the directory: import the org first")
        tag_ids: list[str] = []
        for ref in (r.strip() for r in TAG_SEPARATORS.split(row.get("tags"))):
            if not ref:
                continue
            parts = re.split(r"[:：]", ref, maxsplit=1)
            group, tag = (parts[0].strip(), parts[1].strip()) if len(parts) == 2 else ("", ref)
            group = group or row.get("group_name")
            if not group:
                groups = book.groups_of(tag)
                if len(groups) != 1:
                    where = f"is in groups {', '.join(groups)}" if groups else "is not a known tag"
                    problem(row, "tags", f"{tag!r} {where}: write it as 组名:{tag}")
                    continue
                group = groups[0]
            if not tag:
                problem(row, "tags", f"{ref!r} has no tag name")
                continue
            result = book.add(group, tag)
            if isinstance(result, str):
                problem(row, "tags", result)
            else:
                tag_ids.append(result.id)
        if len(problems) > bad:
            continue

        have_c = customers.get(ext) or known.customers.get(ext)
        customers[ext] = CustomerSpec(
            ext,
            row.get("customer_name") or (have_c.name if have_c else ""),
            have_c.type if have_c else 1,
            have_c.gender if have_c else 0,
            have_c.traditional if have_c else False,
        )
        have_f = follows.get((userid, ext)) or known.follows.get((userid, ext))
        follows[(userid, ext)] = FollowSpec(
            userid,
            ext,
            row.get("remark") or (have_f.remark if have_f else ""),
            have_f.createtime if have_f else 0,
            have_f.add_way if have_f else 0,
            row.get("state") or (have_f.state if have_f else ""),
        )
        for tid in tag_ids:
            links[(ext, tid, userid)] = None
    if problems:
        raise ImportFileError(problems)
    return World(
        corpid="",
        org_units=(),
        staff=(),
        customers=tuple(customers.values()),
        follows=tuple(follows.values()),
        tag_groups=book.changed_groups(),
        customer_tags=tuple(CustomerTagSpec(e, t, u) for e, t, u in links),
        rooms=(),
    )
