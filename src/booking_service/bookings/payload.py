"""`booking.created`'s data built in SQL, for the writers that make ticket holds in a
statement of their own (the batched path; the benchmark's stored season). Plain Python, no
Django, so a tool outside the service can use it too; `inventory` is where the service does."""

from __future__ import annotations

from servicekit.messages import BookingCreated


def booking_created_sql(
    *, booking_id: str, user_id: str, tickets: str, amount: str, event: str, expires_at: str
) -> str:
    """A SQL `jsonb_build_object` of `booking.created` for a pending ticket hold: each
    argument is the SQL for that value (`event` is the alias of the event's row, for its id,
    name, organizer and currency; `expires_at` is the text of the expiry). It follows the
    message model field for field (checked here, and a test decodes what it writes)."""
    fields = {
        "booking_id": booking_id,
        "user_id": f"{user_id}::text",
        "organizer_id": f"{event}.organizer_id::text",
        "kind": "'tickets'",
        "event_id": f"{event}.id",
        "event_name": f"{event}.name",
        "resource_id": "NULL",
        "resource_name": "NULL",
        "tickets_booked": tickets,
        "start_time": "NULL",
        "end_time": "NULL",
        "status": "'pending'",
        "expires_at": expires_at,
        "amount": f"({amount})::text",
        "currency": f"{event}.currency",
        "reason": "NULL",
    }
    if tuple(fields) != BookingCreated.__struct_fields__:
        raise RuntimeError("booking_created_sql does not follow the BookingCreated model")
    pairs = ", ".join(f"'{name}', {value}" for name, value in fields.items())
    return f"jsonb_build_object({pairs})"
