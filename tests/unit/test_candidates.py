from sklearn.pipeline import Pipeline

from training.candidates import TIE_TOLERANCE, Candidate, choose, default_candidates


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
    assert "lr_word12_baseline" in names and any("svm" in n for n in names)
    assert len(set(names)) == len(names)
