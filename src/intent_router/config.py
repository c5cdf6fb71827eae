"""The router's config file: schema, loading and validation. No I/O at import.

The file's schema is a set of msgspec Structs (types, bounds, no unknown fields); what a schema
cannot say (names that refer to deployments, groups and intents; prices from litellm's cost
map) is checked by hand after it. Every error is a ConfigError that names the offending field,
e.g. ``deployments.gpt-4o.timeout_s: must be a number > 0.0``.
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
from typing import Annotated, Any, Final, Literal, TypeVar, get_args, overload

import msgspec
import yaml
from msgspec import UNSET, Meta, Struct, UnsetType

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
GroupStrategy = Literal["weighted", "least_in_flight", "lowest_latency", "headroom"]
GROUP_STRATEGIES: Final[tuple[GroupStrategy, ...]] = get_args(GroupStrategy)
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
    cache_write_cost_per_mtok: float | None = (
        None  # an input token written to the cache; None: input
    )
    group: str | None = None  # a model group: its members share its requests (routing/groups.py)
    weight: float = 1.0  # its share of its group's requests under the "weighted" strategy
    rpm: int | None = (
        None  # requests a minute its key may send (the "headroom" strategy); None: no limit
    )
    tpm: int | None = (
        None  # tokens a minute its key may send (the "headroom" strategy); None: no limit
    )

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
            routed: 0.0
            if routed == true
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
DEFAULT_UPGRADE_INTENTS: Final[tuple[str, ...]] = tuple(
    i for i in INTENTS if i in HIGH_STAKES_INTENTS
)


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
        return next(
            (n for n, d in self.deployments.items() if d.tier == "fallback_1"),
            next(iter(self.deployments)),
        )


def load_config(path: Path | str = DEFAULT_CONFIG) -> RouterConfig:
    """Read and validate a YAML config file."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "config", f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from exc
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError("config", f"{path} is not valid YAML: {exc}") from exc
    return parse_config(raw)


# --- the file's schema ------------------------------------------------------------------------
# The config file as msgspec Structs: types, bounds (``Meta``) and unknown fields are checked by
# ``msgspec.convert``; each default is stated once, on the public dataclass above where it has
# one, else here. Mappings keyed by names (deployments, policy, groups, ...) are typed
# ``dict[str, Any]`` and each value converted on its own, so an error names its key. Every
# Struct is frozen (a default is shared) and forbids unknown fields.

Positive = Annotated[float, Meta(gt=0, lt=1e12)]
NonNegative = Annotated[float, Meta(ge=0, lt=1e12)]
Fraction = Annotated[float, Meta(ge=0, le=1)]
Count = Annotated[int, Meta(gt=0, lt=10**12)]
Names = dict[str, Any]  # a mapping keyed by names; each value is converted with its key in the path


