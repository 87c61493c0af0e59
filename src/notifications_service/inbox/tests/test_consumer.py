"""The consumer against the real NATS server: ack after commit, duplicates, dead letters."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from notifications_service.contacts.models import Contact
from notifications_service.inbox.consumer import ConsumerOptions, ConsumerSpec, ConsumerWorker
from notifications_service.inbox.models import DeadLetter, ProcessedMessage
from notifications_service.inbox.registry import consumer_specs
from notifications_service.notifications.models import Notification
from notifications_service.testing import envelope, publish
from servicekit.bus import SyncBus
from servicekit.messages import BookingConfirmed
from servicekit.messages import IncomingEnvelope as Envelope
from servicekit.messages.examples import example_data
from servicekit.testing import wait_until

pytestmark = pytest.mark.django_db

FAST = ConsumerOptions(batch=20, fetch_timeout=0.3, ack_wait=2, max_deliver=3, retry_initial=0.05)


def _spec(name: str) -> ConsumerSpec:
    return next(spec for spec in consumer_specs() if spec.name == name)


def _drain(worker: ConsumerWorker, *, rounds: int = 20) -> None:
    for _ in range(rounds):
        worker.run_once()


def _confirmed(user_id: str, booking_id: int = 1) -> dict[str, Any]:
    return envelope(
        "booking.confirmed",
        example_data(
            "booking.confirmed",
            booking_id=booking_id,
            user_id=user_id,
            event_name="Gig",
            tickets_booked=1,
        ),
    )


def test_messages_become_notifications_and_contacts(bus: SyncBus) -> None:
    user_id = str(uuid.uuid4())
    publish(
        bus,
        envelope(
            "user.registered",
            example_data("user.registered", user_id=user_id, email="ada@example.com"),
        ),
    )
    publish(bus, _confirmed(user_id))
    contacts = ConsumerWorker(bus, _spec("contacts"), FAST)
    notifications = ConsumerWorker(bus, _spec("notifications"), FAST)
    contacts.run_once()
    notifications.run_once()
    assert Contact.objects.get(user_id=user_id).email == "ada@example.com"
    assert sorted(Notification.objects.filter(user_id=user_id).values_list("kind", flat=True)) == [
        "booking.confirmed",
        "user.registered",
    ]
    info = notifications.subscription().info()
    assert info.num_ack_pending == 0
    assert info.num_pending == 0


def test_the_same_message_published_twice_makes_one_notification(bus: SyncBus) -> None:
    user_id = str(uuid.uuid4())
    document = _confirmed(user_id)
    publish(bus, document)
    # A second copy that got past the broker's de-duplication (another message id).
    publish(bus, document, msg_id=str(uuid.uuid4()))
    worker = ConsumerWorker(bus, _spec("notifications"), FAST)
    worker.run_once()
    assert worker.handled == 1
    assert worker.duplicates == 1
    assert Notification.objects.filter(user_id=user_id).count() == 1


def test_a_user_update_never_goes_back_in_time(bus: SyncBus) -> None:
    user_id = str(uuid.uuid4())
    newer = envelope(
        "user.updated",
        example_data("user.updated", user_id=user_id, name="New", email="new@example.com"),
    )
    older = envelope(
        "user.updated",
        example_data("user.updated", user_id=user_id, name="Old", email="old@example.com"),
    )
    older["occurred_at"] = "2000-01-01T00:00:00+00:00"
    publish(bus, newer)
    publish(bus, older)
    ConsumerWorker(bus, _spec("contacts"), FAST).run_once()
    assert Contact.objects.get(user_id=user_id).email == "new@example.com"


def test_not_an_envelope_is_dead_lettered_at_once(bus: SyncBus) -> None:
    bus.publish(message_type="booking.confirmed", payload=b"{not json", msg_id="garbage-1")
    worker = ConsumerWorker(bus, _spec("notifications"), FAST)
    worker.run_once()
    letter = DeadLetter.objects.get()
    assert letter.consumer == "notifications"
    assert letter.payload == "{not json"
    assert "not JSON" in letter.error
    assert worker.subscription().fetch(1, 0.5) == []


@pytest.mark.parametrize("version", ["x", None, [1]])
def test_an_envelope_with_a_bad_version_is_dead_lettered(bus: SyncBus, version: Any) -> None:
    document = {**_confirmed(str(uuid.uuid4())), "version": version}
    bus.publish(
        message_type="booking.confirmed", payload=json.dumps(document).encode(), msg_id="bad-v"
    )
    worker = ConsumerWorker(bus, _spec("notifications"), FAST)
    worker.run_once()
    assert "invalid envelope" in DeadLetter.objects.get().error
    assert worker.subscription().fetch(1, 0.5) == []


def test_a_failing_handler_is_retried_then_dead_lettered_with_its_error(bus: SyncBus) -> None:
    calls: list[str] = []

    def explode(incoming: Envelope) -> None:
        calls.append(incoming.type)
        raise RuntimeError("template exploded")

    spec = ConsumerSpec(name="explosive", durable="tests-explosive", types=(">",), handler=explode)
    good = _confirmed(str(uuid.uuid4()))
    publish(bus, good)
    worker = ConsumerWorker(bus, spec, FAST)
    assert wait_until(lambda: bool(worker.run_once() or True) and worker.dead_lettered == 1, 10)
    assert calls == ["booking.confirmed"] * FAST.max_deliver
    letter = DeadLetter.objects.get(consumer="explosive")
    assert letter.message_id == good["id"]
    assert letter.deliveries == FAST.max_deliver
    assert "template exploded" in letter.error
    assert json.loads(letter.payload)["id"] == good["id"]
    # Nothing of the failed attempts stayed behind.
    assert not ProcessedMessage.objects.filter(consumer="explosive").exists()
    # The message is finished: not redelivered.
    assert worker.subscription().fetch(1, 0.5) == []


def test_a_message_its_handler_cannot_read_fails_alone_while_the_next_is_handled(
    bus: SyncBus,
) -> None:
    handled: list[uuid.UUID] = []

    def handle(incoming: Envelope) -> None:
        if isinstance(incoming.data, BookingConfirmed) and incoming.data.booking_id == 1:
            raise KeyError("tickets_booked")
        handled.append(incoming.id)

    spec = ConsumerSpec(name="picky", durable="tests-picky", types=(">",), handler=handle)
    bad = _confirmed(str(uuid.uuid4()), booking_id=1)
    good = _confirmed(str(uuid.uuid4()), booking_id=2)
    publish(bus, bad)
    publish(bus, good)
    worker = ConsumerWorker(bus, spec, FAST)
    worker.run_once()
    # The next message did not wait for the bad one, which is to be tried again.
    assert handled == [uuid.UUID(good["id"])]
    assert not DeadLetter.objects.exists()
    assert list(
        ProcessedMessage.objects.filter(consumer="picky").values_list("message_id", flat=True)
    ) == [uuid.UUID(good["id"])]
    assert wait_until(lambda: bool(worker.run_once() or True) and worker.dead_lettered == 1, 10)
    letter = DeadLetter.objects.get(consumer="picky")
    assert letter.message_id == bad["id"]
    assert letter.deliveries == FAST.max_deliver
    assert "KeyError: 'tickets_booked'" in letter.error
    assert handled == [uuid.UUID(good["id"])]
    assert worker.handled == 1


def test_a_message_with_a_nul_byte_is_dead_lettered_and_the_next_is_handled(
    bus: SyncBus,
) -> None:
    user_id = str(uuid.uuid4())
    bus.publish(message_type="booking.confirmed", payload=b"\x00not json", msg_id="nul-1")
    publish(bus, _confirmed(user_id))
    worker = ConsumerWorker(bus, _spec("notifications"), FAST)
    worker.run_once()
    assert Notification.objects.filter(user_id=user_id).count() == 1
    letter = DeadLetter.objects.get()
    assert letter.payload == "\\x00not json"  # PostgreSQL text holds no NUL
    assert "not JSON" in letter.error
    assert worker.subscription().fetch(1, 0.5) == []


def test_data_that_does_not_match_its_model_is_dead_lettered_at_once(bus: SyncBus) -> None:
    user_id = str(uuid.uuid4())
    wrong = envelope("booking.confirmed", example_data("booking.confirmed", booking_id="one"))
    missing = envelope("booking.confirmed", {"booking_id": 1, "user_id": user_id})
    publish(bus, wrong)
    publish(bus, missing)
    publish(bus, _confirmed(user_id))
    worker = ConsumerWorker(bus, _spec("notifications"), FAST)
    worker.run_once()
    letters = {letter.message_id: letter for letter in DeadLetter.objects.all()}
    assert set(letters) == {wrong["id"], missing["id"]}
    assert all(letter.deliveries == 1 for letter in letters.values())
    assert all(letter.message_type == "booking.confirmed" for letter in letters.values())
    assert "does not match its model" in letters[wrong["id"]].error
    assert "booking_id" in letters[wrong["id"]].error
    assert "organizer_id" in letters[missing["id"]].error
    assert Notification.objects.filter(user_id=user_id).count() == 1
    assert worker.subscription().fetch(1, 0.5) == []


def test_a_field_no_model_declares_is_ignored(bus: SyncBus) -> None:
    """A newer producer may send a field before this consumer knows it."""
    user_id = str(uuid.uuid4())
    document = _confirmed(user_id)
    document["data"]["seat_map"] = {"row": "F", "seats": [11, 12]}
    document["gateway"] = "eu-1"
    publish(bus, document)
    worker = ConsumerWorker(bus, _spec("notifications"), FAST)
    worker.run_once()
    assert not DeadLetter.objects.exists()
    notification = Notification.objects.get(user_id=user_id)
    assert "seat_map" not in notification.data


def test_a_type_no_model_declares_is_passed_over(bus: SyncBus) -> None:
    """`booking.>` also brings types added after this consumer was built: not poison."""
    publish(bus, envelope("booking.rebooked", {"anything": [1, 2]}))
    worker = ConsumerWorker(bus, _spec("notifications"), FAST)
    worker.run_once()
    assert not DeadLetter.objects.exists()
    assert worker.handled == 1
    assert not Notification.objects.exists()
