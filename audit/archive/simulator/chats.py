"""Plaintext WeCom archive messages for a simulated ``World``, with a ground truth.

``generate_messages`` yields ``SimMessage`` objects whose ``plain`` is the decrypted message
JSON exactly as the archive returns it (see ``wecom-archive-format.md`` section 4), sorted by
time, and whose ``violations`` say which compliance violations were injected and where.

Conversations follow a telecom store's service flows (plan changes, broadband faults, bills,
complaints, phone upgrades, 5G promotions, number porting, points, appointments) in one-to-one
chats with customers, in the stores' customer groups and in internal staff chats. Violations
are only ever injected into ``text`` messages; their offsets index ``plain["text"]["content"]``.

Determinism: ``generate_messages`` draws one 64-bit seed from ``rng`` when it is *called* and
uses a private ``random.Random`` from then on, so interleaving other uses of ``rng`` with the
iteration does not change the output.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from audit.archive.simulator import texts as T
from audit.archive.simulator.world import (
    CHINA_TZ,
    CITY_COORDS,
    REGIONS,
    STORE_KINDS,
    STREETS,
    SURNAMES,
    RoomSpec,
    World,
    build_world,
    day_start_ms,
    wecom_id,
)
from audit.config import SimulatorConfig
from audit.domain import CATEGORIES

CORP_NAME = "联讯通信连锁"
H5 = "https://h5.example-telecom.cn"
IMG = "https://img.example-telecom.cn"
DOC = "https://doc.weixin.qq.com"

# Every msgtype the simulator emits (the format doc's table plus two the vendor "added later").
KNOWN_MSGTYPES = (
    "text", "markdown", "link", "weapp", "card", "location", "file", "image", "voice", "video",
    "emotion", "revoke", "agree", "disagree", "chatrecord", "mixed", "todo", "vote", "collect",
    "redpacket", "external_redpacket", "meeting", "docmsg", "news", "calendar",
    "meeting_voice_call", "voip_doc_share", "sphfeed", "voiptext", "qydiskfile",
)  # fmt: skip
UNKNOWN_MSGTYPES = ("future_widget", "smart_card")
_UNKNOWN_TOKENS = tuple("@" + u for u in UNKNOWN_MSGTYPES)

_HOUR_WEIGHTS = (
    0.03, 0.02, 0.01, 0.01, 0.01, 0.02, 0.08, 0.3, 1.2, 5.0, 8.0, 8.0,
    5.0, 5.0, 7.0, 7.0, 7.0, 6.0, 5.0, 6.0, 6.0, 1.0, 0.5, 0.2,
)  # fmt: skip
_PUNCT_END = tuple("。！？～!?.，,")
_COMPOUND = tuple(s for s, _ in SURNAMES if len(s) == 2)


@dataclass(frozen=True)
class Violation:
    """Ground truth for one injected violation."""

    category: str  # privacy, diversion, promise, abuse, complaint, fraud, illegal
    kind: str  # e.g. "phone_number", "personal_wechat", "12315", "gambling"
    start: int  # offsets into the message's text content
    end: int
    matched: str  # content[start:end]
    evasion: str  # "" or the evasion used ("spaced", "fullwidth", "homophone", "traditional" ...)
    role: str  # "staff" | "customer"


@dataclass(frozen=True)
class SimMessage:
    plain: dict[str, Any]  # the decrypted message JSON exactly as WeCom sends it
    violations: tuple[Violation, ...]


def generate_messages(
    world: World, cfg: SimulatorConfig, rng: random.Random
) -> Iterator[SimMessage]:
    """About ``cfg.messages`` messages (exactly that many) over ``cfg.days`` days, by time."""
    gen = _Generator(world, cfg, random.Random(rng.getrandbits(64)))
    return gen.run()


# --------------------------------------------------------------------------- internals


@dataclass
class _Store:
    code: str
    name: str
    short: str
    city: str
    province: str
    street: str
    street2: str
    address: str
    lon: float
    lat: float
    staff: list[str]
    manager: str
    installer: str


@dataclass
class _Staff:
    userid: str
    name: str
    store: str
    me: str
    vio_factor: float
    slowness: float
    ignore_rate: float


def text_contents(messages: int) -> list[str]:
    """The texts of the text messages of the default simulated archive of ``messages``
    messages, violations included, in order (benchmarks and tests of the scanner)."""
    cfg = SimulatorConfig(messages=messages)
    rng = random.Random(cfg.seed)
    world = build_world(cfg, rng)
    return [
        m.plain["text"]["content"]
        for m in generate_messages(world, cfg, rng)
        if m.plain.get("msgtype") == "text"
    ]


def _split_store_name(name: str, city: str) -> tuple[str, str]:
    """(street, "street店") from a store name built by ``world.build_world``."""
    for street in sorted(STREETS, key=len, reverse=True):
        if street in name:
            return street, street + "店"
    mid = name.removeprefix(city[:-1])
    for kind in sorted(STORE_KINDS, key=len, reverse=True):
        mid = mid.removesuffix(kind)
    return mid, mid[-4:] + "店"


_PROVINCE = {city: prov for _r, cities in REGIONS for city, prov, _d in cities}


class _Generator:
    def __init__(self, world: World, cfg: SimulatorConfig, rng: random.Random) -> None:
        self.world = world
        self.cfg = cfg
        self.rng = rng
        self.rate = cfg.violation_rate
        units = {u.code: u for u in world.org_units}
        staff_by_store: dict[str, list[str]] = {}
        for s in world.staff:
            staff_by_store.setdefault(s.store_code, []).append(s.userid)
        positions = {s.userid: s.position for s in world.staff}
        self.stores: dict[str, _Store] = {}
        for u in world.org_units:
            if u.kind != "store":
                continue
            city_unit = units.get(u.parent_code or "")
            city = city_unit.name if city_unit else "杭州市"
            street, short = _split_store_name(u.name, city)
            lon, lat = CITY_COORDS.get(city, (120.155, 30.274))
            lon += rng.uniform(-0.08, 0.08)
            lat += rng.uniform(-0.06, 0.06)
            members = staff_by_store.get(u.code, [])
            installer = next((m for m in members if positions[m] == "装维工程师"), "")
            self.stores[u.code] = _Store(
                code=u.code,
                name=u.name,
                short=short,
                city=city,
                province=_PROVINCE.get(city, ""),
                street=street,
                street2=rng.choice([s for s in STREETS if s != street]),
                address=f"{_PROVINCE.get(city, '')}{city}{street}{rng.randint(1, 399)}号",
                lon=round(lon, 6),
                lat=round(lat, 6),
                staff=members,
                manager=members[0] if members else "",
                installer=installer or (members[-1] if members else ""),
            )
        self.staff: dict[str, _Staff] = {}
        for s in world.staff:
            surname = s.name[:2] if s.name[:2] in _COMPOUND else s.name[:1]
            store = self.stores[s.store_code]
            if s.position == "装维工程师":
                me = f"{store.short}的装维师傅小{surname}"
            elif s.position == "店长":
                me = f"{store.short}店长{s.name}"
            else:
                me = f"{store.short}的小{surname}"
            vf = rng.choices((0.4, 1.0, 3.0), (0.5, 0.35, 0.15))[0]
            slow = rng.choices((0.5, 1.0, 2.5), (0.3, 0.5, 0.2))[0]
            ignore = rng.choices((0.01, 0.05, 0.2), (0.5, 0.35, 0.15))[0]
            self.staff[s.userid] = _Staff(s.userid, s.name, s.store_code, me, vf, slow, ignore)
        self.trad = {c.external_userid: c.traditional for c in world.customers}
        self.follows = [(f.userid, f.external_userid, f.remark) for f in world.follows]
        self.follows = [f for f in self.follows if f[0] in self.staff]
        self.ext_rooms: list[RoomSpec] = []
        self.int_rooms: list[RoomSpec] = []
        for r in world.rooms:
            if r.store_code not in self.stores:
                continue
            if any(m.startswith(("wm", "wo")) for m in r.members):
                self.ext_rooms.append(r)
            else:
                self.int_rooms.append(r)
        self.agreed: set[str] = set()
        self.flow_names = list(T.FLOW_WEIGHTS)
        self.flow_weights = [T.FLOW_WEIGHTS[n] for n in self.flow_names]
        self.hours = list(range(24))
        self.cat_names = {role: list(w) for role, w in T.CATEGORY_WEIGHTS.items()}
        self.cat_weights = {role: list(w.values()) for role, w in T.CATEGORY_WEIGHTS.items()}
        self.kinds = {
            (cat, role): T.kinds_for(cat, role)
            for cat in CATEGORIES
            for role in ("staff", "customer")
        }
        self.buf: list[tuple[int, SimMessage]] = []
        self.day_end = 0
        self.date = datetime.fromtimestamp(day_start_ms(cfg.start) / 1000, CHINA_TZ)

    # ------------------------------------------------------------------ driver

    def run(self) -> Iterator[SimMessage]:
        cfg = self.cfg
        emitted = 0
        kinds = ("external", "group", "internal")
        weights = [0.72 if self.follows else 0.0, 0.16 if self.ext_rooms else 0.0, 0.12]
        if not self.int_rooms and not any(len(s.staff) > 1 for s in self.stores.values()):
            weights[2] = 0.0
        if sum(weights) == 0:
            return
        for day in range(cfg.days):
            target = round(cfg.messages * (day + 1) / cfg.days) - emitted
            if target <= 0:
                continue
            day0 = day_start_ms(cfg.start, day)
            self.day_end = day0 + 86_400_000
            self.date = datetime.fromtimestamp(day0 / 1000, CHINA_TZ)
            self.buf = []
            while len(self.buf) < target:
                hour = self.rng.choices(self.hours, _HOUR_WEIGHTS)[0]
                t0 = day0 + hour * 3_600_000 + self.rng.randrange(3_600_000)
                kind = self.rng.choices(kinds, weights)[0]
                if kind == "external":
                    self._external(t0)
                elif kind == "group":
                    self._group(t0)
                else:
                    self._internal(t0)
            del self.buf[target:]
            self.buf.sort(key=itemgetter(0))
            for _t, msg in self.buf:
                yield msg
            emitted += len(self.buf)
            self.buf = []

    # ------------------------------------------------------------------ ids and payload bits

    def _msgid(self, external: bool) -> str:
        raw = b"\x08\x04\x10" + self.rng.getrandbits(160).to_bytes(20, "big")
        mid = base64.b64encode(raw).decode("ascii")
        return mid + "_external" if external else mid

    def _md5(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def _sdkfileid(self) -> str:
        n = self.rng.randrange(150, 260)
        return "Ct" + base64.b64encode(self.rng.randbytes(n)).decode("ascii")

    def _ctx(self, store: _Store, staff: _Staff | None, cname: str, hotline: str) -> dict[str, Any]:
        rng = self.rng
        plan, price = rng.choice(T.PLANS)
        plan2, price2 = rng.choice(T.PLANS)
        op, hl = rng.choice(T.OPERATORS)
        op2 = rng.choice([o for o, _h in T.OPERATORS if o != op])
        future = self.date + timedelta(days=rng.randint(1, 4))
        past = self.date - timedelta(days=rng.randint(3, 40))
        month = self.date.month
        xiaoqu = rng.choice(T.XIAOQU)
        fee = rng.choice((5, 8, 10, 15, 20, 30))
        return {
            "cname": cname,
            "me": staff.me if staff else "",
            "store": store.name,
            "city": store.city,
            "street": store.street,
            "street2": store.street2,
            "num": rng.randint(1, 399),
            "tail4": f"{rng.randrange(10000):04d}",
            "plan": plan,
            "price": price,
            "plan2": plan2,
            "price2": price2,
            "gb": rng.choice((5, 10, 20, 30, 40, 60, 100)),
            "months": rng.choice((3, 6, 8, 12, 18, 24)),
            "gift": rng.choice(T.GIFTS),
            "order": T.innocent_order(rng, rng.choice(("GD", "DD", "SO"))),
            "hotline": hotline or hl,
            "operator": op,
            "operator2": op2,
            "xiaoqu": xiaoqu,
            "building": rng.randint(1, 30),
            "addr": (
                f"{xiaoqu}{rng.randint(1, 30)}幢{rng.randint(1, 4)}单元{rng.randint(101, 2802)}"
            ),
            "hour": rng.choice((2, 3, 4, 5, 6)),
            "date": f"{future.month}月{future.day}日",
            "pdate": f"{past.month}月{past.day}日",
            "slot": rng.choice(T.SLOTS),
            "amount": f"{rng.randint(18, 399)}.{rng.randrange(100):02d}元",
            "fee": fee,
            "bill": price + fee,
            "month": (month - 2) % 12 + 1,
            "phone": rng.choice(T.PHONES),
            "discount": rng.choice((200, 300, 500, 800, 1000, 1500)),
            "weekday": rng.choice(T.WEEKDAYS),
            "points": rng.randint(800, 36000),
            "speed": rng.choice(T.SPEEDS),
            "n": rng.randint(2, 30),
        }

    # ------------------------------------------------------------------ message builders

    def _emit(self, t: int, plain: dict[str, Any], vios: tuple[Violation, ...] = ()) -> None:
        # a by-product (recall, switch, agree ...) that would fall outside the day is dropped,
        # so that days never overlap and the output stays sorted
        if self.day_end - 86_400_000 <= t < self.day_end:
            self.buf.append((t, SimMessage(plain, vios)))

    def _base(
        self, sender: str, tolist: list[str], roomid: str, t: int, msgtype: str, ext: bool
    ) -> dict[str, Any]:
        return {
            "msgid": self._msgid(ext),
            "action": "send",
            "from": sender,
            "tolist": tolist,
            "roomid": roomid,
            "msgtime": t,
            "msgtype": msgtype,
        }

    def _text(
        self,
        conv: _Conv,
        sender: str,
        role: str,
        template: str,
        t: int,
    ) -> dict[str, Any]:
        rng = self.rng
        trad = role == "customer" and self.trad.get(sender, False)
        content = template.format_map(conv.ctx)
        if trad:
            content = T.to_traditional(content)
        vios: tuple[Violation, ...] = ()
        st = self.staff.get(sender)
        p = self.rate * (st.vio_factor if st else 1.0)
        if p and rng.random() < p:
            wrole = "internal" if conv.internal else role
            vtext, vios = self._violation(conv, role, wrole, trad)
            if vios:
                if rng.random() < 0.5:
                    content = vtext
                else:
                    sep = (
                        "" if content.endswith(_PUNCT_END) else rng.choice(("，", "。", " ", "\n"))
                    )
                    shift = len(content) + len(sep)
                    content = content + sep + vtext
                    vios = tuple(
                        Violation(
                            v.category,
                            v.kind,
                            v.start + shift,
                            v.end + shift,
                            v.matched,
                            v.evasion,
                            v.role,
                        )
                        for v in vios
                    )
        msg = self._base(sender, conv.tolist(sender), conv.roomid, t, "text", conv.ext)
        msg["text"] = {"content": content}
        self._emit(t, msg, vios)
        conv.last_by[sender] = msg["msgid"]
        return msg

    def _violation(
        self, conv: _Conv, role: str, wrole: str, trad: bool
    ) -> tuple[str, tuple[Violation, ...]]:
        rng = self.rng
        cat = rng.choices(self.cat_names[wrole], self.cat_weights[wrole])[0]
        kinds = self.kinds[(cat, role)]
        if not kinds:
            return "", ()
        parts: list[str] = []
        vios: list[Violation] = []
        pos = 0
        count = 2 if cat == "privacy" and role == "customer" and rng.random() < 0.08 else 1
        for i in range(count):
            vk = rng.choice(kinds)
            template = rng.choice(vk.templates[role])
            before_t, after_t = T.split_template(template)
            before = before_t.format_map(conv.ctx)
            after = after_t.format_map(conv.ctx)
            matched, evasion = T.make_match(vk, rng, rng.random() < T.EVASION_SHARE)
            if trad:
                before = T.to_traditional(before)
                after = T.to_traditional(after)
                converted = T.to_traditional(matched)
                if converted != matched and not evasion:
                    evasion = "traditional"
                matched = converted
            if i:
                parts.append("，")
                pos += 1
            start = pos + len(before)
            vios.append(
                Violation(cat, vk.kind, start, start + len(matched), matched, evasion, role)
            )
            piece = before + matched + after
            parts.append(piece)
            pos += len(piece)
        return "".join(parts), tuple(vios)

    def _nontext(self, conv: _Conv, sender: str, token: str, t: int) -> None:
        """A non-text message; ``token`` is ``@kind`` or ``@kind:arg``."""
        rng = self.rng
        kind, _, arg = token[1:].partition(":")
        ctx = conv.ctx
        msgtype = kind
        payload: dict[str, Any]
        extra: dict[str, Any] = {}
        if kind == "image":
            payload = {"md5sum": self._md5(), "filesize": rng.randint(30_000, 3_500_000),
                       "sdkfileid": self._sdkfileid()}  # fmt: skip
        elif kind == "voice":
            secs = rng.randint(2, 59)
            payload = {"md5sum": self._md5(), "voice_size": secs * rng.randint(1500, 1800),
                       "play_length": secs, "sdkfileid": self._sdkfileid()}  # fmt: skip
        elif kind == "video":
            secs = rng.randint(5, 120)
            payload = {"md5sum": self._md5(), "filesize": secs * rng.randint(120_000, 400_000),
                       "play_length": secs, "sdkfileid": self._sdkfileid()}  # fmt: skip
        elif kind == "emotion":
            side = rng.choice((120, 180, 240, 300))
            payload = {"type": rng.choice((1, 2)), "width": side, "height": side,
                       "imagesize": rng.randint(5_000, 900_000), "md5sum": self._md5(),
                       "sdkfileid": self._sdkfileid()}  # fmt: skip
        elif kind == "file":
            name, ext = rng.choice(T.FILES.get(arg) or T.FILES["资费"])
            payload = {"md5sum": self._md5(), "filename": f"{name}.{ext}", "fileext": ext,
                       "filesize": rng.randint(20_000, 8_000_000),
                       "sdkfileid": self._sdkfileid()}  # fmt: skip
        elif kind == "link":
            title, desc, url = rng.choice(T.LINKS.get(arg) or T.LINKS["5g"])
            payload = {"title": title, "description": desc, "link_url": url,
                       "image_url": f"{IMG}/cover/{rng.randrange(10**6)}.jpg"}  # fmt: skip
        elif kind == "weapp":
            title, desc, user, display = rng.choice(T.WEAPPS.get(arg) or T.WEAPPS["5g"])
            payload = {"title": title, "description": desc, "username": user,
                       "displayname": display}  # fmt: skip
        elif kind == "card":
            store = conv.store
            payload = {"corpname": CORP_NAME, "userid": store.installer or store.manager}
        elif kind == "location":
            store = conv.store
            payload = {"longitude": store.lon, "latitude": store.lat, "address": store.address,
                       "title": store.name, "zoom": 15}  # fmt: skip
        elif kind == "mixed":
            text = rng.choice(
                ("光猫就是这样的，红灯一直闪", "这是我的账单截图，你看下", "就是这个页面")
            )
            if self.trad.get(sender, False):
                text = T.to_traditional(text)
            img = {"md5sum": self._md5(), "filesize": rng.randint(30_000, 2_000_000),
                   "sdkfileid": self._sdkfileid()}  # fmt: skip
            payload = {"item": [
                {"type": "text", "content": json.dumps({"content": text}, ensure_ascii=False)},
                {"type": "image", "content": json.dumps(img, ensure_ascii=False)},
            ]}  # fmt: skip
        elif kind == "chatrecord":
            base_s = t // 1000 - rng.randint(600, 7200)
            lines = (
                "宽带三天没修好，什么时候来人",
                "这个月多扣了钱，帮我查一下",
                "你们给个处理时间",
            )
            items: list[dict[str, Any]] = []
            for i, line in enumerate(rng.sample(lines, 2)):
                items.append({"type": "ChatRecordText", "msgtime": base_s + i * 60,
                              "content": json.dumps({"content": line}, ensure_ascii=False),
                              "from_chatroom": False})  # fmt: skip
            img = {"md5sum": self._md5(), "filesize": rng.randint(30_000, 900_000),
                   "sdkfileid": self._sdkfileid()}  # fmt: skip
            items.append({"type": "ChatRecordImage", "msgtime": base_s + 200,
                          "content": json.dumps(img), "from_chatroom": False})  # fmt: skip
            payload = {"title": "客户的聊天记录", "item": items}
        elif kind == "todo":
            title, content = rng.choice(T.TODOS)
            payload = {"title": title, "content": content.format_map(ctx)}
        elif kind == "vote":
            title, options = rng.choice(T.VOTE_TITLES)
            vote = {"votetitle": title, "voteitem": list(options), "votetype": 101,
                    "voteid": str(rng.randrange(10**18, 10**19))}  # fmt: skip
            if rng.random() < 0.5:
                payload = vote
            else:
                msg = self._base(sender, conv.tolist(sender), conv.roomid, t, "vote", conv.ext)
                msg.update(vote)
                self._emit(t, msg)
                return
        elif kind == "collect":
            created = datetime.fromtimestamp(t / 1000, CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")
            payload = {"room_name": conv.room_name, "creator": self.staff[sender].name
                       if sender in self.staff else "", "create_time": created,
                       "title": rng.choice(T.COLLECT_TITLES),
                       "details": [{"id": 1, "ques": "姓名", "type": "Text"},
                                   {"id": 2, "ques": "小区及门牌", "type": "Text"},
                                   {"id": 3, "ques": "预约日期", "type": "Date"}]}  # fmt: skip
        elif kind in ("redpacket", "external_redpacket"):
            cnt = rng.randint(1, 20) if conv.roomid else 1
            payload = {"type": 2 if cnt > 1 else 1, "wish": rng.choice(T.RP_WISHES),
                       "totalcnt": cnt,
                       "totalamount": cnt * rng.choice((88, 100, 188, 200, 520))}  # fmt: skip
            if kind == "external_redpacket" and rng.random() < 0.7:
                key = "redpacket"  # the official form puts an external red packet under "redpacket"
                msg = self._base(sender, conv.tolist(sender), conv.roomid, t, msgtype, conv.ext)
                msg[key] = payload
                self._emit(t, msg)
                return
        elif kind == "meeting":
            start_s = t // 1000 + rng.randint(1, 48) * 1800
            payload = {"topic": rng.choice(T.MEETINGS), "starttime": start_s,
                       "endtime": start_s + 3600, "address": f"{conv.store.name}二楼会议室",
                       "remarks": "请准时参加", "meetingtype": 102,
                       "meetingid": rng.randrange(10**15, 10**16), "status": 1}  # fmt: skip
        elif kind == "docmsg":
            payload = {"title": rng.choice(T.DOCS),
                       "link_url": f"{DOC}/sheet/e3_{wecom_id(rng, '', 20, False)}",
                       "doc_creator": sender}  # fmt: skip
            msgtype = "docmsg"
            kind = "doc"
        elif kind == "news":
            title, desc = rng.choice(T.NEWS)
            payload = {"item": [{"title": title, "description": desc,
                                 "url": f"{H5}/news/{rng.randrange(10**6)}",
                                 "picurl": f"{IMG}/news/{rng.randrange(10**6)}.jpg"}]}  # fmt: skip
            kind = "info"
        elif kind == "markdown":
            payload = {"content": rng.choice(T.MARKDOWN).format_map(ctx)}
            kind = "info"
        elif kind == "calendar":
            start_s = t // 1000 + rng.randint(2, 96) * 1800
            others = [self.staff[u].name for u in conv.store.staff if u != sender][:3]
            payload = {"title": rng.choice(T.CALENDARS).format_map(ctx),
                       "creatorname": self.staff[sender].name if sender in self.staff else "",
                       "attendeename": others, "starttime": start_s, "endtime": start_s + 5400,
                       "place": conv.store.name, "remarks": "带好工牌"}  # fmt: skip
        elif kind == "meeting_voice_call":
            end_s = t // 1000
            extra["voiceid"] = wecom_id(rng, "", 32, False)
            payload = {"endtime": end_s, "sdkfileid": self._sdkfileid(),
                       "demofiledata": [{"filename": "门店周报.pptx", "demooperator": sender,
                                         "starttime": end_s - 900, "endtime": end_s - 300}],
                       "sharescreendata": [{"share": sender, "starttime": end_s - 1200,
                                            "endtime": end_s - 1000}]}  # fmt: skip
        elif kind == "voip_doc_share":
            extra["voipid"] = wecom_id(rng, "", 32, False)
            name, ext = rng.choice(T.FILES["方案"])
            payload = {"filename": f"{name}.{ext}", "md5sum": self._md5(),
                       "filesize": rng.randint(50_000, 5_000_000),
                       "sdkfileid": self._sdkfileid()}  # fmt: skip
        elif kind == "sphfeed":
            name, desc = rng.choice(T.SPH)
            payload = {"feed_type": rng.choice((2, 4)), "sph_name": name, "feed_desc": desc}
        elif kind == "voiptext":
            payload = {"callduration": rng.randint(15, 1800), "invitetype": rng.choice((1, 2))}
            kind = "info"
        elif kind == "qydiskfile":
            payload = {"filename": rng.choice(T.DISK_FILES)}
            kind = "info"
        elif kind == "future_widget":
            payload = {"widget_id": wecom_id(rng, "fw", 16, False), "title": "门店服务评价",
                       "payload": {"score": rng.randint(1, 5),
                                   "options": ["满意", "一般", "不满意"]}}  # fmt: skip
        elif kind == "smart_card":
            payload = {"card_id": wecom_id(rng, "sc", 16, False), "title": "本周排班",
                       "url": "https://work.weixin.qq.com/smartcard/preview"}  # fmt: skip
        else:  # pragma: no cover - a template names a kind this builder does not know
            raise ValueError(f"unknown non-text token {token!r}")
        msg = self._base(sender, conv.tolist(sender), conv.roomid, t, msgtype, conv.ext)
        msg.update(extra)
        msg[kind] = payload
        self._emit(t, msg)

    def _recall(self, conv: _Conv, sender: str, t: int) -> None:
        pre = conv.last_by.get(sender)
        if not pre:
            return
        msg = self._base(sender, conv.tolist(sender), conv.roomid, t, "revoke", conv.ext)
        msg["action"] = "recall"
        msg["revoke"] = {"pre_msgid": pre}
        self._emit(t, msg)
        del conv.last_by[sender]

    def _switch(self, user: str, t: int) -> None:
        self._emit(t, {"msgid": self._msgid(False), "action": "switch", "time": t, "user": user})

    def _agree(self, customer: str, staff: str, t: int, agree: bool) -> None:
        msgtype = "agree" if agree else "disagree"
        msg = self._base(customer, [staff], "", t, msgtype, True)
        msg[msgtype] = {"userid": customer, f"{msgtype}_time": t}
        self._emit(t, msg)

    # ------------------------------------------------------------------ timing

    def _staff_delay(self, st: _Staff | None) -> int:
        r = self.rng.random()
        if r < 0.5:
            s = self.rng.uniform(8, 90)
        elif r < 0.8:
            s = self.rng.uniform(90, 900)
        elif r < 0.95:
            s = self.rng.uniform(900, 5400)
        else:
            s = self.rng.uniform(5400, 4 * 3600)
        return int(s * (st.slowness if st else 1.0) * 1000)

    def _customer_delay(self) -> int:
        r = self.rng.random()
        if r < 0.6:
            s = self.rng.uniform(4, 60)
        elif r < 0.9:
            s = self.rng.uniform(60, 600)
        else:
            s = self.rng.uniform(600, 7200)
        return int(s * 1000)

    # ------------------------------------------------------------------ conversations

    def _play(self, conv: _Conv, steps: tuple[T.Step, ...], actors: dict[str, str], t: int) -> int:
        """Play ``steps``; ``actors`` maps a step role to a sender. Returns the last time."""
        rng = self.rng
        prev_role = ""
        first = True
        anchors: dict[str, int] = {}
        for spec, prob, alternatives in steps:
            if prob < 1.0 and rng.random() >= prob:
                continue
            role = spec[0]
            if len(spec) > 2 and spec[1] == "=" and spec[2:] in anchors:
                idx = anchors[spec[2:]] % len(alternatives)
            else:
                idx = rng.randrange(len(alternatives))
                if len(spec) > 2 and spec[1] == "#":
                    anchors[spec[2:]] = idx
            sender = actors.get(role) or actors.get("s", "")
            if role == "c" and conv.customers:
                sender = conv.pick_customer(rng)
            if not first:
                if role == prev_role:
                    t += rng.randint(2_000, 40_000)
                elif role == "c":
                    t += self._customer_delay()
                else:
                    t += self._staff_delay(self.staff.get(sender))
            if role != "c":
                # staff answer in working hours: a night message waits for the morning
                local_h = (t - self.day_end + 86_400_000) / 3_600_000
                if local_h < 8.5:
                    t = self.day_end - 86_400_000 + 30_600_000 + rng.randrange(2_400_000)
                elif local_h >= 22.5:
                    return t
            if t >= self.day_end:
                return t
            first = False
            prev_role = role
            kind = "customer" if role == "c" else "staff"
            self._say(conv, sender, kind, alternatives[idx], t)
        return t

    def _say(self, conv: _Conv, sender: str, role: str, template: str, t: int) -> None:
        rng = self.rng
        if template.startswith("@"):
            self._nontext(conv, sender, template, t)
            return
        self._text(conv, sender, role, template, t)
        r = rng.random()
        if r < 0.005:
            self._recall(conv, sender, t + rng.randint(3_000, 110_000))
        elif r < 0.03:
            if role == "customer":
                self._nontext(conv, sender, "@emotion", t + rng.randint(1_000, 8_000))
        elif r < 0.032:
            if sender in self.staff:
                self._switch(sender, t + rng.randint(1_000, 600_000))
        elif r < 0.0323 and conv.internal:
            self._nontext(conv, sender, rng.choice(_UNKNOWN_TOKENS), t + rng.randint(1_000, 60_000))

    def _external(self, t0: int) -> None:
        rng = self.rng
        userid, ext, remark = rng.choice(self.follows)
        st = self.staff[userid]
        store = self.stores[st.store]
        head = remark.split("-", 1)[0]
        cname = head if head.endswith(("先生", "女士")) else "亲"
        conv = _Conv(
            ctx=self._ctx(store, st, cname, ""),
            store=store,
            roomid="",
            room_name="",
            members=(userid, ext),
            ext=True,
            internal=False,
            customers=(),
        )
        if ext not in self.agreed:
            self.agreed.add(ext)
            r = rng.random()
            if r < 0.1:
                self._agree(ext, userid, t0 - rng.randint(60_000, 600_000), True)
            elif r < 0.11:
                self._agree(ext, userid, t0 - rng.randint(60_000, 600_000), False)
        flow_name = rng.choices(self.flow_names, self.flow_weights)[0]
        steps = T.FLOWS_EXTERNAL[flow_name]
        actors = {"c": ext, "s": userid}
        if steps[0][0][0] == "c" and rng.random() < st.ignore_rate:
            # nobody answers: the customer's opening, perhaps a nudge, then silence
            t = self._play(conv, tuple(s for s in steps[:2] if s[0][0] == "c"), actors, t0)
            if rng.random() < 0.5:
                t += rng.randint(600_000, 5_400_000)
                if t < self.day_end:
                    self._say(conv, ext, "customer", rng.choice(T.FOLLOWUP_UNANSWERED), t)
            return
        t = self._play(conv, steps, actors, t0)
        r = rng.random()
        if t < self.day_end - 3_600_000 and r < 0.05:
            token = rng.choice(("@voiptext", "@external_redpacket", "@meeting_voice_call",
                                "@voip_doc_share", "@card", "@location", "@file:资费"))  # fmt: skip
            self._nontext(conv, userid, token, t + rng.randint(30_000, 1_800_000))

    def _group(self, t0: int) -> None:
        rng = self.rng
        room = rng.choice(self.ext_rooms)
        store = self.stores[room.store_code]
        staff_in = [m for m in room.members if m in self.staff]
        customers = tuple(m for m in room.members if m.startswith(("wm", "wo")))
        robots = [m for m in room.members if m.startswith("wb")]
        sender = rng.choice(staff_in) if staff_in else store.manager
        conv = _Conv(
            ctx=self._ctx(store, self.staff.get(sender), "各位", ""),
            store=store,
            roomid=room.roomid,
            room_name=room.name,
            members=room.members,
            ext=True,
            internal=False,
            customers=customers,
        )
        flow = rng.choices(T.FLOWS_GROUP, T.FLOW_GROUP_WEIGHTS)[0]
        actors = {"s": sender, "b": robots[0] if robots else sender}
        self._play(conv, flow, actors, t0)

    def _internal(self, t0: int) -> None:
        rng = self.rng
        if self.int_rooms and rng.random() < 0.5:
            room = rng.choice(self.int_rooms)
            store = self.stores[room.store_code]
            members: tuple[str, ...] = room.members
            roomid, room_name = room.roomid, room.name
        else:
            candidates = [s for s in self.stores.values() if len(s.staff) > 1]
            if not candidates:
                return
            store = rng.choice(candidates)
            other = rng.choice([u for u in store.staff if u != store.manager])
            members = (store.manager, other)
            roomid, room_name = "", ""
        manager = store.manager
        sender = rng.choice([m for m in members if m != manager] or [manager])
        conv = _Conv(
            ctx=self._ctx(store, self.staff.get(sender), "", ""),
            store=store,
            roomid=roomid,
            room_name=room_name,
            members=members,
            ext=False,
            internal=True,
            customers=(),
        )
        flow = rng.choices(T.FLOWS_INTERNAL, T.FLOW_INTERNAL_WEIGHTS)[0]
        self._play(conv, flow, {"s": sender, "m": manager}, t0)


class _Conv:
    """One conversation: who is in it, the template context and the last msgid per sender."""

    __slots__ = (
        "ctx", "customers", "ext", "internal", "last_by", "members", "pool", "room_name", "roomid",
        "store",
    )  # fmt: skip

    def __init__(
        self,
        ctx: dict[str, Any],
        store: _Store,
        roomid: str,
        room_name: str,
        members: tuple[str, ...],
        ext: bool,
        internal: bool,
        customers: tuple[str, ...],
    ) -> None:
        self.ctx = ctx
        self.store = store
        self.roomid = roomid
        self.room_name = room_name
        self.members = members
        self.ext = ext
        self.internal = internal
        self.customers = customers
        self.last_by: dict[str, str] = {}
        self.pool: list[str] = []

    def tolist(self, sender: str) -> list[str]:
        return [m for m in self.members if m != sender]

    def pick_customer(self, rng: random.Random) -> str:
        """In a group, a conversation's customer turns come from a few of its members."""
        if not self.pool:
            k = min(len(self.customers), rng.randint(1, 4))
            self.pool = rng.sample(self.customers, k)
            return self.pool[0]
        return rng.choice(self.pool)
