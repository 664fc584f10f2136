"""Mask personal data in visitor text before it is stored or shown to staff.

:func:`mask` replaces mainland mobile and landline numbers, 18-digit ID
numbers, bank-card numbers, licence plates and e-mail addresses with a token
in Chinese brackets (``[手机号]``, ``[电话]``, ``[身份证号]``, ``[银行卡号]``,
``[车牌号]``, ``[邮箱]``), and keeps ordinary numbers: dates, the 12345
hotline, fines, house numbers, times, counts.

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

# A separator people type inside a number: a dash (any of the look-alikes), or spaces.
_DASH = r"[-\u2010-\u2015\u2212\u2500\u30fc]"
_S = rf"(?: ?{_DASH} ?| {{1,2}})"
_D = "[0-9]"
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE_CHAR = "[A-HJ-NP-Z0-9]"  # plates use neither I nor O

# Most specific first: a span claimed by one kind is never matched by a later one.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")),
    (
        "id_number",
        re.compile(
            rf"(?<![0-9A-Za-z])[1-9]{_D}{{5}}{_S}?(?:18|19|20){_D}{{2}}"
            rf"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]{_D}|3[01]){_S}?{_D}{{3}}[0-9Xx](?![0-9A-Za-z])"
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
)


def mask(text: str) -> str:
    """Return ``text`` with every piece of personal data replaced by its token."""
    if not text:
        return text
    probe = text.translate(_TO_ASCII)
    spans: list[tuple[int, int, str]] = []
    for kind, pattern in _PATTERNS:
        found = [m.span() for m in pattern.finditer(probe) if _plausible(kind, m.group())]
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


def _plausible(kind: str, found: str) -> bool:
    """Reject a plate without any digit: words like 新BEACH are not plates."""
    if kind == "plate":
        return any(ch.isdigit() for ch in found[2:])
    return True
