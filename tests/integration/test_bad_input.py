"""Bad input through the real service (served in-process): oversize, undecodable, malformed,
mistyped and hostile bodies get a clear 4xx in OpenAI's error format on every endpoint, never a
500, and a 1,000,000-character prompt is classified within the truncation policy's bound."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from intent_router.classifier import IntentClassifier
from intent_router.decisions import DecisionStore
from intent_router.labels import INTENTS
from intent_router.model_contract import TruncationPolicy
from intent_router.service.app import MAX_BODY_BYTES
from tests import loopback
from tests.eventually import eventually
from tests.integration.fleet_service import KEYS, fake_fleet, fleet_config
from tests.integration.inprocess import provide_keys, serving_in_process

ENDPOINTS = ("/v1/route", "/v1/chat/completions", "/v1/feedback")
JSON = {"content-type": "application/json"}
#: The smallest valid body of each endpoint, as raw JSON.
VALID = {
    "/v1/route": b'{"prompt": "why does this segfault?"}',
    "/v1/chat/completions": b'{"messages": [{"role": "user", "content": "hello there"}]}',  # -> kimi (httpx)
    "/v1/feedback": b'{"request_id": "no-such-request", "rating": 3}',
}


@dataclasses.dataclass
class Service:
    url: str
    database_url: str
    client: httpx.Client

    def post(
        self,
        path: str,
        content: bytes | Iterator[bytes],
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        response = self.client.post(
            path, content=content, headers=JSON if headers is None else headers
        )
        assert response.status_code < 500, (path, response.status_code, response.text[:300])
        return response


@pytest.fixture(autouse=True)
def _provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    provide_keys(monkeypatch, KEYS)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("bad-input")
    database_url = f"sqlite:///{tmp / 'decisions.db'}"
    with fake_fleet() as fakes:
        config = fleet_config(tmp, fakes, litellm=False)
        with (
            serving_in_process(
                config, env={**KEYS, "INTENT_ROUTER_DATABASE_URL": database_url}
            ) as url,
            httpx.Client(base_url=url, timeout=30) as client,
        ):
            yield Service(url, database_url, client)


def _openai_error(response: httpx.Response, status: int) -> dict:
    """The response is ``status`` with OpenAI's error body; returns its ``error``."""
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == "invalid_request_error"
    return error


# --- size -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/feedback"])
def test_oversize_bodies_get_413_on_every_endpoint(service: Service, path: str) -> None:
    _openai_error(service.post(path, b"x" * (MAX_BODY_BYTES + 1)), 413)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_oversize_chunked_bodies_without_a_length_get_413(service: Service, path: str) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    _openai_error(service.post(path, chunks()), 413)


def test_the_limit_is_exactly_one_mebibyte(service: Service) -> None:
    def body(size: int) -> bytes:
        prefix, suffix = b'{"prompt": "fix this crash ', b'"}'
        return prefix + b"a" * (size - len(prefix) - len(suffix)) + suffix

    assert service.post("/v1/route", body(MAX_BODY_BYTES)).json()["intent"] in INTENTS
    _openai_error(service.post("/v1/route", body(MAX_BODY_BYTES + 1)), 413)


def test_the_limit_follows_the_config(tmp_path) -> None:
    body = json.dumps({"prompt": "fix this crash " + "a" * 5000}).encode()
    with fake_fleet() as fakes:
        config = fleet_config(tmp_path, fakes, router={"max_body_bytes": 4096}, litellm=False)
        with serving_in_process(config, env=KEYS) as url:
            small = loopback.post(
                f"{url}/v1/route",
                content=body[:4000] + b'"}',
                headers={"content-type": "application/json"},
            )
            assert small.status_code == 200
            large = loopback.post(
                f"{url}/v1/route", content=body, headers={"content-type": "application/json"}
            )
            assert (
                large.status_code == 413
                and large.json()["error"]["type"] == "invalid_request_error"
            )


# --- undecodable, malformed, mistyped -----------------------------------------------------------

