"""The secret detector: what it must find, what it must leave alone, and redaction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intent_router.routing.secrets import SecretDetector

DETECTOR = SecretDetector()

SECRETS = [
    ("aws_access_key_id", "my key is AKIAIOSFODNN7EXAMPLE ok"),
    ("aws_secret_access_key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYab"),
    ("private_key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----"),
    ("private_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk..."),
    ("github_token", "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
    ("slack_token", "xoxb-123456789012-abcdefghijkl"),
    ("stripe_key", "stripe.api_key = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'"),
    ("llm_api_key", "OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz123456"),
    ("llm_api_key", "client = Anthropic(api_key='sk-ant-api03-abcdefghijklmnopqrstuv')"),
    ("google_api_key", "https://maps.googleapis.com/?key=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI"),
    ("bearer_token", "curl -H 'Authorization: Bearer abcdef0123456789abcdef0123456789'"),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    ("connection_string_password", "DATABASE_URL=postgres://app:s3cr3t-P4ss@db.internal:5432/prod"),
    ("hardcoded_password", 'db.connect(user="admin", password="Tr0ub4dor&3xyz")'),
]

NOT_SECRETS = [
    "rename getUser to fetchUser everywhere",
    "postgres://user:password@localhost:5432/app is the example in our docs",
    "DATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app",
    'password = "changeme"',
    "password: '<your password here>'",
    "the sk- prefix marks OpenAI keys; never commit them",
    "Authorization: Bearer <token>",
    "AKIA is the prefix of AWS access key ids",
]


@pytest.mark.parametrize(("kind", "text"), SECRETS)
def test_secrets_are_found_and_redacted(kind: str, text: str) -> None:
    assert kind in {f.kind for f in DETECTOR.find(text)}
    redacted = DETECTOR.redact(text)
    assert "[REDACTED:" in redacted
    assert not DETECTOR.find(redacted) or kind not in {f.kind for f in DETECTOR.find(redacted)}


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_placeholders_and_prose_are_not_secrets(text: str) -> None:
    assert DETECTOR.find(text) == [], text


def test_configured_patterns_are_added() -> None:
    detector = SecretDetector({"acme_token": r"\bacme_[0-9a-f]{32}\b"})
    assert detector.kinds(["use acme_" + "ab" * 16]) == ["acme_token"]


@given(st.text(max_size=300))
def test_redaction_never_leaves_a_finding_behind(text: str) -> None:
    secret = "AKIAIOSFODNN7EXAMPLE"
    redacted = DETECTOR.redact(text + " " + secret + " " + text)
    assert secret not in redacted


_FRAGMENTS = st.sampled_from(
    [
        "AKIA",
        "ASIA",
        "ABCDEFGHIJKLMNOP",
        "-----BEGIN ",
        "RSA ",
        "PRIVATE KEY-----",
        "aws_secret_access_key",
        "AWS_SECRET_ACCESS_KEY",
        "=",
        ": ",
        "'",
        '"',
        "AIza",
        "ghp_",
        "github_pat_",
        "xoxb-",
        "sk_live_",
        "sk-",
        "sk-ant-",
        "eyJ",
        ".",
        "Bearer ",
        "bearer ",
        "postgres://",
        "user",
        ":",
        "@",
        "host",
        "password",
        "PASSWORD",
        "pwd",
        "ſecret",
        "API_KEY",
        "access_token",
        "Auth_Token",
        "KEY",
        "0123456789abcdef" * 3,
        "A1b2C3d4E5f6G7h8I9j0" * 2,
        " ",
        "\n",
        "İ",
        "K",
    ]
)


@given(st.lists(_FRAGMENTS, max_size=25).map("".join))
def test_the_literal_hints_never_hide_a_secret(text: str) -> None:
    # The hints only skip rules that could not match: the findings are the same without them.
    assert SecretDetector().find(text) == SecretDetector(use_hints=False).find(text)
