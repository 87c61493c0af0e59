"""compose.yaml, checked offline: the Compose specification's JSON schema (vendored in
schemas/), then the project's rules for a production-like host (every role, migrations
first, secrets only from .env, the same confinement as the chart)."""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from devstack.deploy.chart import SCRATCH, TURNSTILE_UID
from devstack.deploy.roles import MIGRATED, WEB_ROLES, WORKER_ROLES
from devstack.paths import ROOT

COMPOSE = ROOT / "compose.yaml"
SCHEMA = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"

INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|\$([A-Za-z_][A-Za-z0-9_]*)")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|PRIVATE")
URL_CREDENTIALS = re.compile(r"://[^/:@\s]+:([^@\s]+)@")
ONLY_INTERPOLATION = re.compile(r"^(\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\})+$")
PINNED_IMAGE = re.compile(r"^[\w./-]+(:[\w.-]*\d[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


def load(path: Path = COMPOSE) -> dict[str, Any]:
    """The file as Compose reads it before interpolation (YAML anchors and merges resolved)."""
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


@cache
def compose_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA.read_text())
    return schema


def schema_problems(compose: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(compose_schema())
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in validator.iter_errors(compose)
    ]


def turnstile_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    image = re.compile(r"turnstile", re.IGNORECASE)
    return {
        name: service
        for name, service in compose["services"].items()
        if image.search(str(service.get("image", "")))
    }


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def rule_problems(path: Path = COMPOSE) -> list[str]:
    """The project's rules; files the compose file names are read beside it."""
    compose = load(path)
    problems = role_problems(compose)
    problems += confinement_problems(compose)
    problems += secret_problems(compose)
    problems += infrastructure_problems(compose, path.parent)
    problems += proxy_problems(compose, path.parent)
    problems += example_problems(path)
    return problems


def role_problems(compose: dict[str, Any]) -> list[str]:
    ours = turnstile_services(compose)
    roles = {command_of(service)[0]: name for name, service in ours.items() if command_of(service)}
    problems = [
        f"no service runs {role}" for role in (*WEB_ROLES, *WORKER_ROLES) if role not in roles
    ]
    for role in WEB_ROLES:
        service = ours.get(roles.get(role, ""), {})
        if service and service.get("deploy", {}).get("replicas", 1) < 2:
            problems.append(f"{role} runs in fewer than two instances")
    migrations = [name for name, service in ours.items() if command_of(service)[:1] == ["migrate"]]
    migrated = sorted(arg for name in migrations for arg in command_of(ours[name])[1:])
    if migrated not in (["all"], sorted(MIGRATED)):
        problems.append(f"the migrations cover {migrated or 'nothing'}")
    for name, service in ours.items():
        if name in migrations or service.get("profiles"):
            continue  # run by hand, after the stack is up
        waits = service.get("depends_on", {})
        for migration in migrations:
            if not isinstance(waits, dict) or waits.get(migration, {}).get("condition") != (
                "service_completed_successfully"
            ):
                problems.append(f"{name} does not wait for {migration} to complete")
    for name, service in ours.items():
        if name in migrations or service.get("profiles"):
            continue
        test = service.get("healthcheck", {}).get("test", [])
        if test[1:3] != ["turnstile", "health"]:
            problems.append(f"{name} has no `turnstile health` check")
    return problems


