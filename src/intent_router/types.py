"""Frozen value types passed between the router's parts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Prediction:
    """The local classifier's answer for one prompt."""

    intent: str
    confidence: float
    probabilities: dict[str, float]
    truncated: bool = False
