"""The real-prompt corpus's part of `make data-check`: counts, near-duplicates, the split,
labeler agreement, and the floors of issue 12 with the shortfall each misses by."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from intent_router.labels import INTENTS
from training.data_check import near_duplicate_pairs
from training.real_split import RealSplit, split_problems

MIN_ROWS: Final[int] = 2500
MIN_REPOSITORIES: Final[int] = 150
MAX_SOURCE_SHARE: Final[float] = 0.25
REPO_CAP: Final[int] = 30
#: A repository may hold up to REPO_CAP_EXTRA rows when those past REPO_CAP are of these.
REPO_CAP_EXTRA: Final[int] = 40
EXTRA_INTENTS: Final[frozenset[str]] = frozenset({"security_audit", "architecture_review"})
NEAR_DUPLICATE_JACCARD: Final[float] = 0.9
TOP_REPOSITORIES: Final[int] = 10
KINDS: Final[tuple[str, ...]] = ("verbatim", "style_rewrite", "authored")


@dataclass(frozen=True)
class Agreement:
    """Two labelers on the double-labelled sample."""

    rows: int
    kappa: float
    raw_agreement: float
    within_alt: float  # labeler B's intent is A's intent or A's alt_intent
    ambiguous_agreement: float
    confusion: list[list[int]]  # rows: labeler A (the corpus), columns: labeler B; INTENTS order


@dataclass
class CorpusReport:
    """What `make data-check` prints about data/real/, and the floors it misses."""

    total: int
    labels: Counter[str]
    source_types: Counter[str]
    kinds: Counter[str]  # verbatim / style_rewrite / authored
    repositories: Counter[str]
    ambiguous: int
    near_duplicates: Counter[tuple[str, str]]  # pairs by the kinds of their two texts
    near_duplicates_across_split: int
    over_cap: list[str]
    split: RealSplit | None
    split_problems: list[str]
    agreement: Agreement | None
    double_label_problems: list[str]
    failures: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        n = max(self.total, 1)
        top = self.repositories.most_common(TOP_REPOSITORIES)
        out = [
            f"real-prompt corpus (data/real): {self.total} rows from {len(self.repositories)} "
            f"repositories; ambiguous {self.ambiguous} ({self.ambiguous / n:.1%})",
            *(f"  {label:<20} {self.labels.get(label, 0)}" for label in INTENTS),
            "per source type: " + ", ".join(f"{k} {v}" for k, v in self.source_types.most_common()),
            "real verbatim / style_rewrite / authored: "
            + " / ".join(str(self.kinds.get(k, 0)) for k in KINDS),
            "largest repositories: " + ", ".join(f"{r} {c} ({c / n:.1%})" for r, c in top),
            f"near-duplicates (char 5-gram Jaccard >= {NEAR_DUPLICATE_JACCARD}), pairs: "
            + (
                ", ".join(f"{a}~{b} {c}" for (a, b), c in sorted(self.near_duplicates.items()))
                or "none"
            )
            + f"; across the real split's sides: {self.near_duplicates_across_split}",
        ]
        out += self._split_lines() + self._agreement_lines()
        return out

    def _split_lines(self) -> list[str]:
        if self.split is None:
            return ["real test split: none (run `make split`)"]
        return [
            f"real test split: {len(self.split.test_ids)} rows from {len(self.split.test_repos)} "
            f"repositories ({self.split.test_share:.1%}), train {len(self.split.train_ids)} rows "
            f"from {len(self.split.train_repos)}; "
            + ("current" if not self.split_problems else "; ".join(self.split_problems))
        ]

    def _agreement_lines(self) -> list[str]:
        if self.agreement is None:
            return ["double labels: data/real/double_labels.jsonl absent, kappa not measured"]
        a = self.agreement
        lines = [
            f"double labels: {a.rows} rows, Cohen's kappa {a.kappa:.3f}, raw agreement "
            f"{a.raw_agreement:.1%}, B within A's intent or alt {a.within_alt:.1%}, "
            f"ambiguous flag agreement {a.ambiguous_agreement:.1%}",
            "  labeler confusion (rows: labeler A, the corpus; columns: labeler B)",
            f"    {'':<20} " + " ".join(f"{i[:6]:>6}" for i in INTENTS),
        ]
        lines += [
            f"    {label:<20} " + " ".join(f"{v:>6}" for v in row)
            for label, row in zip(INTENTS, a.confusion)
        ]
        return lines


def over_cap(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Repositories over the per-repository cap, each with its shortfall."""
    totals: Counter[str] = Counter()
    extra: Counter[str] = Counter()
    for row in rows:
        totals[row["source_repo"]] += 1
        extra[row["source_repo"]] += row["intent"] in EXTRA_INTENTS
    out = []
    for repo, total in sorted(totals.items()):
        others = total - extra[repo]
        if total > REPO_CAP_EXTRA or others > REPO_CAP:
            out.append(
                f"{repo}: {total} rows ({others} not security/architecture) > cap "
                f"{REPO_CAP} ({REPO_CAP_EXTRA} with security/architecture extras)"
            )
    return out


