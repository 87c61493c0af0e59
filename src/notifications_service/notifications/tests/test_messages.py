from __future__ import annotations

import uuid

import pytest

from notifications_service.inbox.consumer import handle_envelope
from notifications_service.inbox.registry import consumer_specs
from notifications_service.notifications.models import EmailDelivery, Notification
from notifications_service.testing import envelope
from servicekit.messages import decode_envelope as parse_envelope
from servicekit.messages.examples import example_data

pytestmark = pytest.mark.django_db


def _spec():
    return next(spec for spec in consumer_specs() if spec.name == "notifications")


def _deliver(document: dict) -> bool:
    import json

    return handle_envelope(_spec(), parse_envelope(json.dumps(document).encode()))


def booking(user_id: str, **extra: object) -> dict:
    data = {
        "booking_id": 7,
        "user_id": user_id,
        "organizer_id": str(uuid.uuid4()),
        "kind": "tickets",
        "event_id": 3,
        "event_name": "Jazz night",
        "resource_id": None,
        "resource_name": None,
        "tickets_booked": 2,
        "start_time": None,
        "end_time": None,
        "status": "confirmed",
        "expires_at": None,
        "amount": "40.00",
        "currency": "EUR",
        "reason": "",
    }
    data.update(extra)
    return data


@pytest.mark.parametrize(
    ("message_type", "title"),
    [
        ("booking.confirmed", "Booking confirmed: Jazz night"),
        ("booking.canceled", "Booking canceled: Jazz night"),
        ("booking.expired", "Your hold expired: Jazz night"),
        ("payment.succeeded", "Payment received: 40.00 EUR"),
        ("payment.failed", "Payment failed: Jazz night"),
        ("payment.refunded", "Refund issued: 40.00 EUR"),
    ],
)
def test_each_message_makes_one_notification_with_an_email(message_type: str, title: str) -> None:
    user_id = str(uuid.uuid4())
    data = (
        example_data(message_type, user_id=user_id, event_name="Jazz night", amount="40.00")
        if message_type.startswith("payment.")
        else booking(user_id)
    )
    assert _deliver(envelope(message_type, data))
    notification = Notification.objects.get(user_id=user_id)
    assert notification.kind == message_type
    assert notification.title == title
    assert EmailDelivery.objects.filter(notification=notification, status="pending").count() == 1


def test_cancel_reasons_are_worded_for_people() -> None:
    user_id = str(uuid.uuid4())
    _deliver(envelope("booking.canceled", booking(user_id, reason="user")))
    assert "canceled at your request." in Notification.objects.get(user_id=user_id).body


def test_redelivery_changes_nothing() -> None:
    user_id = str(uuid.uuid4())
    document = envelope("booking.confirmed", booking(user_id))
    assert _deliver(document) is True
    assert _deliver(document) is False
    assert Notification.objects.filter(user_id=user_id).count() == 1
    assert EmailDelivery.objects.filter(notification__user_id=user_id).count() == 1


def test_welcome_notification_is_addressed_from_the_message() -> None:
    user_id = str(uuid.uuid4())
    _deliver(
        envelope(
            "user.registered",
            {"user_id": user_id, "name": "Ada", "email": "ada@example.com", "role": "customer"},
        )
    )
    notification = Notification.objects.get(user_id=user_id)
    assert "Ada" in notification.body
    assert notification.email_delivery.to_email == "ada@example.com"


def test_event_cancellation_tells_every_ticket_holder_once() -> None:
    holders = [str(uuid.uuid4()) for _ in range(3)]
    event = {
        "event_id": 3,
        "organizer_id": str(uuid.uuid4()),
        "name": "Jazz night",
        "date": "2030-01-01",
        "time": "20:00:00",
        "location": "Hall",
        "total_tickets": 10,
        "available_tickets": 10,
        "price_per_ticket": "20.00",
        "currency": "EUR",
        "status": "canceled",
        "affected_user_ids": [*holders, holders[0]],
    }
    _deliver(envelope("event.canceled", event))
    for holder in holders:
        _deliver(envelope("booking.canceled", booking(holder, reason="event_canceled")))
    for holder in holders:
        notifications = Notification.objects.filter(user_id=holder)
        assert [n.kind for n in notifications] == ["event.canceled"]
        assert "affected_user_ids" not in notifications[0].data


def test_uninteresting_messages_are_recorded_but_make_nothing() -> None:
    document = envelope("booking.created", booking(str(uuid.uuid4())))
    assert _deliver(document) is True
    assert not Notification.objects.exists()


def test_a_handler_error_rolls_back_the_claim(monkeypatch: pytest.MonkeyPatch) -> None:
    from notifications_service.notifications import messages

    def broken(**fields: object) -> None:
        raise KeyError("user_id")

    monkeypatch.setattr(messages, "notification_create", broken)
    document = envelope("booking.confirmed", booking(str(uuid.uuid4())))
    with pytest.raises(KeyError):
        _deliver(document)
    monkeypatch.undo()
    fixed = envelope(
        "booking.confirmed", booking(str(uuid.uuid4())), message_id=uuid.UUID(document["id"])
    )
    assert _deliver(fixed) is True
