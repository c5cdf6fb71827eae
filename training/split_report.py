"""How a trained model does on one held-out split, as `make train` prints and logs it: macro-F1,
per label, per source type, clear vs ambiguous, per repository, and what routing would do at
the recommended threshold (escalation share, accuracy of the kept share, under/over-routing by
the default config's intent policy)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from intent_router.config import DEFAULT_CONFIG, load_config
from intent_router.evaluation.data import LabeledPrompt
from intent_router.evaluation.replay import (
    ReplaySettings,
    baseline_deployments,
    measure_tokens,
    replay,
)
from intent_router.types import Prediction
from training import evaluate as ev


@dataclass(frozen=True)
class HeldOut:
    """A held-out split with what each prompt is (authored prompts: source type "authored")."""

    name: str
    texts: list[str]
    intents: list[str]
    source_types: list[str]
    ambiguous: list[bool]
    repositories: list[str]
    alt_intents: list[str | None] | None = None  # the second defensible label, if any

    @classmethod
    def authored(cls, texts: Sequence[str], intents: Sequence[str]) -> HeldOut:
        n = len(texts)
        return cls(
            "authored_test",
            list(texts),
            list(intents),
            ["authored"] * n,
            [False] * n,
            ["authored"] * n,
        )

    @classmethod
    def real(cls, rows: Sequence[dict[str, Any]], texts: Sequence[str]) -> HeldOut:
        """``texts``: the rows' texts as the model sees them (truncated)."""
        return cls(
            "real_test",
            list(texts),
            [r["intent"] for r in rows],
            [r["source_type"] for r in rows],
            [bool(r["ambiguous"]) for r in rows],
            [r["source_repo"] for r in rows],
            [r.get("alt_intent") for r in rows],
        )


@dataclass(frozen=True)
class Slice:
    """Scores on a subset of a split."""

    rows: int
    accuracy: float
    macro_f1: float


@dataclass(frozen=True)
class SplitReport:
    """One split's scores; ``metrics()`` names them ``<split>_<metric>``."""

    name: str
    evaluation: ev.Evaluation
    by_source_type: dict[str, Slice]
    clear: Slice
    ambiguous: Slice
    ambiguous_either: float  # ambiguous prompts predicted as their intent or alt_intent
    repositories: int
    repo_accuracy_median: float
    repo_accuracy_p10: float
    threshold: float
    escalation_share: float
    kept_accuracy: float
    under_routing: float  # model alone: high-stakes prompts sent to a cheaper deployment
    over_routing: float  # model alone: other prompts sent to a pricier one
    under_routing_escalated: float  # escalated prompts answered right by the LLM classifier

    @property
    def rows(self) -> int:
        return int(sum(map(sum, self.evaluation.confusion)))

    def metrics(self) -> dict[str, float]:
        prefix = f"{self.name}_"
        out = self.evaluation.as_metrics(prefix)
        out.update(
            {
                f"{prefix}rows": float(self.rows),
                f"{prefix}escalation_share": self.escalation_share,
                f"{prefix}kept_accuracy": self.kept_accuracy,
                f"{prefix}under_routing": self.under_routing,
                f"{prefix}over_routing": self.over_routing,
                f"{prefix}under_routing_escalated": self.under_routing_escalated,
            }
        )
        if self.ambiguous.rows:
            out.update(
                {
                    f"{prefix}macro_f1_clear": self.clear.macro_f1,
                    f"{prefix}macro_f1_ambiguous": self.ambiguous.macro_f1,
                    f"{prefix}accuracy_clear": self.clear.accuracy,
                    f"{prefix}accuracy_ambiguous": self.ambiguous.accuracy,
                    f"{prefix}accuracy_ambiguous_either": self.ambiguous_either,
                }
            )
        if self.repositories > 1:
            out[f"{prefix}repo_accuracy_median"] = self.repo_accuracy_median
            out[f"{prefix}repo_accuracy_p10"] = self.repo_accuracy_p10
        if len(self.by_source_type) < 2:
            return out
        for source, scores in self.by_source_type.items():
            out[f"{prefix}macro_f1_source_{source}"] = scores.macro_f1
            out[f"{prefix}accuracy_source_{source}"] = scores.accuracy
        return out

    def lines(self) -> list[str]:
        e = self.evaluation
        out = [
            f"  {self.name}: {self.rows} prompts, macro-F1 {e.macro_f1:.4f}  accuracy "
            f"{e.accuracy:.4f}  ECE {e.expected_calibration_error:.4f}",
            f"    at threshold {self.threshold:.2f}: escalation share {self.escalation_share:.3f}, "
            f"accuracy of the kept share {self.kept_accuracy:.3f}; model alone: under-routing "
            f"{self.under_routing:.3f}, over-routing {self.over_routing:.3f} "
            f"(with escalation answered right: under-routing {self.under_routing_escalated:.3f})",
        ]
        if self.ambiguous.rows:
            out.append(
                f"    clear {self.clear.rows}: macro-F1 {self.clear.macro_f1:.4f}  accuracy "
                f"{self.clear.accuracy:.4f}; ambiguous {self.ambiguous.rows}: macro-F1 "
                f"{self.ambiguous.macro_f1:.4f}  accuracy {self.ambiguous.accuracy:.4f} "
                f"({self.ambiguous_either:.4f} counting the alternative label as right)"
            )
        if self.repositories > 1:
            out.append(
                f"    {self.repositories} repositories: accuracy per repository median "
                f"{self.repo_accuracy_median:.3f}, 10th percentile {self.repo_accuracy_p10:.3f}"
            )
        if len(self.by_source_type) > 1:
            out.append(
                "    per source type: "
                + ", ".join(
                    f"{s} {v.rows} F1 {v.macro_f1:.3f} acc {v.accuracy:.3f}"
                    for s, v in sorted(self.by_source_type.items(), key=lambda kv: -kv[1].rows)
                )
            )
        out += [
            f"    {label:<20} P {s['precision']:.3f}  R {s['recall']:.3f}  F1 {s['f1']:.3f}  "
            f"n {int(s['support'])}"
            for label, s in e.per_label.items()
        ]
        return out


