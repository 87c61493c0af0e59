from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications_service.notifications.models import Notification
from notifications_service.notifications.selectors import notification_get, notification_list
from notifications_service.notifications.services import (
    notification_mark_all_read,
    notification_mark_read,
    notification_send,
)
from servicekit.fields import (
    BooleanField,
    EmailField,
    QuerySerializer,
    SlugField,
    TextField,
    UUIDField,
)
from servicekit.pagination import PageNumberPagination
from servicekit.permissions import IsAdminOrService


class NotificationOutputSerializer(serializers.ModelSerializer[Notification]):
    # The public name predates the model's: the id of the message (or of the API call's
    # `event_id`) the notification was made from.
    source_event_id = serializers.UUIDField(
        source="source_message_id", allow_null=True, required=False
    )
    is_read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = [
            "id",
            "user_id",
            "kind",
            "title",
            "body",
            "data",
            "source_event_id",
            "is_read",
            "read_at",
            "created_at",
        ]

    def get_is_read(self, obj: Notification) -> bool:
        return obj.read_at is not None


MAX_ID = 2**63 - 1  # a bigger id cannot exist; asking the database for it is an error


def _get_own(request: Request, pk: str) -> Notification:
    if int(pk) > MAX_ID:
        raise NotFound("No such notification.")
    notification = notification_get(user_id=str(request.user.id), notification_id=int(pk))
    if notification is None:
        raise NotFound("No such notification.")
    return notification


class NotificationSendApi(APIView):
    """`POST /api/notification`: store a notification for a user and email it."""

    permission_classes = [IsAdminOrService]

    @extend_schema_serializer(component_name="NotificationSendInput")
    class InputSerializer(serializers.Serializer[None]):
        user_id = TextField(max_length=64)
        title = TextField(max_length=200)
        body = TextField(multiline=True, max_length=10_000)
        kind = SlugField(max_length=64, default="message")
        # DRF's metaclass moves declared fields off the class, so `data` stays the property.
        data = serializers.DictField(required=False, default=dict)  # type: ignore[assignment]
        send_email = BooleanField(default=True)
        event_id = UUIDField(
            required=False,
            default=None,
            help_text=(
                "Id of what the notification is about. A second call with the same user and "
                "event_id returns the first notification (200) instead of sending again."
            ),
        )
        email = EmailField(
            required=False,
            default="",
            help_text="Address to use instead of the user's known contact address.",
        )

    @extend_schema(
        operation_id="notification_send",
        request=InputSerializer,
        responses={201: NotificationOutputSerializer, 200: NotificationOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        notification, created = notification_send(
            user_id=values["user_id"],
            kind=values["kind"],
            title=values["title"],
            body=values["body"],
            data=values["data"],
            source_message_id=values["event_id"],
            send_email=values["send_email"],
            email_to=values["email"],
        )
        return Response(
            NotificationOutputSerializer(notification).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class NotificationListApi(APIView):
    """`GET /api/notifications/`: the caller's notifications, newest first."""

    @extend_schema_serializer(component_name="NotificationListFilter")
    class FilterSerializer(QuerySerializer):
        unread = BooleanField(required=False, allow_null=True, default=None)

    @extend_schema(
        operation_id="notification_list",
        parameters=[
            OpenApiParameter("unread", bool, description="only unread (true) or read (false)"),
        ],
        responses={200: NotificationOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = notification_list(
            user_id=str(request.user.id), unread=filters.validated_data["unread"]
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(NotificationOutputSerializer(page, many=True).data)


class NotificationDetailApi(APIView):
    @extend_schema(operation_id="notification_get", responses={200: NotificationOutputSerializer})
    def get(self, request: Request, pk: str) -> Response:
        return Response(NotificationOutputSerializer(_get_own(request, pk)).data)


class NotificationReadApi(APIView):
    """`POST /api/notifications/{id}/read`: mark one notification read."""

    @extend_schema(
        operation_id="notification_mark_read",
        request=None,
        responses={200: NotificationOutputSerializer},
    )
    def post(self, request: Request, pk: str) -> Response:
        notification = notification_mark_read(notification=_get_own(request, pk))
        return Response(NotificationOutputSerializer(notification).data)


class NotificationReadAllApi(APIView):
    """`POST /api/notifications/read-all`: mark every notification of the caller read."""

    @extend_schema(
        operation_id="notification_mark_all_read",
        request=None,
        responses={200: inline_serializer("MarkAllRead", {"marked": serializers.IntegerField()})},
    )
    def post(self, request: Request) -> Response:
        return Response({"marked": notification_mark_all_read(user_id=str(request.user.id))})
