from __future__ import annotations

import contextlib
import logging
import smtplib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    models,
    transaction,
)
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from notifications_service.contacts.selectors import contact_get
from notifications_service.notifications.mail import header_safe
from notifications_service.notifications.models import EmailDelivery, Notification
from servicekit.bus import backoff_delay
from servicekit.retention import PRUNE_LIMIT, delete_older_than, retention

logger = logging.getLogger(__name__)

DELIVERY_NOTIFY_CHANNEL = "deliveries"

# The database being away is nobody's item's fault: such errors stop the round (the
# dispatcher backs off, the leases bring the rows back), they never count as an attempt.
DATABASE_AWAY = (OperationalError, InterfaceError)


def notification_create(
    *,
    user_id: str,
    kind: str,
    title: str,
    body: str,
    data: dict[str, Any] | None = None,
    source_message_id: uuid.UUID | None = None,
    send_email: bool = True,
    email_to: str = "",
) -> Notification:
    """Store a notification and, in the same transaction, its pending email delivery."""
    with transaction.atomic():
        notification = Notification.objects.create(
            user_id=user_id,
            kind=kind,
            title=title,
            body=body,
            data=data or {},
            source_message_id=source_message_id,
        )
        if send_email:
            EmailDelivery.objects.create(
                notification=notification, to_email=email_to, next_attempt_at=timezone.now()
            )
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, '')", [DELIVERY_NOTIFY_CHANNEL])
    return notification


def notification_send(
    *,
    user_id: str,
    kind: str,
    title: str,
    body: str,
    data: dict[str, Any] | None = None,
    source_message_id: uuid.UUID | None = None,
    send_email: bool = True,
    email_to: str = "",
) -> tuple[Notification, bool]:
    """`POST /api/notification`: create, or with a `source_message_id` (the API's `event_id`)
    already used for this user, return the first notification (a retried call sends nothing
    twice). (notification, created)
    """
    if source_message_id is not None:
        existing = Notification.objects.filter(
            user_id=user_id, source_message_id=source_message_id
        ).first()
        if existing is not None:
            return existing, False
    try:
        notification = notification_create(
            user_id=user_id,
            kind=kind,
            title=title,
            body=body,
            data=data,
            source_message_id=source_message_id,
            send_email=send_email,
            email_to=email_to,
        )
    except IntegrityError:
        # A concurrent call with the same message id won the race.
        notification = Notification.objects.get(
            user_id=user_id, source_message_id=source_message_id
        )
        return notification, False
    return notification, True


def notification_mark_read(*, notification: Notification) -> Notification:
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


def notification_mark_all_read(*, user_id: str) -> int:
    return Notification.objects.filter(user_id=user_id, read_at__isnull=True).update(
        read_at=timezone.now()
    )


# Email dispatch -------------------------------------------------------------------------


@dataclass
class DispatchResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.sent + self.retried + self.failed


class RecipientUnknownError(Exception):
    """No address yet: the contact replica has not seen the user (messages may come late)."""


# Failures that are part of mail's normal life: logged in one line, without a traceback.
EMAIL_EXPECTED_FAILURES = (smtplib.SMTPException, OSError, RecipientUnknownError)


def failure_text(exc: BaseException) -> str:
    """What is recorded on a delivery's row (PostgreSQL text holds no NUL)."""
    return f"{type(exc).__name__}: {exc}".replace("\x00", "\\x00")[:2000]


def deliveries_claim_due(*, model: type[models.Model], batch_size: int, now: datetime) -> list[int]:
    """Lease up to `batch_size` due rows to this dispatcher; other dispatchers skip them.

    The lease is `next_attempt_at` moved forward: a dispatcher that dies mid-send leaves
    the row to be picked up again when the lease runs out.
    """
    lease = timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    with transaction.atomic():
        ids = list(
            model._default_manager.select_for_update(skip_locked=True)
            .filter(status="pending", next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")
            .values_list("id", flat=True)[:batch_size]
        )
        if ids:
            model._default_manager.filter(id__in=ids).update(
                next_attempt_at=now + lease, attempts=F("attempts") + 1
            )
    return ids


def retry_at(*, attempts: int, now: datetime) -> datetime:
    delay = backoff_delay(
        attempts,
        initial=float(settings.DELIVERY_RETRY_BASE_SECONDS),
        maximum=float(settings.DELIVERY_RETRY_MAX_SECONDS),
    )
    return now + timedelta(seconds=delay)


def email_message_build(*, delivery: EmailDelivery, to_email: str) -> EmailMultiAlternatives:
    notification = delivery.notification
    context = {"notification": notification, "title": notification.title, "body": notification.body}
    text = render_to_string("notifications/email/notification.txt", context)
    html = render_to_string("notifications/email/notification.html", context)
    message = EmailMultiAlternatives(
        subject=header_safe(notification.title),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to_email],
        headers={
            "Message-ID": delivery.message_id,
            "X-Turnstile-Notification": str(notification.pk),
            "X-Turnstile-Kind": header_safe(notification.kind),
        },
    )
    message.attach_alternative(html, "text/html")
    return message


