from sklearn.pipeline import Pipeline

from training.candidates import (
    TIE_TOLERANCE,
    Candidate,
    SampleWeights,
    choose,
    default_candidates,
    extra_candidates,
)


def _candidate(name: str, cost: int) -> Candidate:
    return Candidate(name, name, lambda seed: Pipeline([]), runtime_cost=cost)


def test_the_best_macro_f1_wins_when_clearly_ahead() -> None:
    cands = [_candidate("cheap", 1), _candidate("dear", 5)]
    chosen, why = choose({"cheap": 0.80, "dear": 0.90}, cands)
    assert chosen.name == "dear" and "highest" in why


def test_a_cheaper_candidate_wins_a_tie() -> None:
    cands = [_candidate("cheap", 1), _candidate("dear", 5)]
    chosen, why = choose({"cheap": 0.90 - TIE_TOLERANCE / 2, "dear": 0.90}, cands)
    assert chosen.name == "cheap" and "dear" in why


def test_default_candidates_include_the_required_baseline() -> None:
    names = [c.name for c in default_candidates()]
    assert "lr_word12_baseline" in names and any("char" in n for n in names)
    assert any(not c.weights.uniform for c in default_candidates())
    every = names + [c.name for c in extra_candidates()]
    assert any("svm" in n for n in every)
    assert len(set(every)) == len(every)


def test_sample_weights_follow_the_row_origin() -> None:
    weights = SampleWeights(verbatim=3.0, style_rewrite=0.5)
    assert weights.of(["authored", "verbatim", "style_rewrite"]).tolist() == [1.0, 3.0, 0.5]
    weighted = next(c for c in default_candidates() if not c.weights.uniform)
    params = weighted.fit_params(["authored", "verbatim"])
    assert list(params) == ["clf__sample_weight"] and len(params["clf__sample_weight"]) == 2
    assert default_candidates()[0].fit_params(["verbatim"]) == {}
