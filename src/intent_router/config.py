"""The router's config file: schema, loading and validation. No I/O at import.

Every error is a ConfigError that names the offending field, e.g.
``deployments.gpt-4o.timeout_s: must be a positive number``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, get_args

import yaml

from intent_router.exceptions import ConfigError
from intent_router.labels import HIGH_STAKES_INTENTS, INTENTS
from intent_router.types import OverBudget, RoutingMode, Tier

DEFAULT_CONFIG: Final[Path] = Path(__file__).resolve().parent / "defaults" / "router.yaml"
TIERS: Final[tuple[Tier, ...]] = get_args(Tier)
RETRYABLE_CONDITIONS: Final[frozenset[str]] = frozenset({"429", "529", "5xx", "timeout", "oom"})
#: Where the fast path goes when an OpenAI-compatible deployment sets no api_base.
OPENAI_API_BASES: Final[dict[str, str]] = {
    "openai": "https://api.openai.com/v1",
    "together_ai": "https://api.together.xyz/v1",
}
#: Output tokens assumed per intent when estimating a request's cost before it runs.
DEFAULT_OUTPUT_TOKENS: Final[dict[str, int]] = {
    "code_generation": 800,
    "architecture_review": 900,
    "refactoring": 800,
    "debugging": 600,
    "documentation": 700,
    "security_audit": 800,
    "general": 300,
}
#: Regret (USD a request) of answering a high-stakes request with a cheap intent's chain: a
#: weak answer to a debugging, architecture or security request costs a retry on the premium
#: model plus the developer's time, and a missed vulnerability costs the most.
DEFAULT_UNDER_ROUTING_REGRET: Final[dict[str, float]] = {
    "security_audit": 0.10,
    "debugging": 0.05,
    "architecture_review": 0.05,
}
#: Regret (USD) of any other wrong intent: a mismatched chain preference. Over-routing a cheap
#: request to the premium chain costs its extra spend, which the cost term already counts.
DEFAULT_MISMATCH_REGRET: Final[float] = 0.001
#: Routing modes: ``argmax`` routes the most probable intent; ``regret`` the intent whose chain
#: minimises expected regret plus expected extra cost (routing/regret.py).
ROUTING_MODES: Final[tuple[RoutingMode, ...]] = get_args(RoutingMode)
#: The policy key whose chain serves every intent the policy does not list.
DEFAULT_POLICY: Final[str] = "default"
GROUP_STRATEGIES: Final[tuple[str, ...]] = ("weighted", "least_in_flight", "lowest_latency", "headroom")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class Deployment:
    """One model behind one provider, named the way litellm names models."""

    name: str
    model: str
    tier: Tier
    api_base: str | None
    api_key_env: str | None
    timeout_s: float
    context_window: int
    input_cost_per_mtok: float
    output_cost_per_mtok: float
    retry_on: frozenset[str]
    fallbacks: tuple[str, ...] = ()
    api_style: str = "litellm"  # "openai": the pooled-aiohttp fast path; "litellm": litellm
    cache_read_cost_per_mtok: float | None = None  # a cached input token; None: the input price
    cache_write_cost_per_mtok: float | None = None  # an input token written to the cache; None: input
    group: str | None = None  # a model group: its members share its requests (routing/groups.py)
    weight: float = 1.0  # its share of its group's requests under the "weighted" strategy
    rpm: int | None = None  # requests a minute its key may send (the "headroom" strategy); None: no limit
    tpm: int | None = None  # tokens a minute its key may send (the "headroom" strategy); None: no limit

    @property
    def provider(self) -> str:
        return self.model.split("/", 1)[0]


@dataclass(frozen=True)
class UpstreamLimits:
    """Bounds on what an upstream may send back: everything an upstream sends is untrusted."""

    max_body_bytes: int = 8 * 1024 * 1024
    """A non-streaming answer larger than this is a malformed response (reading stops there)."""
    max_sse_line_bytes: int = 1024 * 1024
    """One SSE line of a stream larger than this is a malformed response."""
    stream_idle_s: float = 60.0
    """Longest wait for the next complete SSE line of a stream (the first one included)."""
    stream_total_s: float = 600.0
    """Longest a stream may last from its request to its end."""
    max_retry_after_s: float = 300.0
    """Longest cooldown an upstream's Retry-After (seconds or an HTTP date) may set."""


