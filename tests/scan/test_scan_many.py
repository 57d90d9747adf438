"""Scanner.scan_many finds exactly what Scanner.scan finds, text by text: on simulated
chats, on the labelled messages (the tuning halves and the probes of techniques), and on
texts made to trip a batch up (halves of a term, digits and contact hints on either side
of the edge between two texts, empty texts, texts of dropped characters only, texts longer
than a chunk, repeats with other roles, more texts than one block holds)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from audit.archive.simulator.chats import text_contents
from audit.scan.scanner import BATCH, BATCH_MAX_LEN, CHUNK, Scanner

ROOT = Path(__file__).resolve().parents[2]
EVAL = ROOT / "tests" / "data" / "eval"
# the tuning halves and the probes of techniques (never the test halves)
LABELLED = (
    EVAL / "messages.jsonl",
    EVAL / "v2" / "tuning.jsonl",
    EVAL / "v3" / "tuning.jsonl",
    EVAL / "probes" / "techniques.jsonl",
)
ROLES = (None, "staff", "customer")


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner.from_directory(ROOT / "wordlists")


@pytest.fixture(scope="module")
def simulated() -> list[str]:
    return text_contents(3000)


def labelled() -> list[tuple[str, str | None]]:
    out = []
    for path in LABELLED:
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            out.append((item["text"], item.get("role")))
    return out


def assert_same(scanner: Scanner, texts: list[str], roles: list[str | None]) -> None:
    expected = [scanner.scan(text, role) for text, role in zip(texts, roles, strict=True)]
    got = scanner.scan_many(texts, roles)
    assert len(got) == len(texts)
    for text, role, want, have in zip(texts, roles, expected, got, strict=True):
        assert have == want, (text, role)


def test_simulated_chats_give_the_findings_of_scan(scanner: Scanner, simulated: list[str]) -> None:
    assert len(simulated) > 2 * BATCH  # several blocks
    rng = random.Random(7)
    roles = [rng.choice(ROLES) for _ in simulated]
    assert_same(scanner, simulated, roles)
    assert sum(map(bool, scanner.scan_many(simulated, roles))) > 100  # findings were made


@pytest.mark.parametrize("role", ROLES)
def test_simulated_chats_for_one_role_give_the_findings_of_scan(
    scanner: Scanner, simulated: list[str], role: str | None
) -> None:
    assert_same(scanner, simulated[:1500], [role] * 1500)


def test_labelled_messages_give_the_findings_of_scan(scanner: Scanner) -> None:
    items = labelled()
    assert len(items) > 1000
    texts = [text for text, _ in items]
    assert_same(scanner, texts, [role for _, role in items])
    for role in ROLES:
        assert_same(scanner, texts, [role] * len(texts))
    # shuffled: each text has other neighbours
    order = list(range(len(texts)))
    random.Random(3).shuffle(order)
    assert_same(scanner, [texts[i] for i in order], [items[i][1] for i in order])


# texts that are nothing alone, but would be something if a batch ran them together
EDGES = [
    ("我可以保证", "收益翻倍"),  # 保证…收益 with a gap across the edge
    ("加我", "微信"),
    ("加我们", "微信号"),
    ("1380013", "8000"),  # a phone number cut in two
    ("1234", "5678"),  # five digits only together
    ("tony", "@qq.com"),
    ("tony a", "t qq dot com"),
    ("V", "：tony_811"),
    ("微", "信号是jay_536"),
    ("艾", "特"),
    ("12", "315"),
    ("微微", "微"),
]


def test_texts_split_at_a_block_edge_are_scanned_apart(scanner: Scanner) -> None:
    for left, right in EDGES:
        for filler in ([], ["好的"] * (BATCH - 1)):  # side by side, and across two blocks
            texts = [*filler, left, right, left + right]
            for role in ROLES:
                assert_same(scanner, texts, [role] * len(texts))
    # the whole text does hold something in most of them: the test can tell
    assert sum(bool(scanner.scan(left + right)) for left, right in EDGES) >= 6


def test_empty_and_dropped_only_texts(scanner: Scanner) -> None:
    texts = ["", "加我微信", "", " ", "\u200b\u200b", "\ue000\uf001", "13800138000", "", "\n"]
    assert_same(scanner, texts, [None] * len(texts))
    assert scanner.scan_many([]) == []
    assert scanner.scan_many([""]) == [[]]


def test_long_texts_among_short_ones(scanner: Scanner, simulated: list[str]) -> None:
    long_text = "，".join(simulated[:400])
    assert len(long_text) > 2 * CHUNK
    repeated = "加我微信13800138000 " * 1000  # capped findings, several chunks
    middle = [  # the lengths around the longest text a block takes
        "，".join(simulated[k : k + n])[:length]
        for k, n in ((40, 400), (80, 400), (120, 400))
        for length in (BATCH_MAX_LEN - 1, BATCH_MAX_LEN, BATCH_MAX_LEN + 1, CHUNK)
    ]
    assert {len(t) for t in middle} == {BATCH_MAX_LEN - 1, BATCH_MAX_LEN, BATCH_MAX_LEN + 1, CHUNK}
    texts = [simulated[0], long_text, "保证收益", repeated, *middle, long_text, "", simulated[1]]
    for role in ROLES:
        assert_same(scanner, texts, [role] * len(texts))


def test_a_repeated_text_is_scanned_for_each_role(scanner: Scanner) -> None:
    # 12315 is a complaint from a customer only
    texts = ["我要打12315投诉你们", "我要打12315投诉你们", "我要打12315投诉你们", "好的"]
    roles: list[str | None] = ["staff", "customer", None, "customer"]
    assert_same(scanner, texts, roles)
    found = scanner.scan_many(texts, roles)
    assert found[0] != found[1]


def test_each_text_gets_a_list_of_its_own(scanner: Scanner) -> None:
    found = scanner.scan_many(["好的", "好的", "加我微信", "加我微信"])
    assert found[2] and found[2] == found[3]
    found[0].append(found[2][0])
    found[2].clear()
    assert found[1] == [] and found[3]


def test_roles_are_checked(scanner: Scanner) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        scanner.scan_many(["好的"], ["boss"])
    with pytest.raises(ValueError, match="roles"):
        scanner.scan_many(["好的", "嗯"], ["staff"])
