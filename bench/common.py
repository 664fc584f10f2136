"""Shared pieces of the benchmarks: BQ and LCQMC splits, synthetic banks, timing, machine facts.

The benchmarks are scripts (``python bench/bench_latency.py``), not a package:
each puts the repository root on ``sys.path`` and imports this module as a
sibling. Nothing here is used by the product.
"""

from __future__ import annotations

import datetime as dt
import http.client
import platform
import random
import re
import socket
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.bank import Bank, Faq  # noqa: E402 - needs the root on sys.path first
from bot.site import DEFAULT_SITE  # noqa: E402

BQ_PATH = ROOT.parent / "shared" / "eval-data" / "bq_corpus" / "dev.tsv"
LCQMC_PATH = ROOT.parent / "shared" / "eval-data" / "lcqmc" / "dev.txt"
LIBS = ("numpy", "scipy", "scikit-learn", "jieba", "rapidfuzz", "rank-bm25", "pypinyin")


# --- the BQ FAQ-retrieval split ---------------------------------------------------


@dataclass(frozen=True)
class BqTask:
    """978 FAQs (question, optional alternate) and 2,436 queries with their gold FAQ."""

    faqs: list[tuple[str, ...]]  # per FAQ: its indexed texts, question first
    queries: list[str]
    gold: list[int]  # FAQ position of each query
    # Per query: False when its text, punctuation and case aside, is another FAQ's question
    # (LCQMC has such queries: an exact match is then the wrong answer). None: all True.
    distinct: list[bool] | None = None

    @property
    def n_indexed(self) -> int:
        return sum(len(texts) for texts in self.faqs)


def load_bq(path: Path = BQ_PATH) -> BqTask:
    """Build the FAQ-retrieval split exactly as shared/eval-data/README.md describes."""
    if not path.is_file():
        raise SystemExit(f"Error: {path} not found (the BQ corpus lives in shared/eval-data)")
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) != 3:
            continue
        a, b, label = (f.strip() for f in fields)
        if label != "1":
            continue
        for x in (a, b):
            parent.setdefault(x, x)
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    groups: dict[str, list[str]] = {}
    for x in parent:
        groups.setdefault(find(x), []).append(x)
    clusters = sorted(sorted(members) for members in groups.values())
    rng = random.Random(7)
    faqs: list[tuple[str, ...]] = []
    queries: list[str] = []
    gold: list[int] = []
    for i, members in enumerate(clusters):
        rng.shuffle(members)
        n_indexed = 2 if len(members) >= 4 else 1
        faqs.append(tuple(members[:n_indexed]))
        for q in members[n_indexed:]:
            queries.append(q)
            gold.append(i)
    task = BqTask(faqs, queries, gold)
    counts = (len(task.faqs), task.n_indexed, len(task.queries))
    if counts != (978, 1311, 2436):
        raise SystemExit(f"Error: BQ split gave {counts}, expected (978, 1311, 2436)")
    return task


