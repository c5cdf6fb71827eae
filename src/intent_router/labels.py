"""The intent label set: the contract shared by training and serving."""

from __future__ import annotations

from typing import Final

INTENT_DEFINITIONS: Final[dict[str, str]] = {
    "code_generation": (
        "Write new code from a description: functions, features, scripts, tests, "
        "configs, queries, boilerplate."
    ),
    "architecture_review": (
        "System design and architecture decisions: services, data models, APIs at a high "
        "level, trade-offs between technologies, scalability, reviewing a design or a "
        "codebase's structure."
    ),
    "refactoring": (
        "Change existing code while keeping its behaviour: rename, extract, simplify, clean "
        "up, convert to another style, language or framework version, modernise, optimise "
        "performance."
    ),
    "debugging": (
        "Find or fix a defect: errors, exceptions, stack traces, failing tests, wrong output, "
        "crashes, 'why doesn't this work'."
    ),
    "documentation": (
        "Write or improve docs: README, docstrings, comments, API docs, changelogs, "
        "tutorials, and explaining what existing code does."
    ),
    "security_audit": (
        "Find or assess security problems: vulnerabilities, threat models, auth/crypto/"
        "injection review, secrets exposure, hardening, CVEs."
    ),
    "general": (
        "Everything else: conceptual questions, chit-chat, non-software requests, tooling "
        "questions that ask for no code."
    ),
}

#: Every intent, in a fixed canonical order.
INTENTS: Final[tuple[str, ...]] = tuple(INTENT_DEFINITIONS)

#: The intent used when nothing more specific applies.
FALLBACK_INTENT: Final[str] = "general"

#: Intents whose mistakes are expensive: sending them to a cheap tier hurts quality.
HIGH_STAKES_INTENTS: Final[frozenset[str]] = frozenset(
    {"architecture_review", "debugging", "security_audit"}
)


def is_intent(value: object) -> bool:
    """Tell whether ``value`` is one of the known intent labels."""
    return isinstance(value, str) and value in INTENT_DEFINITIONS
