"""The `dispatch_deliveries` process itself: bad deliveries are recorded, it keeps sending."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from notifications_service.contacts.services import contact_upsert
from notifications_service.notifications.models import EmailDelivery
from notifications_service.notifications.services import notification_create
from notifications_service.testing import (
    SmtpRecorder,
    process_env,
    start_process,
    stop_process,
    unique_bus_config,
)
from servicekit.testing import current_database_url, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _contact(email: str) -> str:
    user_id = str(uuid.uuid4())
    contact_upsert(
        user_id=user_id, name="Ada", email=email, role="customer", occurred_at=datetime.now(UTC)
    )
    return user_id


def _status(title: str) -> str:
    return EmailDelivery.objects.get(notification__title=title).status


def test_the_dispatcher_keeps_sending_after_deliveries_that_raise(
    settings, smtp: SmtpRecorder, tmp_path: Path
) -> None:
    user_id = _contact("ada@example.com")
    broken_title = "Gig\r\nBcc: victim@example.com"
    notification_create(user_id=user_id, kind="event.canceled", title=broken_title, body="b")
    # An address the mail library refuses: not made safe (it would go elsewhere), given up.
    notification_create(
        user_id=user_id,
        kind="message",
        title="refused",
        body="b",
        email_to="ada@example.com\nBcc: victim@example.com",
    )
    env = process_env(
        unique_bus_config(),
        DATABASE_URL=current_database_url(),
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(settings.EMAIL_PORT),
        EMAIL_MAX_ATTEMPTS="3",
        DELIVERY_RETRY_BASE_SECONDS="0.05",
        DELIVERY_RETRY_MAX_SECONDS="0.2",
    )
    log = tmp_path / "dispatcher.log"
    dispatcher = start_process(
        "notifications_service", ["dispatch_deliveries", "--poll-interval", "0.2"], env, log
    )
    try:
        assert wait_until(lambda: _status(broken_title) == "sent", 30), log.read_text()
        assert wait_until(lambda: _status("refused") == "failed", 30), log.read_text()
        # Still running: a notification made afterwards goes out too.
        notification_create(user_id=user_id, kind="message", title="after", body="b")
        assert wait_until(lambda: _status("after") == "sent", 30), log.read_text()
        assert dispatcher.poll() is None, log.read_text()
    finally:
        stop_process(dispatcher)
    refused = EmailDelivery.objects.get(notification__title="refused")
    assert refused.attempts == 3
    assert refused.last_error.startswith("ValueError: Invalid address")
    assert [str(m["Subject"]) for m in smtp.messages] == [
        "Gig Bcc: victim@example.com",
        "after",
    ]
    assert all(m["Bcc"] is None for m in smtp.messages)
    assert "Traceback" in log.read_text()  # the unexpected error is logged with its traceback
