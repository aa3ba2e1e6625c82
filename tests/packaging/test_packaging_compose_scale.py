"""docker-compose.scale.yml (Redis mode on one Docker host): valid against the compose spec,
Redis reachable on the internal network only, nginx the one published door and passing
WebSocket upgrades, the replicas believing forwarded addresses from nginx alone.

No Docker engine runs it here; these checks read the files."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging_support import REPO

SCALE = REPO / "docker-compose.scale.yml"
NGINX = REPO / "deploy" / "nginx.conf"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(SCALE.read_text())  # type: ignore[no-any-return]


def test_scale_file_matches_the_compose_spec(venv_bin_tool: Callable[[str], Path]) -> None:
    tool = str(venv_bin_tool("check-jsonschema"))
    result = subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", str(SCALE)],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_nginx_is_published_and_redis_is_internal(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"redis", "web", "worker", "nginx"}
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"nginx"}
    assert all(port.startswith("127.0.0.1:") for port in services["nginx"]["ports"])
    assert compose["networks"]["internal"]["internal"] is True
    assert list(services["redis"]["networks"]) == ["internal"]
    for name in ("web", "worker"):
        assert list(services[name]["networks"]) == ["internal"]


def test_replicas_and_workers_share_redis_and_trust_only_nginx(compose: dict[str, Any]) -> None:
    services = compose["services"]
    nginx_address = services["nginx"]["networks"]["internal"]["ipv4_address"]
    for name in ("web", "worker"):
        env = services[name]["environment"]
        assert env["BOUNDARYLAB_REDIS_URL"] == "redis://redis:6379/0"
        assert env["BOUNDARYLAB_FORWARDED_ALLOW_IPS"] == f'["{nginx_address}"]'
    assert services["worker"]["command"] == ["boundarylab", "worker"]
    assert services["web"]["deploy"]["replicas"] >= 2
    redis_command = services["redis"]["command"]
    assert "--save" in redis_command and "--appendonly" in redis_command


def test_nginx_passes_websockets_to_every_replica() -> None:
    conf = NGINX.read_text()
    assert re.search(r"proxy_set_header Upgrade \$http_upgrade;", conf)
    assert re.search(r"proxy_set_header Connection \$connection_upgrade;", conf)
    assert "proxy_http_version 1.1;" in conf
    assert re.search(r"server web:8000\b", conf)
    # The port stays in Host: the app checks a WebSocket's Origin against it.
    assert "proxy_set_header Host $http_host;" in conf


def test_the_docker_check_runs_the_scale_file_through_nginx_and_tears_it_down(
    compose: dict[str, Any],
) -> None:
    """CI's Docker check (scripts/docker_check.sh, run by .ci/run) starts this file for real
    (docker_check_scale.sh): two replicas, two workers, a run through nginx, then down."""
    check = (REPO / "scripts" / "docker_check.sh").read_text()
    assert 'source "$repo/scripts/docker_check_scale.sh"' in check
    assert check.index("docker_check_scale.sh") < check.index('note "summary"')
    scale = (REPO / "scripts" / "docker_check_scale.sh").read_text()
    assert "docker-compose.scale.yml" in scale
    assert "--scale web=2 --scale worker=2" in scale
    assert "/api/runs/{run_id}/stream" in scale and "ready_s" in scale  # bounded waits
    assert scale.count("scale_compose down") >= 2  # before, and after the checks
    # Redis answers the replicas from another container whatever its image: an official
    # redis image turns protected mode off itself, Debian's (the check's stand-in) does not.
    assert compose["services"]["redis"]["command"][-2:] == ["--protected-mode", "no"]
