"""What a coding agent sends works through both provider paths, with the agent's own client.

The OpenAI SDK and litellm (as a client of the router) each send chat, streaming, tools
(plain and streamed, parallel calls, ``tool_choice``, a tool-result round trip) and structured
output, to ``gpt-4o`` (the fast path, the fleet's OpenAI fake), to ``claude-sonnet-4`` (the
litellm path, the fleet's Anthropic fake) and to ``kimi-k2.6`` (Kimi on Cloudflare through
litellm's Cloudflare route, an OpenAI-format fake). Each request must be answered by the
deployment it named in one attempt: a silent fallback to another deployment is a failure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import openai
import pydantic
import pytest

from tests.fakes.provider_fleet import FakeProvider
from tests.fakes.tool_replies import JsonReply, ToolCall, ToolReply
from tests.integration.fleet_service import KEYS, Setup, fleet_service
from tests.integration.inprocess import provide_keys

pytestmark = [
    pytest.mark.slow,
    # litellm's own types, built when it first streams: not ours to fix
    pytest.mark.filterwarnings("ignore:Item .* is using the `ReadOnly` qualifier:UserWarning"),
]

#: deployment -> the fake that serves it (fast path: OpenAI API; litellm: Anthropic, Cloudflare)
PATHS = {"gpt-4o": "gpt", "claude-sonnet-4": "claude", "kimi-k2.6": "kimi"}
#: Kimi goes through litellm (``cloudflare/...``), as in the bundled config.
THROUGH_LITELLM = {"kimi-k2.6": {"api_style": "litellm"}}
USER = [{"role": "user", "content": "find where fetchUser is defined and fix its null check"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file of the repository",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "grep",
            "description": "Search the repository",
            "parameters": {
                "type": "object",
                "properties": {"pattern": {"type": "string"}},
                "required": ["pattern"],
            },
        },
    },
]
PARALLEL = ToolReply(
    (ToolCall("grep", {"pattern": "def fetchUser"}), ToolCall("read_file", {"path": "users.py"}))
)
EXPECTED_CALLS = [("grep", {"pattern": "def fetchUser"}), ("read_file", {"path": "users.py"})]


class Verdict(pydantic.BaseModel):
    file: str
    line: int


VERDICT_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "Verdict",
        "strict": True,
        "schema": Verdict.model_json_schema() | {"additionalProperties": False},
    },
}


@dataclass
class Answer:
    """One answer as the client saw it: the assistant message and the router's headers."""

    message: dict[str, Any]
    headers: dict[str, str] | None  # None: the client API hides them (the fakes still tell)

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [
            (c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in self.message.get("tool_calls") or []
        ]


class AgentClient(Protocol):
    def create(self, model: str, messages: list[dict[str, Any]], **extra: Any) -> Answer: ...

    def stream(self, model: str, messages: list[dict[str, Any]], **extra: Any) -> Answer: ...


class OpenAISDK:
    """The OpenAI Python SDK, as most agents use it (the stream helper accumulates tool calls)."""

    def __init__(self, url: str) -> None:
        self.client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)

    def create(self, model: str, messages: list[dict[str, Any]], **extra: Any) -> Answer:
        raw = self.client.chat.completions.with_raw_response.create(
            model=model, messages=messages, **extra
        )
        return Answer(
            raw.parse().choices[0].message.model_dump(exclude_none=True), dict(raw.headers)
        )

    def stream(self, model: str, messages: list[dict[str, Any]], **extra: Any) -> Answer:
        raw = self.client.chat.completions.with_raw_response.create(
            model=model, messages=messages, stream=True, **extra
        )
        chunks = list(raw.parse())
        return Answer(_accumulate(c.model_dump() for c in chunks), dict(raw.headers))

    def parse(self, model: str, messages: list[dict[str, Any]]) -> tuple[Verdict | None, Answer]:
        raw = self.client.chat.completions.with_raw_response.parse(
            model=model, messages=messages, response_format=Verdict
        )
        message = raw.parse().choices[0].message
        return message.parsed, Answer({"content": message.content}, dict(raw.headers))


