"""The token counter on real prompts: what it costs a request, and how far the 4-characters-a-
token estimate it replaced was from it.

Every prompt of the real corpus (data/real) is counted with cl100k_base (intent_router.tokens)
and with the old estimate, ceil(len / 4). Timings are per prompt, in this process, interleaved
per round (first sight: a counter with an empty cache; again: the same text, a cache hit; the
old estimate); each prompt's fastest round counts. A request counts its prompt once and finds it in the cache
after that (the decision log, the budget hold's conversation).
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from intent_router.tokens import CALL_CHARS, EXACT_CHARS, TokenCounter, default_counter
from training.real_corpus import load_real_rows

ROUNDS = 5
HUGE_BODY_CHARS = 1024 * 1024  # router.max_body_bytes' default: the largest prompt a client sends


def old_estimate(text: str) -> int:
    """What serving and budgets counted before: about 4 characters a token, at least 1."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _per_call_us(fn: Callable[[str], Any], texts: Sequence[str]) -> list[float]:
    out = []
    for text in texts:
        start = time.perf_counter()
        fn(text)
        out.append((time.perf_counter() - start) * 1e6)
    return out


def _timings(texts: list[str]) -> dict[str, dict[str, float]]:
    """Per prompt, the fastest of ``ROUNDS`` (a busy machine only adds time), then percentiles
    over the prompts."""
    encoding = default_counter().encoding
    samples: dict[str, list[list[float]]] = {
        "first sight": [],
        "again (cached)": [],
        "old estimate": [],
    }
    for _ in range(ROUNDS):
        counter = TokenCounter(encoding)
        samples["first sight"].append(_per_call_us(counter.count, texts))
        samples["again (cached)"].append(_per_call_us(counter.count, texts))
        samples["old estimate"].append(_per_call_us(old_estimate, texts))
    out = {}
    for name, rounds in samples.items():
        best = np.min(np.array(rounds), axis=0)
        out[name] = {
            "p50_us": float(np.percentile(best, 50)),
            "p99_us": float(np.percentile(best, 99)),
            "mean_us": float(np.mean(best)),
        }
    return out


def _error(texts: list[str]) -> dict[str, float]:
    exact = np.array(
        [len(default_counter().encoding.encode_ordinary(t)) for t in texts], dtype=float
    )
    estimate = np.array([old_estimate(t) for t in texts], dtype=float)
    relative = (estimate - exact) / exact
    return {
        "prompts": len(texts),
        "tokens_exact": float(exact.sum()),
        "tokens_old_estimate": float(estimate.sum()),
        "total_ratio": float(estimate.sum() / exact.sum()),
        "median_relative_error": float(np.median(relative)),
        "mean_absolute_relative_error": float(np.mean(np.abs(relative))),
        "p10_relative_error": float(np.percentile(relative, 10)),
        "p90_relative_error": float(np.percentile(relative, 90)),
        "share_off_by_over_25pct": float(np.mean(np.abs(relative) > 0.25)),
        "chars_per_token": float(sum(len(t) for t in texts) / exact.sum()),
    }


def _huge_bodies() -> dict[str, dict[str, float]]:
    """1 MiB prompts (words; one letter) and a 1 MiB conversation (64 messages of words): the
    bounded count against encoding every text whole (byte-pair encoding's slow case)."""
    encoding = default_counter().encoding
    words = ("fix the failing test in the parser " * 40000)[:HUGE_BODY_CHARS]
    cases = {
        "words": [words],
        "one letter": ["x" * HUGE_BODY_CHARS],
        "64 messages": [f"{i} {words[: HUGE_BODY_CHARS // 64]}" for i in range(64)],
    }
    out = {}
    for name, texts in cases.items():
        start = time.perf_counter()
        bounded = TokenCounter(encoding).count_all(texts)
        bounded_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        whole = sum(len(encoding.encode_ordinary(text)) for text in texts)
        whole_ms = (time.perf_counter() - start) * 1000
        out[name] = {
            "bounded_ms": bounded_ms,
            "whole_ms": whole_ms,
            "bounded_tokens": bounded,
            "whole_tokens": whole,
        }
    return out


_LOAD = """
import time
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
import intent_router.tokens as tokens
before, started = rss(), time.perf_counter()
tokens.default_counter()
print((time.perf_counter() - started) * 1000, rss() - before)
"""


def _load_cost() -> dict[str, float]:
    """Loading cl100k_base in a fresh process: time and resident memory added."""
    ms, mb = subprocess.run(
        [sys.executable, "-c", _LOAD], check=True, capture_output=True, text=True
    ).stdout.split()
    return {"load_ms": float(ms), "rss_added_mb": float(mb)}


def run() -> dict[str, Any]:
    texts = [row["text"] for row in load_real_rows() if row.get("text")]
    return {
        "error": _error(texts),
        "timings": _timings(texts),
        "huge": _huge_bodies(),
        "load": _load_cost(),
        "exact_chars": EXACT_CHARS,
        "call_chars": CALL_CHARS,
        "prompt_chars": {
            "p50": float(np.percentile([len(t) for t in texts], 50)),
            "p99": float(np.percentile([len(t) for t in texts], 99)),
        },
    }


def table(results: dict[str, Any]) -> str:
    e, load = results["error"], results["load"]
    lines = [
        f"Token counter on the real corpus ({e['prompts']} prompts, {results['prompt_chars']['p50']:.0f} "
        f"characters median, {results['prompt_chars']['p99']:.0f} p99; cl100k_base, "
        f"{e['chars_per_token']:.2f} characters a token)",
        f"{'per prompt':<18} {'p50 us':>9} {'p99 us':>9} {'mean us':>9}",
    ]
    for name, t in results["timings"].items():
        lines.append(f"{name:<18} {t['p50_us']:>9.1f} {t['p99_us']:>9.1f} {t['mean_us']:>9.1f}")
    lines += [
        f"loading cl100k_base: {load['load_ms']:.0f} ms, {load['rss_added_mb']:.1f} MB resident, once per process",
        f"1 MiB bodies (a text exact up to {results['exact_chars']:,} characters, at most "
        f"{results['call_chars']:,} new characters encoded per call, the rest extrapolated):",
    ]
    for name, h in results["huge"].items():
        lines.append(
            f"  {name:<11} bounded {h['bounded_ms']:7.1f} ms ({h['bounded_tokens']:,} tokens); "
            f"whole {h['whole_ms']:7.1f} ms ({h['whole_tokens']:,} tokens)"
        )
    lines += [
        "the old estimate (ceil(characters / 4)) against cl100k_base, per prompt:",
        f"  total {e['tokens_old_estimate']:,.0f} vs {e['tokens_exact']:,.0f} tokens (x{e['total_ratio']:.3f}); "
        f"median error {e['median_relative_error']:+.1%}, mean |error| {e['mean_absolute_relative_error']:.1%}, "
        f"p10 {e['p10_relative_error']:+.1%}, p90 {e['p90_relative_error']:+.1%}; "
        f"{e['share_off_by_over_25pct']:.1%} of prompts off by over 25%",
    ]
    return "\n".join(lines)
