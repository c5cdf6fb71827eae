"""What the generated OpenAPI document says beyond the handlers' signatures: every error
status in OpenAI's error format, and the chat endpoint's server-sent-events variant."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType

from intent_router.service.schemas import ErrorBody, Readiness


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description, generate_examples=False)


#: /readyz while litellm is still loading, or degraded under router.strict_readiness.
READYZ_WARMING = ResponseSpec(
    data_container=Readiness,
    generate_examples=False,
    description="Not ready yet: litellm is loading (status 'warming'), or no "
    "deployment can answer and router.strict_readiness is on "
    "(status 'degraded')",
)

#: A missing, unknown or revoked client key, when client keys are on.
AUTH_ERRORS: dict[int, ResponseSpec] = {
    401: _error("Client keys are on and the request has no valid key (code invalid_api_key)"),
}

#: Errors of GET /v1/models/{model}.
MODEL_ERRORS: dict[int, ResponseSpec] = {
    **AUTH_ERRORS,
    404: _error("Neither 'auto' nor a configured deployment (code model_not_found)"),
}

#: Errors any endpoint with a JSON body and a ``model`` field can answer.
BODY_ERRORS: dict[int, ResponseSpec] = {
    400: _error("Invalid JSON, UTF-8, field types or values (OpenAI error format)"),
    404: _error("The model is neither 'auto' nor a configured deployment (code model_not_found)"),
    413: _error("Body larger than router.max_body_bytes (1 MiB by default)"),
    403: _error("A team override forbids the requested deployment or the whole chain"),
    **AUTH_ERRORS,
    429: _error(
        "The client key is over its requests or tokens per minute (code rate_limit_exceeded) "
        "or its budget (code budget_exceeded); Retry-After says when to retry"
    ),
    503: _error(
        "The shared counters (Redis) did not answer: limits cannot be checked (code "
        "counters_unavailable)"
    ),
}

#: The database (decision log, overrides, client keys) did not answer.
STORAGE_DOWN = _error(
    "The database did not answer (code storage_unavailable); Retry-After says when to retry"
)

#: Errors of POST /v1/feedback.
FEEDBACK_ERRORS: dict[int, ResponseSpec] = {
    400: BODY_ERRORS[400],
    404: _error("No decision with that request_id (code request_not_found)"),
    413: BODY_ERRORS[413],
    **AUTH_ERRORS,
    503: STORAGE_DOWN,
}

#: Errors of the admin API.
ADMIN_ERRORS: dict[int, ResponseSpec] = {
    400: _error("Invalid body, or a control character in an id or query (OpenAI error format)"),
    401: _error("Missing or wrong admin key"),
    404: _error(
        "No such override, client key or team, or the admin API is off "
        "($INTENT_ROUTER_ADMIN_KEY is not set)"
    ),
    503: STORAGE_DOWN,
}

#: Errors of a chat completion: the upstream's own client errors are passed on as they are.
CHAT_ERRORS: dict[int, ResponseSpec] = {
    **BODY_ERRORS,
    # OpenAPI's status range: litestar writes a key as given, though its annotation says int.
    "4XX": _error("A provider's client error (401, 403, 404, 422, ...) passed on as it came"),  # type: ignore[dict-item]
    502: _error("A provider's non-retryable server error"),
    503: _error(
        "Every deployment of the chain failed (error.attempts lists each attempt), or the "
        "shared counters did not answer (code counters_unavailable)"
    ),
}


@dataclass
class ChatOperation(Operation):
    """Adds ``text/event-stream`` (``stream: true``) to the chat endpoint's 200 response."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        content = getattr(ok, "content", None)
        if content is not None:
            # Each event's data: a chat.completion.chunk (or, after a failure past the first
            # chunk, an {"error": ...} object), and finally the string [DONE].
            content["text/event-stream"] = OpenAPIMediaType(
                schema=Schema(
                    description="OpenAI chat.completion.chunk events, ending in data: [DONE]",
                    any_of=[
                        Schema(type=OpenAPIType.OBJECT),
                        Schema(type=OpenAPIType.STRING, const="[DONE]"),
                    ],
                )
            )


def requiring_one_of(alternatives: dict[str, Schema]) -> type[Operation]:
    """An Operation class whose JSON body schema also says "at least one of these fields,
    not null" (msgspec structs cannot say it themselves)."""

    @dataclass
    class OneOfRequiredOperation(Operation):
        def __post_init__(self) -> None:
            body = self.request_body
            if body is None or isinstance(body, Reference):
                return
            media = body.content.get("application/json")
            if media is None or media.schema is None:
                return
            media.schema = Schema(
                all_of=[
                    media.schema,
                    Schema(
                        any_of=[
                            Schema(required=[name], properties={name: schema})
                            for name, schema in alternatives.items()
                        ]
                    ),
                ]
            )

    return OneOfRequiredOperation


#: /v1/route needs ``prompt`` or ``messages``.
RouteOperation = requiring_one_of(
    {"prompt": Schema(type=OpenAPIType.STRING), "messages": Schema(type=OpenAPIType.ARRAY)}
)

#: /v1/feedback needs ``correct_intent`` or ``rating``.
FeedbackOperation = requiring_one_of(
    {"correct_intent": Schema(type=OpenAPIType.STRING), "rating": Schema(type=OpenAPIType.INTEGER)}
)
