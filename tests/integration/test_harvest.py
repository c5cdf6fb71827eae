"""`make harvest`: escalated and corrected decisions become training rows that load."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from intent_router.config import DEFAULT_CONFIG
from intent_router.decisions import Decision, DecisionStore, Feedback
from intent_router.decisions.harvest import main
from training.dataset import load_prompts


def _decision(request_id: str, text: str | None, **fields) -> Decision:
    base = dict(
        request_id=request_id,
        created_at=time.time(),
        endpoint="chat",
        status="ok",
        intent="debugging",
        confidence=0.4,
        source="llm",
        chain=("claude-sonnet-4",),
        model_version="v1",
        prompt_sha256="0" * 64,
        prompt_text=text,
        llm_label="debugging",
    )
    base.update(fields)
    return Decision(**base)


def test_harvest_exports_what_the_llm_and_users_taught(tmp_path: Path, monkeypatch, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    store = DecisionStore(url)
    store.insert_many(
        [
            _decision("a", "why does my loop never end?"),
            _decision("b", "add docstrings here", source="model", llm_label=None, intent="general"),
            _decision("c", None),  # hash only: not exportable
            _decision(
                "d", "write a parser", source="model", llm_label=None, intent="code_generation"
            ),
        ]
    )
    store.add_feedback(Feedback("b", correct_intent="documentation"))
    store.add_feedback(Feedback("d", rating=5))  # a rating teaches no label
    base = tmp_path / "base.jsonl"
    base.write_text(
        json.dumps({"text": "add docstrings here", "intent": "general"})
        + "\n"
        + json.dumps({"text": "hello there", "intent": "general"})
        + "\n"
    )
    monkeypatch.setenv("INTENT_ROUTER_DATABASE_URL", url)
    out = tmp_path / "harvested.jsonl"
    assert main(["--out", str(out), "--base", str(base), "--config", str(DEFAULT_CONFIG)]) == 0
    rows = {r["text"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert {t: (r["intent"], r["source"]) for t, r in rows.items()} == {
        "why does my loop never end?": ("debugging", "llm"),
        "add docstrings here": (
            "documentation",
            "feedback",
        ),  # the user's label replaces the base's
        "hello there": ("general", "base"),
    }
    assert "1 decisions had only a prompt hash" in capsys.readouterr().out
    loaded = load_prompts(str(out))
    assert sorted(loaded.intents) == ["debugging", "documentation", "general"]


def test_harvest_refuses_a_bad_config(tmp_path: Path) -> None:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["storage"] = {"database_url": "nonsense"}
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["--out", str(tmp_path / "x.jsonl"), "--config", str(path)]) == 2
