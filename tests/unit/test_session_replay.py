"""The session replay: per-turn against sticky routing of one conversation, and the shipped
conversation set (built from the real test split, provenance kept, current)."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from intent_router.config import DEFAULT_CONFIG, load_config, parse_config
from intent_router.evaluation.session_replay import (
    ConversationTokens,
    TurnRoute,
    per_turn_deployments,
    replay_session,
    sticky_deployments,
    under_routed,
)
from intent_router.evaluation.sessions import CONVERSATIONS, load_conversations
from training.conversations import write_conversations
from training.real_corpus import PERMISSIVE_LICENCES, read_rows

CONFIG = load_config()
KIMI, CLAUDE = "kimi-k2.6", "claude-sonnet-4"


def _route(intent: str, confidence: float = 0.9) -> TurnRoute:
    return TurnRoute(intent, confidence, CONFIG.policy[intent])


def test_per_turn_routing_follows_every_turns_intent_and_sticky_keeps_the_first() -> None:
    routes = [
        _route("code_generation"),
        _route("debugging", 0.5),
        _route("code_generation"),
        _route("general"),
    ]
    assert per_turn_deployments(routes, CONFIG, random.Random(0)) == [KIMI, CLAUDE, KIMI, KIMI]
    answered, outcomes = sticky_deployments(routes, CONFIG, random.Random(0))
    assert answered == [KIMI] * 4  # debugging at 0.5 is below the upgrade confidence
    assert outcomes == ["new", "stuck", "stuck", "stuck"]


def test_a_confident_high_stakes_turn_upgrades_the_session_and_it_never_moves_down() -> None:
    routes = [_route("code_generation"), _route("security_audit", 0.95), _route("documentation")]
    answered, outcomes = sticky_deployments(routes, CONFIG, random.Random(0))
    assert answered == [KIMI, CLAUDE, CLAUDE] and outcomes == ["new", "upgraded", "stuck"]


def test_a_session_sticks_to_its_group_member_while_per_turn_draws_one_every_turn() -> None:
    raw = copy.deepcopy(yaml.safe_load(DEFAULT_CONFIG.read_text()))
    raw["deployments"][KIMI].update(group="kimi")
    raw["deployments"]["kimi-k2.6-together"].update(group="kimi")
    config = parse_config(raw)
    routes = [TurnRoute("general", 0.9, config.policy["general"])] * 40
    assert len(set(per_turn_deployments(routes, config, random.Random(1)))) == 2
    answered, _ = sticky_deployments(routes, config, random.Random(1))
    assert len(set(answered)) == 1


def test_sticking_saves_switches_and_cache_misses() -> None:
    routes = [
        _route("code_generation"),
        _route("debugging", 0.5),
        _route("code_generation"),
        _route("debugging", 0.6),
    ]
    tokens = ConversationTokens("c", (50, 20, 30, 10), (800, 600, 800, 600))
    replay = replay_session(tokens, routes, CONFIG, prefix_tokens=4000, kept=False)
    assert (replay.per_turn.switches, replay.sticky.switches) == (3, 0)
    assert replay.per_turn.cached_tokens == 0 and replay.sticky.cached_tokens > 0
    assert replay.sticky.input_cost_usd < replay.sticky.list_input_cost_usd


def _corpus() -> dict[str, dict[str, Any]]:
    return {row["id"]: row for _, row in read_rows()}


def test_the_shipped_conversations_are_current(tmp_path: Path) -> None:
    rebuilt = tmp_path / "conversations.jsonl"
    write_conversations(rebuilt)
    assert rebuilt.read_text(encoding="utf-8") == CONVERSATIONS.read_text(encoding="utf-8")


def test_every_turn_is_corpus_text_of_the_test_split_with_its_provenance() -> None:
    corpus = _corpus()
    test_ids = set(json.loads((CONVERSATIONS.parent / "real_split.json").read_text())["test_ids"])
    conversations = load_conversations(CONVERSATIONS)
    assert len(conversations) >= 30 and all(3 <= len(c["turns"]) <= 12 for c in conversations)
    for conversation in conversations:
        assert conversation["origin"] == "verbatim" or conversation["origin"] == "style_rewrite"
        if conversation["origin"] == "verbatim":
            assert conversation["license"] in PERMISSIVE_LICENCES
        turns = [t["turn"] for t in conversation["turns"]]
        assert turns == sorted(set(turns))
        for turn in conversation["turns"]:
            row = corpus[turn["id"] or turn["from_context_of"]]
            assert row["id"] in test_ids
            for field in ("source_repo", "path", "commit", "license", "source_type", "origin"):
                assert conversation[field] == row[field]
            if turn["id"] is not None:
                assert (turn["text"], turn["intent"], turn["turn"]) == (
                    row["text"],
                    row["intent"],
                    row["turn"],
                )
            else:  # an unrecorded turn between two rows: the later row's recorded context
                assert turn["text"] in row["context"] and turn["intent"] is None


def test_the_set_mixes_intents_so_per_turn_routing_has_something_to_switch_on() -> None:
    intents = Counter(
        t["intent"] for c in load_conversations(CONVERSATIONS) for t in c["turns"] if t["intent"]
    )
    assert len(intents) >= 5


def test_under_routing_counts_labelled_high_stakes_turns_answered_below_their_policy() -> None:
    routes = [_route("code_generation"), _route("debugging", 0.5), _route("security_audit", 0.95)]
    tokens = ConversationTokens("c", (10, 10, 10), (100, 100, 100))
    replay = replay_session(tokens, routes, CONFIG, prefix_tokens=0)
    labels = ["code_generation", "debugging", "security_audit"]
    assert under_routed(replay.per_turn, labels, CONFIG) == (0, 2)  # Claude answered both
    assert under_routed(replay.sticky, labels, CONFIG) == (1, 2)  # debugging at 0.5 stuck on Kimi
    assert under_routed(replay.sticky, [None, None, "general"], CONFIG) == (0, 0)
