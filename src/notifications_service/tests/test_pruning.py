"""Bounded growth of the notifications service on real PostgreSQL (and NATS for the
consumer): processed-message ids pruned by their consumer, sent emails and delivered
webhooks by the dispatcher; what is younger than its retention, still to do or failed
stays; a pruning that fails (a real database error, from a trigger) never stops the work."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from notifications_service.inbox.consumer import ConsumerOptions, ConsumerSpec, ConsumerWorker
from notifications_service.inbox.models import ProcessedMessage
from notifications_service.inbox.registry import consumer_specs
from notifications_service.inbox.services import processed_messages_prune
from notifications_service.notifications.management.commands.dispatch_deliveries import (
    DeliveryDispatcher,
)
from notifications_service.notifications.models import EmailDelivery, Notification
from notifications_service.notifications.services import email_deliveries_prune
from notifications_service.testing import SmtpRecorder, envelope, publish
from notifications_service.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifications_service.webhooks.services import webhook_deliveries_prune
from servicekit.bus import SyncBus
from servicekit.messages.examples import example_data

DAY = 24 * 3600
FAST = ConsumerOptions(batch=20, fetch_timeout=0.2, ack_wait=2, max_deliver=3, retry_initial=0.05)


@pytest.fixture(autouse=True)
def _retention(settings: Any) -> None:
    settings.PROCESSED_MESSAGE_RETENTION_SECONDS = 35 * DAY
    settings.DELIVERY_RETENTION_SECONDS = 7 * DAY


def ago(seconds: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=seconds)


def processed(consumer: str, *, seconds_ago: float) -> uuid.UUID:
    message_id = uuid.uuid4()
    row = ProcessedMessage.objects.create(
        consumer=consumer, message_id=message_id, message_type="t"
    )
    ProcessedMessage.objects.filter(pk=row.pk).update(processed_at=ago(seconds_ago))
    return message_id


def processed_ids() -> set[uuid.UUID]:
    return set(ProcessedMessage.objects.values_list("message_id", flat=True))


def email(status: str, *, seconds_ago: float) -> EmailDelivery:
    notification = Notification.objects.create(user_id="u1", kind="k", title="t", body="b")
    return EmailDelivery.objects.create(
        notification=notification,
        status=status,
        next_attempt_at=timezone.now(),
        sent_at=ago(seconds_ago) if status == EmailDelivery.Status.SENT else None,
    )


def webhook(endpoint: WebhookEndpoint, status: str, *, seconds_ago: float) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        message_id=uuid.uuid4(),
        message_type="booking.confirmed",
        payload={},
        status=status,
        next_attempt_at=timezone.now(),
        delivered_at=ago(seconds_ago) if status == WebhookDelivery.Status.SUCCEEDED else None,
    )
    WebhookAttempt.objects.create(delivery=delivery, status_code=200)
    return delivery


@pytest.fixture
def endpoint() -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        organizer_id="o1", url="https://hooks.example.com/x", secret="whsec_x"
    )


@contextmanager
def refuse_deletes(table: str) -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'deletes refused for this test'; END $$;
            CREATE TRIGGER refuse_delete BEFORE DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION refuse_delete();
            """
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DROP TRIGGER IF EXISTS refuse_delete ON {table}; "
                "DROP FUNCTION IF EXISTS refuse_delete();"
            )


# Processed-message ids -------------------------------------------------------------------


@pytest.mark.django_db
def test_processed_ids_past_the_retention_go_younger_ones_stay() -> None:
    old = processed("notifications", seconds_ago=35 * DAY + 60)
    young = processed("notifications", seconds_ago=35 * DAY - 60)
    assert processed_messages_prune() == 1
    assert processed_ids() == {young}
    assert old not in processed_ids()


@pytest.mark.django_db
def test_a_consumer_prunes_its_own_ids_at_most_its_limit_at_once() -> None:
    mine = [processed("notifications", seconds_ago=40 * DAY + n) for n in range(5)]
    theirs = processed("webhooks", seconds_ago=40 * DAY)
    assert processed_messages_prune(consumer="notifications", limit=3) == 3
    assert processed_ids() == {*mine[:2], theirs}  # the oldest three went
    assert processed_messages_prune(consumer="notifications") == 2
    assert processed_ids() == {theirs}


