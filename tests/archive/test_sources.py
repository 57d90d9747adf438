"""Archive sources: GetChatData paging semantics and bad input kept, not dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.archive.sources import FileSource, SimulatedServer, SourceError


def _item(seq: int, msgid: str | None = None) -> dict[str, object]:
    return {
        "seq": seq,
        "msgid": msgid or f"m{seq}",
        "publickey_ver": 1,
        "encrypt_random_key": "QUJD",
        "encrypt_chat_msg": "x" * 60,
    }


def test_when_file_mixes_pages_and_items_then_all_items_in_order(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    page = {"errcode": 0, "errmsg": "ok", "chatdata": [_item(1), _item(2)]}
    path.write_text("\n".join([json.dumps(page), json.dumps(_item(3)), ""]), encoding="utf-8")
    pages = list(FileSource(path).pages(0, 2))
    assert [[i.seq for i in p.items] for p in pages] == [[1, 2], [3]]
    assert all(i.problem is None for p in pages for i in p.items)


def test_when_resuming_after_seq_then_only_later_items(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps(_item(s)) for s in (5, 6, 9)), encoding="utf-8")
    assert [i.seq for p in FileSource(path).pages(6, 10) for i in p.items] == [9]


def test_when_line_is_not_json_then_kept_as_problem_with_location(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(_item(1)) + "\n{not json\n" + json.dumps(_item(2)) + "\n")
    items = [i for p in FileSource(path).pages(0, 10) for i in p.items]
    assert [i.seq for i in items] == [1, 1, 2]
    bad = items[1]
    assert bad.problem is not None and bad.problem.startswith("a.jsonl:2: not JSON")
    assert bad.msgid.startswith("!bad:a.jsonl:2:")
    # the same bad line gets the same synthetic msgid on every read, so it is stored once
    again = [i for p in FileSource(path).pages(0, 10) for i in p.items][1]
    assert again.msgid == bad.msgid


def test_when_item_lacks_fields_then_problem_lists_them(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"seq": 4, "publickey_ver": "x"}) + "\n")
    (item,) = [i for p in FileSource(path).pages(0, 10) for i in p.items]
    assert item.problem is not None
    for part in ("msgid missing", "publickey_ver 'x'", "encrypt_random_key missing"):
        assert part in item.problem


def test_when_page_has_errcode_then_problem(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"errcode": 301042, "errmsg": "ip not allowed", "chatdata": []}))
    (item,) = [i for p in FileSource(path).pages(0, 10) for i in p.items]
    assert "errcode 301042" in (item.problem or "")


def test_when_file_missing_then_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        FileSource(tmp_path / "nope.jsonl")


def test_simulated_server_pages_like_getchatdata(tmp_path: Path) -> None:
    with (tmp_path / "archive.jsonl").open("w") as fh:
        for seq in (11, 12, 15, 16, 17):
            fh.write(json.dumps(_item(seq), separators=(",", ":")) + "\n")
    server = SimulatedServer(tmp_path)
    assert [i.seq for i in server.fetch(0, 2).items] == [11, 12]
    assert [i.seq for i in server.fetch(12, 2).items] == [15, 16]
    assert [i.seq for i in server.fetch(13, 1000).items] == [15, 16, 17]
    assert server.fetch(17, 10).items == ()
    assert [[i.seq for i in p.items] for p in server.pages(11, 2)] == [[12, 15], [16, 17]]
    with pytest.raises(SourceError, match="10000"):
        server.fetch(0, 1001)
