"""Removes a test run's throwaway servers and folder when the run ends, even by SIGKILL.

    python -m devstack.reaper <workdir>

`dev.py test` starts it with a pipe on its stdin whose other end only the run holds. When
the run ends, however it ends, the pipe closes; the reaper then stops the PostgreSQL and
the nats-server of <workdir> (a run that ended normally has stopped them already) and
deletes the folder. PostgreSQL daemonizes, so nothing else would stop it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack import postgres
from devstack.nats import EmbeddedNats


def reap(workdir: Path) -> None:
    postgres.stop_leftover(workdir / "postgres")
    EmbeddedNats(workdir / "nats").stop_leftover()
    shutil.rmtree(workdir, ignore_errors=True)


def reap_when_gone(workdir: Path) -> subprocess.Popen[bytes]:
    """Start a reaper for `workdir`; it acts when this process closes its stdin or dies."""
    return subprocess.Popen(
        [sys.executable, "-m", "devstack.reaper", str(workdir)],
        stdin=subprocess.PIPE,
        start_new_session=True,  # a Ctrl-C meant for the run must not end the reaper first
    )


@contextmanager
def reaped(workdir: Path) -> Iterator[None]:
    """While inside: a reaper stands by for `workdir`, for when this process is killed. On
    the way out (the caller has stopped its servers) it is let go."""
    reaper = reap_when_gone(workdir)
    try:
        yield
    finally:
        assert reaper.stdin is not None
        reaper.stdin.close()  # nothing left for it to do; it ends
        reaper.wait()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdin.buffer.read()  # returns at end of file: the run is over
    reap(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
