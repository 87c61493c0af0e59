"""python3 dev.py deploy-check: placeholder until the chart lands."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    print("deploy-check: not written yet")
    return 1
