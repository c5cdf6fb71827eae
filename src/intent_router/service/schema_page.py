"""The OpenAPI document and its page, served without any CDN: ``/schema`` is Swagger UI from the
copy litellm ships (a pinned dependency already in the lock), ``/schema/openapi.json`` the
document. Offline, behind a proxy or a strict firewall, the page still loads."""

from __future__ import annotations

import html
import json
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin

TITLE = "intent-router"
DESCRIPTION = (
    "An LLM model router for AI coding agents: a local intent classifier picks the "
    "cheapest model that does each job well. OpenAI-compatible."
)
#: The files Swagger UI needs, by the name they are served under, with their media type.
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
ASSET_ROUTE = "swagger-ui-asset"


def package_version() -> str:
    try:
        return version("intent-router")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def swagger_assets() -> Path | None:
    """litellm's bundled Swagger UI (found without importing litellm), or None."""
    spec = find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "proxy" / "swagger"
    return folder if all((folder / name).is_file() for name in ASSETS) else None


class LocalSwaggerPlugin(OpenAPIRenderPlugin):
    """Swagger UI whose script and stylesheet this service serves itself."""

    def __init__(self, assets: Path, path: str | list[str] = "/") -> None:
        super().__init__(path=path, favicon="")
        self.assets = assets

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        css = request.app.route_reverse(ASSET_ROUTE, asset="swagger-ui.css")
        js = request.app.route_reverse(ASSET_ROUTE, asset="swagger-ui-bundle.js")
        options = json.dumps(
            {
                "url": self.get_openapi_json_route(request),
                "dom_id": "#swagger-ui",
                "deepLinking": True,
                "validatorUrl": None,
            }
        )  # no call to validator.swagger.io
        title = html.escape(str(openapi_schema["info"]["title"]))
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'/><title>{title}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<link rel='stylesheet' href='{css}'>{self.style}</head><body><div id='swagger-ui'></div>"
            f"<script src='{js}'></script><script>const options = {options};"
            "options.presets = [SwaggerUIBundle.presets.apis]; options.layout = 'BaseLayout';"
            "window.ui = SwaggerUIBundle(options);</script></body></html>"
        ).encode()

    def receive_router(self, router: Router) -> None:
        assets = self.assets

        @get(
            "/swagger-ui/{asset:str}",
            name=ASSET_ROUTE,
            include_in_schema=False,
            sync_to_thread=False,
        )
        def serve_asset(asset: str) -> Response[bytes]:
            if asset not in ASSETS:
                raise NotFoundException(f"no asset {asset!r}")
            return Response(
                (assets / asset).read_bytes(),
                media_type=ASSETS[asset],
                headers={"cache-control": "public, max-age=86400"},
            )

        router.register(serve_asset)


def openapi_config() -> OpenAPIConfig:
    """The document's title and version (the package's), and where it is shown: Swagger UI at
    /schema (and /schema/swagger) when its assets are installed, else the JSON there too."""
    assets = swagger_assets()
    plugins: list[OpenAPIRenderPlugin] = [JsonRenderPlugin()]
    if assets is not None:
        plugins.insert(0, LocalSwaggerPlugin(assets, path=["/", "/swagger"]))
    else:
        plugins.append(JsonRenderPlugin(path="/"))
    return OpenAPIConfig(
        title=TITLE,
        version=package_version(),
        description=DESCRIPTION,
        path="/schema",
        render_plugins=plugins,
    )
