import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intent_router.exceptions import ModelContractError, ModelError
from intent_router.labels import INTENTS
from intent_router.model_contract import ModelMetadata, TruncationPolicy, load_metadata


def _metadata(**overrides: object) -> ModelMetadata:
    base = ModelMetadata(
        labels=tuple(sorted(INTENTS)),
        model_version="v1",
        confidence_threshold=0.6,
        training_data_sha256="ab" * 32,
        created_at="2026-11-29T00:00:00+00:00",
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_metadata_round_trips_through_json(tmp_path: Path) -> None:
    meta = _metadata(truncation=TruncationPolicy(100, 50))
    path = tmp_path / "intent.json"
    path.write_text(meta.to_json())
    assert load_metadata(path) == meta


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"labels": ("code_generation", "general")}, "labels"),
        ({"labels": tuple(sorted(INTENTS)) + ("general",)}, "labels"),
        ({"labels": tuple(sorted(INTENTS))[:-1] + ("chit_chat",)}, "labels"),
        ({"confidence_threshold": 1.5}, "confidence_threshold"),
        ({"schema_version": 99}, "schema_version"),
        ({"truncation": TruncationPolicy(0, 10)}, "truncation"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": 1000.0}, "temperature"),
    ],
)
def test_invalid_metadata_is_rejected(overrides: dict, message: str) -> None:
    with pytest.raises(ModelContractError, match=message):
        _metadata(**overrides).validate()


def test_metadata_missing_a_field_is_a_contract_error(tmp_path: Path) -> None:
    raw = json.loads(_metadata().to_json())
    del raw["labels"]
    path = tmp_path / "intent.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelContractError):
        load_metadata(path)


def test_unreadable_metadata_is_a_model_error(tmp_path: Path) -> None:
    path = tmp_path / "intent.json"
    path.write_text("{not json")
    with pytest.raises(ModelError):
        load_metadata(path)


@given(st.text(max_size=400), st.integers(1, 60), st.integers(0, 60))
def test_truncation_keeps_head_and_tail_and_bounds_length(text: str, head: int, tail: int) -> None:
    policy = TruncationPolicy(head, tail)
    out = policy.apply(text)
    if len(text) <= head + tail:
        assert out == text
    else:
        assert len(out) == head + tail + 1
        assert out.startswith(text[:head])
        assert out.endswith(text[len(text) - tail :] if tail else "\n")


def test_temperature_defaults_to_one_when_absent(tmp_path: Path) -> None:
    raw = json.loads(_metadata().to_json())
    del raw["temperature"]
    path = tmp_path / "intent.json"
    path.write_text(json.dumps(raw))
    assert load_metadata(path).temperature == 1.0
    path.write_text(json.dumps({**raw, "temperature": 2.5}))
    assert load_metadata(path).temperature == 2.5
