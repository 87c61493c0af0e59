"""Ticket codes and the keys that sign them.

A code is a compact JWS (EdDSA, Ed25519) whose header names its key (`kid`) and its kind
(`typ: turnstile-ticket`), over `{"tid": ticket id, "bid": booking id, "eid": event id,
"n": ticket number}`. Anyone holding the booking service's JWKS (`ticket_jwks_document`) can
verify one offline; the service itself verifies against the same published keys.

Keys are made, encrypted at rest and cached by servicekit.signing, like the users service's
token keys: one is active, `ticket_signing_key_rotate` retires it, and a retired key stays
published while a ticket it signed is not void.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from booking_service.tickets.models import Ticket, TicketSigningKey, TicketStatus
from servicekit.errors import Unprocessable
from servicekit.signing import ALGORITHM, KeyRing

CODE_TYPE = "turnstile-ticket"
CLAIMS = frozenset({"tid", "bid", "eid", "n"})
KID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# The purpose is part of the at-rest encryption key: it must not change, or stored keys can
# no longer be read.
_keys = KeyRing("turnstile-ticket-signing-key")


class InvalidTicketCode(Unprocessable):
    default_code = "invalid-ticket-code"
    default_detail = "This is not a ticket code signed by this service."


@dataclass(frozen=True)
class TicketClaims:
    """What a verified code says."""

    ticket_id: uuid.UUID
    booking_id: int
    event_id: int
    number: int


def _key_create() -> TicketSigningKey:
    new = _keys.generate()
    return TicketSigningKey.objects.create(
        kid=new.kid, private_key_pem=new.private_key_pem, public_jwk=new.public_jwk
    )


def ticket_signing_key_active() -> TicketSigningKey:
    """The key that signs new codes; created on first use."""
    key = TicketSigningKey.objects.filter(retired_at__isnull=True).first()
    if key is not None:
        return key
    try:
        with transaction.atomic():
            return _key_create()
    except IntegrityError:  # another process created it first
        return TicketSigningKey.objects.get(retired_at__isnull=True)


def ticket_signing_key_rotate() -> TicketSigningKey:
    """A new key signs from now on; the old one stays published while its tickets live."""
    with transaction.atomic():
        TicketSigningKey.objects.select_for_update().filter(retired_at__isnull=True).update(
            retired_at=timezone.now()
        )
        return _key_create()


def _private(key: TicketSigningKey) -> Ed25519PrivateKey:
    return _keys.private(kid=key.kid, private_key_pem=bytes(key.private_key_pem))


def published_keys() -> QuerySet[TicketSigningKey]:
    """The active key, and retired keys that signed a ticket which is not void."""
    live_ticket = Ticket.objects.filter(kid=OuterRef("kid")).exclude(status=TicketStatus.VOID)
    return TicketSigningKey.objects.filter(Q(retired_at__isnull=True) | Exists(live_ticket))


def ticket_jwks_document() -> dict[str, Any]:
    return {"keys": [key.public_jwk for key in published_keys().order_by("-created_at")]}


def ticket_code_sign(*, key: TicketSigningKey, claims: TicketClaims) -> str:
    payload = {
        "tid": str(claims.ticket_id),
        "bid": claims.booking_id,
        "eid": claims.event_id,
        "n": claims.number,
    }
    return jwt.encode(
        payload, _private(key), algorithm=ALGORITHM, headers={"kid": key.kid, "typ": CODE_TYPE}
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _claims(payload: bytes) -> TicketClaims:
    try:
        body = json.loads(payload)
    except ValueError as exc:
        raise InvalidTicketCode from exc
    if not isinstance(body, dict) or set(body) != CLAIMS:
        raise InvalidTicketCode
    if not (_is_int(body["bid"]) and _is_int(body["eid"]) and _is_int(body["n"])):
        raise InvalidTicketCode
    try:
        ticket_id = uuid.UUID(str(body["tid"]))
    except ValueError as exc:
        raise InvalidTicketCode from exc
    return TicketClaims(ticket_id, body["bid"], body["eid"], body["n"])


def ticket_code_verify(code: str) -> TicketClaims:
    """The claims of a code signed by a published key; 422 `invalid-ticket-code` for
    anything else (another key, an unknown `kid`, a changed payload, `alg` none or HMAC,
    garbage)."""
    try:
        header = jwt.get_unverified_header(code)
    except jwt.InvalidTokenError as exc:
        raise InvalidTicketCode from exc
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM or header.get("typ") != CODE_TYPE:
        raise InvalidTicketCode
    if not isinstance(kid, str) or not KID.fullmatch(kid):
        raise InvalidTicketCode
    key = published_keys().filter(kid=kid).first()
    if key is None:
        raise InvalidTicketCode
    try:
        payload = jwt.api_jws.decode(code, jwt.PyJWK(key.public_jwk), algorithms=[ALGORITHM])
    except jwt.InvalidTokenError as exc:
        raise InvalidTicketCode from exc
    return _claims(payload)
