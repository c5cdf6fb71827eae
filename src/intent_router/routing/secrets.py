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
    "hardcoded_password": (r"(?i)\b(?:password|passwd|pwd|secret|api_?key|access_?token|auth_?token)\b"
                           r"[\"']?\s*[:=]\s*[\"'](?P<value>[^\"'\s]{8,})[\"']"),
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

    def __init__(self, extra: Mapping[str, str] | None = None) -> None:
        self._rules = [(name, re.compile(pattern)) for name, pattern in {**BUILTIN_PATTERNS, **(extra or {})}.items()]

    def find(self, text: str) -> list[SecretFinding]:
        findings = []
        for kind, rule in self._rules:
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
            out.append(text[cursor:finding.start])
            out.append(f"[REDACTED:{finding.kind}]")
            cursor = finding.end
        out.append(text[cursor:])
        return "".join(out)