def confinement_problems(compose: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in turnstile_services(compose).items():
        if str(service.get("user", "")).split(":")[0] != str(TURNSTILE_UID):
            problems.append(f"{name} does not run as uid {TURNSTILE_UID}")
        if service.get("read_only") is not True:
            problems.append(f"{name}: the root filesystem is writable")
        if SCRATCH not in [str(t).split(":")[0] for t in service.get("tmpfs", [])]:
            problems.append(f"{name}: {SCRATCH} is no tmpfs")
        files = service.get("env_file", [])
        paths = [
            f if isinstance(f, str) else f.get("path")
            for f in ([files] if isinstance(files, str) else files)
        ]
        if ".env" not in paths:
            problems.append(f"{name} does not read .env")
    return problems


def secret_problems(compose: dict[str, Any]) -> list[str]:
    """No password, key or token is written in the file: each is a ${VARIABLE} from .env."""
    problems = []
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(
                item.split("=", 1) if "=" in item else (item, "") for item in environment
            )
        for key, value in environment.items():
            text = "" if value is None else str(value)
            if SECRET_NAME.search(key) and text and not ONLY_INTERPOLATION.match(text):
                problems.append(f"{name}: {key} is written in compose.yaml")
            for password in URL_CREDENTIALS.findall(text):
                if not ONLY_INTERPOLATION.match(password):
                    problems.append(f"{name}: {key} holds a password")
    return problems


def infrastructure_problems(compose: dict[str, Any], directory: Path) -> list[str]:
    services = compose["services"]
    problems = []
    for name, service in services.items():
        image = str(service.get("image", ""))
        if name in turnstile_services(compose):
            continue
        if not PINNED_IMAGE.match(image) or (":" not in image and "@" not in image):
            problems.append(f"{name}: image {image!r} is not pinned to a version")
    nats = [name for name, s in services.items() if str(s.get("image", "")).startswith("nats:")]
    if len(nats) != 3:
        problems.append(f"{len(nats)} NATS servers, not 3")
    for name in nats:
        conf = [
            v.split(":")[0]
            for v in services[name].get("volumes", [])
            if str(v).endswith(".conf:ro")
        ]
        text = (directory / conf[0]).read_text() if conf else ""
        if not re.search(r"^\s*sync_interval:\s*always", text, re.MULTILINE):
            problems.append(f"{name}: its configuration has no sync_interval: always")
        if "routes" not in text:
            problems.append(f"{name}: its configuration has no cluster routes")
    postgres = [
        name for name, s in services.items() if str(s.get("image", "")).startswith("postgres:")
    ]
    if len(postgres) != 1:
        problems.append("not one PostgreSQL service")
    return problems


def proxy_problems(compose: dict[str, Any], directory: Path) -> list[str]:
    """The proxy waits for every web server and routes to each: `/` to the web pages."""
    services = compose["services"]
    proxies = [s for s in services.values() if str(s.get("image", "")).startswith("nginx:")]
    if len(proxies) != 1:
        return ["not one nginx proxy"]
    proxy = proxies[0]
    conf = [v.split(":")[0] for v in proxy.get("volumes", []) if str(v).endswith("nginx.conf:ro")]
    text = (directory / conf[0]).read_text() if conf else ""
    ours = turnstile_services(compose)
    by_role = {command_of(s)[0]: name for name, s in ours.items() if command_of(s)}
    waits = proxy.get("depends_on", {})
    problems = []
    for role in WEB_ROLES:
        name = by_role.get(role)
        if name is None:
            continue
        if not isinstance(waits, dict) or waits.get(name, {}).get("condition") != "service_healthy":
            problems.append(f"the proxy does not wait for {name} to be healthy")
        if not re.search(rf"upstream {re.escape(name)} \{{ server {re.escape(name)}:\d+;", text):
            problems.append(f"nginx.conf has no upstream for {name}")
    pages = by_role.get("web", "web")
    if not re.search(rf"location / \{{ proxy_pass http://{re.escape(pages)}; \}}", text):
        problems.append(f"nginx.conf does not route / to {pages}")
    return problems


def example_problems(path: Path) -> list[str]:
    """.env.example names every variable the compose file reads."""
    example = path.parent / ".env.example"
    if not example.exists():
        return ["no .env.example"]
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", example.read_text(), re.MULTILINE))
    used = {a or b for a, b in INTERPOLATION.findall(path.read_text())}
    return [f"{name} is not in .env.example" for name in sorted(used - documented)]


def git_problems(root: Path = ROOT) -> list[str]:
    """.env, which holds the secrets, is neither tracked nor trackable by mistake."""
    problems = []
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", ".env"], cwd=root, capture_output=True, check=False
    )
    if tracked.returncode == 0:
        problems.append(".env is tracked by git")
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=root, check=False)
    if ignored.returncode != 0:
        problems.append(".env is not ignored by git")
    return problems