MALFORMED = {
    "not json": b"{not json",
    "empty": b"",
    "truncated": b'{"prompt": "fix',
    "trailing comma": b'{"prompt": "fix",}',
    "NaN": b'{"prompt": "fix", "temperature": NaN}',
    "lone surrogate escape": b'{"prompt": "\\ud800 fix", "messages": [], "request_id": "\\ud800"}',
    "a number too large": b'{"prompt": "fix", "max_tokens": 1e400, "rating": 1e400}',
    "an array": b"[]",
    "null": b"null",
    "a string": b'"hello"',
    "invalid UTF-8": b'{"prompt": "\xff\xfe"}',
    "overlong UTF-8": b'{"prompt": "\xc0\xaf"}',
    "UTF-16": '{"prompt": "fix"}'.encode("utf-16"),
    "nested too deeply (arrays)": b'{"prompt": "fix", "x": '
    + b"[" * 200_000
    + b"]" * 200_000
    + b"}",
    "nested too deeply (objects)": b'{"prompt": "fix", "x": '
    + b'{"a":' * 100_000
    + b"1"
    + b"}" * 100_000
    + b"}",
}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_bodies_get_400_in_openai_format(service: Service, path: str, kind: str) -> None:
    _openai_error(service.post(path, MALFORMED[kind]), 400)


INVALID_UTF8_IN_A_FIELD = {
    "/v1/route": b'{"prompt": "fix \xe2\x82 this"}',
    "/v1/chat/completions": b'{"messages": [{"role": "user", "content": "fix \xed\xa0\x80 this"}]}',
    "/v1/feedback": b'{"request_id": "abc\xff", "rating": 3}',
}


@pytest.mark.parametrize("path", ENDPOINTS)
def test_invalid_utf8_inside_a_field_is_named_as_such(service: Service, path: str) -> None:
    error = _openai_error(service.post(path, INVALID_UTF8_IN_A_FIELD[path]), 400)
    assert "UTF-8" in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/route", b'{"prompt": ["fix"]}', "prompt"),
        ("/v1/route", b'{"prompt": "fix", "metadata": {"sensitive": "yes"}}', "metadata.sensitive"),
        (
            "/v1/chat/completions",
            b'{"messages": [{"role": "user", "content": 5}]}',
            "messages[0].content",
        ),
        (
            "/v1/chat/completions",
            b'{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "stream",
        ),
        (
            "/v1/chat/completions",
            b'{"messages": [{"role": "user", "content": "x"}], "model": 4}',
            "model",
        ),
        (
            "/v1/chat/completions",
            b'{"messages": [{"role": "user", "content": "x"}], "metadata": {"repo": 5}}',
            "metadata.repo",
        ),
        ("/v1/feedback", b'{"request_id": "abc", "rating": 3.5}', "rating"),
        ("/v1/feedback", b'{"request_id": "abc", "rating": 9}', "rating"),
        ("/v1/feedback", b'{"request_id": "a b/../c", "rating": 3}', "request_id"),
        ("/v1/feedback", b'{"request_id": "abc", "correct_intent": "poetry"}', "correct_intent"),
    ],
)
def test_wrong_types_name_the_field(service: Service, path: str, body: bytes, param: str) -> None:
    error = _openai_error(service.post(path, body), 400)
    assert error["param"] == param and f"{param}: " in error["message"]


