"""docker-compose.yml and the Dockerfile, checked by reading them (Docker does not run on the development
machines): every command, module, setting and file they name exists in the project, images are pinned,
services are health-checked, and the image installs the same package the tests install."""

from __future__ import annotations

import importlib
import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from pydantic import AliasChoices

from cli.main import app as cli_app
from config import Settings
from devstack.temporal import _cli_type
from models.search_attributes import ALL_KEYS

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OURS = {name: spec for name, spec in SERVICES.items() if "build" in spec}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def setting_env_names() -> set[str]:
    names = set()
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices if str(choice).isupper())
        else:
            names.add(f"CALLBACKS_{field.upper()}")
    return names


def one_shot_services() -> set[str]:
    return {
        target
        for spec in SERVICES.values()
        for target, condition in (spec.get("depends_on") or {}).items()
        if condition.get("condition") == "service_completed_successfully"
    }


def test_the_stack_has_every_part_the_design_names() -> None:
    images = {name: spec.get("image", "") for name, spec in SERVICES.items()}
    assert images["temporal"].startswith("temporalio/server:")
    assert images["temporal-schema"].startswith("temporalio/admin-tools:")
    assert images["temporal-namespace"].startswith("temporalio/admin-tools:")
    assert images["temporal-ui"].startswith("temporalio/ui:")
    assert images["temporal-postgresql"].startswith("postgres:")
    assert images["app-postgresql"].startswith("postgres:")
    assert {"migrate", "worker", "api", "dev-sinks"} <= set(OURS)
    assert SERVICES["dev-sinks"]["profiles"] == ["dev"]
    # The schema tools must match the server they prepare.
    assert images["temporal"].split(":")[1] == images["temporal-schema"].split(":")[1]


@pytest.mark.parametrize("name", sorted(set(SERVICES) - set(OURS)))
def test_third_party_images_are_pinned(name: str) -> None:
    image = SERVICES[name]["image"]
    tag = image.partition(":")[2]
    assert tag, f"{name}: {image} has no tag"
    assert tag != "latest", f"{name}: {image} is not pinned"
    assert re.search(r"\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"


def test_long_running_services_are_health_checked_and_dependencies_exist() -> None:
    jobs = one_shot_services()
    for name, spec in SERVICES.items():
        for target, condition in (spec.get("depends_on") or {}).items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            if condition.get("condition") == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target}'s health: none"
        if name not in jobs:
            assert spec.get("healthcheck", {}).get("test"), f"{name} has no health check"
        else:
            assert spec.get("restart") != "unless-stopped", f"{name} is a one-shot job"
    # Scaling out (`--scale worker=3`) needs a worker without a fixed name or host port.
    assert "container_name" not in SERVICES["worker"]
    assert "ports" not in SERVICES["worker"]


@pytest.mark.parametrize("name", sorted(OURS))
def test_our_commands_and_modules_exist(name: str) -> None:
    spec = OURS[name]
    entrypoint = spec.get("entrypoint")
    command = spec.get("command") or []
    if entrypoint is None:  # the image's entrypoint: the `callbacks` CLI
        click_app = typer.main.get_command(cli_app)
        assert command[0] in click_app.commands, f"{name}: `callbacks {command[0]}` does not exist"  # type: ignore[attr-defined]
        sub = click_app.commands[command[0]]  # type: ignore[attr-defined]
        options = {opt for param in sub.params for opt in getattr(param, "opts", [])}
        assert {arg for arg in command[1:] if arg.startswith("--")} <= options
    else:
        assert entrypoint[:2] == ["python", "-m"], f"{name}: unexpected entrypoint {entrypoint}"
        module = importlib.import_module(entrypoint[2])
        assert callable(getattr(module, "main", None)), f"{entrypoint[2]} has no main()"
        source = Path(module.__file__ or "").read_text()
        for option in (arg for arg in command if arg.startswith("--")):
            assert f'"{option}"' in source, f"{entrypoint[2]} has no option {option}"


@pytest.mark.parametrize("name", sorted(OURS))
def test_our_environment_names_are_settings(name: str) -> None:
    known = setting_env_names()
    unknown = set(OURS[name].get("environment") or {}) - known
    assert not unknown, f"{name}: {sorted(unknown)} are not settings of config.py"


