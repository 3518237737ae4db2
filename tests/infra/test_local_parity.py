"""Local parity files: the Dockerfile and compose file agree with the settings and the deployment.

No Docker engine runs here, so these read the files: the image's entry point and environment, the
compose services, and the settings the service would build from them.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from decisioning.settings import PROFILES, load_settings
from infra.image import API_COMMAND, API_PORT, METRICS_JOB, METRICS_PATH
from tests.infra.settings_contract import CONFIGS, REPO, names_the_settings_read

DOCKER = REPO / "infra" / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
SERVICE = "risk-api"
LOCAL_SERVERS = {"redis", "postgres", "opensearch", "prometheus", "grafana"}
# Variables for Python and the virtual environment rather than for the platform's settings.
RUNTIME_VARIABLES = {"PATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
_COMPOSE_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = path.read_text().replace("\\\n", " ")
    lines = (line.strip() for line in joined.splitlines())
    return [
        (line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def dockerfile_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, arguments in dockerfile_instructions(path):
        if instruction == "ENV":
            env.update(token.split("=", 1) for token in shlex.split(arguments))
    return env


def dockerfile_json(path: Path, instruction: str) -> list[str]:
    """The exec-form arguments of the last ``instruction`` (as Docker applies the last one)."""
    found = [args for name, args in dockerfile_instructions(path) if name == instruction]
    assert found, f"the Dockerfile has no {instruction}"
    value: list[str] = json.loads(found[-1])
    return value


def compose_interpolate(value: str, env: dict[str, str]) -> str:
    """Resolve ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` as compose does."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"compose refuses to start without {name}: {arg}")
        return arg or ""

    return _COMPOSE_VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return parsed


def test_compose_runs_the_service_beside_the_servers_of_the_aws_profile(
    compose: dict[str, Any],
) -> None:
    services = set(compose["services"])
    assert services >= LOCAL_SERVERS | {SERVICE}, f"missing: {LOCAL_SERVERS | {SERVICE} - services}"
    build = compose["services"][SERVICE]["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert context == REPO, "the image builds from the repository root"
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE


def test_dockerfile_serves_the_api_on_the_port_the_deployment_routes_to() -> None:
    command = dockerfile_json(DOCKERFILE, "ENTRYPOINT") + dockerfile_json(DOCKERFILE, "CMD")
    assert command == ["riskctl", *API_COMMAND], "ECS runs the same command as the image"
    exposed = [args for name, args in dockerfile_instructions(DOCKERFILE) if name == "EXPOSE"]
    assert exposed == [str(API_PORT)]


def test_dockerfile_installs_the_locked_versions_with_cpu_torch() -> None:
    runs = " ".join(args for name, args in dockerfile_instructions(DOCKERFILE) if name == "RUN")
    assert "requirements.lock" in runs, "dependencies are pinned by the lock"
    assert "TORCH_FIND_LINKS" in runs, "torch comes from the CPU wheel location"


def test_image_and_compose_set_only_variables_the_settings_read(compose: dict[str, Any]) -> None:
    known = names_the_settings_read()
    image_env = set(dockerfile_env(DOCKERFILE)) - RUNTIME_VARIABLES
    compose_env = set(compose["services"][SERVICE]["environment"])
    assert image_env <= known, f"the image sets unknown variables {image_env - known}"
    assert compose_env <= known, f"compose sets unknown variables {compose_env - known}"
    assert dockerfile_env(DOCKERFILE)["RISK_ENV"] in PROFILES


def test_compose_environment_builds_settings_on_the_compose_servers(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    # given the environment compose would hand the container, over the image's own
    raw = compose["services"][SERVICE]["environment"]
    given = {"RISK_API_KEYS": "local-test-key"}
    env = {
        **dockerfile_env(DOCKERFILE),
        **{name: compose_interpolate(str(value), given) for name, value in raw.items()},
        # the image copies configs/ to RISK_CONFIG_DIR; here it is the checkout's copy
        "RISK_CONFIG_DIR": str(CONFIGS),
        "RISK_HOME": str(tmp_path),
    }
    # when the service builds its settings
    settings = load_settings(env)
    # then every backend is a server of the same kind as in the aws profile, run by compose
    aws = yaml.safe_load((CONFIGS / "profiles" / "aws.yaml").read_text())
    assert settings.feast.online_store == aws["feast"]["online_store"]
    assert settings.evidence.backend == aws["evidence"]["backend"]
    assert settings.embeddings_cache.backend == aws["embeddings_cache"]["backend"]
    urls = (settings.audit.url, settings.mlflow.tracking_uri, settings.evidence.url)
    hosts = {urlparse(url).hostname for url in (*urls, settings.embeddings_cache.url)}
    assert hosts <= set(compose["services"]), f"URLs point outside compose: {hosts}"
    assert all(urlparse(url).scheme.startswith("postgresql") for url in urls[:2])
    assert settings.api_keys, "the API refuses every request without keys"


def test_local_prometheus_scrapes_the_service_like_the_sidecar_does() -> None:
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == METRICS_PATH
    assert job["job_name"] == METRICS_JOB, "the `up` alerts select this job"
    assert job["honor_labels"] is True, "keeps the job label of the job gauges"
    assert job["static_configs"][0]["targets"] == [f"{SERVICE}:{API_PORT}"]