def _slice(
    mask: np.ndarray, intents: np.ndarray, predicted: np.ndarray, labels: list[str]
) -> Slice:
    from sklearn.metrics import f1_score

    if not mask.any():
        return Slice(0, 0.0, 0.0)
    present = sorted(set(intents[mask]) | set(predicted[mask]))
    return Slice(
        int(mask.sum()),
        float((intents[mask] == predicted[mask]).mean()),
        float(
            f1_score(
                intents[mask],
                predicted[mask],
                labels=[x for x in labels if x in present],
                average="macro",
                zero_division=0,
            )
        ),
    )


def report_split(
    held_out: HeldOut,
    probabilities: np.ndarray,
    labels: Sequence[str],
    threshold: float,
    config_path: Any = DEFAULT_CONFIG,
) -> SplitReport:
    """Score ``probabilities`` (columns follow ``labels``) against ``held_out``."""
    labels = list(labels)
    evaluation = ev.evaluate(held_out.intents, probabilities, labels)
    intents = np.array(held_out.intents)
    predicted = np.array([labels[i] for i in probabilities.argmax(axis=1)])
    confidence = probabilities.max(axis=1)
    kept = confidence >= threshold
    ambiguous = np.array(held_out.ambiguous, dtype=bool)
    sources = np.array(held_out.source_types)
    under, over, under_escalated = _routing(held_out, predicted, confidence, threshold, config_path)
    repo_accuracy = _per_repository_accuracy(held_out.repositories, intents == predicted)
    return SplitReport(
        name=held_out.name,
        evaluation=evaluation,
        by_source_type={s: _slice(sources == s, intents, predicted, labels) for s in set(sources)},
        clear=_slice(~ambiguous, intents, predicted, labels),
        ambiguous=_slice(ambiguous, intents, predicted, labels),
        ambiguous_either=_either(held_out, predicted, ambiguous),
        repositories=len(repo_accuracy),
        repo_accuracy_median=float(np.median(repo_accuracy)),
        repo_accuracy_p10=float(np.percentile(repo_accuracy, 10)),
        threshold=threshold,
        escalation_share=float((~kept).mean()),
        kept_accuracy=float((intents[kept] == predicted[kept]).mean()) if kept.any() else 1.0,
        under_routing=under,
        over_routing=over,
        under_routing_escalated=under_escalated,
    )


def _either(held_out: HeldOut, predicted: np.ndarray, ambiguous: np.ndarray) -> float:
    """Share of ambiguous prompts predicted as their intent or their alternative label."""
    alts = held_out.alt_intents or [None] * len(held_out.intents)
    hits = [
        p in (true, alt)
        for p, true, alt, amb in zip(predicted, held_out.intents, alts, ambiguous, strict=True)
        if amb
    ]
    return sum(hits) / len(hits) if hits else 0.0


def _per_repository_accuracy(repositories: Sequence[str], correct: np.ndarray) -> list[float]:
    by_repo: dict[str, list[bool]] = defaultdict(list)
    for repo, ok in zip(repositories, correct):
        by_repo[repo].append(bool(ok))
    return [sum(v) / len(v) for v in by_repo.values()]


def _routing(
    held_out: HeldOut,
    predicted: np.ndarray,
    confidence: np.ndarray,
    threshold: float,
    config_path: Any,
) -> tuple[float, float, float]:
    """Under- and over-routing of the model alone, and under-routing when escalated prompts
    get their true intent (the routing evaluation's replay, so both share one definition)."""
    config = load_config(config_path)
    premium, primary = baseline_deployments(config)
    examples = [LabeledPrompt(t, i) for t, i in zip(held_out.texts, held_out.intents)]
    predictions = [Prediction(str(p), float(c), {}) for p, c in zip(predicted, confidence)]
    tokens = measure_tokens(held_out.texts)
    shares = []
    for escalation, threshold_used in (("local", 0.0), ("oracle", threshold)):
        settings = ReplaySettings(config, threshold_used, premium, primary, escalation)
        outcomes = replay(examples, predictions, tokens, settings)
        high = [o for o in outcomes if o.high_stakes]
        low = [o for o in outcomes if not o.high_stakes]
        shares.append(
            (
                sum(o.under_routed for o in high) / max(len(high), 1),
                sum(o.over_routed for o in low) / max(len(low), 1),
            )
        )
    return shares[0][0], shares[0][1], shares[1][0]
