"""The real test split: whole repositories, at least 20%, stratified, stable, seeded."""

from __future__ import annotations

import json
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from intent_router.labels import INTENTS
from tests.conftest import FIXTURES
from training.real_split import (
    MIN_TEST_SHARE,
    TEST,
    TRAIN,
    RealSplit,
    assign_repositories,
    make_split,
    rows_by_side,
    split_problems,
)

SAMPLE = [json.loads(line) for line in (FIXTURES / "real_sample.jsonl").read_text().splitlines()]


def _rows(spec: list[tuple[str, str, int]]) -> list[dict[str, str]]:
    return [
        {"id": f"{repo}-{intent}-{i}", "source_repo": repo, "intent": intent}
        for repo, intent, n in spec
        for i in range(n)
    ]


def test_no_repository_is_on_both_sides_and_the_test_side_is_large_enough() -> None:
    split = make_split(SAMPLE, assign_repositories(SAMPLE))
    assert not set(split.test_repos) & set(split.train_repos)
    assert split.test_share >= MIN_TEST_SHARE
    train, test = rows_by_side(SAMPLE, split)
    assert {r["source_repo"] for r in train}.isdisjoint({r["source_repo"] for r in test})
    assert len(train) + len(test) == len(SAMPLE)
    assert split_problems(SAMPLE, split) == []


def test_the_split_is_seeded_and_deterministic() -> None:
    assert assign_repositories(SAMPLE, seed=1) == assign_repositories(
        list(reversed(SAMPLE)), seed=1
    )
    many = _rows([(f"o/r{i}", INTENTS[i % 7], 5) for i in range(70)])
    assert assign_repositories(many, seed=1) != assign_repositories(many, seed=2)


def test_the_test_side_is_stratified_when_repositories_allow() -> None:
    rows = _rows([(f"o/r{i}", INTENTS[i % 7], 5) for i in range(140)])
    split = make_split(rows, assign_repositories(rows))
    _, test = rows_by_side(rows, split)
    shares = [n / 100 for n in Counter(r["intent"] for r in test).values()]
    assert len(shares) == 7 and min(shares) >= 0.2 and max(shares) <= 0.25


def test_adding_repositories_never_moves_an_existing_one() -> None:
    rows = _rows([(f"o/r{i}", INTENTS[i % 7], 3) for i in range(60)])
    before = assign_repositories(rows)
    more = rows + _rows([(f"new/r{i}", INTENTS[i % 7], 4) for i in range(20)])
    after = assign_repositories(more, previous=before)
    assert {repo: after[repo] for repo in before} == before
    assert make_split(more, after).test_share >= MIN_TEST_SHARE


def test_a_stale_split_is_reported() -> None:
    rows = _rows([("o/a", "general", 8), ("o/b", "debugging", 2)])
    split = make_split(rows, {"o/a": TRAIN, "o/b": TEST})
    assert split_problems(rows, split) == []
    more = rows + _rows([("o/c", "general", 1)])
    assert any("not in the real split" in p for p in split_problems(more, split))
    small = make_split(rows, {"o/a": TRAIN, "o/b": TRAIN})
    assert any("< 20%" in p for p in split_problems(rows, small))
    assert split_problems(rows, None) == ["no data/real_split.json: run `make split`"]
    assert split_problems(rows, RealSplit.from_json(split.to_json())) == []


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(1, 12)), min_size=2, max_size=40),
    st.integers(0, 10),
)
def test_any_corpus_gets_a_valid_split(repos: list[tuple[int, int]], seed: int) -> None:
    rows = _rows([(f"o/r{i}", INTENTS[label], n) for i, (label, n) in enumerate(repos)])
    sides = assign_repositories(rows, seed=seed)
    split = make_split(rows, sides)
    assert set(sides) == {r["source_repo"] for r in rows}
    assert split.test_share >= MIN_TEST_SHARE
    assert split_problems(rows, split) == []
