from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from booking_service.actions.events import event_cancel, event_update
from booking_service.api.common import actor_of, not_found, path_id
from booking_service.events.models import Event
from booking_service.events.selectors import event_get, event_list, event_list_of_organizer
from booking_service.events.services import event_create
from servicekit.fields import IntegerField, QuerySerializer, TextField, UUIDField, validate_range
from servicekit.microcache import MicroCache
from servicekit.openapi import link, links, problems
from servicekit.pagination import PageNumberPagination
from servicekit.permissions import IsOrganizerOrAdmin


class EventOutputSerializer(serializers.ModelSerializer[Event]):
    class Meta:
        model = Event
        fields = [
            "id",
            "name",
            "description",
            "date",
            "time",
            "location",
            "total_tickets",
            "available_tickets",
            "price_per_ticket",
            "currency",
            "organizer_id",
            "status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class EventInputSerializer(serializers.Serializer[Any]):
    name = TextField(max_length=200)
    description = TextField(multiline=True, max_length=5000, allow_blank=True, required=False)
    date = serializers.DateField()
    time = serializers.TimeField()
    location = TextField(max_length=200)
    total_tickets = IntegerField(min_value=1, max_value=1_000_000)
    price_per_ticket = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, max_value=settings.BOOKING_MAX_PRICE
    )


class EventCreateInputSerializer(EventInputSerializer):
    # Only an admin may create an event on an organizer's behalf.
    organizer_id = UUIDField(required=False)


def _event_permissions(request: Request) -> list[BasePermission]:
    if request.method == "GET":
        return [AllowAny()]
    return [IsOrganizerOrAdmin()]


class EventCreateApi(APIView):
    def get_permissions(self) -> list[BasePermission]:
        return _event_permissions(self.request)

    @extend_schema(request=EventCreateInputSerializer, responses={201: EventOutputSerializer})
    @problems(422)
    @links(
        GetEvent=link("api_events_retrieve", parameters={"id": "$response.body#/id"}),
        UpdateEvent=link("api_events_partial_update", parameters={"id": "$response.body#/id"}),
        CancelEvent=link("api_events_destroy", parameters={"id": "$response.body#/id"}),
        BookTickets=link(
            "api_bookings_create", body={"event": "$response.body#/id", "tickets_booked": 1}
        ),
        EventAvailability=link(
            "api_availability_retrieve", parameters={"event": "$response.body#/id"}
        ),
    )
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        serializer = EventCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        organizer_id = data.pop("organizer_id", None)
        if organizer_id is None or not actor.is_admin:
            organizer_id = actor.id
        event = event_create(organizer_id=organizer_id, currency=settings.BOOKING_CURRENCY, **data)
        return Response(EventOutputSerializer(event).data, status=status.HTTP_201_CREATED)


_event_pages = MicroCache()


class EventListCreateApi(EventCreateApi):
    class FilterSerializer(QuerySerializer):
        q = TextField(required=False, max_length=200)
        location = TextField(required=False, max_length=200)
        date_from = serializers.DateField(required=False)
        date_to = serializers.DateField(required=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            validate_range(
                attrs.get("date_from"),
                attrs.get("date_to"),
                start_name="date_from",
                end_name="date_to",
            )
            return attrs

    @extend_schema(parameters=[FilterSerializer], responses={200: EventOutputSerializer(many=True)})
    def get(self, request: Request) -> HttpResponse:
        # The listing is public and the same for everyone: a page is served from memory for
        # BOOKING_EVENT_LIST_CACHE_SECONDS (see servicekit.microcache).
        key = f"{request.get_host()}|{sorted(request.query_params.lists())}"
        cached = _event_pages.get(key)
        if cached is not None:
            return HttpResponse(cached, content_type="application/json")
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        events = event_list(
            text=params.get("q"),
            location=params.get("location"),
            date_from=params.get("date_from"),
            date_to=params.get("date_to"),
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        data = paginator.get_paginated_response(EventOutputSerializer(page, many=True).data).data
        body = orjson.dumps(data)
        _event_pages.set(key, body, settings.BOOKING_EVENT_LIST_CACHE_SECONDS)
        return HttpResponse(body, content_type="application/json")


class EventMineApi(APIView):
    """The caller's own events, every status and past ones included, the latest first (the
    public list shows only what is on sale). An admin sees the events they organize."""

    permission_classes = [IsOrganizerOrAdmin]

    @extend_schema(responses={200: EventOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        events = event_list_of_organizer(organizer_id=actor_of(request).id)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(EventOutputSerializer(page, many=True).data)


class EventDetailApi(APIView):
    def get_permissions(self) -> list[BasePermission]:
        return _event_permissions(self.request)

    def _owned_event(self, request: Request, pk: Any) -> Event:
        actor = actor_of(request)
        event = event_get(event_id=path_id(pk))
        if event is None:
            raise not_found("event")
        if not actor.is_admin and event.organizer_id != actor.id:
            self.permission_denied(request, "Only the event's organizer or an admin can do this.")
        return event

    @extend_schema(responses={200: EventOutputSerializer})
    def get(self, request: Request, pk: str) -> Response:
        event = event_get(event_id=path_id(pk))
        if event is None:
            raise not_found("event")
        return Response(EventOutputSerializer(event).data)

    def _update(self, request: Request, pk: str, *, partial: bool) -> Response:
        event = self._owned_event(request, pk)
        serializer = EventInputSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        event = event_update(event_id=event.pk, **serializer.validated_data)
        return Response(EventOutputSerializer(event).data)

    @extend_schema(request=EventInputSerializer, responses={200: EventOutputSerializer})
    @problems(409, 422)
    def put(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=False)

    @extend_schema(request=EventInputSerializer, responses={200: EventOutputSerializer})
    @problems(409, 422)
    def patch(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=True)

    @extend_schema(responses={204: None})
    @problems(409)
    def delete(self, request: Request, pk: str) -> Response:
        event = self._owned_event(request, pk)
        event_cancel(event_id=event.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
