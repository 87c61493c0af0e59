"""Email over real SMTP (aiosmtpd on a free port): plain and HTML, retries, exactly once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from notifications_service.contacts.services import contact_upsert
from notifications_service.notifications.models import EmailDelivery
from notifications_service.notifications.services import (
    email_deliveries_dispatch,
    notification_create,
)
from notifications_service.testing import SmtpRecorder, wait_until

pytestmark = pytest.mark.django_db


def _contact(email: str) -> str:
    user_id = str(uuid.uuid4())
    contact_upsert(
        user_id=user_id, name="Ada", email=email, role="customer", occurred_at=datetime.now(UTC)
    )
    return user_id


def _dispatch_until(condition, timeout: float = 10.0) -> bool:
    def step() -> bool:
        email_deliveries_dispatch()
        return bool(condition())

    return wait_until(step, timeout, interval=0.05)


def test_email_is_sent_with_plain_text_and_html(smtp: SmtpRecorder) -> None:
    user_id = _contact("ada@example.com")
    notification = notification_create(
        user_id=user_id, kind="booking.confirmed", title="Booking confirmed: <Gig>", body="Yes."
    )
    result = email_deliveries_dispatch()
    assert result.sent == 1
    [message] = smtp.to("ada@example.com")
    assert message["Subject"] == "Booking confirmed: <Gig>"
    assert message["Message-ID"] == f"<notification-{notification.pk}@turnstile.local>"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None
    assert "Yes." in plain.get_content()
    assert html is not None
    assert "&lt;Gig&gt;" in html.get_content()
    delivery = EmailDelivery.objects.get(notification=notification)
    assert delivery.status == "sent"
    assert delivery.attempts == 1
    # Nothing is due any more: a second round sends nothing.
    assert email_deliveries_dispatch().attempted == 0
    assert len(smtp.messages) == 1


def test_smtp_refusing_for_a_while_sends_once_after_it_comes_back(smtp: SmtpRecorder) -> None:
    user_id = _contact("bob@example.com")
    smtp.refusing = True
    notification_create(user_id=user_id, kind="message", title="Hi", body="There")
    assert _dispatch_until(lambda: smtp.refused >= 3)
    delivery = EmailDelivery.objects.get()
    assert delivery.status == "pending"
    assert "451" in delivery.last_error
    assert delivery.attempts >= 3
    smtp.refusing = False
    assert _dispatch_until(lambda: EmailDelivery.objects.get().status == "sent")
    for _ in range(5):
        email_deliveries_dispatch()
    assert len(smtp.to("bob@example.com")) == 1


def test_smtp_server_down_then_up(settings, smtp: SmtpRecorder) -> None:
    from devstack.paths import free_port

    user_id = _contact("carol@example.com")
    real_port = settings.EMAIL_PORT
    settings.EMAIL_PORT = free_port()  # nobody listens there
    notification_create(user_id=user_id, kind="message", title="Hi", body="There")
    assert email_deliveries_dispatch().retried == 1
    assert "Connection refused" in EmailDelivery.objects.get().last_error
    settings.EMAIL_PORT = real_port
    assert _dispatch_until(lambda: EmailDelivery.objects.get().status == "sent")
    assert len(smtp.to("carol@example.com")) == 1


def test_a_user_not_yet_known_waits_for_the_contact(smtp: SmtpRecorder) -> None:
    user_id = str(uuid.uuid4())
    notification_create(user_id=user_id, kind="message", title="Hi", body="There")
    email_deliveries_dispatch()
    delivery = EmailDelivery.objects.get()
    assert delivery.status == "pending"
    assert "no contact" in delivery.last_error
    contact_upsert(
        user_id=user_id,
        name="Late",
        email="late@example.com",
        role="customer",
        occurred_at=datetime.now(UTC),
    )
    assert _dispatch_until(lambda: len(smtp.to("late@example.com")) == 1)


def test_gives_up_after_the_last_attempt(settings, smtp: SmtpRecorder) -> None:
    settings.EMAIL_MAX_ATTEMPTS = 2
    smtp.refusing = True
    notification_create(
        user_id=_contact("dan@example.com"), kind="message", title="Hi", body="There"
    )
    assert _dispatch_until(lambda: EmailDelivery.objects.get().status == "failed")
    assert EmailDelivery.objects.get().attempts == 2


@pytest.mark.django_db(transaction=True)
def test_several_dispatchers_at_once_send_each_email_once(smtp: SmtpRecorder) -> None:
    import threading

    from django.db import connection

    user_id = _contact("many@example.com")
    for n in range(60):
        notification_create(user_id=user_id, kind="message", title=f"n{n}", body="b")

    def dispatcher() -> None:
        try:
            for _ in range(20):
                email_deliveries_dispatch(batch_size=5)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    subjects = [str(m["Subject"]) for m in smtp.to("many@example.com")]
    assert len(subjects) == 60
    assert len(set(subjects)) == 60
    assert EmailDelivery.objects.filter(status="sent").count() == 60
