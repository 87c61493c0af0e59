"""deploy-check on the Helm chart: the chart as committed passes, and each kind of mistake
made in a copy of it (a misspelt field, a writable root, a wrong CRD value, a missing probe,
a schema that lets a bad value through, a service left out of the databases, the smoke test
or the Ingress) is caught by the check that names it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from devstack.deploy import chart
from devstack.deploy.check import main
from devstack.deploy.roles import WEB_ROLES, WORKER_ROLES


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return chart.render()


def broken(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of the chart with one change, which must apply."""
    copy = tmp_path / "turnstile"
    shutil.copytree(chart.CHART, copy)
    path = copy / file
    text = path.read_text()
    assert old in text, f"{old!r} is not in {file}"
    path.write_text(text.replace(old, new))
    return copy


def test_the_chart_passes_every_check(manifests: list[dict[str, Any]]) -> None:
    for version in chart.KUBERNETES_VERSIONS:
        assert chart.kubernetes_problems(manifests, version) == []
    assert chart.cnpg_problems(manifests) == []
    assert chart.security_problems(manifests) == []
    assert chart.rule_problems(manifests, {}) == []
    assert chart.refused_values() == []
    assert chart.lint_problems() == []


def test_a_misspelt_field_fails_the_strict_kubernetes_schemas(tmp_path: Path) -> None:
    copy = broken(tmp_path, "templates/web.yaml", "revisionHistoryLimit:", "revisionHistoryLimt:")
    problems = chart.kubernetes_problems(chart.render(chart=copy), chart.KUBERNETES_VERSIONS[0])
    assert problems
    assert all(p.startswith("Deployment/ts-turnstile-") for p in problems)
    assert "revisionHistoryLimt" in problems[0]


def test_a_writable_root_filesystem_is_refused(tmp_path: Path) -> None:
    copy = broken(
        tmp_path,
        "templates/_helpers.tpl",
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: false",
    )
    problems = chart.security_problems(chart.render(chart=copy))
    assert (
        "Deployment/ts-turnstile-users container users-web: the root filesystem is writable"
        in problems
    )


def test_a_value_the_cnpg_crd_does_not_allow_is_refused(tmp_path: Path) -> None:
    copy = broken(
        tmp_path,
        "templates/cnpg.yaml",
        "databaseReclaimPolicy: retain",
        "databaseReclaimPolicy: keep",
    )
    problems = chart.cnpg_problems(chart.render(chart=copy))
    assert len(problems) == 4  # a Database per service, the web pages' sessions included
    assert problems[0].startswith("Database/ts-turnstile-users: spec/databaseReclaimPolicy: 'keep'")


def test_a_field_the_cnpg_crd_does_not_know_is_refused(tmp_path: Path) -> None:
    copy = broken(tmp_path, "templates/cnpg.yaml", "  instances: {{ .instances }}", "  replicas: 3")
    problems = chart.cnpg_problems(chart.render(chart=copy))
    assert any(
        "Cluster/ts-turnstile-pg" in p and "'replicas' was unexpected" in p for p in problems
    )


def test_a_worker_without_its_heartbeat_probe_is_reported(tmp_path: Path) -> None:
    copy = broken(
        tmp_path, "templates/workers.yaml", "          livenessProbe:", "          readinessProbe:"
    )
    manifests = chart.render(chart=copy)
    assert "Deployment/ts-turnstile-booking-sweeper: no container has a liveness probe" in (
        chart.security_problems(manifests)
    )
    assert any(
        p.startswith("booking-sweeper: the liveness probe")
        for p in chart.rule_problems(manifests, {})
    )


def test_every_role_runs_with_its_probes_and_the_pages_have_theirs(
    manifests: list[dict[str, Any]],
) -> None:
    running = chart.deployments(manifests)
    assert sorted(running) == sorted((*WEB_ROLES, *WORKER_ROLES))
    pages = running["web"]
    assert pages["ports"][0]["containerPort"] == 8080
    assert pages["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    env = {e["name"]: e.get("value") for e in pages["env"]}
    assert env["BOOKING_API_URL"] == "http://ts-turnstile-booking:8001"
    assert "@ts-turnstile-pooler-rw:5432/web" in env["DATABASE_URL"]
    kinds = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    for kind in ("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Database"):
        assert (kind, "ts-turnstile-web") in kinds


def test_a_service_left_out_of_the_databases_and_migrations_is_reported(tmp_path: Path) -> None:
    copy = broken(
        tmp_path,
        "templates/_helpers.tpl",
        '(list "users" "booking" "notifications" "web")',
        '(list "users" "booking" "notifications")',
    )
    problems = chart.rule_problems(chart.render(chart=copy), {})
    assert "the migrations Job migrates ['users', 'booking', 'notifications']" in problems
    assert "the Databases are ['booking', 'notifications', 'users']" in problems


def test_a_smoke_test_without_the_pages_is_reported(tmp_path: Path) -> None:
    copy = broken(tmp_path, "templates/tests/smoke.yaml", ', ("web", 8080))', ")")
    problems = chart.rule_problems(chart.render(chart=copy), {})
    assert problems == ["`helm test` does not check web (web:8080)"]


def test_an_ingress_that_does_not_send_slash_to_the_pages_is_reported(tmp_path: Path) -> None:
    copy = broken(tmp_path, "templates/ingress.yaml", '"web" (list "/")', '"web" (list "/web")')
    values = chart.PRODUCTION_VALUES
    problems = chart.rule_problems(chart.render(values, chart=copy), values)
    assert problems == ["the Ingress routes / to None, not the web pages (ts-turnstile-web)"]


def test_a_schema_that_allows_a_transaction_pooler_is_reported(tmp_path: Path) -> None:
    copy = broken(tmp_path, "values.schema.json", '"const": "session",', '"type": "string",')
    assert chart.refused_values(copy) == ["a pooler in transaction mode"]


def test_the_command_fails_on_a_broken_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = broken(tmp_path, "templates/web.yaml", "containerPort:", "containerPorts:")
    assert main(["--chart", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  Kubernetes 1.30.0 schemas, strict (default)" in out
    assert out.splitlines()[-1].startswith("deploy-check: 16 checks, ")


def test_a_template_that_is_not_yaml_fails_its_render(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = broken(
        tmp_path, "templates/web.yaml", "revisionHistoryLimit: 5", "revisionHistoryLimit: 5: 6"
    )
    assert main(["--chart", str(copy)]) == 1
    assert "FAIL  chart renders (default values)" in capsys.readouterr().out
