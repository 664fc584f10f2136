"""Latency, memory and build time of the engine against BM25, at three bank sizes.

For each size — the shipped bank (faq/), 10,000 and 100,000 synthetic FAQs —
a fresh child process builds the index and times, per question after a
warm-up:

* the full path, ``Bot.ask(q)`` (clean, prepare, retrieve, rerank, decide, reply);
* retrieval only, ``index.top_faqs(pipeline.prepare(q))`` with the matcher's posting cap;
* rank_bm25's ``BM25Okapi`` over the same rows with the same tokenizer
  (``pipeline.prepare(q).words``), retrieval only: prepare, ``get_scores``,
  the best rows grouped into FAQs.

Memory: the peak while Index.build runs is RSS (VmHWM, reset through
/proc/self/clear_refs, minus RSS before); the index a server holds is the
tracemalloc growth while Index.load reads the saved artifact; BM25's peak and
kept size come from tracemalloc over a second, untimed build. Each size runs
in its own process, so one size's garbage does not hide another's growth.

Optionally (``--prototype``) two engine changes are prototyped here, without
touching bot/: scoring as one scipy sparse product, and dropping the
character and pinyin unigrams whose posting lists dominate the cost.

    python bench/bench_latency.py [--sizes shipped,10000,100000] [--queries 1000] [--quick]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import yaml
from common import ROOT, bank_of, machine, percentile, synthetic_faqs, synthetic_queries, table
from rank_bm25 import BM25Okapi

from bot.bank import Bank, load_bank
from bot.errors import BankError
from bot.match.engine import Bot, pipeline_for
from bot.match.index import Index, features
from bot.match.text import Prepared, TextPipeline

TARGET_MS = {"shipped": 1.0, "10000": 2.0, "100000": 10.0}
SPEEDUP_TARGET = 5.0  # at 10,000 FAQs, times faster than BM25
WARMUP = 200
FULL_BM25_ROWS = 30_000  # above this many rows BM25 is timed on a sample of queries
BM25_SAMPLE = 50


# --- memory ------------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    m = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(m.group(1)) if m else None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _release() -> None:
    """Collect garbage and hand freed heap pages back to the system."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@contextmanager
def rss_peak(out: dict[str, Any], key: str) -> Iterator[None]:
    """Record under ``key`` how far RSS rose above its starting point during the block (MB).

    Good for a build whose peak is made of large arrays; freed small objects
    are reused without showing in RSS, so retained sizes are measured with
    tracemalloc instead (see traced()).
    """
    _release()
    before = _status_kb("VmRSS")
    can_peak = _reset_peak()
    yield
    peak = _status_kb("VmHWM") if can_peak else None
    out[key] = None if peak is None or before is None else (peak - before) / 1024


@contextmanager
def traced(out: dict[str, Any], key: str) -> Iterator[None]:
    """Record the Python-heap growth kept after the block, and its peak, in MB (tracemalloc)."""
    _release()
    tracemalloc.start()
    try:
        yield
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out[f"{key}_mb"], out[f"{key}_peak_mb"] = current / 2**20, peak / 2**20


# --- one size, in a child process -----------------------------------------------------------


