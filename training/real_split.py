"""The fixed real test split (data/real_split.json): whole repositories on one side only,
at least 20% of the real corpus, stratified by intent as far as whole repositories allow.

Repositories are visited in an order seeded by SEED and each goes to test when that brings
the test side's per-intent counts closer to TARGET_TEST_SHARE of each intent's rows; if the
test side is still under MIN_TEST_SHARE, the train repositories that disturb stratification
least move over. A repository already in the split file keeps its side (`make split`
assigns only new ones), so adding rows never moves a prompt between train and test;
`--rebuild` recomputes every assignment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from intent_router.labels import INTENTS
from training.dataset import DATA_DIR

SPLIT_FILE: Final[Path] = DATA_DIR / "real_split.json"
SEED: Final[int] = 42
TARGET_TEST_SHARE: Final[float] = 0.22
MIN_TEST_SHARE: Final[float] = 0.20
TEST, TRAIN = "test", "train"


@dataclass(frozen=True)
class RealSplit:
    """Which repositories (and so which rows) are held out."""

    seed: int
    test_repos: tuple[str, ...]
    train_repos: tuple[str, ...]
    test_ids: tuple[str, ...]
    train_ids: tuple[str, ...]

    def side_of(self, repo: str) -> str | None:
        if repo in self.test_repos:
            return TEST
        return TRAIN if repo in self.train_repos else None

    @property
    def test_share(self) -> float:
        return len(self.test_ids) / max(len(self.test_ids) + len(self.train_ids), 1)

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "seed": self.seed,
                    "method": "whole repositories; seeded greedy stratification by intent "
                    f"(target {TARGET_TEST_SHARE:.0%}, floor {MIN_TEST_SHARE:.0%}); "
                    "training/real_split.py",
                    "test_rows": len(self.test_ids),
                    "train_rows": len(self.train_ids),
                    "test_repos": list(self.test_repos),
                    "train_repos": list(self.train_repos),
                    "test_ids": list(self.test_ids),
                    "train_ids": list(self.train_ids),
                },
                indent=1,
            )
            + "\n"
        )

    @classmethod
    def from_json(cls, text: str) -> RealSplit:
        raw = json.loads(text)
        return cls(
            int(raw["seed"]),
            *(tuple(raw[k]) for k in ("test_repos", "train_repos", "test_ids", "train_ids")),
        )


def _order(repo: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{repo}".encode()).hexdigest()


def _cost(counts: Mapping[str, int], targets: Mapping[str, float]) -> float:
    """How far the test side's per-intent counts are from their targets (relative squares)."""
    return sum(
        (counts.get(label, 0) - target) ** 2 / max(target, 1.0) for label, target in targets.items()
    )


def assign_repositories(
    rows: Sequence[Mapping[str, Any]],
    seed: int = SEED,
    previous: Mapping[str, str] | None = None,
    target: float = TARGET_TEST_SHARE,
    floor: float = MIN_TEST_SHARE,
) -> dict[str, str]:
    """repository -> "test" or "train" for every repository of ``rows``."""
    per_repo: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        per_repo[row["source_repo"]][row["intent"]] += 1
    totals = Counter(row["intent"] for row in rows)
    targets = {label: target * totals[label] for label in INTENTS}
    sides = {repo: side for repo, side in (previous or {}).items() if repo in per_repo}
    test_counts: Counter[str] = Counter()
    for repo, side in sides.items():
        if side == TEST:
            test_counts.update(per_repo[repo])
    new = sorted((r for r in per_repo if r not in sides), key=lambda r: _order(r, seed))
    for repo in new:
        better = _cost(test_counts + per_repo[repo], targets) < _cost(test_counts, targets)
        sides[repo] = TEST if better else TRAIN
        if better:
            test_counts.update(per_repo[repo])
    movable = [r for r in new if sides[r] == TRAIN] or [r for r in per_repo if sides[r] == TRAIN]
    while sum(test_counts.values()) < floor * len(rows) and movable:
        repo = min(
            movable, key=lambda r: (_cost(test_counts + per_repo[r], targets), _order(r, seed))
        )
        movable.remove(repo)
        sides[repo] = TEST
        test_counts.update(per_repo[repo])
    return sides


