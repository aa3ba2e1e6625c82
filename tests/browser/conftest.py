"""Fixtures for the browser tests: a real uvicorn server and Debian's Chromium via Playwright.

Run these as their own pytest invocation (`pytest tests/browser`): Playwright's sync API
runs its own event loop, which clashes with async tests in the same process.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from modes import require_redis
from serverproc import ServerStartError, free_port, launch_redis, start_server

CHROMIUM = os.environ.get("BOUNDARYLAB_CHROMIUM", "/usr/bin/chromium")
# The app under test; overridable so the page can be checked against another build.
APP = os.environ.get("BOUNDARYLAB_BROWSER_APP", "boundarylab.server.app:app")
REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _require_chromium() -> None:
    """Skip locally without Chromium, but never in CI: there the tests must run."""
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"Chromium not found at {CHROMIUM}"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed (pip install -e '.[test]')"
    if missing is None:
        return
    hint = f"{missing}: install it with `apt-get install chromium` to run the browser tests"
    if os.environ.get("CI") == "true":
        pytest.fail(hint)
    pytest.skip(hint)


class ServerProcess:
    """A uvicorn subprocess serving the app on one loopback port; can stop and start again."""

    def __init__(
        self, port: int | None = None, env: dict[str, str] | None = None, workers_ready: int = 0
    ) -> None:
        self.port = port or free_port()
        self.workers_ready = workers_ready
        self.url = f"http://127.0.0.1:{self.port}"
        # Workers at niceness 0: these tests watch runs to their end, and at the default 19
        # any other busy process on the machine takes nearly all the CPU from training, so a
        # 10 s run could take minutes. What the page does is the same at any niceness.
        self.env = {**os.environ, "BOUNDARYLAB_WORKER_NICENESS": "0", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        cmd = [sys.executable, "-m", "uvicorn", APP, "--host", "127.0.0.1"]
        argv = [*cmd, "--port", "{port}", "--log-level", "warning"]
        try:
            started = start_server(argv, env=self.env, port=self.port, cwd=REPO,
                                   workers_ready=self.workers_ready)  # fmt: skip
        except ServerStartError as exc:
            pytest.fail(str(exc))
        self.proc = started.proc
        return self.url

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """Base URL of a real uvicorn serving the app on a free loopback port."""
    _require_chromium()
    proc = ServerProcess()
    try:
        yield proc.start()
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def redis_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a Redis-mode replica (uvicorn, as `server`) with one `boundarylab
    worker` process (two runs at once, as the embedded pool's default), on a redis-server of
    its own (no persistence). Locally it skips without redis-server; in CI it fails."""
    _require_chromium()
    tmp = tmp_path_factory.mktemp("redis-browser")
    redis = launch_redis(require_redis(), tmp)
    env = {"BOUNDARYLAB_REDIS_URL": redis.url}
    with (tmp / "worker.log").open("ab") as log:
        worker = subprocess.Popen([sys.executable, "-m", "boundarylab.cli", "worker", "--runs",
                                   "2"], env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    replica = ServerProcess(env=env, workers_ready=1)
    try:
        yield replica.start()
    finally:
        replica.stop()
        for proc in (worker, redis.proc):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def own_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """A server of the test's own, which the test may stop and restart. Settings for it come
    from `@pytest.mark.parametrize("own_server", [{"BOUNDARYLAB_…": …}], indirect=True)`."""
    _require_chromium()
    proc = ServerProcess(env=getattr(request, "param", None))
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def browser(server: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Watched:
    """A page plus what it did: console errors, uncaught exceptions and API requests."""

    page: Any
    base: str
    errors: list[str] = field(default_factory=list)
    expected_errors: list[str] = field(default_factory=list)  # substrings a test provokes
    requests: list[tuple[str, str]] = field(default_factory=list)

    def open(self, query: str = "") -> None:
        """Load the page (optionally with a query string) and wait for the form."""
        self.page.goto(f"{self.base}/{query}")
        self.page.wait_for_selector("body[data-ready='true']", timeout=15_000)

    def api(self, path: str) -> Any:
        """GET a JSON route of the server directly (the ground truth the page must show)."""
        with urllib.request.urlopen(f"{self.base}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    def posts_to(self, path: str) -> list[str]:
        return [url for method, url in self.requests if method == "POST" and url.endswith(path)]


def _cancel_live_runs(base: str) -> None:
    """Cancel every run the server still trains or queues (tests run one at a time)."""
    with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
        with urllib.request.urlopen(f"{base}/api/runs", timeout=5) as resp:
            runs = json.loads(resp.read())
        for run in runs:
            if run.get("status") in ("queued", "running", "paused"):
                cancel = urllib.request.Request(
                    f"{base}/api/runs/{run['id']}/cancel", method="POST"
                )
                with contextlib.suppress(urllib.error.URLError, OSError):
                    urllib.request.urlopen(cancel, timeout=5).close()


def _watch(context: Any, base: str) -> Iterator[Watched]:
    page = context.new_page()
    watched = Watched(page=page, base=base)
    # A console error covers CSP violations ("Refused to execute inline script …") too.
    page.on(
        "console",
        lambda msg: watched.errors.append(msg.text) if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: watched.errors.append(f"uncaught: {exc}"))
    page.on("request", lambda req: watched.requests.append((req.method, req.url)))
    yield watched
    context.close()
    # A paced run the test left going would hold a worker for seconds and queue the next
    # test's runs: cancel whatever is still live.
    _cancel_live_runs(watched.base)
    unexpected = [
        e for e in watched.errors if not any(part in e for part in watched.expected_errors)
    ]
    assert not unexpected, f"the page logged errors: {unexpected}"


@pytest.fixture
def desk(browser: Any, server: str) -> Iterator[Watched]:
    """The page at 1280×800, the size the issue asks to be usable at."""
    yield from _watch(browser.new_context(viewport={"width": 1280, "height": 800}), server)


@pytest.fixture
def desk_own(browser: Any, own_server: ServerProcess) -> Iterator[Watched]:
    """The page at 1280×800, talking to a server the test can stop."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield from _watch(context, own_server.url)


@pytest.fixture
def desk_redis(browser: Any, redis_mode: str) -> Iterator[Watched]:
    """The page at 1280×800, talking to a Redis-mode replica (runs train in a worker
    process through Redis)."""
    yield from _watch(browser.new_context(viewport={"width": 1280, "height": 800}), redis_mode)


@pytest.fixture
def phone(browser: Any, server: str) -> Iterator[Watched]:
    """The page at 390 px wide (a phone)."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    yield from _watch(context, server)
