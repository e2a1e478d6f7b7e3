"""The deployment files, checked without a cluster or a network: every Kubernetes manifest against
the (vendored, strict) Kubernetes JSON schemas, the compose file against the Compose
Specification's schema, and what no schema can see -- that they reference each other correctly
and drive the real CLI and settings (a renamed flag or variable fails here, not in production).

Schemas: tests/deploy/schemas/ (refresh with ``python -m tests.deploy.schemas.vendor``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from pydantic import BaseModel
from referencing import Registry, Resource

from app import __version__
from app.cli import app as cli_app
from app.core.config import Settings
from runners.config import WorkerConfig

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
# Worker variables (runners/config.py); the API's come from Settings.
WORKER_ENV = {
    "REPRISE_SERVER",
    "REPRISE_WORKER_TOKEN",
    "REPRISE_TOKEN",
    "REPRISE_WORKER_BACKEND",
    "REPRISE_WORKER_ID",
    "REPRISE_WORKER_CONCURRENCY",
    "REPRISE_WORKER_LABELS",
    "REPRISE_WORKER_DIR",
    "REPRISE_WORKER_HEALTH_FILE",
    "REPRISE_WORKER_DOCKER_RUNTIME",
    "REPRISE_WORKER_LOG_FORMAT",
}

Doc = dict[str, Any]


# ---------------------------------------------------------------------------- loading & schemas


def documents() -> list[tuple[str, Doc]]:
    """Every YAML document under deploy/kubernetes, as (file#index, document)."""
    out = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is not None:
                out.append((f"{path.name}#{i}", doc))
    return out


DOCS = documents()


def by_kind(kind: str) -> list[Doc]:
    return [d for _, d in DOCS if d["kind"] == kind]


def find(kind: str, name: str, namespace: str | None = None) -> Doc:
    for doc in by_kind(kind):
        meta = doc["metadata"]
        if meta["name"] == name and (namespace is None or meta.get("namespace") == namespace):
            return doc
    raise AssertionError(f"no {kind} {namespace}/{name} among the manifests")


@functools.cache
def registry() -> Registry:
    definitions = json.loads((SCHEMAS / "kubernetes" / "_definitions.json").read_text())
    resource: Resource[Any] = Resource.from_contents(definitions)
    return resource @ Registry()


def schema_file(doc: Doc) -> Path:
    group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
    kind = str(doc.get("kind", "")).lower()
    if group == "keda.sh":
        return SCHEMAS / "keda-scaledobject.json"
    if group == "kustomize.config.k8s.io":
        return SCHEMAS / "kustomization.json"
    name = f"{kind}-{group.split('.')[0]}-{version}" if group else f"{kind}-{version}"
    return SCHEMAS / "kubernetes" / f"{name}.json"


def validate(doc: Doc, schema_path: Path) -> None:
    schema = json.loads(schema_path.read_text())
    error = best_match(Draft202012Validator(schema, registry=registry()).iter_errors(doc))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        pytest.fail(f"{where}: {error.message}")


# -------------------------------------------------------------------------------- Kubernetes


@pytest.mark.parametrize(("where", "doc"), DOCS, ids=[w for w, _ in DOCS])
def test_every_kubernetes_manifest_matches_its_schema(where: str, doc: Doc) -> None:
    path = schema_file(doc)
    assert path.is_file(), (
        f"{where}: no vendored schema for {doc.get('apiVersion')} {doc.get('kind')} "
        f"(add it to tests/deploy/schemas/vendor.py)"
    )
    validate(doc, path)


def test_the_schemas_do_catch_mistakes() -> None:
    deployment = json.loads(json.dumps(find("Deployment", "reprise-api")))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")  # a typo: an unknown field
    with pytest.raises(pytest.fail.Exception, match="readinesProbe"):
        validate(deployment, schema_file(deployment))
    scaled = json.loads(json.dumps(by_kind("ScaledObject")[0]))
    scaled["spec"]["triggers"][0]["metadata"]["threshold"] = 2  # KEDA wants strings
    with pytest.raises(pytest.fail.Exception):
        validate(scaled, schema_file(scaled))


def test_the_kustomization_lists_every_manifest_but_the_autoscaler() -> None:
    (kustomization,) = by_kind("Kustomization")
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - {"keda-scaledobject.yaml"}
    (image,) = kustomization["images"]
    assert (image["name"], image["newTag"]) == ("reprise/service", __version__)  # this release


def _pod(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def _containers(doc: Doc) -> list[Doc]:
    pod = _pod(doc)
    return list(pod.get("initContainers", [])) + list(pod["containers"])


def _workloads() -> Iterator[Doc]:
    yield from by_kind("Deployment")
    yield from by_kind("Job")


def test_selectors_match_the_pods_they_select() -> None:
    for deployment in by_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    api_labels = find("Deployment", "reprise-api")["spec"]["template"]["metadata"]["labels"]
    assert find("Service", "reprise-api")["spec"]["selector"].items() <= api_labels.items()
    pdb = find("PodDisruptionBudget", "reprise-api")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= api_labels.items()


def test_references_resolve_within_their_namespace() -> None:
    for workload in _workloads():
        ns = workload["metadata"]["namespace"]
        for container in _containers(workload):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    find("ConfigMap", source["configMapRef"]["name"], ns)
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = find("Secret", ref["name"], ns)
                    assert ref["key"] in secret["stringData"], (ns, ref)
        for volume in _pod(workload).get("volumes", []):
            if "persistentVolumeClaim" in volume:
                find("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"], ns)
    for scaled in by_kind("ScaledObject"):
        ns = scaled["metadata"]["namespace"]
        find("Deployment", scaled["spec"]["scaleTargetRef"]["name"], ns)
    namespaces = {d["metadata"]["name"] for d in by_kind("Namespace")}
    for _, doc in DOCS:
        if doc["kind"] not in ("Namespace", "Kustomization"):
            assert doc["metadata"]["namespace"] in namespaces, doc["metadata"]


def test_the_api_deployment() -> None:
    api = find("Deployment", "reprise-api")
    (container,) = _pod(api)["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "--no-migrate" in container["args"]  # the Job migrates, replicas never race
    assert find("Job", "reprise-migrate")["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "db",
        "upgrade",
    ]
    claim = next(v for v in _pod(api)["volumes"] if "persistentVolumeClaim" in v)
    pvc = find("PersistentVolumeClaim", claim["persistentVolumeClaim"]["claimName"])
    assert api["spec"]["replicas"] > 1
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]  # replicas on several nodes
    mount = next(m for m in container["volumeMounts"] if m["name"] == claim["name"])
    config = find("ConfigMap", "reprise-config")
    assert mount["mountPath"] == config["data"]["REPRISE_DATA_DIR"]  # the blob store is on it


def test_the_worker_deployment() -> None:
    worker = find("Deployment", "reprise-worker")
    pod = _pod(worker)
    container = pod["containers"][0]
    hostpaths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert hostpaths["docker-socket"] == mounts["docker-socket"] == "/var/run/docker.sock"
    # The engine resolves bind mounts on the node: the worker folder has the same path inside.
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["REPRISE_WORKER_DIR"] == hostpaths["workdir"] == mounts["workdir"]
    assert pod["nodeSelector"]
    assert pod["tolerations"]
    assert pod["affinity"]["podAntiAffinity"]  # one per node: its folder, its engine
    assert worker["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    assert pod["terminationGracePeriodSeconds"] > 60  # the worker's --grace
    assert container["livenessProbe"]["exec"]["command"][:3] == [
        "python",
        "-m",
        "app.ops.healthcheck",
    ]
    namespace = find("Namespace", worker["metadata"]["namespace"])
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    api_ns = find("Namespace", "reprise")
    assert api_ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_pods_in_the_restricted_namespace_meet_it() -> None:
    for workload in _workloads():
        if workload["metadata"]["namespace"] != "reprise":
            continue
        pod = _pod(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert not any("hostPath" in v for v in pod.get("volumes", []))
        for container in _containers(workload):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]


# ---------------------------------------------------------------- CLI and settings they drive


def settings_env_names(model: type[BaseModel] = Settings, prefix: str = "REPRISE_") -> set[str]:
    """Every variable Settings reads (nested groups with ``__``)."""
    names = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= settings_env_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def check_cli(args: list[str]) -> None:
    """``args`` parse as a ``reprise`` command line (a renamed flag fails here)."""
    command: click.Command = typer.main.get_command(cli_app)
    rest = list(args)
    while isinstance(command, click.Group):
        name = rest.pop(0)
        sub = command.get_command(click.Context(command), name)
        assert sub is not None, f"reprise has no command {name!r}"
        command = sub
    command.make_context("reprise", rest, resilient_parsing=False)


def check_env(names: set[str], where: str) -> None:
    known = settings_env_names() | WORKER_ENV
    unknown = {n for n in names if n.startswith("REPRISE_")} - known
    assert not unknown, f"{where}: Reprise reads no {sorted(unknown)}"


def test_manifests_drive_the_real_cli_and_settings() -> None:
    for workload in _workloads():
        for container in _containers(workload):
            if "args" in container:
                check_cli(container["args"])
            check_env({e["name"] for e in container.get("env", [])}, workload["metadata"]["name"])
    check_env(set(find("ConfigMap", "reprise-config")["data"]), "reprise-config")
    for secret in by_kind("Secret"):
        check_env(set(secret["stringData"]), secret["metadata"]["name"])


def test_the_worker_environment_configures_the_worker(tmp_path: Path) -> None:
    container = _pod(find("Deployment", "reprise-worker"))["containers"][0]
    env = {e["name"]: e.get("value") or "node-7.example" for e in container["env"]}
    config = WorkerConfig.from_env(env)
    assert config.worker_id == "node-7.example"
    assert str(config.workdir) == env["REPRISE_WORKER_DIR"]
    assert str(config.health_file) == env["REPRISE_WORKER_HEALTH_FILE"]
    assert config.concurrency == int(env["REPRISE_WORKER_CONCURRENCY"])
    assert config.labels == {"cpu": "x86_64"}
    assert config.log_format == "json"


def test_the_placeholder_secret_key_is_refused_in_production() -> None:
    """Applying the template as it is leaves the API down, not running on a known key."""
    secret = find("Secret", "reprise-secrets")
    config = find("ConfigMap", "reprise-config")
    with pytest.raises(ValueError, match="REPRISE_SECRET_KEY"):
        Settings(
            environment=config["data"]["REPRISE_ENVIRONMENT"],
            secret_key=secret["stringData"]["REPRISE_SECRET_KEY"],
        )


# ----------------------------------------------------------------------------------- Compose


@functools.cache
def compose() -> Doc:
    doc: Doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # resolves the << merges
    return doc


def test_compose_matches_the_compose_specification() -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    error = best_match(Draft202012Validator(schema).iter_errors(compose()))
    assert error is None, f"{'/'.join(map(str, error.absolute_path))}: {error.message}"


def test_compose_topology() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "migrate", "api", "worker-a", "worker-b"}
    api = services["api"]
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert "--no-migrate" in api["command"]
    assert any(v.endswith(":/var/lib/reprise") for v in api["volumes"])  # blob store volume
    workers = [services["worker-a"], services["worker-b"]]
    assert workers[0]["env_file"] != workers[1]["env_file"]  # a token each
    ids = {w["environment"]["REPRISE_WORKER_ID"] for w in workers}
    assert len(ids) == 2
    for worker in workers:
        assert worker["depends_on"]["api"]["condition"] == "service_healthy"
        assert "/var/run/docker.sock:/var/run/docker.sock" in worker["volumes"]
        workdir = worker["environment"]["REPRISE_WORKER_DIR"]
        assert f"{workdir}:{workdir}" in worker["volumes"]  # same path inside and outside
        assert worker["environment"]["REPRISE_WORKER_HEALTH_FILE"]
        assert worker["environment"]["REPRISE_SERVER"] == "http://api:8000"
        assert "env_file" not in api or worker["env_file"] != api["env_file"]  # no DB secrets


def test_compose_drives_the_real_cli_and_settings() -> None:
    for name, service in compose()["services"].items():
        if "command" in service and name != "postgres":
            check_cli(service["command"])
        check_env(set(service.get("environment", {})), name)


def test_compose_env_files_have_templates() -> None:
    templates = {p.name for p in DEPLOY.glob("*.env.example")}
    for name, service in compose()["services"].items():
        files = service.get("env_file", [])
        for env_file in [files] if isinstance(files, str) else files:
            template = re.sub(r"-[a-z]\.env$", ".env", env_file) + ".example"
            assert template in templates, f"{name}: {env_file} has no {template}"
    for template in templates:
        names = {
            line.split("=", 1)[0]
            for line in (DEPLOY / template).read_text().splitlines()
            if line and not line.startswith("#")
        }
        check_env(names, template)


def test_kustomize_renders_the_base_when_kubectl_is_here() -> None:
    import shutil
    import subprocess

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (optional: the schema tests above cover the files)")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    assert len(docs) == sum(1 for w, d in DOCS if not w.startswith(("kustomization", "keda")))
    for doc in docs:
        for container in _containers(doc) if doc["kind"] in ("Deployment", "Job") else []:
            assert container["image"] == "reprise/service:0.1.0"
