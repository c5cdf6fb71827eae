"""Pure rule: which user turns of a conversation the classifier reads, and how they combine.

A short follow-up ("yes do it", "now the tests", "still failing") says little by itself: its
intent is mostly the previous request's. So when the latest user turn is at most
``follow_up_max_chars`` long (stripped), the previous user turns are read too, newest first,
while they fit: at most ``max_turns`` turns in all (the latest included) and ``char_budget``
characters of earlier turns (a turn that does not fit whole is cut to what is left, keeping
its start, where requests say what they want). The earlier turns are joined and classified as
one text; the two probability vectors are mixed, weighted toward the latest turn:

    p = latest_weight * p(latest) + (1 - latest_weight) * p(earlier turns)

A follow-up that carries an intent of its own ("now write the docs") keeps it, since the
latest turn weighs more. A longer latest turn is classified alone, as before. The defaults and
their measurement on the real corpus rows that carry ``context`` are in the README
("Conversations").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from intent_router.config import ConversationRule
from intent_router.types import Prediction


@dataclass(frozen=True)
class TurnSelection:
    """What to classify: the latest turn, the earlier turns joined (empty: none), and the
    positions of every turn used among the conversation's user turns, oldest first."""

    latest: str
    earlier: str
    turns: tuple[int, ...]


def select_turns(
    user_turns: Sequence[str], rule: ConversationRule = ConversationRule()
) -> TurnSelection:
    """The turns read for a conversation whose user turns are ``user_turns`` (oldest first,
    the latest last). No turns: empty texts and no positions."""
    if not user_turns:
        return TurnSelection("", "", ())
    last = len(user_turns) - 1
    latest = user_turns[last]
    alone = TurnSelection(latest, "", (last,))
    if not rule.enabled or len(latest.strip()) > rule.follow_up_max_chars:
        return alone
    chosen: list[tuple[int, str]] = []
    budget = rule.char_budget
    for index in range(last - 1, -1, -1):
        if len(chosen) + 1 >= rule.max_turns or budget <= 0:
            break
        turn = user_turns[index].strip()
        if turn:
            chosen.insert(0, (index, turn[:budget]))
            budget -= len(turn)
    if not chosen:
        return alone
    return TurnSelection(latest, "\n".join(t for _, t in chosen), (*(i for i, _ in chosen), last))


def mix_predictions(latest: Prediction, earlier: Prediction, latest_weight: float) -> Prediction:
    """The weighted mix of two predictions over the same labels; its argmax and confidence."""
    mixed = {
        label: latest_weight * p + (1.0 - latest_weight) * earlier.probabilities[label]
        for label, p in latest.probabilities.items()
    }
    best = max(mixed, key=mixed.__getitem__)
    return Prediction(best, mixed[best], mixed, latest.truncated or earlier.truncated)
