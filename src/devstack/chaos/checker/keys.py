"""One effect per `Idempotency-Key`: every booking and payment named by exactly one key
record, and every answer a key got naming what its record names."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from devstack.chaos.checker.case import Case
from devstack.chaos.checker.operations import answered_payment, same_time

BOOKING_ENDPOINT = "POST bookings.create"
PAYMENT_ENDPOINT = "POST payments.create"


def _key_claim(record: dict[str, Any]) -> int | None:
    """The booking or payment a key record names: what its request made."""
    point, body = record.get("recovery_point"), record.get("response_body")
    if isinstance(point, dict) and point.get("payment") is not None:
        return int(point["payment"])
    if not isinstance(body, dict):
        return None
    if record.get("response_status") in (200, 201, 202) and body.get("id") is not None:
        return int(body["id"])
    payment = body.get("payment")
    if isinstance(payment, dict) and payment.get("id") is not None:
        return int(payment["id"])
    return None


def one_effect_per_key(case: Case) -> None:
    claims: dict[tuple[str, int], list[str]] = defaultdict(list)
    claimed_by_key: dict[tuple[str, str, str], int | None] = {}
    for record in case.world.keys:
        kind = {BOOKING_ENDPOINT: "booking", PAYMENT_ENDPOINT: "payment"}.get(
            str(record["endpoint"])
        )
        if kind is None:
            continue
        claim = _key_claim(record)
        claimed_by_key[(kind, str(record["owner"]), str(record["key"]))] = claim
        if claim is not None:
            claims[(kind, claim)].append(str(record["key"]))
    for kind, rows in (("booking", case.run_bookings), ("payment", case.run_payments)):
        for row_id, row in rows.items():
            keys = claims.get((kind, row_id), [])
            if len(keys) == 1:
                continue
            if not keys:
                case.say(
                    f"{kind} {row_id} of user {row['user_id']} (created {row['created_at']})"
                    f" is named by no Idempotency-Key record: its key lost it, and a retry"
                    f" may have made another{_suspects(case, kind, row)}"
                )
            else:
                case.say(f"{kind} {row_id} is named by several keys: {sorted(keys)}")
    answers: dict[tuple[str, str], set[int]] = defaultdict(set)
    for op in case.run.ops:
        if op.f not in ("book", "pay") or op.type != "ok" or op.key is None:
            continue
        kind = "booking" if op.f == "book" else "payment"
        answered = op.result.get("body") if kind == "booking" else answered_payment(op)
        if isinstance(answered, dict) and answered.get("id") is not None:
            answers[(kind, op.key)].add(int(answered["id"]))
            named = claimed_by_key.get((kind, str(op.request.get("user")), op.key))
            if named is not None and named != int(answered["id"]):
                case.say(
                    f"key {op.key} answered {kind} {answered['id']} but its record names"
                    f" {kind} {named}"
                )
    for (kind, key), ids in answers.items():
        if len(ids) > 1:
            case.say(f"key {key} had {len(ids)} effects: {kind}s {sorted(ids)}")


def _suspects(case: Case, kind: str, row: dict[str, Any]) -> str:
    """The keys whose request could have made an unnamed row: same user, same body."""
    keys = set()
    for op in case.ops("book" if kind == "booking" else "pay"):
        asked = op.request.get("body") or {}
        if str(op.request.get("user")) != str(row["user_id"]) or op.key is None:
            continue
        if kind == "payment":
            match = asked.get("booking") == row["booking_id"]
        elif row["event_id"] is not None:
            match = asked.get("event") == row["event_id"]
        else:
            match = asked.get("resource") == row["resource_id"] and same_time(
                asked.get("start_time"), row["start_time"]
            )
        if match:
            keys.add(op.key)
    return f" (keys asking for it: {', '.join(sorted(keys))})" if keys else ""