def shipped_queries(bank: Bank, n: int) -> list[str]:
    """Labelled visitor questions (tests/data/*.yaml) and the bank's own wordings, cycled."""
    qs: list[str] = []
    for path in sorted((ROOT / "tests" / "data").glob("dev*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        qs += [str(item["q"]) for item in data if isinstance(item, dict) and item.get("q")]
    qs += [t for f in bank.faqs for t in f.texts]
    return [qs[i % len(qs)] for i in range(n)]


def interleaved(
    fns: dict[str, Callable[[str], Any]],
    queries: list[str],
    only_first: dict[str, int],
    *,
    block: int = 25,
) -> tuple[dict[str, list[float]], dict[str, list[Any]]]:
    """Time the functions in turns of ``block`` questions, so load changes hit them alike.

    Turns of a few dozen questions, not one, keep each method's data warm in
    the CPU caches as in a server that answers only with it; a slow method
    (BM25 at 10k rows runs 50 ms a question) would otherwise evict the fast
    one's between every two of its questions.
    ``only_first[name]`` limits a slow function to the first questions.
    Returns the times (ms) and the results of each function.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    results: dict[str, list[Any]] = {name: [] for name in fns}
    for start in range(0, len(queries), block):
        for name, fn in fns.items():
            for i in range(start, min(start + block, len(queries))):
                if i >= only_first.get(name, len(queries)):
                    break
                q = queries[i]
                t0 = time.perf_counter_ns()
                r = fn(q)
                times[name].append((time.perf_counter_ns() - t0) / 1e6)
                results[name].append(r)
    return times, results


def summary(ms: list[float]) -> dict[str, float]:
    return {"median": statistics.median(ms), "p99": percentile(ms, 99), "n": len(ms)}


@contextmanager
def reuse_preparation(pipeline: TextPipeline, done: dict[str, Prepared]) -> Iterator[None]:
    """Let Bot() reuse the rows' preparation instead of preparing every question again.

    Only for set-up: the shadowing attribute is removed before any question is timed.
    """
    real = pipeline.prepare
    pipeline.prepare = lambda q: done.get(q) or real(q)  # type: ignore[method-assign]
    try:
        yield
    finally:
        del pipeline.prepare  # type: ignore[method-assign]


def bm25_top(bm25: BM25Okapi, row_faq: np.ndarray, words: list[str], k: int = 10) -> list[int]:
    """The best ``k`` FAQs by BM25 (best row per FAQ), as top_faqs does for our index."""
    s = bm25.get_scores(words)
    n = min(64, len(s))
    top = np.argpartition(-s, n - 1)[:n]
    top = top[np.argsort(-s[top], kind="stable")]
    found: dict[int, None] = {}
    for r in top.tolist():
        found.setdefault(int(row_faq[r]), None)
        if len(found) == k:
            break
    return list(found)


def run_size(size: str, n_queries: int, bm25_queries: int | None, prototype: bool) -> dict:
    res: dict[str, Any] = {"size": size}
    if size == "shipped":
        try:
            bank = load_bank(ROOT / "faq")
        except BankError as exc:
            return {"size": size, "error": f"faq/ does not load: {exc}"}
    else:
        t0 = time.perf_counter()
        bank = bank_of(synthetic_faqs(int(size)), prefix="syn")
        res["generate_s"] = time.perf_counter() - t0
    res["faqs"] = len(bank.faqs)

    t0 = time.perf_counter()
    pipeline = pipeline_for(bank)
    res["pipeline_s"] = time.perf_counter() - t0

    # The index, built as engine.build_index does, with the two steps timed apart.
    t0 = time.perf_counter()
    rows = [
        (pos, pipeline.prepare(text))
        for pos, faq in enumerate(bank.faqs)
        for text in dict.fromkeys(faq.texts)
    ]
    res["prepare_rows_s"] = time.perf_counter() - t0
    res["rows"] = len(rows)
    with rss_peak(res, "index_peak_mb"):
        t0 = time.perf_counter()
        index = Index.build(rows, digest=bank.digest)
        res["build_s"] = time.perf_counter() - t0
    # What a server holds: the saved artifact, loaded back.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index.bin"
        index.save(path)
        res["index_file_mb"] = path.stat().st_size / 2**20
        with traced(res, "index_loaded"):
            loaded = Index.load(path, digest=bank.digest)
        del loaded

    done = {text: p for (pos, p), text in zip(rows, _texts(bank), strict=True)}
    t0 = time.perf_counter()
    with reuse_preparation(pipeline, done):
        bot_ = Bot(bank, pipeline, index)
    res["bot_s"] = time.perf_counter() - t0
    del done

    # BM25Okapi on the same rows and tokens.
    corpus = [list(p.words) for _, p in rows]
    t0 = time.perf_counter()
    bm25 = BM25Okapi(corpus)
    res["bm25_build_s"] = time.perf_counter() - t0
    with traced(res, "bm25"):  # a second build, traced (tracemalloc slows it down)
        kept = BM25Okapi(corpus)
    del kept, corpus

    if size == "shipped":
        queries = shipped_queries(bank, WARMUP + n_queries)
    else:
        queries = synthetic_queries(WARMUP + n_queries, seed=11)
    warm, queries = queries[:WARMUP], queries[WARMUP:]
    row_faq = index.row_faq

    cap = bot_.matcher.config.max_postings  # as Bot.ask retrieves

    def top(ix: Index) -> Callable[[str], list[int]]:
        return lambda q: [
            hit[0] for hit in ix.top_faqs(pipeline.prepare(q), k=10, max_postings=cap)
        ]

    fns: dict[str, Callable[[str], Any]] = {
        "full": bot_.ask,
        "retrieval": top(index),
        "prepare": pipeline.prepare,
        "bm25": lambda q: bm25_top(bm25, row_faq, list(pipeline.prepare(q).words)),
    }
    if prototype:
        product, slim = prototype_indexes(index, rows, bank.digest, res)
        fns["A"] = top(product)
        fns["B"] = top(slim)
        done = {text: p for (_, p), text in zip(rows, _texts(bank), strict=True)}
        with reuse_preparation(pipeline, done):
            fns["B_full"] = Bot(bank, pipeline, slim).ask
        del done
    if bm25_queries is None:
        bm25_queries = n_queries if len(rows) <= FULL_BM25_ROWS else BM25_SAMPLE
    limit = {"bm25": bm25_queries}
    interleaved(fns, warm, {"bm25": 20})
    times, results = interleaved(fns, queries, limit)
    for name, ms in times.items():
        res[name] = summary(ms)
    # Ours on exactly the BM25 questions, for the ratios.
    res["full_on_sample"] = statistics.median(times["full"][:bm25_queries])
    res["retrieval_on_sample"] = statistics.median(times["retrieval"][:bm25_queries])
    for name in ("A", "B"):
        if name in results:
            res[f"{name}_agree"] = agreement(results["retrieval"], results[name])
    res["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return res


def agreement(base: list[list[int]], other: list[list[int]]) -> tuple[float, float]:
    """Share of questions with the same top-1 FAQ, and mean overlap of the top-10 sets."""
    top1 = overlap = 0.0
    for b, o in zip(base, other, strict=True):
        top1 += bool(b) and bool(o) and b[0] == o[0]
        overlap += len(set(b) & set(o)) / max(len(b), 1)
    return top1 / len(base), overlap / len(base)


def _texts(bank: Bank) -> list[str]:
    return [text for faq in bank.faqs for text in dict.fromkeys(faq.texts)]


# --- prototypes of engine changes (bench-only, nothing in bot/ is edited) ---------------------


class SparseProductIndex(Index):
    """Index.scores as one sparse product (query row vector × posting matrix) in scipy."""

    def scores(self, p: Prepared, *, max_postings: int | None = None) -> np.ndarray:
        # max_postings is not applied: the prototype scores every posting list.
        cols, vals = self.vector(p)
        if not len(cols):
            return np.zeros(self.n_rows)
        q = sp.csr_matrix((vals, cols, [0, len(cols)]), shape=(1, self.postings.shape[0]))
        return (q @ self.postings).toarray()[0]


def features_without_unigrams(p: Prepared) -> tuple[list[str], list[str], list[str]]:
    """bot.match.index.features without character and pinyin unigrams (the longest posting
    lists)."""
    words, grams, pys = features(p)
    return words, [g for g in grams if len(g) > 1], [s for s in pys if "_" in s]


def prototype_indexes(
    index: Index, rows: list[tuple[int, Prepared]], digest: str, res: dict[str, Any]
) -> tuple[Index, Index]:
    """A: the engine's index scored as one sparse product. B: A without unigram features."""
    product = SparseProductIndex(
        blocks=index.blocks,
        postings=index.postings,
        row_faq=index.row_faq,
        row_text=index.row_text,
        row_pinyin=index.row_pinyin,
        meta=index.meta,
    )
    t0 = time.perf_counter()
    slim = SparseProductIndex.build(rows, digest=digest, features=features_without_unigrams)
    res["slim_build_s"] = time.perf_counter() - t0
    return product, slim


# --- the parent: run every size, print the tables ---------------------------------------------


def fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def report(results: list[dict], args: argparse.Namespace) -> str:
    out = []
    lat = []
    for r in results:
        if "error" in r:
            lat.append([r["size"], r["error"], *[""] * 10])
            continue
        target = TARGET_MS.get(r["size"])
        full, ret, bm = r["full"], r["retrieval"], r["bm25"]
        speed_full = bm["median"] / r["full_on_sample"]
        speed_ret = bm["median"] / r["retrieval_on_sample"]
        met = "—" if target is None else ("yes" if full["median"] <= target else "NO")
        if r["size"] == "10000":
            met += (
                f"; {'yes' if speed_full >= SPEEDUP_TARGET else 'NO'} (≥{SPEEDUP_TARGET:g}× BM25)"
            )
        lat.append(
            [
                label(r),
                f"{r['rows']:,}",
                f"{full['n']:,}",
                f"{fmt(full['median'], 3)} / {fmt(full['p99'], 2)}",
                f"{fmt(ret['median'], 3)} / {fmt(ret['p99'], 2)}",
                fmt(r["prepare"]["median"], 3),
                f"{bm['n']:,}",
                f"{fmt(bm['median'], 3)} / {fmt(bm['p99'], 2)}",
                f"{r['full_on_sample'] / bm['median']:.3f} ({speed_full:.1f}× faster)",
                f"{r['retrieval_on_sample'] / bm['median']:.3f} ({speed_ret:.1f}× faster)",
                "—" if target is None else f"≤ {target:g} ms",
                met,
            ]
        )
    out.append("## Latency per question, in process (ms, median / p99)\n")
    out.append(
        table(
            [
                "bank",
                "rows",
                "queries",
                "ours: Bot.ask",
                "ours: retrieval",
                "prepare alone",
                "BM25 queries",
                "BM25Okapi: retrieval",
                "ours/BM25, Bot.ask",
                "ours/BM25, retrieval",
                "target (Bot.ask median)",
                "met",
            ],
            lat,
        )
    )
    out.append(
        "\nRetrieval = prepare + top-10 FAQs, for ours and BM25 alike (same tokenizer call). "
        "The methods take turns of 25 questions each (interleaved), so load changes "
        "on this shared machine hit all methods alike. "
        "Ratios are taken on the same questions (the BM25 sample) in the same process; "
        f"BM25 is timed on all queries up to {FULL_BM25_ROWS:,} rows, above that on the first "
        f"{BM25_SAMPLE}."
    )
    mem = []
    for r in results:
        if "error" in r:
            continue
        mem.append(
            [
                label(r),
                fmt(r["pipeline_s"]),
                fmt(r["prepare_rows_s"]),
                fmt(r["build_s"]),
                fmt(r["prepare_rows_s"] + r["build_s"]),
                fmt(r["bot_s"]),
                fmt(r["index_peak_mb"], 0),
                f"{fmt(r['index_loaded_mb'], 1)} / {fmt(r['index_file_mb'], 1)}",
                fmt(r["bm25_build_s"]),
                f"{fmt(r['bm25_peak_mb'], 1)} / {fmt(r['bm25_mb'], 1)}",
                fmt(r["max_rss_mb"], 0),
            ]
        )
    out.append("\n## Build time (s) and memory (MB)\n")
    out.append(
        table(
            [
                "bank",
                "pipeline set-up (jieba dict)",
                "prepare rows",
                "Index.build",
                "index build total",
                "Bot() set-up",
                "Index.build peak (RSS)",
                "index in memory / on disk",
                "BM25Okapi build",
                "BM25 build peak / kept (tracemalloc)",
                "process peak RSS",
            ],
            mem,
        )
    )
    out.append(
        "\nIndex build total = prepare rows + Index.build, what train.py pays. Index.build peak: "
        "VmHWM (reset through /proc/self/clear_refs) minus RSS before the build. Index in "
        "memory: tracemalloc growth while Index.load reads the saved artifact. BM25: "
        "tracemalloc over a second, untimed build (token lists made beforehand are not "
        "counted). Bot() set-up reuses the rows' preparation (Bot() itself prepares every "
        "question again for type-ahead). Process peak RSS: ru_maxrss of the size's process."
    )
    protos = [r for r in results if "A" in r]
    if protos:
        rows = []
        for r in protos:
            base = r["retrieval"]["median"]
            rows.append(
                [
                    label(r),
                    fmt(base, 3),
                    f"{fmt(r['A']['median'], 3)} ({base / r['A']['median']:.1f}×)",
                    f"{r['A_agree'][0]:.3f} / {r['A_agree'][1]:.3f}",
                    f"{fmt(r['B']['median'], 3)} ({base / r['B']['median']:.1f}×)",
                    f"{r['B_agree'][0]:.3f} / {r['B_agree'][1]:.3f}",
                    f"{fmt(r['full']['median'], 3)} → {fmt(r['B_full']['median'], 3)}",
                    f"{fmt(r['build_s'])} → {fmt(r['slim_build_s'])}",
                ]
            )
        out.append("\n## Prototypes of engine changes (median ms, same questions, interleaved)\n")
        out.append(
            table(
                [
                    "bank",
                    "retrieval, engine now",
                    "A: scores as one sparse product",
                    "A: same top-1 / top-10 overlap",
                    "B: A + no char/pinyin unigrams",
                    "B: same top-1 / top-10 overlap",
                    "Bot.ask: now → B",
                    "Index.build s: now → B",
                ],
                rows,
            )
        )
    return "\n".join(out)


def label(r: dict) -> str:
    return (
        f"shipped faq/ ({r['faqs']} FAQs)" if r["size"] == "shipped" else f"{r['faqs']:,} synthetic"
    )


def parse_size(s: str) -> str:
    s = s.strip().lower()
    if s == "shipped":
        return s
    m = re.fullmatch(r"(\d+)(k?)", s)
    if not m:
        raise argparse.ArgumentTypeError(f"size must be 'shipped' or a number, not {s!r}")
    return str(int(m.group(1)) * (1000 if m.group(2) else 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="shipped,10000,100000", help="comma list: shipped, N, Nk")
    ap.add_argument("--queries", type=int, default=1000, help="timed questions per size")
    ap.add_argument(
        "--bm25-queries", type=int, default=None, help="BM25 questions (default: see docstring)"
    )
    ap.add_argument("--quick", action="store_true", help="shipped and 10k, 300 questions")
    ap.add_argument(
        "--prototype", action="store_true", help="also time the prototyped engine changes"
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        res = run_size(args.child, args.queries, args.bm25_queries, args.prototype)
        print(json.dumps(res))
        return

    sizes = [parse_size(s) for s in args.sizes.split(",")]
    if args.quick:
        sizes = [s for s in sizes if int(s if s.isdigit() else 0) < 100_000]
        args.queries = min(args.queries, 300)
    print(machine())
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}\n", flush=True)
    results = []
    for size in sizes:
        t0 = time.perf_counter()
        cmd = [sys.executable, __file__, "--child", size, "--queries", str(args.queries)]
        if args.bm25_queries is not None:
            cmd += ["--bm25-queries", str(args.bm25_queries)]
        if args.prototype:
            cmd.append("--prototype")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            results.append({"size": size, "error": proc.stderr.strip().splitlines()[-1]})
        else:
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"[{size}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
    print(report(results, args))


if __name__ == "__main__":
    main()
