from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from intent_router.labels import INTENTS
from training.data_check import (
    carries_code,
    check,
    near_duplicate_pairs,
    template_skeleton,
)
from training.dataset import stratified_split


def test_near_duplicates_are_found_and_distinct_prompts_are_not() -> None:
    base = "please refactor the payment service so that retries use exponential backoff"
    texts = [
        base,
        base.replace("payment", "payments"),  # one character more: Jaccard > 0.8
        "why does my docker container exit with code 137 right after it starts",
        "write a bash script that rotates nginx logs every night at midnight",
    ]
    pairs = near_duplicate_pairs(texts)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]
    assert pairs[0][2] >= 0.8


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=60), min_size=2, max_size=12))
def test_prefix_filtering_finds_every_pair_brute_force_finds(texts: list[str]) -> None:
    from training.data_check import shingles

    sets = [shingles(t) for t in texts]
    brute = {
        (i, j)
        for i in range(len(texts))
        for j in range(i + 1, len(texts))
        if len(sets[i] & sets[j]) / max(len(sets[i] | sets[j]), 1) >= 0.8
    }
    assert {(i, j) for i, j, _ in near_duplicate_pairs(texts)} == brute


def test_code_detection_sees_traces_paths_and_fences_but_not_plain_prose() -> None:
    assert carries_code("fix this:\n```py\nprint(x)\n```")
    assert carries_code('Traceback (most recent call last):\n  File "a.py", line 1')
    assert carries_code("the bug is in src/app/routes.ts somewhere")
    assert carries_code("SELECT id FROM users;")
    assert not carries_code("what is the difference between a process and a thread")
    assert not carries_code("thanks that worked")


def test_slot_filled_templates_share_a_skeleton() -> None:
    a = template_skeleton("Rename `getUser` to `fetchUser` in UserService")
    b = template_skeleton("Rename `loadCart` to `fetchCart` in CartService")
    c = template_skeleton("why is my cart empty after login")
    assert a == b != c


def _rows(per_label: int) -> list[dict[str, str]]:
    return [
        {"text": f"prompt number {i} about {label} with words {i * 7}", "intent": label}
        for label in INTENTS
        for i in range(per_label)
    ]


def test_split_is_stratified_and_stable_when_rows_are_added() -> None:
    rows = _rows(50)
    _train, test = stratified_split(rows)
    assert Counter(r["intent"] for r in test) == {label: 10 for label in INTENTS}
    extra = rows + [{"text": "a brand new example", "intent": "general"}]
    _, test_after = stratified_split(extra)
    kept = {r["text"] for r in test} - {r["text"] for r in test_after}
    assert len(kept) <= 1  # only the boundary example of 'general' may move


def test_check_reports_the_floors_a_small_set_misses() -> None:
    rows = _rows(20)
    train, test = stratified_split(rows)
    report = check(rows, train, test)
    assert report.total == 140
    assert any("examples <" in f for f in report.failures)
    assert any("code_generation: 20 <" in f for f in report.failures)
    assert report.train_test_overlap == 0
    assert "examples: 140" in report.lines()[0]


def test_check_flags_train_test_leakage() -> None:
    rows = _rows(20)
    train, test = stratified_split(rows)
    report = check(rows, train + test[:1], test)
    assert report.train_test_overlap == 1
    assert "texts shared between train and test" in report.failures