def make_split(
    rows: Sequence[Mapping[str, Any]], sides: Mapping[str, str], seed: int = SEED
) -> RealSplit:
    """The split file's content for these rows and repository sides."""
    test_ids = sorted(r["id"] for r in rows if sides[r["source_repo"]] == TEST)
    train_ids = sorted(r["id"] for r in rows if sides[r["source_repo"]] == TRAIN)
    return RealSplit(
        seed,
        tuple(sorted(r for r, s in sides.items() if s == TEST)),
        tuple(sorted(r for r, s in sides.items() if s == TRAIN)),
        tuple(test_ids),
        tuple(train_ids),
    )


def read_split(path: Path = SPLIT_FILE) -> RealSplit | None:
    """The committed split, or None when there is none yet."""
    return (
        RealSplit.from_json(Path(path).read_text(encoding="utf-8")) if Path(path).exists() else None
    )


def split_problems(rows: Sequence[Mapping[str, Any]], split: RealSplit | None) -> list[str]:
    """Why ``split`` is not the current split of ``rows`` (empty when it is)."""
    if not rows:
        return []
    if split is None:
        return ["no data/real_split.json: run `make split`"]
    problems = []
    both = set(split.test_repos) & set(split.train_repos)
    if both:
        problems.append(f"{len(both)} repositories on both sides of the real split")
    unassigned = sorted({r["source_repo"] for r in rows if split.side_of(r["source_repo"]) is None})
    if unassigned:
        problems.append(
            f"{len(unassigned)} repositories not in the real split (e.g. "
            f"{unassigned[0]}): run `make split`"
        )
    expected = make_split(
        rows,
        {repo: split.side_of(repo) or TRAIN for repo in {r["source_repo"] for r in rows}},
        split.seed,
    )
    if (expected.test_ids, expected.train_ids) != (split.test_ids, split.train_ids):
        problems.append("the real split's ids are not the corpus's: run `make split`")
    if split.test_share < MIN_TEST_SHARE:
        problems.append(
            f"real test split {split.test_share:.1%} < {MIN_TEST_SHARE:.0%} of the corpus"
        )
    return problems


def rows_by_side(
    rows: Sequence[dict[str, Any]], split: RealSplit
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train rows, test rows) in corpus order."""
    test = set(split.test_ids)
    return [r for r in rows if r["id"] not in test], [r for r in rows if r["id"] in test]


def load_split_rows(
    real_dir: Path, split_file: Path | None = SPLIT_FILE
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train rows, test rows) of the validated corpus in ``real_dir``, by the committed split
    (which must be current), or by a fresh one when ``split_file`` is None."""
    from training.real_corpus import load_real_rows

    rows = load_real_rows(real_dir)
    if not rows:
        return [], []
    if split_file is None:
        split = make_split(rows, assign_repositories(rows))
    else:
        split = read_split(split_file)
        problems = split_problems(rows, split)
        if split is None or problems:
            raise ValueError(f"{split_file}: " + "; ".join(problems))
    return rows_by_side(rows, split)


def build(path: Path = SPLIT_FILE, rebuild: bool = False, seed: int = SEED) -> RealSplit:
    """Write the split file for the current corpus, keeping existing assignments unless
    ``rebuild``."""
    from training.real_corpus import load_real_rows

    rows = load_real_rows()
    previous = None if rebuild else read_split(path)
    kept = None
    if previous is not None:
        kept = {
            **{r: TRAIN for r in previous.train_repos},
            **{r: TEST for r in previous.test_repos},
        }
    split = make_split(rows, assign_repositories(rows, seed, kept), seed)
    Path(path).write_text(split.to_json(), encoding="utf-8")
    return split


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rebuild", action="store_true", help="reassign every repository")
    args = parser.parse_args(argv)
    split = build(rebuild=args.rebuild)
    print(
        f"wrote {SPLIT_FILE.name}: test {len(split.test_ids)} rows from "
        f"{len(split.test_repos)} repositories ({split.test_share:.1%}), train "
        f"{len(split.train_ids)} rows from {len(split.train_repos)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
