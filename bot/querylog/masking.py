"""Mask personal data in visitor text before it is stored or shown to staff.

:func:`mask` replaces mainland mobile and landline numbers, 18- and 15-digit
ID numbers, bank-card numbers, licence plates, e-mail addresses, QQ numbers,
WeChat ids, passport numbers, the flat part of a home address and a name the
visitor gives (我叫…, 我是…, 本人…) with a token in Chinese brackets
(``[手机号]``, ``[电话]``, ``[身份证号]``, ``[银行卡号]``, ``[车牌号]``, ``[邮箱]``,
``[QQ号]``, ``[微信号]``, ``[护照号]``, ``[门牌号]``, ``[姓名]``), and keeps
ordinary numbers: dates, the 12345 hotline, fines, times, counts, a street
number on its own (人民路128号). Road and community names are kept: they are
what a question is about, and a place is not personal data by itself.

It runs first, on the question as typed, before normalisation and synonyms
(which would turn the 12345 inside 13812345678 into 政务服务热线 and hide the
number from every rule here).

Detection runs on a copy of the text in which every character that NFKC maps
to one ASCII character (full-width digits, letters, ``＠``, ``－``, the
ideographic space) has been mapped; the copy has the same length, so a match
in the copy masks the same span of the text as the visitor typed it, and the
rest of that text is left exactly as typed.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["TOKENS", "mask"]

#: The token that replaces each kind of personal data.
TOKENS = {
    "email": "[邮箱]",
    "id_number": "[身份证号]",
    "bank_card": "[银行卡号]",
    "mobile": "[手机号]",
    "landline": "[电话]",
    "plate": "[车牌号]",
    "qq": "[QQ号]",
    "wechat": "[微信号]",
    "passport": "[护照号]",
    "address": "[门牌号]",
    "name": "[姓名]",
}


def _ascii_table() -> dict[int, str]:
    """Map each character that NFKC turns into one ASCII character to that character."""
    ranges = (range(0x80, 0x2500), range(0x3000, 0x3001), range(0xFE10, 0xFFF0))
    table: dict[int, str] = {}
    for block in ranges:
        for cp in block:
            folded = unicodedata.normalize("NFKC", chr(cp))
            if len(folded) == 1 and folded.isascii():
                table[cp] = folded
    return table


_TO_ASCII = _ascii_table()
# Never part of a match: a span already masked is overwritten with it.
_CLAIMED = "\x00"

# A separator people type inside a number: a dash (any of the look-alikes), a dot,
# a slash, an underscore, a middle dot, or spaces.
_DASH = r"[-\u2010-\u2015\u2212\u2500\u30fc]"
_SEP = rf"(?:{_DASH}|[./_\u00b7\u2022\u30fb])"
_S = rf"(?: ?{_SEP} ?| {{1,2}})"
_D = "[0-9]"
_NUM = "[0-9一二三四五六七八九十]"
# Between a label and its id: 是, 为, a colon, spaces.
_SAYS = r"[\s:：是为]{0,3}"
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE_CHAR = "[A-HJ-NP-Z0-9]"  # plates use neither I nor O

# Most specific first: a span claimed by one kind is never matched by a later one.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")),
    # Labelled ids: only the id after the label is masked, the label stays.
    (
        "qq",
        re.compile(
            rf"(?<![A-Za-z])(?:qq|扣扣|企鹅)(?:号码|号)?{_SAYS}(?P<v>[1-9]{_D}{{4,10}})(?![0-9])",
            re.I,
        ),
    ),
    (
        "wechat",
        re.compile(
            rf"(?:(?:微信|威信|薇信|v信)(?:号码|号|id)?|(?<![A-Za-z])(?:vx|wx|weixin|wechat)(?:id)?(?![A-Za-z]))"
            rf"{_SAYS}(?P<v>[A-Za-z][-_A-Za-z0-9]{{5,19}}(?![-_A-Za-z0-9])|[1-9]{_D}{{4,10}}(?![0-9]))",
            re.I,
        ),
    ),
    ("wechat", re.compile(r"(?<![A-Za-z0-9])wxid_[A-Za-z0-9_]{4,30}", re.I)),
    (
        "passport",
        re.compile(rf"护照(?:号码|号)?{_SAYS}(?P<v>[A-Za-z]{{1,2}}{_D}{{7,8}})(?![0-9A-Za-z])"),
    ),
    # Unlabelled: the layouts of mainland passports (E + 8 digits, EA + 7, G + 8).
    (
        "passport",
        re.compile(rf"(?<![0-9A-Za-z])(?:[EG]{_D}{{8}}|E[A-HJ-NP-Z]{_D}{{7}})(?![0-9A-Za-z])"),
    ),
    (
        "id_number",
        re.compile(
            rf"(?<![0-9A-Za-z])[1-9]{_D}{{5}}{_S}?(?:18|19|20){_D}{{2}}"
            rf"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]{_D}|3[01]){_S}?{_D}{{3}}[0-9Xx](?![0-9A-Za-z])"
        ),
    ),
    (
        "id_number",  # first generation: 6 + YYMMDD + 3, no check digit
        re.compile(
            rf"(?<![0-9A-Za-z])[1-9]{_D}{{5}}{_S}?{_D}{{2}}"
            rf"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]{_D}|3[01]){_S}?{_D}{{3}}(?![0-9A-Za-z])"
        ),
    ),
    (
        "bank_card",
        re.compile(
            # Card numbers never start with 0, landlines with an extension always do.
            rf"(?<![0-9])[1-9]{_D}{{3}}(?:{_S}?{_D}{{4}}){{3}}(?:{_S}?{_D}{{1,3}})?(?![0-9])"
        ),
    ),
    (
        "mobile",
        re.compile(
            rf"(?<![0-9+])(?:(?:(?:\+|00) ?)?86{_S}?|\(\+?86\) ?)?"
            rf"1{_S}?[3-9](?:{_S}?{_D}){{9}}(?![0-9])"
        ),
    ),
    (
        "landline",
        re.compile(
            rf"(?<![0-9+])(?:(?:\+|00) ?86{_S}?\(?0?|\(?0)[1-9]{_D}{{1,2}}\)?{_S}?"
            rf"[2-9]{_D}{{2,3}}{_S}?{_D}{{4}}"
            rf"(?: ?(?:{_DASH}|转|分机|内线|(?i:ext)\.?) ?{_D}{{1,6}})?(?![0-9])"
        ),
    ),
    (
        "plate",
        re.compile(
            rf"[{_PROVINCES}][A-HJ-NP-Z][·•・. \-]?"
            rf"(?:[DF]{_PLATE_CHAR}{_D}{{4}}|{_D}{{5}}[DF]|{_PLATE_CHAR}{{4}}[A-HJ-NP-Z0-9挂学警港澳])"
            r"(?![0-9A-Za-z])",
            re.IGNORECASE,
        ),
    ),
    # A flat: building, unit and room (3号楼2单元501室, 5栋1单元1302, 12号302室,
    # 3-2-501室). The road or community before it is kept; a street number alone is kept.
    (
        "address",
        re.compile(
            rf"(?<![0-9])(?:{_D}{{1,4}}弄 ?)?{_NUM}{{1,4}}[A-Za-z]?(?:号楼|号|栋|幢|座) ?"
            rf"(?:(?:{_NUM}{{1,3}}单元 ?)?{_D}{{1,5}}(?:室|房)"
            rf"|{_NUM}{{1,3}}单元 ?{_D}{{3,5}}(?![0-9]))"
            rf"|(?<![0-9-]){_D}{{1,3}}(?:-{_D}{{1,2}})?-{_D}{{3,4}}室"
        ),
    ),
    (
        "name",
        re.compile(
            r"(?:我叫|我名叫|我名字叫|我的名字叫|我的名字是|本人叫|本人姓名|(?P<loose>我是|本人是|本人))"
            r"[:：\s]?(?P<v>[\u4e00-\u9fff]{2,4})"
        ),
    ),
)


_DIGIT = re.compile("[0-9]")
_HAN = re.compile("[\u4e00-\u9fff]")
# What a text must contain for each kind to be looked for; every other kind needs a digit.
_NEEDS = {
    "email": ("@",),
    "qq": ("qq", "扣扣", "企鹅"),
    "wechat": ("微信", "威信", "薇信", "v信", "vx", "wx", "weixin", "wechat"),
    "name": ("我叫", "我名", "我的名字", "我是", "本人"),
}
# A text without any of these (an ASCII letter, digit or @, a character that folds to
# one, a label word) holds nothing any rule can match: most questions, returned at
# once (a year of them is exported in one go).
_MAYBE = re.compile(
    "[0-9A-Za-z@" + "".join(re.escape(chr(cp)) for cp in _TO_ASCII) + "]|"
    + "|".join(re.escape(word) for words in _NEEDS.values() for word in words)
)  # fmt: skip


def mask(text: str) -> str:
    """Return ``text`` with every piece of personal data replaced by its token."""
    if not text or _MAYBE.search(text) is None:
        return text
    probe = text.translate(_TO_ASCII)
    lowered = probe.lower()
    digits = _DIGIT.search(probe) is not None
    spans: list[tuple[int, int, str]] = []
    for kind, pattern in _PATTERNS:
        # Most questions hold no digit and no label: skip the rules that cannot match.
        needs = _NEEDS.get(kind)
        if not digits if needs is None else not any(word in lowered for word in needs):
            continue
        found = [span for m in pattern.finditer(probe) if (span := _span(kind, m)) is not None]
        for start, end in found:
            spans.append((start, end, TOKENS[kind]))
            probe = probe[:start] + _CLAIMED * (end - start) + probe[end:]
    if not spans:
        return text
    parts: list[str] = []
    pos = 0
    for start, end, token in sorted(spans):
        parts.append(text[pos:start])
        parts.append(token)
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def _span(kind: str, m: re.Match[str]) -> tuple[int, int] | None:
    """The span to mask for one match, or None when the match is not personal data."""
    if kind == "plate":
        # A plate without any digit: words like 新BEACH are not plates.
        return m.span() if any(ch.isdigit() for ch in m.group()[2:]) else None
    if kind == "name":
        found = m.group("v")
        size = _name_size(
            found, m.string[m.end("v") : m.end("v") + 1], m.group("loose") is not None
        )
        return None if size == 0 else (m.start("v"), m.start("v") + size)
    if "v" in m.groupdict():
        return m.span("v")
    return m.span()


# Surnames a name after 我叫/我是/本人 must start with: the common single ones
# and the compound ones. Words that are not names can start with them too (商户,
# 房东, 江苏), so _NOT_NAMES lists the ones a visitor says of themselves.
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章"
    "鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉"
    "骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦"
    "戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄"
    "丛仲虞敖巩明佘池查麻苑迟邝"
)
_COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 令狐 夏侯 长孙 宇文 司徒 端木 南宫".split()
)
_NOT_NAMES = (
    "商户 商家 商贩 商铺 城管 房东 房主 车主 路人 路过 党员 施工 管理 包工 司机 代表 师傅 "
    "高中 高一 高二 高三 华人 江苏 江西 武汉 沈阳 宁波 金华 黄山 温州 常州 苏州 徐州 "
    "石家 安徽 成都 重庆 贵州 龙岗 单位 单身 项目 全职 景区 农民 农户 农村 米粉 车辆 "
    "安卓 马甲 文科 理科 游客"
).split()
# A name ends before these: what follows a name in a sentence, not a given name.
_AFTER_NAME = frozenset(
    "想要问在住的是有家被从来今昨去我你他她请能可因和跟对向给把刚已也都就还又说啊呀吗呢吧了人投举反咨申报"
)
_TITLES = (
    "先生",
    "女士",
    "小姐",
    "老师",
    "师傅",
    "阿姨",
    "大爷",
    "大妈",
    "同学",
    "经理",
    "总",
    "某",
)
_PLACE_ENDS = frozenset("州市县区省镇村乡路街")


def _name_size(found: str, after: str, loose: bool) -> int:
    """How many characters of ``found`` are a name (0: not a name).

    After 我是 and 本人 many words follow that are not names (我是白天摆摊, 我是
    周边居民): there the name must also end the phrase, before punctuation, a
    space, a digit, the end of the text or 想 (我是李四想问). ``after`` is the
    character after ``found``.
    """
    surname = 2 if found[:2] in _COMPOUND_SURNAMES else 1
    if surname == 1 and found[0] not in _SURNAMES:
        return 0
    if any(found.startswith(word) for word in _NOT_NAMES):
        return 0
    given = found[surname : surname + 2]  # one or two characters
    if not given or given.startswith(_TITLES) or given[0] in _PLACE_ENDS | _AFTER_NAME:
        return 0
    size = surname + (2 if len(given) > 1 and given[1] not in _AFTER_NAME else 1)
    text = found + after
    if text[size : size + 1] == "人":
        return 0  # 我是江苏人
    if not loose:
        return size
    # 我是白天摆摊: try the shorter name before giving up.
    return next((n for n in (size, surname + 1) if _ends_phrase(text[n : n + 1])), 0)


def _ends_phrase(following: str) -> bool:
    return not _HAN.fullmatch(following) or following == "想"
