"""What the generated OpenAPI document says beyond the handlers' signatures: every error
status in OpenAI's error format, and the chat endpoint's server-sent-events variant."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType

from intent_router.service.schemas import ErrorBody


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description, generate_examples=False)


#: /readyz while litellm is still loading.
READYZ_WARMING = ResponseSpec(data_container=dict[str, str], generate_examples=False,
                              description="Not ready yet: litellm is loading ({'status': 'warming'})")

#: Errors any endpoint with a JSON body and a ``model`` field can answer.
BODY_ERRORS: dict[int | str, ResponseSpec] = {
    400: _error("Invalid JSON, UTF-8, field types or values (OpenAI error format)"),
    404: _error("The model is neither 'auto' nor a configured deployment (code model_not_found)"),
    413: _error("Body larger than the limit (1 MiB)"),
}

#: Errors of a chat completion: the upstream's own client errors are passed on as they are.
CHAT_ERRORS: dict[int | str, ResponseSpec] = {
    **BODY_ERRORS,
    "4XX": _error("A provider's client error (401, 403, 404, 422, ...) passed on as it came"),
    502: _error("A provider's non-retryable server error"),
    503: _error("Every deployment of the chain failed; error.attempts lists each attempt"),
}


@dataclass
class ChatOperation(Operation):
    """Adds ``text/event-stream`` (``stream: true``) to the chat endpoint's 200 response."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        content = getattr(ok, "content", None)
        if content is not None:
            content["text/event-stream"] = OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.STRING,
                              description="OpenAI chat.completion.chunk events, ending in data: [DONE]")
            )


@dataclass
class RouteOperation(Operation):
    """/v1/route needs ``messages`` (at least one) or ``prompt``: say so in the body schema."""

    def __post_init__(self) -> None:
        body = self.request_body
        media = body.content.get("application/json") if body is not None and not isinstance(body, Reference) else None
        if media is None or media.schema is None:
            return
        media.schema = Schema(all_of=[media.schema, Schema(any_of=[
            Schema(required=["prompt"], properties={"prompt": Schema(type=OpenAPIType.STRING)}),
            Schema(required=["messages"], properties={"messages": Schema(type=OpenAPIType.ARRAY)}),
        ])])
