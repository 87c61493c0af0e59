"""The domain messages on the bus: one frozen model per type, shared by producers and consumers.

A producer builds the model and the outbox stores its encoding; a consumer decodes the
envelope's `data` into the model of the envelope's `type` and reads attributes. The wire
format is the one consumers already had: the same field names, ids as numbers, user ids as
UUID strings, amounts as decimal strings, datetimes as ISO 8601 strings.

Compatibility rules:

- A field a model does not know is ignored when decoding: a newer producer may add fields
  before every consumer knows them. A field added later must have a default, so that the
  messages already in the stream still decode.
- A declared field that is missing or of the wrong type makes the message poison: it cannot
  be handled, ever, and goes to the dead letters.
- Statuses, kinds, reasons and roles are open strings, not enumerations: a value a newer
  producer adds is data, not a schema violation.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, ClassVar

import msgspec

AwareDatetime = Annotated[dt.datetime, msgspec.Meta(tz=True)]


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """A domain message: the `data` of an envelope whose `type` is `TYPE`."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    # Who publishes it, for the AsyncAPI document.
    PRODUCER: ClassVar[str]


# Users ---------------------------------------------------------------------------------------


class UserMessage(Message, frozen=True, kw_only=True):
    PRODUCER: ClassVar[str] = "users"

    user_id: uuid.UUID
    name: str
    email: str
    role: str  # customer, organizer, admin


class UserRegistered(UserMessage, frozen=True, kw_only=True):
    """An account was created (self-registration or an admin created by command)."""

    TYPE: ClassVar[str] = "user.registered"


class UserUpdated(UserMessage, frozen=True, kw_only=True):
    """An account's name, email or role changed."""

    TYPE: ClassVar[str] = "user.updated"


# Events (concerts and other ticketed events) ---------------------------------------------------


class EventMessage(Message, frozen=True, kw_only=True):
    PRODUCER: ClassVar[str] = "booking"

    event_id: int
    organizer_id: uuid.UUID
    name: str
    date: dt.date
    time: dt.time
    location: str
    total_tickets: int
    available_tickets: int
    price_per_ticket: Decimal
    currency: str
    status: str  # active, canceled


class EventCreated(EventMessage, frozen=True, kw_only=True):
    """An organizer put an event on sale."""

    TYPE: ClassVar[str] = "event.created"


class EventUpdated(EventMessage, frozen=True, kw_only=True):
    """An event's details or ticket count changed."""

    TYPE: ClassVar[str] = "event.updated"


class EventCanceled(EventMessage, frozen=True, kw_only=True):
    """An event was canceled; its active bookings were canceled with it (each with its own
    `booking.canceled`, reason `event_canceled`) and paid ones are refunded."""

    TYPE: ClassVar[str] = "event.canceled"

    # Everyone who held an active booking, told once by this message.
    affected_user_ids: list[uuid.UUID]


# Bookings --------------------------------------------------------------------------------------


class BookingMessage(Message, frozen=True, kw_only=True):
    """A booking as it stands after the change: tickets of an event, or a slot of a resource.
    It carries everything a notification needs, so consumers never call back."""

    PRODUCER: ClassVar[str] = "booking"

    booking_id: int
    user_id: uuid.UUID
    organizer_id: uuid.UUID
    kind: str  # tickets, slot
    event_id: int | None
    event_name: str | None
    resource_id: int | None
    resource_name: str | None
    tickets_booked: int | None
    start_time: AwareDatetime | None
    end_time: AwareDatetime | None
    status: str  # pending, confirmed, canceled
    expires_at: AwareDatetime | None
    amount: Decimal
    currency: str
    reason: str | None  # why it was canceled: user, admin, expired, event_canceled


class BookingCreated(BookingMessage, frozen=True, kw_only=True):
    """A hold was taken; it expires at `expires_at` unless paid."""

    TYPE: ClassVar[str] = "booking.created"


class BookingConfirmed(BookingMessage, frozen=True, kw_only=True):
    """The booking was paid."""

    TYPE: ClassVar[str] = "booking.confirmed"


class BookingCanceled(BookingMessage, frozen=True, kw_only=True):
    """The booking was canceled (`reason` says by whom or why)."""

    TYPE: ClassVar[str] = "booking.canceled"


class BookingExpired(BookingMessage, frozen=True, kw_only=True):
    """The hold ended unpaid and its inventory went back on sale."""

    TYPE: ClassVar[str] = "booking.expired"


# Payments --------------------------------------------------------------------------------------


class PaymentMessage(Message, frozen=True, kw_only=True):
    PRODUCER: ClassVar[str] = "booking"

    payment_id: int
    booking_id: int
    user_id: uuid.UUID
    organizer_id: uuid.UUID
    amount: Decimal
    currency: str
    status: str  # pending, success, failed, refunded
    reason: str | None  # a failure or refund reason
    event_name: str | None
    resource_name: str | None


class PaymentSucceeded(PaymentMessage, frozen=True, kw_only=True):
    """The provider took the money; the booking is confirmed by the same transaction."""

    TYPE: ClassVar[str] = "payment.succeeded"


class PaymentFailed(PaymentMessage, frozen=True, kw_only=True):
    """The provider refused the charge; the booking stays on hold until it expires."""

    TYPE: ClassVar[str] = "payment.failed"


class PaymentRefunded(PaymentMessage, frozen=True, kw_only=True):
    """The money went back (the booking or its event was canceled, or the hold had ended)."""

    TYPE: ClassVar[str] = "payment.refunded"


MESSAGE_MODELS: tuple[type[Message], ...] = (
    UserRegistered,
    UserUpdated,
    EventCreated,
    EventUpdated,
    EventCanceled,
    BookingCreated,
    BookingConfirmed,
    BookingCanceled,
    BookingExpired,
    PaymentSucceeded,
    PaymentFailed,
    PaymentRefunded,
)

MESSAGE_TYPES: dict[str, type[Message]] = {model.TYPE: model for model in MESSAGE_MODELS}
# The types about an organizer's events, bookings and payments (they carry `organizer_id`):
# what an organizer's webhook endpoint may subscribe to.
ORGANIZER_MESSAGE_TYPES: tuple[str, ...] = tuple(
    type_ for type_, model in MESSAGE_TYPES.items() if "organizer_id" in model.__struct_fields__
)
