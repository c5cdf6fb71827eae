"""Classifier latency: the committed ONNX model against the same model's sklearn predict_proba.

Both run in this process, one prompt at a time, interleaved per round so that machine noise
hits both alike; figures are medians over rounds, and the comparison is a ratio.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from intent_router.classifier import DEFAULT_MODELS_DIR, IntentClassifier
from training.candidates import default_candidates, extra_candidates
from training.dataset import TEST_FILE, TRAIN_FILE, read_jsonl
from training.train import SEED

ROUNDS = 5
CALLS_PER_ROUND = 400


def _percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99))


def _time_calls(
    fn: Callable[[str], Any],
    texts: Sequence[str],
    calls: int,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    out = []
    for i in range(calls):
        text = texts[i % len(texts)]
        start = clock()
        fn(text)
        out.append(clock() - start)
    return out


def _buckets() -> dict[str, list[str]]:
    texts = [r["text"] for r in read_jsonl(TEST_FILE)]
    words = {t: len(t.split()) for t in texts}
    return {
        "short (<10 words)": [t for t in texts if words[t] < 10],
        "medium (10-80 words)": [t for t in texts if 10 <= words[t] <= 80],
        "long (>80 words)": [t for t in texts if words[t] > 80],
        "huge (100,000 chars, truncated)": [
            "fix this crash please\n" + "at com.x.Y(Y.java:1)\n" * 4800
        ],
        "authored test split": texts,
        "real test split": _real_test_texts(),
    }


def _real_test_texts() -> list[str]:
    """The real test split's prompts (by repository; data/real_split.json)."""
    from training.real_corpus import REAL_DIR
    from training.real_split import load_split_rows

    return [r["text"] for r in load_split_rows(REAL_DIR)[1]]


def _sklearn_pipeline(candidate_name: str):  # type: ignore[no-untyped-def]
    candidate = next(
        c for c in default_candidates() + extra_candidates() if c.name == candidate_name
    )
    train = read_jsonl(TRAIN_FILE)
    classifier = IntentClassifier.from_dir()
    policy = classifier.metadata.truncation
    return candidate.build(SEED).fit(
        [policy.apply(r["text"]) for r in train], [r["intent"] for r in train]
    )


def run() -> dict[str, Any]:
    classifier = IntentClassifier.from_dir(DEFAULT_MODELS_DIR)
    policy = classifier.metadata.truncation
    pipeline = _sklearn_pipeline(classifier.metadata.estimator["candidate"])
    results: dict[str, Any] = {"model_version": classifier.version, "buckets": {}}
    for name, texts in _buckets().items():
        onnx_rounds, cpu_rounds, sk_rounds = [], [], []
        classifier.predict(texts[0])  # warm up
        for _ in range(ROUNDS):
            onnx_rounds.append(
                _percentiles(_time_calls(classifier.predict, texts, CALLS_PER_ROUND))
            )
            # this thread's CPU time: what a call costs, without the time another process held
            # the core (the machine is shared; wall-clock p99 is mostly preemption under load)
            cpu_rounds.append(
                _percentiles(
                    _time_calls(classifier.predict, texts, CALLS_PER_ROUND, time.thread_time)
                )
            )
            sk_rounds.append(
                _percentiles(
                    _time_calls(lambda t: pipeline.predict_proba([policy.apply(t)]), texts, 60)
                )
            )
        onnx_p50 = statistics.median(r[0] for r in onnx_rounds)
        onnx_p99 = statistics.median(r[1] for r in onnx_rounds)
        sk_p50 = statistics.median(r[0] for r in sk_rounds)
        results["buckets"][name] = {
            "prompts": len(texts),
            "onnx_p50_us": onnx_p50 * 1e6,
            "onnx_p99_us": onnx_p99 * 1e6,
            "onnx_cpu_p50_us": statistics.median(r[0] for r in cpu_rounds) * 1e6,
            "onnx_cpu_p99_us": statistics.median(r[1] for r in cpu_rounds) * 1e6,
            "sklearn_p50_us": sk_p50 * 1e6,
            "speedup_p50": sk_p50 / onnx_p50,
        }
    results["batch"] = _batch_throughput(classifier, pipeline, policy)
    return results


def _batch_throughput(classifier: IntentClassifier, pipeline: Any, policy: Any) -> dict[str, float]:
    texts = [r["text"] for r in read_jsonl(TEST_FILE)][:256]
    rates_onnx, rates_sk = [], []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        classifier.predict_batch(texts)
        rates_onnx.append(len(texts) / (time.perf_counter() - start))
        start = time.perf_counter()
        pipeline.predict_proba([policy.apply(t) for t in texts])
        rates_sk.append(len(texts) / (time.perf_counter() - start))
    onnx, sk = statistics.median(rates_onnx), statistics.median(rates_sk)
    return {
        "batch_size": len(texts),
        "onnx_prompts_per_s": onnx,
        "sklearn_prompts_per_s": sk,
        "ratio": onnx / sk,
    }


def table(results: dict[str, Any]) -> str:
    lines = [
        f"Classifier (model {results['model_version']}), single prompt, in-process, "
        f"median of {ROUNDS} rounds",
        f"{'prompts':<34}{'n':>5}{'ONNX p50 us':>13}{'ONNX p99 us':>13}{'CPU p50 us':>12}"
        f"{'CPU p99 us':>12}{'sklearn p50 us':>16}{'x faster':>10}",
    ]
    for name, b in results["buckets"].items():
        lines.append(
            f"{name:<34}{b['prompts']:>5}{b['onnx_p50_us']:>13.1f}{b['onnx_p99_us']:>13.1f}"
            f"{b['onnx_cpu_p50_us']:>12.1f}{b['onnx_cpu_p99_us']:>12.1f}"
            f"{b['sklearn_p50_us']:>16.1f}{b['speedup_p50']:>10.1f}"
        )
    batch = results["batch"]
    lines.append(
        "CPU: the calling thread's CPU time per call (time.thread_time), which machine "
        "load does not inflate by preemption"
    )
    lines.append(
        f"batch of {batch['batch_size']}: ONNX {batch['onnx_prompts_per_s']:.0f} prompts/s, "
        f"sklearn {batch['sklearn_prompts_per_s']:.0f} prompts/s ({batch['ratio']:.1f}x)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    out = run()
    print(table(out))
    print(json.dumps(out, indent=2))
