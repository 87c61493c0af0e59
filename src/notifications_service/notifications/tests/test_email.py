"""Email over real SMTP (aiosmtpd on a free port): plain and HTML, retries, exactly once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from notifications_service.contacts.services import contact_upsert
from notifications_service.notifications.mail import header_safe
from notifications_service.notifications.models import EmailDelivery
from notifications_service.notifications.services import (
    email_deliveries_dispatch,
    notification_create,
)
from notifications_service.testing import SmtpRecorder
from servicekit.testing import wait_until

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
    from servicekit.testing import free_port

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


def test_a_title_with_a_line_break_goes_out_on_one_subject_line(smtp: SmtpRecorder) -> None:
    user_id = _contact("eve@example.com")
    title = "Event canceled: Gig\r\nBcc: victim@example.com\n\u2028\tNow"
    notification = notification_create(
        user_id=user_id, kind="event.canceled", title=title, body="b"
    )
    result = email_deliveries_dispatch()
    assert result.sent == 1
    [message] = smtp.messages
    assert message["Subject"] == "Event canceled: Gig Bcc: victim@example.com Now"
    assert message["Bcc"] is None
    assert str(message["To"]) == "eve@example.com"
    # The stored notification keeps what it was given; only the header is made safe.
    notification.refresh_from_db()
    assert notification.title == title
    assert EmailDelivery.objects.get().status == "sent"


def test_an_email_whose_sending_raises_is_retried_alone_then_given_up(
    settings, smtp: SmtpRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.mail.backends.smtp import EmailBackend

    settings.EMAIL_MAX_ATTEMPTS = 3
    settings.DELIVERY_RETRY_BASE_SECONDS = settings.DELIVERY_RETRY_MAX_SECONDS = 1.0
    real_send = EmailBackend.send_messages

    def send_messages(self: EmailBackend, messages: list) -> int:
        if any("doomed@example.com" in message.to for message in messages):
            raise RuntimeError("backend exploded")
        return real_send(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", send_messages)
    for address in ("first@example.com", "doomed@example.com", "last@example.com"):
        notification_create(user_id=_contact(address), kind="message", title=address, body="b")

    started = timezone.now()
    result = email_deliveries_dispatch()
    assert (result.sent, result.retried, result.failed) == (2, 1, 0)
    assert len(smtp.to("first@example.com")) == len(smtp.to("last@example.com")) == 1
    doomed = EmailDelivery.objects.get(notification__title="doomed@example.com")
    assert doomed.status == "pending"
    assert doomed.attempts == 1
    assert doomed.last_error == "RuntimeError: backend exploded"
    assert doomed.next_attempt_at > started  # backed off, not due at once
    assert email_deliveries_dispatch().attempted == 0

    assert _dispatch_until(lambda: EmailDelivery.objects.get(pk=doomed.pk).status == "failed")
    doomed.refresh_from_db()
    assert doomed.attempts == settings.EMAIL_MAX_ATTEMPTS
    assert doomed.last_error == "RuntimeError: backend exploded"
    assert smtp.to("doomed@example.com") == []
    assert EmailDelivery.objects.filter(status="sent").count() == 2


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("Gig\r\nBcc: x@example.com", "Gig Bcc: x@example.com"),
        ("a\u2028b\u2029c\x85d", "a b c d"),
        ("tab\there\x00\x1b[31m", "tab here [31m"),
        ("  Already fine  ", "Already fine"),
    ],
)
def test_header_safe_keeps_text_on_one_line(text: str, safe: str) -> None:
    assert header_safe(text) == safe


def test_a_round_sends_its_emails_over_one_connection(smtp: SmtpRecorder) -> None:
    for n in range(5):
        user_id = _contact(f"guest{n}@example.com")
        notification_create(user_id=user_id, kind="message", title="Hi", body="There")
    assert email_deliveries_dispatch().sent == 5
    assert len(smtp.messages) == 5
    assert len(smtp.sessions) == 1
