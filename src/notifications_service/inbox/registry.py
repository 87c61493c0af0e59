"""The consumers this service runs, one per purpose, each with its own durable name.

Separate durables let one purpose fall behind or fail (a webhook handler bug, say) without
holding back the others: each keeps its own position in the stream.
"""

from __future__ import annotations

from django.conf import settings

from notifications_service.contacts import messages as contact_messages
from notifications_service.inbox.consumer import ConsumerOptions, ConsumerSpec
from notifications_service.notifications import messages as notification_messages
from notifications_service.webhooks import messages as webhook_messages


def consumer_specs() -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            name="contacts",
            durable="notifications-contacts",
            types=("user.>",),
            handler=contact_messages.handle_message,
        ),
        ConsumerSpec(
            name="notifications",
            durable="notifications-notify",
            types=notification_messages.SUBSCRIBED,
            handler=notification_messages.handle_message,
        ),
        ConsumerSpec(
            name="webhooks",
            durable="notifications-webhooks",
            types=webhook_messages.SUBSCRIBED,
            handler=webhook_messages.handle_message,
        ),
    ]


def consumer_options() -> ConsumerOptions:
    return ConsumerOptions(
        batch=settings.NOTIFICATIONS_CONSUMER_BATCH,
        ack_wait=float(settings.NOTIFICATIONS_CONSUMER_ACK_WAIT_SECONDS),
        max_deliver=settings.NOTIFICATIONS_CONSUMER_MAX_DELIVER,
        retry_initial=float(settings.DELIVERY_RETRY_BASE_SECONDS) / 2,
    )
