"""deploy-check on compose.yaml: the committed file passes, and a copy with one mistake
(a field the Compose specification does not know, a process that does not wait for the
migrations, a password written in the file, a variable .env.example does not name, a role
left out, a proxy that does not route to the web pages) fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from devstack.deploy import compose
from devstack.paths import ROOT


def broken(tmp_path: Path, old: str, new: str) -> Path:
    """compose.yaml, .env.example and deploy/compose/ copied, with one change to the first."""
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    shutil.copytree(
        ROOT / "deploy" / "compose", tmp_path / "deploy" / "compose", dirs_exist_ok=True
    )
    text = compose.COMPOSE.read_text()
    assert old in text, f"{old!r} is not in compose.yaml"
    path = tmp_path / "compose.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_the_compose_file_passes() -> None:
    assert compose.schema_problems(compose.load()) == []
    assert compose.rule_problems() == []
    assert compose.git_problems() == []


def test_a_field_the_specification_does_not_know_fails(tmp_path: Path) -> None:
    path = broken(
        tmp_path,
        "    read_only: true\n    tmpfs:\n      - /tmp\n      - /var/run/",
        "    readonly: true\n    tmpfs:\n      - /tmp\n      - /var/run/",
    )
    problems = compose.schema_problems(compose.load(path))
    assert "services/postgres: 'readonly' does not match any of the regexes: '^x-'" in problems


def test_a_process_that_does_not_wait_for_the_migrations_fails(tmp_path: Path) -> None:
    path = broken(
        tmp_path,
        '    command: ["booking-sweeper"]\n    environment: *booking-settings\n'
        "    stop_grace_period: 60s\n    depends_on: *after-migrations\n",
        '    command: ["booking-sweeper"]\n    environment: *booking-settings\n'
        "    stop_grace_period: 60s\n    depends_on: [postgres]\n",
    )
    problems = compose.rule_problems(path)
    assert "booking-sweeper does not wait for migrate-booking to complete" in problems


def test_a_password_written_in_the_file_fails(tmp_path: Path) -> None:
    path = broken(tmp_path, "${BOOKING_DB_PASSWORD:?set in .env}@postgres", "hunter2@postgres")
    problems = compose.rule_problems(path)
    assert "booking: DATABASE_URL holds a password" in problems
    path = broken(tmp_path, "SECRET_KEY: ${USERS_SECRET_KEY:?set in .env}", "SECRET_KEY: s3cret")
    assert "users: SECRET_KEY is written in compose.yaml" in compose.rule_problems(path)


def test_a_variable_missing_from_the_example_fails(tmp_path: Path) -> None:
    path = broken(
        tmp_path, "${TURNSTILE_SUBNET:-172.28.0.0/24}", "${TURNSTILE_NETWORK:-172.28.0.0/24}"
    )
    assert "TURNSTILE_NETWORK is not in .env.example" in compose.rule_problems(path)


def test_every_role_and_three_nats_servers_are_required(tmp_path: Path) -> None:
    path = broken(tmp_path, "  nats-3:\n", "  nats-3-off:\n")
    loaded = compose.load(path)
    loaded["services"].pop("notifications-dispatcher")
    loaded["services"].pop("nats-3-off")
    loaded["services"].pop("web")
    path.write_text(yaml.safe_dump(loaded))
    problems = compose.rule_problems(path)
    assert "no service runs notifications-dispatcher" in problems
    assert "no service runs web" in problems
    assert "2 NATS servers, not 3" in problems


def test_the_web_pages_in_one_instance_or_unmigrated_fail(tmp_path: Path) -> None:
    path = broken(
        tmp_path,
        '    command: ["web"]\n    environment:\n      <<: *web-settings\n'
        '      PORT: "8080"\n    deploy: {replicas: 2}\n',
        '    command: ["web"]\n    environment:\n      <<: *web-settings\n'
        '      PORT: "8080"\n    deploy: {replicas: 1}\n',
    )
    assert "web runs in fewer than two instances" in compose.rule_problems(path)
    loaded = compose.load(ROOT / "compose.yaml")
    loaded["services"].pop("migrate-web")
    path.write_text(yaml.safe_dump(loaded))
    assert "the migrations cover ['booking', 'notifications', 'users']" in (
        compose.rule_problems(path)
    )


def test_a_proxy_that_does_not_serve_the_web_pages_fails(tmp_path: Path) -> None:
    path = broken(tmp_path, "      web: {condition: service_healthy}\n", "")
    nginx = tmp_path / "deploy" / "compose" / "nginx" / "nginx.conf"
    text = nginx.read_text()
    assert "location / { proxy_pass http://web; }" in text
    nginx.write_text(
        text.replace("location / { proxy_pass http://web; }", "location / { return 404; }")
    )
    problems = compose.rule_problems(path)
    assert "the proxy does not wait for web to be healthy" in problems
    assert "nginx.conf does not route / to web" in problems
    nginx.write_text(text.replace("    upstream web { server web:8080; keepalive 16; }\n", ""))
    assert "nginx.conf has no upstream for web" in compose.rule_problems(path)
