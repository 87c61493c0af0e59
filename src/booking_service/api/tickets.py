"""Tickets: the public keys that verify ticket codes, a booking's tickets, and the door staff
an organizer names for an event."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from booking_service.api.common import actor_of, not_found, path_id
from booking_service.events.models import Event
from booking_service.tickets.keys import ticket_jwks_document
from booking_service.tickets.models import EventStaff, Ticket
from booking_service.tickets.selectors import (
    booking_get_with_tickets,
    booking_tickets,
    event_get_managed,
    event_staff_list,
)
from booking_service.tickets.services import event_staff_add, event_staff_remove
from servicekit.fields import UUIDField
from servicekit.openapi import AutoSchema
from servicekit.permissions import IsHuman


class UnpaginatedSchema(AutoSchema):
    """For a view answering a whole list as a JSON array, without the page envelope."""

    def _get_paginator(self) -> Any:
        return None


TICKET_JWKS = inline_serializer(
    "TicketJwks", {"keys": serializers.ListField(child=serializers.DictField())}
)


class TicketJwksApi(APIView):
    """The public keys of ticket codes (OKP, Ed25519, EdDSA): verify a code with these
    alone, offline."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="well_known_jwks_retrieve",
        responses=TICKET_JWKS,
    )
    def get(self, request: Request) -> Response:
        response = Response(ticket_jwks_document())
        response["Cache-Control"] = "public, max-age=300"
        return response


class TicketJwksAliasApi(TicketJwksApi):
    """The same keys at `/api/tickets/jwks.json`, for one public origin whose
    `/.well-known/jwks.json` is the users service's."""

    @extend_schema(
        operation_id="api_tickets_jwks_retrieve",
        responses=TICKET_JWKS,
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


class TicketOutputSerializer(serializers.ModelSerializer[Ticket]):
    checked_in_at = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = ["id", "number", "code", "status", "checked_in_at"]
        read_only_fields = fields

    def get_checked_in_at(self, ticket: Ticket) -> str | None:
        checkin = getattr(ticket, "checkin", None)
        if checkin is None:
            return None
        return str(serializers.DateTimeField().to_representation(checkin.checked_in_at))


class BookingTicketsApi(APIView):
    """The tickets of a booking: its owner, its event's organizer and admins see them (to
    anyone else it does not exist). A ticket booking has them once it is confirmed."""

    permission_classes = [IsHuman]
    schema = UnpaginatedSchema()

    @extend_schema(responses={200: TicketOutputSerializer(many=True)})
    def get(self, request: Request, pk: str) -> Response:
        booking = booking_get_with_tickets(booking_id=path_id(pk), actor=actor_of(request))
        if booking is None:
            raise not_found("booking")
        tickets = booking_tickets(booking_id=booking.pk)
        return Response(TicketOutputSerializer(tickets, many=True).data)


class StaffOutputSerializer(serializers.ModelSerializer[EventStaff]):
    event = serializers.IntegerField(source="event_id")

    class Meta:
        model = EventStaff
        fields = ["event", "user_id", "created_at"]
        read_only_fields = fields


def managed_event(request: Request, pk: Any) -> Event:
    """The event in the path, if the caller is its organizer or an admin; to anyone else
    (door staff included) it does not exist."""
    event = event_get_managed(event_id=path_id(pk), actor=actor_of(request))
    if event is None:
        raise not_found("event")
    return event


class EventStaffApi(APIView):
    """Door staff of an event: users who may check its tickets in (and nothing else)."""

    permission_classes = [IsHuman]
    schema = UnpaginatedSchema()

    class InputSerializer(serializers.Serializer[Any]):
        user_id = UUIDField()

    @extend_schema(responses={200: StaffOutputSerializer(many=True)})
    def get(self, request: Request, pk: str) -> Response:
        event = managed_event(request, pk)
        return Response(StaffOutputSerializer(event_staff_list(event_id=event.pk), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: StaffOutputSerializer})
    def post(self, request: Request, pk: str) -> Response:
        event = managed_event(request, pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        staff = event_staff_add(event_id=event.pk, user_id=serializer.validated_data["user_id"])
        return Response(StaffOutputSerializer(staff).data, status=status.HTTP_201_CREATED)


class EventStaffDetailApi(APIView):
    permission_classes = [IsHuman]

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: str, user_id: str) -> Response:
        """Remove a member of the door staff; removing someone who is not is no change."""
        event = managed_event(request, pk)
        try:
            member = uuid.UUID(user_id)
        except ValueError as exc:
            raise not_found("staff") from exc
        event_staff_remove(event_id=event.pk, user_id=member)
        return Response(status=status.HTTP_204_NO_CONTENT)