def test_ports_in_health_checks_match_the_settings() -> None:
    worker = SERVICES["worker"]
    assert str(worker["environment"]["CALLBACKS_WORKER_METRICS_PORT"]) in " ".join(
        worker["healthcheck"]["test"]
    )
    assert worker["environment"]["CALLBACKS_WORKER_METRICS_HOST"] == "0.0.0.0"
    api = SERVICES["api"]
    assert str(api["environment"]["CALLBACKS_API_PORT"]) in " ".join(api["healthcheck"]["test"])
    assert api["environment"]["CALLBACKS_API_HOST"] == "0.0.0.0"


def test_mounted_files_exist() -> None:
    for name, spec in SERVICES.items():
        for volume in spec.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
        command = " ".join(spec.get("command") or [])
        for script in re.findall(r"/deploy/([\w.-]+)", command):
            assert (ROOT / "deploy" / "temporal" / script).exists(), f"{name} runs missing {script}"
    assert (ROOT / "deploy/temporal/dynamicconfig.yaml").exists()


def test_the_namespace_job_creates_every_search_attribute_with_its_type() -> None:
    script = (ROOT / "deploy/temporal/create-namespace.sh").read_text()
    created = dict(re.findall(r"^\s+(\w+)=(\w+)(?: \\)?$", script, flags=re.MULTILINE))
    assert created == {key.name: _cli_type(key) for key in ALL_KEYS}


