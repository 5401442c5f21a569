"""The image build's knobs and the host-networking override scripts/image_test.sh runs the stack with.

The image test itself (a real build and a real stack) is scripts/image_test.sh, run by .ci/run; these
check the files without an engine: the Dockerfile's build arguments and layer order, and
deploy/compose.hostnet.yml merged onto deploy/docker-compose.yml the way Compose merges them,
validated against the compose specification and fed to the real settings.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from compose_spec import PyCompose

from tests.conftest import ROOT
from tests.test_deploy_files import (
    ALL_QUEUES,
    COMPOSE_VALUES,
    DEPLOY,
    accepted_by_settings,
    app_services,
    arg_value,
    dockerfile_instructions,
    interpolate,
    queues_of,
    services_for,
)

HOSTNET = DEPLOY / "compose.hostnet.yml"
# What already listens on the CI machine: the tests' PostgreSQL and Redis, and the compose default web port.
HOST_PORTS = {5432, 6379, 8000}


# --- the Dockerfile's knobs ----------------------------------------------------------------------------


def stage_of(instructions: list[tuple[str, str]], index: int) -> str:
    froms = [rest for keyword, rest in instructions[: index + 1] if keyword == "FROM"]
    return froms[-1].split()[-1] if froms else "global"


def test_dockerfile_base_image_is_one_build_argument_for_both_stages() -> None:
    instructions = dockerfile_instructions()
    first_from = next(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    global_args = [rest for keyword, rest in instructions[:first_from] if keyword == "ARG"]
    assert global_args == ["BASE_IMAGE=python:3.11-slim-bookworm"]
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert [rest.split()[0] for rest in froms] == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    # A Debian base has python3, not python, until the virtualenv is on PATH.
    venv = next(rest for keyword, rest in instructions if keyword == "RUN" and "-m venv" in rest)
    assert venv.startswith("python3 ")


def test_dockerfile_wheelhouse_and_ca_knobs_reach_pip_only_in_the_build_stage() -> None:
    instructions = dockerfile_instructions()
    build_args = {
        rest.split("=")[0]
        for i, (keyword, rest) in enumerate(instructions)
        if keyword == "ARG" and stage_of(instructions, i) == "build"
    }
    assert {"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST"} <= build_args
    assert {"TORCH_INDEX_URL", "BUILD_PACKAGES", "LLAMA_CMAKE_ARGS"} <= build_args
    # None of them is kept in the image's environment.
    env_text = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert "PIP_FIND_LINKS" not in env_text and "PIP_CERT" not in env_text and "INDEX_URL" not in env_text
    (install,) = [rest for keyword, rest in instructions if keyword == "RUN" and "pip install" in rest]
    # The extra CA comes as a build secret (never in a layer) and is used only when given.
    assert install.startswith("--mount=type=secret,id=extra_ca ")
    assert "if [ -s /run/secrets/extra_ca ]" in install and "PIP_CERT=" in install
    assert "${TORCH_INDEX_URL:+--extra-index-url" in install
    apt = next(rest for keyword, rest in instructions if keyword == "RUN" and "${BUILD_PACKAGES}" in rest)
    assert stage_of(instructions, instructions.index(("RUN", apt))) == "build"


def test_dockerfile_layer_order_keeps_a_code_change_cheap() -> None:
    """Requirements, then the model export, then the code: a code change redoes only the last steps."""
    instructions = dockerfile_instructions()
    position = {
        "requirements": instructions.index(("COPY", "${REQUIREMENTS} ./")),
        "install": next(
            i for i, (k, rest) in enumerate(instructions) if k == "RUN" and "pip install" in rest
        ),
        "export": next(
            i for i, (k, rest) in enumerate(instructions) if k == "RUN" and "ensure_exported" in rest
        ),
        "code": instructions.index(("COPY", ". .")),
        "static": next(
            i for i, (k, rest) in enumerate(instructions) if k == "RUN" and "collectstatic" in rest
        ),
    }
    assert position["requirements"] < position["install"] < position["export"] < position["code"]
    assert position["code"] < position["static"]
    # Only the retrieval package is copied before the export.
    copies = [rest for k, rest in instructions[position["install"] : position["export"]] if k == "COPY"]
    assert copies == ["retrieval/ retrieval/"]
    runtime_copies = [rest for k, rest in instructions if k == "COPY" and rest.startswith("--from=build")]
    assert runtime_copies[-1].endswith("/app /app"), "the code is copied into the runtime stage last"


# --- compose.hostnet.yml -------------------------------------------------------------------------------


# Compose merges an override key by key: mappings (environment, healthcheck, secrets) merge, while
# command and healthcheck.test are replaced. The override uses nothing else (no ports, volumes).
def compose_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = compose_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def load(path: Path, values: dict[str, str]) -> dict[str, Any]:
    document = yaml.safe_load(interpolate(path.read_text(), values))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def hostnet() -> dict[str, Any]:
    base = load(DEPLOY / "docker-compose.yml", COMPOSE_VALUES)
    override = load(HOSTNET, COMPOSE_VALUES)
    assert set(override["services"]) <= set(base["services"]), "the override names a service the base lacks"
    merged = compose_merge(base, override)
    assert isinstance(merged, dict)
    return merged


def test_hostnet_override_is_valid_for_the_compose_specification(hostnet: dict[str, Any]) -> None:
    PyCompose.from_json(json.dumps(hostnet))
    broken = copy.deepcopy(hostnet)
    broken["services"]["web"]["network_mode"] = 42
    with pytest.raises(ValueError):
        PyCompose.from_json(json.dumps(broken))


def test_hostnet_every_cpu_profile_container_uses_the_host_network(hostnet: dict[str, Any]) -> None:
    services = services_for(hostnet, "cpu")
    assert {"postgres", "redis", "migrate", "web", "beat", "worker-model-cpu"} <= set(services)
    for name, service in services.items():
        assert service.get("network_mode") == "host", name
        assert "networks" not in service, name
    # Compose makes no network of its own (it would be a bridge): its default is the host's.
    assert hostnet["networks"]["default"] == {"name": "host", "external": True}
    queues = {queue for service in services.values() for queue in queues_of(service.get("command", []))}
    assert queues == ALL_QUEUES  # every routed queue (the stages' and the shadow queue) and the default


def test_hostnet_services_listen_on_loopback_ports_that_leave_the_host_services_alone(
    hostnet: dict[str, Any],
) -> None:
    services = hostnet["services"]
    postgres, redis, web = services["postgres"], services["redis"], services["web"]
    pg_port = int(postgres["environment"]["PGPORT"])
    assert postgres["environment"]["POSTGRES_LISTEN"] == "127.0.0.1"
    assert postgres["image"] == "switchboard-postgres:bookworm"
    redis_port = int(arg_value(redis["command"], "--port"))
    assert arg_value(redis["command"], "--bind") == "127.0.0.1"
    assert arg_value(redis["command"], "--appendonly") == "yes", "the broker stays on disk"
    assert str(redis_port) in redis["healthcheck"]["test"]
    bind = arg_value(web["command"], "--bind")
    host, web_port = bind.rsplit(":", 1)
    assert host == "127.0.0.1" and "deploy/gunicorn.conf.py" in web["command"]
    assert f"http://{bind}/readyz" in " ".join(web["healthcheck"]["test"])
    ports = {pg_port, redis_port, int(web_port)}
    assert len(ports) == 3 and not ports & HOST_PORTS
    cpu_profile = services_for(hostnet, "cpu")
    for name, service in app_services(hostnet).items():
        if name not in cpu_profile:
            continue
        env = service["environment"]
        database = urlsplit(env["DATABASE_URL"])
        assert (database.hostname, database.port) == ("127.0.0.1", pg_port), name
        for key in ("REDIS_URL", "CELERY_BROKER_URL"):
            assert urlsplit(env[key])[1] == f"127.0.0.1:{redis_port}", (name, key)
        assert database.password == COMPOSE_VALUES["POSTGRES_PASSWORD"], name


def test_hostnet_app_environment_is_accepted_by_the_settings(hostnet: dict[str, Any], tmp_path: Path) -> None:
    values = {**COMPOSE_VALUES, "LLM_BACKEND": "llamacpp"}
    merged = compose_merge(load(DEPLOY / "docker-compose.yml", values), load(HOSTNET, values))
    for name in ("web", "worker-model-cpu"):
        env = {key: str(value) for key, value in merged["services"][name]["environment"].items()}
        verdict = accepted_by_settings(env, tmp_path / name)
        assert verdict == "production llamacpp django.db.backends.postgresql redis", name


def test_hostnet_secret_file_can_live_outside_the_repository() -> None:
    values = {**COMPOSE_VALUES, "SECRET_KEY_FILE_ON_HOST": "/tmp/run-1/key"}
    assert load(HOSTNET, values)["secrets"]["django_secret_key"]["file"] == "/tmp/run-1/key"
    assert (
        load(HOSTNET, COMPOSE_VALUES)["secrets"]["django_secret_key"]["file"] == "./secrets/django_secret_key"
    )


# --- scripts/image_test.sh and its images --------------------------------------------------------------


def test_image_scripts_parse_and_ci_runs_the_image_test() -> None:
    for script in ("scripts/image_test.sh", "scripts/image/lib.sh", "scripts/image/postgres-entrypoint.sh"):
        result = subprocess.run(
            ["bash", "-n", str(ROOT / script)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, (script, result.stderr)
    assert re.search(r"^scripts/image_test\.sh\b", (ROOT / ".ci" / "run").read_text(), re.MULTILINE)
    for name in ("postgres", "redis"):
        dockerfile = (ROOT / "scripts" / "image" / f"{name}.Dockerfile").read_text()
        assert "ARG BASE_IMAGE=switchboard-base:bookworm" in dockerfile and "\nUSER " in dockerfile, name
