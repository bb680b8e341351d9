"""docker-compose.yml and ray_cluster.yaml, validated offline against their schemas.

The compose schema is the Compose Specification's JSON schema (tests/data/compose_spec.json, from the
compose project), since no Docker engine or compose CLI runs here; the Ray config is checked against
the schema shipped in the ray wheel and with Ray's own config preparation and validation.
"""
from __future__ import annotations

import copy
import json
import pathlib
import re

import jsonschema
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load_yaml(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def test_compose_file_matches_the_compose_specification():
    schema = json.loads((ROOT / "tests/data/compose_spec.json").read_text())
    jsonschema.Draft201909Validator(schema).validate(load_yaml("docker-compose.yml"))  # the draft its $schema names


def test_compose_services_health_checks_and_volumes():
    compose = load_yaml("docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "ray-head", "ray-worker", "api"}
    assert services["postgres"]["image"] == "postgres:16" and services["redis"]["image"] == "redis:7"
    for name in ("postgres", "redis", "ray-head", "api"):
        assert "healthcheck" in services[name], name
    assert set(compose["volumes"]) == {"postgres-data", "redis-data"}
    assert services["api"]["environment"]["RAY_ADDRESS"] == "ray-head:6380"
    assert "--address=ray-head:6380" in services["ray-worker"]["command"]
    assert services["api"]["depends_on"]["ray-head"] == {"condition": "service_healthy"}


def test_compose_holds_no_secret_and_env_example_names_every_variable():
    text = (ROOT / "docker-compose.yml").read_text()
    referenced = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.MULTILINE))
    assert referenced <= listed, referenced - listed
    secret = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")
    for name, service in load_yaml("docker-compose.yml")["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if secret.search(key):
                assert str(value).startswith("${"), (name, key)
            assert "://" not in str(value) or "${POSTGRES_PASSWORD" in str(value) or "@" not in str(value), key


def test_dockerfile_runs_the_api():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["outreach", "serve", "--host", "0.0.0.0", "--port", "8080"]' in dockerfile
    assert "USER outreach" in dockerfile


def test_ray_cluster_config_is_valid_for_the_launcher():
    config = load_yaml("ray_cluster.yaml")
    schema = json.loads((pathlib.Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    validate_config(prepare_config(copy.deepcopy(config)))


def test_ray_cluster_installs_the_package_and_starts_the_api_on_the_head():
    config = load_yaml("ray_cluster.yaml")
    assert config["file_mounts"]["~/outreach"] == "."
    assert any("pip install -e ~/outreach" in command for command in config["setup_commands"])
    head = " ".join(config["head_start_ray_commands"])
    assert "ray start --head" in head and "outreach serve" in head
    workers = config["available_node_types"]["worker"]
    assert workers["min_workers"] >= 1 and workers["max_workers"] >= workers["min_workers"]
