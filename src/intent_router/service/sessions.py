"""A request's sticky session (routing/sessions.py): its name from the request, and what the
response says of it (headers, the /v1/route body, the decision log's fields)."""

from __future__ import annotations

from litestar import Request

from intent_router.routing.sessions import name_session
from intent_router.service.metrics import RouterMetrics
from intent_router.service.recording import RequestContext
from intent_router.service.schemas import RouteMetadata, RouteSession
from intent_router.types import Plan, SessionId, SessionReport

SESSION_HEADER = "x-session-id"


def session_of(
    request: Request,
    metadata: RouteMetadata | None,
    ctx: RequestContext,
    system: str,
    turns: list[str],
) -> SessionId | None:
    """The session named by the ``x-session-id`` header, else ``metadata.session_id``, else
    derived from the client (its key, else its user), ``system`` and the first of the user
    ``turns``; scoped to the client either way."""
    return name_session(
        header=request.headers.get(SESSION_HEADER),
        metadata=metadata.session_id if metadata else None,
        client=ctx.client_key_id or ctx.user,
        system=system,
        first_user=turns[0] if turns else None,
        user_turns=len(turns),
    )


def note_plan(ctx: RequestContext, plan: Plan) -> None:
    """Before any answer: a failed turn is still logged with its session."""
    if plan.session is not None:
        ctx.session_id, ctx.session = plan.session.id.key, plan.session.choice.outcome


def note(ctx: RequestContext, report: SessionReport | None, metrics: RouterMetrics) -> None:
    """The decision log records the session's hashed id and the turn's outcome; /metrics counts it."""
    if report is not None:
        ctx.session_id, ctx.session = report.key, report.outcome
        metrics.record_session(ctx.endpoint, report.outcome)


def session_headers(report: SessionReport | None) -> dict[str, str]:
    """``x-intent-router-session`` (the outcome) and ``-session-reason`` (why), ASCII."""
    if report is None:
        return {}
    reason = report.reason.encode("ascii", "replace").decode()
    return {"x-intent-router-session": report.outcome, "x-intent-router-session-reason": reason}


def session_body(report: SessionReport | None) -> RouteSession | None:
    if report is None:
        return None
    return RouteSession(report.key, report.outcome, report.reason, report.sticky)
