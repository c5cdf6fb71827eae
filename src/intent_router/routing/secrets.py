"""Pure: find secrets and credentials in prompt text, and redact them.

A request that carries one goes to the local tier only and is never stored or traced with
it. The built-in rules cover cloud provider keys, private keys, tokens, bearer credentials,
connection strings with passwords and hard-coded passwords; the config can add more.
Obvious placeholders (``password``, ``changeme``, ``<...>``, ``${...}``) are not secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

BUILTIN_PATTERNS: Final[dict[str, str]] = {
    "private_key": r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
    "aws_access_key_id": r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
    "aws_secret_access_key": r"(?i)\baws_?secret_?access_?key\b[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}",
    "google_api_key": r"\bAIza[0-9A-Za-z_\-]{35}\b",
    "github_token": r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}\b",
    "slack_token": r"\bxox[abprs]-[A-Za-z0-9\-]{10,}\b",
    "stripe_key": r"\b(?:sk|rk)_live_[A-Za-z0-9]{20,}\b",
    "llm_api_key": r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,}",
    "jwt": r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",
    "bearer_token": r"(?i)\bbearer\s+(?P<value>[A-Za-z0-9._~+/\-]{20,}=*)",
    "connection_string_password": r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]+:(?P<value>[^\s@/]{3,})@[^\s/]+",
    "hardcoded_password": (
        r"(?i)\b(?:password|passwd|pwd|secret|api_?key|access_?token|auth_?token)\b"
        r"[\"']?\s*[:=]\s*[\"'](?P<value>[^\"'\s]{8,})[\"']"
    ),
}

#: Lowercase literals one of which every match of a built-in rule contains: a rule runs only
#: on text holding one of them (a substring test is far cheaper than a regex scan, and most
#: prompts hold none). Rules from the config have no hints and always run.
_HINTS: Final[dict[str, tuple[str, ...]]] = {
    "private_key": ("private key",),
    "aws_access_key_id": ("akia", "asia", "abia", "acca"),
    "aws_secret_access_key": ("secret",),
    "google_api_key": ("aiza",),
    "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "slack_token": ("xox",),
    "stripe_key": ("_live_",),
    "llm_api_key": ("sk-",),
    "jwt": ("eyj",),
    "bearer_token": ("bearer",),
    "connection_string_password": ("://",),
    "hardcoded_password": ("passw", "pwd", "secret", "api", "access", "auth"),
}

_PLACEHOLDER = re.compile(
    r"(?i)^(?:password|passwd|pass|pwd|secret|changeme|example|test|dummy|your[_\-]?\w*|x+|\*+|\.+)$"
    r"|^<.*>$|^\$\{.*\}$|^\{\{.*\}\}$|^\{.*\}$|^\$[A-Z_][A-Z0-9_]*$|^%\(.*\)s$"
    r"|^\[REDACTED:[a-z_]+\]$"
)


@dataclass(frozen=True)
class SecretFinding:
    """One secret: which rule found it and where (the span covers what is redacted)."""

    kind: str
    start: int
    end: int


class SecretDetector:
    """Finds secrets with the built-in rules plus ``extra`` ({name: regex})."""

    def __init__(self, extra: Mapping[str, str] | None = None, use_hints: bool = True) -> None:
        rules = {**BUILTIN_PATTERNS, **(extra or {})}
        self._rules = [
            (
                name,
                re.compile(pattern),
                _HINTS.get(name) if use_hints and pattern == BUILTIN_PATTERNS.get(name) else None,
            )
            for name, pattern in rules.items()
        ]

    def find(self, text: str) -> list[SecretFinding]:
        findings = []
        folded = text.casefold()  # as re.IGNORECASE folds: "ſecret" holds "secret"
        for kind, rule, hints in self._rules:
            if hints is not None and not any(hint in folded for hint in hints):
                continue
            for match in rule.finditer(text):
                value = match.groupdict().get("value")
                if value is not None and _PLACEHOLDER.match(value):
                    continue
                span = match.span("value") if value is not None else match.span()
                findings.append(SecretFinding(kind, *span))
        return sorted(findings, key=lambda f: (f.start, f.end))

    def kinds(self, texts: Iterable[str]) -> list[str]:
        """The kinds of secret found in any of ``texts`` (sorted, unique)."""
        return sorted({f.kind for text in texts for f in self.find(text)})

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``[REDACTED:<kind>]``."""
        out, cursor = [], 0
        for finding in self.find(text):
            if finding.start < cursor:  # overlaps a span already redacted
                continue
            out.append(text[cursor : finding.start])
            out.append(f"[REDACTED:{finding.kind}]")
            cursor = finding.end
        out.append(text[cursor:])
        return "".join(out)
