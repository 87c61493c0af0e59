from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications_service.notifications.apis import MAX_ID
from notifications_service.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifications_service.webhooks.selectors import (
    webhook_delivery_list,
    webhook_endpoint_get,
    webhook_endpoint_list,
)
from notifications_service.webhooks.services import (
    WEBHOOK_EVENT_TYPES,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)
from servicekit.auth import Principal
from servicekit.fields import BooleanField, TextField, UrlField
from servicekit.openapi import link, links, problems
from servicekit.pagination import PageNumberPagination
from servicekit.permissions import IsOrganizerOrAdmin


class EndpointOutputSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "organizer_id",
            "url",
            "event_types",
            "description",
            "is_active",
            "created_at",
            "updated_at",
        ]


class EndpointWithSecretOutputSerializer(EndpointOutputSerializer):
    """Only on creation and rotation: the secret is never shown again."""

    class Meta(EndpointOutputSerializer.Meta):
        fields = [*EndpointOutputSerializer.Meta.fields, "secret"]


class AttemptOutputSerializer(serializers.ModelSerializer[WebhookAttempt]):
    class Meta:
        model = WebhookAttempt
        fields = ["attempted_at", "status_code", "error", "duration_ms"]


class DeliveryOutputSerializer(serializers.ModelSerializer[WebhookDelivery]):
    # Public names, as in the `Turnstile-Event-*` headers: the message delivered.
    event_id = serializers.UUIDField(source="message_id")
    event_type = serializers.CharField(source="message_type", max_length=64)
    log = AttemptOutputSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "created_at",
            "log",
        ]


def _event_types_field(**kwargs: object) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=WEBHOOK_EVENT_TYPES),
        max_length=len(WEBHOOK_EVENT_TYPES),
        help_text="Event types to receive; empty or absent means all.",
        **kwargs,  # type: ignore[arg-type]
    )


class WebhookUrlField(UrlField):
    """https; plain http too where private networks are allowed (development receivers)."""

    def allowed_schemes(self) -> tuple[str, ...]:
        return ("https", "http") if settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS else ("https",)


def _principal(request: Request) -> Principal:
    user = request.user
    if not isinstance(user, Principal):  # the permission classes let no one else in
        raise NotFound()
    return user


def _get_endpoint(request: Request, pk: str) -> WebhookEndpoint:
    if int(pk) > MAX_ID:
        raise NotFound("No such webhook.")
    endpoint = webhook_endpoint_get(principal=_principal(request), endpoint_id=int(pk))
    if endpoint is None:
        raise NotFound("No such webhook.")
    return endpoint


class WebhookListCreateApi(APIView):
    """`GET|POST /api/webhooks/`: an organizer's webhook endpoints."""

    permission_classes = [IsOrganizerOrAdmin]

    @extend_schema_serializer(component_name="WebhookCreateInput")
    class InputSerializer(serializers.Serializer[None]):
        url = WebhookUrlField(max_length=2000)
        event_types = _event_types_field(required=False, default=list)
        description = TextField(max_length=200, required=False, default="")

    @extend_schema(
        operation_id="webhook_list",
        responses={200: EndpointOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            webhook_endpoint_list(principal=_principal(request)), request, view=self
        )
        return paginator.get_paginated_response(EndpointOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="webhook_create",
        request=InputSerializer,
        responses={201: EndpointWithSecretOutputSerializer},
    )
    @problems(409)
    @links(
        GetWebhook=link("webhook_get", parameters={"id": "$response.body#/id"}),
        UpdateWebhook=link("webhook_update", parameters={"id": "$response.body#/id"}),
        DeleteWebhook=link("webhook_delete", parameters={"id": "$response.body#/id"}),
        RotateSecret=link("webhook_rotate_secret", parameters={"id": "$response.body#/id"}),
        Deliveries=link("webhook_delivery_list", parameters={"id": "$response.body#/id"}),
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_create(
            organizer_id=_principal(request).id, **serializer.validated_data
        )
        return Response(
            EndpointWithSecretOutputSerializer(endpoint).data, status=status.HTTP_201_CREATED
        )


class WebhookDetailApi(APIView):
    """`GET|PATCH|PUT|DELETE /api/webhooks/{id}`: the owner or an admin; others get 404."""

    permission_classes = [IsOrganizerOrAdmin]

    @extend_schema_serializer(component_name="WebhookUpdateInput")
    class InputSerializer(serializers.Serializer[None]):
        url = WebhookUrlField(max_length=2000, required=False)
        event_types = _event_types_field(required=False)
        description = TextField(max_length=200, required=False)
        is_active = BooleanField(required=False)

    @extend_schema(operation_id="webhook_get", responses={200: EndpointOutputSerializer})
    def get(self, request: Request, pk: str) -> Response:
        return Response(EndpointOutputSerializer(_get_endpoint(request, pk)).data)

    @extend_schema(
        operation_id="webhook_update",
        request=InputSerializer,
        responses={200: EndpointOutputSerializer},
    )
    def patch(self, request: Request, pk: str) -> Response:
        endpoint = _get_endpoint(request, pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_update(endpoint=endpoint, **serializer.validated_data)
        return Response(EndpointOutputSerializer(endpoint).data)

    @extend_schema(
        operation_id="webhook_replace",
        request=InputSerializer,
        responses={200: EndpointOutputSerializer},
    )
    def put(self, request: Request, pk: str) -> Response:
        return self.patch(request, pk)

    @extend_schema(operation_id="webhook_delete", responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        webhook_endpoint_delete(endpoint=_get_endpoint(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretApi(APIView):
    """`POST /api/webhooks/{id}/rotate-secret`: a new secret, shown once."""

    permission_classes = [IsOrganizerOrAdmin]

    @extend_schema(
        operation_id="webhook_rotate_secret",
        request=None,
        responses={200: EndpointWithSecretOutputSerializer},
    )
    def post(self, request: Request, pk: str) -> Response:
        endpoint = webhook_endpoint_rotate_secret(endpoint=_get_endpoint(request, pk))
        return Response(EndpointWithSecretOutputSerializer(endpoint).data)


class WebhookDeliveryListApi(APIView):
    """`GET /api/webhooks/{id}/deliveries`: the delivery log, newest first."""

    permission_classes = [IsOrganizerOrAdmin]

    @extend_schema(
        operation_id="webhook_delivery_list",
        responses={200: DeliveryOutputSerializer(many=True)},
    )
    def get(self, request: Request, pk: str) -> Response:
        endpoint = _get_endpoint(request, pk)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            webhook_delivery_list(endpoint=endpoint), request, view=self
        )
        return paginator.get_paginated_response(DeliveryOutputSerializer(page, many=True).data)