class LitellmAsClient:
    """litellm pointed at the router as an OpenAI-compatible server (``openai/<deployment>``); it
    passes the router's headers on as ``llm_provider-*`` in its hidden params.

    ``_skip_mcp_handler``: litellm 1.106.12 imports the optional ``mcp`` package whenever a
    request has tools; a client environment without it needs this flag, as the router does."""

    def __init__(self, url: str) -> None:
        import litellm

        self.litellm = litellm
        self.base = dict(
            api_base=f"{url}/v1", api_key="unused", num_retries=0, _skip_mcp_handler=True
        )

    def create(self, model: str, messages: list[dict[str, Any]], **extra: Any) -> Answer:
        response = self.litellm.completion(
            model=f"openai/{model}", messages=messages, **self.base, **extra
        )
        return Answer(
            response.choices[0].message.model_dump(exclude_none=True), _litellm_headers(response)
        )

    def stream(self, model: str, messages: list[dict[str, Any]], **extra: Any) -> Answer:
        stream = self.litellm.completion(
            model=f"openai/{model}", messages=messages, stream=True, **self.base, **extra
        )
        chunks = [chunk.model_dump() for chunk in stream]
        return Answer(_accumulate(chunks), _litellm_headers(stream))


def _litellm_headers(response: Any) -> dict[str, str]:
    hidden = getattr(response, "_hidden_params", None) or {}
    headers = hidden.get("additional_headers") or {}
    return {k.removeprefix("llm_provider-"): str(v) for k, v in headers.items()}


