"""Slot holds. The exclusion constraint on the bookings table refuses overlaps."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from booking_service.bookings.inventory import booking_created, end_holds, hold_expires_at
from booking_service.bookings.models import Booking, BookingKind, BookingStatus, CancelReason
from booking_service.resources.models import Resource
from booking_service.resources.slots import slot_amount, slot_units
from servicekit.errors import Conflict, NotFound
from servicekit.outbox.services import outbox_emit


def booking_create_slot(
    *,
    user_id: uuid.UUID,
    resource_id: int,
    start_time: dt.datetime,
    end_time: dt.datetime,
) -> Booking:
    """Hold a time slot of a resource until `expires_at`.

    The exclusion constraint refuses an overlap with any active booking; expired holds that
    overlap are canceled first, in the same transaction, so they never block the slot.
    """
    resource = Resource.objects.filter(pk=resource_id, is_active=True).first()
    if resource is None:
        raise NotFound("No such resource.", code="resource-not-found")
    now = timezone.now()
    units = slot_units(resource, start_time=start_time, end_time=end_time, now=now)
    with transaction.atomic():
        expired = list(
            Booking.objects.select_for_update(of=("self",))
            .select_related("resource")
            .filter(
                resource=resource,
                status=BookingStatus.PENDING,
                expires_at__lte=now,
                start_time__lt=end_time,
                end_time__gt=start_time,
            )
            .order_by("id")  # one lock order, so two requests never deadlock here
        )
        if expired:
            end_holds(expired, reason=CancelReason.EXPIRED, now=now)
        try:
            booking = Booking.objects.create(
                user_id=user_id,
                kind=BookingKind.SLOT,
                resource=resource,
                start_time=start_time,
                end_time=end_time,
                status=BookingStatus.PENDING,
                expires_at=hold_expires_at(now),
                amount=slot_amount(resource, units),
                currency=resource.currency,
            )
        except IntegrityError as exc:
            raise Conflict(
                "That time overlaps another booking of this resource.", code="slot-taken"
            ) from exc
        outbox_emit(booking_created(booking))
    return booking
