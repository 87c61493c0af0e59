"""Check-in at the door: a scan of a ticket code, recorded once, and the running count."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from booking_service.api.common import actor_of, not_found, path_id
from booking_service.tickets.keys import ticket_code_verify
from booking_service.tickets.models import CheckIn
from booking_service.tickets.selectors import checkin_summary, event_get_scannable
from booking_service.tickets.services import checkin_record
from servicekit.fields import TextField
from servicekit.openapi import problems
from servicekit.permissions import IsHuman

# A compact JWS of this service's claims is about 300 characters.
MAX_CODE_LENGTH = 2048


class CheckInOutputSerializer(serializers.ModelSerializer[CheckIn]):
    ticket = serializers.UUIDField(source="ticket_id")
    booking = serializers.IntegerField(source="ticket.booking_id")
    event = serializers.IntegerField(source="ticket.event_id")
    number = serializers.IntegerField(source="ticket.number")

    class Meta:
        model = CheckIn
        fields = ["ticket", "booking", "event", "number", "checked_in_at", "nonce"]
        read_only_fields = fields


class CheckInApi(APIView):
    """Scan a ticket: the event's organizer, an admin, or door staff of the ticket's event.

    The first scan of a ticket records it (201). The same scan sent again (the same
    `nonce`, as a scanner that lost the answer re-uploads it) answers the same 201 and
    records nothing more; another scan of that ticket is 409 `already-checked-in` with
    `checked_in_at`. A canceled booking's ticket is 409 `ticket-void`; a code this service
    did not sign is 422 `invalid-ticket-code`; a ticket of an event the caller may not scan
    is 404.
    """

    permission_classes = [IsHuman]

    class InputSerializer(serializers.Serializer[Any]):
        code = TextField(max_length=MAX_CODE_LENGTH)
        nonce = TextField(min_length=8, max_length=64)

    @extend_schema(request=InputSerializer, responses={201: CheckInOutputSerializer})
    @problems(404, 409, 422)
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        claims = ticket_code_verify(serializer.validated_data["code"])
        if event_get_scannable(event_id=claims.event_id, actor=actor) is None:
            raise not_found("ticket")
        checkin = checkin_record(
            claims=claims, nonce=serializer.validated_data["nonce"], scanned_by=actor.id
        )
        return Response(CheckInOutputSerializer(checkin).data, status=status.HTTP_201_CREATED)


class CheckInSummaryApi(APIView):
    """How many of the event's tickets are checked in, of how many that admit someone."""

    permission_classes = [IsHuman]

    @extend_schema(
        responses=inline_serializer(
            "CheckInSummary",
            {"checked_in": serializers.IntegerField(), "expected": serializers.IntegerField()},
        )
    )
    def get(self, request: Request, pk: str) -> Response:
        event = event_get_scannable(event_id=path_id(pk), actor=actor_of(request))
        if event is None:
            raise not_found("event")
        summary = checkin_summary(event_id=event.pk)
        return Response({"checked_in": summary.checked_in, "expected": summary.expected})
