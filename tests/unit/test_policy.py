import pytest
from hypothesis import given
from hypothesis import strategies as st

from intent_router.config import load_config, parse_config
from intent_router.exceptions import InvalidRequestError
from intent_router.labels import INTENTS
from intent_router.routing.policy import NoLocalDeploymentError, choose_chain

CONFIG = load_config()


@pytest.mark.parametrize(
    "intent, first",
    [
        ("code_generation", "kimi-k2.6"),
        ("architecture_review", "claude-sonnet-4"),
        ("refactoring", "kimi-k2.6"),
        ("debugging", "claude-sonnet-4"),
        ("documentation", "kimi-k2.6"),
        ("security_audit", "claude-sonnet-4"),
        ("general", "kimi-k2.6"),
    ],
)
def test_auto_follows_the_default_intent_policy(intent: str, first: str) -> None:
    choice = choose_chain(CONFIG, intent)
    cloud = {n for n, d in CONFIG.deployments.items() if d.tier != "local"}
    assert choice.chain[0] == first and set(choice.chain) == cloud


def test_a_policy_chain_continues_along_its_fallbacks() -> None:
    # architecture_review lists three; kimi-k2.6's fallback (Together) is appended.
    assert choose_chain(CONFIG, "architecture_review").chain == (
        "claude-sonnet-4",
        "gpt-4o",
        "kimi-k2.6",
        "kimi-k2.6-together",
    )


def test_a_concrete_deployment_keeps_its_fallback_chain() -> None:
    assert choose_chain(CONFIG, "general", "claude-sonnet-4").chain == ("claude-sonnet-4", "gpt-4o")
    assert choose_chain(CONFIG, "general", "openai/gpt-4o").chain == ("gpt-4o", "claude-sonnet-4")


def test_unknown_models_are_a_client_error() -> None:
    with pytest.raises(InvalidRequestError, match="unknown model"):
        choose_chain(CONFIG, "general", "gpt-9")


@given(st.sampled_from(INTENTS), st.sampled_from(["auto", *CONFIG.deployments]))
def test_sensitive_requests_only_ever_get_the_local_tier(intent: str, model: str) -> None:
    chain = choose_chain(CONFIG, intent, model, sensitive=True).chain
    assert chain and all(CONFIG.deployments[n].tier == "local" for n in chain)


@given(st.sampled_from(INTENTS), st.sampled_from(["auto", *CONFIG.deployments]))
def test_chains_name_known_deployments_once(intent: str, model: str) -> None:
    chain = choose_chain(CONFIG, intent, model).chain
    assert len(set(chain)) == len(chain) and set(chain) <= set(CONFIG.deployments)


def test_sensitive_without_a_local_tier_fails_closed() -> None:
    import yaml

    from intent_router.config import DEFAULT_CONFIG

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    del raw["deployments"]["qwen-32b-local"]
    config = parse_config(raw)
    with pytest.raises(NoLocalDeploymentError):
        choose_chain(config, "debugging", sensitive=True)


def test_fallback_cycles_terminate() -> None:
    # kimi -> together, claude -> claude, gpt -> claude: each appears once.
    assert choose_chain(CONFIG, "general", "kimi-k2.6").chain == (
        "kimi-k2.6",
        "kimi-k2.6-together",
        "claude-sonnet-4",
        "gpt-4o",
    )
