"""The experiment runner scores what candidates.py would build, on train.py's folds."""

from __future__ import annotations

import numpy as np
import pytest

from intent_router.config import ConversationRule
from training import experiments as ex

INTENT_WORDS = {
    "debugging": "fix the crash traceback error failing",
    "code_generation": "add a new endpoint feature function",
    "documentation": "write the readme docstring docs",
    "refactoring": "rename extract simplify clean up",
    "architecture_review": "design the service structure tradeoffs",
    "security_audit": "audit auth injection vulnerability secrets",
    "general": "thanks what is a monad question",
}


def _rows(repos: int = 10) -> list[dict]:
    rows = []
    for r in range(repos):
        for k, (intent, words) in enumerate(sorted(INTENT_WORDS.items())):
            rows.append(
                {
                    "text": f"{words} please {r} {k}",
                    "intent": intent,
                    "source_repo": f"o/r{r}",
                    "origin": "verbatim" if r % 2 else "style_rewrite",
                    "ambiguous": k == 0,
                    "context": ["earlier " + words] if k == 1 else [],
                }
            )
    rows.append(
        {
            "text": "yes",
            "intent": "debugging",
            "source_repo": "o/r0",
            "origin": "verbatim",
            "ambiguous": False,
            "context": ["fix the crash traceback please"],
        }
    )
    return rows


def _data() -> ex.Data:
    authored = [(f"{w} now {i}", intent) for i in range(3) for intent, w in INTENT_WORDS.items()]
    return ex.make_data([t for t, _ in authored], [i for _, i in authored], _rows())


SMALL = ex.Spec("small", (ex.Block("word", (1, 2), 50, 1), ex.Block("char", (2, 3), 80, 1)), c=5.0)


def test_folds_keep_each_repository_on_one_side() -> None:
    data = _data()
    for train, held in ex.folds_of(data, folds=3):
        train_repos = {data.groups[i] for i in train}
        assert not train_repos & {data.groups[i] for i in held}


PRUNED = ex.Spec(
    "pruned",
    (ex.Block("word", (1, 2), 30, 2, punct=True), ex.Block("char", (1, 3), 60, 3)),
    head=40,
    tail=10,
)


@pytest.mark.parametrize("spec", [SMALL, PRUNED], ids=["small", "pruned"])
def test_cached_fold_features_are_the_pipelines_features(spec: ex.Spec) -> None:
    data = _data()
    folds = ex.folds_of(data, folds=3)
    cache = ex.FeatureCache(data, folds, ex.earlier_texts(data))
    train, held = folds[0]
    x_train, x_held, _ = cache.fold(spec, 0)
    features = spec.pipeline().steps[0][1]
    texts = cache.texts(spec.head, spec.tail)
    expected_train = features.fit_transform([texts[i] for i in train])
    expected_held = features.transform([texts[i] for i in held])
    assert np.allclose(x_train.toarray(), expected_train.toarray())
    assert np.allclose(x_held.toarray(), expected_held.toarray())


def test_the_fold_cache_on_disk_gives_the_same_matrices(tmp_path) -> None:
    data = _data()
    folds = ex.folds_of(data, folds=3)
    first = ex.FeatureCache(data, folds, ex.earlier_texts(data), tmp_path).fold(SMALL, 1)
    assert list(tmp_path.iterdir())
    again = ex.FeatureCache(data, folds, ex.earlier_texts(data), tmp_path).fold(SMALL, 1)
    for a, b in zip(first, again):
        assert (a != b).nnz == 0


def test_only_follow_ups_with_context_get_earlier_turns() -> None:
    data = _data()
    earlier = ex.earlier_texts(data, ConversationRule(follow_up_max_chars=32))
    assert all(data.contexts[i] for i in earlier)
    yes = data.texts.index("yes")
    assert earlier[yes] == "fix the crash traceback please"
    long_rows = [i for i in earlier if len(data.texts[i].strip()) > 32]
    assert long_rows == []


def test_weights_follow_the_origin() -> None:
    spec = ex.Spec("w", SMALL.blocks, authored=0.5, verbatim=3.0, style_rewrite=2.0)
    assert spec.weights(["authored", "verbatim", "style_rewrite"]).tolist() == [0.5, 3.0, 2.0]


def test_a_spec_is_scored_on_real_rows_only() -> None:
    data = _data()
    folds = ex.folds_of(data, folds=3)
    cache = ex.FeatureCache(data, folds, ex.earlier_texts(data))
    result, oof = ex.run_spec(SMALL, cache)
    assert oof.shape == (len(data), len(ex.LABELS))
    assert np.allclose(oof.sum(axis=1), 1.0)
    predicted = np.array(ex.LABELS)[oof.argmax(axis=1)]
    real = data.is_real
    assert result.macro_f1 == pytest.approx(ex.macro_f1(data.intents[real], predicted[real]))
    assert 0.0 <= result.escalation <= 1.0 and result.exportable
    assert "small" in ex.table([result])