# --- content types ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_json_body_under_another_content_type_is_read_as_json_or_refused(
    service: Service, path: str, content_type: str | None
) -> None:
    """Lenient (read as JSON, as OpenAI's own API does) or strict (415): never anything else."""
    expected = service.post(path, VALID[path])
    response = service.post(
        path, VALID[path], headers={} if content_type is None else {"content-type": content_type}
    )
    if response.status_code == 415:
        _openai_error(response, 415)
        return
    assert response.status_code == expected.status_code
    if path == "/v1/route":
        assert response.json()["intent"] == expected.json()["intent"] == "debugging"
    elif path == "/v1/chat/completions":
        assert response.json()["choices"][0]["message"]["content"] == "ok from fake"
    else:
        assert response.json()["error"]["code"] == "request_not_found"


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("kind", ["form", "multipart", "xml"])
def test_bodies_that_are_not_json_get_400_or_415(service: Service, path: str, kind: str) -> None:
    content, content_type = {
        "form": (b"prompt=fix+this&request_id=abc", "application/x-www-form-urlencoded"),
        "multipart": (
            b'--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nfix\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
        ),
        "xml": (b"<prompt>fix this</prompt>", "application/xml"),
    }[kind]
    response = service.post(path, content, headers={"content-type": content_type})
    _openai_error(response, response.status_code if response.status_code == 415 else 400)


# --- odd but valid ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/route", b'{"prompt": "fix \\u0000 this \\u0007 crash"}'),
        (
            "/v1/route",
            b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "fix it"},'
            b' {"type": "image_url", "image_url": {"url": "data:,"}}]}]}',
        ),
        (
            "/v1/route",
            b'{"prompt": "\xf0\x9f\x90\x9b fix \xe4\xbf\xae\xe5\xa4\x8d \xd8\xa7\xd9\x84\xd8\xae\xd8\xb7\xd8\xa3"}',
        ),
        ("/v1/route", b'{"prompt": ""}'),
        ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi \\u0000"}]}'),
        ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": null}]}'),
        (
            "/v1/chat/completions",
            b'{"messages": [{"role": "user", "content": "hi"}], "seed": 123456789012345678901234567890}',
        ),
        (
            "/v1/chat/completions",
            b'{"messages": [{"role": "user", "content": "hi"}], "x": '
            + b"[" * 200
            + b"]" * 200
            + b"}",
        ),
    ],
)
def test_odd_but_valid_bodies_are_answered(service: Service, path: str, body: bytes) -> None:
    response = service.post(path, body)
    assert response.status_code == 200, response.text[:300]
    assert ("intent" in response.json()) if path == "/v1/route" else response.json()["choices"]


@pytest.mark.parametrize(
    "headers",
    [
        {"x-repo": "r" * 100_000},
        {"x-user": "a\tb c"},
        {"x-org": b"caf\xc3\xa9 \xff"},  # UTF-8 and not: ASGI hands headers over as latin-1
    ],
)
def test_odd_headers_are_tolerated(service: Service, headers: dict[str, Any]) -> None:
    response = service.post("/v1/route", VALID["/v1/route"], headers={**JSON, **headers})
    assert response.status_code == 200 and response.json()["intent"] == "debugging"


def test_a_control_character_in_a_header_is_refused_by_the_http_parser(service: Service) -> None:
    """RFC 9110 allows no control character but tab in a field value: httptools refuses the
    request (400) before the app sees it, and the connection after it still works."""
    response = service.post("/v1/route", VALID["/v1/route"], headers={**JSON, "x-user": "a\x01b"})
    assert response.status_code == 400
    assert service.post("/v1/route", VALID["/v1/route"], headers=JSON).status_code == 200


def test_wrong_methods_and_paths_answer_in_openai_format(service: Service) -> None:
    _openai_error(service.client.get("/v1/route"), 405)
    _openai_error(service.client.put("/v1/chat/completions", content=VALID["/v1/route"]), 405)
    _openai_error(service.client.post("/v1/nope", content=b"{}"), 404)


# --- a 1,000,000-character prompt ---------------------------------------------------------------


def _classify_ms(service: Service, request_ids: list[str]) -> list[float]:
    store = DecisionStore(service.database_url)
    try:
        rows = eventually(
            lambda: [store.get(i) for i in request_ids],
            lambda got: None not in got,
            timeout_s=15,
            interval_s=0.1,
            what="the decisions logged",
        )
    finally:
        store.dispose()
    return [float(r["classify_ms"]) for r in rows]


