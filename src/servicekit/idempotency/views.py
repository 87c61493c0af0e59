"""`IdempotentMixin`: the `Idempotency-Key` header on an APIView's POST."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from servicekit.idempotency.models import IdempotencyKey
from servicekit.idempotency.services import (
    Replay,
    idempotency_key_abandon,
    idempotency_key_begin,
    idempotency_key_complete,
    request_fingerprint,
)

HEADER = "Idempotency-Key"
IDEMPOTENT_METHODS = frozenset({"POST"})


class _ReplayError(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class IdempotentMixin:
    """Put before `APIView` in the bases. Runs after authentication and permissions, so the
    key is scoped to the authenticated caller; the endpoint is the view class and method."""

    # Views that share one operation (`/api/bookings/` and `/api/bookings/create/`) share a
    # scope; by default it is the view class.
    idempotency_scope: str | None = None
    _idempotency_record: IdempotencyKey | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self._idempotency_record = None
        body = request._request.body  # read before DRF parses it, so it can be hashed
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        key = request.headers.get(HEADER)
        if key is None or request.method not in IDEMPOTENT_METHODS:
            return
        user = request.user
        owner = str(getattr(user, "id", None) or "anonymous")
        scope = self.idempotency_scope or f"{type(self).__module__}.{type(self).__qualname__}"
        endpoint = f"{request.method} {scope}"
        result = idempotency_key_begin(
            owner=owner, endpoint=endpoint, key=key, fingerprint=request_fingerprint(body)
        )
        if isinstance(result, Replay):
            response = Response(result.body, status=result.status, content_type=result.content_type)
            response["Idempotent-Replayed"] = "true"
            raise _ReplayError(response)
        self._idempotency_record = result

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _ReplayError):
            return exc.response
        try:
            return super().handle_exception(exc)  # type: ignore[misc]
        except Exception:
            record = self._idempotency_record
            if record is not None:
                self._idempotency_record = None
                idempotency_key_abandon(record=record)
            raise

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        record = self._idempotency_record
        if record is not None:
            self._idempotency_record = None
            if response.status_code >= 500 or response.status_code == 429:
                # The server failed, or asked the client to come back later: a retry with
                # the same key runs the request again (a stored 429 would refuse it for the
                # key's whole lifetime, whatever Retry-After said).
                idempotency_key_abandon(record=record)
            else:
                idempotency_key_complete(
                    record=record,
                    status=response.status_code,
                    body=response.data,
                    # The header is set at rendering, later: take what rendering will use.
                    content_type=response.content_type
                    or getattr(response, "accepted_media_type", None)
                    or "application/json",
                )
        return response
