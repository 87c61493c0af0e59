"""Test helpers other services use: a real Ed25519 key, tokens signed with it, and its JWKS
served over real HTTP, so the verifier under test runs exactly as in production."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


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
    """A URL for the database Django is connected to now (the test database inside tests),
    for real service processes started by a test to share it."""
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    user = quote(db.get("USER") or "postgres")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or ""
    port = db.get("PORT") or ""
    name = db["NAME"]
    if host.startswith("/"):
        return f"postgresql://{user}{password}@/{name}?host={quote(host)}"
    return f"postgresql://{user}{password}@{host}{':' + str(port) if port else ''}/{name}"


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
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
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
