from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from booking_service.api.common import actor_of, id_field, not_found, path_id
from booking_service.bookings.inventory import event_inventory
from booking_service.bookings.selectors import resource_availability
from booking_service.resources.models import Resource
from booking_service.resources.selectors import resource_get, resource_list
from booking_service.resources.services import (
    resource_create,
    resource_deactivate,
    resource_update,
)
from booking_service.resources.slots import MAX_AVAILABILITY_RANGE
from servicekit.fields import (
    IntegerField,
    QuerySerializer,
    TextField,
    TimezoneField,
    validate_range,
)
from servicekit.openapi import link, links, problems
from servicekit.pagination import PageNumberPagination
from servicekit.permissions import IsOrganizerOrAdmin


class ResourceOutputSerializer(serializers.ModelSerializer[Resource]):
    class Meta:
        model = Resource
        fields = [
            "id",
            "name",
            "description",
            "location",
            "timezone",
            "opening_time",
            "closing_time",
            "slot_minutes",
            "price_per_slot",
            "currency",
            "organizer_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ResourceInputSerializer(serializers.Serializer[Any]):
    name = TextField(max_length=200)
    description = TextField(multiline=True, max_length=5000, allow_blank=True, required=False)
    location = TextField(max_length=200, allow_blank=True, required=False)
    timezone = TimezoneField(max_length=64)
    opening_time = serializers.TimeField()
    closing_time = serializers.TimeField()
    slot_minutes = IntegerField(min_value=5, max_value=24 * 60)
    price_per_slot = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, max_value=settings.BOOKING_MAX_PRICE
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        opening, closing = attrs.get("opening_time"), attrs.get("closing_time")
        if opening is not None and closing is not None and closing <= opening:
            raise serializers.ValidationError(
                {"closing_time": ["closing_time must be after opening_time."]}
            )
        return attrs


def _public_read(request: Request) -> list[BasePermission]:
    if request.method == "GET":
        return [AllowAny()]
    return [IsOrganizerOrAdmin()]


class ResourceListCreateApi(APIView):
    def get_permissions(self) -> list[BasePermission]:
        return _public_read(self.request)

    @extend_schema(responses={200: ResourceOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(resource_list(), request, view=self)
        return paginator.get_paginated_response(ResourceOutputSerializer(page, many=True).data)

    @extend_schema(request=ResourceInputSerializer, responses={201: ResourceOutputSerializer})
    @problems(422)
    @links(
        GetResource=link("api_resources_retrieve", parameters={"id": "$response.body#/id"}),
        UpdateResource=link(
            "api_resources_partial_update", parameters={"id": "$response.body#/id"}
        ),
        DeleteResource=link("api_resources_destroy", parameters={"id": "$response.body#/id"}),
        ResourceAvailability=link(
            "api_availability_retrieve", parameters={"resource": "$response.body#/id"}
        ),
    )
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        serializer = ResourceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        resource = resource_create(
            organizer_id=actor.id, currency=settings.BOOKING_CURRENCY, **serializer.validated_data
        )
        return Response(ResourceOutputSerializer(resource).data, status=status.HTTP_201_CREATED)


class ResourceDetailApi(APIView):
    def get_permissions(self) -> list[BasePermission]:
        return _public_read(self.request)

    def _owned(self, request: Request, pk: str) -> Resource:
        actor = actor_of(request)
        resource = resource_get(resource_id=path_id(pk))
        if resource is None:
            raise not_found("resource")
        if not actor.is_admin and resource.organizer_id != actor.id:
            self.permission_denied(
                request, "Only the resource's organizer or an admin can do this."
            )
        return resource

    @extend_schema(responses={200: ResourceOutputSerializer})
    def get(self, request: Request, pk: str) -> Response:
        resource = resource_get(resource_id=path_id(pk))
        if resource is None:
            raise not_found("resource")
        return Response(ResourceOutputSerializer(resource).data)

    def _update(self, request: Request, pk: str, *, partial: bool) -> Response:
        resource = self._owned(request, pk)
        serializer = ResourceInputSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        resource = resource_update(resource=resource, **serializer.validated_data)
        return Response(ResourceOutputSerializer(resource).data)

    @extend_schema(request=ResourceInputSerializer, responses={200: ResourceOutputSerializer})
    @problems(422)
    def put(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=False)

    @extend_schema(request=ResourceInputSerializer, responses={200: ResourceOutputSerializer})
    @problems(422)
    def patch(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=True)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        resource_deactivate(resource=self._owned(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AvailabilityApi(APIView):
    """`?event=ID` → ticket inventory; `?resource=ID&start=&end=` → free intervals."""

    permission_classes = [AllowAny]

    class FilterSerializer(QuerySerializer):
        event = id_field(required=False)
        resource = id_field(required=False)
        start = serializers.DateTimeField(required=False)
        end = serializers.DateTimeField(required=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if ("event" in attrs) == ("resource" in attrs):
                raise serializers.ValidationError("Give exactly one of event or resource.")
            if "resource" in attrs:
                missing = {"start", "end"} - set(attrs)
                if missing:
                    raise serializers.ValidationError(
                        {name: ["This field is required."] for name in sorted(missing)}
                    )
                validate_range(
                    attrs["start"],
                    attrs["end"],
                    start_name="start",
                    end_name="end",
                    strict=True,
                    max_span=MAX_AVAILABILITY_RANGE,
                )
            return attrs

    @extend_schema(parameters=[FilterSerializer], responses={200: dict})
    @problems(404, 422)
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        if "event" in params:
            inventory = event_inventory(event_id=params["event"])
            if inventory is None:
                raise not_found("event")
            return Response(
                {
                    "event": inventory.event_id,
                    "total": inventory.total,
                    "available": inventory.available,
                    "held": inventory.held,
                    "sold": inventory.sold,
                    "releasable": inventory.releasable,
                }
            )
        resource = resource_get(resource_id=params["resource"])
        if resource is None:
            raise not_found("resource")
        start: dt.datetime = params["start"]
        end: dt.datetime = params["end"]
        free = resource_availability(resource=resource, start=start, end=end)
        return Response(
            {
                "resource": resource.pk,
                "timezone": resource.timezone,
                "slot_minutes": resource.slot_minutes,
                "price_per_slot": str(resource.price_per_slot),
                "start": start,
                "end": end,
                "free": [{"start": i.start, "end": i.end} for i in free],
            }
        )
