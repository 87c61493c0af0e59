"""python3 dev.py image-test: placeholder until the image lands."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    print("image-test: not written yet")
    return 1
