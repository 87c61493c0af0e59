"""The Helm chart, rendered offline and checked manifest by manifest.

Rendering goes through Helm's own Go SDK (helm_python), so the chart is read, its
values.schema.json applied and its templates executed exactly as `helm install` would,
without a cluster or a helm binary. What comes out is checked three ways: against the
Kubernetes API's schemas (kubernetes_validate, strict: an unknown field is an error, as
`kubectl apply --validate=strict` would say), against the CloudNativePG CRDs vendored in
schemas/, and against the project's own rules (security, probes, the database path).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import yaml

from devstack.deploy.roles import MIGRATED, WEB_ROLES, WORKER_ROLES
from devstack.paths import ROOT

CHART = ROOT / "deploy" / "helm" / "turnstile"
SCHEMAS = Path(__file__).resolve().parent / "schemas"

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest that
# kubernetes-validate knows: an API removed since, or a field added since, fails one.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")

LINT_WARNING = 2  # helm lint's severities: 1 info, 2 warning, 3 error

RELEASE = "ts"
NAMESPACE = "turnstile"

TURNSTILE_UID = 10001
SCRATCH = "/tmp"  # noqa: S108 - the one writable path in the image's containers

# A second set of values: the other branch of every switch the templates have.
PRODUCTION_VALUES: dict[str, Any] = {
    "host": "tickets.example.org",
    "image": {"repository": "registry.example.org/turnstile", "tag": "1.2.3"},
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        "tls": {"enabled": True, "secretName": "turnstile-tls"},
    },
    "secrets": {"existingSecret": "turnstile-app"},
    "database": {"external": {"enabled": True, "existingSecret": "turnstile-databases"}},
    "cnpg": {"enabled": False},
    "services": {"booking": {"autoscaling": {"enabled": False}, "replicas": 4}},
    "workers": {"notifications-consumer": {"replicas": 3}},
    "imagePullSecrets": [{"name": "registry"}],
}
VALUE_SETS: dict[str, dict[str, Any]] = {"default": {}, "production": PRODUCTION_VALUES}

# Values the schema must refuse: each would render, and each would be wrong.
BAD_VALUES: dict[str, dict[str, Any]] = {
    "a pooler in transaction mode": {"pooler": {"poolMode": "transaction"}},
    "an unknown top-level key": {"replicaCount": 3},
    "a cluster of one instance": {"cnpg": {"instances": 1}},
    "a secret in the ConfigMap": {"config": {"SECRET_KEY": "plain"}},
    "the web pages left out": {"services": {"web": None}},
    "an external database without its Secret": {
        "database": {"external": {"enabled": True}},
        "cnpg": {"enabled": False},
    },
}


def render(values: dict[str, Any] | None = None, chart: Path = CHART) -> list[dict[str, Any]]:
    """Every manifest of a fresh install, hooks and tests included."""
    rendered = helm_python.Chart.load(chart).render(
        values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True
    )
    return [
        manifest
        for source in sorted(rendered)
        if source.endswith((".yaml", ".yml"))  # as Helm: NOTES.txt is printed, not applied
        for manifest in yaml.safe_load_all(rendered[source])
        if manifest
    ]


def lint_problems(chart: Path = CHART) -> list[str]:
    """`helm lint --strict` on the oldest supported Kubernetes: warnings count."""
    report = helm_python.lint(chart, strict=True, kube_version=f"v{KUBERNETES_VERSIONS[0]}")
    findings = [m for m in report["messages"] if m["severity"] >= LINT_WARNING]
    messages = [f"{m['path']}: {m['error']}" for m in findings] + list(report["errors"])
    return list(dict.fromkeys(messages))


def refused_values(chart: Path = CHART) -> list[str]:
    """The bad values that rendered anyway (an empty list: the schema refused them all)."""
    loaded = helm_python.Chart.load(chart)
    accepted = []
    for name, values in BAD_VALUES.items():
        try:
            loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        except helm_python.HelmValuesError:
            continue
        accepted.append(name)
    return accepted


def name_of(manifest: dict[str, Any]) -> str:
    return f"{manifest.get('kind')}/{manifest.get('metadata', {}).get('name')}"


# Kubernetes


def kubernetes_problems(manifests: list[dict[str, Any]], version: str) -> list[str]:
    problems = []
    for manifest in manifests:
        if manifest.get("apiVersion", "").startswith("postgresql.cnpg.io/"):
            continue
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(part) for part in error.absolute_path)
            problems.append(f"{name_of(manifest)}: {where}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(f"{name_of(manifest)}: {error.message}")
    return problems


# CloudNativePG


@cache
def cnpg_schema(kind: str) -> dict[str, Any]:
    vendored = json.loads((SCHEMAS / f"cnpg-{kind.lower()}.json").read_text())
    return closed(vendored["schema"])


def closed(schema: Any) -> Any:
    """The CRD schema with unknown fields refused: the API server drops them silently
    (or refuses them with strict field validation); either way the chart is wrong."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {key: closed(value) for key, value in schema.items()}
    if (
        "properties" in copy
        and "additionalProperties" not in copy
        and not copy.get("x-kubernetes-preserve-unknown-fields")
    ):
        copy["additionalProperties"] = False
    return copy


