"""Waiting until the system has healed: nothing left in flight, read upstream first."""

from __future__ import annotations

import asyncio
import time

import psycopg

from devstack.chaos.checker.world import Run, query, user_ids
from devstack.chaos.topology import Topology

DURABLES = ("notifications-contacts", "notifications-notify", "notifications-webhooks")


def _consumer_backlog(topology: Topology) -> list[str]:
    import nats

    stream = topology.settings.get("NATS_STREAM", "TURNSTILE")

    async def ask() -> list[str]:
        client = await nats.connect(
            servers=list(topology.nats_urls), connect_timeout=3, max_reconnect_attempts=1
        )
        try:
            js = client.jetstream(timeout=5)
            waiting = []
            for durable in DURABLES:
                info = await js.consumer_info(stream, durable)
                if info.num_pending or info.num_ack_pending:
                    waiting.append(
                        f"consumer {durable}: {info.num_pending} pending,"
                        f" {info.num_ack_pending} unacknowledged"
                    )
            return waiting
        finally:
            await client.close()

    try:
        return asyncio.run(ask())
    except Exception as exc:
        return [f"NATS consumers unreadable: {type(exc).__name__}: {exc}"]


def unhealed(topology: Topology, run: Run) -> list[str]:
    """What is still in flight, upstream first; empty when the system is at rest."""
    urls = topology.database_urls
    customers, users = user_ids(run.customers), user_ids(run.users)
    organizers = user_ids(run.organizers)
    checks = [
        (
            urls["booking"],
            "SELECT count(*) AS n FROM bookings"
            " WHERE status = 'pending' AND user_id::text = ANY(%s)",
            [customers],
            "pending bookings",
        ),
        (
            urls["booking"],
            "SELECT count(*) AS n FROM payments WHERE status = 'pending'",
            [],
            "pending payments",
        ),
        (
            urls["booking"],
            "SELECT count(*) AS n FROM payments p JOIN bookings b ON b.id = p.booking_id"
            " WHERE p.status = 'success' AND b.status = 'canceled'",
            [],
            "unrefunded payments of canceled bookings",
        ),
        (
            urls["users"],
            "SELECT count(*) AS n FROM outbox_messages WHERE sent_at IS NULL",
            [],
            "unsent users outbox messages",
        ),
        (
            urls["booking"],
            "SELECT count(*) AS n FROM outbox_messages WHERE sent_at IS NULL",
            [],
            "unsent booking outbox messages",
        ),
    ]
    waiting = []
    for url, sql, params, what in checks:
        try:
            count = query(url, sql, params)[0]["n"]
        except psycopg.Error as exc:
            return [f"database unreachable: {type(exc).__name__}: {exc}".strip()]
        if count:
            waiting.append(f"{count} {what}")
    if waiting:
        return waiting
    waiting = _consumer_backlog(topology)
    if waiting:
        return waiting
    deliveries = [
        (
            "SELECT count(*) AS n FROM notifications_emaildelivery e JOIN"
            " notifications_notification n ON n.id = e.notification_id"
            " WHERE e.status = 'pending' AND n.user_id = ANY(%s)",
            [users],
            "pending emails",
        ),
        (
            "SELECT count(*) AS n FROM webhooks_webhookdelivery d JOIN webhooks_webhookendpoint w"
            " ON w.id = d.endpoint_id WHERE d.status = 'pending' AND w.organizer_id = ANY(%s)",
            [organizers],
            "pending webhook deliveries",
        ),
    ]
    for sql, params, what in deliveries:
        try:
            count = query(urls["notifications"], sql, params)[0]["n"]
        except psycopg.Error as exc:
            return [f"database unreachable: {type(exc).__name__}: {exc}".strip()]
        if count:
            waiting.append(f"{count} {what}")
    return waiting


def wait_healed(topology: Topology, run: Run, *, timeout: float) -> tuple[float | None, list[str]]:
    """(seconds it took, None if it never did; what was still in flight at the end)."""
    start = time.monotonic()
    clear_since: float | None = None
    waiting: list[str] = []
    while True:
        waiting = unhealed(topology, run)
        now = time.monotonic()
        if not waiting:
            if clear_since is not None:
                return clear_since - start, []
            clear_since = now
        else:
            clear_since = None
        if now - start > timeout:
            return None, waiting
        time.sleep(0.5)