def agreement(
    rows: Sequence[Mapping[str, Any]], double: Sequence[Mapping[str, Any]]
) -> tuple[Agreement | None, list[str]]:
    """Cohen's kappa and the labelers' confusion on the double-labelled rows, and what is wrong
    with the double-label file."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    by_id = {row["id"]: row for row in rows}
    problems, pairs, seen = [], [], set()
    for number, label in enumerate(double, 1):
        row_id, intent_b = label.get("id"), label.get("intent_b")
        if row_id not in by_id:
            problems.append(f"double_labels.jsonl:{number}: id {row_id!r} is not in the corpus")
        elif intent_b not in INTENTS:
            problems.append(f"double_labels.jsonl:{number}: unknown intent_b {intent_b!r}")
        elif row_id in seen:
            problems.append(f"double_labels.jsonl:{number}: id {row_id} labelled twice")
        else:
            seen.add(row_id)
            pairs.append((by_id[row_id], label))
    if not pairs:
        return None, problems
    a = [row["intent"] for row, _ in pairs]
    b = [label["intent_b"] for _, label in pairs]
    n = len(pairs)
    return Agreement(
        rows=n,
        kappa=float(cohen_kappa_score(a, b, labels=list(INTENTS))),
        raw_agreement=sum(x == y for x, y in zip(a, b)) / n,
        within_alt=sum(
            label["intent_b"] in (row["intent"], row["alt_intent"]) for row, label in pairs
        )
        / n,
        ambiguous_agreement=sum(
            bool(label.get("ambiguous_b")) == row["ambiguous"] for row, label in pairs
        )
        / n,
        confusion=confusion_matrix(a, b, labels=list(INTENTS)).tolist(),
    ), problems


def check_corpus(
    rows: Sequence[Mapping[str, Any]],
    authored_texts: Sequence[str],
    split: RealSplit | None,
    double: Sequence[Mapping[str, Any]] | None,
) -> CorpusReport:
    """The report over validated corpus rows, with the floors they miss."""
    kinds = [row["origin"] for row in rows] + ["authored"] * len(authored_texts)
    texts = [row["text"] for row in rows] + list(authored_texts)
    pairs = near_duplicate_pairs(texts, NEAR_DUPLICATE_JACCARD)
    test_ids = set(split.test_ids) if split else set()
    across = sum(
        1
        for i, j, _ in pairs
        if j < len(rows) and (rows[i]["id"] in test_ids) != (rows[j]["id"] in test_ids)
    )
    agreed, double_problems = agreement(rows, double) if double is not None else (None, [])
    report = CorpusReport(
        total=len(rows),
        labels=Counter(row["intent"] for row in rows),
        source_types=Counter(row["source_type"] for row in rows),
        kinds=Counter(kinds),
        repositories=Counter(row["source_repo"] for row in rows),
        ambiguous=sum(bool(row["ambiguous"]) for row in rows),
        near_duplicates=Counter(tuple(sorted((kinds[i], kinds[j]))) for i, j, _ in pairs),  # type: ignore[misc]
        near_duplicates_across_split=across,
        over_cap=over_cap(rows),
        split=split,
        split_problems=split_problems(rows, split),
        agreement=agreed,
        double_label_problems=double_problems,
    )
    report.failures = floors_missed(report)
    return report


def floors_missed(report: CorpusReport) -> list[str]:
    """Each floor the corpus misses, with the measured value and the shortfall."""
    missed = []
    if report.total < MIN_ROWS:
        missed.append(
            f"real rows: {report.total} < {MIN_ROWS} (short by {MIN_ROWS - report.total})"
        )
    repos = len(report.repositories)
    if repos < MIN_REPOSITORIES:
        missed.append(
            f"distinct repositories: {repos} < {MIN_REPOSITORIES} "
            f"(short by {MIN_REPOSITORIES - repos})"
        )
    if report.repositories:
        repo, count = report.repositories.most_common(1)[0]
        share = count / report.total
        if share > MAX_SOURCE_SHARE:
            missed.append(
                f"{repo} holds {share:.1%} of the corpus > {MAX_SOURCE_SHARE:.0%} "
                f"({count - int(MAX_SOURCE_SHARE * report.total)} rows too many)"
            )
    missed += report.over_cap + report.split_problems + report.double_label_problems
    return missed
