"""What a worker serves with: one frozen ``Services``, built and torn down by the app's lifespan
(``open_services``), given to handlers as the ``services`` dependency (``provide_services``) and
to hooks and exception handlers, which see only the request, by ``services_of``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import anyio
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from intent_router.classifier import IntentClassifier
from intent_router.config import RouterConfig
from intent_router.decisions import DecisionStore, DecisionWriter
from intent_router.governance.client_keys import ClientKeyCache, ClientKeyStore
from intent_router.governance.counters import Counters, make_counters
from intent_router.governance.limits import Limits
from intent_router.governance.override_store import OverrideCache, OverrideStore
from intent_router.providers.dispatch import ProviderClients, needs_litellm
from intent_router.router import Router
from intent_router.routing.session_store import make_session_store
from intent_router.routing.shared_usage import SharedUsage
from intent_router.service.metrics import RouterMetrics
from intent_router.service.readiness import KeylessProbe
from intent_router.service.recording import DecisionRecorder
from intent_router.settings import ServiceSettings
from intent_router.tracking import ServingTracker

#: The key of ``app.state`` the lifespan puts the services under: read nowhere but here.
STATE_KEY = "services"


@dataclass(frozen=True, slots=True)
class Services:
    """One worker's router, stores, caches, counters and metrics, alive for the app's lifespan."""

    router: Router
    """Classifies, plans and walks chains; holds the config (``router.config``)."""
    clients: ProviderClients
    """The pooled provider clients the router calls."""
    needs_litellm: bool
    """Some deployment that may be called needs litellm (loaded in the background at start)."""
    metrics: RouterMetrics
    recorder: DecisionRecorder
    """Hands each request's decision to the decision log's writer thread."""
    decisions: DecisionStore | None
    """The decision log, None under ``storage.decision_log: false``."""
    decision_writer: DecisionWriter | None
    override_store: OverrideStore
    override_cache: OverrideCache
    """This worker's snapshot of the team overrides, polled from ``override_store``."""
    key_store: ClientKeyStore
    key_cache: ClientKeyCache
    """This worker's snapshot of the client keys, polled from ``key_store``."""
    limits: Limits
    """Rate limits and budget holds over the shared (Redis) or in-process counters."""
    keyless_probe: KeylessProbe
    started_at: int
    """Unix time the worker started: the ``created`` of /v1/models."""
    settings: ServiceSettings
    """The ``INTENT_ROUTER_*`` environment variables, read once."""


def services_of(app: Litestar) -> Services:
    """The services of a started app (hooks and exception handlers get only the request)."""
    services: Services = app.state[STATE_KEY]
    return services


def maybe_services_of(app: Litestar) -> Services | None:
    """The services, or None before the lifespan built them (an error answered at start)."""
    services: Services | None = app.state.get(STATE_KEY)
    return services


def provide_services(state: State) -> Services:
    """The ``services`` dependency of every handler."""
    services: Services = state[STATE_KEY]
    return services


DEPENDENCIES = {"services": Provide(provide_services, sync_to_thread=False)}


@asynccontextmanager
async def open_services(
    config: RouterConfig, classifier: IntentClassifier, settings: ServiceSettings
) -> AsyncIterator[Services]:
    """Build the services, start their pollers and threads, and close all of it on exit, last
    started first."""
    async with AsyncExitStack() as stack:
        storage_url = config.storage.resolved_url(settings.database_url)
        redis_url = config.governance.resolved_redis_url(settings.redis_url)
        clients = ProviderClients(config.upstream)
        stack.push_async_callback(clients.aclose)
        litellm_needed = needs_litellm(config.deployments.values())
        if litellm_needed:
            # litellm (about 130 MB, seconds to import) loads in the background, only where a
            # deployment that may be called needs it; /readyz says ``warming`` meanwhile.
            clients.warm_up(config.deployments.values())
        counters = make_counters(redis_url, config.governance.redis_prefix)
        stack.push_async_callback(counters.aclose)
        sessions = make_session_store(
            redis_url,
            config.governance.redis_prefix,
            config.sessions.max_sessions,
            grace_s=config.sessions.ttl_s,
        )
        stack.push_async_callback(sessions.aclose)
        router = Router(config, classifier, clients.complete, clients.stream, sessions)
        override_store, key_store = OverrideStore(storage_url), ClientKeyStore(storage_url)
        stack.callback(override_store.dispose)
        stack.callback(key_store.dispose)
        override_cache, key_cache = OverrideCache(override_store), ClientKeyCache(key_store)
        store = DecisionStore(storage_url) if config.storage.decision_log else None
        if store is not None:
            stack.callback(store.dispose)
        await _start_shared_cooldowns(stack, router, config, redis_url)
        _start_shared_usage(stack, router, config, counters, redis_url)
        _start_tracker(stack, config, settings, store)
        writer = DecisionWriter(store) if store is not None else None
        if writer is not None:
            stack.callback(writer.close)  # drains the decision log before the tracker's last flush
        stack.callback(override_cache.stop)
        await anyio.to_thread.run_sync(override_cache.start)  # first load, then polls
        stack.callback(key_cache.stop)
        if config.governance.client_keys:
            await anyio.to_thread.run_sync(key_cache.start)
        yield Services(
            router=router,
            clients=clients,
            needs_litellm=litellm_needed,
            metrics=RouterMetrics(),
            recorder=DecisionRecorder(config, classifier.version, writer, redact=router.redact),
            decisions=store,
            decision_writer=writer,
            override_store=override_store,
            override_cache=override_cache,
            key_store=key_store,
            key_cache=key_cache,
            limits=Limits(counters),
            keyless_probe=KeylessProbe(config),
            started_at=int(time.time()),
            settings=settings,
        )


async def _start_shared_cooldowns(
    stack: AsyncExitStack, router: Router, config: RouterConfig, redis_url: str | None
) -> None:
    if not redis_url:
        return
    from intent_router.routing.shared_cooldowns import SharedCooldowns  # imports redis

    shared = SharedCooldowns(
        router.cooldowns, redis_url, config.deployments, config.governance.redis_prefix
    )
    shared.start()
    stack.push_async_callback(shared.aclose)


def _start_shared_usage(
    stack: AsyncExitStack,
    router: Router,
    config: RouterConfig,
    counters: Counters,
    redis_url: str | None,
) -> None:
    """With Redis, headroom groups read every worker's rpm/tpm usage (routing/shared_usage.py),
    counted in the governance counters."""
    limited = [n for n, d in config.deployments.items() if d.group and (d.rpm or d.tpm)]
    if not (redis_url and limited):
        return
    shared = SharedUsage(router.usage, counters, limited)
    shared.start()
    stack.push_async_callback(shared.aclose)  # stopped before the counters close (started after)


def _start_tracker(
    stack: AsyncExitStack,
    config: RouterConfig,
    settings: ServiceSettings,
    store: DecisionStore | None,
) -> None:
    """MLflow tracking from a thread of this worker; not when ``python -m intent_router.service``
    runs the tracker as a process of its own beside the workers."""
    if not (config.tracking.enabled and store is not None) or settings.tracker_process:
        return
    tracker = ServingTracker(
        store,
        config.tracking.mlflow_tracking_uri,
        config.tracking.flush_interval_s,
        max_traces_per_minute=config.tracking.max_traces_per_minute,
    )
    tracker.start()
    stack.callback(tracker.stop, timeout_s=10)
