"""What people write: service-flow templates, vocabularies, and the injected violations.

Templates use ``str.format`` placeholders filled from a per-conversation context (see
``chats._context``). A template starting with ``@`` is not text but a non-text message of that
kind (``@image``, ``@link:5g`` ...), built by ``chats``.

Normal templates are written to contain no violation at all, but they do contain innocent
look-alikes (``LOOKALIKES``) a naive detector would flag: 企业微信, 傻瓜相机, 处女座, 路口交通,
hotlines, "尾号" last-four digits, order numbers, amounts and dates.

Violations are described by ``VioKind``: a category, a kind id, the roles that commit it,
templates per role with one ``{m}`` slot, and how to produce the matched text (plain or with an
evasion). ``make_violation_text`` returns the text and the exact span of ``{m}``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from opencc import OpenCC

_S2T: OpenCC | None = None


@lru_cache(maxsize=20_000)
def to_traditional(text: str) -> str:
    """Simplified -> traditional (OpenCC ``s2t``), cached; about 3 µs for a new sentence."""
    global _S2T
    if _S2T is None:
        _S2T = OpenCC("s2t")
    result: str = _S2T.convert(text)
    return result


# --------------------------------------------------------------------------- vocabularies

PLANS: tuple[tuple[str, int], ...] = (
    ("5G畅享套餐", 129), ("5G畅享套餐", 169), ("5G智享套餐", 199), ("5G畅享套餐", 99),
    ("融合宽带套餐", 159), ("融合宽带套餐", 239), ("流量王套餐", 59), ("大王卡", 19),
    ("家庭套餐", 188), ("4G飞享套餐", 38), ("5G智享套餐", 299),
)  # fmt: skip
PHONES = (
    "iPhone 17", "iPhone 17 Pro", "华为Mate 80", "华为nova 15", "小米17", "OPPO Find X9",
    "vivo X300", "荣耀Magic8", "红米K90", "华为畅享80",
)  # fmt: skip
OPERATORS: tuple[tuple[str, str], ...] = (
    ("中国移动", "10086"), ("中国电信", "10000"), ("中国联通", "10010"),
)  # fmt: skip
XIAOQU = (
    "阳光花园", "翠苑一区", "金色家园", "桂花园", "万科城", "锦绣华庭", "幸福里", "湖畔居",
    "新城国际", "和平新村", "东方名苑", "江南春晓", "紫荆小区", "世纪花城",
)  # fmt: skip
SLOTS = ("上午9点到12点", "下午2点到5点", "明天上午", "今天傍晚6点前", "后天下午")
GIFTS = (
    "50元话费券", "电饭煲", "10GB定向流量", "视频会员月卡", "QQ音乐会员月卡", "充电宝",
    "蓝牙耳机", "100元购机券", "保温杯", "一年期碎屏险",
)  # fmt: skip
SPEEDS = ("300M", "500M", "1000M", "2000M")
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")

LOOKALIKES: tuple[str, ...] = (
    "企业微信", "傻瓜相机", "处女座", "路口交通", "10086", "10000", "10010", "尾号", "QQ音乐",
    "滚动", "工单号", "订单号", "携号转网",
)  # fmt: skip

# --------------------------------------------------------------------------- flows

# A step: (role, probability of being included, alternatives). role: "c" customer, "s" staff,
# in internal chats "s" the first staff member and "m" the other one (usually the manager),
# in groups "b" the group's robot. "c#q" records which alternative was chosen under the name
# "q"; a later "s=q" picks the alternative with the same index, so that answers fit questions.
Step = tuple[str, float, tuple[str, ...]]

# fmt: off
GREET_STAFF = (
    "{cname}您好，我是{me}，很高兴为您服务。",
    "您好{cname}，我是{me}，有什么可以帮您？",
    "{cname}好，我是{me}，您说。",
    "在的{cname}，我是{me}，请问有什么需要？",
)
CLOSE_STAFF = (
    "不客气，后面有问题随时在企业微信上找我。",
    "好的{cname}，祝您生活愉快！有需要随时联系。",
    "感谢您的支持，有问题也可以拨打{hotline}客服热线。",
    "好的，那先这样，有事您随时留言，我看到第一时间回复。",
    "不客气～办好了我会在这里通知您。",
)
CLOSE_CUSTOMER = (
    "好的，谢谢", "行，谢谢你", "好的👌", "知道了", "辛苦了", "OK", "嗯嗯", "@emotion",
)

FLOWS_EXTERNAL: dict[str, tuple[Step, ...]] = {
    "plan_change": (
        ("c", 1.0, (
            "你好，我想改一下套餐，现在这个太贵了",
            "在吗？我现在的套餐流量老是不够用，有没有合适的换一个",
            "请问{plan}怎么办理？我想从现在的套餐换过去",
            "你好，下个月能把套餐降档吗",
        )),
        ("s", 1.0, GREET_STAFF),
        ("s", 1.0, (
            "帮您查了一下，您尾号{tail4}的号码现在是{plan2}，月费{price2}元。",
            "您现在用的是{plan2}，每月{price2}元，上个月流量超了{gb}GB。",
            "我看了下您尾号{tail4}这个号，目前套餐是{plan2}，合约还有{months}个月到期。",
        )),
        ("s", 1.0, (
            "建议您换成{plan}，每月{price}元，含{gb}GB通用流量和500分钟通话，下个月1号生效。",
            "可以改成{plan}，{price}元一个月，流量多一倍，套餐变更次月生效。",
            "现在有个{plan}，月费{price}元，比您现在多{gb}GB流量，还送{gift}。",
        )),
        ("s", 0.3, ("@file:资费", "@link:5g", "@image")),
        ("c#q", 1.0, (
            "那改了以后原来的宽带还能用吗", "有没有违约金？", "好的，那帮我改吧",
            "能不能再便宜点", "流量是全国通用的吗", "合约期内能改吗",
        )),
        ("s=q", 1.0, (
            "宽带不受影响，融合套餐里的宽带会一起保留。",
            "没有违约金，合约期内降档需要到厅里签一下补充协议，升档线上就能办。",
            "好的，我这边帮您提交了，订单号{order}，下个月1号生效，到时会有短信通知。",
            "这个已经是活动价了，另外我可以帮您申请{gift}。",
            "是全国通用流量，不含港澳台。",
            "合约期内可以升档，降档要等合约到期，到期前我提醒您。",
        )),
        ("c", 0.7, CLOSE_CUSTOMER),
        ("s", 0.8, CLOSE_STAFF),
    ),
    "broadband_fault": (
        ("c", 1.0, (
            "你好，我家宽带从昨晚开始就上不了网了",
            "在吗？家里宽带又断了，光猫红灯一直闪",
            "宽带特别慢，看个视频一直转圈，能帮忙看看吗",
            "WiFi连上了但是打不开网页，怎么回事",
        )),
        ("c", 0.35, ("@image", "@video", "@mixed", "@voice")),
        ("s", 1.0, (
            "{cname}您好，我是{me}，很抱歉给您带来不便。麻烦提供一下装机地址，我帮您查一下。",
            "您好，给您添麻烦了。您先把光猫电源拔掉等30秒再插上试试，不行我给您报修。",
            "{cname}别着急，我马上帮您查。请问装机地址是哪里？",
        )),
        ("c", 1.0, (
            "地址是{addr}", "{addr}，宽带账号是用我这个号码开的", "重启过了，还是不行",
            "@image", "在{xiaoqu}，{building}幢",
        )),
        ("s", 1.0, (
            "查到了，{xiaoqu}今天有线路割接，预计下午{hour}点前恢复，给您添麻烦了。",
            "已经帮您提交了报修，工单号{order}，装维师傅会在{date}{slot}联系您上门。",
            "后台看您家光猫是离线状态，我给您派单了，工单号{order}，师傅{slot}上门。",
        )),
        ("s", 0.25, ("@card",)),
        ("c#f", 0.6, (
            "行吧，尽快啊，家里孩子要上网课", "好的，谢谢", "上次也是这样，能不能彻底解决一下",
            "师傅来之前先打个电话", "好的，我{date}在家",
        )),
        ("s=f", 0.8, (
            "明白，我催一下师傅，尽量早点上门。",
            "不客气，修好了麻烦您给个好评哈。",
            "明白，这次让师傅把线路整个检查一遍。",
            "好的，我跟师傅说一下，来之前提前联系您。",
            "收到，有进展我第一时间在这里告诉您。",
        )),
        ("c", 0.4, CLOSE_CUSTOMER),
    ),
    "bill_question": (
        ("c#o", 1.0, (
            "你好，为什么我这个月话费扣了{bill}元？",
            "帮我查一下上个月的账单，怎么多了{fee}块钱",
            "我的话费怎么用这么快，是不是订了什么业务",
            "请问怎么开电子发票",
        )),
        ("s", 1.0, GREET_STAFF),
        ("s=o", 1.0, (
            "帮您查了，{month}月账单是{bill}元，其中套餐费{price}元，另外有一笔视频彩铃{fee}元。",
            "您尾号{tail4}的号码上个月有{gb}GB的套外流量，产生了{fee}元费用。",
            "查到您订了一个{fee}元的会员权益包，是{pdate}在营业厅开通的。",
            "电子发票可以在{operator}App里开，我发您个小程序，点进去就能开。",
        )),
        ("s", 0.4, ("@weapp:bill", "@link:bill", "@image")),
        ("c#o", 1.0, (
            "彩铃我没订过啊，帮我退订", "以后流量超了能不能提醒我一下",
            "我没订过这个啊，每次都是这样乱扣费", "好的我看看",
        )),
        ("s=o", 1.0, (
            "已经帮您退订了，次月生效，这个月的费用我帮您申请退回，3到5个工作日到账。",
            "可以的，我帮您设置了流量提醒，用到80%会有短信通知。",
            "这笔费用我提交了退费申请，工单号{order}，处理结果会短信通知您。",
            "您往下滚动就能看到开票入口，有不清楚的随时问我。",
        )),
        ("c", 0.6, CLOSE_CUSTOMER),
        ("s", 0.6, CLOSE_STAFF),
    ),
    "complaint": (
        ("c#o", 1.0, (
            "你们怎么回事？我宽带报修三天了都没人来",
            "什么情况？莫名其妙扣了我{amount}，打{hotline}也没人管",
            "你们营业员当时说不要钱，现在每个月扣我{fee}元，什么意思？",
            "信号差得要死，在家打电话都断，交这么多钱有什么用",
        )),
        ("c", 0.5, (
            "今天必须给我个说法", "我是处女座，最受不了这种糊弄", "你们到底管不管", "@voice",
        )),
        ("s", 0.9, (
            "{cname}非常抱歉给您带来不好的体验，我是{me}，这个事情我马上帮您处理。",
            "{cname}您先别着急，我理解您的心情，我先帮您核实一下具体情况。",
            "实在抱歉，我这边马上联系相关同事，今天之内给您答复。",
        )),
        ("c", 0.7, (
            "每次都说马上处理", "那你快点", "我已经等了好几天了", "你们的服务真的太差了",
        )),
        ("s=o", 0.85, (
            "已经给您升级处理了，装维主管{date}{slot}亲自上门，同时给您补偿{gift}。",
            "核实了，是系统批量订购的问题，费用全部给您退回，工单号{order}。",
            "核实了，是办理时默认开通的增值业务，已经给您退订，之前扣的{fee}元每月费用全部退回。",
            "您反映的信号问题我已经报给网络部，{xiaoqu}附近会加装一个小基站。",
        )),
        ("c", 0.5, ("行，我再等等看", "希望这次能解决", "好吧", "@emotion")),
        ("s", 0.5, ("再次向您致歉，处理完我会主动联系您。",)),
    ),
    "phone_upgrade": (
        ("c#o", 1.0, (
            "你好，{phone}现在有货吗？",
            "我想换个手机，合约机怎么弄",
            "听说你们有以旧换新活动，我的旧手机能抵多少",
            "给我爸妈买个手机，要简单好用的",
        )),
        ("s", 1.0, GREET_STAFF),
        ("s=o", 1.0, (
            "{phone}店里有现货，办{plan}合约24个月，购机立减{discount}元。",
            "合约机是预存话费送手机，每月返还{fee}元话费，合约期{months}个月。",
            "以旧换新可以抵{discount}元左右，具体要看成色，您方便拿过来我们评估一下。",
            "推荐您看看{phone}，字大声音大，拍照跟傻瓜相机一样按一下就行，老人很容易上手。",
        )),
        ("s", 0.35, ("@video", "@image", "@link:phone")),
        ("c#q", 1.0, (
            "合约期间能改套餐吗", "有没有分期", "颜色有哪些", "到店能现场激活吗",
            "那我{weekday}过来看看",
        )),
        ("s=q", 1.0, (
            "合约期内可以升档，不能降档。",
            "支持12期免息分期，用信用卡就可以。",
            "有星河银、曜金黑和雪域白，店里都有样机可以先体验。",
            "可以的，带上身份证原件，现场激活，数据也可以帮您迁移。",
            "好的，我们店就在{street}和{street2}路口交通岗旁边，到了找我就行。",
        )),
        ("s", 0.3, ("@location",)),
        ("c", 0.5, CLOSE_CUSTOMER),
    ),
    "promo_5g": (
        ("s", 1.0, (
            "{cname}您好，我是{me}。本月{plan}有老用户专属优惠，每月只要{price}元，还送{gift}，"
            "需要的话回复我帮您办理～",
            "【{store}】{cname}，您的号码符合5G升级条件，升级{plan}首月免费，{gb}GB流量，"
            "详情可以看下这个链接。",
            "{cname}，双十一福利来了：{date}前到店办理{plan}，送{gift}，名额有限哦。",
        )),
        ("s", 0.6, ("@link:5g", "@weapp:5g", "@news", "@image", "@sphfeed")),
        ("c#q", 0.55, (
            "有什么限制吗", "我现在的套餐能直接升级吗", "不需要，谢谢", "@emotion",
            "送的{gift}怎么领", "要到店吗",
        )),
        ("s=q", 0.8, (
            "没有额外限制，升级后次月生效，原来的号码和宽带都不变。",
            "可以直接升级，线上就能办，次月生效。",
            "好的，打扰了，祝您生活愉快！",
            "有需要随时找我哦～",
            "{gift}在办理成功后3天内发到您的账户里。",
            "到店或者线上都可以，到店还能领一份小礼品。",
        )),
    ),
    "number_porting": (
        ("c", 1.0, (
            "你好，我想把{operator2}的号携号转网过来，怎么办",
            "请问携号转网到你们这边要什么手续",
        )),
        ("s", 1.0, GREET_STAFF),
        ("s", 1.0, (
            "可以的，先编辑短信CXXZ#姓名#证件号码后四位发到原运营商查询是否符合条件，"
            "符合的话带身份证到店办理。",
            "转入需要原号码没有欠费、没有合约，您先查一下，符合条件我帮您预约。",
        )),
        ("c#q", 1.0, ("转过来套餐怎么选", "需要多久", "号码会变吗", "好的我查一下")),
        ("s=q", 1.0, (
            "转过来推荐{plan}，每月{price}元。",
            "一般当天就能办完，24小时内生效，期间会短暂无信号，建议晚上办。",
            "号码不变，原来的号码原样转过来。",
            "好的，查完符合条件告诉我，我帮您预约。",
        )),
        ("c", 0.5, CLOSE_CUSTOMER),
    ),
    "points_redeem": (
        ("c", 1.0, ("我的积分快过期了，能换什么", "积分怎么兑换话费", "听说积分可以换{gift}？")),
        ("s", 1.0, GREET_STAFF),
        ("s", 1.0, (
            "您现在有{points}积分，年底清零一部分，可以兑换{gift}或者话费券。",
            "帮您查了，目前积分{points}分，兑换话费是100积分抵1元。",
        )),
        ("s", 0.4, ("@weapp:points", "@link:points")),
        ("c#q", 1.0, ("那帮我换{gift}", "换话费吧", "在哪里操作", "好的")),
        ("s=q", 1.0, (
            "已经帮您兑换好了，订单号{order}，3个工作日内发货。",
            "好的，已经帮您兑换了话费，立即到账。",
            "在小程序首页点积分商城就可以。",
            "有需要随时找我～",
        )),
        ("c", 0.4, CLOSE_CUSTOMER),
    ),
    "appointment": (
        ("c#o", 1.0, (
            "你好，{weekday}下午店里人多吗，我想过来办个副卡",
            "我想预约一下到店办理，要排队吗",
            "补卡需要带什么",
            "你们店几点关门",
        )),
        ("s", 1.0, GREET_STAFF),
        ("s=o", 1.0, (
            "{weekday}下午人不多，给您预约了下午{hour}点，到店报手机尾号{tail4}就行，带上身份证。",
            "不用排队，给您登记了{date}下午{hour}点，到了直接找我。",
            "带本人身份证原件就可以，补卡当场就能办好。",
            "我们营业时间是早上9点到晚上9点，节假日照常营业。",
        )),
        ("s", 0.45, ("@location", "@card")),
        ("c#q", 0.7, ("好的", "店在哪里？", "可以", "谢谢")),
        ("s=q", 0.5, (
            "好的，到了找我。",
            "过了{street2}路口交通岗往前100米就是，旁边就是地铁口。",
            "好的，不见不散～",
            "不客气～",
        )),
        ("c", 0.3, CLOSE_CUSTOMER),
    ),
    "broadband_new": (
        ("c", 1.0, ("新房子想装宽带，{speed}的多少钱", "我家刚搬到{xiaoqu}，能装你们的宽带吗")),
        ("s", 1.0, GREET_STAFF),
        ("s", 1.0, (
            "{xiaoqu}已经覆盖了，{speed}融合套餐每月{price}元，含手机套餐和宽带，免安装费。",
            "可以装的，现在办{speed}宽带送全屋WiFi组网，月费{price}元。",
        )),
        ("c#q", 1.0, ("什么时候能装", "路由器要自己买吗", "好的，帮我约一下", "要签多久")),
        ("s=q", 1.0, (
            "师傅{date}{slot}可以上门安装。",
            "光猫和路由器都是免费提供的。",
            "给您登记好了，工单号{order}，装维师傅会提前联系您。",
            "合约一年，到期后可以续约或者改套餐。",
        )),
        ("s", 0.3, ("@card", "@file:宽带")),
        ("c", 0.5, CLOSE_CUSTOMER),
    ),
    "followup": (
        ("s", 1.0, (
            "{cname}您好，我是{me}，上次给您办理的{plan}用着还习惯吗？",
            "{cname}，您家宽带修好后网速还正常吗？",
            "{cname}您好，您{pdate}办理的业务已经生效，麻烦抽空给我们评价一下～",
        )),
        ("c#q", 0.7, ("挺好的", "还行", "网速比以前快多了", "还是有点卡", "@emotion", "好的")),
        ("s=q", 0.6, (
            "感谢您的认可！", "好的，有问题随时联系我～", "感谢认可，有问题随时联系我～",
            "我再让师傅远程帮您优化一下。", "😊", "好的，有问题随时联系我～",
        )),
    ),
}

FLOW_WEIGHTS: dict[str, float] = {
    "plan_change": 14, "broadband_fault": 14, "bill_question": 14, "complaint": 8,
    "phone_upgrade": 10, "promo_5g": 12, "number_porting": 4, "points_redeem": 6,
    "appointment": 9, "broadband_new": 5, "followup": 8,
}

# In customer groups: "s" a staff member, "c" a (random) customer, "b" the group's robot.
FLOWS_GROUP: tuple[tuple[Step, ...], ...] = (
    (
        ("s", 1.0, (
            "各位家人们好！【{store}】本周福利：{plan}到店办理送{gift}，名额有限～",
            "@news", "@link:5g", "@weapp:5g", "@sphfeed", "@markdown",
        )),
        ("c#q", 0.8, ("老用户能参加吗", "怎么报名", "@emotion", "有流量包吗", "收到")),
        ("s=q", 0.8, (
            "老用户也可以的，到店报手机尾号就行。", "私聊我或者直接到店都可以报名。",
            "欢迎大家到店～", "有的，10元5GB的月包，私聊我帮您办。", "👍",
        )),
        ("c", 0.4, ("好的", "👍", "@emotion")),
    ),
    (
        ("s#o", 1.0, ("@redpacket", "@vote", "@collect")),
        ("s=o", 1.0, (
            "感谢大家一直以来的支持，本周末店庆活动，到店就送{gift}！",
            "大家投个票，选个方便的时间～",
            "宽带提速预约登记在上面，需要的家人们填一下。",
        )),
        ("c", 0.9, ("谢谢老板", "已填", "@emotion", "周六可以", "抢到了")),
        ("c", 0.6, ("这个活动到几号", "好")),
        ("s", 0.5, ("活动到{date}截止，大家抓紧～",)),
    ),
    (
        ("c#o", 1.0, (
            "请问群里有人知道{plan}怎么办吗", "我家宽带今天是不是又断网了",
            "请问店里今天几点关门", "积分商城兑换的东西多久到",
        )),
        ("s=o", 0.9, (
            "您好，{plan}线上线下都能办，您私聊我帮您处理。",
            "{xiaoqu}今天上午有线路割接，已经恢复了，还不行的话私聊我报修。",
            "今天营业到晚上9点，随时欢迎。",
            "一般3个工作日内发货，订单号可以在小程序里查。",
        )),
        ("c", 0.5, ("好的谢谢", "收到", "@emotion")),
    ),
    (
        ("b", 1.0, ("@markdown", "@news")),
        ("c", 0.3, ("收到", "@emotion")),
    ),
)
FLOW_GROUP_WEIGHTS = (5.0, 2.0, 5.0, 1.0)

# Internal chats between staff: "s" the sender, "m" the other one (often the store manager).
FLOWS_INTERNAL: tuple[tuple[Step, ...], ...] = (
    (
        ("m", 1.0, (
            "今天下午3点开周例会，大家准时到二楼会议室。",
            "本周5G升级目标还差{n}单，大家抓紧。",
            "@meeting", "@todo", "@calendar",
        )),
        ("s", 0.8, ("收到", "好的店长", "明白", "@emotion")),
        ("m", 0.4, ("@docmsg", "@file:业绩", "@qydiskfile")),
        ("s", 0.3, ("已填好", "收到，马上处理")),
    ),
    (
        ("s", 1.0, (
            "店长，这个客户要投诉，聊天记录发您看下。",
            "有个客户说扣费不对，我转给您看看。",
        )),
        ("s", 1.0, ("@chatrecord",)),
        ("m", 0.9, (
            "我来联系他，你先把工单号{order}备注一下。",
            "先安抚客户，费用按规定退，下午我给他回电话。",
        )),
        ("s", 0.4, ("好的",)),
    ),
    (
        ("m", 1.0, ("@voiptext", "@meeting_voice_call", "@voip_doc_share")),
        ("s", 0.7, ("刚才说的方案我整理一下发群里。", "收到", "@qydiskfile", "@file:方案")),
        ("m", 0.3, ("@docmsg", "好")),
    ),
    (
        ("m", 1.0, ("@future_widget", "@smart_card", "@todo")),
        ("s", 0.5, ("收到",)),
    ),
)
FLOW_INTERNAL_WEIGHTS = (5.0, 2.0, 1.5, 0.4)
# fmt: on

# Sprinkled into one-to-one chats now and then.
FOLLOWUP_UNANSWERED = ("在吗？", "怎么没人回", "？？？", "人呢", "有人吗")

# --------------------------------------------------------------------------- non-text content

FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "资费": (("5G套餐资费说明", "pdf"), ("11月套餐对比表", "xlsx"), ("资费标准", "pdf")),
    "宽带": (("宽带安装须知", "pdf"), ("宽带业务协议", "docx")),
    "业绩": (("门店业绩日报", "xlsx"), ("本周5G升级明细", "xlsx"), ("积分兑换台账", "xlsx")),
    "方案": (("双十一门店活动方案", "pptx"), ("客户回访话术", "docx"), ("新员工培训", "pdf")),
}
LINKS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "5g": (
        ("5G畅享套餐老用户专享", "每月最低99元，流量翻倍，速来办理", "https://h5.example-telecom.cn/5g/upgrade?ch=wecom"),
        ("双十一5G福利季", "办套餐送好礼，千兆宽带半价装", "https://h5.example-telecom.cn/act/double11"),
    ),
    "bill": (("账单查询与电子发票", "一键查询近6个月账单", "https://h5.example-telecom.cn/bill/query"),),
    "phone": (("新机预约｜以旧换新最高抵3000元", "热门机型现货，到店可体验", "https://h5.example-telecom.cn/phone/trade-in"),),
    "points": (("积分商城", "积分兑话费、兑好礼", "https://h5.example-telecom.cn/points/mall"),),
}  # fmt: skip
WEAPPS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "5g": (("5G套餐在线办理", "老用户专享价", "gh_a1b2c3d4e5f6@app", "掌上营业厅"),),
    "bill": (("账单查询", "查账单、开发票", "gh_0f9e8d7c6b5a@app", "掌上营业厅"),),
    "points": (("积分商城", "积分兑换好礼", "gh_13579bdf2468@app", "积分商城"),),
}
NEWS = (
    ("千兆宽带进小区，免费测速", "本周六上午9点在小区门口设点，现场办理送礼品"),
    ("5G新机到店", "多款新机到店，以旧换新享补贴"),
    ("防诈骗提醒", "任何索要验证码的都是骗子，请勿泄露"),
)
MARKDOWN = (
    '**本周福利**\n> 办理{plan}送<font color="warning">{gift}</font>\n> 活动截止：{date}',
    "### 宽带维护通知\n{xiaoqu}将于{date}凌晨进行线路升级，期间可能短暂断网，敬请谅解。",
    "**门店营业时间**\n> 9:00-21:00\n> 地址：{store}",
)
SPH = (("中国移动", "5G新机开箱，看看拍照效果"), ("营业厅小助手", "三步教你查账单"))
TODOS = (
    ("本周回访任务", "回访金卡以上客户{n}户，记录在表格里"),
    ("宽带装机跟进", "{xiaoqu}新装{n}户，跟进安装进度"),
)
MEETINGS = ("门店周例会", "双十一活动复盘", "5G升级冲刺会", "服务质量培训")
CALENDARS = ("装维上门-{xiaoqu}", "客户答谢会", "区域经理巡店")
DOCS = ("11月门店业绩跟踪表", "客户投诉处理台账", "排班表（11月）")
DISK_FILES = ("门店海报-双十一.psd", "培训视频-服务礼仪.mp4", "资费手册2026.pdf")
VOTE_TITLES = (
    ("下周客户答谢会选哪天？", ("周六上午", "周六下午", "周日上午")),
    ("店庆礼品选哪个", ("保温杯", "充电宝", "话费券")),
)
COLLECT_TITLES = ("宽带提速预约登记", "店庆活动报名", "以旧换新意向登记")
RP_WISHES = ("恭喜发财，大吉大利", "感谢支持，周末快乐！", "店庆福利，手慢无")


# --------------------------------------------------------------------------- violations


@dataclass(frozen=True)
class VioKind:
    category: str
    kind: str
    templates: dict[str, tuple[str, ...]]  # role -> templates, each with one "{m}"
    plain: tuple[str, ...]  # matched forms without evasion ("" when generated)
    evasive: tuple[tuple[str, str], ...]  # (matched form, evasion)


V = VioKind
VIOLATIONS: tuple[VioKind, ...] = (
    # ---- privacy: numbers are generated (see make_match)
    V("privacy", "phone_number", {
        "customer": ("我手机号{m}，有事打我", "联系电话：{m}", "装机联系人电话{m}，到了打这个",
                     "帮我查下这个号{m}是不是欠费了"),
        "staff": ("{cname}，系统里登记的联系号码是{m}，对吧？", "装维师傅的手机是{m}，您直接联系他",
                  "查了，{m}这个号上个月欠费停机了"),
    }, (), ()),
    V("privacy", "id_number", {
        "customer": ("身份证号{m}，帮我查下名下有几张卡", "我身份证{m}", "机主身份证是{m}"),
        "staff": ("您的身份证号{m}已经登记好了", "核对一下，证件号{m}，没错吧"),
    }, (), ()),
    V("privacy", "bank_card", {
        "customer": ("银行卡号{m}，每月自动扣费用这张", "扣款换成这张卡吧：{m}"),
        "staff": ("您绑定的扣款卡号是{m}", "退款会退回到卡号{m}"),
    }, (), ()),
    V("privacy", "email", {
        "customer": ("电子发票发到我邮箱{m}", "邮箱是{m}，合同发我一份"),
        "staff": ("发票已经发到您的邮箱{m}了", "您登记的邮箱{m}还在用吗"),
    }, (), ()),
    # ---- diversion
    V("diversion", "personal_wechat", {
        "staff": ("{cname}，这个价格公司号上不好说，{m}，我私下给您申请",
                  "活动名额不多了，{m}我单独发您",
                  "以后有事别在这儿找我了，{m}方便", "{m}吧，内部优惠我发您"),
        "customer": ("要低价流量卡的{m}私聊",),
    }, ("加我微信", "加我个人微信", "加我私人微信"), (
        ("加我微 信", "spaced"), ("加我V信", "variant"), ("加我vx", "initialism"),
        ("加我VX", "initialism"), ("加我ｖｘ", "fullwidth"), ("加我威信", "homophone"),
        ("加我薇信", "homophone"), ("加我wei xin", "pinyin"), ("加*我*微*信", "symbols"),
        ("加我weixin", "pinyin"),
    )),
    V("diversion", "wechat_id", {
        "staff": ("我的{m}，您加一下", "{m}，加的时候备注门店名",
                  "{cname}，{m}，加了我给您发内部价"),
        "customer": ("有需要的加我，{m}",),
    }, (), ()),
    V("diversion", "qq", {
        "staff": ("资料这里发不了，加我{m}", "{m}，加一下我把表格发您"),
    }, (), ()),
    V("diversion", "private_payment", {
        "staff": ("这个费用不用走公司系统，{m}就行，我帮您办",
                  "{cname}，{m}，我这边直接给您充上，还能便宜{n}块",
                  "押金{m}，办完退给您"),
    }, ("直接转我支付宝", "扫我个人收款码", "钱转到我私人账户", "微信转账给我个人"), (
        ("转我zfb", "initialism"), ("扫我个人收.款.码", "symbols"), ("直接转我支 付 宝", "spaced"),
        ("转我私人账hu", "pinyin"),
    )),
    V("diversion", "personal_phone", {
        "staff": ("以后有事{m}，这边消息我不常看", "{cname}，急的话{m}"),
    }, ("打我私人手机", "打我私人电话", "打我自己的手机"), (
        ("打我私人手 机", "spaced"), ("打我si人电话", "pinyin"),
    )),
    # ---- promise (staff)
    V("promise", "guaranteed_return", {
        "staff": ("这个话费理财{m}，存{n}元送一年话费", "充值返现活动{m}，比存银行划算多了"),
    }, ("保证收益", "稳赚不赔", "保本保息"), (
        ("保 证 收 益", "spaced"), ("稳zhuan不赔", "pinyin"), ("保.证.收.益", "symbols"),
    )),
    V("promise", "hundred_percent", {
        "staff": ("{m}不会降速，您放心办", "这个号{m}能过审核", "{m}给您办下来"),
    }, ("百分之百", "100%", "百分百"), (
        ("１００％", "fullwidth"), ("100 %", "spaced"), ("百 分 百", "spaced"),
    )),
    V("promise", "absolute", {
        "staff": ("办了这个套餐{m}比您现在省钱", "{m}不会多收您一分钱", "信号{m}没问题"),
    }, ("绝对", "绝对保证"), (("jue对", "pinyin"), ("绝 对", "spaced"), ("决对", "homophone"))),
    V("promise", "unlimited", {
        "staff": ("这个套餐{m}，随便用", "{cname}，{m}，看视频打游戏都够"),
    }, ("无限流量不限速不降速", "流量无限用不限速", "不限量不降速"), (
        ("无限流量不 限 速", "spaced"), ("无限流量bu限速", "pinyin"),
    )),
    V("promise", "lifetime_free", {
        "staff": ("现在办理宽带{m}，以后都不用交钱", "这个权益{m}"),
    }, ("永久免费", "终身免费"), (("永 久 免 费", "spaced"), ("终身mian费", "pinyin"))),
    # ---- abuse
    V("abuse", "insult", {
        "customer": ("你们这群{m}，办个业务这么麻烦", "{m}，扣我钱还不给解释",
                     "说了多少遍了，{m}啊"),
        "staff": ("跟你说了三遍了，{m}", "{m}，看不懂字吗", "这种客户真是{m}"),
    }, ("傻X", "傻逼", "你有病吧", "神经病", "脑残", "废物"), (
        ("sb", "initialism"), ("煞笔", "homophone"), ("傻 逼", "spaced"), ("shabi", "pinyin"),
        ("傻*逼", "symbols"), ("SB", "initialism"), ("神精病", "homophone"),
    )),
    V("abuse", "get_out", {
        "staff": ("不办就{m}", "{m}，别在这儿浪费我时间"),
        "customer": ("{m}，别再给我发广告了", "你给我{m}"),
    }, ("滚", "滚蛋"), (("gun", "pinyin"), ("滚dan", "pinyin"))),
    V("abuse", "profanity", {
        "customer": ("{m}，网又断了", "这{m}什么破宽带"),
        "staff": ("{m}，又是这个客户",),
    }, ("他妈的", "卧槽"), (("tmd", "initialism"), ("特么的", "homophone"), ("TMD", "initialism"))),
    # ---- complaint (customer)
    V("complaint", "12315", {
        "customer": ("再不给我解决，我就打{m}投诉你们", "我已经在{m}上留言了", "明天去{m}举报"),
    }, ("12315",), (
        ("１２３１５", "fullwidth"), ("一二三一五", "chinese_digits"), ("1 2 3 1 5", "spaced"),
    )),
    V("complaint", "miit", {
        "customer": ("三天内不给结果我就{m}", "我要{m}，你们等着"),
    }, ("去工信部投诉", "工信部投诉", "到工信部申诉"), (
        ("去工 信 部投诉", "spaced"), ("去gxb投诉", "initialism"), ("去公信部投诉", "homophone"),
    )),
    V("complaint", "media", {
        "customer": ("你们这样搞，我{m}", "信不信我{m}"),
    }, ("找媒体曝光", "发抖音曝光", "找电视台曝光"), (
        ("找媒体bao光", "pinyin"), ("找媒 体 曝 光", "spaced"),
    )),
    V("complaint", "lawsuit", {
        "customer": ("多扣的钱不退我就{m}", "我已经{m}了"),
    }, ("起诉你们", "找律师", "去法院告你们"), (("qi诉你们", "pinyin"),)),
    V("complaint", "cancel", {
        "customer": ("{m}，这个号我不要了", "今天就给我{m}"),
    }, ("销户", "注销号码", "销号"), (("xiao户", "pinyin"), ("销 户", "spaced"))),
    V("complaint", "port_out", {
        "customer": ("再这样我就{m}，不用你们的了", "下个月就{m}"),
    }, ("携号转网", "转网"), (("携号转 网", "spaced"), ("xhzw", "initialism"))),
    # ---- fraud
    V("fraud", "real_name_sim", {
        "staff": ("{m}，{n}元一张，要几张？", "我们这边{m}，您放心"),
        "customer": ("听说你们这{m}，是真的吗？", "能不能{m}，我身份证丢了"),
    }, ("不用实名也能办卡", "免实名办卡", "不实名也能开卡"), (
        ("不用shi名也能办卡", "pinyin"), ("免 实 名 办 卡", "spaced"),
        ("不用实.名也能办卡", "symbols"),
    )),
    V("fraud", "borrow_id", {
        "staff": ("这个月指标还差几张，能{m}吗，送您{gift}", "{m}，我帮你开几张号"),
        "customer": ("我能{m}吗，我自己名下办满了",),
    }, ("借身份证办卡", "借你身份证用一下", "用别人身份证开户"), (("借sfz办卡", "initialism"),)),
    V("fraud", "cash_out", {
        "staff": ("合约机可以帮您{m}，手续费{n}个点", "信用卡分期购机可以{m}"),
        "customer": ("积分能{m}吗",),
    }, ("套现", "信用卡套现"), (("tao现", "pinyin"), ("套 现", "spaced"))),
    V("fraud", "order_brushing", {
        "staff": ("店里在冲业绩，帮忙{m}吧，返您{n}元",),
        "customer": ("招{m}兼职，日结三百", "有没有人{m}，一单五块"),
    }, ("刷单", "刷好评"), (("shua单", "pinyin"), ("刷 单", "spaced"))),
    V("fraud", "fake_invoice", {
        "staff": ("公司报销的话我们可以{m}，金额随便填",),
        "customer": ("有没有{m}的", "能帮我{m}吗，多开点金额"),
    }, ("代开发票", "开假发票"), (("代 开 发 票", "spaced"), ("dai开发票", "pinyin"))),
    V("privacy", "verification_code", {
        "staff": ("系统要验证，{m}一下，我帮您操作", "{cname}，刚才那个{m}，马上就办好"),
    }, ("验证码发我", "把验证码告诉我", "收到的验证码报给我"), (
        ("yzm发我", "initialism"), ("验.证.码发我", "symbols"), ("验证玛发我", "homophone"),
    )),
    # ---- illegal
    V("illegal", "gambling", {
        "customer": ("{m}平台日赚三千，有兴趣私聊", "最近玩{m}输了好几万，话费都交不起了"),
        "staff": ("下班一起玩{m}啊",),
    }, ("赌博", "博彩", "网上赌球"), (
        ("菠菜", "homophone"), ("bc", "initialism"), ("du博", "pinyin"), ("博 彩", "spaced"),
    )),
    V("illegal", "porn", {
        "customer": ("有没有{m}网站推荐", "{m}资源，进群看"),
    }, ("色情", "黄色"), (("se情", "pinyin"), ("h", "initialism"))),
    V("illegal", "drugs", {
        "customer": ("有人要{m}吗，货好", "出{m}，量大从优"),
    }, ("毒品", "冰毒", "大麻"), (("冰du", "pinyin"), ("叶子", "slang"), ("麻 古", "spaced"))),
    V("illegal", "weapons", {
        "customer": ("出售{m}，要的私聊", "哪里能买到{m}"),
    }, ("枪支", "仿真枪", "气枪"), (("qiang支", "pinyin"), ("木仓", "split"))),
)  # fmt: skip

# category weights per role (and for internal chats)
CATEGORY_WEIGHTS: dict[str, dict[str, float]] = {
    "staff": {"diversion": 31, "promise": 25, "privacy": 14, "abuse": 8, "fraud": 19, "illegal": 3},
    "customer": {
        "privacy": 30, "complaint": 32, "abuse": 14, "fraud": 9, "illegal": 11, "diversion": 4,
    },
    "internal": {"privacy": 35, "abuse": 20, "fraud": 40, "illegal": 5},
}  # fmt: skip

EVASION_SHARE = 0.4

MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "147", "150", "151", "152",
    "155", "157", "158", "159", "166", "173", "176", "177", "180", "181", "182", "183", "185",
    "186", "187", "188", "189", "191", "195", "198", "199",
)  # fmt: skip
AREA_CODES = (
    "110101", "110105", "310104", "310115", "330106", "330102", "330205", "320102", "320106",
    "440305", "440106", "440104", "510107", "500103", "420106", "430104", "610113", "210102",
    "350203", "370102", "410105", "340104",
)  # fmt: skip
CARD_BINS = ("622202", "621700", "622848", "621483", "622588", "621226", "623668", "622609")
EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "sina.com", "foxmail.com", "139.com")
CN_DIGITS = "零一二三四五六七八九"
CN_DIGITS_YAO = "零幺二三四五六七八九"  # "幺" for 1, as people read phone numbers aloud
FULLWIDTH = str.maketrans("0123456789%", "０１２３４５６７８９％")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
WX_WORDS = ("lisa", "tony", "xiaowang", "amy", "kk", "zw", "ly", "cc", "hh", "jay", "momo")


def id_check_digit(first17: str) -> str:
    """GB 11643-1999 check character for the first 17 digits of a resident ID number."""
    return ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body`` + digit pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    return luhn_check_digit(number[:-1]) == number[-1]


def random_phone(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def random_id_number(rng: random.Random) -> str:
    year = rng.randint(1950, 2005)
    first17 = (
        f"{rng.choice(AREA_CODES)}{year}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        f"{rng.randrange(1000):03d}"
    )
    return first17 + id_check_digit(first17)


def random_bank_card(rng: random.Random) -> str:
    length = rng.choice((16, 19, 19))
    body = rng.choice(CARD_BINS) + "".join(str(rng.randrange(10)) for _ in range(length - 7))
    return body + luhn_check_digit(body)


def innocent_order(rng: random.Random, prefix: str) -> str:
    """An order/ticket number that is *not* a valid bank card (fails Luhn) nor a phone number."""
    body = "".join(str(rng.randrange(10)) for _ in range(15))
    good = luhn_check_digit(body)
    bad = str((int(good) + rng.randint(1, 9)) % 10)
    return prefix + body + bad


def _spaced_digits(s: str, groups: tuple[int, ...], sep: str) -> str:
    out, i = [], 0
    for g in groups:
        out.append(s[i : i + g])
        i += g
    if i < len(s):
        out.append(s[i:])
    return sep.join(out)


def make_match(vk: VioKind, rng: random.Random, evade: bool) -> tuple[str, str]:
    """The matched text of one violation of ``vk`` and the evasion used ("" for none)."""
    kind = vk.kind
    if kind == "phone_number":
        p = random_phone(rng)
        if not evade:
            return p, ""
        r = rng.randrange(6)
        if r == 0:
            return _spaced_digits(p, (3, 4, 4), " "), "spaced"
        if r == 1:
            return _spaced_digits(p, (3, 4, 4), "-"), "symbols"
        if r == 2:
            return "+86 " + p, "country_code"
        if r == 3:
            return p.translate(FULLWIDTH), "fullwidth"
        if r == 4:
            digits = CN_DIGITS_YAO if rng.random() < 0.3 else CN_DIGITS
            return "".join(digits[int(d)] for d in p), "chinese_digits"
        mixed = "".join(CN_DIGITS[int(d)] if i % 3 == 1 else d for i, d in enumerate(p))
        return mixed, "chinese_digits"
    if kind == "id_number":
        n = random_id_number(rng)
        if not evade:
            return n, ""
        if rng.random() < 0.6:
            return _spaced_digits(n, (6, 8, 4), " "), "spaced"
        return n.translate(FULLWIDTH), "fullwidth"
    if kind == "bank_card":
        n = random_bank_card(rng)
        if not evade:
            return n, ""
        if rng.random() < 0.7:
            return _spaced_digits(n, (4, 4, 4, 4), " "), "spaced"
        return _spaced_digits(n, (4, 4, 4, 4), "-"), "symbols"
    if kind == "email":
        user = rng.choice(WX_WORDS) + str(rng.randint(1970, 2005))
        if rng.random() < 0.3:
            user = str(rng.randint(10**7, 10**10))
        domain = rng.choice(EMAIL_DOMAINS)
        if not evade:
            return f"{user}@{domain}", ""
        if rng.random() < 0.5:
            return f"{user}#{domain}", "symbols"
        return f"{user} at {domain.replace('.', ' dot ')}", "spelled"
    if kind == "wechat_id":
        wxid = rng.choice(WX_WORDS) + rng.choice(("_", "", "-")) + str(rng.randint(80, 2005))
        if not evade:
            return f"微信号{rng.choice(('：', ' ', '是'))}{wxid}", ""
        r = rng.randrange(4)
        if r == 0:
            return f"vx号：{wxid}", "initialism"
        if r == 1:
            return f"微.信.号 {wxid}", "symbols"
        if r == 2:
            return f"V：{wxid}", "variant"
        return f"wei xin hao {wxid}", "pinyin"
    if kind == "qq":
        num = str(rng.randint(10**6, 3 * 10**9))
        if not evade:
            return f"{rng.choice(('QQ', 'QQ号', 'qq'))}{rng.choice(('', ' ', '：'))}{num}", ""
        r = rng.randrange(3)
        if r == 0:
            return f"扣扣{num}", "homophone"
        if r == 1:
            return f"企鹅号{num}", "variant"
        return f"Q Q {num}", "spaced"
    if evade and vk.evasive:
        return rng.choice(vk.evasive)
    return rng.choice(vk.plain), ""


KINDS_BY_CATEGORY: dict[str, tuple[VioKind, ...]] = {}
for _vk in VIOLATIONS:
    KINDS_BY_CATEGORY[_vk.category] = (*KINDS_BY_CATEGORY.get(_vk.category, ()), _vk)


def kinds_for(category: str, role: str) -> tuple[VioKind, ...]:
    return tuple(vk for vk in KINDS_BY_CATEGORY.get(category, ()) if role in vk.templates)


@lru_cache(maxsize=4096)
def split_template(template: str) -> tuple[str, str]:
    before, _, after = template.partition("{m}")
    return before, after