def _spec(name: str) -> ConsumerSpec:
    return next(spec for spec in consumer_specs() if spec.name == name)


@pytest.mark.django_db(transaction=True)
def test_the_consumer_prunes_in_its_rounds_and_a_failing_pruning_never_stops_it(
    bus: SyncBus, caplog: pytest.LogCaptureFixture
) -> None:
    old = processed("notifications", seconds_ago=40 * DAY)
    worker = ConsumerWorker(bus, _spec("notifications"), FAST)
    user_id = str(uuid.uuid4())
    publish(
        bus,
        envelope(
            "user.registered",
            example_data("user.registered", user_id=user_id, email="ada@example.com"),
        ),
    )
    with caplog.at_level(logging.INFO), refuse_deletes("inbox_processedmessage"):
        worker.round()
    assert "consumer notifications: pruning processed message ids failed" in caplog.text
    assert Notification.objects.filter(user_id=user_id).exists()  # the message was handled
    assert old in processed_ids()

    worker.pruner.clock = lambda: float("inf")  # an interval later
    with caplog.at_level(logging.INFO):
        worker.round()
    assert old not in processed_ids()
    assert "consumer notifications: 1 processed message ids pruned" in caplog.text


# Deliveries ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sent_emails_past_the_retention_go_their_notifications_stay() -> None:
    old = email(EmailDelivery.Status.SENT, seconds_ago=7 * DAY + 60)
    young = email(EmailDelivery.Status.SENT, seconds_ago=7 * DAY - 60)
    pending = email(EmailDelivery.Status.PENDING, seconds_ago=0)
    failed = email(EmailDelivery.Status.FAILED, seconds_ago=0)
    EmailDelivery.objects.filter(pk__in=[pending.pk, failed.pk]).update(created_at=ago(30 * DAY))
    assert email_deliveries_prune() == 1
    assert set(EmailDelivery.objects.values_list("pk", flat=True)) == {
        young.pk,
        pending.pk,
        failed.pk,
    }
    assert Notification.objects.filter(pk=old.notification_id).exists()


@pytest.mark.django_db
def test_delivered_webhooks_past_the_retention_go_with_their_attempts(
    endpoint: WebhookEndpoint,
) -> None:
    old = [webhook(endpoint, "succeeded", seconds_ago=7 * DAY + 60 + n) for n in range(3)]
    young = webhook(endpoint, "succeeded", seconds_ago=7 * DAY - 60)
    failed = webhook(endpoint, "failed", seconds_ago=0)
    assert webhook_deliveries_prune(limit=2) == 2
    assert webhook_deliveries_prune() == 1
    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {young.pk, failed.pk}
    assert not WebhookAttempt.objects.filter(delivery_id__in=[d.pk for d in old]).exists()
    assert WebhookAttempt.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_dispatcher_prunes_each_kind_on_its_own_and_keeps_sending(
    smtp: SmtpRecorder, endpoint: WebhookEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    old_email = email(EmailDelivery.Status.SENT, seconds_ago=8 * DAY)
    old_webhook = webhook(endpoint, "succeeded", seconds_ago=8 * DAY)
    due = email(EmailDelivery.Status.PENDING, seconds_ago=0)
    EmailDelivery.objects.filter(pk=due.pk).update(to_email="ada@example.com")
    dispatcher = DeliveryDispatcher(batch_size=50, poll_interval=0.1)
    with caplog.at_level(logging.INFO), refuse_deletes("notifications_emaildelivery"):
        dispatcher.round()
    assert "delivery dispatcher: pruning sent emails failed" in caplog.text
    assert "delivery dispatcher: 1 delivered webhooks pruned" in caplog.text
    assert not WebhookDelivery.objects.filter(pk=old_webhook.pk).exists()
    assert EmailDelivery.objects.get(pk=due.pk).status == EmailDelivery.Status.SENT
    assert len(smtp.messages) == 1
    assert EmailDelivery.objects.filter(pk=old_email.pk).exists()

    for pruner in dispatcher.pruners:
        pruner.clock = lambda: float("inf")  # an interval later
    dispatcher.round()
    assert not EmailDelivery.objects.filter(pk=old_email.pk).exists()