def test_unexported_specs_say_so() -> None:
    assert ex.Spec("s", SMALL.blocks, classifier="svm").exportable
    sub = ex.Spec("s", (ex.Block("word", (1, 1), None, 1, sublinear=True),))
    assert not sub.exportable and ex.SHIPPED.exportable


def test_every_grid_builds_named_distinct_specs() -> None:
    names = [s.name for grid in ex.GRIDS.values() for s in grid()]
    assert len(names) == len(set(names))
    for spec in (s for grid in ex.GRIDS.values() for s in grid()):
        spec.pipeline()  # every block builds


def test_diagnosis_shows_the_confusion_matrix_and_errors() -> None:
    data = _data()
    folds = ex.folds_of(data, folds=3)
    cache = ex.FeatureCache(data, folds, ex.earlier_texts(data))
    _, oof = ex.run_spec(SMALL, cache)
    text = ex.diagnose(SMALL, data, oof)
    assert "| debugging |" in text and "Worst repositories" in text
    assert "Most confident errors on clear rows" in text


def test_follow_up_rows_can_be_down_weighted() -> None:
    spec = ex.Spec("w", SMALL.blocks, verbatim=2.0, follow_up=0.0)
    assert spec.weights(["verbatim", "verbatim"], [1]).tolist() == [2.0, 0.0]


def test_alt_copies_and_block_weights_run() -> None:
    data = _data()
    folds = ex.folds_of(data, folds=3)
    cache = ex.FeatureCache(data, folds, ex.earlier_texts(data))
    spec = ex.Spec("x", SMALL.blocks, alt_copy=0.5, ambiguous=0.5, block_weights=(1.0, 2.0))
    x_train, _, _ = cache.fold(spec, 0)
    plain, _, _ = cache.fold(SMALL, 0)
    words = len(SMALL.blocks[0].vectorizer().fit([data.texts[i] for i in folds[0][0]]).vocabulary_)
    assert np.allclose(x_train[:, words:].toarray(), 2.0 * plain[:, words:].toarray())
    result, _ = ex.run_spec(spec, cache)
    assert not result.exportable and 0.0 <= result.macro_f1 <= 1.0


def test_the_shipped_spec_is_the_shipped_candidate() -> None:
    from training.candidates import default_candidates

    candidate = next(c for c in default_candidates() if c.name == "lr_word12_char24_20k_real3")
    built, spec = candidate.build(ex.SEED), ex.SHIPPED.pipeline(ex.SEED)
    blocks = [v for _, v in built.steps[0][1].transformer_list]
    ours = [v for _, v in spec.steps[0][1].transformer_list]
    assert [b.get_params() for b in blocks] == [o.get_params() for o in ours]
    assert built.steps[-1][1].get_params() == spec.steps[-1][1].get_params()
    assert (candidate.weights.verbatim, candidate.weights.style_rewrite) == (
        ex.SHIPPED.verbatim / ex.SHIPPED.authored,
        ex.SHIPPED.style_rewrite / ex.SHIPPED.authored,
    )


def test_follow_up_weights_are_reported() -> None:
    data = _data()
    folds = ex.folds_of(data, folds=3)
    cache = ex.FeatureCache(data, folds, ex.earlier_texts(data))
    result, _ = ex.run_spec(SMALL, cache)
    assert set(result.conversation) == {f"{w:g}" for w in ex.CONVERSATION_WEIGHTS}
    assert result.conversation["1"]["macro_f1"] == pytest.approx(result.macro_f1)
    assert result.conversation["0.6"]["macro_f1"] == pytest.approx(result.conv_f1)
    assert result.conversation["1"]["follow_ups"] == 1


def test_svm_softmax_is_the_softmax_of_a_linear_svcs_margins() -> None:
    from scipy.special import softmax
    from sklearn.svm import LinearSVC

    from training.calibration import fold_temperature
    from training.candidates import SvmSoftmax

    data = _data()
    x = SMALL.pipeline().steps[0][1].fit_transform(data.texts)
    model = SvmSoftmax(C=0.1, max_iter=5000, random_state=0).fit(x, data.intents)
    svm = LinearSVC(C=0.1, max_iter=5000, random_state=0).fit(x, data.intents)
    assert list(model.classes_) == ex.LABELS
    expected = softmax(svm.decision_function(x), axis=1)
    np.testing.assert_allclose(model.predict_proba(x), expected, rtol=1e-6)
    assert fold_temperature(model, 0.25)
    expected = softmax(svm.decision_function(x) / 0.25, axis=1)
    np.testing.assert_allclose(model.predict_proba(x), expected, rtol=1e-5)


