from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from notifications_service.notifications.services import (
    DispatchResult,
    deliveries_claim_due,
    retry_at,
)
from notifications_service.webhooks import transport
from notifications_service.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifications_service.webhooks.signing import SIGNATURE_HEADER, signature_header
from servicekit.errors import Problem
from servicekit.messages import ORGANIZER_MESSAGE_TYPES
from servicekit.retention import PRUNE_LIMIT, delete_older_than, retention

logger = logging.getLogger(__name__)

# How much of a failed answer's body is kept in the attempt log, for the organizer to see.
ERROR_BODY_EXCERPT = 300

# What an organizer's webhook can receive: the messages about their events and bookings.
WEBHOOK_EVENT_TYPES = ORGANIZER_MESSAGE_TYPES


def webhook_secret_generate() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def webhook_url_validate(*, url: str) -> None:
    """http(s) only; a host that resolves to any non-public address only where private
    networks are allowed. Early feedback: every delivery checks again."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise Problem(
            "The URL must be an absolute http or https URL.", code="invalid-url", status_code=400
        )
    if settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        return
    try:
        transport.resolve(
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
            allow_private=False,
        )
    except transport.AddressNotAllowedError as exc:
        # One answer for both: registering is no way to learn which internal names exist.
        raise Problem(
            "The URL's host must resolve, and only to public addresses.",
            code="invalid-url",
            status_code=400,
        ) from exc


def webhook_endpoint_create(
    *, organizer_id: str, url: str, event_types: list[str], description: str = ""
) -> WebhookEndpoint:
    webhook_url_validate(url=url)
    with transaction.atomic():
        # Serializes one organizer's creations, so that two at once cannot both pass the cap.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"webhook-endpoints:{organizer_id}"],
            )
        limit = settings.WEBHOOK_MAX_ENDPOINTS_PER_OWNER
        if WebhookEndpoint.objects.filter(organizer_id=organizer_id).count() >= limit:
            raise Problem(
                f"An organizer can have at most {limit} webhooks; delete one first.",
                code="too-many-webhooks",
                status_code=409,
            )
        return WebhookEndpoint.objects.create(
            organizer_id=organizer_id,
            url=url,
            secret=webhook_secret_generate(),
            event_types=sorted(set(event_types)),
            description=description,
        )


def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    is_active: bool | None = None,
) -> WebhookEndpoint:
    fields: list[str] = []
    if url is not None:
        webhook_url_validate(url=url)
        endpoint.url = url
        fields.append("url")
    if event_types is not None:
        endpoint.event_types = sorted(set(event_types))
        fields.append("event_types")
    if description is not None:
        endpoint.description = description
        fields.append("description")
    if is_active is not None:
        endpoint.is_active = is_active
        fields.append("is_active")
    if fields:
        endpoint.save(update_fields=[*fields, "updated_at"])
    return endpoint


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    endpoint.secret = webhook_secret_generate()
    endpoint.save(update_fields=["secret", "updated_at"])
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def webhook_deliveries_enqueue(
    *, organizer_id: str, message_id: uuid.UUID, message_type: str, envelope: dict[str, Any]
) -> int:
    """One pending delivery per active endpoint of the organizer that wants this type."""
    now = timezone.now()
    deliveries = [
        WebhookDelivery(
            endpoint=endpoint,
            message_id=message_id,
            message_type=message_type,
            payload=envelope,
            next_attempt_at=now,
        )
        for endpoint in WebhookEndpoint.objects.filter(organizer_id=organizer_id, is_active=True)
        if endpoint.wants(message_type)
    ]
    WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    return len(deliveries)


def webhook_deliveries_prune(*, now: datetime | None = None, limit: int = PRUNE_LIMIT) -> int:
    """Delete the webhooks delivered more than `DELIVERY_RETENTION_SECONDS` ago, with their
    attempt log, at most `limit`; how many. The organizer's delivery log
    (`GET /api/webhooks/{id}/deliveries`) covers that long; pending and failed deliveries
    stay."""
    cutoff = (now or timezone.now()) - retention("DELIVERY_RETENTION_SECONDS", 7 * 24 * 3600)
    return delete_older_than(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.SUCCEEDED),
        field="delivered_at",
        cutoff=cutoff,
        limit=limit,
    )


def webhook_body(delivery: WebhookDelivery) -> bytes:
    # Keys sorted and no spaces: the bytes signed are the bytes sent, the same every attempt.
    return json.dumps(
        delivery.payload, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":")
    ).encode()


def _post(delivery: WebhookDelivery) -> tuple[int | None, str]:
    endpoint = delivery.endpoint
    body = webhook_body(delivery)
    answer = transport.post(
        endpoint.url,
        body=body,
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Turnstile-Webhooks/1",
            SIGNATURE_HEADER: signature_header(secret=endpoint.secret, body=body),
            "Turnstile-Event-Id": str(delivery.message_id),
            "Turnstile-Event-Type": delivery.message_type,
            "Turnstile-Delivery-Id": str(delivery.pk),
        },
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        deadline=settings.WEBHOOK_DEADLINE_SECONDS,
        max_bytes=settings.WEBHOOK_RESPONSE_MAX_BYTES,
        allow_private=settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
    )
    if 200 <= answer.status < 300:
        return answer.status, ""
    excerpt = answer.body[:ERROR_BODY_EXCERPT].decode("utf-8", errors="replace").strip()
    return answer.status, f"HTTP {answer.status}" + (f": {excerpt}" if excerpt else "")


def webhook_deliveries_dispatch(*, batch_size: int = 20) -> DispatchResult:
    """POST the due deliveries; 2xx is success, anything else (a redirect too) is retried
    with backoff.

    Whatever goes wrong with one delivery (a receiver that answers garbage, too slowly or
    not at all, an address that is not allowed) is that delivery's failed attempt, logged;
    the others go out all the same.
    """
    result = DispatchResult()
    ids = deliveries_claim_due(model=WebhookDelivery, batch_size=batch_size, now=timezone.now())
    for delivery in WebhookDelivery.objects.select_related("endpoint").filter(id__in=ids):
        started = time.monotonic()
        try:
            status_code, error = _post(delivery)
        except transport.AttemptFailedError as exc:
            status_code, error = None, str(exc)
        except Exception:
            logger.exception("webhook delivery %s raised", delivery.pk)
            status_code, error = None, "internal error"  # its text stays in our logs
        duration_ms = int((time.monotonic() - started) * 1000)
        _record_attempt(
            delivery=delivery,
            status_code=status_code,
            error=error,
            # A refused attempt made no connection: its time would only measure our DNS.
            duration_ms=0 if error == transport.REFUSED else duration_ms,
            now=timezone.now(),
            result=result,
        )
    return result


def _record_attempt(
    *,
    delivery: WebhookDelivery,
    status_code: int | None,
    error: str,
    duration_ms: int,
    now: datetime,
    result: DispatchResult,
) -> None:
    succeeded = status_code is not None and 200 <= status_code < 300
    with transaction.atomic():
        error = error.replace("\x00", "\\x00")[:2000]  # PostgreSQL text holds no NUL
        WebhookAttempt.objects.create(
            delivery=delivery, status_code=status_code, error=error, duration_ms=duration_ms
        )
        delivery.last_status_code = status_code
        delivery.last_error = error
        if succeeded:
            delivery.status = WebhookDelivery.Status.SUCCEEDED
            delivery.delivered_at = now
            result.sent += 1
        elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.status = WebhookDelivery.Status.FAILED
            result.failed += 1
        else:
            delivery.next_attempt_at = retry_at(attempts=delivery.attempts, now=now)
            result.retried += 1
        delivery.save(
            update_fields=[
                "status",
                "last_status_code",
                "last_error",
                "delivered_at",
                "next_attempt_at",
            ]
        )
    if not succeeded:
        logger.info(
            "webhook delivery %s to %s failed (attempt %d): %s",
            delivery.pk,
            delivery.endpoint.url,
            delivery.attempts,
            error or status_code,
        )