def test_the_dockerfile_builds_the_package_the_tests_install() -> None:
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", DOCKERFILE, flags=re.MULTILINE)
    assert len(stages) >= 2, "multi-stage"
    copied = {
        source.rstrip("/")
        for line in re.findall(r"^COPY\s+(?!--from)(.+)$", DOCKERFILE, flags=re.MULTILINE)
        for source in line.split()[:-1]
    }
    setuptools = PYPROJECT["tool"]["setuptools"]
    packages = [pattern.rstrip("*") for pattern in setuptools["packages"]["find"]["include"]]
    for package in packages:
        assert (ROOT / package / "__init__.py").exists(), package
        assert package in copied, f"the Dockerfile does not copy {package}/"
    for module in setuptools["py-modules"]:
        assert f"{module}.py" in copied
    assert "pyproject.toml" in copied
    assert "README.md" in copied
    assert re.search(r"pip install \.(\s|$)", DOCKERFILE), "the image installs the project itself"
    # Every package directory of the repository that the project ships is listed (nothing forgotten).
    shipped = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench", "chaos"}
    assert shipped <= set(packages), f"packages missing from pyproject: {shipped - set(packages)}"
    # The Python of the image satisfies requires-python, and the entrypoint is the project's script.
    version = re.search(r"python:(\d+)\.(\d+)", DOCKERFILE)
    assert version is not None
    required = re.search(r">=(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert required is not None
    assert tuple(map(int, version.groups())) >= tuple(map(int, required.groups()))
    assert 'ENTRYPOINT ["callbacks"]' in DOCKERFILE
    assert "callbacks" in PYPROJECT["project"]["scripts"]
    # The runtime stage runs as an unprivileged user.
    runtime = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    user = re.search(r"^USER\s+(\S+)", runtime, flags=re.MULTILINE)
    assert user is not None
    assert user.group(1).split(":")[0] not in ("root", "0")
    assert importlib.util.find_spec("prometheus_client") is not None


# --- closed by default (issue 16, docs/operations.md "Personal data") ----------------------------------


def published(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host ip, host port, container port) of every `ports:` entry (short syntax); ip "" = all."""
    found = []
    for entry in spec.get("ports") or []:
        parts = str(entry).split(":")
        if len(parts) == 1:
            found.append(("", "", parts[0]))
        elif len(parts) == 2:
            found.append(("", parts[0], parts[1]))
        else:
            found.append((":".join(parts[:-2]), parts[-2], parts[-1]))
    return found


def test_the_temporal_frontend_is_not_published() -> None:
    for name, spec in SERVICES.items():
        for _, host_port, container_port in published(spec):
            assert "7233" not in (host_port, container_port.split("/")[0]), f"{name} publishes 7233"
    assert "7233" in [str(port) for port in SERVICES["temporal"].get("expose", [])]


def test_the_ui_listens_on_loopback_only_and_decodes_through_the_codec_server() -> None:
    ui = SERVICES["temporal-ui"]
    auth = str(ui["environment"].get("TEMPORAL_AUTH_ENABLED", "false")).lower() == "true"
    for ip, _, _ in published(ui):
        assert auth or ip == "127.0.0.1", f"the UI is published on {ip or 'every interface'} without auth"
    endpoint = ui["environment"]["TEMPORAL_CODEC_ENDPOINT"]
    assert endpoint.endswith("/codec")  # api/codec_server.py serves /codec/decode and /codec/encode
    api_port = str(SERVICES["api"]["environment"]["CALLBACKS_API_PORT"])
    assert f":{api_port}}}/codec" in endpoint or f":{api_port}/codec" in endpoint  # `${…:-default}` form
    assert str(ui["environment"]["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"]).lower() == "true"
    # The codec server answers the UI's origin (as the operators' browsers see it) with CORS.
    origins = SERVICES["api"]["environment"]["CALLBACKS_CODEC_CORS_ORIGINS"].split(",")
    ui_ports = {host_port for _, host_port, _ in published(ui)}
    assert {f"http://localhost:{port}" for port in ui_ports} <= set(origins)


def test_metrics_have_their_own_port_and_are_not_published() -> None:
    api, worker = SERVICES["api"], SERVICES["worker"]
    environment = api["environment"]
    metrics_port = str(environment["CALLBACKS_API_METRICS_PORT"])
    assert metrics_port != str(environment["CALLBACKS_API_PORT"])
    assert metrics_port in [str(port) for port in api.get("expose", [])]
    assert str(environment.get("CALLBACKS_API_PUBLIC_METRICS", "false")).lower() == "false"
    assert Settings.model_fields["api_public_metrics"].default is False
    for spec, port in (
        (api, metrics_port),
        (worker, str(worker["environment"]["CALLBACKS_WORKER_METRICS_PORT"])),
    ):
        assert port not in {container.split("/")[0] for _, _, container in published(spec)}


def test_the_engine_reads_its_codec_keys_from_a_secret_and_dev_ports_stay_on_loopback() -> None:
    for name in ("worker", "api"):
        spec = SERVICES[name]
        assert spec["environment"]["CALLBACKS_CODEC_KEYS_FILE"] == "/run/secrets/codec-keys"
        assert "codec-keys" in spec["secrets"]
        assert "CALLBACKS_CODEC_KEYS" not in spec["environment"], "keys in plain environment"
    assert "codec-keys" in COMPOSE["secrets"]
    assert "deploy/secrets/" in (ROOT / ".gitignore").read_text()
    for ip, _, _ in published(SERVICES["dev-sinks"]):
        assert ip == "127.0.0.1"
    assert (ROOT / "deploy/tls/make-certs.sh").exists()


# --- monitoring (issue 18): Prometheus and Grafana, closed like the Temporal UI -------------------------


def test_prometheus_and_grafana_listen_on_loopback_only() -> None:
    for name in ("prometheus", "grafana"):
        spec = SERVICES[name]
        assert spec.get("ports"), f"{name} is not reachable from this host at all"
        for ip, _, _ in published(spec):
            assert ip == "127.0.0.1", f"{name} is published on {ip or 'every interface'}"
        assert spec.get("healthcheck", {}).get("test"), f"{name} has no health check"
    grafana = SERVICES["grafana"]["environment"]
    assert str(grafana["GF_AUTH_ANONYMOUS_ENABLED"]).lower() == "false"
    assert str(grafana["GF_USERS_ALLOW_SIGN_UP"]).lower() == "false"
    # The admin password comes from the operator's environment, with a default only for a local trial.
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD")
    assert "prometheus" in SERVICES["grafana"]["depends_on"]


def test_prometheus_and_grafana_read_their_configuration_from_the_repository() -> None:
    mounts = {
        name: dict(tuple(volume.split(":")[:2]) for volume in SERVICES[name]["volumes"])
        for name in ("prometheus", "grafana")
    }
    config = next(arg for arg in SERVICES["prometheus"]["command"] if arg.startswith("--config.file="))
    config_path = config.split("=", 1)[1]
    assert mounts["prometheus"]["./deploy/prometheus"] == str(Path(config_path).parent)
    assert (ROOT / "deploy/prometheus" / Path(config_path).name).exists()
    assert mounts["grafana"]["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    dashboards = mounts["grafana"]["./deploy/grafana/dashboards"]
    assert home.startswith(dashboards + "/")
    assert (ROOT / "deploy/grafana/dashboards" / Path(home).name).exists()
    # The dashboard provider reads the folder the dashboards are mounted at.
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/callbacks.yml").read_text())
    assert [p["options"]["path"] for p in provider["providers"]] == [dashboards]


def test_tracing_is_configured_through_the_engine_environment() -> None:
    # Off unless the operator sets an endpoint: the compose default is empty, which the engine reads as off.
    env = COMPOSE["x-engine-env"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}"
    for name in ("worker", "api"):
        endpoint = SERVICES[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert endpoint == env["OTEL_EXPORTER_OTLP_ENDPOINT"]
