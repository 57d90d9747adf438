"""Org, tag and customer-tag imports from the files in ``tests/data/imports``."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit.archive.imports import (
    DirectorySnapshot,
    ImportFileError,
    import_org,
    import_tags,
    stable_id,
    tag_group_id,
    tag_id,
)
from audit.store.db import make_engine, session_scope
from audit.store.directory import load_directory
from audit.store.models import Customer, CustomerTag, Follow, OrgUnit, Staff, Tag, TagGroup

DATA = Path(__file__).resolve().parent.parent / "data" / "imports"


def _problems(exc: pytest.ExceptionInfo[ImportFileError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


def _counts(session: Session) -> dict[str, int]:
    models = (OrgUnit, Staff, Customer, Follow, TagGroup, Tag, CustomerTag)
    return {m.__name__: session.scalar(select(func.count()).select_from(m)) or 0 for m in models}


# --------------------------------------------------------------------------- org


def test_when_org_csv_has_bom_then_tree_and_staff() -> None:
    world = import_org(DATA / "org.csv")
    kinds = [(u.kind, u.name) for u in world.org_units]
    assert kinds == [
        ("region", "华东区"),
        ("city", "杭州市"),
        ("store", "杭州西湖文三路营业厅"),
        ("region", "华南区"),
        ("city", "深圳市"),
        ("store", "深圳南山科技园旗舰店"),
        ("store", "深圳福田中心店"),
    ]
    region = stable_id("R-", "华东区", length=8)
    city = world.unit("S001").parent_code
    assert world.unit(city or "").parent_code == region
    assert re.fullmatch(r"R-[0-9a-f]{8}", region)
    assert [(s.userid, s.name, s.store_code, s.position) for s in world.staff] == [
        ("zhangwei.s001", "张伟", "S001", "店长"),
        ("lina.s001", "李娜", "S001", "营业员"),
        ("S002_01", "王芳", "S002", "店长"),
    ]
    assert import_org(DATA / "org.csv") == world  # generated codes are stable


def test_when_org_csv_is_gbk_then_read_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        world = import_org(DATA / "org_gbk.csv")
    assert world == import_org(DATA / "org.csv")
    assert "org_gbk.csv is not UTF-8: read as GBK" in caplog.text
    assert "CSV UTF-8" in caplog.text


def test_when_org_xlsx_has_chinese_headers_and_numeric_codes_then_read() -> None:
    pytest.importorskip("openpyxl")
    world = import_org(DATA / "org.xlsx")
    assert [u.code for u in world.store_units()] == ["1001", "1002"]
    assert [(s.userid, s.store_code, s.position) for s in world.staff] == [
        ("zhangwei.s001", "1001", "店长"),
        ("S1002_01", "1002", "营业员"),
        ("S1002_02", "1002", ""),
    ]
    assert {u.name for u in world.org_units if u.kind == "city"} == {"杭州市", "宁波市"}


def test_when_org_rows_are_bad_then_every_problem_with_row_and_column() -> None:
    with pytest.raises(ImportFileError) as err:
        import_org(DATA / "org_bad.csv")
    problems = _problems(err)
    assert problems[0] == "org_bad.csv:3: column store_code is empty"
    assert problems[1].startswith("org_bad.csv:4: column store_code S001: store '杭州滨江营业厅'")
    assert "differs from row 2" in problems[1]
    assert problems[2] == "org_bad.csv:5: column staff_userid zhangwei.s001 is already on row 2"
    assert problems[3:] == [
        "org_bad.csv:6: column store_name is empty",
        "org_bad.csv:6: column staff_name is empty",
        "org_bad.csv:6: column staff_userid contains spaces",
    ]
    assert str(err.value).splitlines() == problems


def test_when_header_is_wrong_then_unknown_and_missing_columns_named(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError) as err:
        import_org(DATA / "org_bad_header.csv")
    (problem,) = _problems(err)
    assert problem.startswith("org_bad_header.csv:1: column 门店编号 is not a known column")
    assert "store_code" in problem
    text = (DATA / "org_bad_header.csv").read_text(encoding="utf-8")
    (tmp_path / "org.csv").write_text(text.replace("门店编号", "门店编码"), encoding="utf-8")
    with pytest.raises(ImportFileError) as err:
        import_org(tmp_path / "org.csv")
    assert _problems(err) == ["org.csv:1: missing column store_name (门店名称, 门店)"]


@pytest.mark.parametrize(
    ("name", "words"), [("org.xls", "save it as .xlsx"), ("org.txt", "must be")]
)
def test_when_file_type_is_not_supported_then_refused(
    tmp_path: Path, name: str, words: str
) -> None:
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ImportFileError, match=words):
        import_org(tmp_path / name)


def test_when_org_loaded_twice_then_nothing_changes(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with session_scope(engine) as s:
        first = load_directory(s, import_org(DATA / "org.csv"))
    assert (first.org_units, first.staff) == (7, 3)
    with session_scope(engine) as s:
        before = _counts(s)
        again = load_directory(s, import_org(DATA / "org.csv"))
        assert (again.org_units, again.staff) == (0, 0)
        assert _counts(s) == before
        zhang = s.scalars(select(Staff).where(Staff.userid == "zhangwei.s001")).one()
        assert zhang.org_unit is not None and zhang.org_unit.code == "S001"
        assert zhang.org_unit.path.count("/") == 4  # region / city / store
    engine.dispose()


# --------------------------------------------------------------------------- tags


def test_when_tag_list_then_groups_with_given_or_stable_ids() -> None:
    world = import_tags(DATA / "tags.csv")
    assert [(g.name, g.order, [t.name for t in g.tags]) for g in world.tag_groups] == [
        ("客户等级", 1, ["普通", "金卡"]),
        ("套餐", 2, ["5G畅享", "副卡"]),
        ("业务兴趣", 3, ["副卡"]),
    ]
    level, plan, _interest = world.tag_groups
    assert level.group_id == tag_group_id("客户等级")
    assert re.fullmatch(r"et[0-9a-f]{30}", level.group_id)
    assert level.tags[1].id == tag_id("客户等级", "金卡")
    assert (plan.group_id, [t.id for t in plan.tags]) == ("etPLANGROUP", ["etPLAN5G", "etPLANFU"])
    assert import_tags(DATA / "tags.csv") == world


def test_when_tag_xlsx_then_same_names_in_file_order() -> None:
    pytest.importorskip("openpyxl")
    world = import_tags(DATA / "tags.xlsx")
    assert [(g.name, g.order, [t.name for t in g.tags]) for g in world.tag_groups] == [
        ("客户等级", 1, ["普通", "金卡"]),
        ("套餐", 2, ["5G畅享", "副卡"]),
        ("业务兴趣", 3, ["副卡"]),
    ]


def test_when_tag_rows_are_bad_then_every_problem_reported() -> None:
    with pytest.raises(ImportFileError) as err:
        import_tags(DATA / "tags_bad.csv")
    assert _problems(err) == [
        "tags_bad.csv:2: column tag_name is empty",
        "tags_bad.csv:3: column group_order is not an integer: 'first'",
        "tags_bad.csv:4: column tag_id 'PLAN5G' is not a WeCom id (et...)",
        "tags_bad.csv:6: column tag_id tag 套餐:副卡 has id etPLANFU, not etOTHER",
    ]


def _load_org_and_tags(engine_url: str) -> None:
    engine = make_engine(engine_url)
    with session_scope(engine) as s:
        load_directory(s, import_org(DATA / "org.csv"))
        load_directory(s, import_tags(DATA / "tags.csv"))
    engine.dispose()


def test_when_tags_reimported_against_the_db_then_idempotent(sqlite_url: str) -> None:
    _load_org_and_tags(sqlite_url)
    engine = make_engine(sqlite_url)
    with session_scope(engine) as s:
        before = _counts(s)
        assert before["TagGroup"] == 3 and before["Tag"] == 5
        world = import_tags(DATA / "tags.csv", DirectorySnapshot.from_session(s))
        assert world.tag_groups == ()  # nothing new
        assert load_directory(s, import_tags(DATA / "tags.csv")).tags == 0
        assert _counts(s) == before
    engine.dispose()


# --------------------------------------------------------------------------- customer tags


def test_when_customer_tags_then_follows_states_and_tags(sqlite_url: str) -> None:
    _load_org_and_tags(sqlite_url)
    engine = make_engine(sqlite_url)
    with session_scope(engine) as s:
        world = import_tags(DATA / "customer_tags.csv", DirectorySnapshot.from_session(s))
        assert [(c.external_userid[:3], c.name) for c in world.customers] == [
            ("wmA", "陈先生"),
            ("wmB", "小鱼儿"),
        ]
        assert [(f.userid, f.state, f.remark) for f in world.follows] == [
            ("zhangwei.s001", "qr_store_S001", "陈先生-5G畅享"),
            ("S002_01", "poster_5g", ""),
            ("lina.s001", "", ""),
        ]
        # only the new group and tag travel; known tags are referred to by id
        assert [(g.name, [t.name for t in g.tags]) for g in world.tag_groups] == [
            ("会员", ["白金"])
        ]
        stats = load_directory(s, world)
        assert (stats.customers, stats.follows, stats.customer_tags) == (2, 3, 5)
        rows = s.execute(
            select(Customer.name, Staff.userid, TagGroup.name, Tag.name)
            .join(CustomerTag, CustomerTag.customer_id == Customer.id)
            .join(Staff, CustomerTag.staff_id == Staff.id)
            .join(Tag, CustomerTag.tag_id == Tag.id)
            .join(TagGroup, Tag.group_id == TagGroup.id)
            .order_by(Customer.name, Staff.userid, Tag.name)
        ).all()
        assert [tuple(r) for r in rows] == [
            ("小鱼儿", "S002_01", "业务兴趣", "副卡"),
            ("小鱼儿", "S002_01", "客户等级", "普通"),
            ("陈先生", "lina.s001", "会员", "白金"),
            ("陈先生", "zhangwei.s001", "套餐", "5G畅享"),
            ("陈先生", "zhangwei.s001", "客户等级", "金卡"),
        ]
    with session_scope(engine) as s:  # again: same ids, nothing added
        before = _counts(s)
        again = import_tags(DATA / "customer_tags.csv", DirectorySnapshot.from_session(s))
        assert again.tag_groups == ()
        stats = load_directory(s, again)
        assert (stats.customers, stats.follows, stats.customer_tags, stats.tags) == (0, 0, 0, 0)
        assert _counts(s) == before
    engine.dispose()


def test_when_customer_tag_rows_are_bad_then_every_problem_reported(sqlite_url: str) -> None:
    _load_org_and_tags(sqlite_url)
    engine = make_engine(sqlite_url)
    with session_scope(engine) as s:
        known = DirectorySnapshot.from_session(s)
    engine.dispose()
    with pytest.raises(ImportFileError) as err:
        import_tags(DATA / "customer_tags_bad.csv", known)
    assert _problems(err) == [
        "customer_tags_bad.csv:2: column external_userid '12345' is not a WeCom external userid"
        " (wo.../wm...)",
        "customer_tags_bad.csv:3: column staff_userid nobody is not in the directory:"
        " import the org first",
        "customer_tags_bad.csv:4: column tags '副卡' is in groups 套餐, 业务兴趣:"
        " write it as 组名:副卡",
        "customer_tags_bad.csv:5: column tags '钻石' is not a known tag: write it as 组名:钻石",
        "customer_tags_bad.csv:6: column external_userid is empty",
        "customer_tags_bad.csv:6: column staff_userid is empty",
    ]
