"""`python3 dev.py deploy-check`: the Helm chart and compose.yaml, validated offline.

One line per check, then a summary; exit status 1 when any check failed. Nothing here
needs a cluster, a container runtime or the network: the chart is rendered by Helm's Go
SDK in-process, the manifests are checked against vendored schemas (Kubernetes through
kubernetes-validate, CloudNativePG and the Compose specification in schemas/), so CI runs
it in seconds.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

from devstack.deploy import chart, compose


@dataclass(frozen=True)
class Result:
    name: str
    problems: list[str]
    detail: str = ""


def attempt(name: str, run: Callable[[], list[str]], detail: str = "") -> Result:
    """A check that raised is a failed check, with the error as its problem."""
    try:
        return Result(name, run(), detail)
    except Exception as error:  # any failure to check is a failed check
        return Result(name, [f"{type(error).__name__}: {error}"], detail)


def chart_results(chart_dir: Path) -> list[Result]:
    results = [attempt("helm lint --strict", lambda: chart.lint_problems(chart_dir))]
    for label, values in chart.VALUE_SETS.items():
        try:
            manifests = chart.render(values, chart_dir)
        except (helm_python.HelmError, yaml.YAMLError) as error:
            results.append(Result(f"chart renders ({label} values)", [str(error)]))
            continue
        results.append(Result(f"chart renders ({label} values)", [], f"{len(manifests)} manifests"))
        results += manifest_results(label, manifests, values)
    refused = attempt(
        "values.schema.json refuses bad values",
        lambda: [f"accepted {name}" for name in chart.refused_values(chart_dir)],
        f"{len(chart.BAD_VALUES)} tried",
    )
    return [*results, refused]


def manifest_results(
    label: str, manifests: list[dict[str, Any]], values: dict[str, Any]
) -> list[Result]:
    results = [
        attempt(
            f"Kubernetes {version} schemas, strict ({label})",
            lambda version=version: chart.kubernetes_problems(manifests, version),  # type: ignore[misc]
        )
        for version in chart.KUBERNETES_VERSIONS
    ]
    cnpg = [m for m in manifests if m.get("apiVersion", "").startswith("postgresql.cnpg.io/")]
    if cnpg:
        results.append(
            attempt(
                f"CloudNativePG CRD schemas ({label})",
                lambda: chart.cnpg_problems(manifests),
                ", ".join(sorted({m["kind"] for m in cnpg})),
            )
        )
    results.append(
        attempt(
            f"pod security, probes, resources ({label})", lambda: chart.security_problems(manifests)
        )
    )
    results.append(
        attempt(f"chart rules ({label})", lambda: chart.rule_problems(manifests, values))
    )
    return results


def compose_results(path: Path) -> list[Result]:
    return [
        attempt(
            "compose.yaml: Compose specification schema",
            lambda: compose.schema_problems(compose.load(path)),
        ),
        attempt("compose.yaml: project rules", lambda: compose.rule_problems(path)),
        attempt(".env is kept out of git", compose.git_problems),
    ]


def report(results: list[Result], seconds: float) -> int:
    for result in results:
        status = "ok  " if not result.problems else "FAIL"
        detail = f" ({result.detail})" if result.detail and not result.problems else ""
        print(f"{status}  {result.name}{detail}")
        for problem in result.problems:
            print(f"        {problem}")
    failed = sum(1 for result in results if result.problems)
    print(f"deploy-check: {len(results)} checks, {failed} failed, {seconds:.1f} s")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py deploy-check", description=__doc__.split("\n")[0])
    parser.add_argument("--chart", type=Path, default=chart.CHART, help="the chart's folder")
    parser.add_argument("--compose", type=Path, default=compose.COMPOSE, help="the compose file")
    args = parser.parse_args(argv)
    started = time.monotonic()
    results = chart_results(args.chart) + compose_results(args.compose)
    return report(results, time.monotonic() - started)
