"""deploy/: the Dockerfile, docker-compose.yml and the Kubernetes manifests, checked without a cluster.

Every manifest is validated against its kind's schema (kubernetes-validate, strict: unknown fields
fail), kustomize overlays are rendered with ``kubectl kustomize`` when kubectl is installed, and the
environment each app container gets is fed to the real settings module, which must accept it.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from compose_spec import PyCompose

from inference_app.metrics import PIPELINE_QUEUES
from tests.conftest import ROOT, embedded_env, run_manage, run_python

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
ALL_QUEUES = {*PIPELINE_QUEUES, "switchboard"}
# Variables a production deployment must set (the rest have working defaults).
REQUIRED_ENV = {
    "DJANGO_ENV",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "LLM_BACKEND",
}
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
THIRD_PARTY_IMAGES = ("postgres", "redis", "vllm/vllm-openai", "mher/flower", "prom/prometheus")

SETTINGS_PROBE = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DJANGO_ENV, s.LLM_BACKEND, s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL.split(':')[0])"
)


def accepted_by_settings(env: dict[str, str], tmp_path: Path) -> str:
    """Import the real settings with ``env`` (a container's environment) in a fresh process."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    process_env = embedded_env(tmp_path / "data")
    process_env.update(env)
    process_env["SWITCHBOARD_DATA_DIR"] = str(tmp_path / "data")
    if "SECRET_KEY_FILE" in env:  # the mounted secret: a file with a real-looking key
        key_file = tmp_path / "secret_key"
        key_file.write_text("k" * 20 + "Z9-x" * 10)
        process_env["SECRET_KEY_FILE"] = str(key_file)
    result = run_python(SETTINGS_PROBE, env=process_env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def queues_of(command: list[str]) -> set[str]:
    if "worker" not in command or "--queues" not in command:
        return set()
    return set(command[command.index("--queues") + 1].split(","))


def arg_value(args: list[str], flag: str) -> str:
    for index, arg in enumerate(args):
        if arg == flag:
            return args[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {args}")


# --- the Dockerfile ---------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_is_multi_stage_non_root_and_offline() -> None:
    instructions = dockerfile_instructions()
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(stages) == 2 and stages[0].endswith("AS build") and stages[1].endswith("AS runtime")
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    runtime = instructions[last_from:]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    env_text = " ".join(rest for keyword, rest in runtime if keyword == "ENV")
    for setting in ("HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "DJANGO_ENV=production", "LOG_FORMAT=json"):
        assert setting in env_text
    assert ("EXPOSE", "8000") in runtime
    assert any(keyword == "COPY" and rest.startswith("--from=build /opt/venv") for keyword, rest in runtime)
    cmd = [rest for keyword, rest in runtime if keyword == "CMD"][-1]
    assert "deploy/gunicorn.conf.py" in cmd and (DEPLOY / "gunicorn.conf.py").is_file()
    build_runs = " ".join(rest for keyword, rest in instructions[:last_from] if keyword == "RUN")
    assert "pip install" in build_runs and '-r "${REQUIREMENTS}"' in build_runs
    assert ("ARG", "REQUIREMENTS=requirements.txt") in instructions
    assert "ensure_exported()" in build_runs and "collectstatic" in build_runs
    # The build context leaves out local state.
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".git", ".venv", "var", "**/.env", "deploy/secrets"} <= set(ignored)


def test_the_virtualenv_builds_llama_cpp_as_the_image_does() -> None:
    """Both build llama.cpp portably (no AMX: a native build on an AMX CPU crashes at inference)."""
    instructions = dockerfile_instructions()
    [image_args] = [
        rest.split("=", 1)[1].strip('"')
        for kw, rest in instructions
        if kw == "ARG" and rest.startswith("LLAMA_CMAKE_ARGS=")
    ]
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    venv_args = re.search(r'LLAMA_CMAKE_ARGS="\$\{LLAMA_CMAKE_ARGS:-([^}]*)\}"', bootstrap)
    assert venv_args and venv_args.group(1) == image_args
    assert "-DGGML_NATIVE=OFF" in image_args.split()


def test_dockerfile_collectstatic_step_works_with_production_settings(tmp_path: Path) -> None:
    """The image's collectstatic command, run here: production settings, hashed file names."""
    run = next(
        rest for keyword, rest in dockerfile_instructions() if keyword == "RUN" and "collectstatic" in rest
    )
    assignments = dict(re.findall(r"(\w+)=(\S+)", run.split("python manage.py")[0]))
    env = embedded_env(tmp_path / "data")
    env.update(assignments)
    env["STATIC_ROOT"] = str(tmp_path / "static")
    result = run_manage("collectstatic", "--no-input", "--verbosity", "0", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "staticfiles.json").is_file()
    assert list((tmp_path / "static").rglob("*.css.gz"))


@pytest.mark.slow
def test_dockerfile_onnx_export_step_produces_the_model(tmp_path: Path) -> None:
    """The image bakes the int8 ONNX embedding model with exactly this command."""
    run = next(
        rest for keyword, rest in dockerfile_instructions() if keyword == "RUN" and "onnx_embedder" in rest
    )
    code = re.search(r'python -c "(.*)"', run)
    assert code is not None
    env = embedded_env(tmp_path / "data")
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    result = run_python(code.group(1), env=env, timeout=900)
    assert result.returncode == 0, result.stderr
    model = Path(result.stdout.strip().splitlines()[-1])
    assert model.suffix == ".onnx" and model.is_file()
    assert model.is_relative_to(tmp_path / "data" / "models")


def image_data_dir() -> str:
    """SWITCHBOARD_DATA_DIR as the runtime image sets it."""
    last_from = max(i for i, (keyword, _) in enumerate(dockerfile_instructions()) if keyword == "FROM")
    env = " ".join(rest for keyword, rest in dockerfile_instructions()[last_from:] if keyword == "ENV")
    match = re.search(r"SWITCHBOARD_DATA_DIR=(\S+)", env)
    assert match is not None
    return match.group(1)


def test_image_data_dir_layout_exists_for_a_read_only_root() -> None:
    """Every folder the settings create under the data directory is made at build time."""
    build = " ".join(rest for keyword, rest in dockerfile_instructions() if keyword == "RUN")
    data_dir = image_data_dir()
    for folder in ("index", "broker/queue", "broker/processed", "broker/control", "results", "imports"):
        assert f"{data_dir}/{folder}" in build, folder


# --- docker-compose.yml ------------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's variable syntax: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3) or ""
        value = values.get(name)
        if operator in (":-", "-"):
            empty = value is None or (operator == ":-" and value == "")
            return argument if empty else str(value)
        if operator in (":?", "?"):
            if value is None or (operator == ":?" and value == ""):
                raise AssertionError(f"compose would stop: {name}: {argument}")
            return value
        return value or ""

    return _INTERPOLATION.sub(replace, text)


COMPOSE_VALUES = {"POSTGRES_PASSWORD": "pg-secret", "ALLOWED_HOSTS": "switchboard.example.com"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    text = interpolate((DEPLOY / "docker-compose.yml").read_text(), COMPOSE_VALUES)
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


def services_for(compose: dict[str, Any], profile: str | None) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if not service.get("profiles") or profile in service["profiles"]
    }


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if str(service.get("image", "")).startswith("switchboard:") and name != "vllm-export"
    }


def test_compose_file_is_valid_for_the_compose_specification(compose: dict[str, Any]) -> None:
    """The compose-spec parser is strict: unknown keys, wrong types and bad values are errors."""
    PyCompose.from_json(json.dumps(compose))
    broken = copy.deepcopy(compose)
    broken["services"]["web"]["depends_on"]["migrate"]["condition"] = "service_done"
    with pytest.raises(ValueError, match="service_done"):
        PyCompose.from_json(json.dumps(broken))


def test_compose_needs_the_database_password() -> None:
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD"):
        interpolate((DEPLOY / "docker-compose.yml").read_text(), {})


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
def test_compose_runs_a_worker_for_every_queue_and_one_beat(compose: dict[str, Any], profile: str) -> None:
    services = services_for(compose, profile)
    consumed: dict[str, list[str]] = {}
    for name, service in services.items():
        for queue in queues_of(service.get("command", [])):
            consumed.setdefault(queue, []).append(name)
    assert set(consumed) == ALL_QUEUES
    assert all(len(names) == 1 for names in consumed.values()), consumed
    beats = [name for name, service in services.items() if "beat" in service.get("command", [])]
    assert beats == ["beat"]
    assert compose["services"]["beat"].get("deploy", {}).get("replicas", 1) == 1
    assert {"postgres", "redis", "migrate", "web"} <= set(services)
    assert ("vllm" in services) is (profile == "gpu")


def test_compose_images_ports_and_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in app_services(compose).items():
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
    for name, service in services.items():
        image = str(service.get("image", ""))
        if image.startswith(THIRD_PARTY_IMAGES):
            tag = image.rsplit(":", 1)[-1]
            assert ":" in image and tag != "latest" and re.search(r"\d", tag), f"{name}: pin {image}"
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "deploy/gunicorn.conf.py" in services["web"]["command"]
    for name in ("postgres", "redis", "vllm"):
        assert services[name]["healthcheck"]["test"], name
    for name, service in app_services(compose).items():
        if name in {"web", "migrate", "beat"}:
            continue
        assert "inspect ping" in " ".join(service["healthcheck"]["test"]), name
        assert (
            service["environment"]["WORKER_NAME"] == arg_value(service["command"], "--hostname").split("@")[0]
        )


def test_compose_starts_apps_after_migrations(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--no-input"]
    assert services["migrate"]["restart"] == "no"
    for name, service in app_services(compose).items():
        if name != "migrate":
            assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name


def vllm_config(name: str) -> dict[str, Any]:
    """One of deploy/vllm/'s --config files (helper V's): the arguments vLLM really gets."""
    config = yaml.safe_load((DEPLOY / "vllm" / name).read_text())
    assert isinstance(config, dict)
    return config


def served_names(config: dict[str, Any]) -> list[str]:
    names = config["served-model-name"]
    return [names] if isinstance(names, str) else list(names)


def test_compose_vllm_has_a_gpu_and_serves_the_model_the_workers_ask_for(compose: dict[str, Any]) -> None:
    services = compose["services"]
    vllm, worker = services["vllm"], services["worker-model"]
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert vllm["command"] == ["--config", "/etc/vllm/config.yaml"]
    mounted = next(v for v in vllm["volumes"] if v.endswith(":/etc/vllm/config.yaml:ro")).split(":")[0]
    assert mounted.startswith("./vllm/")
    config = vllm_config(Path(mounted).name)
    assert worker["environment"]["LLM_MODEL"] in served_names(config)
    base_url = urlsplit(worker["environment"]["LLM_BASE_URL"])
    assert (base_url.hostname, base_url.port, base_url.path) == ("vllm", 8000, "/v1")
    assert config["port"] == base_url.port
    assert worker["environment"]["LLM_BACKEND"] == "openai"
    assert services["worker-model-cpu"]["environment"]["LLM_BACKEND"] == "llamacpp"
    # The checkpoint vLLM loads is the one the export step writes, on the shared volume.
    export = services["vllm-export"]
    written = Path(export["command"][-1])
    export_mount = next(v for v in export["volumes"] if v.startswith("vllm-models:")).split(":")[1]
    vllm_mount = next(v for v in vllm["volumes"] if v.startswith("vllm-models:")).split(":")[1]
    assert Path(vllm_mount) / written.relative_to(export_mount) == Path(config["model"])
    assert vllm["depends_on"]["vllm-export"] == {"condition": "service_completed_successfully"}


def test_compose_can_serve_each_vllm_config(tmp_path: Path) -> None:
    """VLLM_CONFIG picks a file in deploy/vllm/; LLM_MODEL must name what it serves."""
    for path in sorted((DEPLOY / "vllm").glob("*.yaml")):
        config = vllm_config(path.name)
        values = {**COMPOSE_VALUES, "VLLM_CONFIG": path.name, "LLM_MODEL": served_names(config)[0]}
        document = yaml.safe_load(interpolate((DEPLOY / "docker-compose.yml").read_text(), values))
        vllm = document["services"]["vllm"]
        assert f"./vllm/{path.name}:/etc/vllm/config.yaml:ro" in vllm["volumes"]
        assert str(config["model"]).startswith("/models/")
        assert document["services"]["worker-model"]["environment"]["LLM_MODEL"] in served_names(config)


def test_compose_app_environment_is_complete_and_accepted_by_the_settings(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    assert compose["secrets"]["django_secret_key"]["file"] == "./secrets/django_secret_key"
    seen = set()
    for name, service in app_services(compose).items():
        env = {key: str(value) for key, value in service["environment"].items()}
        assert set(env) >= REQUIRED_ENV, f"{name} lacks {REQUIRED_ENV - set(env)}"
        assert env["SECRET_KEY_FILE"] == "/run/secrets/django_secret_key" and service["secrets"] == [
            "django_secret_key"
        ]
        key = (env["LLM_BACKEND"], env["DJANGO_ENV"])
        if key in seen:
            continue
        seen.add(key)
        verdict = accepted_by_settings(env, tmp_path / name)
        assert verdict == f"production {env['LLM_BACKEND']} django.db.backends.postgresql redis", name
    assert seen == {("openai", "production"), ("llamacpp", "production")}


def test_compose_web_and_default_worker_share_the_imports_folder(compose: dict[str, Any]) -> None:
    """An upload saved by the web process is read by the worker that runs the import job."""
    target = f"{image_data_dir()}/imports"
    for name in ("web", "worker-default"):
        assert f"imports:{target}" in compose["services"][name]["volumes"], name
    assert "imports" in compose["volumes"]


def test_compose_prometheus_loads_the_alert_rules_it_mounts(compose: dict[str, Any]) -> None:
    mount = next(v for v in compose["services"]["prometheus"]["volumes"] if v.startswith("./prometheus:"))
    target = mount.split(":")[1]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    for rule_file in config["rule_files"]:
        assert rule_file.startswith(target + "/")
        assert (DEPLOY / "prometheus" / Path(rule_file).relative_to(target)).is_file()
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert "web:8000" in targets and "flower:5555" in targets


# --- Kubernetes ----------------------------------------------------------------------------------------


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def resource_files() -> list[Path]:
    """Every file a kustomization lists as a resource (complete objects), plus the secret example."""
    files = [K8S / "secret.example.yaml"]
    for kustomization in kustomizations():
        for entry in yaml.safe_load(kustomization.read_text()).get("resources", []):
            path = (kustomization.parent / entry).resolve()
            if path.is_file():
                files.append(path)
    return files


def test_every_yaml_file_under_k8s_parses_and_is_used() -> None:
    listed = set(resource_files())
    for kustomization in kustomizations():
        spec = yaml.safe_load(kustomization.read_text())
        assert spec["kind"] == "Kustomization"
        for entry in spec.get("resources", []):
            assert (kustomization.parent / entry).exists(), f"{kustomization}: {entry} is missing"
        for patch in spec.get("patches", []):
            path = kustomization.parent / patch["path"]
            assert path.is_file(), f"{kustomization}: {patch} is missing"
            listed.add(path.resolve())
    for path in K8S.rglob("*.yaml"):
        assert yaml_documents(path), path
        if path.name != "kustomization.yaml":
            assert path.resolve() in listed, f"{path} is in no kustomization"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_is_valid_for_its_kind(version: str) -> None:
    count = 0
    for path in resource_files():
        for document in yaml_documents(path):
            kubernetes_validate.validate(document, version, strict=True)
            count += 1
    assert count >= 15


def test_the_validator_rejects_a_misspelt_field() -> None:
    (deployment,) = [d for d in yaml_documents(K8S / "base" / "beat.yaml") if d["kind"] == "Deployment"]
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def render(overlay: str) -> list[dict[str, Any]]:
    """The overlay as ``kubectl kustomize`` renders it, or as :func:`kustomize` does without kubectl."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return kustomize(K8S / "overlays" / overlay)
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


# Lists that strategic merge patches merge item by item (by this key) instead of replacing.
_MERGE_KEYS = {"containers": "name", "initContainers": "name", "volumes": "name", "volumeMounts": "mountPath"}


def _strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _strategic_merge(base[key], value, key) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(patch, list) and field in _MERGE_KEYS:
        key = _MERGE_KEYS[field]
        merged_list = list(base)
        for item in patch:
            index = next((i for i, old in enumerate(merged_list) if old.get(key) == item.get(key)), None)
            if index is None:
                merged_list.append(item)
            else:
                merged_list[index] = _strategic_merge(merged_list[index], item)
        return merged_list
    return patch


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """The subset of kustomize these manifests use: resources, patches, namespace, labels, images."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    documents: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        documents += kustomize(path) if path.is_dir() else yaml_documents(path)
    for patch_entry in spec.get("patches", []):
        (patch,) = yaml_documents(directory / patch_entry["path"])
        (index,) = [
            i
            for i, doc in enumerate(documents)
            if (doc["kind"], doc["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"])
        ]
        documents[index] = _strategic_merge(documents[index], patch)
    for document in documents:
        if "namespace" in spec:
            document["metadata"]["namespace"] = spec["namespace"]
        for label_set in spec.get("labels", []):
            document["metadata"].setdefault("labels", {}).update(label_set["pairs"])
        template = document.get("spec", {}).get("template", {}).get("spec", {})
        for container in template.get("containers", []) + template.get("initContainers", []):
            for image in spec.get("images", []):
                if container["image"] == image["name"]:
                    container["image"] = f"{image['newName']}:{image['newTag']}"
    return documents


def test_the_fallback_renderer_matches_kubectl_kustomize() -> None:
    """Where kubectl exists, the in-test renderer (used where it does not) must agree with it."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: nothing to compare the fallback renderer with")
    for overlay in ("cpu", "gpu"):
        by_kubectl = sorted(render(overlay), key=lambda doc: (doc["kind"], doc["metadata"]["name"]))
        by_fallback = sorted(
            kustomize(K8S / "overlays" / overlay), key=lambda doc: (doc["kind"], doc["metadata"]["name"])
        )
        assert by_fallback == by_kubectl, overlay


@pytest.fixture(scope="module", params=["cpu", "gpu"])
def rendered(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[tuple[str, str], dict[str, Any]]]]:
    documents = render(request.param)
    objects = {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents}
    assert len(objects) == len(documents), "two objects share a kind and name"
    yield request.param, objects


def pod_spec(objects: dict[tuple[str, str], dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = objects[(kind, name)]["spec"]["template"]["spec"]
    return spec


def app_containers(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for (kind, name), obj in objects.items():
        if kind not in {"Deployment", "Job"}:
            continue
        spec = obj["spec"]["template"]["spec"]
        for container in spec["containers"]:
            if "/switchboard:" in container["image"]:
                yield name, container, spec


def test_rendered_overlays_are_valid_for_every_kubernetes_version(
    rendered: tuple[str, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    _, objects = rendered
    for version in K8S_VERSIONS:
        for obj in objects.values():
            kubernetes_validate.validate(obj, version, strict=True)
    assert all(obj["metadata"].get("namespace") == "switchboard" for obj in objects.values())


def test_rendered_workloads_queues_and_beat(
    rendered: tuple[str, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    overlay, objects = rendered
    deployments = {name for kind, name in objects if kind == "Deployment"}
    expected = {"web", "beat", "worker-ingest", "worker-model", "worker-output", "worker-default"}
    expected |= {"worker-shadow"}
    assert deployments == (expected | {"vllm"} if overlay == "gpu" else expected)
    consumed: dict[str, str] = {}
    for name, container, _ in app_containers(objects):
        for queue in queues_of(container["command"]):
            assert queue not in consumed, f"{queue} consumed by {consumed.get(queue)} and {name}"
            consumed[queue] = name
    assert set(consumed) == ALL_QUEUES
    beat = objects[("Deployment", "beat")]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"] == {"type": "Recreate"}
    hpa_targets = {
        obj["spec"]["scaleTargetRef"]["name"]
        for (kind, _), obj in objects.items()
        if kind == "HorizontalPodAutoscaler"
    }
    # beat: exactly one; worker-shadow: one keeps up, and it waits for the live queues on purpose
    assert hpa_targets == expected - {"beat", "worker-shadow"}
    assert hpa_targets <= deployments
    job = objects[("Job", "migrate")]["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["python", "manage.py", "migrate", "--no-input"]
    assert job["restartPolicy"] == "Never"


def test_rendered_web_probes_ports_and_service(
    rendered: tuple[str, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    _, objects = rendered
    (web,) = pod_spec(objects, "Deployment", "web")["containers"]
    ports = {port["name"]: port["containerPort"] for port in web["ports"]}
    assert ports == {"http": 8000}  # gunicorn's default bind (deploy/gunicorn.conf.py)
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"
    service = objects[("Service", "web")]["spec"]
    assert service["ports"][0]["targetPort"] == "http"
    # The ingress's host is one the app accepts, and it routes to that Service port.
    config = objects[("ConfigMap", "switchboard-config")]["data"]
    (rule,) = objects[("Ingress", "web")]["spec"]["rules"]
    assert rule["host"] in config["ALLOWED_HOSTS"].split(",")
    assert f"https://{rule['host']}" in config["CSRF_TRUSTED_ORIGINS"].split(",")
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "web", "port": {"name": service["ports"][0]["name"]}}
    assert (
        service["selector"].items()
        <= objects[("Deployment", "web")]["spec"]["template"]["metadata"]["labels"].items()
    )


def test_rendered_app_containers_are_locked_down_and_sized(
    rendered: tuple[str, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    _, objects = rendered
    names = set()
    for name, container, spec in app_containers(objects):
        names.add(name)
        assert container["image"] == "registry.example.com/switchboard:0.1.0", name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        resources = container["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"], name
        assert resources["limits"]["memory"], name
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert "/tmp" in mounts, name
    assert len(names) >= 7


def test_rendered_app_environment_comes_from_the_configmap_and_secrets_and_is_accepted(
    rendered: tuple[str, dict[tuple[str, str], dict[str, Any]]], tmp_path: Path
) -> None:
    overlay, objects = rendered
    config = objects[("ConfigMap", "switchboard-config")]["data"]
    secrets = {
        doc["metadata"]["name"]: doc["stringData"] for doc in yaml_documents(K8S / "secret.example.yaml")
    }
    for name, container, spec in app_containers(objects):
        sources = {next(iter(source)): next(iter(source.values()))["name"] for source in container["envFrom"]}
        assert sources == {"configMapRef": "switchboard-config", "secretRef": "switchboard-secrets"}, name
        env = {**config, **secrets["switchboard-secrets"]}
        env.update({item["name"]: item["value"] for item in container.get("env", [])})
        assert set(env) >= REQUIRED_ENV, name
        # SECRET_KEY_FILE lies in the mounted secret that holds that key.
        key_path = Path(env["SECRET_KEY_FILE"])
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == key_path.parent]
        secret_name = volumes[mount["name"]]["secret"]["secretName"]
        assert key_path.name in secrets[secret_name], name
    env = {**config, **secrets["switchboard-secrets"]}
    expected_backend = "openai" if overlay == "gpu" else "llamacpp"
    verdict = accepted_by_settings(env, tmp_path)
    assert verdict == f"production {expected_backend} django.db.backends.postgresql redis"


def test_rendered_web_and_default_worker_share_the_imports_claim(
    rendered: tuple[str, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    _, objects = rendered
    claim = objects[("PersistentVolumeClaim", "switchboard-imports")]["spec"]
    assert claim["accessModes"] == ["ReadWriteMany"]
    for name in ("web", "worker-default"):
        spec = pod_spec(objects, "Deployment", name)
        volumes = {v["name"]: v for v in spec["volumes"]}
        (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "imports"]
        assert mount["mountPath"] == f"{image_data_dir()}/imports", name
        assert volumes["imports"]["persistentVolumeClaim"]["claimName"] == "switchboard-imports", name


def test_rendered_vllm_has_a_gpu_and_serves_the_configured_model(
    rendered: tuple[str, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    overlay, objects = rendered
    if overlay != "gpu":
        assert ("Deployment", "vllm") not in objects
        return
    config = objects[("ConfigMap", "switchboard-config")]["data"]
    spec = pod_spec(objects, "Deployment", "vllm")
    (vllm,) = spec["containers"]
    assert vllm["image"].startswith("vllm/vllm-openai:v")
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert vllm["resources"]["requests"]["nvidia.com/gpu"] == "1"
    # Its arguments: the ConfigMap, an exact copy of deploy/vllm/'s file for the packaged model.
    served_file = objects[("ConfigMap", "vllm-config")]["data"]["config.yaml"]
    assert served_file == (DEPLOY / "vllm" / "smollm2-135m-instruct.yaml").read_text()
    arguments = yaml.safe_load(served_file)
    assert vllm["args"] == ["--config", "/etc/vllm/config.yaml"]
    (mount,) = [m for m in vllm["volumeMounts"] if m["mountPath"] == "/etc/vllm"]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes[mount["name"]]["configMap"]["name"] == "vllm-config"
    assert config["LLM_MODEL"] in served_names(arguments)
    base_url = urlsplit(config["LLM_BASE_URL"])
    assert base_url.hostname == "vllm" and base_url.path == "/v1"
    assert arguments["port"] == base_url.port
    assert objects[("Service", "vllm")]["spec"]["ports"][0]["port"] == base_url.port
    assert vllm["readinessProbe"]["httpGet"]["path"] == "/health"
    (export,) = spec["initContainers"]
    assert export["command"][-1] == arguments["model"]
    assert any(toleration["key"] == "nvidia.com/gpu" for toleration in spec["tolerations"])


# --- production settings -----------------------------------------------------------------------------


def production_env(tmp_path: Path) -> dict[str, str]:
    from django.conf import settings

    env = embedded_env(tmp_path)
    env.update(
        {
            "DJANGO_ENV": "production",
            "SECRET_KEY": "p" * 30 + "-Qz81" * 5,
            "ALLOWED_HOSTS": "switchboard.example.com",
            "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/switchboard"),
            "REDIS_URL": str(settings.REDIS_URL),
            "CELERY_BROKER_URL": str(settings.CELERY_BROKER_URL),
        }
    )
    return env


def test_check_deploy_reports_no_warnings_in_production(tmp_path: Path) -> None:
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_does_warn_without_production_settings(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    env["DJANGO_ENV"] = "development"
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout  # no HSTS


def test_production_refuses_debug_and_a_missing_key_or_host(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    del env["SECRET_KEY"], env["ALLOWED_HOSTS"]
    env["DEBUG"] = "true"
    result = run_manage("check", env=env)
    assert result.returncode == 2
    message = result.stderr
    assert message.startswith("Switchboard cannot start, bad configuration:")
    for fragment in ("DEBUG=true", "SECRET_KEY or SECRET_KEY_FILE", "ALLOWED_HOSTS"):
        assert fragment in message


@pytest.mark.slow
def test_the_worker_liveness_probe_passes_on_a_live_worker_and_fails_without_it(tmp_path: Path) -> None:
    """The manifest's worker command and liveness probe, run for real against the Redis broker."""
    from django.conf import settings

    objects = {(d["kind"], d["metadata"]["name"]): d for d in render("cpu")}
    (container,) = pod_spec(objects, "Deployment", "worker-ingest")["containers"]
    command, probe = container["command"], container["livenessProbe"]["exec"]["command"]
    assert command[0] == "celery" and probe[:2] == ["sh", "-c"]
    venv_bin = str(Path(sys.executable).parent)
    env = os.environ.copy()
    env.update(
        {
            "PATH": f"{venv_bin}:{env.get('PATH', '')}",
            "HOSTNAME": socket.gethostname(),  # what Kubernetes sets: the pod's host name
            "CELERY_BROKER_URL": str(settings.CELERY_BROKER_URL),
        }
    )

    def probe_passes() -> bool:
        result = subprocess.run(
            probe, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        return result.returncode == 0

    with (tmp_path / "worker.log").open("w") as log:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while not probe_passes():
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "the probe never passed"
                time.sleep(1)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    assert not probe_passes()
