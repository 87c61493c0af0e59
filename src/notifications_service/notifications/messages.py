"""Which domain messages become notifications, and what they say.

One notification per user and message. `booking.canceled` with reason `event_canceled` makes
none: the `event.canceled` message already tells every ticket holder, once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from notifications_service.notifications.services import notification_create
from servicekit.messages import (
    BookingCanceled,
    BookingConfirmed,
    BookingExpired,
    BookingMessage,
    EventCanceled,
    IncomingEnvelope,
    Message,
    PaymentFailed,
    PaymentMessage,
    PaymentRefunded,
    PaymentSucceeded,
    UserRegistered,
    message_to_builtins,
)

SUBSCRIBED = ("user.registered", "event.canceled", "booking.>", "payment.>")


@dataclass(frozen=True)
class Draft:
    user_id: str
    title: str
    body: str
    email_to: str = ""


def _what(message: BookingMessage | PaymentMessage) -> str:
    return message.event_name or message.resource_name or "your booking"


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat() if value is not None else "None"


def _booking_details(message: BookingMessage) -> str:
    if message.kind == "slot" or (message.start_time and not message.event_name):
        return f"from {_iso(message.start_time)} to {_iso(message.end_time)}"
    tickets = message.tickets_booked
    return f"{tickets} ticket{'s' if tickets != 1 else ''}" if tickets else ""


def _money(message: PaymentMessage) -> str:
    return f"{message.amount} {message.currency}".strip()


def user_registered(message: UserRegistered) -> Iterator[Draft]:
    yield Draft(
        user_id=str(message.user_id),
        title="Welcome to Turnstile",
        body=(
            f"Hello {message.name or 'there'}, your account is ready. "
            "Book tickets and time slots any time."
        ),
        email_to=message.email,
    )


def booking_confirmed(message: BookingConfirmed) -> Iterator[Draft]:
    details = _booking_details(message)
    yield Draft(
        user_id=str(message.user_id),
        title=f"Booking confirmed: {_what(message)}",
        body=(
            f"Your booking #{message.booking_id} for {_what(message)} is confirmed"
            + (f" ({details})" if details else "")
            + "."
        ),
    )


CANCEL_REASONS = {
    "user": "at your request",
    "admin": "by an administrator",
    "expired": "because it was not paid in time",
}


def booking_canceled(message: BookingCanceled) -> Iterator[Draft]:
    reason = message.reason
    if reason == "event_canceled":
        return
    why = CANCEL_REASONS.get(str(reason), f"({reason})" if reason else "")
    yield Draft(
        user_id=str(message.user_id),
        title=f"Booking canceled: {_what(message)}",
        body=(
            f"Your booking #{message.booking_id} for {_what(message)} was canceled"
            + (f" {why}" if why else "")
            + "."
        ),
    )


def booking_expired(message: BookingExpired) -> Iterator[Draft]:
    yield Draft(
        user_id=str(message.user_id),
        title=f"Your hold expired: {_what(message)}",
        body=(
            f"Booking #{message.booking_id} for {_what(message)} was not paid in time and "
            "its hold was released. You can book again if places are left."
        ),
    )


def payment_succeeded(message: PaymentSucceeded) -> Iterator[Draft]:
    yield Draft(
        user_id=str(message.user_id),
        title=f"Payment received: {_money(message)}",
        body=f"We received your payment of {_money(message)} for {_what(message)}. Thank you.",
    )


def payment_failed(message: PaymentFailed) -> Iterator[Draft]:
    reason = message.reason
    yield Draft(
        user_id=str(message.user_id),
        title=f"Payment failed: {_what(message)}",
        body=(
            f"Your payment of {_money(message)} for {_what(message)} did not go through"
            + (f" ({reason})" if reason else "")
            + ". Your booking stays on hold until it expires; you can try again."
        ),
    )


def payment_refunded(message: PaymentRefunded) -> Iterator[Draft]:
    yield Draft(
        user_id=str(message.user_id),
        title=f"Refund issued: {_money(message)}",
        body=f"{_money(message)} for {_what(message)} is on its way back to you.",
    )


def event_canceled(message: EventCanceled) -> Iterator[Draft]:
    name = message.name or "An event"
    when = f"{message.date.isoformat()} {message.time.isoformat()}"
    where = message.location
    for user_id in dict.fromkeys(message.affected_user_ids):
        yield Draft(
            user_id=str(user_id),
            title=f"Event canceled: {name}",
            body=(
                f"{name} on {when}"
                + (f" at {where}" if where else "")
                + " has been canceled by the organizer. Paid bookings are refunded."
            ),
        )


# Each builder takes the model of its type (the registry pairs them; `Any` spares a cast).
BUILDERS: dict[type[Message], Callable[[Any], Iterator[Draft]]] = {
    UserRegistered: user_registered,
    BookingConfirmed: booking_confirmed,
    BookingCanceled: booking_canceled,
    BookingExpired: booking_expired,
    PaymentSucceeded: payment_succeeded,
    PaymentFailed: payment_failed,
    PaymentRefunded: payment_refunded,
    EventCanceled: event_canceled,
}


def handle_message(envelope: IncomingEnvelope) -> None:
    message = envelope.data
    builder = BUILDERS.get(type(message)) if isinstance(message, Message) else None
    if builder is None or not isinstance(message, Message):
        return
    # Other users' ids never go into someone's notification.
    data = {
        key: value
        for key, value in message_to_builtins(message).items()
        if key != "affected_user_ids"
    }
    for draft in builder(message):
        notification_create(
            user_id=draft.user_id,
            kind=envelope.type,
            title=draft.title[:200],
            body=draft.body,
            data=data,
            source_message_id=envelope.id,
            email_to=draft.email_to,
        )
