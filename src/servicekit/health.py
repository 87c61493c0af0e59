"""`/health/live` and `/health/ready`.

Ready means the service can do its work: its database answers and the bus accepts
connections. A service adds its own checks (outbox lag, say) with `HEALTH_CHECKS`, a list
of dotted paths to callables returning a `Check`.

Anyone gets the readiness status (probes and load balancers send no token); the details
(each check, with its errors, host names and queue lengths) go only to an admin or a service
principal. A bearer token that does not verify counts as no token: the caller gets the
status alone, never a 401, so the status code is the readiness whatever the headers.
"""

from __future__ import annotations

import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.module_loading import import_string
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from servicekit.auth import JWTAuthentication

# Who may read the details of /health/ready.
DETAIL_ROLES = frozenset({"admin", "service"})


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def check_database() -> Check:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return Check("database", False, f"{type(exc).__name__}: {exc}")
    return Check("database", True, data={"ms": round((time.perf_counter() - started) * 1000, 2)})


def check_bus(timeout: float = 1.0) -> Check:
    """The NATS server answers its INFO greeting on every listed server URL we can reach."""
    errors: list[str] = []
    for url in str(settings.NATS_URL).split(","):
        parts = urlsplit(url.strip())
        host, port = parts.hostname or "127.0.0.1", parts.port or 4222
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                sock.settimeout(timeout)
                greeting = sock.recv(7)
            if greeting.startswith(b"INFO"):
                return Check("bus", True, data={"server": f"{host}:{port}"})
            errors.append(f"{host}:{port} sent no INFO")
        except OSError as exc:
            errors.append(f"{host}:{port}: {exc}")
    return Check("bus", False, "; ".join(errors))


def run_checks() -> list[Check]:
    checks = [check_database()]
    if getattr(settings, "HEALTH_CHECK_BUS", True):  # off for a service that never uses it
        checks.append(check_bus())
    for path in getattr(settings, "HEALTH_CHECKS", []):
        checks.append(_run_check(path))
    return checks


def _run_check(path: str) -> Check:
    """A service's own check; one that cannot run (its database is down, say) has failed:
    readiness then answers 503, never 500."""
    try:
        return cast(Check, import_string(path)())
    except Exception as exc:
        name = path.rpartition(".")[2].removeprefix("check_")
        return Check(name, False, f"{type(exc).__name__}: {exc}")


class LiveApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(operation_id="health_live", responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response({"status": "ok", "service": settings.SERVICE_NAME})


def may_see_details(request: Request) -> bool:
    try:
        authenticated = JWTAuthentication().authenticate(request)
    except exceptions.AuthenticationFailed:
        return False
    return authenticated is not None and authenticated[0].role in DETAIL_ROLES


class ReadinessSerializer(serializers.Serializer[dict[str, Any]]):
    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    service = serializers.CharField(
        required=False, help_text="Only for an admin or a service principal."
    )
    checks = serializers.DictField(
        # inline: a declared field named `data` would shadow Serializer.data
        child=inline_serializer(
            "HealthCheck",
            {
                "name": serializers.CharField(),
                "ok": serializers.BooleanField(),
                "detail": serializers.CharField(),
                "data": serializers.DictField(),
            },
        ),
        required=False,
        help_text="Each check by name; only for an admin or a service principal.",
    )


class ReadyApi(APIView):
    authentication_classes: list[type] = []  # a bad token must not turn the answer into a 401
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="health_ready",
        description="Readiness: the database and the bus answer (and the service's own "
        "checks pass). A bearer token of an admin or a service principal also gets the "
        "details; anyone else, or a token that does not verify, gets the status alone.",
        responses={
            200: OpenApiResponse(ReadinessSerializer, description="Ready."),
            503: OpenApiResponse(ReadinessSerializer, description="Not ready: a check failed."),
        },
    )
    def get(self, request: Request) -> Response:
        checks = run_checks()
        ready = all(check.ok for check in checks)
        body: dict[str, Any] = {"status": "ok" if ready else "unavailable"}
        if may_see_details(request):
            body["service"] = settings.SERVICE_NAME
            body["checks"] = {check.name: asdict(check) for check in checks}
        response = Response(body, status=200 if ready else 503)
        # The body depends on the token: no shared cache may keep one caller's answer.
        patch_vary_headers(response, ["Authorization"])
        patch_cache_control(response, no_store=True)
        return response


class WhoAmIApi(APIView):
    """The caller as this service sees their token: handy for clients debugging a token, and
    the cheapest authenticated request a service answers (the benchmark's no-op)."""

    @extend_schema(operation_id="whoami", responses={200: dict})
    def get(self, request: Request) -> Response:
        user = request.user
        return Response({"id": getattr(user, "id", None), "role": getattr(user, "role", None)})
