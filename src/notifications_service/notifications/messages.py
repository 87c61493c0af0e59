"""Which domain events become notifications, and what they say.

One notification per user and event. `booking.canceled` with reason `event_canceled` makes
none: the `event.canceled` event already tells every ticket holder, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from notifications_service.inbox.envelope import Envelope
from notifications_service.notifications.services import notification_create

SUBSCRIBED = ("user.registered", "event.canceled", "booking.>", "payment.>")


@dataclass(frozen=True)
class Draft:
    user_id: str
    title: str
    body: str
    email_to: str = ""


def _what(data: dict[str, Any]) -> str:
    return str(data.get("event_name") or data.get("resource_name") or "your booking")


def _booking_details(data: dict[str, Any]) -> str:
    if data.get("kind") == "slot" or (data.get("start_time") and not data.get("event_name")):
        return f"from {data.get('start_time')} to {data.get('end_time')}"
    tickets = data.get("tickets_booked")
    return f"{tickets} ticket{'s' if tickets != 1 else ''}" if tickets else ""


def _money(data: dict[str, Any]) -> str:
    amount, currency = data.get("amount"), data.get("currency")
    return f"{amount} {currency}".strip() if amount is not None else ""


def user_registered(data: dict[str, Any]) -> Iterator[Draft]:
    name = data.get("name") or "there"
    yield Draft(
        user_id=str(data["user_id"]),
        title="Welcome to Turnstile",
        body=f"Hello {name}, your account is ready. Book tickets and time slots any time.",
        email_to=str(data.get("email") or ""),
    )


def booking_confirmed(data: dict[str, Any]) -> Iterator[Draft]:
    details = _booking_details(data)
    yield Draft(
        user_id=str(data["user_id"]),
        title=f"Booking confirmed: {_what(data)}",
        body=(
            f"Your booking #{data.get('booking_id')} for {_what(data)} is confirmed"
            + (f" ({details})" if details else "")
            + "."
        ),
    )


CANCEL_REASONS = {
    "user": "at your request",
    "admin": "by an administrator",
    "expired": "because it was not paid in time",
}


def booking_canceled(data: dict[str, Any]) -> Iterator[Draft]:
    reason = data.get("reason")
    if reason == "event_canceled":
        return
    why = CANCEL_REASONS.get(str(reason), f"({reason})" if reason else "")
    yield Draft(
        user_id=str(data["user_id"]),
        title=f"Booking canceled: {_what(data)}",
        body=(
            f"Your booking #{data.get('booking_id')} for {_what(data)} was canceled"
            + (f" {why}" if why else "")
            + "."
        ),
    )


def booking_expired(data: dict[str, Any]) -> Iterator[Draft]:
    yield Draft(
        user_id=str(data["user_id"]),
        title=f"Your hold expired: {_what(data)}",
        body=(
            f"Booking #{data.get('booking_id')} for {_what(data)} was not paid in time and "
            "its hold was released. You can book again if places are left."
        ),
    )


def payment_succeeded(data: dict[str, Any]) -> Iterator[Draft]:
    yield Draft(
        user_id=str(data["user_id"]),
        title=f"Payment received: {_money(data)}",
        body=f"We received your payment of {_money(data)} for {_what(data)}. Thank you.",
    )


def payment_failed(data: dict[str, Any]) -> Iterator[Draft]:
    reason = data.get("reason")
    yield Draft(
        user_id=str(data["user_id"]),
        title=f"Payment failed: {_what(data)}",
        body=(
            f"Your payment of {_money(data)} for {_what(data)} did not go through"
            + (f" ({reason})" if reason else "")
            + ". Your booking stays on hold until it expires; you can try again."
        ),
    )


def payment_refunded(data: dict[str, Any]) -> Iterator[Draft]:
    yield Draft(
        user_id=str(data["user_id"]),
        title=f"Refund issued: {_money(data)}",
        body=f"{_money(data)} for {_what(data)} is on its way back to you.",
    )


def event_canceled(data: dict[str, Any]) -> Iterator[Draft]:
    name = data.get("name") or "An event"
    when = " ".join(str(part) for part in (data.get("date"), data.get("time")) if part)
    where = data.get("location")
    seen: set[str] = set()
    for user_id in data.get("affected_user_ids") or []:
        if str(user_id) in seen:
            continue
        seen.add(str(user_id))
        yield Draft(
            user_id=str(user_id),
            title=f"Event canceled: {name}",
            body=(
                f"{name}"
                + (f" on {when}" if when else "")
                + (f" at {where}" if where else "")
                + " has been canceled by the organizer. Paid bookings are refunded."
            ),
        )


BUILDERS: dict[str, Callable[[dict[str, Any]], Iterator[Draft]]] = {
    "user.registered": user_registered,
    "booking.confirmed": booking_confirmed,
    "booking.canceled": booking_canceled,
    "booking.expired": booking_expired,
    "payment.succeeded": payment_succeeded,
    "payment.failed": payment_failed,
    "payment.refunded": payment_refunded,
    "event.canceled": event_canceled,
}


def handle_event(envelope: Envelope) -> None:
    builder = BUILDERS.get(envelope.type)
    if builder is None:
        return
    # Other users' ids never go into someone's notification.
    data = {key: value for key, value in envelope.data.items() if key != "affected_user_ids"}
    for draft in builder(envelope.data):
        notification_create(
            user_id=draft.user_id,
            kind=envelope.type,
            title=draft.title[:200],
            body=draft.body,
            data=data,
            source_event_id=envelope.id,
            email_to=draft.email_to,
        )
