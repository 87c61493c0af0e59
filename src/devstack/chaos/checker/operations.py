"""Acknowledged operations against the rows they name: bookings, cancels, changes,
payments, events; and nothing happened that nobody asked for."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from devstack.chaos.checker.case import Case
from devstack.chaos.history import Pair


def _problem(op: Pair) -> str:
    body = op.result.get("body")
    if isinstance(body, dict):
        return str(body.get("code") or body.get("type") or "").rsplit(":", 1)[-1]
    return ""


def answered_payment(op: Pair) -> dict[str, Any] | None:
    body = op.result.get("body")
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("payment"), dict):
        return body["payment"]
    return body if "id" in body and "booking" in body else None


def same_time(a: Any, b: Any) -> bool:
    def parse(value: Any) -> dt.datetime | None:
        if isinstance(value, dt.datetime):
            return value
        try:
            return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None

    return parse(a) == parse(b)


def acknowledged_bookings(case: Case) -> None:
    for op in case.ops("book"):
        body = op.result.get("body")
        if op.type != "ok" or not isinstance(body, dict):
            continue
        booking_id = int(body["id"])
        row = case.bookings.get(booking_id)
        asked = op.request.get("body") or {}
        if row is None:
            case.say(
                f"booking {booking_id}, acknowledged to {op.process} (key {op.key}), is missing"
            )
            continue
        if str(row["user_id"]) != str(op.request.get("user")):
            case.say(f"booking {booking_id} belongs to {row['user_id']}, not its booker")
        if "event" in asked and row["event_id"] != asked["event"]:
            case.say(f"booking {booking_id} is for event {row['event_id']}, not {asked['event']}")
        if "resource" in asked and (
            row["resource_id"] != asked["resource"]
            or not same_time(row["start_time"], asked["start_time"])
            or not same_time(row["end_time"], asked["end_time"])
        ):
            case.say(f"booking {booking_id} is not the slot its booker asked for")
    for op in case.ops("cancel"):
        booking_id = int(op.request["booking"])
        row = case.bookings.get(booking_id)
        if op.type == "ok" and (row is None or row["status"] != "canceled"):
            status = "missing" if row is None else row["status"]
            case.say(f"booking {booking_id} was canceled (acknowledged) but is {status}")
    _changes_hold(case)


def _changes_hold(case: Case) -> None:
    allowed: dict[int, set[int]] = {}
    for op in case.ops("change"):
        booking_id = int(op.request["booking"])
        tickets = int((op.request.get("body") or {})["tickets_booked"])
        if op.type == "ok":
            allowed[booking_id] = {tickets}
        elif op.type == "info" and booking_id in allowed:
            allowed[booking_id].add(tickets)
    for booking_id, values in allowed.items():
        row = case.bookings.get(booking_id)
        if row is not None and int(row["tickets_booked"]) not in values:
            case.say(
                f"booking {booking_id} has {row['tickets_booked']} tickets; the last"
                f" acknowledged change set {sorted(values)}"
            )


def acknowledged_payments(case: Case) -> None:
    for op in case.ops("pay"):
        answered = answered_payment(op)
        if op.type != "ok" or answered is None:
            continue
        payment_id = int(answered["id"])
        row = case.payments.get(payment_id)
        if row is None:
            case.say(
                f"payment {payment_id}, acknowledged to {op.process} (key {op.key}), is missing"
            )
            continue
        booking_id = int(op.request["booking"])
        if int(row["booking_id"]) != booking_id:
            case.say(f"payment {payment_id} is of booking {row['booking_id']}, not {booking_id}")
        booking = case.bookings.get(int(row["booking_id"]), {})
        status, code = op.result.get("status"), _problem(op)
        if status == 201:
            wanted = {"refunded"} if booking.get("status") == "canceled" else {"success"}
        elif status == 402:
            wanted = {"failed"}
        elif status == 409 and code == "hold-expired":
            wanted = {"refunded"}
        else:  # 202: the outcome was unknown; settled by now, any way
            wanted = {"success", "failed", "refunded"}
        if row["status"] not in wanted:
            case.say(
                f"payment {payment_id} answered {status} is {row['status']},"
                f" not {' or '.join(sorted(wanted))}"
            )


def booking_payment_agreement(case: Case) -> None:
    live: dict[int, list[int]] = defaultdict(list)
    for payment_id, payment in case.payments.items():
        if payment["status"] == "success":
            live[int(payment["booking_id"])].append(payment_id)
    asked_to_pay = {int(op.request["booking"]) for op in case.ops("pay") if op.type != "fail"}
    asked_to_cancel = {int(op.request["booking"]) for op in case.ops("cancel") if op.type != "fail"}
    for booking_id, booking in case.run_bookings.items():
        paid = live.get(booking_id, [])
        if booking["status"] == "confirmed" and len(paid) != 1:
            case.say(f"confirmed booking {booking_id} has {len(paid)} successful payments {paid}")
        if booking["status"] != "confirmed" and paid:
            case.say(f"booking {booking_id} is {booking['status']} but payment {paid} is success")
        if booking["confirmed_at"] is not None and booking_id not in asked_to_pay:
            case.say(f"booking {booking_id} was confirmed though nobody paid for it")
        reason = booking["cancel_reason"]
        if reason == "user" and booking_id not in asked_to_cancel:
            case.say(f"booking {booking_id} was canceled by its user, who never asked")
        event = case.events.get(int(booking["event_id"] or 0))
        if reason == "event_canceled" and (event is None or event["status"] != "canceled"):
            case.say(f"booking {booking_id} was canceled with its event, which is not canceled")


def events_as_acknowledged(case: Case) -> None:
    names: Counter[str] = Counter(str(e["name"]) for e in case.world.events)
    for op in case.ops("create-event"):
        name = str((op.request.get("body") or {}).get("name"))
        if names[name] > 1:
            case.say(f"event creation {name!r} made {names[name]} events")
        if op.type == "ok" and names[name] == 0:
            case.say(f"event {name!r}, acknowledged, is missing")
    totals: dict[int, set[int]] = {}
    for op in case.ops("update-event"):
        event_id, body = int(op.request["event"]), op.request.get("body") or {}
        if "total_tickets" not in body:
            continue
        if op.type == "ok":
            totals[event_id] = {int(body["total_tickets"])}
        elif op.type == "info" and event_id in totals:
            totals[event_id].add(int(body["total_tickets"]))
    for event_id, values in totals.items():
        event = case.events.get(event_id)
        if event is not None and int(event["total_tickets"]) not in values:
            case.say(
                f"event {event_id} has total_tickets {event['total_tickets']}; the last"
                f" acknowledged change set {sorted(values)}"
            )
    for op in case.ops("cancel-event"):
        event = case.events.get(int(op.request["event"]))
        if op.type == "ok" and (event is None or event["status"] != "canceled"):
            case.say(f"event {op.request['event']} was canceled (acknowledged) but is not")


def server_errors_are_retryable(case: Case) -> None:
    """A failure of the server is never a 500: a transient one (the database or the broker
    away, a backend terminated) is a 503 problem with Retry-After, which a client may retry
    (with its Idempotency-Key, safely)."""
    for op in case.run.ops:
        status = op.result.get("status")
        if not isinstance(status, int) or status < 500:
            continue
        where = f"{op.f} by {op.process} at {float(op.invoke['time']):.1f} s"
        if status != 503:
            case.say(f"{where} answered {status}: {str(op.result.get('body'))[:200]}")
        elif op.result.get("content_type") != "application/problem+json" or not op.result.get(
            "retry_after"
        ):
            case.say(
                f"{where} answered 503 without a problem and Retry-After"
                f" ({op.result.get('content_type')}, Retry-After {op.result.get('retry_after')})"
            )
