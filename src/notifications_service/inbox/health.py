from __future__ import annotations

import asyncio
from typing import Any

from django.db.models import Count

from notifications_service.inbox.models import DeadLetter
from notifications_service.inbox.registry import consumer_specs
from servicekit.bus import bus_config, connect
from servicekit.health import Check


async def _consumer_lag(durables: list[str], timeout: float) -> dict[str, Any]:
    config = bus_config()
    client = await asyncio.wait_for(connect(config, name="notifications-health"), timeout)
    try:
        js = client.jetstream()
        lag: dict[str, Any] = {}
        for durable in durables:
            try:
                info = await js.consumer_info(config.stream, durable, timeout=timeout)
            except Exception as exc:
                lag[durable] = {"error": type(exc).__name__}
                continue
            lag[durable] = {
                "pending": info.num_pending,
                "unacked": info.num_ack_pending,
                "redelivered": info.num_redelivered,
                # Pull requests waiting at the server: 0 while messages are pending means
                # no consumer process is running.
                "waiting_pulls": info.num_waiting,
            }
        return lag
    finally:
        await client.close()


def check_consumers(timeout: float = 1.0) -> Check:
    """Informational: each consumer's backlog on the stream, and the dead letters kept.

    The bus check already decides readiness; a consumer that is behind is reported, not
    fatal (it catches up, nothing is lost).
    """
    dead = dict(
        DeadLetter.objects.values_list("consumer")
        .annotate(n=Count("id"))
        .values_list("consumer", "n")
    )
    data: dict[str, Any] = {"dead_letters": dead}
    try:
        data["consumers"] = asyncio.run(
            _consumer_lag([spec.durable for spec in consumer_specs()], timeout)
        )
    except Exception as exc:
        return Check("consumers", True, f"consumer state unavailable: {type(exc).__name__}", data)
    return Check("consumers", True, data=data)
