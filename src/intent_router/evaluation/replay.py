"""Pure replay: labeled prompts + the local model's predictions -> what the router would decide
for each prompt and what that, always-premium and always-primary would cost. No I/O, no MLflow."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from intent_router.config import Deployment, RouterConfig
from intent_router.costs import cost_usd
from intent_router.evaluation.data import LabeledPrompt
from intent_router.exceptions import ConfigError
from intent_router.labels import HIGH_STAKES_INTENTS
from intent_router.routing import regret
from intent_router.routing.escalation import build_messages
from intent_router.routing.policy import choose_chain
from intent_router.tokens import count_tokens
from intent_router.types import Prediction

#: ``local``: an escalated prompt keeps the local label (conservative); ``oracle``: the LLM
#: classifier is assumed right (upper bound). Both pay for the classifier call.
ESCALATION_MODES: Final[tuple[str, ...]] = ("local", "oracle")
#: Tokens assumed for the LLM classifier's answer, a one-key JSON object.
CLASSIFIER_OUTPUT_TOKENS: Final[int] = 10


@dataclass(frozen=True)
class PromptTokens:
    """Input tokens of a prompt and of the LLM-classifier request built around it."""

    prompt: int
    classifier_request: int


@dataclass(frozen=True)
class ReplaySettings:
    """The routing rule being replayed and the two fixed policies it is compared with."""

    config: RouterConfig
    threshold: float
    premium: str
    primary: str
    escalation: str = "local"
    mode: str = "argmax"  # or "regret": routing/regret.py with the config's matrix
    weight: float | None = None  # the regret weight; None: the config's
    ask: bool = True  # False: the model alone, never the LLM classifier

    def __post_init__(self) -> None:
        if self.mode not in ("argmax", "regret"):
            raise ValueError("mode must be argmax or regret")
        if self.escalation not in ESCALATION_MODES:
            raise ValueError(f"escalation must be one of {list(ESCALATION_MODES)}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must lie in [0, 1]")
        for role, name in (("premium", self.premium), ("primary", self.primary)):
            if name not in self.config.deployments:
                raise ValueError(f"unknown {role} deployment {name!r}")


@dataclass(frozen=True)
class PromptOutcome:
    """One prompt replayed: the decision, its cost, and the fixed policies' costs."""

    text: str
    true_intent: str
    predicted_intent: str
    confidence: float
    escalated: bool
    final_intent: str
    chain: tuple[str, ...]
    deployment: str
    input_tokens: int
    output_tokens: int
    routed_cost_usd: float  # the routed deployment's answer
    classifier_cost_usd: float  # the LLM-classifier call, when escalated
    premium_cost_usd: float
    primary_cost_usd: float
    routed_price_per_mtok: float  # input + output list price of the routed deployment
    intended_price_per_mtok: float  # ... of the policy's first deployment for the TRUE intent
    routed_as: str = ""  # the intent whose chain was used (regret routing may pick another)

    @property
    def cost_usd(self) -> float:
        """Everything routing this prompt costs: the answer plus any classifier call."""
        return self.routed_cost_usd + self.classifier_cost_usd

    @property
    def correct(self) -> bool:
        return self.final_intent == self.true_intent

    @property
    def local_correct(self) -> bool:
        return self.predicted_intent == self.true_intent

    @property
    def high_stakes(self) -> bool:
        return self.true_intent in HIGH_STAKES_INTENTS

    @property
    def under_routed(self) -> bool:
        """A high-stakes prompt sent somewhere cheaper than its intent's policy wants."""
        return self.high_stakes and self.routed_price_per_mtok < self.intended_price_per_mtok

    @property
    def over_routed(self) -> bool:
        """A cheap-intent prompt sent somewhere pricier than its intent's policy wants."""
        return not self.high_stakes and self.routed_price_per_mtok > self.intended_price_per_mtok

    @property
    def served_as_intended(self) -> bool:
        """Routed to a deployment at least as pricey (as capable) as its true intent's policy's."""
        return self.routed_price_per_mtok >= self.intended_price_per_mtok


def price_per_mtok(deployment: Deployment) -> float:
    """Input plus output list price per million tokens: how capability tiers are compared."""
    return deployment.input_cost_per_mtok + deployment.output_cost_per_mtok


