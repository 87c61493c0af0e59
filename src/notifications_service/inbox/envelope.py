"""The event envelope every producer publishes (see ARCHITECTURE.md, Event bus)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class PoisonMessageError(ValueError):
    """The message can never be handled (not an envelope); it goes to the dead letters."""


@dataclass(frozen=True)
class Envelope:
    id: uuid.UUID
    type: str
    occurred_at: datetime
    producer: str
    version: int
    data: dict[str, Any]


def parse_envelope(raw: bytes) -> Envelope:
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PoisonMessageError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise PoisonMessageError("envelope is not an object")
    try:
        event_id = uuid.UUID(str(document["id"]))
        event_type = str(document["type"])
        occurred_at = datetime.fromisoformat(str(document["occurred_at"]))
        data = document["data"]
        version = int(document.get("version", 1))
    except (KeyError, ValueError, TypeError) as exc:
        raise PoisonMessageError(f"invalid envelope: {exc!r}") from exc
    if not isinstance(data, dict):
        raise PoisonMessageError("envelope data is not an object")
    if occurred_at.tzinfo is None:
        raise PoisonMessageError("occurred_at has no time zone")
    return Envelope(
        id=event_id,
        type=event_type,
        occurred_at=occurred_at,
        producer=str(document.get("producer", "")),
        version=version,
        data=data,
    )
