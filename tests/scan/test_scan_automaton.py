"""The encoded automaton, its on-disk cache, and the fast path agreeing with the full scan."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from audit.scan import automaton
from audit.scan.automaton import compile_keys
from audit.scan.context import judge as judge_context
from audit.scan.normalize import normalize
from audit.scan.scanner import Scanner, _Quota
from audit.scan.wordlist import load_wordlists

DEFAULT_LISTS = Path(__file__).resolve().parents[2] / "wordlists"


def test_when_keys_are_encoded_then_matches_fall_on_character_boundaries() -> None:
    compiled = compile_keys({"微信": 1, "信号": 2, "ab": 3})
    codes = compiled.alphabet.encode("加我微信号ab")

    found = [(end // 2, compiled.values[v]) for end, v in compiled.automaton.iter(codes)]

    assert found == [(3, 1), (4, 2), (6, 3)]


def test_when_the_list_is_large_then_no_node_has_more_children_than_the_base() -> None:
    chars = [chr(0x4E00 + i) for i in range(3000)]
    compiled = compile_keys({a + b: 0 for a, b in zip(chars, reversed(chars), strict=True)})

    assert compiled.alphabet.base <= 60
    assert {len(c) for c in compiled.alphabet.codes.values()} == {2}


def test_when_scanner_is_built_twice_then_the_second_comes_from_the_cache(
    tmp_path: Path, monkeypatch: object
) -> None:
    lists = load_wordlists(DEFAULT_LISTS)
    first = Scanner(lists, cache_path=tmp_path)
    calls: list[int] = []
    original = automaton.compile_keys

    def counting(keys: dict[str, object]) -> automaton.Compiled:
        calls.append(1)
        return original(keys)

    import audit.scan.scanner as scanner_module

    setattr(scanner_module, "compile_keys", counting)  # noqa: B010
    try:
        second = Scanner(lists, cache_path=tmp_path)
    finally:
        scanner_module.compile_keys = original
    assert calls == []
    assert len(list(tmp_path.glob("*.pickle"))) >= 1
    text = "加我vx，电话13800138000，傻逼"
    assert first.scan(text) == second.scan(text)


def test_when_the_cache_file_is_corrupt_then_the_scanner_rebuilds(tmp_path: Path) -> None:
    lists = load_wordlists(DEFAULT_LISTS)
    Scanner(lists, cache_path=tmp_path)
    for path in tmp_path.glob("*.pickle"):
        path.write_bytes(b"not a pickle")

    assert [f.rule for f in Scanner(lists, cache_path=tmp_path).scan("加我vx", "staff")] == [
        "diversion.jia_wo_wei_xin"
    ]


def test_when_lists_change_then_the_cache_key_changes(tmp_path: Path) -> None:
    (tmp_path / "abuse.txt").write_text("傻瓜\n", encoding="utf-8")
    cache = tmp_path / "cache"
    assert [f.matched for f in Scanner.from_directory(tmp_path, categories=()).scan("傻瓜")] == [
        "傻瓜"
    ]
    Scanner(load_wordlists(tmp_path, categories=()), cache_path=cache)
    (tmp_path / "abuse.txt").write_text("笨蛋\n", encoding="utf-8")

    rebuilt = Scanner(load_wordlists(tmp_path, categories=()), cache_path=cache)

    assert [f.matched for f in rebuilt.scan("傻瓜笨蛋")] == ["笨蛋"]


SCANNER = Scanner.from_directory(DEFAULT_LISTS)
PIECES = [
    *("加我", "微", "信", "vx", "傻", "逼", "，", " ", "号", "138", "0013", "8000", "@"),
    *("你好", "a.b", "微微微", "一三八", "零零"),
    *("➕", "🐶", "保证", "一定", "收益", "V：", "tony-811", " at ", "qq", "点", "com", "OO"),
]


@given(st.lists(st.sampled_from(PIECES), max_size=10), st.sampled_from([None, "staff"]))
def test_fast_path_never_hides_a_finding(parts: list[str], role: str | None) -> None:
    text = "".join(parts)
    norm = normalize(text, SCANNER.collapse, SCANNER.fold)
    matches = SCANNER._matches(norm)
    quota = _Quota()
    found = SCANNER._terms_in(text, norm, role, quota, matches) + SCANNER._recognized(
        text, norm, role, quota
    )
    full = judge_context(text, norm, role, found)

    assert SCANNER.scan(text, role) == sorted(full, key=lambda f: (f.start, f.end, f.rule))
