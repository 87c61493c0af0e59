"""The bookings API. `POST /api/bookings/` reaches `BookingCreateApi` through the batched
view (`booking_service.api.batched`), which answers plain ticket holds itself."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from booking_service.actions.bookings import booking_cancel
from booking_service.api.common import actor_of, id_field, not_found, path_id
from booking_service.bookings.models import Booking, BookingStatus
from booking_service.bookings.selectors import BookingPages, booking_get
from booking_service.bookings.services import (
    booking_create_slot,
    booking_create_tickets,
    booking_update_tickets,
)
from servicekit.clients import client_address
from servicekit.fields import INT32_MAX, IntegerField, QuerySerializer
from servicekit.idempotency.views import IdempotentMixin
from servicekit.openapi import link, links, problems
from servicekit.pagination import PageNumberPagination
from servicekit.ratelimits import rate_limit_all

# Set on a request the batched view counted against the rate limits and then handed to the
# regular view, which must not count it again.
COUNTED_ATTRIBUTE = "booking_rate_limits_counted"


def _iso(value: dt.datetime | None) -> str | None:
    """DRF's ISO 8601 output for the service's time zone (UTC), without its per-call
    settings lookups."""
    if value is None:
        return None
    text = value.astimezone(dt.UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def booking_representation(booking: Booking) -> dict[str, Any]:
    """A booking as every bookings endpoint shows it (`BookingOutputSerializer`'s fields, in
    its order; a test holds it equal to what DRF would make of them)."""
    return {
        "id": booking.pk,
        "kind": booking.kind,
        "user_id": str(booking.user_id),
        "event": booking.event_id,
        "tickets_booked": booking.tickets_booked,
        "resource": booking.resource_id,
        "start_time": _iso(booking.start_time),
        "end_time": _iso(booking.end_time),
        "status": booking.status,
        "cancel_reason": booking.cancel_reason,
        "expires_at": _iso(booking.expires_at),
        "amount": f"{booking.amount:.2f}",
        "currency": booking.currency,
        "created_at": _iso(booking.created_at),
        "updated_at": _iso(booking.updated_at),
        "confirmed_at": _iso(booking.confirmed_at),
        "canceled_at": _iso(booking.canceled_at),
    }


def _iso_sql(column: str) -> str:
    """`_iso` in SQL: the fraction only when there is one, as Python's `isoformat` writes it."""
    return (
        f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        f" || CASE WHEN mod(date_part('microseconds', {column})::bigint, 1000000) = 0 THEN ''"
        f" ELSE to_char({column}, '.US') END || 'Z'"
    )


# `booking_representation` built by PostgreSQL, as JSON text: a list page is read with no
# model, no datetime and no dictionary made per row, and goes out as PostgreSQL wrote it
# (a test holds the two equal, row for row).
BOOKING_JSON_SQL = "json_build_object({})::text".format(
    ", ".join(
        f"'{key}', {sql}"
        for key, sql in {
            "id": "bookings.id",
            "kind": "bookings.kind",
            "user_id": "bookings.user_id::text",
            "event": "bookings.event_id",
            "tickets_booked": "bookings.tickets_booked",
            "resource": "bookings.resource_id",
            "start_time": _iso_sql("bookings.start_time"),
            "end_time": _iso_sql("bookings.end_time"),
            "status": "bookings.status",
            "cancel_reason": "bookings.cancel_reason",
            "expires_at": _iso_sql("bookings.expires_at"),
            "amount": "bookings.amount::text",
            "currency": "bookings.currency",
            "created_at": _iso_sql("bookings.created_at"),
            "updated_at": _iso_sql("bookings.updated_at"),
            "confirmed_at": _iso_sql("bookings.confirmed_at"),
            "canceled_at": _iso_sql("bookings.canceled_at"),
        }.items()
    )
)