def test_a_million_character_prompt_is_classified_on_its_head_and_tail_only(
    service: Service,
) -> None:
    policy = TruncationPolicy()
    head = ("Why does this crash with a segfault when the login handler runs? " * 30)[
        : policy.head_chars
    ]
    tail = (" The test fails with this traceback and exit code 139, please fix the bug." * 20)[
        -policy.tail_chars :
    ]
    middle = (
        "Write the README. Add docstrings to every public function. Document the API endpoints in a "
        "tutorial. Update the changelog and explain what the module does in comments. "
    )
    prompt = (
        head + (middle * (1_000_000 // len(middle) + 1))[: 1_000_000 - len(head) - len(tail)] + tail
    )
    assert len(prompt) == 1_000_000
    seen = policy.apply(prompt)
    assert len(seen) == policy.head_chars + 1 + policy.tail_chars

    classifier = IntentClassifier.from_dir()
    untruncated = IntentClassifier.from_dir()
    untruncated.metadata = dataclasses.replace(
        untruncated.metadata, truncation=TruncationPolicy(2_000_000, 0)
    )
    expected = classifier.predict(prompt)
    assert expected.intent == "debugging" and expected.truncated
    # The middle would decide otherwise: the answer shows only the head and tail were read.
    assert untruncated.predict(prompt).intent != expected.intent

    big, short = [], []
    for _ in range(3):
        answer = service.post("/v1/route", json.dumps({"prompt": prompt}).encode()).json()
        assert answer["intent"] == expected.intent
        assert answer["probabilities"] == pytest.approx(expected.probabilities, abs=1e-6)
        big.append(answer["request_id"])
        same_work = service.post("/v1/route", json.dumps({"prompt": seen}).encode()).json()
        assert same_work["probabilities"] == pytest.approx(answer["probabilities"], abs=1e-6)
        short.append(same_work["request_id"])
    # Bounded: about the time of its 2,501 truncated characters, not of a million (~400x more).
    big_ms, short_ms = min(_classify_ms(service, big)), min(_classify_ms(service, short))
    assert big_ms < 20 * short_ms + 1.0, (big_ms, short_ms)


def test_the_service_is_still_healthy(service: Service) -> None:
    assert service.client.get("/healthz").json()["status"] == "ok"
    assert service.post("/v1/route", VALID["/v1/route"]).json()["intent"] == "debugging"


# --- what the decision log gets --------------------------------------------------------------


def test_a_nul_character_loses_no_decision_or_feedback(database_url: str) -> None:
    """PostgreSQL's text columns refuse NUL: a prompt, an upstream error or a comment holding one
    is still logged (NUL as U+FFFD), not dropped as a bad row."""
    from intent_router.decisions import DecisionWriter, Feedback
    from intent_router.decisions.records import AttemptRecord, Decision

    def decision(request_id: str, **fields: object) -> Decision:
        return Decision(
            request_id=request_id,
            created_at=time.time(),
            endpoint="chat",
            status="failed",
            intent="debugging",
            confidence=0.9,
            source="model",
            chain=("gpt-4o",),
            model_version="v",
            prompt_sha256="0" * 64,
            **fields,
        )  # type: ignore[arg-type]

    store = DecisionStore(database_url)
    writer = DecisionWriter(store)
    try:
        writer.submit(decision("nul-prompt", prompt_text="fix \x00 this"))
        writer.submit(
            decision(
                "nul-error",
                error="HTTP 500: upstream said \x00",
                attempts=(AttemptRecord("gpt-4o", "failed", 500, "said \x00", 1.0),),
            )
        )
        assert writer.flush(timeout_s=10)
        assert store.get("nul-prompt")["prompt_text"] == "fix \ufffd this"
        assert store.get("nul-error")["error"] == "HTTP 500: upstream said \ufffd"
        store.add_feedback(Feedback("nul-error", "debugging", 2, "it printed \x00"))
        assert store.feedback_for("nul-error")[0]["comment"] == "it printed \ufffd"
    finally:
        writer.close()
        store.dispose()