def baseline_deployments(config: RouterConfig, premium: str | None = None) -> tuple[str, str]:
    """(premium, primary): ``premium`` or the config's premium deployment (the first
    ``fallback_1`` unless configured), and the first ``primary``-tier deployment."""
    chosen = premium or config.premium_deployment
    if chosen not in config.deployments:
        raise ConfigError(
            "premium", f"unknown deployment {chosen!r}; known: {sorted(config.deployments)}"
        )
    primary = next((n for n, d in config.deployments.items() if d.tier == "primary"), None)
    if primary is None:
        raise ConfigError("deployments", "no primary-tier deployment to compare with")
    return chosen, primary


def classifier_request_text(prompt: str) -> str:
    """The LLM-classifier request's message contents joined, for counting its input tokens."""
    return "\n".join(message["content"] for message in build_messages(prompt))


def measure_tokens(
    texts: Sequence[str], count: Callable[[str], int] = count_tokens
) -> list[PromptTokens]:
    """Count each prompt's tokens and its classifier request's tokens once, for any replay."""
    return [PromptTokens(count(text), count(classifier_request_text(text))) for text in texts]


def replay(
    examples: Sequence[LabeledPrompt],
    predictions: Sequence[Prediction],
    tokens: Sequence[PromptTokens],
    settings: ReplaySettings,
) -> list[PromptOutcome]:
    """Route every prompt as the router would (policy of the final intent, no overrides)."""
    if not len(examples) == len(predictions) == len(tokens):
        raise ValueError("examples, predictions and tokens must have the same length")
    return [
        _outcome(example, prediction, counted, settings)
        for example, prediction, counted in zip(examples, predictions, tokens)
    ]


def _outcome(
    example: LabeledPrompt, prediction: Prediction, tokens: PromptTokens, settings: ReplaySettings
) -> PromptOutcome:
    config = settings.config
    classifier = config.deployments[config.llm_classifier]
    asking = cost_usd(classifier, tokens.classifier_request, CLASSIFIER_OUTPUT_TOKENS)
    if settings.mode == "regret":
        routed_as, escalated = _regret_route(prediction, tokens, asking, settings)
    else:
        routed_as, escalated = (
            prediction.intent,
            settings.ask and prediction.confidence < settings.threshold,
        )
    oracle = escalated and settings.escalation == "oracle"
    final = example.intent if oracle else prediction.intent
    routed_as = example.intent if oracle else routed_as
    chain = choose_chain(config, routed_as).chain
    routed = config.deployments[chain[0]]
    intended = config.deployments[choose_chain(config, example.intent).chain[0]]
    output_tokens = config.output_tokens[final]

    def at(deployment: Deployment) -> float:
        return cost_usd(deployment, tokens.prompt, output_tokens)

    return PromptOutcome(
        text=example.text,
        true_intent=example.intent,
        predicted_intent=prediction.intent,
        confidence=prediction.confidence,
        escalated=escalated,
        final_intent=final,
        chain=chain,
        deployment=routed.name,
        input_tokens=tokens.prompt,
        output_tokens=output_tokens,
        routed_cost_usd=at(routed),
        classifier_cost_usd=asking if escalated else 0.0,
        premium_cost_usd=at(config.deployments[settings.premium]),
        primary_cost_usd=at(config.deployments[settings.primary]),
        routed_price_per_mtok=price_per_mtok(routed),
        intended_price_per_mtok=price_per_mtok(intended),
        routed_as=routed_as,
    )


def _regret_route(
    prediction: Prediction,
    tokens: PromptTokens,
    asking_usd: float,
    settings: ReplaySettings,
) -> tuple[str, bool]:
    """What the router's regret mode decides: the intent to route as, and whether to ask."""
    config, routing = settings.config, settings.config.routing
    expected_out = round(
        sum(p * config.output_tokens[i] for i, p in prediction.probabilities.items())
    )
    costs = {
        intent: cost_usd(
            config.deployments[choose_chain(config, intent).chain[0]], tokens.prompt, expected_out
        )
        for intent in prediction.probabilities
    }
    weight = routing.weight if settings.weight is None else settings.weight
    asking = asking_usd + routing.escalation_latency_s * routing.latency_usd_per_s
    choice = regret.choose(
        prediction.probabilities,
        routing.regret_matrix(),
        costs,
        weight,
        llm_accuracy=routing.llm_accuracy,
        escalation_cost_usd=asking,
    )
    return choice.routed_as, settings.ask and choice.escalate
