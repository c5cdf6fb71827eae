"""The real corpus's floors in `make data-check`, on fixture corpora."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from sklearn.metrics import cohen_kappa_score

from intent_router.labels import INTENTS
from tests.conftest import FIXTURES
from training.corpus_check import agreement, check_corpus, over_cap
from training.real_split import assign_repositories, make_split

SAMPLE = [json.loads(line) for line in (FIXTURES / "real_sample.jsonl").read_text().splitlines()]


def corpus(repos: int, per_repo: int, intents: tuple[str, ...] = INTENTS) -> list[dict[str, Any]]:
    """Fixture rows shaped like the corpus: ``repos`` repositories of ``per_repo`` rows."""
    base = {**SAMPLE[0], "origin": "verbatim"}
    return [
        {
            **base,
            "id": f"{r:04d}{i:04d}",
            "text": hashlib.sha256(f"{r}:{i}".encode()).hexdigest(),
            "source_repo": f"owner/repo{r}",
            "intent": intents[(r + i) % len(intents)],
        }
        for r in range(repos)
        for i in range(per_repo)
    ]


def report_of(rows: list[dict[str, Any]], double: list[dict[str, Any]] | None = None):
    split = make_split(rows, assign_repositories(rows))
    return check_corpus(rows, [], split, double)


def test_a_corpus_meeting_every_floor_passes() -> None:
    report = report_of(corpus(160, 16))  # 2,560 rows from 160 repositories
    assert report.failures == []
    assert report.kinds["verbatim"] + report.kinds["style_rewrite"] == 2560
    assert "current" in "\n".join(report.lines())


def test_too_few_rows_and_repositories_fail_with_the_shortfall() -> None:
    report = report_of(corpus(100, 20))
    assert "real rows: 2000 < 2500 (short by 500)" in report.failures
    assert "distinct repositories: 100 < 150 (short by 50)" in report.failures


def test_one_source_above_a_quarter_fails() -> None:
    rows = corpus(160, 16)
    big = [{**r, "source_repo": "owner/big"} for r in rows[:700]]
    report = report_of(big + rows[700:])
    assert any(f.startswith("owner/big holds 27.3% of the corpus > 25%") for f in report.failures)


@pytest.mark.parametrize(
    ("counts", "over"),
    [
        ({"code_generation": 30}, False),
        ({"code_generation": 31}, True),
        ({"code_generation": 30, "security_audit": 10}, False),
        ({"code_generation": 25, "architecture_review": 15}, False),
        ({"code_generation": 30, "security_audit": 5, "architecture_review": 6}, True),
        ({"debugging": 31, "security_audit": 5}, True),
    ],
)
def test_the_per_repository_cap(counts: dict[str, int], over: bool) -> None:
    rows = [
        {"source_repo": "o/r", "intent": intent} for intent, n in counts.items() for _ in range(n)
    ]
    assert bool(over_cap(rows)) is over


def test_kappa_and_confusion_from_double_labels() -> None:
    rows = SAMPLE[:40]
    flipped = {rows[i]["id"] for i in range(0, 40, 5)}
    double = [
        {
            "id": r["id"],
            "intent_b": "general" if r["id"] in flipped else r["intent"],
            "ambiguous_b": r["ambiguous"],
            "labeler_b": "labeler-2",
        }
        for r in rows
    ]
    agreed, problems = agreement(rows, double)
    assert problems == [] and agreed is not None
    expected = cohen_kappa_score([r["intent"] for r in rows], [d["intent_b"] for d in double])
    assert agreed.kappa == pytest.approx(expected)
    assert agreed.rows == 40 and agreed.ambiguous_agreement == 1.0
    assert sum(map(sum, agreed.confusion)) == 40
    general = INTENTS.index("general")
    assert sum(row[general] for row in agreed.confusion) >= 8


def test_a_bad_double_label_fails_the_check() -> None:
    rows = corpus(160, 16)
    double = [
        {"id": rows[0]["id"], "intent_b": "debugging"},
        {"id": "nope", "intent_b": "general"},
        {"id": rows[1]["id"], "intent_b": "testing"},
    ]
    report = report_of(rows, double)
    assert report.agreement is not None and report.agreement.rows == 1
    assert any("'nope' is not in the corpus" in f for f in report.failures)
    assert any("unknown intent_b 'testing'" in f for f in report.failures)
    assert "Cohen's kappa" in "\n".join(report.lines())


def test_near_duplicates_are_counted_by_kind_and_across_the_split() -> None:
    rows = corpus(160, 16)
    rows[1]["text"] = rows[0]["text"] + "!"  # same repository: same side
    report = check_corpus(
        rows, [rows[5]["text"]], make_split(rows, assign_repositories(rows)), None
    )
    assert report.near_duplicates[("verbatim", "verbatim")] >= 1
    assert report.near_duplicates[("authored", "verbatim")] >= 1
    assert report.near_duplicates_across_split == 0
