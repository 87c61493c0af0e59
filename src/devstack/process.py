"""Child processes with prefixed output, stopped in order."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence

COLORS = ["36", "33", "35", "32", "34", "31"]


class Child:
    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], color: str = "0"
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.color = color
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the stack only; it stops children in order
        )
        threading.Thread(target=self._pump, daemon=True).start()
        return self

    def _pump(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        tty = sys.stdout.isatty()
        prefix = f"\033[{self.color}m{self.name:>14}\033[0m | " if tty else f"{self.name:>14} | "
        for line in iter(self.process.stdout.readline, b""):
            sys.stdout.write(prefix + line.decode(errors="replace"))
            sys.stdout.flush()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        if self.alive():
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def stop_all(children: Sequence[Child], timeout: float = 15.0) -> None:
    for child in children:
        child.terminate()
    for child in children:
        child.wait(timeout)