def cnpg_problems(manifests: list[dict[str, Any]]) -> list[str]:
    problems = []
    for manifest in manifests:
        if not manifest.get("apiVersion", "").startswith("postgresql.cnpg.io/"):
            continue
        if manifest["apiVersion"] != "postgresql.cnpg.io/v1":
            problems.append(f"{name_of(manifest)}: unknown apiVersion {manifest['apiVersion']}")
            continue
        try:
            schema = cnpg_schema(manifest["kind"])
        except FileNotFoundError:
            problems.append(f"{name_of(manifest)}: no vendored CRD for {manifest['kind']}")
            continue
        for error in jsonschema.Draft7Validator(schema).iter_errors(manifest):
            where = "/".join(str(part) for part in error.absolute_path)
            problems.append(f"{name_of(manifest)}: {where}: {error.message}")
    return problems


# Pods: security, probes, resources


def pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(manifest, pod spec) of every workload that runs containers."""
    for manifest in manifests:
        kind = manifest.get("kind")
        if kind == "Pod":
            yield manifest, manifest["spec"]
        elif kind in ("Job", "Deployment", "StatefulSet", "DaemonSet"):
            yield manifest, manifest["spec"]["template"]["spec"]


def security_problems(manifests: list[dict[str, Any]]) -> list[str]:
    """Every container: non-root, read-only root, no privilege to gain, no capability,
    memory bounded; every long-running container watched by probes."""
    problems = []
    for manifest, spec in pod_specs(manifests):
        pod_security = spec.get("securityContext", {})
        long_running = manifest["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
        containers = spec.get("initContainers", []) + spec.get("containers", [])
        for container in containers:
            where = f"{name_of(manifest)} container {container['name']}"
            problems += [f"{where}: {p}" for p in container_problems(container, pod_security)]
        if long_running and not any("livenessProbe" in c for c in spec["containers"]):
            problems.append(f"{name_of(manifest)}: no container has a liveness probe")
        scratch = any(v.get("name") == "tmp" and "emptyDir" in v for v in spec.get("volumes", []))
        if not scratch and any(is_turnstile(c) for c in containers):
            problems.append(f"{name_of(manifest)}: no emptyDir for /tmp")
    return problems


def container_problems(container: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    security = {**pod, **container.get("securityContext", {})}
    problems = []
    if security.get("runAsNonRoot") is not True:
        problems.append("runAsNonRoot is not true")
    if security.get("runAsUser") == 0:
        problems.append("runs as uid 0")
    if security.get("readOnlyRootFilesystem") is not True:
        problems.append("the root filesystem is writable")
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if security.get("privileged"):
        problems.append("privileged")
    if "ALL" not in security.get("capabilities", {}).get("drop", []):
        problems.append("capabilities are not all dropped")
    if security.get("capabilities", {}).get("add"):
        problems.append("adds capabilities")
    if security.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("no seccomp profile")
    resources = container.get("resources", {})
    if "memory" not in resources.get("limits", {}):
        problems.append("no memory limit")
    if "cpu" not in resources.get("requests", {}):
        problems.append("no cpu request")
    if is_turnstile(container):
        if security.get("runAsUser") != TURNSTILE_UID:
            problems.append(f"runs as uid {security.get('runAsUser')}, not {TURNSTILE_UID}")
        if not any(m["mountPath"] == SCRATCH for m in container.get("volumeMounts", [])):
            problems.append(f"{SCRATCH} is not mounted")
    return problems


def is_turnstile(container: dict[str, Any]) -> bool:
    return "turnstile" in container.get("image", "").rsplit("/", 1)[-1]


def role_of(container: dict[str, Any]) -> str:
    args = container.get("args") or [""]
    return str(args[0])


# The project's rules on what the chart deploys


def rule_problems(manifests: list[dict[str, Any]], values: dict[str, Any]) -> list[str]:
    problems = roles_problems(manifests)
    problems += migration_problems(manifests)
    problems += test_hook_problems(manifests)
    problems += ingress_problems(manifests)
    problems += nats_problems(manifests, values)
    if values.get("cnpg", {}).get("enabled", True):
        problems += database_problems(manifests)
    return problems


def deployments(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Role -> the container running it, for every Deployment of the image."""
    found = {}
    for manifest in manifests:
        if manifest.get("kind") == "Deployment":
            for container in manifest["spec"]["template"]["spec"]["containers"]:
                if is_turnstile(container):
                    found[role_of(container)] = container
    return found