# The fields are the schema's; the output is `booking_representation`'s.
class BookingOutputSerializer(serializers.ModelSerializer[Booking]):
    event = serializers.IntegerField(source="event_id", allow_null=True)
    resource = serializers.IntegerField(source="resource_id", allow_null=True)

    class Meta:
        model = Booking
        fields = [
            "id",
            "kind",
            "user_id",
            "event",
            "tickets_booked",
            "resource",
            "start_time",
            "end_time",
            "status",
            "cancel_reason",
            "expires_at",
            "amount",
            "currency",
            "created_at",
            "updated_at",
            "confirmed_at",
            "canceled_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Booking) -> dict[str, Any]:
        return booking_representation(instance)


class BookingInputSerializer(serializers.Serializer[Any]):
    """Either `{event, tickets_booked}` or `{resource, start_time, end_time}`."""

    event = id_field(required=False)
    tickets_booked = IntegerField(required=False, min_value=1, max_value=INT32_MAX)
    resource = id_field(required=False)
    start_time = serializers.DateTimeField(required=False)
    end_time = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        tickets = {"event", "tickets_booked"}
        slot = {"resource", "start_time", "end_time"}
        given = set(attrs)
        if given & tickets and given & slot:
            raise serializers.ValidationError(
                "Send either event and tickets_booked, or resource, start_time and end_time."
            )
        missing = slot - given if given & slot else tickets - given
        if missing:
            raise serializers.ValidationError(
                {name: ["This field is required."] for name in sorted(missing)}
            )
        maximum = settings.BOOKING_MAX_TICKETS
        if "tickets_booked" in attrs and attrs["tickets_booked"] > maximum:
            raise serializers.ValidationError(
                {"tickets_booked": [f"At most {maximum} tickets per booking."]}
            )
        return attrs


class BookingCreateApi(IdempotentMixin, APIView):
    idempotency_scope = "bookings.create"

    def check_throttles(self, request: Request) -> None:
        super().check_throttles(request)
        # Counted before the work (and before an Idempotency-Key's transaction opens); the
        # batched view already counted what it hands on.
        if request.method == "POST" and not getattr(request._request, COUNTED_ATTRIBUTE, False):
            rate_limit_all(
                action="booking",
                keys={"address": client_address(request), "user": str(actor_of(request).id)},
            )

    @extend_schema(request=BookingInputSerializer, responses={201: BookingOutputSerializer})
    @problems(404, 409, 422, 429)
    @links(
        GetBooking=link("api_bookings_retrieve", parameters={"id": "$response.body#/id"}),
        CancelBooking=link("api_bookings_destroy", parameters={"id": "$response.body#/id"}),
        PayBooking=link(
            "api_payments_create",
            body={"booking": "$response.body#/id", "payment_token": "tok_visa"},
        ),
        BookingPayments=link("api_payments_list", parameters={"booking": "$response.body#/id"}),
    )
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        serializer = BookingInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "event" in data:
            booking = booking_create_tickets(
                user_id=actor.id, event_id=data["event"], tickets_booked=data["tickets_booked"]
            )
        else:
            booking = booking_create_slot(
                user_id=actor.id,
                resource_id=data["resource"],
                start_time=data["start_time"],
                end_time=data["end_time"],
            )
        return Response(BookingOutputSerializer(booking).data, status=status.HTTP_201_CREATED)


class BookingListCreateApi(BookingCreateApi):
    class FilterSerializer(QuerySerializer):
        event = id_field(required=False)
        resource = id_field(required=False)
        status = serializers.ChoiceField(choices=BookingStatus.choices, required=False)

    @extend_schema(
        parameters=[FilterSerializer], responses={200: BookingOutputSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        actor = actor_of(request)
        params = self.FilterSerializer.parse(request.query_params)
        documents = BookingPages(
            actor=actor,
            document=BOOKING_JSON_SQL,
            event_id=params.get("event"),
            resource_id=params.get("resource"),
            status=params.get("status"),
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(documents, request) or []
        return paginator.get_paginated_response([orjson.Fragment(text) for text in page])


class BookingDetailApi(APIView):
    class UpdateInputSerializer(serializers.Serializer[Any]):
        tickets_booked = IntegerField(min_value=1, max_value=INT32_MAX)

    @extend_schema(responses={200: BookingOutputSerializer})
    def get(self, request: Request, pk: str) -> Response:
        booking = booking_get(booking_id=path_id(pk), actor=actor_of(request))
        if booking is None:
            raise not_found("booking")
        return Response(BookingOutputSerializer(booking).data)

    def _update(self, request: Request, pk: str) -> Response:
        actor = actor_of(request)
        serializer = self.UpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        booking = booking_update_tickets(
            booking_id=path_id(pk),
            actor=actor,
            tickets_booked=serializer.validated_data["tickets_booked"],
        )
        return Response(BookingOutputSerializer(booking).data)

    @extend_schema(request=UpdateInputSerializer, responses={200: BookingOutputSerializer})
    @problems(409, 422)
    def put(self, request: Request, pk: str) -> Response:
        return self._update(request, pk)

    @extend_schema(request=UpdateInputSerializer, responses={200: BookingOutputSerializer})
    @problems(409, 422)
    def patch(self, request: Request, pk: str) -> Response:
        return self._update(request, pk)

    @extend_schema(responses={200: BookingOutputSerializer})
    @problems(409)
    def delete(self, request: Request, pk: str) -> Response:
        booking = booking_cancel(booking_id=path_id(pk), actor=actor_of(request))
        return Response(BookingOutputSerializer(booking).data)