@dataclass(frozen=True)
class StorageConfig:
    """Where the decision log lives. ``$INTENT_ROUTER_DATABASE_URL`` overrides the URL (it may
    carry a password, so production sets it in the environment)."""

    database_url: str = "sqlite:///intent-router.db"
    store_prompts: bool = False  # full prompt text in the decision log; a SHA-256 otherwise
    decision_log: bool = True  # False: no decision log, hence no MLflow serving run or feedback

    def resolved_url(self, env_url: str | None = None) -> str:
        """``env_url`` (``ServiceSettings.database_url``: it may hold a password) or the
        configured URL."""
        return env_url or self.database_url


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow serving summaries and sampled traces, built off the request path."""

    enabled: bool = True
    mlflow_tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db
    flush_interval_s: float = 30.0
    trace_sample_rate: float = 0.01
    max_traces_per_minute: int = 60  # a cap on trace-writing work, whatever the traffic
    premium_deployment: str | None = None  # what "always premium" means; None: first fallback_1


@dataclass(frozen=True)
class SensitiveConfig:
    """Secret detection: requests carrying a secret go to the local tier only."""

    detect_secrets: bool = True
    patterns: tuple[tuple[str, str], ...] = ()  # extra (name, regex) rules


@dataclass(frozen=True)
class GovernanceConfig:
    """Client keys, budgets and rate limits. ``$INTENT_ROUTER_REDIS_URL`` overrides the Redis URL
    (it may carry a password, so production sets it in the environment)."""

    client_keys: bool = False  # True: every /v1 request needs a client key (401 otherwise)
    redis_url: str | None = None  # shared counters and cooldowns; None: per worker
    redis_prefix: str = "intent-router:"  # every key's prefix (several deployments, one Redis)
    over_budget: OverBudget = "downgrade"  # "downgrade" to downgrade_tier, or "refuse" with 429
    downgrade_tier: Tier = "primary"

    def resolved_redis_url(self, env_url: str | None = None) -> str | None:
        """``env_url`` (``ServiceSettings.redis_url``: it may hold a password) or the
        configured URL."""
        return env_url or self.redis_url


def default_regret_matrix() -> dict[str, dict[str, float]]:
    """Regret (USD a request) of routing a request of intent ``row`` as intent ``column``:
    0 on the diagonal, the under-routing regret for a high-stakes row and a cheap column, the
    mismatch regret elsewhere."""
    return {
        true: {
            routed: 0.0 if routed == true
            else DEFAULT_UNDER_ROUTING_REGRET[true]
            if true in HIGH_STAKES_INTENTS and routed not in HIGH_STAKES_INTENTS
            else DEFAULT_MISMATCH_REGRET
            for routed in INTENTS
        }
        for true in INTENTS
    }


@dataclass(frozen=True)
class ConversationRule:
    """When and how earlier user turns are classified with the latest one (rule and
    measurement: routing/conversation.py and the README's "Conversations")."""

    enabled: bool = True
    """False: the latest user turn alone, whatever its length."""
    follow_up_max_chars: int = 32
    """A latest user turn this short (stripped) or shorter is a follow-up."""
    max_turns: int = 3
    """User turns read at most, the latest included."""
    char_budget: int = 2000
    """Characters of earlier turns read at most."""
    latest_weight: float = 0.6
    """The latest turn's share of the mixed probabilities (the earlier turns get the rest)."""

    def __post_init__(self) -> None:
        if not 0.5 <= self.latest_weight <= 1.0:
            raise ValueError("latest_weight must lie in [0.5, 1]: the latest turn weighs most")
        if self.max_turns < 1 or self.char_budget < 0 or self.follow_up_max_chars < 0:
            raise ValueError("max_turns must be >= 1; char_budget and follow_up_max_chars >= 0")


#: Intents a session may be upgraded to by default: those whose mistakes cost the most.
DEFAULT_UPGRADE_INTENTS: Final[tuple[str, ...]] = tuple(i for i in INTENTS if i in HIGH_STAKES_INTENTS)


@dataclass(frozen=True)
class SessionRule:
    """Sticky sessions: a conversation stays on the chain its first routed turn chose (rule:
    routing/sessions.py; defaults and why: the README's "Sessions")."""

    enabled: bool = True
    """False: every turn is routed on its own text, as without sessions."""
    ttl_s: float = 3600.0
    """A session idle this long (seconds since its last turn) is routed afresh: one hour, the
    longest a provider keeps a prompt cache (Anthropic's extended cache; OpenAI's evicts
    sooner), so past it the cache that stickiness preserves is gone."""
    max_sessions: int = 100_000
    """Sessions an in-process store keeps at most (least recently used dropped first)."""
    upgrade_intents: tuple[str, ...] = DEFAULT_UPGRADE_INTENTS
    """A turn whose intent is one of these may take over a session stuck to another intent."""
    upgrade_min_confidence: float = 0.8
    """... when the local classifier's confidence reaches this: 0.8, the threshold the bundled
    model routes at without asking the LLM classifier; on the real test split, 94% of the
    high-stakes predictions at or above it are high-stakes (README, "Sticky sessions")."""


@dataclass(frozen=True)
class RegretConfig:
    """Routing on the probability vector (``mode: regret``); see routing/regret.py."""

    mode: RoutingMode = "argmax"
    """``argmax`` (route the most probable intent, escalate below the confidence threshold) or
    ``regret`` (route the intent minimising expected regret plus extra cost; escalate when the
    expected gain of asking exceeds its cost)."""
    weight: float = 2.0
    """Multiplies every regret: 0 routes on cost alone, larger values buy more safety."""
    matrix: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()
    """Regret (USD a request) per true intent and routed-as intent; empty: the default."""
    llm_accuracy: float = 0.9
    """How often the LLM classifier is taken to be right, when valuing an escalation."""
    escalation_latency_s: float = 0.8
    """The time an LLM-classifier call is expected to add."""
    latency_usd_per_s: float = 0.008
    """What a second of added latency is worth, in USD (about $29 an hour: a developer
    waiting on an agent's step)."""

    def regret_matrix(self) -> dict[str, dict[str, float]]:
        """The full matrix: the configured cells over the default ones."""
        full = default_regret_matrix()
        for true, row in self.matrix:
            full[true].update(dict(row))
        return full


@dataclass(frozen=True)
class ModelGroup:
    """Deployments of one model that share its requests, and how they are ordered."""

    name: str
    members: tuple[str, ...]
    strategy: str = "weighted"  # one of GROUP_STRATEGIES (routing/groups.py orders by it)


@dataclass(frozen=True)
class RouterConfig:
    """The whole validated configuration."""

    deployments: dict[str, Deployment]
    policy: dict[str, tuple[str, ...]]
    confidence_threshold: float | None
    request_deadline_s: float
    llm_classifier: str
    llm_classifier_timeout_s: float
    cooldown_failures: int
    cooldown_s: float
    output_tokens: dict[str, int]
    max_body_bytes: int = 1024 * 1024  # larger request bodies get 413
    upstream: UpstreamLimits = UpstreamLimits()
    strict_readiness: bool = False  # True: /readyz answers 503 (not 200) when degraded
    stream_resume: bool = False  # True: a broken stream is continued by the next deployment
    storage: StorageConfig = StorageConfig()
    tracking: TrackingConfig = TrackingConfig()
    sensitive: SensitiveConfig = SensitiveConfig()
    governance: GovernanceConfig = GovernanceConfig()
    conversation: ConversationRule = ConversationRule()
    routing: RegretConfig = RegretConfig()
    groups: dict[str, ModelGroup] = field(default_factory=dict)
    sessions: SessionRule = SessionRule()

    @property
    def premium_deployment(self) -> str:
        """The deployment that "always premium" sends everything to."""
        if self.tracking.premium_deployment is not None:
            return self.tracking.premium_deployment
        return next((n for n, d in self.deployments.items() if d.tier == "fallback_1"),
                    next(iter(self.deployments)))


def load_config(path: Path | str = DEFAULT_CONFIG) -> RouterConfig:
    """Read and validate a YAML config file."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("config", f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError("config", f"{path} is not valid YAML: {exc}") from exc
    return parse_config(raw)


def parse_config(raw: Any) -> RouterConfig:
    """Validate an already parsed config mapping."""
    root = _mapping(raw, "config")
    _no_unknown(root, "config", {"router", "deployments", "policy", "storage", "tracking", "sensitive",
                                 "governance"})
    router = _mapping(root.get("router", {}), "router")
    _no_unknown(router, "router", {"confidence_threshold", "request_deadline_s", "llm_classifier",
                                   "max_body_bytes", "strict_readiness", "stream_resume", "upstream",
                                   "cooldown", "output_tokens", "conversation", "routing", "groups",
                                   "sessions"})
    deployments_raw = _mapping(root.get("deployments"), "deployments")
    if not deployments_raw:
        raise ConfigError("deployments", "at least one deployment is required")
    prices = _cost_map()
    deployments = {
        str(name): _deployment(str(name), spec, prices) for name, spec in deployments_raw.items()
    }
    groups = _groups(router.get("groups", {}), deployments)
    policy = _policy(root.get("policy"), deployments, groups)
    for deployment in deployments.values():
        for index, name in enumerate(deployment.fallbacks):
            if name not in deployments or name == deployment.name:
                raise ConfigError(
                    f"deployments.{deployment.name}.fallbacks[{index}]",
                    f"unknown or self-referencing deployment {name!r}",
                )
    escalation = _mapping(router.get("llm_classifier", {}), "router.llm_classifier")
    _no_unknown(escalation, "router.llm_classifier", {"deployment", "timeout_s"})
    classifier = str(escalation.get("deployment", next(iter(deployments))))
    if classifier not in deployments:
        raise ConfigError("router.llm_classifier.deployment", f"unknown deployment {classifier!r}")
    cooldown = _mapping(router.get("cooldown", {}), "router.cooldown")
    _no_unknown(cooldown, "router.cooldown", {"failures", "seconds"})
    threshold = router.get("confidence_threshold")
    return RouterConfig(
        deployments=deployments,
        policy=policy,
        confidence_threshold=None if threshold is None else _fraction(threshold, "router.confidence_threshold"),
        request_deadline_s=_positive(router.get("request_deadline_s", 60), "router.request_deadline_s"),
        llm_classifier=classifier,
        llm_classifier_timeout_s=_positive(escalation.get("timeout_s", 2.0), "router.llm_classifier.timeout_s"),
        cooldown_failures=_count(cooldown.get("failures", 3), "router.cooldown.failures"),
        cooldown_s=_positive(cooldown.get("seconds", 30), "router.cooldown.seconds"),
        output_tokens=_output_tokens(router.get("output_tokens", {})),
        max_body_bytes=_body_limit(router.get("max_body_bytes", 1024 * 1024)),
        upstream=_upstream(router.get("upstream", {})),
        strict_readiness=_bool(router.get("strict_readiness", False), "router.strict_readiness"),
        stream_resume=_bool(router.get("stream_resume", False), "router.stream_resume"),
        storage=_storage(root.get("storage", {})),
        tracking=_tracking(root.get("tracking", {}), deployments),
        sensitive=_sensitive(root.get("sensitive", {})),
        governance=_governance(root.get("governance", {}), deployments),
        conversation=_conversation(router.get("conversation", {})),
        routing=_routing(router.get("routing", {})),
        groups=groups,
        sessions=_sessions(router.get("sessions", {})),
    )


def _sessions(raw: Any) -> SessionRule:
    where = "router.sessions"
    given = _mapping(raw, where)
    _no_unknown(given, where, {"enabled", "ttl_s", "max_sessions", "upgrade"})
    upgrade = _mapping(given.get("upgrade", {}), f"{where}.upgrade")
    _no_unknown(upgrade, f"{where}.upgrade", {"intents", "min_confidence"})
    default = SessionRule()
    intents = _list(upgrade.get("intents", list(default.upgrade_intents)), f"{where}.upgrade.intents")
    for index, intent in enumerate(intents):
        if intent not in INTENTS:
            raise ConfigError(f"{where}.upgrade.intents[{index}]", f"unknown intent {intent!r}")
    return SessionRule(
        enabled=_bool(given.get("enabled", default.enabled), f"{where}.enabled"),
        ttl_s=_positive(given.get("ttl_s", default.ttl_s), f"{where}.ttl_s"),
        max_sessions=_count(given.get("max_sessions", default.max_sessions), f"{where}.max_sessions"),
        upgrade_intents=tuple(dict.fromkeys(str(i) for i in intents)),
        upgrade_min_confidence=_fraction(upgrade.get("min_confidence", default.upgrade_min_confidence),
                                         f"{where}.upgrade.min_confidence"),
    )


def _conversation(raw: Any) -> ConversationRule:
    where = "router.conversation"
    given = _mapping(raw, where)
    _no_unknown(given, where, {"enabled", "follow_up_max_chars", "max_turns", "char_budget",
                               "latest_weight"})
    default = ConversationRule()
    weight = _fraction(given.get("latest_weight", default.latest_weight), f"{where}.latest_weight")
    if weight < 0.5:
        raise ConfigError(f"{where}.latest_weight", "must be in [0.5, 1]: the latest turn weighs most")
    return ConversationRule(
        enabled=_bool(given.get("enabled", default.enabled), f"{where}.enabled"),
        follow_up_max_chars=_count(given.get("follow_up_max_chars", default.follow_up_max_chars),
                                   f"{where}.follow_up_max_chars"),
        max_turns=_count(given.get("max_turns", default.max_turns), f"{where}.max_turns"),
        char_budget=_count(given.get("char_budget", default.char_budget), f"{where}.char_budget"),
        latest_weight=weight,
    )


def _routing(raw: Any) -> RegretConfig:
    where = "router.routing"
    given = _mapping(raw, where)
    _no_unknown(given, where, {"mode", "weight", "matrix", "llm_accuracy", "escalation_latency_s",
                               "latency_usd_per_s"})
    default = RegretConfig()
    mode = given.get("mode", default.mode)
    if mode not in ROUTING_MODES:
        raise ConfigError(f"{where}.mode", f"must be one of {list(ROUTING_MODES)}")
    return RegretConfig(
        mode=mode,
        weight=_non_negative(given.get("weight", default.weight), f"{where}.weight"),
        matrix=_regret_matrix(given.get("matrix", {}), f"{where}.matrix"),
        llm_accuracy=_fraction(given.get("llm_accuracy", default.llm_accuracy), f"{where}.llm_accuracy"),
        escalation_latency_s=_non_negative(given.get("escalation_latency_s", default.escalation_latency_s),
                                           f"{where}.escalation_latency_s"),
        latency_usd_per_s=_non_negative(given.get("latency_usd_per_s", default.latency_usd_per_s),
                                        f"{where}.latency_usd_per_s"),
    )


def _regret_matrix(raw: Any, where: str) -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
    """Cells given as ``{true intent: {routed-as intent: USD}}``; the diagonal stays 0."""
    rows = _mapping(raw, where)
    _no_unknown(rows, where, set(INTENTS))
    cells = []
    for true, row in rows.items():
        given = _mapping(row, f"{where}.{true}")
        _no_unknown(given, f"{where}.{true}", set(INTENTS))
        if true in given and given[true] != 0:
            raise ConfigError(f"{where}.{true}.{true}", "the diagonal (a right route) must be 0")
        cells.append((str(true), tuple((str(routed), _non_negative(value, f"{where}.{true}.{routed}"))
                                       for routed, value in given.items())))
    return tuple(cells)


def _non_negative(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e12:
        raise ConfigError(where, "must be a number >= 0")
    return float(value)


def _upstream(raw: Any) -> UpstreamLimits:
    upstream = _mapping(raw, "router.upstream")
    _no_unknown(upstream, "router.upstream", {"max_body_bytes", "max_sse_line_bytes", "stream_idle_s",
                                              "stream_total_s", "max_retry_after_s"})
    defaults = UpstreamLimits()
    limits = UpstreamLimits(
        max_body_bytes=_count(upstream.get("max_body_bytes", defaults.max_body_bytes),
                              "router.upstream.max_body_bytes"),
        max_sse_line_bytes=_count(upstream.get("max_sse_line_bytes", defaults.max_sse_line_bytes),
                                  "router.upstream.max_sse_line_bytes"),
        stream_idle_s=_positive(upstream.get("stream_idle_s", defaults.stream_idle_s), "router.upstream.stream_idle_s"),
        stream_total_s=_positive(upstream.get("stream_total_s", defaults.stream_total_s),
                                 "router.upstream.stream_total_s"),
        max_retry_after_s=_positive(upstream.get("max_retry_after_s", defaults.max_retry_after_s),
                                    "router.upstream.max_retry_after_s"),
    )
    for name in ("max_body_bytes", "max_sse_line_bytes"):
        if not 1024 <= getattr(limits, name) <= 1024**3:
            raise ConfigError(f"router.upstream.{name}", "must be between 1024 (1 KiB) and 1073741824 (1 GiB)")
    if limits.stream_idle_s > limits.stream_total_s:
        raise ConfigError("router.upstream.stream_idle_s", "must not exceed router.upstream.stream_total_s")
    return limits


def _governance(raw: Any, deployments: dict[str, Deployment]) -> GovernanceConfig:
    governance = _mapping(raw, "governance")
    _no_unknown(governance, "governance", {"client_keys", "redis_url", "redis_prefix", "over_budget",
                                           "downgrade_tier"})
    prefix = governance.get("redis_prefix", "intent-router:")
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", prefix):
        raise ConfigError("governance.redis_prefix", "must be 1 to 64 letters, digits or _.:-")
    url = _optional_str(governance.get("redis_url"), "governance.redis_url")
    if url is not None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("governance.redis_url", "must be a redis://, rediss:// or unix:// URL")
        if _has_password(url):
            raise ConfigError("governance.redis_url", "holds a password: set $INTENT_ROUTER_REDIS_URL instead")
    over_budget = governance.get("over_budget", "downgrade")
    if over_budget not in ("downgrade", "refuse"):
        raise ConfigError("governance.over_budget", "must be 'downgrade' or 'refuse'")
    tier = governance.get("downgrade_tier", "primary")
    if tier not in TIERS:
        raise ConfigError("governance.downgrade_tier", f"must be one of {list(TIERS)}")
    if over_budget == "downgrade" and not any(d.tier == tier for d in deployments.values()):
        raise ConfigError("governance.downgrade_tier", f"no deployment has tier {tier!r}")
    return GovernanceConfig(client_keys=_bool(governance.get("client_keys", False), "governance.client_keys"),
                            redis_url=url, redis_prefix=prefix, over_budget=over_budget,
                            downgrade_tier=tier)


def _has_password(url: str) -> bool:
    return re.search(r"://[^/@]*:[^/@]*@", url) is not None


def _sensitive(raw: Any) -> SensitiveConfig:
    sensitive = _mapping(raw, "sensitive")
    _no_unknown(sensitive, "sensitive", {"detect_secrets", "patterns"})
    patterns = _mapping(sensitive.get("patterns", {}), "sensitive.patterns")
    rules = []
    for name, pattern in patterns.items():
        where = f"sensitive.patterns.{name}"
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError(where, "must be a non-empty regular expression")
        try:
            re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            raise ConfigError(where, f"is not a valid regular expression: {exc}") from exc
        rules.append((str(name), pattern))
    return SensitiveConfig(detect_secrets=_bool(sensitive.get("detect_secrets", True), "sensitive.detect_secrets"),
                           patterns=tuple(rules))


def _storage(raw: Any) -> StorageConfig:
    storage = _mapping(raw, "storage")
    _no_unknown(storage, "storage", {"database_url", "store_prompts", "decision_log"})
    url = storage.get("database_url", StorageConfig.database_url)
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError("storage.database_url", "must be a SQLAlchemy URL like sqlite:///intent-router.db")
    if _has_password(url):
        raise ConfigError("storage.database_url", "holds a password: set $INTENT_ROUTER_DATABASE_URL instead")
    return StorageConfig(database_url=url,
                         store_prompts=_bool(storage.get("store_prompts", False), "storage.store_prompts"),
                         decision_log=_bool(storage.get("decision_log", True), "storage.decision_log"))


def _tracking(raw: Any, deployments: dict[str, Deployment]) -> TrackingConfig:
    tracking = _mapping(raw, "tracking")
    _no_unknown(tracking, "tracking", {"enabled", "mlflow_tracking_uri", "flush_interval_s",
                                       "trace_sample_rate", "max_traces_per_minute",
                                       "premium_deployment"})
    premium = tracking.get("premium_deployment")
    if premium is not None and (not isinstance(premium, str) or premium not in deployments):
        raise ConfigError("tracking.premium_deployment", f"unknown deployment {premium!r}")
    return TrackingConfig(
        enabled=_bool(tracking.get("enabled", True), "tracking.enabled"),
        mlflow_tracking_uri=_optional_str(tracking.get("mlflow_tracking_uri"), "tracking.mlflow_tracking_uri"),
        flush_interval_s=_positive(tracking.get("flush_interval_s", 30.0), "tracking.flush_interval_s"),
        trace_sample_rate=_fraction(tracking.get("trace_sample_rate", 0.01), "tracking.trace_sample_rate"),
        max_traces_per_minute=_count(tracking.get("max_traces_per_minute", 60), "tracking.max_traces_per_minute"),
        premium_deployment=premium,
    )


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(where, "must be true or false")
    return value


def _output_tokens(raw: Any) -> dict[str, int]:
    """Per-intent output-token estimates; unset intents keep the defaults."""
    given = _mapping(raw, "router.output_tokens")
    _no_unknown(given, "router.output_tokens", set(INTENTS))
    tokens = dict(DEFAULT_OUTPUT_TOKENS)
    for intent, value in given.items():
        tokens[str(intent)] = _count(value, f"router.output_tokens.{intent}")
    return tokens


_DEPLOYMENT_FIELDS = {
    "model", "tier", "api_base", "api_key_env", "timeout_s", "context_window",
    "input_cost_per_mtok", "output_cost_per_mtok", "retry_on", "fallbacks", "api_style",
    "cache_read_cost_per_mtok", "cache_write_cost_per_mtok",
    "group", "weight", "rpm", "tpm",
}


def _deployment(name: str, spec: Any, prices: Mapping[str, Any]) -> Deployment:
    where = f"deployments.{name}"
    spec = _mapping(spec, where)
    _no_unknown(spec, where, _DEPLOYMENT_FIELDS)
    model = spec.get("model")
    if not isinstance(model, str) or "/" not in model:
        raise ConfigError(f"{where}.model", "must be a litellm model id like 'openai/gpt-4o'")
    tier = spec.get("tier")
    if tier not in TIERS:
        raise ConfigError(f"{where}.tier", f"must be one of {list(TIERS)}")
    key_env = spec.get("api_key_env")
    if key_env is not None and (not isinstance(key_env, str) or not _ENV_NAME.match(key_env)):
        raise ConfigError(f"{where}.api_key_env", "must name an environment variable, not hold a key")
    known = _price_entry(model, prices)
    retry = {str(c).lower() for c in _list(spec.get("retry_on", ["429", "5xx", "timeout"]), f"{where}.retry_on")}
    if not retry <= RETRYABLE_CONDITIONS:
        raise ConfigError(f"{where}.retry_on", f"unknown conditions {sorted(retry - RETRYABLE_CONDITIONS)}")
    api_style = _api_style(spec.get("api_style"), model, f"{where}.api_style")
    api_base = _optional_str(spec.get("api_base"), f"{where}.api_base")
    if api_style == "openai" and api_base is None:
        api_base = OPENAI_API_BASES.get(model.split("/", 1)[0])
        if api_base is None:
            raise ConfigError(f"{where}.api_base", "is required when api_style is 'openai'")
    input_price = _price(spec, "input", known, where)
    cache_read = _cache_price(spec, "cache_read", "cache_read_input_token_cost", known, where)
    if cache_read is not None and "cache_read_cost_per_mtok" not in spec:
        cache_read = min(cache_read, input_price)  # a configured input price below the map's
    return Deployment(
        name=name,
        model=model,
        tier=tier,
        api_base=api_base,
        api_key_env=key_env,
        timeout_s=_positive(spec.get("timeout_s", 60), f"{where}.timeout_s"),
        context_window=_count(spec.get("context_window", known.get("max_input_tokens") or 128_000), f"{where}.context_window"),
        input_cost_per_mtok=input_price,
        output_cost_per_mtok=_price(spec, "output", known, where),
        retry_on=frozenset(retry),
        fallbacks=tuple(str(f) for f in _list(spec.get("fallbacks", []), f"{where}.fallbacks")),
        api_style=api_style,
        cache_read_cost_per_mtok=cache_read,
        cache_write_cost_per_mtok=_cache_price(spec, "cache_write", "cache_creation_input_token_cost", known, where),
        group=_optional_str(spec.get("group"), f"{where}.group"),
        weight=_non_negative(spec.get("weight", 1.0), f"{where}.weight"),
        rpm=None if spec.get("rpm") is None else _count(spec["rpm"], f"{where}.rpm"),
        tpm=None if spec.get("tpm") is None else _count(spec["tpm"], f"{where}.tpm"),
    )


def _api_style(value: Any, model: str, where: str) -> str:
    """Default: the fast path for OpenAI itself, litellm for everything else."""
    if value is None:
        return "openai" if model.startswith("openai/") else "litellm"
    if value not in ("openai", "litellm"):
        raise ConfigError(where, "must be 'openai' or 'litellm'")
    return str(value)


def _price(spec: dict[str, Any], side: str, known: dict[str, Any], where: str) -> float:
    price = _configured_price(spec, side, where)
    if price is not None:
        return price
    per_token = known.get(f"{side}_cost_per_token")
    if per_token is None:
        raise ConfigError(f"{where}.{side}_cost_per_mtok", "not in litellm's cost map: set it in the config")
    return float(per_token) * 1_000_000


def _configured_price(spec: dict[str, Any], side: str, where: str) -> float | None:
    """The config's ``<side>_cost_per_mtok``, checked; None when the config does not set it."""
    field = f"{side}_cost_per_mtok"
    if field not in spec:
        return None
    value = spec[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e12:
        raise ConfigError(f"{where}.{field}", "must be a number >= 0")
    return float(value)


def _cache_price(spec: dict[str, Any], side: str, map_field: str, known: dict[str, Any],
                 where: str) -> float | None:
    """A prompt-cache price per million tokens: the config's, else litellm's cost map's, else
    None (such tokens are priced as ordinary input)."""
    price = _configured_price(spec, side, where)
    if price is not None:
        return price
    per_token = known.get(map_field)
    if isinstance(per_token, bool) or not isinstance(per_token, (int, float)) or not 0 <= per_token < 1e6:
        return None
    return float(per_token) * 1_000_000


def _groups(raw: Any, deployments: dict[str, Deployment]) -> dict[str, ModelGroup]:
    """The model groups the deployments' ``group`` fields make, each with its strategy
    (``router.groups.<name>.strategy``, default ``weighted``)."""
    settings = _mapping(raw, "router.groups")
    members: dict[str, list[str]] = {}
    for deployment in deployments.values():
        if deployment.group is not None:
            if deployment.group in deployments:
                raise ConfigError(f"deployments.{deployment.name}.group",
                                  f"{deployment.group!r} is a deployment's name: a group needs its own")
            members.setdefault(deployment.group, []).append(deployment.name)
    groups: dict[str, ModelGroup] = {}
    for name in settings:
        if str(name) not in members:
            raise ConfigError(f"router.groups.{name}", "no deployment has this group")
    for name, names in members.items():
        where = f"router.groups.{name}"
        given = _mapping(settings.get(name, {}), where)
        _no_unknown(given, where, {"strategy"})
        strategy = given.get("strategy", "weighted")
        if strategy not in GROUP_STRATEGIES:
            raise ConfigError(f"{where}.strategy", f"must be one of {list(GROUP_STRATEGIES)}")
        if not any(deployments[n].weight > 0 for n in names):
            raise ConfigError(where, "every member has weight 0: at least one must take requests")
        unlimited = [n for n in names if deployments[n].rpm is None and deployments[n].tpm is None]
        if strategy == "headroom" and unlimited:
            raise ConfigError(f"deployments.{unlimited[0]}.rpm",
                              f"group {name!r} orders by headroom: every member needs rpm or tpm")
        groups[name] = ModelGroup(name, tuple(names), str(strategy))
    return groups


def _policy(raw: Any, deployments: dict[str, Deployment],
            groups: dict[str, ModelGroup] | None = None) -> dict[str, tuple[str, ...]]:
    """The chain of every intent: its own, else ``policy.default``'s (so a small config may
    list one chain for everything). A group's name stands for its first member (which stands
    for the whole group when the chain is walked)."""
    policy = _mapping(raw, "policy")
    _no_unknown(policy, "policy", {*INTENTS, DEFAULT_POLICY})
    aliases = {name: group.members[0] for name, group in (groups or {}).items()}

    def chain_of(key: str) -> tuple[str, ...]:
        entries = policy[key]
        if isinstance(entries, list):
            entries = [aliases.get(e, e) if isinstance(e, str) else e for e in entries]
        return _chain(entries, key, deployments)

    default = chain_of(DEFAULT_POLICY) if DEFAULT_POLICY in policy else None
    chains: dict[str, tuple[str, ...]] = {}
    for intent in INTENTS:
        if intent in policy:
            chains[intent] = chain_of(intent)
        elif default is not None:
            chains[intent] = default
        else:
            raise ConfigError(f"policy.{intent}", "must be a non-empty list of deployment names "
                              "(or set policy.default for every intent without its own)")
    return chains


def _chain(chain: Any, key: str, deployments: dict[str, Deployment]) -> tuple[str, ...]:
    if not isinstance(chain, list) or not chain:
        raise ConfigError(f"policy.{key}", "must be a non-empty list of deployment names")
    for index, name in enumerate(chain):
        if not isinstance(name, str) or name not in deployments:
            raise ConfigError(f"policy.{key}[{index}]", f"unknown deployment {name!r}")
    if len(set(chain)) != len(chain):
        raise ConfigError(f"policy.{key}", "names a deployment twice")
    return tuple(chain)


@functools.cache
def _cost_map() -> Mapping[str, Any]:
    """litellm's bundled cost map, read as a file (importing litellm is slow and may fetch),
    once per process: it is 3 MB of JSON, and a config is parsed more than once."""
    spec = find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return MappingProxyType({})
    path = Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json"
    try:
        return MappingProxyType(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return MappingProxyType({})


def _price_entry(model: str, prices: Mapping[str, Any]) -> dict[str, Any]:
    bare = model.split("/", 1)[1]
    entry = prices.get(model) or prices.get(bare) or {}
    return entry if isinstance(entry, dict) else {}


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(where, "must be a list")
    return value


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(where, "must be a mapping")
    return value


def _no_unknown(mapping: dict[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(str(k) for k in mapping if k not in allowed)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", f"unknown field (allowed: {sorted(allowed)})")


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e12:
        raise ConfigError(where, "must be a positive number")
    return float(value)


def _body_limit(value: Any) -> int:
    limit = _count(value, "router.max_body_bytes")
    if not 1024 <= limit <= 64 * 1024 * 1024:
        raise ConfigError("router.max_body_bytes", "must be between 1024 (1 KiB) and 67108864 (64 MiB)")
    return limit


def _count(value: Any, where: str) -> int:
    """A positive whole number (3 or 3.0, not 0.5: int() would make that 0)."""
    number = _positive(value, where)
    if number != int(number):
        raise ConfigError(where, "must be a positive whole number")
    return int(number)


def _fraction(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(where, "must be a number in [0, 1]")
    return float(value)


def _optional_str(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(where, "must be a string or null")
    return value