def roles_problems(manifests: list[dict[str, Any]]) -> list[str]:
    running = deployments(manifests)
    problems = [
        f"no Deployment runs {role}" for role in (*WEB_ROLES, *WORKER_ROLES) if role not in running
    ]
    for role in WEB_ROLES:
        container = running.get(role, {})
        for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
            if role in running and container.get(probe, {}).get("httpGet", {}).get("path") != path:
                problems.append(f"{role}: {probe} does not GET {path}")
    for role in WORKER_ROLES:
        command = running.get(role, {}).get("livenessProbe", {}).get("exec", {}).get("command")
        if role in running and (command or [])[:3] != ["turnstile", "health", role]:
            problems.append(f"{role}: the liveness probe is not its heartbeat ({command})")
    kinds = {m["kind"] for m in manifests}
    problems += [
        f"no {kind}"
        for kind in ("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap")
        if kind not in kinds
    ]
    return problems


def annotations_of(manifest: dict[str, Any]) -> dict[str, str]:
    return dict(manifest.get("metadata", {}).get("annotations") or {})


def migration_problems(manifests: list[dict[str, Any]]) -> list[str]:
    jobs = [m for m in manifests if m["kind"] == "Job" and "helm.sh/hook" in annotations_of(m)]
    migrate = [
        m
        for m in jobs
        if any(role_of(c) == "migrate" for c in m["spec"]["template"]["spec"].get("containers", []))
    ]
    if not migrate:
        return ["no migrations hook Job"]
    (job,) = migrate
    hooks = set(annotations_of(job)["helm.sh/hook"].split(","))
    problems = []
    if "pre-upgrade" not in hooks or not hooks & {"pre-install", "post-install"}:
        problems.append(
            f"the migrations Job runs on {sorted(hooks)}, not before an upgrade and on install"
        )
    if "helm.sh/hook-delete-policy" not in annotations_of(job):
        problems.append("the migrations Job has no hook-delete-policy")
    pod = job["spec"]["template"]["spec"]
    migrated = [
        c["args"][1]
        for c in pod.get("initContainers", []) + pod["containers"]
        if role_of(c) == "migrate"
    ]
    if sorted(migrated) != sorted(MIGRATED):
        problems.append(f"the migrations Job migrates {migrated}")
    return problems


