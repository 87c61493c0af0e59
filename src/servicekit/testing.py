"""Test helpers every service uses: a real Ed25519 key, tokens signed with it and callers
holding them, its JWKS served over real HTTP (so the verifier under test runs exactly as in
production), free ports, polling, and real service processes on the test database."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

if TYPE_CHECKING:
    from rest_framework.test import APIClient


class TestTokenIssuer:
    """Signs access tokens the way the users service does."""

    __test__ = False  # not a pytest test class

    def __init__(self, *, issuer: str, audience: str, kid: str | None = None) -> None:
        self.issuer = issuer
        self.audience = audience
        self.kid = kid or f"test-{uuid.uuid4().hex[:8]}"
        self.private_key = Ed25519PrivateKey.generate()

    def jwk(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.private_key.public_key()))
        return {**public, "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}

    def token(
        self,
        sub: str,
        role: str = "customer",
        *,
        ttl_seconds: int = 300,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": sub,
            "role": role,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        payload.update(claims)
        return jwt.encode(
            payload,
            self.private_key,
            algorithm="EdDSA",
            headers={"kid": self.kid, **(headers or {})},
        )


@contextmanager
def serve_jwks(*issuers: TestTokenIssuer) -> Iterator[str]:
    """Serve the issuers' public keys at http://127.0.0.1:<free port>/.well-known/jwks.json."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"keys": [issuer.jwk() for issuer in issuers]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Caller:
    """A user (or a service) with a real signed token, and the ways tests send it."""

    user_id: str
    role: str
    token: str

    @property
    def id(self) -> uuid.UUID:
        """The user's id as the services store it (a service's `service:<name>` has none)."""
        return uuid.UUID(self.user_id)

    @property
    def auth(self) -> dict[str, Any]:
        """Keyword arguments for Django's test client."""
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}

    @property
    def auth_header(self) -> dict[str, str]:
        """Headers for a real HTTP request."""
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> APIClient:
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token}")
        return client


def make_caller(issuer: TestTokenIssuer, role: str = "customer") -> Caller:
    """A caller of `role` with a fresh id and an hour's token: a UUID as the users service
    gives, or `service:<name>` for a service."""
    user_id = f"service:{uuid.uuid4().hex[:6]}" if role == "service" else str(uuid.uuid4())
    return Caller(user_id=user_id, role=role, token=issuer.token(user_id, role, ttl_seconds=3600))


def all_at_once(count: int, call: Callable[[], Any], *, timeout: float = 60) -> list[Any]:
    """Run `call` on `count` threads released together (each with its own database
    connection, closed after); return what they returned, in the order they finished."""
    from django.db import connections

    start = threading.Barrier(count)
    results: list[Any] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            start.wait(10)
            result = call()
            with lock:
                results.append(result)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results


def current_database_url() -> str:
    """DATABASE_URL naming the database Django is connected to now (the test database inside
    tests), for real processes started by a test to share it: they see committed data only,
    so such tests run in transaction mode."""
    import os
    from urllib.parse import urlsplit, urlunsplit

    from django.db import connection

    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{connection.settings_dict['NAME']}"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def logged_at(output: str, text: str) -> float:
    """When a service process wrote the first log line containing `text`, as a time.time():
    the services' log format begins with the local time to the millisecond."""
    line = next(line for line in output.splitlines() if text in line)
    seconds = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
    return seconds + int(line[20:23]) / 1000


@contextmanager
def service_process(
    package: str,
    *,
    env: dict[str, str],
    workers: int = 1,
    timeout: float = 30.0,
) -> Iterator[str]:
    """Run `<package>.wsgi` under gunicorn on a free port as a real process; yield its base
    URL once /health/live answers; stop it afterwards."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    port = free_port()
    full_env = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": f"{package}.settings"}
    argv = [
        sys.executable, "-m", "gunicorn", f"{package}.wsgi:application",
        "-c", "python:servicekit.gunicorn_conf",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
    ]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603
        argv,
        env=full_env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{package} exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"{base}/health/live", timeout=2):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
