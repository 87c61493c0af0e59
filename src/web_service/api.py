"""The one way the web service talks to the other services: their public HTTP APIs.

A signed-in person's tokens live in their session (server-side, in this service's database);
`Api` adds the access token to each call, refreshes it once when it is about to expire or
is refused with 401, and turns a problem+json answer into `ApiProblem`, which pages show.

Refresh tokens rotate: a spent one presented again revokes the whole login. Two requests of
one session (a page and an htmx poll) could both try to refresh with the same token, so
refreshing takes a PostgreSQL advisory lock named after the session and first looks whether
another request has refreshed already.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import httpx
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection

TOKENS = "api_tokens"
USER = "api_user"
# Refresh this long before the access token expires, so a call seldom meets a 401.
REFRESH_MARGIN_SECONDS = 30

_client = httpx.Client(
    timeout=httpx.Timeout(settings.API_TIMEOUT_SECONDS, connect=5.0),
    limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    headers={"Accept": "application/json", "User-Agent": "turnstile-web"},
    follow_redirects=False,
)


def base_url(service: str) -> str:
    urls = {
        "users": settings.USERS_API_URL,
        "booking": settings.BOOKING_API_URL,
        "notifications": settings.NOTIFICATIONS_API_URL,
    }
    return str(urls[service])


@dataclass(eq=False)
class ApiProblem(Exception):  # noqa: N818  (the name pages and tests know it by)
    """A refusal from a service, as its problem+json said it (or as near as we can tell)."""

    status: int
    title: str
    detail: str = ""
    type: str = "about:blank"
    errors: dict[str, list[str]] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.detail or self.title

    @property
    def messages(self) -> list[str]:
        """What to tell the person: the detail, then each field's complaints."""
        lines = [self.detail or self.title]
        for name, problems in self.errors.items():
            label = "" if name in ("non_field_errors", "detail") else f"{name.replace('_', ' ')}: "
            lines += [f"{label}{problem}" for problem in problems]
        return lines

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiProblem:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return cls(response.status_code, _status_title(response.status_code))
        return cls(
            status=response.status_code,
            title=str(body.get("title") or _status_title(response.status_code)),
            detail=str(body.get("detail") or ""),
            type=str(body.get("type") or "about:blank"),
            errors=_field_errors(body.get("errors")),
            body=body,
        )


class NotSignedIn(Exception):  # noqa: N818  (a state of the session, not a fault)
    """The session holds no tokens, or the users service no longer accepts them."""


def _status_title(status: int) -> str:
    if status >= 500:
        return "The service could not answer just now. Please try again."
    return {404: "Not found.", 403: "Not allowed.", 429: "Too many requests; wait a moment."}.get(
        status, "The request was refused."
    )


def _field_errors(raw: Any) -> dict[str, list[str]]:
    if not isinstance(raw, dict):
        return {}
    errors: dict[str, list[str]] = {}
    for name, value in raw.items():
        items = value if isinstance(value, list) else [value]
        errors[str(name)] = [str(item) for item in items]
    return errors


def _lock_id(session_key: str) -> int:
    """A signed 64-bit advisory lock id from the session key."""
    return int.from_bytes(hashlib.sha256(session_key.encode()).digest()[:8], "big", signed=True)


def store_login(session: SessionBase, tokens: dict[str, Any]) -> None:
    """Keep a login answer's tokens (and the user it names) in the session."""
    session[TOKENS] = {
        "access": tokens["access"],
        "refresh": tokens["refresh"],
        "expires_at": time.time() + float(tokens.get("expires_in", 300)),
    }
    if "user" in tokens:
        session[USER] = tokens["user"]


class Options(TypedDict, total=False):
    """What a call may add to its method and path; it is signed in (auth) unless told not."""

    json: Any
    params: dict[str, Any] | None
    headers: dict[str, str] | None
    auth: bool