def _accumulate(chunks: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> dict[str, Any]:
    """The assistant message a stream spells out: its text and its tool calls by ``index``."""
    text, calls = "", {}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for part in delta.get("tool_calls") or []:
                call = calls.setdefault(
                    part["index"],
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                call["id"] = part.get("id") or call["id"]
                function = part.get("function") or {}
                call["function"]["name"] += function.get("name") or ""
                call["function"]["arguments"] += function.get("arguments") or ""
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return message


def _schema_sent(upstream: dict[str, Any]) -> bool:
    """Whether the Verdict schema reached the provider (OpenAI: ``response_format``; Anthropic:
    ``output_format``, or a forced tool on older models)."""
    return '"line": {' in json.dumps({k: v for k, v in upstream.items() if k != "messages"})


@pytest.fixture(autouse=True)
def _provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    provide_keys(monkeypatch, KEYS)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with fleet_service(
        tmp_path_factory.mktemp("agents"), deployments=THROUGH_LITELLM, ready=True, in_process=True
    ) as setup:
        yield setup


@pytest.fixture(params=["openai-sdk", "litellm"])
def client(request: pytest.FixtureRequest, service: Setup) -> AgentClient:
    return OpenAISDK(service.url) if request.param == "openai-sdk" else LitellmAsClient(service.url)


@pytest.fixture(params=list(PATHS))
def deployment(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class OneAttempt:
    """Asserts the request reached the named deployment's fake once, and no other fake."""

    def __init__(self, service: Setup, deployment: str) -> None:
        self.service, self.deployment = service, deployment
        self.fake: FakeProvider = service.fakes[PATHS[deployment]]
        self.before = {name: service.calls(name) for name in service.fakes}

    def check(self, answer: Answer) -> dict[str, Any]:
        """The upstream request's body, after checking who answered."""
        grown = {
            n: self.service.calls(n) - c
            for n, c in self.before.items()
            if self.service.calls(n) != c
        }
        assert grown == {PATHS[self.deployment]: 1}, f"calls per fake: {grown}"
        if answer.headers is not None:
            assert answer.headers["x-intent-router-deployment"] == self.deployment
            assert answer.headers["x-intent-router-attempts"] == "1"
        upstream = self.fake.requests[-1]
        agent = {k.lower(): v for k, v in upstream.headers.items()}.get("user-agent", "")
        assert agent.startswith("litellm/") == (self.deployment != "gpt-4o"), (
            agent
        )  # the path meant
        return upstream.body


@pytest.fixture
def once(service: Setup, deployment: str) -> OneAttempt:
    return OneAttempt(service, deployment)


def test_chat(client: AgentClient, deployment: str, once: OneAttempt) -> None:
    answer = client.create(deployment, USER)
    once.check(answer)
    assert answer.message["content"] == "ok from fake"


def test_stream(client: AgentClient, deployment: str, once: OneAttempt) -> None:
    answer = client.stream(deployment, USER, stream_options={"include_usage": True})
    once.check(answer)
    assert answer.message["content"] == "ok from fake stream"


def test_sampling_hints_a_provider_lacks_are_left_out_not_refused(
    client: AgentClient, deployment: str, once: OneAttempt
) -> None:
    answer = client.create(deployment, USER, seed=7, presence_penalty=0.1, temperature=0.2)
    upstream = once.check(answer)
    assert answer.message["content"] == "ok from fake"
    assert ("seed" in upstream) is (deployment != "claude-sonnet-4")  # Anthropic has no seed
    assert upstream["temperature"] == 0.2


def test_parallel_tool_calls(client: AgentClient, deployment: str, once: OneAttempt) -> None:
    once.fake.script(PARALLEL)
    answer = client.create(deployment, USER, tools=TOOLS)
    upstream = once.check(answer)
    assert answer.calls() == EXPECTED_CALLS
    assert [t.get("name") or t["function"]["name"] for t in upstream["tools"]] == [
        "read_file",
        "grep",
    ]


def test_parallel_tool_calls_streamed(
    client: AgentClient, deployment: str, once: OneAttempt
) -> None:
    once.fake.script(PARALLEL)
    answer = client.stream(deployment, USER, tools=TOOLS)
    once.check(answer)
    assert answer.calls() == EXPECTED_CALLS
    assert all(c["id"] for c in answer.message["tool_calls"])


def test_tool_choice_and_parallel_tool_calls_reach_the_provider(
    client: AgentClient, deployment: str, once: OneAttempt
) -> None:
    once.fake.script(ToolReply((ToolCall("read_file", {"path": "users.py"}),)))
    choice = {"type": "function", "function": {"name": "read_file"}}
    answer = client.create(
        deployment, USER, tools=TOOLS, tool_choice=choice, parallel_tool_calls=False
    )
    upstream = once.check(answer)
    assert answer.calls() == [("read_file", {"path": "users.py"})]
    if deployment == "claude-sonnet-4":  # Anthropic's own spelling of both
        assert upstream["tool_choice"] == {
            "type": "tool",
            "name": "read_file",
            "disable_parallel_tool_use": True,
        }
    else:
        assert upstream["tool_choice"] == choice and upstream["parallel_tool_calls"] is False


def test_tool_results_round_trip(client: AgentClient, deployment: str, once: OneAttempt) -> None:
    once.fake.script(PARALLEL)
    first = client.create(deployment, USER, tools=TOOLS)
    calls = first.message["tool_calls"]
    results = [
        {"role": "tool", "tool_call_id": c["id"], "content": f"result of {c['function']['name']}"}
        for c in calls
    ]
    conversation = [*USER, {"role": "assistant", "content": None, "tool_calls": calls}, *results]
    once.before = {name: once.service.calls(name) for name in once.service.fakes}
    answer = client.create(deployment, conversation, tools=TOOLS)  # the fake refuses orphan results
    upstream = once.check(answer)
    assert answer.message["content"] == "ok from fake"
    sent = json.dumps(upstream["messages"])
    assert all(c["id"] in sent for c in calls) and "result of read_file" in sent


def test_structured_output(client: AgentClient, deployment: str, once: OneAttempt) -> None:
    once.fake.script(JsonReply({"file": "users.py", "line": 42}))
    answer = client.create(deployment, USER, response_format=VERDICT_FORMAT)
    assert _schema_sent(once.check(answer))
    assert Verdict.model_validate_json(answer.message["content"]) == Verdict(
        file="users.py", line=42
    )


def test_structured_output_streamed(client: AgentClient, deployment: str, once: OneAttempt) -> None:
    once.fake.script(JsonReply({"file": "api.py", "line": 3}))
    answer = client.stream(deployment, USER, response_format=VERDICT_FORMAT)
    assert _schema_sent(once.check(answer))
    assert Verdict.model_validate_json(answer.message["content"]) == Verdict(file="api.py", line=3)


def test_openai_sdk_parses_structured_output(
    service: Setup, deployment: str, once: OneAttempt
) -> None:
    once.fake.script(JsonReply({"file": "users.py", "line": 7}))
    parsed, answer = OpenAISDK(service.url).parse(deployment, USER)
    upstream = once.check(answer)
    assert parsed == Verdict(file="users.py", line=7)
    assert _schema_sent(upstream)


def test_openai_sdk_stream_helper_assembles_parallel_calls(
    service: Setup, deployment: str, once: OneAttempt
) -> None:
    """``chat.completions.stream`` (what SDK-based agents use) checks every delta it merges."""
    once.fake.script(PARALLEL)
    sdk = OpenAISDK(service.url).client
    with sdk.chat.completions.stream(model=deployment, messages=USER, tools=TOOLS) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    once.check(Answer(message.model_dump(exclude_none=True, exclude={"parsed"}), None))
    assert final.choices[0].finish_reason == "tool_calls"
    assert [
        (c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls
    ] == EXPECTED_CALLS
