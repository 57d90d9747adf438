"""The simulated organisation: regions, cities, stores, staff, customers, tags and groups.

Everything here is derived from the ``SimulatorConfig`` and a ``random.Random`` only, so the
same seed always yields the same world. ``World.to_json`` / ``World.from_json`` round-trip
exactly (the message generator gives the same output for a rebuilt world).

IDs follow WeCom: the corp id is ``ww`` + 16 hex, external contacts ``wm``/``wo`` + 28 chars of
``[A-Za-z0-9_-]``, robots ``wb``, rooms ``wr``, tags and tag groups ``et``; internal userids are
chosen by the company (this one uses ``zhangwei.s001`` in some regions and ``S001_03`` in
others, as chains do after a merger).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from pypinyin import lazy_pinyin

from audit.archive.simulator.texts import to_traditional
from audit.config import SimulatorConfig
from audit.directory import (
    CustomerSpec,
    CustomerTagSpec,
    FollowSpec,
    OrgUnitSpec,
    RoomSpec,
    StaffSpec,
    TagGroupSpec,
    TagSpec,
    World,
)

CHINA_TZ = timezone(timedelta(hours=8))

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
ID_ALPHABET_EXT = ID_ALPHABET + "-_"


# the directory's value types: audit.directory (the simulator is one of its producers)


# --------------------------------------------------------------------------- id helpers


def wecom_id(rng: random.Random, prefix: str, length: int = 28, extra: bool = True) -> str:
    """``prefix`` + ``length`` chars; ``extra`` allows the ``-`` and ``_`` WeCom ids contain."""
    alphabet = ID_ALPHABET_EXT if extra else ID_ALPHABET
    return prefix + "".join(rng.choices(alphabet, k=length))


def corp_id(rng: random.Random) -> str:
    return "ww" + f"{rng.getrandbits(64):016x}"


def day_start_ms(start: str, day: int = 0) -> int:
    """Midnight (China time) of ``start`` + ``day`` days, in ms since the epoch."""
    d = datetime.strptime(start, "%Y-%m-%d").replace(tzinfo=CHINA_TZ) + timedelta(days=day)
    return int(d.timestamp()) * 1000


# --------------------------------------------------------------------------- vocabularies

REGIONS: tuple[tuple[str, tuple[tuple[str, str, tuple[str, ...]], ...]], ...] = (
    # region, ((city, province, districts), ...)
    (
        "华东区",
        (
            ("杭州市", "浙江省", ("西湖", "拱墅", "上城", "滨江", "余杭", "萧山")),
            ("宁波市", "浙江省", ("海曙", "鄞州", "江北", "北仑")),
            ("南京市", "江苏省", ("鼓楼", "玄武", "秦淮", "建邺", "江宁")),
            ("苏州市", "江苏省", ("姑苏", "吴中", "工业园区", "相城")),
            ("合肥市", "安徽省", ("蜀山", "包河", "庐阳", "瑶海")),
            ("温州市", "浙江省", ("鹿城", "龙湾", "瓯海")),
        ),
    ),
    (
        "华南区",
        (
            ("广州市", "广东省", ("天河", "越秀", "海珠", "白云", "番禺")),
            ("深圳市", "广东省", ("福田", "南山", "罗湖", "宝安", "龙岗")),
            ("东莞市", "广东省", ("南城", "东城", "长安", "虎门")),
            ("厦门市", "福建省", ("思明", "湖里", "集美")),
            ("南宁市", "广西壮族自治区", ("青秀", "兴宁", "西乡塘")),
        ),
    ),
    (
        "华北区",
        (
            ("北京市", "北京市", ("朝阳", "海淀", "丰台", "东城", "西城")),
            ("天津市", "天津市", ("和平", "河西", "南开", "滨海新区")),
            ("石家庄市", "河北省", ("长安", "桥西", "裕华")),
            ("太原市", "山西省", ("小店", "迎泽", "杏花岭")),
        ),
    ),
    (
        "华中区",
        (
            ("武汉市", "湖北省", ("江汉", "武昌", "洪山", "江岸")),
            ("长沙市", "湖南省", ("岳麓", "芙蓉", "天心", "雨花")),
            ("郑州市", "河南省", ("金水", "二七", "中原")),
            ("南昌市", "江西省", ("东湖", "西湖", "红谷滩")),
        ),
    ),
    (
        "西南区",
        (
            ("成都市", "四川省", ("锦江", "武侯", "青羊", "高新", "成华")),
            ("重庆市", "重庆市", ("渝中", "江北", "南岸", "沙坪坝")),
            ("昆明市", "云南省", ("五华", "盘龙", "官渡")),
            ("贵阳市", "贵州省", ("云岩", "南明", "观山湖")),
        ),
    ),
    (
        "西北区",
        (
            ("西安市", "陕西省", ("雁塔", "碑林", "未央", "莲湖")),
            ("兰州市", "甘肃省", ("城关", "七里河", "安宁")),
            ("银川市", "宁夏回族自治区", ("兴庆", "金凤")),
        ),
    ),
    (
        "东北区",
        (
            ("沈阳市", "辽宁省", ("和平", "沈河", "浑南")),
            ("大连市", "辽宁省", ("中山", "沙河口", "甘井子")),
            ("长春市", "吉林省", ("朝阳", "南关", "绿园")),
            ("哈尔滨市", "黑龙江省", ("南岗", "道里", "香坊")),
        ),
    ),
)

CITY_COORDS: dict[str, tuple[float, float]] = {
    "杭州市": (120.155, 30.274),
    "宁波市": (121.550, 29.874),
    "南京市": (118.797, 32.060),
    "苏州市": (120.585, 31.299),
    "合肥市": (117.227, 31.820),
    "温州市": (120.699, 27.994),
    "广州市": (113.264, 23.129),
    "深圳市": (114.057, 22.543),
    "东莞市": (113.751, 23.021),
    "厦门市": (118.089, 24.479),
    "南宁市": (108.366, 22.817),
    "北京市": (116.407, 39.904),
    "天津市": (117.200, 39.084),
    "石家庄市": (114.514, 38.042),
    "太原市": (112.549, 37.857),
    "武汉市": (114.305, 30.593),
    "长沙市": (112.938, 28.228),
    "郑州市": (113.625, 34.746),
    "南昌市": (115.858, 28.683),
    "成都市": (104.066, 30.572),
    "重庆市": (106.551, 29.563),
    "昆明市": (102.833, 24.880),
    "贵阳市": (106.630, 26.647),
    "西安市": (108.940, 34.341),
    "兰州市": (103.834, 36.061),
    "银川市": (106.231, 38.487),
    "沈阳市": (123.431, 41.806),
    "大连市": (121.615, 38.914),
    "长春市": (125.324, 43.817),
    "哈尔滨市": (126.535, 45.803),
}

STREETS = (
    "文三路", "人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "学院路", "滨江大道",
    "东风路", "长江路", "黄河路", "光明路", "朝阳路", "育才路", "湖滨路", "金沙路", "花园路",
    "体育路", "胜利路", "青年路", "五一路", "幸福路", "市府大道", "南京路", "天府大道",
)  # fmt: skip
STORE_KINDS = ("营业厅", "营业厅", "营业厅", "旗舰店", "合作营业厅", "专营店", "5G体验店")

SURNAMES: tuple[tuple[str, str], ...] = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
    ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
    ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"), ("胡", "hu"),
    ("郭", "guo"), ("何", "he"), ("林", "lin"), ("罗", "luo"), ("高", "gao"),
    ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"),
    ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"),
    ("彭", "peng"), ("萧", "xiao"), ("田", "tian"), ("董", "dong"), ("潘", "pan"),
    ("袁", "yuan"), ("蒋", "jiang"), ("蔡", "cai"), ("余", "yu"), ("杜", "du"),
    ("叶", "ye"), ("程", "cheng"), ("魏", "wei"), ("苏", "su"), ("吕", "lv"),
    ("丁", "ding"), ("任", "ren"), ("沈", "shen"), ("姚", "yao"), ("卢", "lu"),
    ("欧阳", "ouyang"), ("司马", "sima"),
)  # fmt: skip
GIVEN_MALE = (
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "浩", "鹏", "宇", "俊杰",
    "志强", "建华", "国庆", "子豪", "一鸣", "晓东", "文博", "家豪", "天宇", "建国", "振华",
    "海涛", "思远", "嘉诚", "立新", "永刚",
)  # fmt: skip
GIVEN_FEMALE = (
    "静", "丽", "敏", "燕", "艳", "娟", "霞", "婷", "雪", "琳", "倩", "颖", "欣怡", "雨桐",
    "梦瑶", "诗涵", "晓红", "秀英", "桂芳", "玉兰", "佳琪", "思琪", "丹丹", "晓燕", "慧敏",
    "紫涵", "美玲", "春梅", "雅婷", "可欣",
)  # fmt: skip
NICKNAMES = (
    "阳光总在风雨后", "小鱼儿", "A房产中介-小刘", "平安是福", "Lucy", "Kevin", "莫忘初心",
    "晴天", "一路向北", "简单点", "吃货一枚", "岁月静好", "奔跑的蜗牛", "🌸花开富贵", "老张",
    "大刘", "Tina", "追风少年", "知足常乐", "宝妈小雨", "水果店阿强", "J.", "云淡风轻",
    "天天向上", "Amy🍀", "好运连连", "阿杰", "茶叶-老陈", "海阔天空", "木子李", "Jason",
    "小太阳☀", "吴姐-美甲", "一叶知秋", "王师傅-装修", "糖糖", "心静如水", "Mr.Zhou",
    "越努力越幸运", "快乐每一天",
)  # fmt: skip
CORP_CUSTOMERS = ("杭州云帆科技", "深圳星河物流", "南京百川贸易", "成都锦程餐饮", "武汉楚天建材")

POSITIONS_REST = (
    "营业员",
    "营业员",
    "店员",
    "客户经理",
    "营业员",
    "装维工程师",
    "店员",
    "值班经理",
)

TAG_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("客户等级", ("普通", "银卡", "金卡", "钻石", "VIP")),
    ("套餐", ("5G畅享", "5G智享", "融合宽带", "流量王", "大王卡", "4G老用户", "家庭套餐", "副卡")),
    ("获客渠道", ("门店扫码", "海报活码", "直播", "短信链接", "装维上门", "老带新", "排队叫号")),
    ("年龄段", ("18-25岁", "26-35岁", "36-45岁", "46-60岁", "60岁以上")),
    ("业务兴趣", ("宽带", "终端换机", "家庭网", "权益会员", "副卡", "国际漫游", "积分兑换")),
    ("风险标记", ("投诉倾向", "高价值", "携转风险", "欠费", "敏感客户")),
    ("生命周期", ("新客", "活跃", "沉默", "流失预警")),
)

# (add_way, state template, channel tag)
CHANNELS: tuple[tuple[int, str, str, float], ...] = (
    (1, "qr_store_{store}", "门店扫码", 0.38),
    (1, "poster_5g", "海报活码", 0.12),
    (1, "live_stream", "直播", 0.08),
    (0, "sms_link", "短信链接", 0.08),
    (1, "broadband_install", "装维上门", 0.09),
    (3, "referral", "老带新", 0.08),
    (1, "hall_queue", "排队叫号", 0.07),
    (2, "", "门店扫码", 0.05),
    (202, "", "老带新", 0.03),
    (4, "", "门店扫码", 0.02),
)
# the channels' names for the dashboard (``dashboard.channel_labels``), one per state template
CHANNEL_LABELS: dict[str, str] = {t.replace("{store}", "*"): tag for _, t, tag, _ in CHANNELS if t}

ROOM_THEMES = ("5G福利群", "宽带服务群", "客户交流群", "会员福利群", "以旧换新群", "家庭网服务群")


# --------------------------------------------------------------------------- builders


def _person_name(rng: random.Random, gender: int) -> tuple[str, str, str]:
    """(name, surname, surname pinyin)."""
    surname, py = rng.choice(SURNAMES)
    given = rng.choice(GIVEN_MALE if gender == 1 else GIVEN_FEMALE)
    return surname + given, surname, py


def _unique(candidate: str, used: set[str]) -> str:
    if candidate not in used:
        used.add(candidate)
        return candidate
    n = 2
    while f"{candidate}{n}" in used:
        n += 1
    used.add(f"{candidate}{n}")
    return f"{candidate}{n}"


def _regions(cfg: SimulatorConfig) -> list[tuple[str, list[tuple[str, str, tuple[str, ...]]]]]:
    out: list[tuple[str, list[tuple[str, str, tuple[str, ...]]]]] = []
    for r in range(cfg.regions):
        name, cities = REGIONS[r % len(REGIONS)]
        if r >= len(REGIONS):
            name = f"{name[:-1]}{r // len(REGIONS) + 1}区"
        chosen: list[tuple[str, str, tuple[str, ...]]] = []
        for c in range(cfg.cities_per_region):
            city, prov, districts = cities[c % len(cities)]
            if c >= len(cities):
                city = f"{city[:-1]}{c // len(cities) + 1}市"
            chosen.append((city, prov, districts))
        out.append((name, chosen))
    return out


def build_world(cfg: SimulatorConfig, rng: random.Random) -> World:
    """The organisation, contacts, tags and groups for ``cfg``; deterministic in ``rng``."""
    start_s = day_start_ms(cfg.start) // 1000
    corpid = corp_id(rng)

    units: list[OrgUnitSpec] = []
    cities: list[tuple[str, str, tuple[str, ...], int]] = []  # (code, name, districts, region)
    for ri, (rname, rcities) in enumerate(_regions(cfg), start=1):
        rcode = f"R{ri:02d}"
        units.append(OrgUnitSpec(rcode, rname, "region", None))
        for ci, (cname, _prov, districts) in enumerate(rcities, start=1):
            ccode = f"{rcode}-C{ci:02d}"
            units.append(OrgUnitSpec(ccode, cname, "city", rcode))
            cities.append((ccode, cname, districts, ri))

    # stores round-robin over the cities, so every city has one before any has two
    store_names: set[str] = set()
    stores: list[tuple[str, str, str, int]] = []  # (code, name, short, region index)
    width = max(3, len(str(cfg.stores)))
    for si in range(cfg.stores):
        ccode, cname, districts, ri = cities[si % len(cities)]
        code = f"S{si + 1:0{width}d}"
        for _ in range(50):
            district = rng.choice(districts)
            street = rng.choice(STREETS)
            kind = rng.choice(STORE_KINDS)
            name = f"{cname[:-1]}{district}{street}{kind}"
            if name not in store_names:
                break
        else:
            name = f"{cname[:-1]}{district}{street}{si + 1}号{kind}"
        store_names.add(name)
        units.append(OrgUnitSpec(code, name, "store", ccode))
        stores.append((code, name, street + "店", ri))

    staff: list[StaffSpec] = []
    used_userids: set[str] = set()
    staff_by_store: dict[str, list[StaffSpec]] = {}
    for code, _name, _short, ri in stores:
        members: list[StaffSpec] = []
        for k in range(cfg.staff_per_store):
            gender = rng.choice((1, 2, 2))
            name, surname_, spy = _person_name(rng, gender)
            if ri % 2 == 1:
                given_py = "".join(lazy_pinyin(name[len(surname_) :]))
                userid = _unique(f"{spy}{given_py}.{code.lower()}", used_userids)
            else:
                userid = _unique(f"{code}_{k + 1:02d}", used_userids)
            position = "店长" if k == 0 else POSITIONS_REST[(k - 1) % len(POSITIONS_REST)]
            members.append(StaffSpec(userid, name, code, position))
        staff.extend(members)
        staff_by_store[code] = members

    # tag groups
    tag_groups: list[TagGroupSpec] = []
    tag_by_name: dict[tuple[str, str], str] = {}
    for gi, (gname, tnames) in enumerate(TAG_GROUPS, start=1):
        tags = []
        for ti, tname in enumerate(tnames, start=1):
            tid = wecom_id(rng, "et", 30, extra=False)
            tags.append(TagSpec(tid, tname, ti))
            tag_by_name[(gname, tname)] = tid
        tag_groups.append(
            TagGroupSpec(wecom_id(rng, "et", 30, extra=False), gname, gi, tuple(tags))
        )

    customers: list[CustomerSpec] = []
    follows: list[FollowSpec] = []
    customer_tags: list[CustomerTagSpec] = []
    used_ext: set[str] = set()
    customers_by_store: dict[str, list[str]] = {}
    channel_weights = [c[3] for c in CHANNELS]
    for code, _name, _short, _ri in stores:
        manager = staff_by_store[code][0]
        store_customers: list[str] = []
        for member in staff_by_store[code]:
            for _ in range(cfg.customers_per_staff):
                ext = wecom_id(rng, "wm" if rng.random() < 0.85 else "wo")
                while ext in used_ext:
                    ext = wecom_id(rng, "wm")
                used_ext.add(ext)
                gender = rng.choices((0, 1, 2), (0.1, 0.45, 0.45))[0]
                traditional = rng.random() < cfg.traditional_share
                ctype = 2 if rng.random() < 0.04 else 1
                r = rng.random()
                if ctype == 2 or r < 0.5:
                    pname, surname, _ = _person_name(rng, gender or 1)
                    cname = pname
                else:
                    surname = rng.choice(SURNAMES)[0]
                    cname = rng.choice(NICKNAMES)
                if traditional:
                    cname = to_traditional(cname)
                customers.append(CustomerSpec(ext, cname, ctype, gender, traditional))
                store_customers.append(ext)
                follow_staff = [member]
                if member is not manager and rng.random() < 0.06:
                    follow_staff.append(manager)
                level = rng.choices(TAG_GROUPS[0][1], (0.45, 0.25, 0.17, 0.08, 0.05))[0]
                plan = rng.choice(TAG_GROUPS[1][1])
                age = rng.choices(TAG_GROUPS[3][1], (0.15, 0.3, 0.25, 0.2, 0.1))[0]
                interests = rng.sample(TAG_GROUPS[4][1], rng.choice((0, 1, 1, 2)))
                risk = [rng.choice(TAG_GROUPS[5][1])] if rng.random() < 0.15 else []
                life = rng.choices(TAG_GROUPS[6][1], (0.2, 0.5, 0.2, 0.1))[0]
                salutation = {1: "先生", 2: "女士"}.get(gender, "")
                for fi, st in enumerate(follow_staff):
                    add_way, state_t, channel, _w = rng.choices(CHANNELS, channel_weights)[0]
                    created = start_s - rng.randint(3 * 86400, 900 * 86400) + fi * 86400
                    remark_bits = [f"{surname}{salutation}" if salutation else cname]
                    remark_bits.append(plan)
                    if ctype == 2:
                        remark_bits.append(rng.choice(CORP_CUSTOMERS))
                    remark = "-".join(remark_bits) if rng.random() < 0.8 else ""
                    follows.append(
                        FollowSpec(
                            userid=st.userid,
                            external_userid=ext,
                            remark=remark,
                            createtime=created,
                            add_way=add_way,
                            state=state_t.format(store=code),
                        )
                    )
                    if fi == 0:
                        names = [
                            ("客户等级", level),
                            ("套餐", plan),
                            ("获客渠道", channel),
                            ("年龄段", age),
                            ("生命周期", life),
                        ]
                        names += [("业务兴趣", i) for i in interests]
                        names += [("风险标记", k) for k in risk]
                        for gname, tname in names:
                            customer_tags.append(
                                CustomerTagSpec(ext, tag_by_name[(gname, tname)], st.userid)
                            )
        customers_by_store[code] = store_customers

    rooms: list[RoomSpec] = []
    used_rooms: set[str] = set()
    for code, _name, short, _ri in stores:
        members_staff = staff_by_store[code]
        manager = members_staff[0]
        pool = customers_by_store[code]
        themes = rng.sample(ROOM_THEMES, min(len(ROOM_THEMES), rng.choice((1, 2, 2))))
        for theme in themes:
            rid = _unique(wecom_id(rng, "wr"), used_rooms)
            n_staff = min(len(members_staff), rng.randint(2, 4))
            room_staff = [manager.userid] + [
                s.userid for s in rng.sample(members_staff[1:], max(0, n_staff - 1))
            ]
            n_cust = min(len(pool), rng.randint(12, 60))
            room_customers = rng.sample(pool, n_cust)
            room_members = room_staff + room_customers
            if rng.random() < 0.35:
                room_members.append(wecom_id(rng, "wb"))
            rooms.append(
                RoomSpec(
                    roomid=rid,
                    name=f"{short}{theme}",
                    creator=manager.userid,
                    create_time=start_s - rng.randint(10 * 86400, 500 * 86400),
                    store_code=code,
                    members=tuple(room_members),
                )
            )
        # the store's internal work group (staff only)
        if len(members_staff) >= 2:
            rid = _unique(wecom_id(rng, "wr"), used_rooms)
            rooms.append(
                RoomSpec(
                    roomid=rid,
                    name=f"{short}内部工作群",
                    creator=manager.userid,
                    create_time=start_s - rng.randint(100 * 86400, 900 * 86400),
                    store_code=code,
                    members=tuple(s.userid for s in members_staff),
                )
            )

    return World(
        corpid=corpid,
        org_units=tuple(units),
        staff=tuple(staff),
        customers=tuple(customers),
        follows=tuple(follows),
        tag_groups=tuple(tag_groups),
        customer_tags=tuple(customer_tags),
        rooms=tuple(rooms),
    )
