"""Session replay: ``python -m intent_router.evaluation.sessions`` (run by ``make eval``).

Replays every conversation of ``data/conversations.jsonl`` (multi-turn agent sessions from the
real test split, built by ``python -m training.conversations``) turn by turn through the
routing decision (the committed classifier with the conversation rule, the confidence
threshold, the intent policy; escalated turns keep the local label, as ``make eval``'s
``--escalation local``), once routing every turn on its own and once under sticky sessions
(``router.sessions``), and compares model switches per session and input cost with the
providers' prompt-cache discounts (evaluation/session_cost.py has the cost model and its
assumptions). Logs both to MLflow (experiment ``routing-eval``, run ``session-replay``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from intent_router.classifier import DEFAULT_MODELS_DIR, IntentClassifier
from intent_router.config import DEFAULT_CONFIG, RouterConfig, load_config
from intent_router.evaluation.conversation import classify
from intent_router.evaluation.data import DataFileError
from intent_router.evaluation.session_cost import totals
from intent_router.evaluation.session_replay import (
    ConversationTokens,
    SessionReplay,
    TurnRoute,
    replay_session,
    under_routed,
)
from intent_router.exceptions import ConfigError, ModelError
from intent_router.routing.policy import choose_chain
from intent_router.tokens import count_tokens

DATA_DIR: Final[Path] = Path(__file__).resolve().parents[3] / "data"
CONVERSATIONS: Final[Path] = DATA_DIR / "conversations.jsonl"
AGENT_PREFIX_TOKENS: Final[int] = 4000
"""Tokens an agent sends before the conversation every turn (system prompt, tool definitions,
repository map): aider's system prompt and default 1,024-token repository map come to a few
thousand; Claude Code's system prompt and tools are several times more."""
POLICIES: Final[tuple[str, ...]] = ("per_turn", "sticky")


@dataclass(frozen=True)
class ReplayResult:
    """Every conversation replayed under both policies, and the totals of each policy."""

    sessions: tuple[SessionReplay, ...]
    under_routed: dict[str, tuple[int, int]]  # policy -> (under-routed, high-stakes) turns
    prefix_tokens: int
    threshold: float
    model_version: str
    cache_kept: bool = True  # a deployment's cache outlives a switch away from it

    def totals(self, policy: str) -> dict[str, float]:
        under, stakes = self.under_routed[policy]
        return {
            **totals({s.conversation: getattr(s, policy) for s in self.sessions}),
            "under_routed_high_stakes_turns": float(under),
            "under_routing_share": under / stakes if stakes else 0.0,
        }

    def metrics(self) -> dict[str, float]:
        """``<policy>_<total>`` for both policies, and the sticky rule's outcome counts."""
        metrics = {
            f"{policy}_{key}": value
            for policy in POLICIES
            for key, value in self.totals(policy).items()
        }
        outcomes = Counter(o for s in self.sessions for o in s.sticky_outcomes)
        metrics.update(
            {f"sticky_turns_{outcome}": float(count) for outcome, count in outcomes.items()}
        )
        return metrics


