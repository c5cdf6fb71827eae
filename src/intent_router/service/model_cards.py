"""GET /v1/models and GET /v1/models/{model}: ``auto`` and every deployment, as OpenAI lists models."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import Parameter

from intent_router.config import RouterConfig
from intent_router.exceptions import UnknownModelError
from intent_router.routing.policy import AUTO_MODELS, deployment_named
from intent_router.service.client_auth import require_client_key
from intent_router.service.openapi import AUTH_ERRORS, MODEL_ERRORS
from intent_router.service.schemas import ModelCard, ModelList
from intent_router.service.services import Services

ROUTER_OWNER = "intent-router"


def model_cards(config: RouterConfig, created: int) -> list[ModelCard]:
    """``auto`` first (owned by the router), then each deployment (owned by its provider);
    ``created`` is when this service started."""
    cards = [ModelCard(id="auto", created=created, owned_by=ROUTER_OWNER)]
    cards += [
        ModelCard(id=name, created=created, owned_by=d.provider)
        for name, d in config.deployments.items()
    ]
    return cards


def model_card(config: RouterConfig, created: int, model: str) -> ModelCard:
    """The card of ``model``: ``auto`` (or ``intent-router``) or a deployment's name."""
    if model in AUTO_MODELS:
        return ModelCard(id=model, created=created, owned_by=ROUTER_OWNER)
    try:  # chat takes a deployment's name or its upstream model id: so does this
        deployment = config.deployments[deployment_named(config, model)]
    except UnknownModelError:
        raise UnknownModelError(
            f"unknown model {model!r}; GET /v1/models lists 'auto' and every deployment"
        ) from None
    return ModelCard(id=model, created=created, owned_by=deployment.provider)


@get("/v1/models", sync_to_thread=False, before_request=require_client_key, responses=AUTH_ERRORS)
def list_models(services: Services) -> ModelList:
    """``auto`` plus every configured deployment."""
    return ModelList(data=model_cards(services.router.config, services.started_at))


@get(
    "/v1/models/{model:path}",
    sync_to_thread=False,
    before_request=require_client_key,
    responses=MODEL_ERRORS,
    operation_id="retrieveModel",
)
def get_model(services: Services, model: Annotated[str, Parameter(max_length=512)]) -> ModelCard:
    """One model: ``auto`` or a deployment (404 ``model_not_found`` otherwise)."""
    return model_card(services.router.config, services.started_at, model.lstrip("/"))


MODEL_HANDLERS = [list_models, get_model]
