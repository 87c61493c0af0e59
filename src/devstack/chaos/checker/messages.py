"""Messages: each fact told exactly once (outbox, notification, email), each webhook
delivered, and a dead letter for each injected poison and for nothing else."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

from devstack.chaos.checker.case import Case
from servicekit.messages import ORGANIZER_MESSAGE_TYPES

WEBHOOK_TYPES = frozenset(ORGANIZER_MESSAGE_TYPES)
MESSAGE_ID = re.compile(r"<notification-(\d+)@")

# A fact: (user id, message type, the id it is about: booking, payment or event; or None).
Fact = tuple[str, str, int | None]


def expected_facts(case: Case) -> tuple[dict[Fact, int], dict[Fact, tuple[int, int]]]:
    """Facts that must be told exactly once, and those told at most once (a refunded
    payment's success, counted per booking instead)."""
    exact: dict[Fact, int] = {}
    for user_id in case.run.users:
        exact[(user_id, "user.registered", None)] = 1
    for booking_id, booking in case.run_bookings.items():
        user = str(booking["user_id"])
        if booking["confirmed_at"] is not None:
            exact[(user, "booking.confirmed", booking_id)] = 1
        reason = booking["cancel_reason"]
        if booking["status"] == "canceled" and reason in ("user", "admin"):
            exact[(user, "booking.canceled", booking_id)] = 1
        elif booking["status"] == "canceled" and reason == "expired":
            exact[(user, "booking.expired", booking_id)] = 1
        elif booking["status"] == "canceled" and reason == "event_canceled":
            exact[(user, "event.canceled", int(booking["event_id"]))] = 1
    loose: dict[Fact, tuple[int, int]] = {}
    for payment_id, payment in case.run_payments.items():
        user = str(payment["user_id"])
        status = payment["status"]
        if status == "failed":
            exact[(user, "payment.failed", payment_id)] = 1
        elif status == "success":
            exact[(user, "payment.succeeded", payment_id)] = 1
        elif status == "refunded":
            exact[(user, "payment.refunded", payment_id)] = 1
            loose[(user, "payment.succeeded", payment_id)] = (0, 1)
    return exact, loose


def fact_of(kind: str, data: dict[str, Any], user: str) -> Fact:
    subject = {
        "booking.confirmed": "booking_id",
        "booking.canceled": "booking_id",
        "booking.expired": "booking_id",
        "payment.succeeded": "payment_id",
        "payment.failed": "payment_id",
        "payment.refunded": "payment_id",
        "event.canceled": "event_id",
    }.get(kind)
    value = data.get(subject) if subject else None
    return (user, kind, None if value is None else int(value))


def _compare(case: Case, what: str, counted: Counter[Fact]) -> None:
    exact, loose = expected_facts(case)
    for fact, wanted in exact.items():
        if counted[fact] != wanted:
            case.say(f"{_fact_name(fact)} produced {counted[fact]} {what}, not {wanted}")
    for fact, count in counted.items():
        if fact in exact:
            continue
        low, high = loose.get(fact, (0, 0))
        if not low <= count <= high:
            case.say(f"{_fact_name(fact)} produced {count} {what}, not expected")
    succeeded: Counter[int] = Counter()
    for (_, kind, payment_id), count in counted.items():
        if kind == "payment.succeeded" and payment_id in case.payments:
            succeeded[int(case.payments[payment_id]["booking_id"])] += count
    for booking_id, booking in case.run_bookings.items():
        wanted = 1 if booking["confirmed_at"] is not None else 0
        if succeeded[booking_id] != wanted:
            case.say(
                f"booking {booking_id} ({'once confirmed' if wanted else 'never confirmed'})"
                f" has {succeeded[booking_id]} payment.succeeded {what}"
            )


def _fact_name(fact: Fact) -> str:
    user, kind, subject = fact
    about = f" {subject}" if subject is not None else ""
    noun = kind.split(".")[0]
    return f"{kind} ({noun}{about}, user {user})"


def facts_told_once(case: Case) -> None:
    run_users = set(case.run.users)
    told: Counter[Fact] = Counter()
    for message in case.world.outbox:
        data = message["data"] or {}
        if message["type"] == "event.canceled":
            for user in {str(u) for u in data.get("affected_user_ids") or []}:
                if user in run_users:
                    told[fact_of(message["type"], data, user)] += 1
        elif str(data.get("user_id")) in run_users:
            told[fact_of(message["type"], data, str(data.get("user_id")))] += 1
    interesting = {"user.registered", "event.canceled", "booking.confirmed"}
    interesting |= {"booking.canceled", "booking.expired"}
    interesting |= {"payment.succeeded", "payment.failed", "payment.refunded"}
    outbox_told = Counter({k: v for k, v in told.items() if k[1] in interesting})
    # booking.canceled of a canceled event is told by event.canceled; not a fact itself.
    for fact in [f for f in outbox_told if f[1] == "booking.canceled"]:
        booking = case.bookings.get(int(fact[2] or 0))
        if booking is not None and booking["cancel_reason"] == "event_canceled":
            del outbox_told[fact]
    _compare(case, "outbox messages", outbox_told)

    notified: Counter[Fact] = Counter()
    by_id: dict[int, dict[str, Any]] = {}
    for notification in case.world.notifications:
        by_id[int(notification["id"])] = notification
        fact = fact_of(
            notification["kind"], notification["data"] or {}, str(notification["user_id"])
        )
        notified[fact] += 1
    _compare(case, "notifications", notified)

    message_ids: dict[Fact, set[str]] = defaultdict(set)
    copies = 0
    seen: set[str] = set()
    for mail in case.world.emails:
        match = MESSAGE_ID.search(mail["message_id"])
        mailed = by_id.get(int(match.group(1))) if match else None
        if mailed is None:
            case.say(f"email {mail['message_id']} to {mail['to']} is of no notification")
            continue
        user = str(mailed["user_id"])
        if mail["to"] != case.run.users.get(user, ""):
            case.say(
                f"email {mail['message_id']} went to {mail['to']}, not to user {user}"
                f" ({case.run.users.get(user)})"
            )
        fact = fact_of(mailed["kind"], mailed["data"] or {}, user)
        copies += mail["message_id"] in seen
        seen.add(mail["message_id"])
        message_ids[fact].add(mail["message_id"])
    _compare(case, "emails", Counter({k: len(v) for k, v in message_ids.items()}))
    case.resent_emails = copies


def webhooks(case: Case) -> None:
    endpoints = [e for e in case.world.endpoints if e["is_active"]]
    deliveries = {(str(d["message_id"]), int(d["endpoint_id"])): d for d in case.world.deliveries}
    logged: set[tuple[str, str]] = set()
    for line in case.world.webhook_log:
        headers = line.get("headers") or {}
        logged.add(
            (str(headers.get("turnstile-event-id")), str(headers.get("turnstile-delivery-id")))
        )
    for message in case.world.outbox:
        data = message["data"] or {}
        if message["type"] not in WEBHOOK_TYPES:
            continue
        organizer = str(data.get("organizer_id"))
        for endpoint in endpoints:
            wanted = endpoint["event_types"] or []
            if endpoint["organizer_id"] != organizer or (wanted and message["type"] not in wanted):
                continue
            message_id = str(message["message_id"])
            delivery = deliveries.get((message_id, int(endpoint["id"])))
            what = f"{message['type']} {message_id} for webhook endpoint {endpoint['id']}"
            if delivery is None:
                case.say(f"{what} has no delivery")
            elif delivery["status"] != "succeeded":
                case.say(f"{what}: delivery {delivery['id']} is {delivery['status']}")
            elif (message_id, str(delivery["id"])) not in logged:
                case.say(f"{what}: delivery {delivery['id']} never reached the receiver")


def dead_letters(case: Case) -> None:
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    for poison in case.poison:
        for consumer in poison.get("consumers") or ():
            sure = poison.get("type") == "ok"
            expected[(str(poison["msg_id"]), consumer)] = (1 if sure else 0, 1)
    found: Counter[tuple[str, str]] = Counter()
    for letter in case.world.dead_letters:
        payload = str(letter["payload"])
        match = next((m for (m, c) in expected if m in payload and c == letter["consumer"]), None)
        if match is None:
            error = str(letter["error"]).strip().splitlines()[-1:] or [""]
            case.say(
                f"dead letter {letter['id']} ({letter['consumer']}, {letter['subject']}"
                f" #{letter['stream_sequence']}): {error[0][:200]}"
            )
            continue
        found[(match, str(letter["consumer"]))] += 1
    for (msg_id, consumer), (low, high) in expected.items():
        count = found[(msg_id, consumer)]
        if not low <= count <= high:
            case.say(f"poison {msg_id} has {count} dead letters from consumer {consumer}, not 1")
