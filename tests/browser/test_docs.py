"""The OpenAPI docs page (/docs) works offline: Swagger UI is served by the app itself."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser


def test_docs_render_with_every_outside_request_blocked(desk: Any) -> None:
    page = desk.page
    blocked: list[str] = []

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    response = page.goto(f"{desk.base}/docs")
    assert response is not None and response.status == 200
    # The page keeps the app's strict policy: no inline script, nothing from elsewhere.
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-eval" not in csp, csp
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    operations = desk.api("/openapi.json")["paths"]
    assert "/api/runs" in [p.strip().replace("\u200b", "") for p in paths]
    assert len(paths) == sum(len(methods) for methods in operations.values())
    # An operation opens, with its schema rendered from the app's own openapi.json.
    page.locator(".opblock-summary-path", has_text="/api/schema").first.click()
    page.wait_for_selector(".opblock.is-open .responses-wrapper", timeout=10_000)
    assert blocked == []
