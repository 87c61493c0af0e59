from __future__ import annotations

import json
import uuid

import pytest
from django.core.management import CommandError, call_command

from notifications_service.inbox.models import DeadLetter, ProcessedMessage
from notifications_service.inbox.services import dead_letter_record
from notifications_service.notifications.models import Notification
from notifications_service.testing import envelope
from servicekit.messages.examples import example_data

pytestmark = pytest.mark.django_db


def _letter(document: dict, consumer: str = "notifications") -> DeadLetter:
    return dead_letter_record(
        consumer=consumer,
        subject=f"turnstile.{document.get('type')}",
        payload=json.dumps(document).encode(),
        error="Traceback ...\nKeyError: 'user_id'",
        deliveries=5,
        stream_sequence=12,
        message_id=str(document.get("id", "")),
        message_type=str(document.get("type", "")),
    )


def test_list_shows_the_last_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    letter = _letter(envelope("booking.confirmed", {}))
    call_command("dead_letters")
    out = capsys.readouterr().out
    assert str(letter.pk) in out
    assert "KeyError: 'user_id'" in out


def test_retry_after_the_fix_makes_the_notification_once() -> None:
    user_id = str(uuid.uuid4())
    fixed = envelope("booking.confirmed", example_data("booking.confirmed", user_id=user_id))
    letter = _letter(fixed)
    call_command("dead_letters", "--retry", str(letter.pk))
    assert not DeadLetter.objects.exists()
    assert Notification.objects.filter(user_id=user_id).count() == 1
    assert ProcessedMessage.objects.filter(message_id=fixed["id"]).count() == 1
    # A second copy of the same message is skipped, not doubled.
    call_command("dead_letters", "--retry-all")
    _letter(fixed)
    call_command("dead_letters", "--retry-all")
    assert Notification.objects.filter(user_id=user_id).count() == 1


def test_retry_that_still_fails_keeps_the_letter() -> None:
    letter = _letter(envelope("booking.confirmed", {"booking_id": 1}))
    with pytest.raises(CommandError):
        call_command("dead_letters", "--retry-all")
    letter.refresh_from_db()
    assert letter.error.startswith("retry failed: PoisonMessageError")
    assert not Notification.objects.exists()
    with pytest.raises(CommandError, match="no dead letters"):
        call_command("dead_letters", "--retry", "999999")


def test_prune_keeps_recent_processed_ids() -> None:
    from datetime import timedelta

    from django.utils import timezone

    old, recent = uuid.uuid4(), uuid.uuid4()
    for message_id in (old, recent):
        ProcessedMessage.objects.create(consumer="c", message_id=message_id, message_type="t")
    ProcessedMessage.objects.filter(message_id=old).update(
        processed_at=timezone.now() - timedelta(days=40)
    )
    call_command("prune_processed_messages")
    assert list(ProcessedMessage.objects.values_list("message_id", flat=True)) == [recent]
    with pytest.raises(CommandError):
        call_command("prune_processed_messages", "--days", "7")