class Api:
    """Calls on behalf of one session (or of nobody, for public reads)."""

    def __init__(self, session: SessionBase | None = None, *, forwarded_for: str = "") -> None:
        self.session = session
        # The browser's address, passed on as a proxy does (X-Forwarded-For): an API service
        # that lists this service in its TRUSTED_PROXIES keeps its per-address limits per
        # person, not one budget for everyone behind the web service.
        self.forwarded_for = forwarded_for

    def get(self, service: str, path: str, **options: Unpack[Options]) -> Any:
        return self.call("GET", service, path, **options)

    def post(self, service: str, path: str, **options: Unpack[Options]) -> Any:
        return self.call("POST", service, path, **options)

    def patch(self, service: str, path: str, **options: Unpack[Options]) -> Any:
        return self.call("PATCH", service, path, **options)

    def delete(self, service: str, path: str, **options: Unpack[Options]) -> Any:
        return self.call("DELETE", service, path, **options)

    def call(self, method: str, service: str, path: str, **options: Unpack[Options]) -> Any:
        """The JSON answer (None when empty), or ApiProblem / NotSignedIn."""
        response = self.send(method, service, path, **options)
        if response.status_code >= 400:
            raise ApiProblem.from_response(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def send(
        self, method: str, service: str, path: str, **options: Unpack[Options]
    ) -> httpx.Response:
        """The raw answer, whatever its status (a CSV download, say), after one refresh."""
        auth = options.get("auth", True)
        if auth:
            if self._tokens() is None:
                raise NotSignedIn
            if self._tokens_expiring():
                self._refresh()
        response = self._send(method, service, path, options)
        if auth and response.status_code == 401:
            self._refresh()
            response = self._send(method, service, path, options)
            if response.status_code == 401:
                self.forget()
                raise NotSignedIn
        return response

    def _send(self, method: str, service: str, path: str, options: Options) -> httpx.Response:
        tokens = self._tokens()
        headers = dict(options.get("headers") or {})
        if self.forwarded_for:
            headers["X-Forwarded-For"] = self.forwarded_for
        if options.get("auth", True) and tokens is not None:
            headers["Authorization"] = f"Bearer {tokens['access']}"
        clean = {k: v for k, v in (options.get("params") or {}).items() if v not in (None, "")}
        try:
            return _client.request(
                method,
                base_url(service) + path,
                json=options.get("json"),
                params=clean,
                headers=headers,
            )
        except httpx.HTTPError as exc:
            raise ApiProblem(
                503,
                f"The {service} service is not answering just now. Please try again.",
                detail="",
                type="urn:problem:service-unreachable",
                body={"error": type(exc).__name__},
            ) from exc

    # -- the session's tokens -------------------------------------------------------------

    def _tokens(self) -> dict[str, Any] | None:
        if self.session is None:
            return None
        tokens = self.session.get(TOKENS)
        return tokens if isinstance(tokens, dict) else None

    def _tokens_expiring(self) -> bool:
        tokens = self._tokens()
        return tokens is not None and tokens["expires_at"] - time.time() < REFRESH_MARGIN_SECONDS

    def forget(self) -> None:
        if self.session is not None:
            self.session.pop(TOKENS, None)
            self.session.pop(USER, None)

    def _refresh(self) -> None:
        """Trade the refresh token for a new pair, once per session at a time."""
        if self.session is None:
            raise NotSignedIn
        key = self.session.session_key
        if key is None:
            self._refresh_unlocked()
            return
        lock = _lock_id(key)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [lock])
            try:
                stored = SessionStore(session_key=key).load().get(TOKENS)
                mine = self._tokens()
                if stored and mine and stored["refresh"] != mine["refresh"]:
                    # Another request of this session refreshed while we waited: use its pair.
                    self.session[TOKENS] = stored
                    if stored["expires_at"] - time.time() >= REFRESH_MARGIN_SECONDS:
                        return
                self._refresh_unlocked()
                self.session.save()
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [lock])

    def _refresh_unlocked(self) -> None:
        tokens = self._tokens()
        if tokens is None:
            raise NotSignedIn
        try:
            response = _client.post(
                base_url("users") + "/api/users/token/refresh", json={"refresh": tokens["refresh"]}
            )
        except httpx.HTTPError as exc:
            raise ApiProblem(503, "The users service is not answering just now.") from exc
        if response.status_code != 200:
            self.forget()
            raise NotSignedIn
        if self.session is not None:
            store_login(self.session, response.json())