def web_services(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Role -> the Service in front of its pods, for every web role."""
    return {
        m["spec"]["selector"].get("app.kubernetes.io/component", ""): m
        for m in manifests
        if m["kind"] == "Service"
        and m["spec"].get("selector", {}).get("app.kubernetes.io/component") in WEB_ROLES
    }


def test_hook_problems(manifests: list[dict[str, Any]]) -> list[str]:
    """`helm test` asks every web server's /health/ready, through its Service."""
    tests = [
        m
        for m in manifests
        if m["kind"] == "Pod" and annotations_of(m).get("helm.sh/hook") == "test"
    ]
    if not tests:
        return ["no `helm test` Pod"]
    script = "\n".join(
        str(part)
        for pod in tests
        for container in pod["spec"]["containers"]
        for part in (*container.get("command", []), *container.get("args", []))
    )
    problems = [] if "/health/ready" in script else ["`helm test` asks no /health/ready"]
    for role, service in web_services(manifests).items():
        short = service["metadata"]["name"].rsplit("-", 1)[-1]
        port = service["spec"]["ports"][0]["port"]
        if f'("{short}", {port})' not in script:
            problems.append(f"`helm test` does not check {role} ({short}:{port})")
    return problems


def ingress_problems(manifests: list[dict[str, Any]]) -> list[str]:
    """One origin: `/` to the web pages; the API's paths to the services that own them."""
    ingresses = [m for m in manifests if m["kind"] == "Ingress"]
    if not ingresses:
        return []
    routes = {
        path["path"]: path["backend"]["service"]["name"]
        for ingress in ingresses
        for rule in ingress["spec"].get("rules", [])
        for path in rule.get("http", {}).get("paths", [])
    }
    services = web_services(manifests)
    problems = []
    pages = services.get("web", {}).get("metadata", {}).get("name")
    if routes.get("/") != pages:
        problems.append(f"the Ingress routes / to {routes.get('/')}, not the web pages ({pages})")
    for role, service in services.items():
        if role != "web" and service["metadata"]["name"] not in routes.values():
            problems.append(f"the Ingress routes nothing to {role}")
    return problems


def nats_problems(manifests: list[dict[str, Any]], values: dict[str, Any]) -> list[str]:
    if not values.get("nats", {}).get("enabled", True):
        return []
    sets = [
        m
        for m in manifests
        if m["kind"] == "StatefulSet" and m["metadata"]["name"].endswith("-nats")
    ]
    configs = [
        m for m in manifests if m["kind"] == "ConfigMap" and "nats.conf" in m.get("data", {})
    ]
    if len(sets) != 1 or len(configs) != 1:
        return ["no NATS StatefulSet with its nats.conf"]
    problems = []
    if sets[0]["spec"]["replicas"] != 3:
        problems.append(f"NATS runs {sets[0]['spec']['replicas']} servers, not 3")
    conf = configs[0]["data"]["nats.conf"]
    for needed in (r'"sync_interval":\s*"always"', r'"store_dir":', r'"routes":'):
        if not re.search(needed, conf):
            problems.append(f"nats.conf has no {needed}")
    return problems


def database_problems(manifests: list[dict[str, Any]]) -> list[str]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for manifest in manifests:
        by_kind.setdefault(manifest["kind"], []).append(manifest)
    problems = []
    clusters = by_kind.get("Cluster", [])
    poolers = by_kind.get("Pooler", [])
    if len(clusters) != 1 or len(poolers) != 1:
        return ["not one CloudNativePG Cluster and one Pooler"]
    spec = clusters[0]["spec"]
    if spec["instances"] < 3:
        problems.append(f"the Cluster has {spec['instances']} instances")
    if spec.get("postgresql", {}).get("synchronous", {}).get("number", 0) < 1:
        problems.append("the Cluster does not replicate synchronously")
    pooler = poolers[0]
    if pooler["spec"]["type"] != "rw" or pooler["spec"]["pgbouncer"]["poolMode"] != "session":
        problems.append("the Pooler is not rw in session mode")
    databases = sorted(d["spec"]["name"] for d in by_kind.get("Database", []))
    if databases != sorted(MIGRATED):
        problems.append(f"the Databases are {databases}")
    host = f"@{pooler['metadata']['name']}:"
    for role, container in deployments(manifests).items():
        urls = [e.get("value", "") for e in container.get("env", []) if e["name"] == "DATABASE_URL"]
        if not urls or host not in urls[0]:
            problems.append(f"{role}: DATABASE_URL does not go through the Pooler")
    return problems
