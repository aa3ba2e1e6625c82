"""The OpenAPI docs page (/docs), served offline: Swagger UI's files come from the
`swagger-ui-bundle` package, not a CDN.

FastAPI's own docs page starts Swagger UI with an inline script, which the app's
Content-Security-Policy forbids (script-src 'self'). This page loads a small start script
from the app instead, so /docs lives under the same policy as every other page. ReDoc is
not served (it would need a CDN or a second bundle).

swagger-ui-bundle 1.1.0 ships Swagger UI 4.15.5, which refuses a document that says
"openapi: 3.1.0" (FastAPI's). The page therefore reads a copy of /openapi.json labelled
3.0.3 (/docs/openapi.json); the 3.1 keywords in it (a `"type": "null"` branch of a nullable
field) it shows as written. /openapi.json itself is unchanged.
"""

from __future__ import annotations

import html
from typing import Any

import swagger_ui_bundle
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
SWAGGER_UI_OPENAPI = "3.0.3"  # the newest OpenAPI version Swagger UI 4 renders

# Paths are relative to /docs, so the page works under a reverse proxy's path prefix too.
START_SCRIPT = """\
window.ui = SwaggerUIBundle({
  url: "docs/openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
  deepLinking: true,
  validatorUrl: null,
});
"""


def docs_page(title: str) -> str:
    """The HTML of /docs: Swagger UI's CSS and bundle, then the start script, all local."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)} – API docs</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
<link rel="icon" href="docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/start.js"></script>
</body>
</html>
"""


def add_docs(app: FastAPI) -> None:
    """Serve /docs, its start script and Swagger UI's files (before the page's catch-all)."""
    router = APIRouter(include_in_schema=False)
    page = docs_page(app.title)

    @router.get(DOCS_PATH)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @router.get(f"{DOCS_PATH}/openapi.json")
    async def openapi_for_swagger_ui_4() -> dict[str, Any]:
        return {**app.openapi(), "openapi": SWAGGER_UI_OPENAPI}

    @router.get(f"{DOCS_PATH}/start.js")
    async def start_script() -> Response:
        return Response(START_SCRIPT, media_type="text/javascript")

    app.include_router(router)
    assets = StaticFiles(directory=str(swagger_ui_bundle.swagger_ui_path))
    app.mount(ASSETS_PATH, assets, "docs-assets")