def test_the_svm_candidate_is_the_linearsvc_spec() -> None:
    from training.candidates import svm_softmax_candidates

    candidate = svm_softmax_candidates()[0]
    spec = next(s for s in ex.GRIDS["unexported"]() if s.name == "linearsvc_c0.1")
    built, ours = candidate.build(ex.SEED), spec.pipeline(ex.SEED)
    assert [v.get_params() for _, v in built.steps[0][1].transformer_list] == [
        v.get_params() for _, v in ours.steps[0][1].transformer_list
    ]
    assert built.steps[-1][1].get_params() == ours.steps[-1][1].get_params()
    assert type(built.steps[-1][1]) is type(ours.steps[-1][1])


def _many_repos() -> ex.Data:
    authored = [(f"{w} now {i}", intent) for i in range(3) for intent, w in INTENT_WORDS.items()]
    return ex.make_data([t for t, _ in authored], [i for _, i in authored], _rows(repos=40))


def _real_repos(data: ex.Data, rows: np.ndarray) -> set[str]:
    return {data.repos[i] for i in rows if data.is_real[i]}


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
def test_the_learning_curve_keeps_whole_repositories_and_the_fraction(fraction: float) -> None:
    data = _many_repos()
    folds = ex.folds_of(data, folds=4)
    sub = ex.subsample_folds(data, folds, fraction, seed=1)
    for (train, held), (kept, kept_held) in zip(folds, sub):
        assert np.array_equal(held, kept_held)  # scored on the same rows
        assert set(kept) <= set(train)
        assert {i for i in train if not data.is_real[i]} <= set(kept)  # authored rows all in
        repos = _real_repos(data, train)
        chosen = _real_repos(data, kept)
        assert len(chosen) == round(fraction * len(repos))
        whole = {i for i in train if data.is_real[i] and data.repos[i] in chosen}
        assert whole == {i for i in kept if data.is_real[i]}  # every row of a kept repository


def test_the_learning_curve_draw_is_fixed_by_its_seed_and_nested() -> None:
    data = _many_repos()
    folds = ex.folds_of(data, folds=4)

    def draw(fraction: float, seed: int) -> list[set[str]]:
        return [_real_repos(data, t) for t, _ in ex.subsample_folds(data, folds, fraction, seed)]

    assert draw(0.5, 1) == draw(0.5, 1)
    assert draw(0.5, 1) != draw(0.5, 2)
    assert all(a <= b for a, b in zip(draw(0.25, 3), draw(0.75, 3)))
    assert ex.subsample_folds(data, folds, 1.0, 7) is folds
    with pytest.raises(ValueError):
        ex.subsample_folds(data, folds, 0.0, 1)


def test_the_learning_curve_grid_scores_fewer_real_rows() -> None:
    data = _many_repos()
    folds = ex.folds_of(data, folds=3)
    full = ex.FeatureCache(data, folds, ex.earlier_texts(data))
    half = ex.FeatureCache(data, ex.subsample_folds(data, folds, 0.5, 1), ex.earlier_texts(data))
    whole, _ = ex.run_spec(SMALL, full)
    part, _ = ex.run_spec(ex.replace(SMALL, real_fraction=0.5, subsample_seed=1), half)
    assert part.real_train_rows == pytest.approx(whole.real_train_rows / 2, rel=0.15)
    specs = ex.GRIDS["learning_curve"]()
    assert sorted({s.real_fraction for s in specs}) == [0.25, 0.5, 0.75, 1.0]
    assert len(specs) == 3 * 3 + 1


def test_the_learning_curve_fit_finds_the_rows_a_target_needs() -> None:
    points = [
        ex.CurvePoint(f, rows, 0.5 + 0.05 * np.log(rows / 500), 0.01, 3)
        for f, rows in [(0.25, 500), (0.5, 1000), (1.0, 2000)]
    ]
    _, b, rows = ex.rows_needed(points, 0.6)
    assert b == pytest.approx(0.05) and rows == pytest.approx(500 * np.exp(2))
    assert "0.80 at about" in ex.curve_table(
        [
            ex.Result(
                "r",
                True,
                p.macro_f1,
                *(0, 0, 0, 0, 0, 1, 0.5, 0, 0, 0),
                spec={"real_fraction": p.fraction},
                real_train_rows=p.real_rows,
            )
            for p in points
        ]
    )
