"""The consumers this service runs, one per purpose, each with its own durable name.

Separate durables let one purpose fall behind or fail (a webhook handler bug, say) without
holding back the others: each keeps its own position in the stream.
"""

from __future__ import annotations

from django.conf import settings

from notifications_service.contacts import events as contact_events
from notifications_service.inbox.consumer import ConsumerOptions, ConsumerSpec
from notifications_service.notifications import events as notification_events
from notifications_service.webhooks import events as webhook_events


def consumer_specs() -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            name="contacts",
            durable="notifications-contacts",
            types=("user.>",),
            handler=contact_events.handle_event,
        ),
        ConsumerSpec(
            name="notifications",
            durable="notifications-notify",
            types=notification_events.SUBSCRIBED,
            handler=notification_events.handle_event,
        ),
        ConsumerSpec(
            name="webhooks",
            durable="notifications-webhooks",
            types=webhook_events.SUBSCRIBED,
            handler=webhook_events.handle_event,
        ),
    ]


def consumer_options() -> ConsumerOptions:
    return ConsumerOptions(
        batch=settings.NOTIFICATIONS_CONSUMER_BATCH,
        ack_wait=float(settings.NOTIFICATIONS_CONSUMER_ACK_WAIT_SECONDS),
        max_deliver=settings.NOTIFICATIONS_CONSUMER_MAX_DELIVER,
        retry_initial=float(settings.DELIVERY_RETRY_BASE_SECONDS) / 2,
    )