def load_conversations(path: Path) -> list[dict[str, Any]]:
    """The conversations of a JSONL file, each with at least one turn of text."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataFileError(f"cannot read {path}: {exc}") from exc
    conversations = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            conversation = json.loads(line)
            texts = [t["text"] for t in conversation["turns"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise DataFileError(
                f"{path}:{number}: not a conversation with turns of text ({exc})"
            ) from exc
        if (
            not texts
            or not all(isinstance(t, str) and t for t in texts)
            or not isinstance(conversation.get("id"), str)
        ):
            raise DataFileError(f"{path}:{number}: a conversation needs an id and turns of text")
        conversations.append(conversation)
    if not conversations:
        raise DataFileError(f"{path}: no conversations")
    return conversations


def route_turns(
    texts: Sequence[str], classifier: IntentClassifier, config: RouterConfig
) -> list[TurnRoute]:
    """How the router routes each turn on its own text (and its earlier turns, by the rule)."""
    routes = []
    for index in range(len(texts)):
        prediction = classify(classifier, texts[: index + 1], config.conversation)
        chain = choose_chain(config, prediction.intent).chain
        routes.append(TurnRoute(prediction.intent, prediction.confidence, chain))
    return routes


def replay_conversations(
    conversations: Sequence[dict[str, Any]],
    classifier: IntentClassifier,
    config: RouterConfig,
    prefix_tokens: int = AGENT_PREFIX_TOKENS,
    kept: bool = True,
) -> ReplayResult:
    sessions = []
    under = {policy: [0, 0] for policy in POLICIES}
    for conversation in conversations:
        texts = [t["text"] for t in conversation["turns"]]
        # Answer lengths by the turn's labelled intent (unlabelled turns: general): the same
        # conversation, whoever answers.
        replies = tuple(
            config.output_tokens[t.get("intent") or "general"] for t in conversation["turns"]
        )
        tokens = ConversationTokens(
            conversation["id"], tuple(count_tokens(t) for t in texts), replies
        )
        routes = route_turns(texts, classifier, config)
        replayed = replay_session(tokens, routes, config, prefix_tokens, kept=kept)
        sessions.append(replayed)
        for policy in POLICIES:
            counts = under_routed(
                getattr(replayed, policy), [t.get("intent") for t in conversation["turns"]], config
            )
            under[policy] = [under[policy][0] + counts[0], under[policy][1] + counts[1]]
    threshold = (
        config.confidence_threshold
        if config.confidence_threshold is not None
        else classifier.threshold
    )
    return ReplayResult(
        tuple(sessions),
        {p: (u[0], u[1]) for p, u in under.items()},
        prefix_tokens,
        threshold,
        classifier.version,
        kept,
    )


_ROWS = (
    ("model switches per session", "switches_per_session", "{:.2f}"),
    ("sessions with a switch", "sessions_with_a_switch", "{:.0f}"),
    ("input cost with cache discounts", "input_cost_usd", "${:.4f}"),
    ("input cost at list price (no cache)", "list_input_cost_usd", "${:.4f}"),
    ("cache hit rate (input tokens)", "cache_hit_rate", "{:.3f}"),
    ("output cost", "output_cost_usd", "${:.4f}"),
    ("under-routing, labelled high-stakes turns", "under_routing_share", "{:.3f}"),
)


def format_replay(result: ReplayResult, data: Path) -> str:
    per_turn, sticky = result.totals("per_turn"), result.totals("sticky")
    head = (
        f"session replay: {per_turn['sessions']:.0f} conversations, {per_turn['turns']:.0f} turns "
        f"({data.name}), agent prefix {result.prefix_tokens} tokens, cache after a switch "
        f"{'kept' if result.cache_kept else 'lost'}, model {result.model_version}"
    )
    rows = [("", "per-turn", "sticky")]
    rows += [
        (label, pattern.format(per_turn[key]), pattern.format(sticky[key]))
        for label, key, pattern in _ROWS
    ]
    total = [
        per_turn["input_cost_usd"] + per_turn["output_cost_usd"],
        sticky["input_cost_usd"] + sticky["output_cost_usd"],
    ]
    rows.append(("input (cached) + output", f"${total[0]:.4f}", f"${total[1]:.4f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [head] + [
        f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}" for r in rows
    ]
    switches = {
        policy: Counter(min(getattr(s, policy).switches, 3) for s in result.sessions)
        for policy in POLICIES
    }
    for policy in POLICIES:
        spread = ", ".join(
            f"{'3+' if k == 3 else k}: {switches[policy].get(k, 0)}" for k in range(4)
        )
        lines.append(f"sessions by switches, {policy.replace('_', '-')}: {spread}")
    outcomes = Counter(o for s in result.sessions for o in s.sticky_outcomes)
    lines.append("sticky turns: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m intent_router.evaluation.sessions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=CONVERSATIONS)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    parser.add_argument(
        "--prefix-tokens",
        type=int,
        default=AGENT_PREFIX_TOKENS,
        help="tokens the agent sends before the conversation every turn",
    )
    parser.add_argument(
        "--cache-after-switch",
        choices=("kept", "lost"),
        default="kept",
        help="kept: a session coming back to a deployment reads what it cached there; "
        "lost: a switch loses every cache",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.prefix_tokens < 0:
        return _fail("--prefix-tokens must be >= 0")
    try:
        config = load_config(args.config)
        classifier = IntentClassifier.from_dir(args.models_dir)
        result = replay_conversations(
            load_conversations(args.data),
            classifier,
            config,
            args.prefix_tokens,
            kept=args.cache_after_switch == "kept",
        )
    except (DataFileError, ConfigError, ModelError) as exc:
        return _fail(str(exc))
    print(format_replay(result, args.data))
    if not args.no_mlflow:
        from intent_router.evaluation.report import log_session_replay

        run_id = log_session_replay(result.metrics(), _params(result, args), _per_session(result))
        print(f"MLflow run id: {run_id}")
    return 0


def _params(result: ReplayResult, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "data": str(args.data),
        "config": str(args.config),
        "model_version": result.model_version,
        "prefix_tokens": result.prefix_tokens,
        "threshold": result.threshold,
        "escalation": "local",
        "cache_after_switch": "kept" if result.cache_kept else "lost",
    }


def _per_session(result: ReplayResult) -> dict[str, list[Any]]:
    sessions = result.sessions
    table: dict[str, list[Any]] = {
        "conversation": [s.conversation for s in sessions],
        "turns": [len(s.per_turn.turns) for s in sessions],
    }
    for policy in POLICIES:
        costs = [getattr(s, policy) for s in sessions]
        table[f"{policy}_switches"] = [c.switches for c in costs]
        table[f"{policy}_input_cost_usd"] = [c.input_cost_usd for c in costs]
        table[f"{policy}_deployments"] = [" > ".join(t.deployment for t in c.turns) for c in costs]
    table["sticky_outcomes"] = [" ".join(s.sticky_outcomes) for s in sessions]
    return table


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