def _recipient(delivery: EmailDelivery) -> str:
    if delivery.to_email:
        return delivery.to_email
    contact = contact_get(user_id=delivery.notification.user_id)
    if contact is None or not contact.email:
        raise RecipientUnknownError(f"no contact for user {delivery.notification.user_id} yet")
    return contact.email


def email_deliveries_dispatch(*, batch_size: int = 50) -> DispatchResult:
    """Send the due emails once each; failures are rescheduled with backoff, not dropped.

    Whatever goes wrong with one email (a refused header, a backend that raises) is that
    email's failed attempt, recorded on its row; the others of the batch go out all the same.
    """
    result = DispatchResult()
    now = timezone.now()
    ids = deliveries_claim_due(model=EmailDelivery, batch_size=batch_size, now=now)
    if not ids:
        return result
    # One SMTP connection for the round, opened at the first email; one that fails is
    # closed, and the next email opens a fresh one.
    smtp = get_connection()
    try:
        for delivery in EmailDelivery.objects.select_related("notification").filter(id__in=ids):
            _email_send(delivery, smtp, result)
    finally:
        with contextlib.suppress(*EMAIL_EXPECTED_FAILURES):
            smtp.close()
    return result


def _email_send(delivery: EmailDelivery, smtp: BaseEmailBackend, result: DispatchResult) -> None:
    """One email of a round, and what became of it on its row."""
    try:
        to_email = _recipient(delivery)
        message = email_message_build(delivery=delivery, to_email=to_email)
        smtp.open()  # kept open for the next email (a send that opens it closes it after)
        message.connection = smtp
        message.send()
        with transaction.atomic():
            delivery.status = EmailDelivery.Status.SENT
            delivery.sent_at = timezone.now()
            delivery.to_email = to_email
            delivery.last_error = ""
            delivery.save(update_fields=["status", "sent_at", "to_email", "last_error"])
    except DATABASE_AWAY:
        raise
    except Exception as exc:
        if not isinstance(exc, EMAIL_EXPECTED_FAILURES):
            logger.exception("email for notification %s raised", delivery.notification_id)
        if isinstance(exc, smtplib.SMTPServerDisconnected | OSError):
            with contextlib.suppress(*EMAIL_EXPECTED_FAILURES):
                smtp.close()
        error = failure_text(exc)
        result.errors.append(error)
        _email_failed(delivery=delivery, error=error, result=result)
        return
    result.sent += 1


def email_deliveries_prune(*, now: datetime | None = None, limit: int = PRUNE_LIMIT) -> int:
    """Delete the deliveries of emails sent more than `DELIVERY_RETENTION_SECONDS` ago, at
    most `limit`; how many. Their notifications stay: they are the user's list
    (`GET /api/notifications/`), and their unique (user, message) stays a second guard
    against a message handled twice. Pending and failed deliveries stay too (work still to
    do, or a person's to look at)."""
    cutoff = (now or timezone.now()) - retention("DELIVERY_RETENTION_SECONDS", 7 * 24 * 3600)
    return delete_older_than(
        EmailDelivery.objects.filter(status=EmailDelivery.Status.SENT),
        field="sent_at",
        cutoff=cutoff,
        limit=limit,
    )


def _email_failed(*, delivery: EmailDelivery, error: str, result: DispatchResult) -> None:
    now = timezone.now()
    if delivery.attempts >= settings.EMAIL_MAX_ATTEMPTS:
        delivery.status = EmailDelivery.Status.FAILED
        result.failed += 1
        logger.error(
            "email for notification %s failed for good: %s", delivery.notification_id, error
        )
    else:
        delivery.status = EmailDelivery.Status.PENDING
        delivery.next_attempt_at = retry_at(attempts=delivery.attempts, now=now)
        result.retried += 1
        logger.warning(
            "email for notification %s failed (attempt %d), retry at %s: %s",
            delivery.notification_id,
            delivery.attempts,
            delivery.next_attempt_at.isoformat(),
            error,
        )
    delivery.last_error = error
    with transaction.atomic():
        delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
