"""The simulator's content side: the world, the plaintext messages and the ground truth."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from opencc import OpenCC

from audit.archive.simulator import texts as T
from audit.archive.simulator.chats import (
    CATEGORIES,
    KNOWN_MSGTYPES,
    UNKNOWN_MSGTYPES,
    SimMessage,
    _Generator,
    generate_messages,
)
from audit.archive.simulator.world import World, build_world
from audit.config import SimulatorConfig

SMALL = SimulatorConfig(
    seed=11, regions=1, cities_per_region=1, stores=2, staff_per_store=4,
    customers_per_staff=15, days=1, messages=2000, traditional_share=0.25, violation_rate=0.1,
)  # fmt: skip
COMMON = ("msgid", "action", "from", "tolist", "roomid", "msgtime", "msgtype")
# msgtype -> (payload key, fields that must be there), after wecom-archive-format.md §4
PAYLOAD: dict[str, tuple[str, tuple[str, ...]]] = {
    "text": ("text", ("content",)),
    "markdown": ("info", ("content",)),
    "link": ("link", ("title", "description", "link_url", "image_url")),
    "weapp": ("weapp", ("title", "description", "username", "displayname")),
    "card": ("card", ("corpname", "userid")),
    "location": ("location", ("longitude", "latitude", "address", "title", "zoom")),
    "file": ("file", ("filename", "fileext", "sdkfileid", "filesize", "md5sum")),
    "image": ("image", ("sdkfileid", "md5sum", "filesize")),
    "voice": ("voice", ("sdkfileid", "voice_size", "play_length", "md5sum")),
    "video": ("video", ("sdkfileid", "filesize", "play_length", "md5sum")),
    "emotion": ("emotion", ("type", "width", "height", "imagesize", "sdkfileid", "md5sum")),
    "revoke": ("revoke", ("pre_msgid",)),
    "agree": ("agree", ("userid", "agree_time")),
    "disagree": ("disagree", ("userid", "disagree_time")),
    "chatrecord": ("chatrecord", ("title", "item")),
    "mixed": ("mixed", ("item",)),
    "todo": ("todo", ("title", "content")),
    "collect": ("collect", ("room_name", "creator", "create_time", "title", "details")),
    "redpacket": ("redpacket", ("type", "wish", "totalcnt", "totalamount")),
    "meeting": ("meeting", ("topic", "starttime", "endtime", "address", "remarks",
                            "meetingtype", "meetingid", "status")),
    "docmsg": ("doc", ("title", "link_url", "doc_creator")),
    "news": ("info", ("item",)),
    "calendar": ("calendar", ("title", "creatorname", "attendeename", "starttime", "endtime",
                              "place", "remarks")),
    "meeting_voice_call": ("meeting_voice_call", ("endtime", "sdkfileid", "demofiledata",
                                                  "sharescreendata")),
    "voip_doc_share": ("voip_doc_share", ("filename", "md5sum", "filesize", "sdkfileid")),
    "sphfeed": ("sphfeed", ("feed_type", "sph_name", "feed_desc")),
    "voiptext": ("info", ("callduration", "invitetype")),
    "qydiskfile": ("info", ("filename",)),
}  # fmt: skip
VOTE_FIELDS = ("votetitle", "voteitem", "votetype", "voteid")
LOOKALIKE_WORDS = (
    "企业微信",
    "傻瓜相机",
    "处女座",
    "路口交通",
    "尾号",
    "QQ音乐",
    "滚动",
    "携号转网",
)
EXTERNAL = re.compile(r"^w[mo][A-Za-z0-9_-]{28}$")


def run(cfg: SimulatorConfig) -> tuple[World, list[SimMessage]]:
    rng = random.Random(cfg.seed)
    world = build_world(cfg, rng)
    return world, list(generate_messages(world, cfg, rng))


@pytest.fixture(scope="module")
def small() -> tuple[World, list[SimMessage]]:
    return run(SMALL)


@pytest.fixture(scope="module")
def default_run() -> tuple[World, list[SimMessage]]:
    return run(SimulatorConfig())  # 20 stores, 7 days, 40,000 messages


def msg_time(m: SimMessage) -> int:
    return int(m.plain["time"] if m.plain["action"] == "switch" else m.plain["msgtime"])


def is_external(uid: str) -> bool:
    return uid.startswith(("wm", "wo"))


# --------------------------------------------------------------------------- world


def test_world_shape_and_ids() -> None:
    cfg = SimulatorConfig(regions=2, cities_per_region=3, stores=9, staff_per_store=3,
                          customers_per_staff=20, traditional_share=0.3)  # fmt: skip
    world = build_world(cfg, random.Random(5))
    assert re.fullmatch(r"ww[0-9a-f]{16}", world.corpid)
    kinds = Counter(u.kind for u in world.org_units)
    assert kinds == {"region": 2, "city": 6, "store": 9}
    codes = {u.code: u for u in world.org_units}
    for u in world.org_units:
        if u.kind == "region":
            assert re.fullmatch(r"R\d\d", u.code) and u.parent_code is None
            assert u.name.endswith("区")
        elif u.kind == "city":
            assert re.fullmatch(r"R\d\d-C\d\d", u.code)
            assert codes[u.parent_code or ""].kind == "region"
            assert u.name.endswith("市")
        else:
            assert re.fullmatch(r"S\d{3}", u.code) and codes[u.parent_code or ""].kind == "city"
            assert u.name.endswith(("厅", "店"))
    # every city has a store before any has two
    per_city = Counter(u.parent_code for u in world.org_units if u.kind == "store")
    assert set(per_city.values()) <= {1, 2} and len(per_city) == 6

    assert len(world.staff) == 27
    assert len({s.userid for s in world.staff}) == 27
    per_store = Counter(s.store_code for s in world.staff)
    assert set(per_store.values()) == {3}
    assert sum(s.position == "店长" for s in world.staff) == 9
    assert all(re.fullmatch(r"[a-z]+\d*\.s\d{3}|S\d{3}_\d\d", s.userid) for s in world.staff)

    assert len(world.customers) == 9 * 3 * 20
    assert all(EXTERNAL.match(c.external_userid) for c in world.customers)
    assert len({c.external_userid for c in world.customers}) == len(world.customers)
    trad = sum(c.traditional for c in world.customers) / len(world.customers)
    assert 0.2 < trad < 0.4

    staff_ids = {s.userid for s in world.staff}
    customer_ids = {c.external_userid for c in world.customers}
    assert {f.external_userid for f in world.follows} == customer_ids
    assert all(f.userid in staff_ids for f in world.follows)
    assert any(f.state.startswith("qr_store_S") for f in world.follows)

    tag_ids: set[str] = set()
    for g in world.tag_groups:
        assert g.group_id.startswith("et") and len(g.group_id) > 20
        assert [t.order for t in g.tags] == list(range(1, len(g.tags) + 1))
        tag_ids.update(t.id for t in g.tags)
    assert {g.name for g in world.tag_groups} >= {"客户等级", "套餐", "获客渠道", "风险标记"}
    assert all(t.startswith("et") for t in tag_ids)
    per_customer = Counter(t.external_userid for t in world.customer_tags)
    assert set(per_customer) == customer_ids and min(per_customer.values()) >= 5
    assert all(t.tag_id in tag_ids and t.userid in staff_ids for t in world.customer_tags)

    assert world.rooms
    for r in world.rooms:
        assert re.fullmatch(r"wr[A-Za-z0-9_-]{28}", r.roomid)
        assert r.creator in staff_ids and r.creator in r.members
        assert all(m in staff_ids or EXTERNAL.match(m) or m.startswith("wb") for m in r.members)
    assert any(m.startswith("wb") for r in world.rooms for m in r.members)
    assert any("群" in r.name and any(is_external(m) for m in r.members) for r in world.rooms)


def test_world_json_round_trip() -> None:
    world = build_world(SMALL, random.Random(1))
    data = json.loads(json.dumps(world.to_json(), ensure_ascii=False))
    assert list(data) == [
        "corpid", "org_units", "staff", "customers", "follows", "tag_groups", "customer_tags",
        "rooms",
    ]  # fmt: skip
    assert World.from_json(data) == world


def test_world_is_deterministic() -> None:
    assert build_world(SMALL, random.Random(3)) == build_world(SMALL, random.Random(3))
    assert build_world(SMALL, random.Random(3)) != build_world(SMALL, random.Random(4))


# --------------------------------------------------------------------------- messages


def test_deterministic_and_seed_dependent() -> None:
    _, a = run(SMALL)
    _, b = run(SMALL)
    assert a == b
    _, c = run(SMALL.model_copy(update={"seed": 12}))
    assert [m.plain for m in a] != [m.plain for m in c]


def test_rng_is_snapshotted_at_call_and_world_json_reproduces() -> None:
    rng = random.Random(SMALL.seed)
    world = build_world(SMALL, rng)
    expected = list(generate_messages(world, SMALL, rng))

    rng2 = random.Random(SMALL.seed)
    world2 = World.from_json(json.loads(json.dumps(build_world(SMALL, rng2).to_json())))
    gen = generate_messages(world2, SMALL, rng2)
    got = []
    for msg in gen:
        rng2.random()  # someone else uses the same rng meanwhile
        got.append(msg)
    assert got == expected


def test_count_and_time_order(small: tuple[World, list[SimMessage]]) -> None:
    _, msgs = small
    assert len(msgs) == SMALL.messages
    times = [msg_time(m) for m in msgs]
    assert times == sorted(times)
    day0 = int(datetime(2026, 11, 16, tzinfo=timezone(timedelta(hours=8))).timestamp() * 1000)
    assert day0 <= times[0] and times[-1] < day0 + 86_400_000
    hours = Counter(((t - day0) // 3_600_000) for t in times)
    business = sum(v for h, v in hours.items() if 9 <= h < 21) / len(times)
    assert 0.85 < business < 1.0  # mostly in opening hours, a few outside


def test_days_span(default_run: tuple[World, list[SimMessage]]) -> None:
    _, msgs = default_run
    tz = timezone(timedelta(hours=8))
    days = Counter(datetime.fromtimestamp(msg_time(m) / 1000, tz).date() for m in msgs)
    assert len(days) == 7 and min(days.values()) > 4000


def test_common_fields(small: tuple[World, list[SimMessage]]) -> None:
    world, msgs = small
    staff = {s.userid for s in world.staff}
    customers = {c.external_userid for c in world.customers}
    rooms = {r.roomid: r for r in world.rooms}
    ids = [m.plain["msgid"] for m in msgs]
    assert len(set(ids)) == len(ids)
    for m in msgs:
        p = m.plain
        if p["action"] == "switch":
            assert list(p) == ["msgid", "action", "time", "user"]
            assert p["user"] in staff and isinstance(p["time"], int)
            continue
        assert list(p)[:7] == list(COMMON)
        assert p["action"] in ("send", "recall")
        assert isinstance(p["msgtime"], int) and p["msgtime"] > 1_700_000_000_000
        sender, tolist = p["from"], p["tolist"]
        assert isinstance(tolist, list) and tolist and sender not in tolist
        assert sender in staff or sender in customers or sender.startswith("wb")
        external = is_external(sender) or any(is_external(t) for t in tolist)
        assert p["msgid"].endswith("_external") == external
        assert re.fullmatch(r"CAQQ[A-Za-z0-9+/]{27}=(_external)?", p["msgid"])
        if p["roomid"]:
            room = rooms[p["roomid"]]
            assert sender in room.members and set(tolist) == set(room.members) - {sender}
        else:
            assert len(tolist) == 1


def test_switch_records_follow_their_rate(default_run: tuple[World, list[SimMessage]]) -> None:
    """The generator follows 0.2% of staff text messages with a switch record: binomial, so
    the count stays within four standard deviations of that rate (a missing or runaway
    generator fails; the seed does not matter)."""
    world, msgs = default_run
    staff = {s.userid for s in world.staff}
    switches = sum(m.plain["action"] == "switch" for m in msgs)
    staff_texts = sum(
        m.plain.get("msgtype") == "text" and m.plain.get("from") in staff for m in msgs
    )
    expected = 0.002 * staff_texts
    assert expected > 20
    assert abs(switches - expected) <= 4 * (expected * 0.998) ** 0.5, (switches, expected)


def test_recalls_refer_to_earlier_message_of_same_sender(
    default_run: tuple[World, list[SimMessage]],
) -> None:
    _, msgs = default_run
    seen: dict[str, dict[str, Any]] = {}
    recalls = 0
    for m in msgs:
        p = m.plain
        if p.get("action") == "recall":
            recalls += 1
            assert p["msgtype"] == "revoke"
            pre = seen[p["revoke"]["pre_msgid"]]
            assert pre["from"] == p["from"] and pre["msgtime"] <= p["msgtime"]
            assert pre["roomid"] == p["roomid"]
        if "msgtime" in p:
            seen[p["msgid"]] = p
    assert recalls > 20


def test_every_msgtype_and_payload_fields(default_run: tuple[World, list[SimMessage]]) -> None:
    _, msgs = default_run
    types = Counter("switch" if m.plain["action"] == "switch" else m.plain["msgtype"] for m in msgs)
    assert set(types) >= set(KNOWN_MSGTYPES) | set(UNKNOWN_MSGTYPES) | {"switch"}
    assert 0.8 < types["text"] / len(msgs) < 0.9
    vote_forms = set()
    rp_keys = set()
    for m in msgs:
        p = m.plain
        t = p.get("msgtype")
        if t == "vote":
            if "vote" in p:
                vote_forms.add("nested")
                assert all(f in p["vote"] for f in VOTE_FIELDS)
            else:
                vote_forms.add("top")
                assert all(f in p for f in VOTE_FIELDS)
            continue
        if t == "external_redpacket":
            key = "redpacket" if "redpacket" in p else "external_redpacket"
            rp_keys.add(key)
            assert all(f in p[key] for f in PAYLOAD["redpacket"][1])
            continue
        if t in PAYLOAD:
            key, fields = PAYLOAD[t]
            assert all(f in p[key] for f in fields), (t, p)
        if t in ("chatrecord", "mixed"):
            for item in p[t]["item"]:
                assert isinstance(item["content"], str)
                assert isinstance(json.loads(item["content"]), dict)
        if t in ("image", "file", "voice", "video", "emotion", "voip_doc_share"):
            assert re.fullmatch(r"[0-9a-f]{32}", p[t]["md5sum"])
            assert len(p[t]["sdkfileid"]) > 150
        if t == "meeting_voice_call":
            assert p["voiceid"]
        if t == "voip_doc_share":
            assert p["voipid"]
        if t in UNKNOWN_MSGTYPES:
            assert isinstance(p[t], dict) and p[t]
    assert vote_forms == {"nested", "top"}
    assert rp_keys == {"redpacket", "external_redpacket"}


def test_violation_offsets_roles_and_message_types(
    default_run: tuple[World, list[SimMessage]],
) -> None:
    world, msgs = default_run
    staff = {s.userid for s in world.staff}
    n_vio = 0
    for m in msgs:
        if not m.violations:
            continue
        assert m.plain["msgtype"] == "text"
        content = m.plain["text"]["content"]
        role = "staff" if m.plain["from"] in staff else "customer"
        for v in m.violations:
            n_vio += 1
            assert content[v.start : v.end] == v.matched, (content, v)
            assert v.matched.strip() == v.matched and v.matched
            assert v.category in CATEGORIES and v.kind
            assert v.role == role
            if v.category == "promise":
                assert v.role == "staff"
            if v.category == "complaint":
                assert v.role == "customer"
    assert n_vio > 1000


def test_violation_rate_categories_and_evasions(
    default_run: tuple[World, list[SimMessage]],
) -> None:
    _, msgs = default_run
    texts = [m for m in msgs if m.plain.get("msgtype") == "text"]
    with_vio = [m for m in texts if m.violations]
    assert 0.045 < len(with_vio) / len(texts) < 0.08  # cfg.violation_rate = 0.06
    vios = [v for m in with_vio for v in m.violations]
    cats = Counter(v.category for v in vios)
    assert set(cats) == set(CATEGORIES)
    assert min(cats.values()) >= 40
    assert {(v.category, v.role) for v in vios} >= {
        ("diversion", "staff"), ("privacy", "staff"), ("privacy", "customer"),
        ("abuse", "staff"), ("abuse", "customer"), ("fraud", "staff"),
    }  # fmt: skip
    evaded = sum(1 for v in vios if v.evasion) / len(vios)
    assert 0.3 < evaded < 0.55
    evasions = Counter(v.evasion for v in vios)
    for e in ("spaced", "fullwidth", "homophone", "pinyin", "initialism", "symbols",
              "chinese_digits", "traditional"):  # fmt: skip
        assert evasions[e] > 0, e
    kinds = {v.kind for v in vios}
    assert kinds >= {"phone_number", "id_number", "bank_card", "email", "personal_wechat",
                     "wechat_id", "qq", "private_payment", "guaranteed_return", "insult",
                     "12315", "real_name_sim", "gambling"}  # fmt: skip
    assert any(len(m.violations) == 2 for m in with_vio)


def test_generated_numbers_are_valid(default_run: tuple[World, list[SimMessage]]) -> None:
    _, msgs = default_run
    fw = str.maketrans("０１２３４５６７８９", "0123456789")
    seen: Counter[str] = Counter()
    for m in msgs:
        for v in m.violations:
            digits = re.sub(r"[^0-9X]", "", v.matched.translate(fw))
            if v.kind == "id_number":
                assert len(digits) == 18 and T.id_check_digit(digits[:17]) == digits[17]
                seen["id"] += 1
            elif v.kind == "bank_card":
                assert len(digits) in (16, 19) and T.luhn_ok(digits)
                seen["card"] += 1
            elif v.kind == "phone_number" and v.evasion != "chinese_digits":
                assert digits.removeprefix("86")[:1] == "1" and len(digits.removeprefix("86")) == 11
                seen["phone"] += 1
            elif v.kind == "email" and not v.evasion:
                assert re.fullmatch(r"[a-z0-9]+@[a-z0-9]+\.com", v.matched)
                seen["email"] += 1
    assert min(seen.values()) > 3 and len(seen) == 4


def test_check_digit_helpers() -> None:
    assert T.id_check_digit("11010519491231002") == "X"  # the GB 11643 sample number
    assert T.luhn_ok("4111111111111111") and not T.luhn_ok("4111111111111112")
    rng = random.Random(0)
    assert all(not T.luhn_ok(T.innocent_order(rng, "GD")[2:]) for _ in range(200))


def test_traditional_customers_write_traditional(
    default_run: tuple[World, list[SimMessage]],
) -> None:
    world, msgs = default_run
    trad = {c.external_userid for c in world.customers if c.traditional}
    s2t, t2s = OpenCC("s2t"), OpenCC("t2s")
    trad_texts = [
        m.plain["text"]["content"]
        for m in msgs
        if m.plain.get("msgtype") == "text" and m.plain["from"] in trad
    ]
    simp_texts = [
        m.plain["text"]["content"]
        for m in msgs
        if m.plain.get("msgtype") == "text" and is_external(m.plain["from"])
        and m.plain["from"] not in trad
    ]  # fmt: skip
    assert len(trad_texts) > 300
    fixed = sum(s2t.convert(t) == t for t in trad_texts) / len(trad_texts)
    changed = sum(t2s.convert(t) != t for t in trad_texts) / len(trad_texts)
    assert fixed > 0.97 and changed > 0.6
    assert sum(s2t.convert(t) != t for t in simp_texts) / len(simp_texts) > 0.6


def test_innocent_lookalikes_present(default_run: tuple[World, list[SimMessage]]) -> None:
    _, msgs = default_run
    clean = [
        m.plain["text"]["content"]
        for m in msgs
        if m.plain.get("msgtype") == "text" and not m.violations
    ]
    joined = "\n".join(clean)
    for word in LOOKALIKE_WORDS:
        assert word in joined, word
    assert re.search(r"100(86|00|10)", joined)
    assert re.search(r"\d+元", joined) and re.search(r"\d+月\d+日", joined)
    orders = re.findall(r"(?:GD|DD|SO)(\d{16})", joined)
    assert orders and not any(T.luhn_ok(o) for o in orders)
    # no clean message carries a real phone or ID number
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", joined)
    assert not re.search(r"(?<!\d)\d{17}[\dX](?!\d)", joined)


def test_unanswered_and_delays(default_run: tuple[World, list[SimMessage]]) -> None:
    world, msgs = default_run
    staff = {s.userid for s in world.staff}
    last_customer: dict[tuple[str, str], int] = {}
    delays = []
    for m in msgs:
        p = m.plain
        if p.get("msgtype") != "text" or p["roomid"]:
            continue
        if is_external(p["from"]):
            last_customer.setdefault((p["from"], p["tolist"][0]), p["msgtime"])
        elif p["from"] in staff and is_external(p["tolist"][0]):
            t0 = last_customer.pop((p["tolist"][0], p["from"]), None)
            if t0 is not None:
                delays.append(p["msgtime"] - t0)
    delays.sort()
    assert delays[len(delays) // 2] < 300_000  # median answer within 5 minutes
    assert delays[-len(delays) // 20] > 1_800_000  # the slowest 5% wait over half an hour
    assert last_customer  # some customers are never answered


def test_all_templates_format() -> None:
    cfg = SMALL
    rng = random.Random(0)
    world = build_world(cfg, rng)
    gen = _Generator(world, cfg, rng)
    store = next(iter(gen.stores.values()))
    ctx = gen._ctx(store, gen.staff[store.manager], "王女士", "")
    templates: list[str] = []
    flows = [*T.FLOWS_EXTERNAL.values(), *T.FLOWS_GROUP, *T.FLOWS_INTERNAL]
    for flow in flows:
        for spec, _p, alternatives in flow:
            assert spec[0] in "csmb"
            templates += [a for a in alternatives if not a.startswith("@")]
    for vk in T.VIOLATIONS:
        for ts in vk.templates.values():
            for t in ts:
                assert t.count("{m}") == 1
                templates.append(t.replace("{m}", "X"))
    templates += list(T.MARKDOWN) + [c for _t, c in T.TODOS] + list(T.CALENDARS)
    for t in templates:
        t.format_map(ctx)