class _Upstream(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    max_body_bytes: Annotated[int, Meta(ge=1024, le=1024**3)] = UpstreamLimits.max_body_bytes
    max_sse_line_bytes: Annotated[int, Meta(ge=1024, le=1024**3)] = (
        UpstreamLimits.max_sse_line_bytes
    )
    stream_idle_s: Positive = UpstreamLimits.stream_idle_s
    stream_total_s: Positive = UpstreamLimits.stream_total_s
    max_retry_after_s: Positive = UpstreamLimits.max_retry_after_s


class _LlmClassifier(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    deployment: str | None = None  # None: the first deployment
    timeout_s: Positive = 2.0


class _Cooldown(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    failures: Count = 3
    seconds: Positive = 30.0


class _Conversation(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    enabled: bool = ConversationRule.enabled
    follow_up_max_chars: Count = ConversationRule.follow_up_max_chars
    max_turns: Count = ConversationRule.max_turns
    char_budget: Count = ConversationRule.char_budget
    latest_weight: Annotated[float, Meta(ge=0.5, le=1)] = (
        ConversationRule.latest_weight
    )  # the latest weighs most


class _Upgrade(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    intents: list[str] = msgspec.field(default_factory=lambda: list(SessionRule.upgrade_intents))
    min_confidence: Fraction = SessionRule.upgrade_min_confidence


class _Sessions(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    enabled: bool = SessionRule.enabled
    ttl_s: Positive = SessionRule.ttl_s
    max_sessions: Count = SessionRule.max_sessions
    upgrade: _Upgrade = _Upgrade()


class _Routing(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    mode: RoutingMode = RegretConfig.mode
    weight: NonNegative = RegretConfig.weight
    matrix: Names = {}
    llm_accuracy: Fraction = RegretConfig.llm_accuracy
    escalation_latency_s: NonNegative = RegretConfig.escalation_latency_s
    latency_usd_per_s: NonNegative = RegretConfig.latency_usd_per_s


class _Group(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    strategy: GroupStrategy = "weighted"


class _Router(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    confidence_threshold: Fraction | None = None  # None: the model's recommended threshold
    request_deadline_s: Positive = 60.0
    llm_classifier: _LlmClassifier = _LlmClassifier()
    max_body_bytes: Annotated[int, Meta(ge=1024, le=64 * 1024 * 1024)] = RouterConfig.max_body_bytes
    strict_readiness: bool = RouterConfig.strict_readiness
    stream_resume: bool = RouterConfig.stream_resume
    upstream: _Upstream = _Upstream()
    cooldown: _Cooldown = _Cooldown()
    output_tokens: Names = {}
    conversation: _Conversation = _Conversation()
    routing: _Routing = _Routing()
    groups: Names = {}
    sessions: _Sessions = _Sessions()


class _Storage(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    database_url: Annotated[str, Meta(pattern="://")] = StorageConfig.database_url
    store_prompts: bool = StorageConfig.store_prompts
    decision_log: bool = StorageConfig.decision_log


class _Tracking(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    enabled: bool = TrackingConfig.enabled
    mlflow_tracking_uri: str | None = TrackingConfig.mlflow_tracking_uri
    flush_interval_s: Positive = TrackingConfig.flush_interval_s
    trace_sample_rate: Fraction = TrackingConfig.trace_sample_rate
    max_traces_per_minute: Count = TrackingConfig.max_traces_per_minute
    premium_deployment: str | None = TrackingConfig.premium_deployment


class _Sensitive(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    detect_secrets: bool = SensitiveConfig.detect_secrets
    patterns: Names = {}


class _Governance(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    client_keys: bool = GovernanceConfig.client_keys
    redis_url: Annotated[str, Meta(pattern=r"^(redis|rediss|unix)://")] | None = (
        GovernanceConfig.redis_url
    )
    redis_prefix: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = (
        GovernanceConfig.redis_prefix
    )
    over_budget: OverBudget = GovernanceConfig.over_budget
    downgrade_tier: Tier = GovernanceConfig.downgrade_tier


class _Deployment(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    model: Annotated[str, Meta(pattern="/")]
    tier: Tier
    api_base: str | None = None  # None: litellm's default, or OPENAI_API_BASES for api_style openai
    api_style: Literal["openai", "litellm"] | None = (
        None  # None: openai for OpenAI's models, else litellm
    )
    api_key_env: Annotated[str, Meta(pattern=_ENV_NAME.pattern)] | None = None
    timeout_s: Positive = 60.0
    context_window: Count | UnsetType = UNSET  # unset: litellm's cost map, else 128k
    input_cost_per_mtok: NonNegative | UnsetType = UNSET  # unset: litellm's cost map
    output_cost_per_mtok: NonNegative | UnsetType = UNSET
    cache_read_cost_per_mtok: NonNegative | UnsetType = UNSET  # unset: the map's, else as input
    cache_write_cost_per_mtok: NonNegative | UnsetType = UNSET
    retry_on: list[str | int] = msgspec.field(default_factory=lambda: ["429", "5xx", "timeout"])
    fallbacks: list[str] = []
    group: str | None = None
    weight: NonNegative = Deployment.weight
    rpm: Count | None = Deployment.rpm
    tpm: Count | None = Deployment.tpm


class _Config(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    deployments: Names
    policy: Names
    router: _Router = _Router()
    storage: _Storage = _Storage()
    tracking: _Tracking = _Tracking()
    sensitive: _Sensitive = _Sensitive()
    governance: _Governance = _Governance()


#: What a field must hold, where msgspec's own words ("Expected `str` matching regex ...",
#: "Invalid enum value 'x'") would not tell a reader: by the field's last name.
_HINTS: Final[dict[str, str]] = {
    "model": "must be a litellm model id like 'openai/gpt-4o'",
    "tier": f"must be one of {list(TIERS)}",
    "downgrade_tier": f"must be one of {list(TIERS)}",
    "api_style": "must be 'openai' or 'litellm'",
    "api_key_env": "must name an environment variable, not hold a key",
    "mode": f"must be one of {list(ROUTING_MODES)}",
    "strategy": f"must be one of {list(GROUP_STRATEGIES)}",
    "over_budget": "must be 'downgrade' or 'refuse'",
    "database_url": "must be a SQLAlchemy URL like sqlite:///intent-router.db",
    "redis_url": "must be a redis://, rediss:// or unix:// URL, or null",
    "redis_prefix": "must be 1 to 64 letters, digits or _.:-",
}
_ERROR = re.compile(
    r"(?P<problem>.*?)(?: - at `(?P<path>[^`]*)`(?: in `(?P<outer>[^`]*)`)?)?", re.DOTALL
)
_NAMED_FIELD = re.compile(
    r"Object (?P<what>contains unknown|missing required) field `(?P<name>[^`]*)`"
)
#: msgspec's type names, as the problem says them: what a field must be, and what it got.
_EXPECTED: Final[dict[str, str]] = {
    "object": "a mapping",
    "array": "a list",
    "float": "a number",
    "int": "an integer",
    "bool": "true or false",
    "str": "a string",
}
_GOT: Final[dict[str, str]] = {**_EXPECTED, "float": "a float", "bool": "a boolean"}


_T = TypeVar("_T")


@overload
def _convert(value: Any, schema: type[_T], where: str) -> _T: ...
@overload
def _convert(value: Any, schema: Any, where: str) -> Any: ...
def _convert(value: Any, schema: Any, where: str) -> Any:
    """``value`` as ``schema`` (a Struct or a type), or a ConfigError naming the field under
    ``where`` (``""``: the file's root) that msgspec refused."""
    try:
        return msgspec.convert(value, schema)
    except msgspec.ValidationError as exc:
        raise _config_error(str(exc), where) from None


def _config_error(message: str, where: str) -> ConfigError:
    """msgspec's ``Expected `float` > 0.0 - at `$.upstream.stream_idle_s``` as
    ``<where>.upstream.stream_idle_s: must be a number > 0.0``."""
    match = _ERROR.fullmatch(message)
    problem = match["problem"] if match else message
    path = (match["outer"] or match["path"] or "$") if match else "$"
    field_ = (where + path.removeprefix("$")).lstrip(".")
    named = _NAMED_FIELD.fullmatch(problem)
    if match and match["outer"]:  # "Expected `str` - at `key` in `$.x`": a key of $.x
        problem = "has a key that is not a string"
    elif named and named["what"] == "contains unknown":
        field_, problem = f"{field_ or 'config'}.{named['name']}", "unknown field"
    elif named:
        field_, problem = f"{field_}.{named['name']}".lstrip("."), "is required"
    else:
        expected, _, got = problem.partition(", got ")
        expected = re.sub(
            r"`([^`]*)`",
            lambda m: " or ".join(_EXPECTED.get(t, t) for t in m[1].split(" | ")),
            expected.replace("Expected ", "must be ", 1),
        )
        problem = f"{expected}, got {_GOT.get(got.strip('`'), got.strip('`'))}" if got else expected
        problem = _HINTS.get(re.split(r"[.\[]", field_)[-1], problem)
    return ConfigError(field_ or "config", problem)


# --- validation: the schema, then cross-references ------------------------------------------


def parse_config(raw: Any) -> RouterConfig:
    """Validate an already parsed config mapping."""
    config = _convert(raw, _Config, "")
    router = config.router
    if not config.deployments:
        raise ConfigError("deployments", "at least one deployment is required")
    prices = _cost_map()
    deployments = {
        name: _deployment(name, spec, prices) for name, spec in config.deployments.items()
    }
    groups = _groups(router.groups, deployments)
    policy = _policy(config.policy, deployments, groups)
    for deployment in deployments.values():
        for index, name in enumerate(deployment.fallbacks):
            if name not in deployments or name == deployment.name:
                raise ConfigError(
                    f"deployments.{deployment.name}.fallbacks[{index}]",
                    f"unknown or self-referencing deployment {name!r}",
                )
    classifier = router.llm_classifier.deployment or next(iter(deployments))
    if classifier not in deployments:
        raise ConfigError("router.llm_classifier.deployment", f"unknown deployment {classifier!r}")
    return RouterConfig(
        deployments=deployments,
        policy=policy,
        confidence_threshold=router.confidence_threshold,
        request_deadline_s=router.request_deadline_s,
        llm_classifier=classifier,
        llm_classifier_timeout_s=router.llm_classifier.timeout_s,
        cooldown_failures=router.cooldown.failures,
        cooldown_s=router.cooldown.seconds,
        output_tokens=_output_tokens(router.output_tokens),
        max_body_bytes=router.max_body_bytes,
        upstream=_upstream(router.upstream),
        strict_readiness=router.strict_readiness,
        stream_resume=router.stream_resume,
        storage=_storage(config.storage),
        tracking=_tracking(config.tracking, deployments),
        sensitive=_sensitive(config.sensitive),
        governance=_governance(config.governance, deployments),
        conversation=ConversationRule(**msgspec.structs.asdict(router.conversation)),
        routing=_routing(router.routing),
        groups=groups,
        sessions=_sessions(router.sessions),
    )


def _sessions(given: _Sessions) -> SessionRule:
    for index, intent in enumerate(given.upgrade.intents):
        if intent not in INTENTS:
            raise ConfigError(
                f"router.sessions.upgrade.intents[{index}]", f"unknown intent {intent!r}"
            )
    return SessionRule(
        enabled=given.enabled,
        ttl_s=given.ttl_s,
        max_sessions=given.max_sessions,
        upgrade_intents=tuple(dict.fromkeys(given.upgrade.intents)),
        upgrade_min_confidence=given.upgrade.min_confidence,
    )


def _routing(given: _Routing) -> RegretConfig:
    return RegretConfig(
        mode=given.mode,
        weight=given.weight,
        matrix=_regret_matrix(given.matrix, "router.routing.matrix"),
        llm_accuracy=given.llm_accuracy,
        escalation_latency_s=given.escalation_latency_s,
        latency_usd_per_s=given.latency_usd_per_s,
    )


def _regret_matrix(
    rows: Names, where: str
) -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
    """Cells given as ``{true intent: {routed-as intent: USD}}``; the diagonal stays 0."""
    _no_unknown(rows, where, set(INTENTS))
    cells = []
    for true, row in rows.items():
        given = _convert(row, Names, f"{where}.{true}")
        _no_unknown(given, f"{where}.{true}", set(INTENTS))
        if true in given and given[true] != 0:
            raise ConfigError(f"{where}.{true}.{true}", "the diagonal (a right route) must be 0")
        values = (
            (routed, _convert(value, NonNegative, f"{where}.{true}.{routed}"))
            for routed, value in given.items()
        )
        cells.append((true, tuple(values)))
    return tuple(cells)


def _upstream(given: _Upstream) -> UpstreamLimits:
    if given.stream_idle_s > given.stream_total_s:
        raise ConfigError(
            "router.upstream.stream_idle_s", "must not exceed router.upstream.stream_total_s"
        )
    return UpstreamLimits(**msgspec.structs.asdict(given))


def _governance(given: _Governance, deployments: dict[str, Deployment]) -> GovernanceConfig:
    if given.redis_url is not None and _has_password(given.redis_url):
        raise ConfigError(
            "governance.redis_url", "holds a password: set $INTENT_ROUTER_REDIS_URL instead"
        )
    tier = given.downgrade_tier
    if given.over_budget == "downgrade" and not any(d.tier == tier for d in deployments.values()):
        raise ConfigError("governance.downgrade_tier", f"no deployment has tier {tier!r}")
    return GovernanceConfig(**msgspec.structs.asdict(given))


def _has_password(url: str) -> bool:
    return re.search(r"://[^/@]*:[^/@]*@", url) is not None


def _sensitive(given: _Sensitive) -> SensitiveConfig:
    rules = []
    for name, pattern in given.patterns.items():
        where = f"sensitive.patterns.{name}"
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError(where, "must be a non-empty regular expression")
        try:
            re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            raise ConfigError(where, f"is not a valid regular expression: {exc}") from exc
        rules.append((name, pattern))
    return SensitiveConfig(detect_secrets=given.detect_secrets, patterns=tuple(rules))


def _storage(given: _Storage) -> StorageConfig:
    if _has_password(given.database_url):
        raise ConfigError(
            "storage.database_url", "holds a password: set $INTENT_ROUTER_DATABASE_URL instead"
        )
    return StorageConfig(**msgspec.structs.asdict(given))


def _tracking(given: _Tracking, deployments: dict[str, Deployment]) -> TrackingConfig:
    premium = given.premium_deployment
    if premium is not None and premium not in deployments:
        raise ConfigError("tracking.premium_deployment", f"unknown deployment {premium!r}")
    return TrackingConfig(**msgspec.structs.asdict(given))


def _output_tokens(given: Names) -> dict[str, int]:
    """Per-intent output-token estimates; unset intents keep the defaults."""
    _no_unknown(given, "router.output_tokens", set(INTENTS))
    tokens = dict(DEFAULT_OUTPUT_TOKENS)
    for intent, value in given.items():
        tokens[intent] = _convert(value, Count, f"router.output_tokens.{intent}")
    return tokens


def _deployment(name: str, raw: Any, prices: Mapping[str, Any]) -> Deployment:
    """The schema, then what it cannot say: retry conditions, the fast path's api_base and
    prices from litellm's cost map where the config gives none."""
    where = f"deployments.{name}"
    spec = _convert(raw, _Deployment, where)
    known = _price_entry(spec.model, prices)
    retry = {str(c).lower() for c in spec.retry_on}
    if not retry <= RETRYABLE_CONDITIONS:
        raise ConfigError(
            f"{where}.retry_on", f"unknown conditions {sorted(retry - RETRYABLE_CONDITIONS)}"
        )
    api_style = spec.api_style or ("openai" if spec.model.startswith("openai/") else "litellm")
    api_base = spec.api_base
    if api_style == "openai" and api_base is None:
        api_base = OPENAI_API_BASES.get(spec.model.split("/", 1)[0])
        if api_base is None:
            raise ConfigError(f"{where}.api_base", "is required when api_style is 'openai'")
    input_price = _price(
        spec.input_cost_per_mtok, known.get("input_cost_per_token"), f"{where}.input_cost_per_mtok"
    )
    cache_read = _cache_price(
        spec.cache_read_cost_per_mtok, known.get("cache_read_input_token_cost")
    )
    if cache_read is not None and spec.cache_read_cost_per_mtok is UNSET:
        cache_read = min(cache_read, input_price)  # a configured input price below the map's
    context_window = spec.context_window
    if context_window is UNSET:
        context_window = _convert(
            known.get("max_input_tokens") or 128_000, Count, f"{where}.context_window"
        )
    return Deployment(
        name=name,
        model=spec.model,
        tier=spec.tier,
        api_base=api_base,
        api_key_env=spec.api_key_env,
        timeout_s=spec.timeout_s,
        context_window=context_window,
        input_cost_per_mtok=input_price,
        output_cost_per_mtok=_price(
            spec.output_cost_per_mtok,
            known.get("output_cost_per_token"),
            f"{where}.output_cost_per_mtok",
        ),
        retry_on=frozenset(retry),
        fallbacks=tuple(spec.fallbacks),
        api_style=api_style,
        cache_read_cost_per_mtok=cache_read,
        cache_write_cost_per_mtok=_cache_price(
            spec.cache_write_cost_per_mtok, known.get("cache_creation_input_token_cost")
        ),
        group=spec.group,
        weight=spec.weight,
        rpm=spec.rpm,
        tpm=spec.tpm,
    )


def _price(configured: float | UnsetType, per_token: Any, where: str) -> float:
    """A price per million tokens: the config's, else litellm's cost map's."""
    if configured is not UNSET:
        return configured
    if per_token is None:
        raise ConfigError(where, "not in litellm's cost map: set it in the config")
    return float(per_token) * 1_000_000


def _cache_price(configured: float | UnsetType, per_token: Any) -> float | None:
    """A prompt-cache price per million tokens: the config's, else litellm's cost map's, else
    None (such tokens are priced as ordinary input)."""
    if configured is not UNSET:
        return configured
    if (
        isinstance(per_token, bool)
        or not isinstance(per_token, (int, float))
        or not 0 <= per_token < 1e6
    ):
        return None
    return float(per_token) * 1_000_000


def _groups(settings: Names, deployments: dict[str, Deployment]) -> dict[str, ModelGroup]:
    """The model groups the deployments' ``group`` fields make, each with its strategy
    (``router.groups.<name>.strategy``, default ``weighted``)."""
    members: dict[str, list[str]] = {}
    for deployment in deployments.values():
        if deployment.group is not None:
            if deployment.group in deployments:
                raise ConfigError(
                    f"deployments.{deployment.name}.group",
                    f"{deployment.group!r} is a deployment's name: a group needs its own",
                )
            members.setdefault(deployment.group, []).append(deployment.name)
    groups: dict[str, ModelGroup] = {}
    for name in settings:
        if name not in members:
            raise ConfigError(f"router.groups.{name}", "no deployment has this group")
    for name, names in members.items():
        where = f"router.groups.{name}"
        strategy = _convert(settings.get(name, {}), _Group, where).strategy
        if not any(deployments[n].weight > 0 for n in names):
            raise ConfigError(where, "every member has weight 0: at least one must take requests")
        unlimited = [n for n in names if deployments[n].rpm is None and deployments[n].tpm is None]
        if strategy == "headroom" and unlimited:
            raise ConfigError(
                f"deployments.{unlimited[0]}.rpm",
                f"group {name!r} orders by headroom: every member needs rpm or tpm",
            )
        groups[name] = ModelGroup(name, tuple(names), strategy)
    return groups


def _policy(
    policy: Names, deployments: dict[str, Deployment], groups: dict[str, ModelGroup] | None = None
) -> dict[str, tuple[str, ...]]:
    """The chain of every intent: its own, else ``policy.default``'s (so a small config may
    list one chain for everything). A group's name stands for its first member (which stands
    for the whole group when the chain is walked)."""
    _no_unknown(policy, "policy", {*INTENTS, DEFAULT_POLICY})
    aliases = {name: group.members[0] for name, group in (groups or {}).items()}

    def chain_of(key: str) -> tuple[str, ...]:
        chain = [aliases.get(e, e) for e in _convert(policy[key], list[str], f"policy.{key}")]
        return _chain(chain, key, deployments)

    default = chain_of(DEFAULT_POLICY) if DEFAULT_POLICY in policy else None
    chains: dict[str, tuple[str, ...]] = {}
    for intent in INTENTS:
        if intent in policy:
            chains[intent] = chain_of(intent)
        elif default is not None:
            chains[intent] = default
        else:
            raise ConfigError(
                f"policy.{intent}",
                "must be a non-empty list of deployment names "
                "(or set policy.default for every intent without its own)",
            )
    return chains


def _chain(chain: list[str], key: str, deployments: dict[str, Deployment]) -> tuple[str, ...]:
    if not chain:
        raise ConfigError(f"policy.{key}", "must be a non-empty list of deployment names")
    for index, name in enumerate(chain):
        if name not in deployments:
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
    path = (
        Path(next(iter(spec.submodule_search_locations)))
        / "model_prices_and_context_window_backup.json"
    )
    try:
        return MappingProxyType(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return MappingProxyType({})


def _price_entry(model: str, prices: Mapping[str, Any]) -> dict[str, Any]:
    bare = model.split("/", 1)[1]
    entry = prices.get(model) or prices.get(bare) or {}
    return entry if isinstance(entry, dict) else {}


def _no_unknown(mapping: Names, where: str, allowed: set[str]) -> None:
    unknown = sorted(k for k in mapping if k not in allowed)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", f"unknown field (allowed: {sorted(allowed)})")