def _same_text(text: str) -> str:
    """``text`` without punctuation, spacing or case: the key that merges LCQMC questions."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).lower())


def load_lcqmc(path: Path = LCQMC_PATH) -> BqTask:
    """LCQMC dev as FAQ retrieval, exactly as shared/eval-data/README.md describes.

    The bank is the distinct first sentences in sorted order (FAQ ``lc{i:05d}``),
    those equal once punctuation and case are ignored merged into the first; the
    queries are the second sentences of positive pairs that differ from their
    first, gold being that first sentence's (kept) FAQ.
    """
    if not path.is_file():
        raise SystemExit(f"Error: {path} not found (LCQMC lives in shared/eval-data)")
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) == 3:
            pairs.append(tuple(f.strip() for f in fields))
    kept: dict[str, int] = {}  # merge key → FAQ position
    faqs: list[tuple[str, ...]] = []
    pos_of: dict[str, int] = {}
    for text in sorted({a for a, _, _ in pairs}):
        key = _same_text(text)
        if key not in kept:
            kept[key] = len(faqs)
            faqs.append((text,))
        pos_of[text] = kept[key]
    queries, gold, distinct = [], [], []
    for a, b, label in pairs:
        if label == "1" and b != a:
            queries.append(b)
            gold.append(pos_of[a])
            other = kept.get(_same_text(b))
            distinct.append(other is None or other == pos_of[a])
    return BqTask(faqs, queries, gold, distinct)


def bank_of(faqs: Sequence[Sequence[str]], *, prefix: str, category: str = "bench") -> Bank:
    """An in-memory bank whose FAQ ``i`` has id ``{prefix}{i:06d}`` and the given texts."""
    return Bank(
        faqs=tuple(
            Faq(
                id=f"{prefix}{i:06d}",
                question=texts[0],
                answer="（基准测试用答案）",
                category=category,
                alternates=tuple(texts[1:]),
            )
            for i, texts in enumerate(faqs)
        ),
        site=dict(DEFAULT_SITE),
        synonyms={},
        outside=(),
        thresholds={},
        dict_path=None,
        digest="bench",
    )


# --- synthetic city-management banks --------------------------------------------------

_PLACES = (
    "小区门口", "菜市场旁边", "学校附近", "地铁站出口", "人行道上", "公园里", "商业街",
    "老街", "十字路口", "公交站台", "楼下", "广场上", "桥底下", "河边", "医院门口",
    "工地旁边", "夜市", "居民楼后面", "停车场", "街道拐角", "高架桥下", "村口", "超市门前",
    "绿化带里", "马路对面", "小巷子里", "步行街", "体育馆外", "火车站前", "单位门口",
)  # fmt: skip
_ISSUES = (
    "违章搭建", "私搭乱建", "占道经营", "流动摊贩", "乱贴小广告", "乱涂乱画", "油烟扰民",
    "噪音扰民", "夜间施工", "渣土车撒漏", "乱倒垃圾", "共享单车乱停", "店外经营", "乱堆杂物",
    "沿街晾晒", "户外广告牌", "招牌破损", "违规占用绿地", "毁坏绿化", "露天烧烤", "焚烧垃圾",
    "建筑垃圾乱倒", "违规养犬", "广场舞太吵", "乱拉横幅", "车辆乱停占道", "违规设置地锁",
    "污水乱排", "工地扬尘", "占用消防通道", "违规开挖道路", "破坏市政设施", "井盖缺失",
    "路灯不亮", "违法建设阳台", "楼顶加盖", "私自改变房屋结构", "擅自拆除承重墙",
    "无证经营", "流浪摊点",
)  # fmt: skip
_ASKS = (
    "怎么举报", "找谁管", "归哪个部门管", "怎么投诉", "会被罚款吗", "罚多少钱", "怎么处理",
    "打什么电话", "多久能处理", "能不能网上反映", "要什么材料", "有什么规定", "违法吗",
    "城管管不管", "处理结果怎么查", "可以匿名举报吗", "多长时间回复", "怎么申请", "需要审批吗",
    "被查了怎么办",
)  # fmt: skip
_WHO = (
    "", "", "", "我家", "邻居", "隔壁店铺", "有人", "附近商户", "物业", "楼上住户", "施工队",
    "小贩", "饭店", "开发商",
)  # fmt: skip
_WHEN = ("", "", "", "晚上", "凌晨", "周末", "每天", "一直", "最近", "天天", "半夜")
_LEADS = ("", "", "", "请问", "你好，", "想问一下", "咨询一下", "麻烦问下")
_ENDS = ("", "", "？", "？", "啊", "呢")


_ROADS = (
    "人民", "解放", "中山", "建设", "和平", "胜利", "文化", "幸福", "光明", "新华", "友谊", "长江",
    "黄河", "青年", "东风", "朝阳", "花园", "学府", "工农", "滨江", "迎宾", "团结", "振兴", "民主",
    "北京", "上海", "南京", "延安", "复兴", "育才",
)  # fmt: skip
_ROAD_KINDS = ("路", "街", "大道", "巷", "路口", "社区", "小区", "广场", "市场", "花园")


def _phrase(rng: random.Random) -> tuple[str, str, str]:
    if rng.random() < 0.5:
        place = rng.choice(_PLACES)
    else:
        place = rng.choice(_ROADS) + rng.choice(_ROAD_KINDS) + rng.choice(("", "", "附近", "那边"))
    return place, rng.choice(_ISSUES), rng.choice(_ASKS)


def _say(rng: random.Random, place: str, issue: str, ask: str) -> str:
    forms = (
        f"{rng.choice(_LEADS)}{place}{rng.choice(_WHO)}{rng.choice(_WHEN)}{issue}{ask}",
        f"{rng.choice(_LEADS)}{rng.choice(_WHO)}在{place}{issue}，{ask}",
        f"{issue}{ask}，地点在{place}",
        f"{rng.choice(_WHEN)}{place}有{issue}的情况{ask}",
        f"{place}{issue}{ask}",
    )
    return rng.choice(forms) + rng.choice(_ENDS)


def synthetic_faqs(n: int, *, seed: int = 20240601) -> list[tuple[str, ...]]:
    """``n`` distinct FAQs, each a question and 1–2 alternates on the same topic."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[tuple[str, ...]] = []
    while len(out) < n:
        place, issue, ask = _phrase(rng)
        texts: list[str] = []
        for _ in range(1 + rng.randint(1, 2)):
            text = _say(rng, place, issue, ask)
            if text not in seen:
                seen.add(text)
                texts.append(text)
        if len(texts) >= 2:
            out.append(tuple(texts))
    return out


def synthetic_queries(n: int, *, seed: int = 7) -> list[str]:
    """Visitor questions drawn from the same vocabulary, not copies of bank rows."""
    rng = random.Random(seed)
    return [_say(rng, *_phrase(rng)) for _ in range(n)]


# --- timing and reporting -------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation, like numpy's default."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table (it reads well in a terminal too)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def machine() -> str:
    """Date, CPU, core count, Python and library versions, one line each."""
    cpu = "?"
    try:
        m = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
        cpu = m.group(1).strip() if m else "?"
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or "?"
    libs = []
    for lib in LIBS:
        try:
            libs.append(f"{lib} {metadata.version(lib)}")
        except metadata.PackageNotFoundError:
            libs.append(f"{lib} ?")
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "?"
    return "\n".join(
        [
            f"date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
            f"load average (1, 5, 15 min) at start: {load} (the machine is shared)",
            f"machine: {nproc} cores, {cpu}, {platform.system()} {platform.release()}",
            f"python: {platform.python_version()} ({platform.python_implementation()})",
            "libraries: " + ", ".join(libs),
        ]
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with status {proc.returncode} during start-up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer /healthz within {timeout:.0f} s")
