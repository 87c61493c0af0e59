"""python3 dev.py <command>: see `python3 dev.py --help`."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py", description="Turnstile development tasks")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the whole stack (embedded PostgreSQL and NATS)")
    up.add_argument("--workers", type=int, default=2, help="HTTP worker processes per service")

    test = commands.add_parser(
        "test", help="run the test suites; extra arguments after -- go to pytest"
    )
    test.add_argument("suites", nargs="*", help="servicekit, users, booking, notifications, e2e")

    commands.add_parser("check", help="ruff, mypy and makemigrations --check")

    commands.add_parser(
        "fuzz", help="schemathesis against every service, longer than CI; --help for options"
    )

    commands.add_parser(
        "chaos", help="the fault suite: workload, seeded nemesis, history checker; --help"
    )

    commands.add_parser(
        "bench", help="flash-sale benchmark (docs/performance/benchmark.md); --help for options"
    )

    commands.add_parser(
        "soak",
        help="table sizes and the booking rate under a long mixed load "
        "(docs/operations/retention.md); --help",
    )

    commands.add_parser(
        "deploy-check",
        help="render the Helm chart and validate it and compose.yaml offline "
        "(docs/operations/deployment.md)",
    )

    commands.add_parser(
        "image-test",
        help="build the container image and run the README's walkthrough against it; --help",
    )

    pytest_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, pytest_args = argv[:split], argv[split + 1 :]
    if argv[:1] == ["fuzz"]:
        from devstack.fuzz import main as run_fuzz

        return run_fuzz(argv[1:])
    if argv[:1] == ["chaos"]:
        from devstack.chaos.run import main as run_chaos

        return run_chaos(argv[1:])
    if argv[:1] == ["bench"]:
        from devstack.bench import main as run_bench

        return run_bench(argv[1:])
    if argv[:1] == ["soak"]:
        from devstack.soak import main as run_soak

        return run_soak(argv[1:])
    if argv[:1] == ["deploy-check"]:
        from devstack.deploy.check import main as run_deploy_check

        return run_deploy_check(argv[1:])
    if argv[:1] == ["image-test"]:
        from devstack.deploy.image import main as run_image_test

        return run_image_test(argv[1:])
    args = parser.parse_args(argv)

    if args.command == "up":
        from devstack.stack import up as run_up

        return run_up(workers=args.workers)
    if args.command == "test":
        from devstack.testing import run_tests

        return run_tests(args.suites, pytest_args)
    if args.command == "check":
        from devstack.check import run_checks

        return run_checks()
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
