"""Ticket codes verify offline with the published JWKS alone, and nothing else passes."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.test import Client

from booking_service.events.models import Event
from booking_service.testing import problem
from booking_service.tickets.keys import ticket_signing_key_rotate
from booking_service.tickets.models import TicketSigningKey
from booking_service.tickets.tests.conftest import scan
from servicekit.testing import Caller

pytestmark = pytest.mark.django_db


def published_jwks() -> dict[str, Any]:
    response = Client().get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    # The same keys under /api/ (for one public origin).
    assert Client().get("/api/tickets/jwks.json").json() == response.json()
    return dict(response.json())


def verify_offline(code: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """What a door scanner without network would do: PyJWT and the JWKS, nothing else."""
    header = jwt.get_unverified_header(code)
    keys = {key["kid"]: key for key in jwks["keys"]}
    key = jwt.PyJWK(keys[header["kid"]])
    return dict(jwt.decode(code, key=key, algorithms=["EdDSA"]))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_codes_verify_offline_with_the_jwks_alone(
    confirmed: Callable[..., dict[str, Any]], event: Event
) -> None:
    made = confirmed(tickets=3)
    jwks = published_jwks()
    assert [(k["kty"], k["crv"], k["alg"], k["use"]) for k in jwks["keys"]] == [
        ("OKP", "Ed25519", "EdDSA", "sig")
    ]
    assert "d" not in jwks["keys"][0]
    for number, ticket in enumerate(made["tickets"], start=1):
        header = jwt.get_unverified_header(ticket["code"])
        assert header == {"alg": "EdDSA", "kid": jwks["keys"][0]["kid"], "typ": "turnstile-ticket"}
        assert verify_offline(ticket["code"], jwks) == {
            "tid": ticket["id"],
            "bid": made["booking"]["id"],
            "eid": event.pk,
            "n": number,
        }


def test_private_keys_are_encrypted_at_rest(confirmed: Callable[..., dict[str, Any]]) -> None:
    confirmed(tickets=1)
    key = TicketSigningKey.objects.get()
    assert b"ENCRYPTED PRIVATE KEY" in bytes(key.private_key_pem)


def test_a_retired_key_stays_published_while_its_tickets_live(
    confirmed: Callable[..., dict[str, Any]], organizer: Caller
) -> None:
    old = confirmed(tickets=1)["tickets"][0]
    ticket_signing_key_rotate()
    new = confirmed(tickets=1)["tickets"][0]
    jwks = published_jwks()
    assert len(jwks["keys"]) == 2
    assert (
        jwt.get_unverified_header(old["code"])["kid"]
        != jwt.get_unverified_header(new["code"])["kid"]
    )
    for ticket in (old, new):
        verify_offline(ticket["code"], jwks)
        assert scan(organizer, ticket["code"]).status_code == 201


def test_a_retired_key_whose_tickets_are_all_void_is_withdrawn(
    confirmed: Callable[..., dict[str, Any]], customer: Caller, organizer: Caller
) -> None:
    made = confirmed(tickets=1)
    old_kid = jwt.get_unverified_header(made["tickets"][0]["code"])["kid"]
    call_command("rotate_ticket_signing_key")
    assert customer.client().delete(f"/api/bookings/{made['booking']['id']}/").status_code == 200
    kids = [key["kid"] for key in published_jwks()["keys"]]
    assert old_kid not in kids
    assert len(kids) == 1
    # Its codes are now codes of no published key.
    body = problem(scan(organizer, made["tickets"][0]["code"]), 422)
    assert body["type"] == "urn:problem:invalid-ticket-code"


def compact(header: dict[str, Any], payload: str, signature: str) -> str:
    return f"{b64(json.dumps(header).encode())}.{payload}.{signature}"


def forged_codes(genuine: str) -> dict[str, str]:
    _, payload_b64, signature = genuine.split(".")
    header = jwt.get_unverified_header(genuine)
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    other_key = Ed25519PrivateKey.generate()
    tampered = b64(json.dumps({**payload, "n": payload["n"] + 1}).encode())
    public_jwk = published_jwks()["keys"][0]
    return {
        "another key, same kid": jwt.encode(payload, other_key, algorithm="EdDSA", headers=header),
        "tampered payload": compact(header, tampered, signature),
        "alg none": compact({**header, "alg": "none"}, payload_b64, ""),
        "HS256 with the public key": jwt.api_jws.PyJWS(algorithms=["HS256"]).encode(
            json.dumps(payload).encode(),
            public_jwk["x"].encode(),
            algorithm="HS256",
            headers={"kid": header["kid"], "typ": "turnstile-ticket"},
        ),
        "unknown kid": jwt.encode(
            payload, other_key, algorithm="EdDSA", headers={**header, "kid": "nope"}
        ),
        "another typ": compact({**header, "typ": "JWT"}, payload_b64, signature),
        "kid not a string": compact({**header, "kid": [1]}, payload_b64, signature),
        "NUL in kid": compact({**header, "kid": "a\u0000b"}, payload_b64, signature),
        "garbage": "not.a.code",
        "no dots": "x" * 300,
    }


def test_forged_codes_are_422_invalid_ticket_code(
    confirmed: Callable[..., dict[str, Any]], organizer: Caller
) -> None:
    genuine = confirmed(tickets=2)["tickets"][0]["code"]
    for name, code in forged_codes(genuine).items():
        body = problem(scan(organizer, code), 422)
        assert body["type"] == "urn:problem:invalid-ticket-code", name
    # Nothing forged was recorded: the genuine code still checks in first time.
    assert scan(organizer, genuine).status_code == 201


def test_a_code_for_a_ticket_that_does_not_exist_is_refused(
    confirmed: Callable[..., dict[str, Any]], organizer: Caller
) -> None:
    from booking_service.tickets.keys import (
        TicketClaims,
        ticket_code_sign,
        ticket_signing_key_active,
    )

    confirmed(tickets=1)
    ticket = confirmed(tickets=1)["tickets"][0]
    payload = jwt.decode(ticket["code"], options={"verify_signature": False})
    code = ticket_code_sign(
        key=ticket_signing_key_active(),
        claims=TicketClaims(uuid.uuid4(), payload["bid"], payload["eid"], 1),
    )
    assert problem(scan(organizer, code), 422)["type"] == "urn:problem:invalid-ticket-code"
