"""What an organizer reads of an event: its attendees (JSON pages, or the whole list as a
streamed CSV file) and its sales. The event's organizer and admins only; to anyone else,
door staff included, the event does not exist here."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Q
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from booking_service.api.bookings import BookingOutputSerializer, booking_representation
from booking_service.api.tickets import managed_event
from booking_service.tickets.models import Ticket
from booking_service.tickets.selectors import event_attendees, event_sales
from servicekit.pagination import PageNumberPagination
from servicekit.permissions import IsHuman
from servicekit.renderers import JSONRenderer

CSV_HEADER = ("ticket", "number", "booking", "user_id", "status", "checked_in_at")
CSV_CHUNK = 500
# A spreadsheet reads a cell starting with one of these as a formula (CSV injection); such a
# cell is written with a leading apostrophe, which makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def attendee_row(ticket: Ticket) -> dict[str, Any]:
    checkin = getattr(ticket, "checkin", None)
    return {
        "ticket": str(ticket.pk),
        "number": ticket.number,
        "booking": ticket.booking_id,
        "user_id": str(ticket.booking.user_id),
        "status": ticket.status,
        "checked_in_at": _iso(checkin.checked_in_at) if checkin is not None else None,
    }


class AttendeeOutputSerializer(serializers.Serializer[Any]):
    """The schema of `attendee_row`."""

    ticket = serializers.UUIDField()
    number = serializers.IntegerField()
    booking = serializers.IntegerField()
    user_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["valid", "checked_in"])
    checked_in_at = serializers.DateTimeField(allow_null=True)


class AttendeesApi(APIView):
    """One row per ticket that admits someone (valid or checked in), by booking and number."""

    permission_classes = [IsHuman]

    @extend_schema(responses={200: AttendeeOutputSerializer(many=True)})
    def get(self, request: Request, pk: str) -> Response:
        event = managed_event(request, pk)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(event_attendees(event_id=event.pk), request, view=self)
        return paginator.get_paginated_response([attendee_row(ticket) for ticket in page or []])


def csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Line:
    """A file-like object whose `write` hands back the line csv.writer wrote."""

    def write(self, line: str) -> str:
        return line


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The header line, then one line per row, each cell escaped by `csv_cell`."""
    writer = csv.writer(_Line())
    yield writer.writerow([csv_cell(name) for name in header])
    for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])


def _attendee_rows(event_id: int) -> Iterator[list[Any]]:
    """Every attendee, read in chunks by key (no cursor held open between chunks)."""
    tickets = event_attendees(event_id=event_id)
    after: tuple[int, int] | None = None
    while True:
        chunk = tickets
        if after is not None:
            booking_id, number = after
            chunk = tickets.filter(
                Q(booking_id__gt=booking_id) | Q(booking_id=booking_id, number__gt=number)
            )
        batch = list(chunk[:CSV_CHUNK])
        for ticket in batch:
            row = attendee_row(ticket)
            yield [row[name] for name in CSV_HEADER]
        if len(batch) < CSV_CHUNK:
            return
        after = (batch[-1].booking_id, batch[-1].number)


class AttendeesCsvApi(APIView):
    """The attendee list as a CSV file with a header line, streamed as it is read."""

    permission_classes = [IsHuman]

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        # The file is written by the view itself; a refusal is problem+json whatever the
        # client accepts (a browser downloading the file asks for anything).
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    @extend_schema(
        operation_id="api_events_attendees_csv_retrieve",
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="Columns: " + ", ".join(CSV_HEADER) + ". Cells a spreadsheet "
                "would read as a formula start with an apostrophe.",
            )
        },
    )
    def get(self, request: Request, pk: str) -> StreamingHttpResponse:
        event = managed_event(request, pk)
        response = StreamingHttpResponse(
            csv_lines(CSV_HEADER, _attendee_rows(event.pk)), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="event-{event.pk}-attendees.csv"'
        return response


class SalesPointSerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    sold = serializers.IntegerField()
    held = serializers.IntegerField()
    available = serializers.IntegerField()


class SalesOutputSerializer(serializers.Serializer[Any]):
    """The schema of the sales answer."""

    total = serializers.IntegerField()
    available = serializers.IntegerField()
    held = serializers.IntegerField()
    sold = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    series = SalesPointSerializer(many=True)
    recent = BookingOutputSerializer(many=True)


class SalesApi(APIView):
    """Sold, held and available now and over the sale so far (at most 200 points, the
    last one now; `available` against today's total), the revenue of confirmed bookings,
    and the 10 latest bookings as the bookings list shows them."""

    permission_classes = [IsHuman]

    @extend_schema(responses={200: SalesOutputSerializer})
    def get(self, request: Request, pk: str) -> Response:
        event = managed_event(request, pk)
        sales = event_sales(event=event)
        return Response(
            {
                "total": sales.inventory.total,
                "available": sales.inventory.available,
                "held": sales.inventory.held,
                "sold": sales.inventory.sold,
                "revenue": f"{sales.revenue:.2f}",
                "currency": sales.currency,
                "series": [
                    {"at": _iso(p.at), "sold": p.sold, "held": p.held, "available": p.available}
                    for p in sales.series
                ],
                "recent": [booking_representation(booking) for booking in sales.recent],
            }
        )
