"""`IdempotentMixin`: the `Idempotency-Key` header on an APIView's POST.

By default the whole request is one phase: the view runs inside one transaction that also
takes the key's lock and records its answer, so the change and the answer commit together
or not at all. A view that must call out between transactions (a payment asks its
provider) sets `idempotency_phases = True`: it then records a recovery point with its first
phase's change (`idempotency_checkpoint`) and implements `idempotent_resume`, which answers a
retry that finds that recovery point without an answer.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack, suppress
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, connection, transaction
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from servicekit.idempotency.services import (
    Replay,
    Resume,
    Scope,
    idempotency_key_checkpoint,
    idempotency_key_find,
    idempotency_key_lock,
    idempotency_key_store,
    idempotency_key_unlock,
    request_fingerprint,
    validate_key,
)
from servicekit.problems import unavailable

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
IDEMPOTENT_METHODS = frozenset({"POST"})


class _Answered(Exception):  # noqa: N818 (it carries the answer, it is not an error)
    def __init__(self, response: Response) -> None:
        self.response = response


def _keeps(response: Response, *, phased: bool) -> bool:
    """Whether an answer is the key's for good. A 5xx (the server failed) and a 429 (come
    back later) are not: a retry with the key runs again. (A stored 429 would refuse the
    key for its whole lifetime, whatever Retry-After said.) Nor is a phased request's 202:
    its last phase has not finished (a payment's outcome is unknown), so a retry resumes it
    and learns the outcome, instead of a replayed `pending` for the key's whole lifetime."""
    if phased and response.status_code == 202:
        return False
    return response.status_code < 500 and response.status_code != 429


def _content_type(response: Response) -> str:
    """The header rendering will set, later (DRF's rule): the response's own content type,
    or the renderer's media type; never the client's Accept with its parameters."""
    if response.content_type:
        return str(response.content_type)
    renderer = getattr(response, "accepted_renderer", None)
    if renderer is None:
        return "application/json"
    media_type = str(renderer.media_type)
    return f"{media_type}; charset={renderer.charset}" if renderer.charset else media_type


def _replay(replay: Replay) -> Response:
    response = Response(replay.body, status=replay.status, content_type=replay.content_type)
    response["Idempotent-Replayed"] = "true"
    return response


if TYPE_CHECKING:
    # What the mixin's super() calls reach: the APIView it is put before.
    _ViewBase = APIView
else:
    _ViewBase = object


class IdempotentMixin(_ViewBase):
    """Put before `APIView` in the bases. The key is taken after authentication, permissions
    and throttles (so it is scoped to the authenticated caller, and rate limits are counted
    outside the key's transaction); the endpoint is the view class and method."""

    # Views that share one operation (`/api/bookings/` and `/api/bookings/create/`) share a
    # scope; by default it is the view class.
    idempotency_scope: str | None = None
    # True: the view calls out between transactions; see the module docstring.
    idempotency_phases: bool = False
    _idempotency: Scope | None = None
    _idempotency_exits: ExitStack | None = None

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self._idempotency = None
        with ExitStack() as exits:
            # Whatever leaves dispatch (an answer, or an exception nobody handled) closes
            # the key's transaction and releases its lock.
            self._idempotency_exits = exits
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        body = request._request.body  # read before DRF parses it, so it can be hashed
        super().initial(request, *args, **kwargs)
        key = request.headers.get(HEADER)
        if key is None or request.method not in IDEMPOTENT_METHODS:
            return
        validate_key(key)
        user = request.user
        scope_name = self.idempotency_scope or f"{type(self).__module__}.{type(self).__qualname__}"
        scope = Scope(
            owner=str(getattr(user, "id", None) or "anonymous"),
            endpoint=f"{request.method} {scope_name}",
            key=key,
            fingerprint=request_fingerprint(body),
        )
        exits = self._idempotency_exits
        if exits is None:
            raise RuntimeError("IdempotentMixin.dispatch did not run")
        if self.idempotency_phases:
            idempotency_key_lock(scope, session=True)
            exits.callback(_unlock, scope)
        else:
            exits.enter_context(transaction.atomic())
            idempotency_key_lock(scope)
        found = idempotency_key_find(scope)
        if isinstance(found, Replay):
            raise _Answered(_replay(found))
        self._idempotency = scope
        if isinstance(found, Resume):
            raise _Answered(self.idempotent_resume(request, found.record.recovery_point))

    def idempotency_checkpoint(self, recovery_point: Any) -> None:
        """Record where a phased request got to; call it inside the transaction of the change
        it names. Nothing happens for a request without a key."""
        if self._idempotency is not None:
            idempotency_key_checkpoint(self._idempotency, recovery_point)

    def idempotent_resume(self, request: Request, recovery_point: Any) -> Response:
        """Answer a retry whose earlier request reached `recovery_point` and left no answer."""
        raise NotImplementedError(f"{type(self).__name__} records recovery points")

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Answered):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        scope, self._idempotency = self._idempotency, None
        if scope is None:
            return response
        if not _keeps(response, phased=self.idempotency_phases):
            if not self.idempotency_phases:
                transaction.set_rollback(True)  # the change goes with its answer
            return response
        try:
            self._store(scope, response)  # one statement: atomic on its own in a phased view
        except DatabaseError:
            logger.warning(
                "the answer to Idempotency-Key %r was not recorded", scope.key, exc_info=True
            )
            if self.idempotency_phases:
                return response  # its change committed; a retry resumes from the checkpoint
            transaction.set_rollback(True)
            if response.status_code < 300:
                # Rolled back with its answer: it did not happen after all.
                return self._unavailable(request, *args, **kwargs)
        return response

    def _store(self, scope: Scope, response: Response) -> None:
        if connection.needs_rollback:
            raise DatabaseError("the request's transaction is marked for rollback")
        idempotency_key_store(
            scope,
            status=response.status_code,
            body=response.data,
            content_type=_content_type(response),
        )

    def _unavailable(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().handle_exception(unavailable())
        return super().finalize_response(request, response, *args, **kwargs)


def _unlock(scope: Scope) -> None:
    with suppress(DatabaseError):  # the connection broke: the lock went with it
        idempotency_key_unlock(scope)
