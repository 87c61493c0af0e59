"""Inventory: no event oversold, tickets conserved, no two live bookings of one resource
overlapping, nothing taken of a canceled event."""

from __future__ import annotations

from collections import Counter

from devstack.chaos.checker.case import Case


def events_and_resources(case: Case) -> None:
    held: Counter[int] = Counter()
    sold: Counter[int] = Counter()
    for booking in case.world.bookings:
        if booking["event_id"] is None:
            continue
        if booking["status"] == "pending":
            held[int(booking["event_id"])] += int(booking["tickets_booked"])
        elif booking["status"] == "confirmed":
            sold[int(booking["event_id"])] += int(booking["tickets_booked"])
    for event_id, event in case.events.items():
        total, available = int(event["total_tickets"]), int(event["available_tickets"])
        taken = held[event_id] + sold[event_id]
        if available < 0 or taken > total:
            case.say(
                f"event {event_id} is oversold: {taken} tickets held or sold of"
                f" {total}, available {available}"
            )
        if total != available + taken:
            case.say(
                f"event {event_id} does not conserve tickets: total {total} !="
                f" available {available} + held {held[event_id]} + sold {sold[event_id]}"
            )
        if event["status"] == "canceled" and taken:
            case.say(f"event {event_id} is canceled but {taken} of its tickets are taken")
    for overlap in case.world.overlaps:
        case.say(
            f"resource {overlap['resource_id']} is double-booked: bookings"
            f" {overlap['first']} and {overlap['second']} overlap"
        )
